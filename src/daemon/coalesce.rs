//! The coalescer: holds each changed path until it is settled (closed after
//! writing, or quiet for `settle`), walks new folders (their files may predate
//! their watch), turns lost events, the watch limit, SIGUSR1, `[scan] frequency`
//! and the scan time and day into full scans, and dispatches each path to its
//! checker, sharded by hash so two looks at one file reach the writer in order.

use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use crossbeam_channel::{Receiver, Sender, select};

use super::Control;
use super::writer::Msg;
use crate::config::{Config, PathClass};
use crate::fim::ScanMode;
use crate::presence;
use crate::textutil::escape_path;
use crate::watch::{self, Urgency, WatchEvent};

/// A path waiting to be looked at.
struct Pending {
    deadline: Instant,
    /// Realtime unless only a scan asked for this look.
    mode: ScanMode,
    /// When the first event of this wait arrived.
    first: Instant,
}

/// Holds each path until its deadline, then dispatches it to its checker.
pub(super) struct Coalescer<'a> {
    cfg: &'a Config,
    pending: HashMap<PathBuf, Pending>,
    /// Deadlines in order; an entry whose time no longer matches `pending` is stale.
    deadlines: BinaryHeap<Reverse<(Instant, PathBuf)>>,
    /// New folders to walk a second time, once their watch surely exists.
    rewalks: BinaryHeap<Reverse<(Instant, PathBuf)>>,
    /// Paths scheduled in the last few seconds, so a second walk adds only what
    /// the first walk and the events missed.
    recent: HashMap<PathBuf, Instant>,
    last_prune: Instant,
    shards: Vec<Sender<(PathBuf, ScanMode)>>,
    msg_tx: Sender<Msg>,
    lost: Arc<AtomicBool>,
    scan_queued: Arc<AtomicBool>,
    next_scan: Instant,
    /// The next scan at `[scan] time`/`day` (local wall-clock time), if set.
    next_slot: Option<DateTime<Local>>,
    /// Some folder could not be watched: scans run at least every `DEGRADED_PERIOD`.
    degraded: bool,
    /// Set by the watcher when it hits the watch limit (even if its event was lost).
    limit_hit: Arc<AtomicBool>,
    watch: watch::Watch,
    /// Realtime roots that are not there (missing at start, or deleted): watched
    /// as soon as they appear.
    missing_roots: Vec<PathBuf>,
}

/// When a new folder is walked the second time (see `Coalescer::walk_new_folder`).
const REWALK_AFTER: Duration = Duration::from_millis(50);

/// How long the coalescer waits at most before looking at the wall clock again:
/// its other deadlines are monotonic and do not see a suspend or a clock change.
const WALL_CLOCK_RECHECK: Duration = Duration::from_secs(30);

/// How often full scans run when part of the tree has no inotify watch.
const DEGRADED_PERIOD: Duration = Duration::from_secs(600);

fn scan_period(cfg: &Config, degraded: bool) -> Duration {
    if degraded { cfg.scan.frequency.min(DEGRADED_PERIOD) } else { cfg.scan.frequency }
}

