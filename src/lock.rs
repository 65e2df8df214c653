//! The data folder's lock: one fimvt process writes a data folder at a time, so
//! alert ids (byte offsets) and the database never see two writers. Read commands
//! ask who holds it without taking it, so a read can never make a writer's start
//! fail.
//!
//! It is an open-file-description lock (`F_OFD_SETLK`): released by the kernel
//! when the holder dies, and testable with `F_OFD_GETLK`, which takes nothing
//! (unlike `flock`, which can only be probed by taking it).

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "fimvt.lock";

/// Held for as long as the value lives; the kernel releases it if we die.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

/// A write lock over the whole file, for `F_OFD_SETLK` or `F_OFD_GETLK`.
fn whole_file_lock() -> libc::flock {
    // SAFETY: `flock` is plain data; all-zero is a valid value (l_pid must be 0 for OFD locks).
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = libc::F_WRLCK as libc::c_short;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> anyhow::Result<DataDirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open lock file {}: {e}", path.display()))?;
        let l = whole_file_lock();
        // SAFETY: fcntl on a descriptor we own, with a valid `flock` that outlives the call.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &l) } != 0 {
            let err = io::Error::last_os_error();
            if !matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) {
                anyhow::bail!("cannot lock {}: {err}", path.display());
            }
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            anyhow::bail!(
                "another fimvt{} is already using data_dir {}; stop it first (lock file {})",
                if holder.is_empty() { String::new() } else { format!(" (pid {holder})") },
                dir.display(),
                path.display()
            );
        }
        file.set_len(0)?;
        writeln!(file, "{}", std::process::id())?;
        Ok(DataDirLock { _file: file, path })
    }
}

/// The pid written by the process holding `dir`'s lock, if one holds it (empty
/// while the holder is still writing it). Takes no lock.
pub fn holder(dir: &Path) -> Option<String> {
    let path = dir.join(LOCK_FILE);
    let file = File::open(&path).ok()?;
    let mut l = whole_file_lock();
    // SAFETY: fcntl on a descriptor we own, with a valid `flock` it fills in.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut l) } != 0 {
        return None;
    }
    if l.l_type == libc::F_UNLCK as libc::c_short {
        return None;
    }
    Some(std::fs::read_to_string(&path).unwrap_or_default().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_seen_and_released_with_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()), None, "no lock file yet");
        let lock = DataDirLock::acquire(dir.path()).unwrap();
        assert_eq!(holder(dir.path()), Some(std::process::id().to_string()));
        let second = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(second.contains("another fimvt") && second.contains(&std::process::id().to_string()), "{second}");
        drop(lock);
        assert_eq!(holder(dir.path()), None);
    }

    /// Regression: `status` and `lookup` used to probe by taking a shared lock for
    /// an instant, and a daemon starting in that instant refused to start.
    #[test]
    fn probing_the_lock_never_makes_a_writer_fail_to_start() {
        let dir = tempfile::tempdir().unwrap();
        drop(DataDirLock::acquire(dir.path()).unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let prober = {
            let (dir, stop) = (dir.path().to_path_buf(), stop.clone());
            std::thread::spawn(move || {
                let mut probes = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = holder(&dir);
                    probes += 1;
                }
                probes
            })
        };
        let mut refused = 0;
        for _ in 0..2000 {
            match DataDirLock::acquire(dir.path()) {
                Ok(lock) => drop(lock),
                Err(_) => refused += 1,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let probes = prober.join().unwrap();
        assert!(probes > 1000, "the prober ran alongside ({probes} probes)");
        assert_eq!(refused, 0, "starts refused while the lock was only probed ({probes} probes)");
    }
}
