//! The full scan: walks every configured folder, re-reads what may have changed,
//! compares with the store and raises added / modified / deleted alerts. The first
//! completed scan of a database is the baseline: it records and raises nothing.
//!
//! Three stages run at once: one walker thread (readdir + lstat, and the decision
//! whether a file must be re-read), a pool of hashing threads (one per core by
//! default), and the calling thread, which is the only one that writes alerts and
//! the database. The walker skips re-reading a file whose size, mode, owner,
//! inode, mtime and ctime all match the store (`rehash = "changed"`). With
//! `max_files_per_second`, the walker hands out at most that many files a second.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::clock::{unix_now, unix_now_ns};
use crate::config::{Config, PathClass, Rehash};
use crate::fim::{EventKind, ScanMode};
use crate::hash::{READ_BUF, ReadResult, hash_file};
use crate::journal::RecordError;
use crate::model::{FileState, StatKey};
use crate::presence;
use crate::progress::Progress;
use crate::record::Recorder;
use crate::store::ScanTotals;
use crate::textutil::escape_path;

/// What a scan did, for the one-line summary and the `scans` table.
#[derive(Debug, Clone, Default)]
pub struct ScanSummary {
    pub totals: ScanTotals,
    pub baseline: bool,
    /// Files recorded without hashes because they exceed `max_file_size`.
    pub unhashed: u64,
    /// Folders walked under `realtime` roots: each holds one inotify watch.
    pub realtime_folders: u64,
    /// Files changed so recently that they may still be being written: not
    /// recorded by this scan (only when the caller asked to defer them).
    pub deferred: Vec<PathBuf>,
    pub elapsed: Duration,
}

impl std::fmt::Display for ScanSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.totals;
        write!(
            f,
            "{}: {} files, {} bytes, {} added, {} modified, {} deleted, {} errors, {:.2} s",
            if self.baseline { "baseline scan complete" } else { "scan complete" },
            t.files,
            t.bytes,
            t.added,
            t.modified,
            t.deleted,
            t.errors,
            self.elapsed.as_secs_f64(),
        )?;
        if self.unhashed > 0 {
            write!(f, " ({} files over max_file_size recorded without hashes)", self.unhashed)?;
        }
        Ok(())
    }
}

/// A file the walker wants read.
struct Work {
    path: PathBuf,
    dir: usize,
    /// The store has a row for it.
    known: bool,
}

/// What reaches the writer. Each message is moved once through a channel, so
/// the size gap between variants costs nothing worth an allocation per file.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    /// Seen and, by its stat fields, unchanged.
    Unchanged {
        path: PathBuf,
        size: u64,
    },
    Read {
        path: PathBuf,
        known: bool,
        result: ReadResult,
    },
    /// A folder could not be walked (or a symlink loop was found).
    WalkError(String),
    /// The walk is over: this many files were sent (read or unchanged).
    WalkDone {
        files: u64,
        realtime_folders: u64,
    },
}

/// How a scan runs.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// The `Mode:` of its alerts.
    pub mode: ScanMode,
    /// A file whose ctime is younger than this is not recorded but returned in
    /// `deferred`: the realtime pipeline looks at it once it settles, so a scan
    /// racing a copy never reports a half-written file.
    pub defer_recent: Option<Duration>,
    /// Show a progress bar (or log progress lines when not on a terminal).
    pub progress: bool,
}

/// Runs one full scan, recording through `rec`, and records the scan.
pub fn scan(cfg: &Config, rec: &mut Recorder, opts: ScanOptions) -> Result<ScanSummary, RecordError> {
    let ScanOptions { mode, defer_recent, progress } = opts;
    let started = Instant::now();
    // Whatever the caller had pending is committed before the scan's own rows.
    rec.commit()?;
    let store = rec.store();
    let baseline = !store.has_completed_scan()?;
    let scan_id = store.scan_started(if baseline { "baseline" } else { "scheduled" }, unix_now())?;
    let index = store.stat_index()?;

    // A baseline alerts nothing, so there is nothing to defer: record what is there.
    let defer_before_ns = defer_recent.filter(|_| !baseline).map(|d| unix_now_ns().saturating_sub(d.as_nanos() as i64));
    let progress = progress.then(Progress::new);
    let summary = ScanSummary { baseline, ..Default::default() };
    let mut w = ScanRecording { cfg, rec, mode, baseline, defer_before_ns, summary, progress };
    let unseen = std::thread::scope(|s| -> Result<HashMap<PathBuf, StatKey>, RecordError> {
        let (work_tx, work_rx) = bounded::<Work>(1024);
        let (out_tx, out_rx) = bounded::<Outcome>(1024);
        for _ in 0..cfg.scan.threads {
            let (work_rx, out_tx) = (work_rx.clone(), out_tx.clone());
            s.spawn(move || hash_worker(cfg, work_rx, out_tx));
        }
        drop(work_rx);
        let walker = s.spawn(move || walk(cfg, index, work_tx, out_tx));
        for outcome in out_rx.iter() {
            w.handle(outcome)?;
        }
        Ok(walker.join().expect("the walker thread does not panic"))
    })?;
    w.deletions(unseen)?;
    w.rec.commit()?;
    if let Some(p) = w.progress.take() {
        p.finish();
    }
    let mut summary = w.summary;
    summary.elapsed = started.elapsed();
    w.rec.store().scan_finished(scan_id, unix_now(), &summary.totals)?;
    Ok(summary)
}