impl<'a> Coalescer<'a> {
    /// `shards`: one channel per checker; `lost` and `limit_hit` are set by the
    /// watcher; `scan_queued` is cleared by the writer when a queued scan starts.
    pub(super) fn new(
        cfg: &'a Config,
        watch: watch::Watch,
        shards: Vec<Sender<(PathBuf, ScanMode)>>,
        msg_tx: Sender<Msg>,
        lost: Arc<AtomicBool>,
        limit_hit: Arc<AtomicBool>,
        scan_queued: Arc<AtomicBool>,
    ) -> Coalescer<'a> {
        let degraded = !watch.unwatched.is_empty();
        let missing_roots = watch.missing.clone();
        let next_slot = cfg.scan.schedule.map(|s| s.next_after(&Local::now()));
        if let Some(next) = next_slot {
            tracing::info!(next = %next.format("%Y-%m-%d %H:%M %z"), "next scheduled scan");
        }
        Coalescer {
            cfg,
            pending: HashMap::new(),
            deadlines: BinaryHeap::new(),
            rewalks: BinaryHeap::new(),
            recent: HashMap::new(),
            last_prune: Instant::now(),
            shards,
            msg_tx,
            lost,
            scan_queued,
            next_scan: Instant::now() + scan_period(cfg, degraded),
            next_slot,
            degraded,
            limit_hit,
            watch,
            missing_roots,
        }
    }

    /// Runs until shutdown (or the writer's end), then dispatches what is pending.
    pub(super) fn run(&mut self, events: &Receiver<WatchEvent>, ctrl: &Receiver<Control>) {
        loop {
            let now = Instant::now();
            let next = [self.deadlines.peek(), self.rewalks.peek()]
                .into_iter()
                .flatten()
                .map(|Reverse((t, _))| *t)
                .fold(self.next_scan, Instant::min);
            let mut timeout = next.saturating_duration_since(now);
            if !self.missing_roots.is_empty() {
                // Poll for a deleted folder's return (it has no watch to tell us).
                timeout = timeout.min(Duration::from_millis(200));
            }
            if let Some(slot) = self.next_slot {
                let wall = (slot - Local::now()).to_std().unwrap_or_default();
                timeout = timeout.min(wall.min(WALL_CLOCK_RECHECK));
            }
            select! {
                recv(events) -> ev => {
                    let Ok(ev) = ev else { return };
                    self.event(ev, Instant::now());
                    // Take whatever else is already queued before dispatching.
                    let now = Instant::now();
                    for ev in events.try_iter().take(10_000) {
                        self.event(ev, now);
                    }
                }
                recv(ctrl) -> c => match c {
                    Ok(Control::Scan) => self.request_scan("requested"),
                    Ok(Control::Recheck(paths)) => {
                        let now = Instant::now();
                        for path in paths {
                            self.path_event(path, Urgency::Settle, ScanMode::Scheduled, now);
                        }
                    }
                    Ok(Control::WriterStopped) => {
                        // Without a writer nothing reaches the alerts or the database:
                        // better to stop, loudly, than to watch and drop. The changes
                        // not recorded are found by the start-up scan after a restart
                        // (systemd: Restart=on-failure).
                        tracing::error!(
                            "the writer thread stopped unexpectedly; stopping so that a restart catches up"
                        );
                        return;
                    }
                    Ok(Control::Shutdown) | Err(_) => {
                        self.flush();
                        return;
                    }
                },
                default(timeout) => {}
            }
            self.rewatch_returned_roots();
            if self.limit_hit.swap(false, Ordering::SeqCst) && !self.degraded {
                self.degraded = true;
                self.next_scan = self.next_scan.min(Instant::now() + DEGRADED_PERIOD);
            }
            if self.lost.swap(false, Ordering::SeqCst) {
                self.request_scan("fimvt's event queue was full; events were dropped");
            }
            if Instant::now() >= self.next_scan {
                self.next_scan = Instant::now() + scan_period(self.cfg, self.degraded);
                self.request_scan("periodic");
            }
            self.scheduled_scan();
            self.dispatch_due();
        }
    }

    /// The scan at `[scan] time`/`day`, when due. As in Wazuh, it also restarts
    /// the period (a week then, at most `DEGRADED_PERIOD` while degraded).
    fn scheduled_scan(&mut self) {
        let (Some(schedule), Some(planned)) = (self.cfg.scan.schedule, self.next_slot) else { return };
        let (due, next) = schedule.tick(&planned, &Local::now());
        if next != planned {
            tracing::info!(next = %next.format("%Y-%m-%d %H:%M %z"), "next scheduled scan");
        }
        self.next_slot = Some(next);
        if due {
            self.next_scan = Instant::now() + scan_period(self.cfg, self.degraded);
            self.request_scan("scheduled (scan time/day)");
        }
    }

    /// Watches and walks the deleted monitored folders that exist again.
    fn rewatch_returned_roots(&mut self) {
        let back: Vec<PathBuf> = self.missing_roots.iter().filter(|p| p.is_dir()).cloned().collect();
        for root in back {
            self.missing_roots.retain(|p| p != &root);
            match self.watch.rewatch(&root) {
                Ok(()) => {
                    tracing::info!(folder = %escape_path(&root), "a monitored folder is back; watching it again");
                    self.walk_new_folder(&root, ScanMode::Realtime, Instant::now());
                }
                Err(e) => {
                    tracing::warn!(folder = %escape_path(&root), "cannot watch the returned folder: {e}; scans cover it");
                    self.request_scan("a monitored folder came back");
                }
            }
        }
    }

    fn request_scan(&self, why: &str) {
        // One scan waiting is enough: it will see everything that happened before it.
        if !self.scan_queued.swap(true, Ordering::SeqCst) {
            tracing::info!("full scan: {why}");
            let _ = self.msg_tx.send(Msg::Scan);
        }
    }

    fn event(&mut self, ev: WatchEvent, now: Instant) {
        match ev {
            WatchEvent::Path { path, urgency } => self.path_event(path, urgency, ScanMode::Realtime, now),
            WatchEvent::Rescan(why) => {
                tracing::warn!("{why}; rescanning to recover what was missed");
                self.request_scan(&why);
            }
            WatchEvent::WatchLimit(at) => {
                tracing::warn!(
                    folder = %at,
                    "the inotify watch limit is reached (raise fs.inotify.max_user_watches); \
                     changes below it are found by full scans, every 10 minutes at most"
                );
                self.request_scan("watch limit reached");
                if !self.degraded {
                    self.degraded = true;
                    self.next_scan = self.next_scan.min(Instant::now() + DEGRADED_PERIOD);
                }
            }
        }
    }

    fn path_event(&mut self, path: PathBuf, urgency: Urgency, mode: ScanMode, now: Instant) {
        // A monitored folder itself vanished: its files are reported gone below,
        // and it is watched again as soon as it comes back.
        if self.cfg.directories.iter().any(|d| d.realtime && d.path == path)
            && std::fs::symlink_metadata(&path).is_err()
            && !self.missing_roots.contains(&path)
        {
            tracing::warn!(folder = %escape_path(&path), "a monitored folder was deleted; watching for it to return");
            self.missing_roots.push(path.clone());
        }
        // A folder that appeared: what it already holds was created before its watch
        // existed, so walk it. Its files may still be being written: let them settle.
        if let Ok(md) = std::fs::symlink_metadata(&path)
            && md.is_dir()
        {
            // Only a folder that appeared needs walking: a folder's chmod or
            // touch (Meta) changes none of its files.
            if urgency != Urgency::Meta && matches!(self.cfg.classify(&path, md.file_type()), PathClass::Dir { .. }) {
                self.walk_new_folder(&path, mode, now);
            }
            // A recorded file replaced by this folder is gone: let a checker say so.
            if urgency == Urgency::Now {
                self.schedule(path, now, mode, now);
            }
            return;
        }
        let deadline = match urgency {
            Urgency::Settle => self.settle_deadline(&path, now),
            // A pending write keeps its later deadline: never read it half-written.
            Urgency::Meta => self.pending.get(&path).map_or(now, |p| p.deadline.max(now)),
            Urgency::Now => now,
        };
        self.schedule(path, deadline, mode, now);
    }

    /// Quiet for `settle`, but a file written without pause is still looked at
    /// every 20 settle periods: a log that never stops growing is not invisible.
    fn settle_deadline(&self, path: &Path, now: Instant) -> Instant {
        let settle = self.cfg.realtime.settle;
        let first = self.pending.get(path).map_or(now, |p| p.first);
        (now + settle).min(first + settle * 20)
    }

    /// Schedules every monitored file under a folder that just appeared. notify
    /// adds the folder's watch only after it has delivered the folder's event, so a
    /// file created in between is neither in this walk nor in any event: the folder
    /// is walked again `REWALK_AFTER` later, when the watch exists.
    fn walk_new_folder(&mut self, dir: &Path, mode: ScanMode, now: Instant) {
        self.walk_folder(dir, mode, now, false);
        self.rewalks.push(Reverse((now + REWALK_AFTER, dir.to_path_buf())));
    }

    /// `only_unknown`: skip files already pending or scheduled recently.
    fn walk_folder(&mut self, dir: &Path, mode: ScanMode, now: Instant, only_unknown: bool) {
        let follow = self.cfg.follows_symlinks(dir);
        let walker = walkdir::WalkDir::new(dir).follow_links(follow).into_iter();
        let walker = walker.filter_entry(|e| {
            if !e.file_type().is_dir() {
                return !e.path_is_symlink() || !presence::walk_skips(self.cfg, e.path());
            }
            matches!(self.cfg.classify(e.path(), e.file_type()), PathClass::Dir { .. })
                && !presence::walk_skips(self.cfg, e.path())
        });
        for entry in walker.flatten() {
            if matches!(self.cfg.classify(entry.path(), entry.file_type()), PathClass::File { .. }) {
                if only_unknown && (self.pending.contains_key(entry.path()) || self.recent.contains_key(entry.path())) {
                    continue;
                }
                let deadline = self.settle_deadline(entry.path(), now);
                self.schedule(entry.into_path(), deadline, mode, now);
            }
        }
    }

    fn schedule(&mut self, path: PathBuf, deadline: Instant, mode: ScanMode, now: Instant) {
        let (first, mode) = match self.pending.get(&path) {
            Some(p) if p.deadline == deadline && p.mode == mode => return,
            // Any realtime event makes the look a realtime one.
            Some(p) if p.mode == ScanMode::Realtime => (p.first, ScanMode::Realtime),
            Some(p) => (p.first, mode),
            None => (now, mode),
        };
        self.pending.insert(path.clone(), Pending { deadline, mode, first });
        self.recent.insert(path.clone(), now);
        self.deadlines.push(Reverse((deadline, path)));
    }

    fn dispatch_due(&mut self) {
        let now = Instant::now();
        while self.rewalks.peek().is_some_and(|Reverse((t, _))| *t <= now) {
            let Reverse((_, dir)) = self.rewalks.pop().expect("peeked");
            self.walk_folder(&dir, ScanMode::Realtime, now, true);
        }
        if now.duration_since(self.last_prune) >= Duration::from_secs(1) {
            self.recent.retain(|_, t| now.duration_since(*t) < REWALK_AFTER + Duration::from_secs(2));
            self.last_prune = now;
        }
        while let Some(Reverse((t, _))) = self.deadlines.peek() {
            if *t > now {
                break;
            }
            let Reverse((t, path)) = self.deadlines.pop().expect("peeked");
            if self.pending.get(&path).is_some_and(|p| p.deadline == t) {
                let p = self.pending.remove(&path).expect("just checked");
                self.dispatch(path, p.mode);
            }
        }
    }

    fn dispatch(&self, path: PathBuf, mode: ScanMode) {
        let mut h = DefaultHasher::new();
        path.hash(&mut h);
        let shard = (h.finish() % self.shards.len() as u64) as usize;
        // Blocking here is back-pressure: the event channel fills, and a full
        // channel becomes a rescan rather than a loss.
        let _ = self.shards[shard].send((path, mode));
    }

    /// On shutdown: everything still waiting is looked at now.
    fn flush(&mut self) {
        let mut paths: Vec<(PathBuf, ScanMode)> = self.pending.drain().map(|(p, w)| (p, w.mode)).collect();
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        self.deadlines.clear();
        for (p, mode) in paths {
            self.dispatch(p, mode);
        }
    }
}
