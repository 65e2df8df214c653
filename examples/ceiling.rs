//! The hashing ceiling for BENCHMARKS.md: lists every regular file under DIR
//! (untimed), then reads and hashes them with fimvt's own one-pass MD5 + SHA-1 +
//! SHA-256 code on THREADS threads, with no walk, database or alerts. A full scan
//! cannot beat this; the benchmark reports how close it gets.
//!
//! Usage: ceiling DIR [THREADS]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: ceiling DIR [THREADS]");
    let threads: usize = args.next().map(|t| t.parse().expect("THREADS is a number")).unwrap_or(2);
    let files: Vec<_> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    let next = AtomicUsize::new(0);
    let bytes = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; fimvt::hash::READ_BUF];
                while let Some(p) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (md, _) = fimvt::hash::hash_file(p, false, u64::MAX, &mut buf).expect("readable file");
                    bytes.fetch_add(md.len() as usize, Ordering::Relaxed);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!("ceiling_seconds={secs:.3} files={} bytes={}", files.len(), bytes.load(Ordering::Relaxed));
}