/// Walks every configured folder, sending files to read to `work` and unchanged
/// ones straight to `out`. Returns the index entries it did not see.
fn walk(
    cfg: &Config,
    mut index: HashMap<PathBuf, StatKey>,
    work: Sender<Work>,
    out: Sender<Outcome>,
) -> HashMap<PathBuf, StatKey> {
    let (mut sent_files, mut realtime_folders) = (0u64, 0u64);
    let mut pace = Pace::new(cfg.scan.max_files_per_second);
    for (d, dir) in cfg.directories.iter().enumerate() {
        // Not there (yet, or any more): nothing to walk, and what was recorded
        // under it is reported gone by the deletions.
        if std::fs::symlink_metadata(&dir.path).is_err_and(|e| presence::not_there(&e)) {
            tracing::debug!(folder = %escape_path(&dir.path), "not there: nothing to scan");
            continue;
        }
        let walker = walkdir::WalkDir::new(&dir.path).follow_links(dir.follow_symlinks).into_iter();
        let walker = walker.filter_entry(|e| {
            if !e.file_type().is_dir() {
                return !e.path_is_symlink() || !presence::walk_skips(cfg, e.path());
            }
            // Another, more specific entry walks its own tree with its own settings.
            if e.depth() > 0 && cfg.directories.iter().any(|o| o.path == e.path()) {
                return false;
            }
            matches!(cfg.classify(e.path(), e.file_type()), PathClass::Dir { .. })
                && !presence::walk_skips(cfg, e.path())
        });
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let at = e.path().map(escape_path).unwrap_or_default();
                    let why = match e.loop_ancestor() {
                        Some(a) => format!("symlink loop back to {}", escape_path(a)),
                        None => e.io_error().map(|io| io.to_string()).unwrap_or_else(|| e.to_string()),
                    };
                    if out.send(Outcome::WalkError(format!("{at}: {why}"))).is_err() {
                        return index;
                    }
                    continue;
                }
            };
            if entry.file_type().is_dir() {
                realtime_folders += u64::from(dir.realtime);
                continue;
            }
            if !matches!(cfg.classify(entry.path(), entry.file_type()), PathClass::File { dir } if dir == d) {
                continue;
            }
            pace.one_more();
            // A path the store does not know needs reading whatever its stat says,
            // and the reader's fstat is the one recorded: skip the lstat here.
            sent_files += 1;
            let Some(old) = index.remove(entry.path()) else {
                if work.send(Work { path: entry.into_path(), dir: d, known: false }).is_err() {
                    return index;
                }
                continue;
            };
            let unchanged =
                cfg.scan.rehash == Rehash::Changed && entry.metadata().is_ok_and(|md| StatKey::of(&md) == old);
            let sent = if unchanged {
                out.send(Outcome::Unchanged { path: entry.into_path(), size: old.size }).is_ok()
            } else {
                // Changed, or vanished since readdir: the reader finds out which.
                work.send(Work { path: entry.into_path(), dir: d, known: true }).is_ok()
            };
            if !sent {
                return index;
            }
        }
    }
    let _ = out.send(Outcome::WalkDone { files: sent_files, realtime_folders });
    index
}

/// `max_files_per_second`, as Wazuh's `check_max_fps` (`syscheckd/src/run_check.c`)
/// counts it: every file the scan looks at, read or found unchanged by its stat,
/// and at most `limit` of them in each one-second window; the next one waits for
/// the next window. It delays files, never skips one. 0 is no limit.
struct Pace {
    limit: u32,
    window: Instant,
    count: u32,
}

impl Pace {
    fn new(limit: u32) -> Pace {
        Pace { limit, window: Instant::now(), count: 0 }
    }

    /// Waits, if need be, until one more file fits in the limit.
    fn one_more(&mut self) {
        if self.limit == 0 {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            (self.window, self.count) = (now, 0);
        }
        if self.count >= self.limit {
            std::thread::sleep((self.window + Duration::from_secs(1)).saturating_duration_since(now));
            (self.window, self.count) = (Instant::now(), 0);
        }
        self.count += 1;
    }
}

