//! `fimvt run`: wiring only. Channels, threads, signals and the shutdown order;
//! the decisions live in `watch`, `scan`, `record`, `config` and `writer`.
//!
//! ```text
//! notify thread --WatchEvent (bounded; full => lost flag)--> coalescer
//! coalescer: per-path deadlines (settle), folder walks, periodic and lost-event
//!            rescans --path, sharded by hash--> checkers (N threads)
//! checkers: lstat + hash --Msg--> writer (owns the Recorder: alerts + SQLite)
//! alert-sync thread (the sink's): fdatasync of the alert files for the writer's commits
//! virustotal worker --VtMsg (a channel of its own)--> writer (file changes first)
//! checkpoint thread: WAL checkpoints on its own connection, every second
//! signal thread: TERM/INT -> coalescer shutdown, USR1 -> rescan, HUP -> reopen
//! ```
//!
//! One path always goes to the same checker, so two looks at one file can never
//! reach the writer out of order.

use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

use crate::config::{Config, PathClass};
use crate::daemon_state::{self, LookupState};
use crate::fim::ScanMode;
use crate::hash::{READ_BUF, hash_file};
use crate::presence::{self, Presence};
use crate::record::Recorder;
use crate::textutil::escape_path;
use crate::virustotal::ledger::Ledger;
use crate::virustotal::worker::{self, VtMsg};
use crate::virustotal::{self, Status};
use crate::watch::{self, Urgency, WatchEvent};

mod writer;
use writer::{Inbox, Msg, WriterThread};

enum Control {
    Shutdown,
    Scan,
    /// Files a scan found still changing: look at them once they settle.
    Recheck(Vec<PathBuf>),
    /// The writer thread ended. Before shutdown that means it died (a bug):
    /// nothing could be recorded any more, so the daemon stops.
    WriterStopped,
}

/// Tells the coalescer when the writer thread ends, however it ends (a panic
/// unwinds through this too). After a normal shutdown nobody is listening.
struct WriterStopped(Sender<Control>);

impl Drop for WriterStopped {
    fn drop(&mut self) {
        let _ = self.0.send(Control::WriterStopped);
    }
}

