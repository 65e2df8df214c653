//! `fimvt run`: wiring only. Channels, threads, signals and the shutdown order;
//! the decisions live in `watch`, `coalesce`, `checker`, `writer`, `scan` and
//! `record`.
//!
//! ```text
//! notify thread --WatchEvent (bounded; full => lost flag)--> coalescer
//! coalescer (the main thread, `coalesce.rs`): per-path deadlines (settle), folder walks, periodic and lost-event
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Sender, bounded, unbounded};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::config::Config;
use crate::daemon_state::{self, LookupState};
use crate::fim::ScanMode;
use crate::record::Recorder;
use crate::textutil::escape_path;
use crate::virustotal::ledger::Ledger;
use crate::virustotal::worker::{self, VtMsg};
use crate::virustotal::{self, Status};
use crate::watch::{self, WatchEvent};

mod checker;
mod coalesce;
mod writer;
use coalesce::Coalescer;
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

/// How often the WAL is checkpointed beside the writer.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Runs the daemon until SIGTERM or SIGINT. The data folder lock is held by the
/// caller. `config_path` is read again on SIGHUP for a new VirusTotal key.
pub fn run(cfg: Config, config_path: PathBuf, mut rec: Recorder) -> anyhow::Result<()> {
    // Before any work starts: a signal arriving while the start-up scan runs is
    // taken (and handled once the signal thread runs), never the default action
    // that would kill the daemon without its clean stop.
    let signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
    let cfg = Arc::new(cfg);
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
    publish_start(&cfg, &mut rec, &watch)?;
    // VirusTotal answers have a channel of their own, so the writer can take file
    // changes first (see daemon/writer.rs).
    let (vt_tx, vt_rx) = unbounded::<VtMsg>();
    let (ledger, vt_worker) = start_virustotal(&cfg, &mut rec, vt_tx)?;
    rec.commit()?;
    let checkpointer = Checkpointer::spawn(&cfg, &rec)?;
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
    let mut shards = Vec::new();
    let mut checkers = Vec::new();
    for i in 0..cfg.scan.threads.max(1) {
        let (tx, rx) = bounded::<(PathBuf, ScanMode)>(4096);
        shards.push(tx);
        let (cfg, msg_tx) = (cfg.clone(), msg_tx.clone());
        checkers.push(
            std::thread::Builder::new()
                .name(format!("checker-{i}"))
                .spawn(move || checker::checker(&cfg, rx, msg_tx))?,
        );
    }
    let key_setter = vt_worker.as_ref().map(|h| h.key_setter());
    let (signal_handle, signal_thread) =
        spawn_signal_thread(signals, ctrl_tx.clone(), msg_tx.clone(), config_path, key_setter)?;
    drop(ctrl_tx);
    tracing::info!(
        folders = cfg.directories.len(),
        realtime = cfg.directories.iter().filter(|d| d.realtime).count() - watch.unwatched.len(),
        "fimvt is running"
    );

    let mut co = Coalescer::new(&cfg, watch, shards, msg_tx, lost, limit_hit, scan_queued);
    co.run(&event_rx, &ctrl_rx);

    // Shutdown order: no new events; checkers finish what was dispatched; the
    // signal thread goes (it holds a sender too); the writer records what is
    // left, commits, and ends when its channel is empty and closed.
    drop(co);
    for h in checkers {
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
    checkpointer.stop();
    tracing::info!("stopped cleanly");
    Ok(())
}

/// What `fimvt status` reads, whether or not we are still running then.
fn publish_start(cfg: &Config, rec: &mut Recorder, watch: &watch::Watch) -> anyhow::Result<()> {
    rec.set_state(daemon_state::PID, &std::process::id().to_string())?;
    rec.set_state(daemon_state::STARTED, &crate::clock::unix_now().to_string())?;
    rec.set_state(daemon_state::STOPPED, "")?;
    let watched: Vec<String> = cfg
        .directories
        .iter()
        .filter(|d| d.realtime && !watch.unwatched.contains(&d.path) && !watch.missing.contains(&d.path))
        .map(|d| escape_path(&d.path))
        .collect();
    rec.set_state(daemon_state::WATCHED, &watched.join("\n"))?;
    let unwatched: Vec<String> = watch.unwatched.iter().map(|p| escape_path(p)).collect();
    rec.set_state(daemon_state::UNWATCHED, &unwatched.join("\n"))?;
    Ok(())
}

/// Starts the VirusTotal worker when lookups are on; says once, at start,
/// whether they are and, if not, why.
fn start_virustotal(
    cfg: &Config,
    rec: &mut Recorder,
    vt_tx: Sender<VtMsg>,
) -> anyhow::Result<(Option<Ledger>, Option<worker::Handle>)> {
    match virustotal::status(cfg) {
        Status::Off(why) => {
            tracing::info!("VirusTotal lookups are off: {why}; running as a plain FIM");
            rec.set_state(daemon_state::VIRUSTOTAL, &LookupState::Off(why.into()).encode())?;
            // Dropping `vt_tx` closes the channel: the writer waits for no answer at shutdown.
            Ok((None, None))
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
            Ok((Some(ledger), Some(handle)))
        }
    }
}

/// PASSIVE WAL checkpoints on a connection of their own, beside the writer: an
/// alert never waits for their fsyncs (the writer's auto-checkpoints are off).
struct Checkpointer {
    stop: Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn spawn(cfg: &Config, rec: &Recorder) -> anyhow::Result<Checkpointer> {
        rec.store().disable_auto_checkpoint()?;
        let (stop, stop_rx) = bounded::<()>(0);
        let store = crate::store::Store::open_existing(&cfg.db_path())?;
        let thread = std::thread::Builder::new().name("checkpoint".into()).spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(CHECKPOINT_EVERY) {
                if let Err(e) = store.checkpoint() {
                    tracing::warn!("WAL checkpoint failed: {e}");
                }
            }
            let _ = store.checkpoint();
        })?;
        Ok(Checkpointer { stop, thread })
    }

    /// A last checkpoint, then the thread ends.
    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// TERM/INT stop the daemon, USR1 asks for a full scan, HUP reopens the alert
/// files and re-reads the VirusTotal key.
fn spawn_signal_thread(
    mut signals: Signals,
    ctrl_tx: Sender<Control>,
    msg_tx: Sender<Msg>,
    config_path: PathBuf,
    key_setter: Option<worker::KeySetter>,
) -> anyhow::Result<(signal_hook::iterator::Handle, std::thread::JoinHandle<()>)> {
    let handle = signals.handle();
    let thread = std::thread::Builder::new().name("signals".into()).spawn(move || {
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
    })?;
    Ok((handle, thread))
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