fn hash_worker(cfg: &Config, work: Receiver<Work>, out: Sender<Outcome>) {
    let mut buf = vec![0u8; READ_BUF];
    for Work { path, dir, known } in work.iter() {
        let d = &cfg.directories[dir];
        let result = hash_file(&path, d.follow_symlinks, d.max_file_size, &mut buf);
        if out.send(Outcome::Read { path, known, result }).is_err() {
            return;
        }
    }
}

/// The scan's side of the writer: counts, and decisions that only a full scan
/// can make (deletions of what the walk did not see).
struct ScanRecording<'a> {
    cfg: &'a Config,
    rec: &'a mut Recorder,
    mode: ScanMode,
    baseline: bool,
    /// Files whose ctime (ns) is after this are deferred.
    defer_before_ns: Option<i64>,
    summary: ScanSummary,
    progress: Option<Progress>,
}

impl ScanRecording<'_> {
    fn count(&mut self, kind: Option<EventKind>) {
        let t = &mut self.summary.totals;
        match kind {
            Some(EventKind::Added) => t.added += 1,
            Some(EventKind::Modified) => t.modified += 1,
            Some(EventKind::Deleted) => t.deleted += 1,
            None => {}
        }
    }

    fn handle(&mut self, outcome: Outcome) -> Result<(), RecordError> {
        if let Some(p) = &mut self.progress {
            match &outcome {
                Outcome::Unchanged { size, .. } => p.file_done(*size),
                Outcome::Read { result: Ok((md, _)), .. } => p.file_done(md.len()),
                Outcome::Read { result: Err(_), .. } => p.file_done(0),
                Outcome::WalkDone { files, .. } => p.set_total(*files),
                Outcome::WalkError(_) => {}
            }
        }
        match outcome {
            Outcome::WalkDone { realtime_folders, .. } => self.summary.realtime_folders = realtime_folders,
            Outcome::Unchanged { path, size } => {
                self.summary.totals.files += 1;
                self.summary.totals.bytes += size;
                self.rec.touch(&path)?;
            }
            Outcome::Read { path, known, result: Ok((md, digests)) } => {
                let after = FileState::from_metadata(&md, digests, self.rec.names());
                if self.defer_before_ns.is_some_and(|t| after.ctime_ns > t) {
                    self.summary.deferred.push(path);
                    return Ok(());
                }
                self.summary.totals.files += 1;
                self.summary.totals.bytes += after.size;
                if after.digests.is_none() {
                    self.summary.unhashed += 1;
                    tracing::warn!(
                        path = %escape_path(&path),
                        size = after.size,
                        "larger than max_file_size: attributes recorded, hashing skipped"
                    );
                }
                let kind = self.rec.file_read(path, after, known, self.mode, self.baseline)?;
                self.count(kind);
            }
            Outcome::Read { path, known, result: Err(e) } => {
                self.summary.totals.errors += 1;
                tracing::warn!(path = %escape_path(&path), "cannot read file: {e}");
                // A recorded file that is gone, or is no longer a regular file, was
                // deleted as far as FIM is concerned.
                if known && presence::read_says_gone(&e) {
                    let kind = self.rec.file_gone(path, self.mode, self.baseline)?;
                    self.count(kind);
                }
            }
            Outcome::WalkError(msg) => {
                self.summary.totals.errors += 1;
                tracing::warn!("cannot scan {msg}");
            }
        }
        self.rec.maybe_commit()
    }

    /// Handles the recorded files the walk did not see.
    fn deletions(&mut self, unseen: HashMap<PathBuf, StatKey>) -> Result<(), RecordError> {
        let mut paths: Vec<PathBuf> = unseen.into_keys().collect();
        paths.sort();
        for path in paths {
            let still_monitored =
                self.cfg.file_rules_match(&path).is_some() && presence::skipped_file_system(self.cfg, &path).is_none();
            if !still_monitored {
                // The configuration no longer covers it (or its file system is one
                // skipped now): deleted as far as FIM is concerned, as Wazuh reports
                // the files its scan no longer reaches.
                let kind = self.rec.file_gone(path, self.mode, self.baseline)?;
                self.count(kind);
            } else {
                match presence::look(self.cfg, &path) {
                    p if p.is_gone() => {
                        let kind = self.rec.file_gone(path, self.mode, self.baseline)?;
                        self.count(kind);
                    }
                    _ => {
                        // It exists but the walk could not reach it (an unreadable
                        // folder): keep its row rather than report a false deletion.
                        tracing::warn!(path = %escape_path(&path), "not reached by this scan; keeping its last state");
                    }
                }
            }
            self.rec.maybe_commit()?;
        }
        Ok(())
    }
}