/// Runs the daemon until SIGTERM or SIGINT. The data folder lock is held by the
/// caller. `config_path` is read again on SIGHUP for a new VirusTotal key.
pub fn run(cfg: Config, config_path: PathBuf, mut rec: Recorder) -> anyhow::Result<()> {
    // Before any work starts: a signal arriving while the start-up scan runs is
    // taken (and handled once the signal thread runs), never the default action
    // that would kill the daemon without its clean stop.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
    let cfg = Arc::new(cfg);
    let checkers = cfg.scan.threads.max(1);
    let (event_tx, event_rx) = bounded::<WatchEvent>(cfg.realtime.queue_capacity);
    let (ctrl_tx, ctrl_rx) = unbounded::<Control>();
    // Unbounded so a checker never blocks on the writer during a long scan: what
    // waits here is bounded by what the coalescer dispatched.
    let (msg_tx, msg_rx) = unbounded::<Msg>();
    let lost = Arc::new(AtomicBool::new(false));
    let scan_queued = Arc::new(AtomicBool::new(false));

    // Watches first, then the start-up scan: nothing can slip between the two.
    let limit_hit = Arc::new(AtomicBool::new(false));
    let watch = watch::start(&cfg, event_tx, lost.clone(), limit_hit.clone())?;
    let has_baseline = rec.store().has_completed_scan()?;
    if cfg.scan.scan_on_start || !has_baseline {
        if !cfg.scan.scan_on_start {
            tracing::info!("no baseline yet: scanning once although scan_on_start is false");
        }
        scan_queued.store(true, Ordering::SeqCst);
        msg_tx.send(Msg::Scan).expect("writer channel open");
    }

    // What `fimvt status` reads, whether or not we are still running then.
    rec.set_state(daemon_state::PID, &std::process::id().to_string())?;
    rec.set_state(daemon_state::STARTED, &crate::record::unix_now().to_string())?;
    rec.set_state(daemon_state::STOPPED, "")?;
    let watched: Vec<String> = cfg
        .directories
        .iter()
        .filter(|d| d.realtime && !watch.unwatched.contains(&d.path))
        .map(|d| escape_path(&d.path))
        .collect();
    rec.set_state(daemon_state::WATCHED, &watched.join("\n"))?;
    let unwatched: Vec<String> = watch.unwatched.iter().map(|p| escape_path(p)).collect();
    rec.set_state(daemon_state::UNWATCHED, &unwatched.join("\n"))?;
    // VirusTotal answers have a channel of their own, so the writer can take file
    // changes first (see daemon/writer.rs).
    let (vt_tx, vt_rx) = unbounded::<VtMsg>();
    // VirusTotal: said once, at start, when it is off and why.
    let (ledger, vt_worker) = match virustotal::status(&cfg) {
        Status::Off(why) => {
            tracing::info!("VirusTotal lookups are off: {why}; running as a plain FIM");
            rec.set_state(daemon_state::VIRUSTOTAL, &LookupState::Off(why.into()).encode())?;
            // Or the writer would wait for answers that never come, at shutdown.
            drop(vt_tx);
            (None, None)
        }
        Status::On(policy, settings) => {
            rec.set_state(daemon_state::VIRUSTOTAL, &LookupState::Ok.encode())?;
            rec.set_virustotal(policy.clone());
            let ledger = Ledger::new(policy, &cfg.general.data_dir)?;
            let handle = worker::spawn(settings, cfg.db_path(), move |m| {
                let _ = vt_tx.send(m);
            })?;
            tracing::info!(
                requests_per_minute = cfg.virustotal.requests_per_minute,
                daily_quota = cfg.virustotal.daily_quota,
                "VirusTotal lookups are on"
            );
            (Some(ledger), Some(handle))
        }
    };
    rec.commit()?;
    // Checkpoints run beside the writer: an alert never waits for their fsyncs.
    rec.store().disable_auto_checkpoint()?;
    let (checkpoint_stop, checkpoint_rx) = bounded::<()>(0);
    let checkpointer = {
        let store = crate::store::Store::open_existing(&cfg.db_path())?;
        std::thread::Builder::new().name("checkpoint".into()).spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = checkpoint_rx.recv_timeout(CHECKPOINT_EVERY) {
                if let Err(e) = store.checkpoint() {
                    tracing::warn!("WAL checkpoint failed: {e}");
                }
            }
            let _ = store.checkpoint();
        })?
    };
    let writer = {
        let w = WriterThread {
            cfg: cfg.clone(),
            rec,
            scan_queued: scan_queued.clone(),
            ctrl: ctrl_tx.clone(),
            vt: ledger.zip(vt_worker.as_ref().map(|h| h.link())),
        };
        let stopped = WriterStopped(ctrl_tx.clone());
        std::thread::Builder::new().name("writer".into()).spawn(move || {
            let _stopped = stopped;
            w.run(Inbox::new(msg_rx, vt_rx))
        })?
    };
    let key_setter = vt_worker.as_ref().map(|h| h.key_setter());
    let mut shard_txs = Vec::new();
    let mut checker_handles = Vec::new();
    for i in 0..checkers {
        let (tx, rx) = bounded::<(PathBuf, ScanMode)>(4096);
        shard_txs.push(tx);
        let (cfg, msg_tx) = (cfg.clone(), msg_tx.clone());
        checker_handles
            .push(std::thread::Builder::new().name(format!("checker-{i}")).spawn(move || checker(&cfg, rx, msg_tx))?);
    }
    let signal_handle = signals.handle();
    let signal_thread = {
        let (ctrl_tx, msg_tx) = (ctrl_tx.clone(), msg_tx.clone());
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            for sig in signals.forever() {
                match sig {
                    SIGHUP => {
                        tracing::info!("SIGHUP: reopening alert files, reloading the VirusTotal key");
                        let _ = msg_tx.send(Msg::Reopen);
                        reload_key(&config_path, key_setter.as_ref());
                    }
                    SIGUSR1 => {
                        tracing::info!("SIGUSR1: full scan requested");
                        let _ = ctrl_tx.send(Control::Scan);
                    }
                    _ => {
                        tracing::info!("signal {sig}: finishing in-flight work and stopping");
                        let _ = ctrl_tx.send(Control::Shutdown);
                    }
                }
            }
        })?
    };
    drop(ctrl_tx);
    tracing::info!(
        folders = cfg.directories.len(),
        realtime = cfg.directories.iter().filter(|d| d.realtime).count() - watch.unwatched.len(),
        "fimvt is running"
    );

    let mut co = Coalescer {
        cfg: &cfg,
        pending: HashMap::new(),
        deadlines: BinaryHeap::new(),
        rewalks: BinaryHeap::new(),
        recent: HashMap::new(),
        last_prune: Instant::now(),
        shards: shard_txs,
        msg_tx: msg_tx.clone(),
        lost,
        scan_queued,
        next_scan: Instant::now() + scan_period(&cfg, !watch.unwatched.is_empty()),
        degraded: !watch.unwatched.is_empty(),
        limit_hit,
        watch,
        missing_roots: Vec::new(),
    };
    drop(msg_tx);
    co.run(&event_rx, &ctrl_rx);

    // Shutdown order: no new events; checkers finish what was dispatched; the
    // signal thread goes (it holds a sender too); the writer records what is
    // left, commits, and ends when its channel is empty and closed.
    drop(co);
    for h in checker_handles {
        let _ = h.join();
    }
    signal_handle.close();
    let _ = signal_thread.join();
    // In-flight lookups are abandoned; their hashes stay queued for the next start.
    if let Some(h) = vt_worker {
        h.stop();
    }
    writer.join().map_err(|_| {
        anyhow::anyhow!(
            "the writer thread panicked (its message is above); what it had not committed is found again at the next start"
        )
    })??;
    drop(checkpoint_stop);
    let _ = checkpointer.join();
    tracing::info!("stopped cleanly");
    Ok(())
}

/// A path waiting to be looked at.
struct Pending {
    deadline: Instant,
    /// Realtime unless only a scan asked for this look.
    mode: ScanMode,
    /// When the first event of this wait arrived.
    first: Instant,
}

/// Holds each path until its deadline, then dispatches it to its checker.
struct Coalescer<'a> {
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
    /// Some folder could not be watched: scans run at least every `DEGRADED_PERIOD`.
    degraded: bool,
    /// Set by the watcher when it hits the watch limit (even if its event was lost).
    limit_hit: Arc<AtomicBool>,
    watch: watch::Watch,
    /// Realtime roots that were deleted: watched again when they reappear.
    missing_roots: Vec<PathBuf>,
}

/// How often the WAL is checkpointed beside the writer.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// When a new folder is walked the second time (see `Coalescer::walk_new_folder`).
const REWALK_AFTER: Duration = Duration::from_millis(50);

/// How often full scans run when part of the tree has no inotify watch.
const DEGRADED_PERIOD: Duration = Duration::from_secs(600);

fn scan_period(cfg: &Config, degraded: bool) -> Duration {
    if degraded { cfg.scan.frequency.min(DEGRADED_PERIOD) } else { cfg.scan.frequency }
}

impl Coalescer<'_> {
    fn run(&mut self, events: &Receiver<WatchEvent>, ctrl: &Receiver<Control>) {
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
            self.dispatch_due();
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
            !e.file_type().is_dir() || matches!(self.cfg.classify(e.path(), e.file_type()), PathClass::Dir { .. })
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

/// Looks at each dispatched path: reads a monitored file, or reports it gone.
fn checker(cfg: &Config, paths: Receiver<(PathBuf, ScanMode)>, out: Sender<Msg>) {
    let mut buf = vec![0u8; READ_BUF];
    for (path, mode) in paths.iter() {
        let msg = match presence::look(cfg, &path) {
            Presence::Unknown(e) => {
                // It may well exist: the next full scan looks again.
                tracing::warn!(path = %escape_path(&path), "cannot look at it: {e}");
                continue;
            }
            // Not there, or not a file (a folder: everything recorded under it
            // may be gone): the writer decides what was recorded there.
            Presence::Gone | Presence::Other(_) => Msg::Gone(path, mode),
            Presence::File(_) => match cfg.file_rules_match(&path) {
                Some(dir) => {
                    let d = &cfg.directories[dir];
                    let result = hash_file(&path, d.follow_symlinks, d.max_file_size, &mut buf);
                    Msg::Read { path, mode, result }
                }
                None => continue,
            },
        };
        if out.send(msg).is_err() {
            return;
        }
    }
}

/// Re-reads the configuration for the VirusTotal key (SIGHUP). A bad file keeps
/// the key in use; the error names what is wrong.
fn reload_key(config_path: &Path, setter: Option<&worker::KeySetter>) {
    let Some(setter) = setter else { return };
    match Config::load(config_path) {
        Ok(c) => match c.virustotal.api_key {
            Some(key) => setter.set(key),
            None => tracing::warn!("the reloaded configuration has no VirusTotal key; keeping the one in use"),
        },
        Err(e) => tracing::error!("cannot reload the configuration, keeping the key in use: {e}"),
    }
}
