//! The writer thread: the only thread that records. It owns the Recorder (alert
//! files + SQLite) and the VirusTotal ledger, and turns what the checkers read and
//! what the VirusTotal worker answers into rows and alerts, committing whenever it
//! runs out of work.
//!
//! File changes go first. VirusTotal answers come on their own channel and are
//! held for up to `VT_GROUP`, then recorded together in one transaction with one
//! alert sync; a file change arriving meanwhile joins that transaction instead of
//! waiting for it. A change's alert so waits for one answer's bookkeeping at
//! most, where it used to wait for a transaction and two `fdatasync` per answer.
//!
//! Nor does it wait for the disk: a commit's alert sync runs on the sink's sync
//! thread, and the changes arriving meanwhile are recorded (their alerts written
//! out) and join the commit, which syncs once more for them. The database
//! commit still comes only after every alert it records is durable.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, never, select};

use super::Control;
use crate::config::Config;
use crate::fim::ScanMode;
use crate::hash::ReadResult;
use crate::journal::RecordError;
use crate::model::FileState;
use crate::presence;
use crate::record::Recorder;
use crate::scan::ScanOptions;
use crate::textutil::{Chain, escape_path};
use crate::virustotal::ledger::Ledger;
use crate::virustotal::worker::{Link, VtMsg};

/// What the writer thread is asked to do. Moved once through a channel: the
/// size gap between variants is not worth an allocation per file.
#[allow(clippy::large_enum_variant)]
pub(super) enum Msg {
    /// A checker read a file (or failed to).
    Read { path: PathBuf, mode: ScanMode, result: ReadResult },
    /// A checker found nothing monitorable at `path`: it, or everything recorded
    /// under it, may be gone.
    Gone(PathBuf, ScanMode),
    /// Run a full scan.
    Scan,
    /// Reopen the alert files.
    Reopen,
}

/// Pause after a batch could not be recorded, before trying again with a scan.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// How long a VirusTotal answer may wait to be recorded with the ones after it.
/// Recording one at a time cost a transaction and two `fdatasync` per answer,
/// and a file change arriving during those waited for them.
const VT_GROUP: Duration = Duration::from_millis(100);

/// At most this many held answers in one group, so its transaction stays short.
const VT_GROUP_MAX: usize = 256;

/// A commit takes in file changes during its syncs for this long; then it waits
/// for the disk, so a steady stream of changes cannot put it off for ever. Not
/// a count of syncs: with changes back to back, a change arrives during every
/// sync, and stopping after a few of them made every few changes wait for one.
const SYNC_TAKE_FOR: Duration = Duration::from_millis(100);

/// What the writer does next. Built and consumed at once, like `Msg`.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// A file change or a control message: always first.
    Msg(Msg),
    /// Count a request against the persisted budget. Recorded at once, so a crash
    /// cannot hand out fresh budget; it syncs no alert, so it is cheap.
    Requested(i64),
    /// The held VirusTotal answers are due.
    Answers,
}

/// The writer's two inputs and the VirusTotal messages held for the next group.
pub(super) struct Inbox {
    rx: Receiver<Msg>,
    vt_rx: Receiver<VtMsg>,
    /// A closed channel is swapped for `never()`; these say which.
    open: (bool, bool),
    held: VecDeque<VtMsg>,
    /// When the oldest held message arrived.
    held_since: Option<Instant>,
    /// Taken from `rx` during a commit but not handled there (a scan, a reopen): next.
    front: VecDeque<Msg>,
}

impl Inbox {
    pub(super) fn new(rx: Receiver<Msg>, vt_rx: Receiver<VtMsg>) -> Inbox {
        Inbox { rx, vt_rx, open: (true, true), held: VecDeque::new(), held_since: None, front: VecDeque::new() }
    }

    fn close_changes(&mut self) {
        self.rx = never();
        self.open.0 = false;
    }

    /// The next step; `None` once both channels are closed and nothing is held.
    fn next(&mut self) -> Option<Step> {
        if let Some(m) = self.front.pop_front() {
            return Some(Step::Msg(m));
        }
        loop {
            match self.rx.try_recv() {
                Ok(m) => return Some(Step::Msg(m)),
                Err(TryRecvError::Disconnected) if self.open.0 => self.close_changes(),
                Err(_) => {}
            }
            let closed = self.open == (false, false);
            let wait = match self.held_since {
                None if closed => return None,
                None => Duration::from_secs(3600),
                // Stopping: what is held is recorded now, not at the end of the group.
                Some(_) if closed => return Some(Step::Answers),
                Some(t) if t.elapsed() >= VT_GROUP || self.held.len() >= VT_GROUP_MAX => return Some(Step::Answers),
                Some(t) => VT_GROUP.saturating_sub(t.elapsed()),
            };
            select! {
                recv(self.rx) -> m => match m {
                    Ok(m) => return Some(Step::Msg(m)),
                    Err(_) => self.close_changes(),
                },
                recv(self.vt_rx) -> m => match m {
                    Ok(VtMsg::Requested { time_ms }) => return Some(Step::Requested(time_ms)),
                    // Answers and key changes keep their order: a refusal recorded
                    // after the key change it preceded would stop lookups again.
                    Ok(m) => {
                        self.held_since.get_or_insert_with(Instant::now);
                        self.held.push_back(m);
                    }
                    Err(_) => {
                        self.vt_rx = never();
                        self.open.1 = false;
                    }
                },
                default(wait) => {}
            }
        }
    }
}

/// The writer thread's state: the only thread that records.
pub(super) struct WriterThread {
    pub(super) cfg: Arc<Config>,
    pub(super) rec: Recorder,
    pub(super) scan_queued: Arc<AtomicBool>,
    pub(super) ctrl: Sender<Control>,
    /// VirusTotal, when on: the writer's side and the worker's link.
    pub(super) vt: Option<(Ledger, Link)>,
}

impl WriterThread {
    /// Commits whenever it runs out of work, so an alert reaches disk within
    /// milliseconds of its event; then acknowledges the VirusTotal answers it
    /// recorded and wakes the worker if anything was queued.
    pub(super) fn run(mut self, mut inbox: Inbox) -> Result<(), RecordError> {
        let mut acks = Vec::new();
        while let Some(step) = inbox.next() {
            let ledger_before = self.vt.as_ref().map(|(l, _)| l.flags());
            // Only these write alerts: their success says writing works again.
            let writes_alerts = !matches!(step, Step::Requested(_));
            let batch = match step {
                Step::Msg(msg) => self.batch(msg, &mut inbox),
                Step::Requested(time_ms) => {
                    self.vt_msg(VtMsg::Requested { time_ms }, &mut acks).and_then(|()| self.rec.commit())
                }
                Step::Answers => self.answers(&mut inbox, &mut acks),
            };
            if let Err(e) = &batch {
                // No new lookups while nothing can be recorded: their answers would
                // be rolled back, and the quota spent on them lost.
                if let Some((_, link)) = &self.vt {
                    link.set_recording(false);
                }
                // A full disk, say. Undo the batch whole; what it recorded is found
                // again by a full scan once writing works, so nothing is lost.
                tracing::error!(
                    "cannot record changes: {}; the database and alert files are left as they were, \
                     and a full scan will report what was missed once writing works again",
                    Chain(e)
                );
                if let Err(e) = self.rec.recover() {
                    tracing::error!("cannot repair the alert files yet: {}", Chain(&e));
                }
                // The alerts the ledger's flags stand for were rolled back too.
                if let (Some((ledger, _)), Some(flags)) = (&mut self.vt, ledger_before) {
                    ledger.set_flags(flags);
                }
                std::thread::sleep(RETRY_AFTER_FAILURE);
                let _ = self.ctrl.send(Control::Scan);
            }
            // Acknowledged once recorded. After a failed batch the answers were
            // rolled back: their hashes stay "in flight" (not asked again) until a
            // batch succeeds, then are asked again; meanwhile nothing new is asked.
            if let (Some((_, link)), true) = (&self.vt, batch.is_ok()) {
                if writes_alerts {
                    link.set_recording(true);
                }
                for sha in acks.drain(..) {
                    link.ack(sha);
                }
                if self.rec.take_queued() {
                    link.wake();
                }
            }
        }
        self.rec.set_state(crate::daemon_state::STOPPED, &crate::clock::unix_now().to_string())?;
        self.rec.commit()
    }

    /// Handles `first` and whatever else is queued, then commits.
    fn batch(&mut self, first: Msg, inbox: &mut Inbox) -> Result<(), RecordError> {
        // A change with nothing behind it is alerted at once; a burst is written
        // out in one go at the commit.
        let rx = &inbox.rx;
        self.rec.set_alert_early(rx.is_empty());
        self.handle(first)?;
        for msg in rx.try_iter().take(4096) {
            self.rec.set_alert_early(rx.is_empty());
            self.handle(msg)?;
        }
        self.commit(inbox)
    }

    /// Commits what was recorded. The alerts are synced on the sink's sync
    /// thread, and a file change arriving meanwhile is recorded at once, its
    /// alert written out, instead of waiting the half millisecond for the disk;
    /// it joins this commit, which syncs once more for it before the database
    /// commit. A scan or a reopen waits for the commit.
    fn commit(&mut self, inbox: &mut Inbox) -> Result<(), RecordError> {
        let started = Instant::now();
        while self.rec.journal().start_sync()? {
            let done = self.rec.journal().sync_done();
            // Once a scan or a reopen waits for this commit, the changes behind it
            // wait too: a change made after a SIGHUP must reach the new alert file.
            let taking = started.elapsed() < SYNC_TAKE_FOR && inbox.front.is_empty();
            let mut changes = if taking { inbox.rx.clone() } else { never() };
            let answer = loop {
                select! {
                    recv(done) -> answer => break answer,
                    recv(changes) -> m => match m {
                        Ok(m @ (Msg::Read { .. } | Msg::Gone(..))) => {
                            // A burst is written out at the next sync, in one go.
                            self.rec.set_alert_early(changes.is_empty());
                            self.handle(m)?;
                        }
                        // A scan or a reopen commits by itself, which would wait for
                        // (and take) this sync's answer: after this commit, and
                        // before any change that came after it.
                        Ok(m) => {
                            inbox.front.push_back(m);
                            changes = never();
                        }
                        Err(_) => {
                            changes = never();
                            inbox.close_changes();
                        }
                    },
                }
            };
            self.rec.journal().finish_sync(answer)?;
        }
        self.rec.commit()
    }

    /// Records the held VirusTotal messages in one transaction. A file change
    /// arriving meanwhile joins it: its alert goes out with this commit instead
    /// of after it; the answers not reached yet stay held (and due).
    fn answers(&mut self, inbox: &mut Inbox, acks: &mut Vec<String>) -> Result<(), RecordError> {
        while let Some(m) = inbox.held.pop_front() {
            self.vt_msg(m, acks)?;
            if let Ok(msg) = inbox.rx.try_recv() {
                if inbox.held.is_empty() {
                    inbox.held_since = None;
                }
                return self.batch(msg, inbox);
            }
        }
        inbox.held_since = None;
        self.commit(inbox)
    }

    fn vt_msg(&mut self, msg: VtMsg, acks: &mut Vec<String>) -> Result<(), RecordError> {
        let Some((ledger, _)) = &mut self.vt else { return Ok(()) };
        let rec = &mut self.rec;
        match msg {
            VtMsg::Requested { time_ms } => ledger.requested(rec.journal(), time_ms),
            VtMsg::Answered { sha256, answer, status, latency } => {
                acks.push(sha256.clone());
                ledger.answered(rec.journal(), &sha256, &answer, status, latency)
            }
            VtMsg::KeyChanged => ledger.key_changed(rec.journal()),
        }
    }

    fn handle(&mut self, msg: Msg) -> Result<(), RecordError> {
        let rec = &mut self.rec;
        match msg {
            Msg::Read { path, mode, result: Ok((md, digests)) } => {
                #[cfg(debug_assertions)]
                injected_panic(&path);
                let after = FileState::from_metadata(&md, digests, rec.names());
                rec.file_read(path, after, true, mode, false)?;
            }
            Msg::Read { path, mode, result: Err(e) } if presence::read_says_gone(&e) => {
                gone(&self.cfg, rec, path, mode)?;
            }
            Msg::Gone(path, mode) => gone(&self.cfg, rec, path, mode)?,
            Msg::Read { path, result: Err(e), .. } => {
                tracing::warn!(path = %escape_path(&path), "cannot read file: {e}");
            }
            Msg::Scan => {
                self.scan_queued.store(false, Ordering::SeqCst);
                let cfg = &self.cfg;
                // Progress is worth showing for the baseline only; later scans are quick.
                let baseline = !rec.store().has_completed_scan()?;
                let opts = ScanOptions {
                    mode: ScanMode::Scheduled,
                    defer_recent: Some(cfg.realtime.settle),
                    progress: baseline,
                };
                let mut summary = crate::scan::scan(cfg, rec, opts)?;
                tracing::info!("{summary}");
                rec.set_state(crate::daemon_state::WATCHES, &summary.realtime_folders.to_string())?;
                let deferred = std::mem::take(&mut summary.deferred);
                if !deferred.is_empty() {
                    tracing::debug!(
                        files = deferred.len(),
                        "still changing during the scan; checking them once settled"
                    );
                    // If the coalescer is gone we are stopping: the next start's scan redoes them.
                    let _ = self.ctrl.send(Control::Recheck(deferred));
                }
            }
            Msg::Reopen => {
                rec.journal().reopen_alerts()?;
                if let Some((ledger, _)) = &mut self.vt
                    && let Err(e) = ledger.reopen()
                {
                    tracing::error!("{e}");
                }
            }
        }
        Ok(())
    }
}

/// Fault injection for the tests, in debug builds only: the writer panics, as a
/// bug would, on a file named by `FIMVT_TEST_WRITER_PANIC`.
#[cfg(debug_assertions)]
fn injected_panic(path: &Path) {
    if let Some(name) = std::env::var_os("FIMVT_TEST_WRITER_PANIC")
        && path.file_name() == Some(&name)
    {
        panic!("injected writer panic (FIMVT_TEST_WRITER_PANIC)");
    }
}

/// `path` is not a monitored file now: report it deleted if it was recorded, or
/// every recorded file under it that is gone (a folder deleted or moved out).
fn gone(cfg: &Config, rec: &mut Recorder, path: PathBuf, mode: ScanMode) -> Result<(), RecordError> {
    if rec.store().get_file(&path)?.is_some() {
        // Re-created in the meantime: its own event brings the comparison.
        if presence::look(cfg, &path).is_gone() {
            rec.file_gone(path, mode, false)?;
        }
        return Ok(());
    }
    for p in rec.store().paths_under(&path)? {
        if presence::look(cfg, &p).is_gone() {
            rec.file_gone(p, mode, false)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Verdict;
    use crate::virustotal::client::Answer;
    use crossbeam_channel::unbounded;

    fn answered(sha: &str) -> VtMsg {
        VtMsg::Answered {
            sha256: sha.into(),
            answer: Answer::Verdict(Verdict::not_found(sha)),
            status: 404,
            latency: Duration::ZERO,
        }
    }

    fn kind(step: Option<Step>) -> &'static str {
        match step {
            Some(Step::Msg(_)) => "change",
            Some(Step::Requested(_)) => "requested",
            Some(Step::Answers) => "answers",
            None => "end",
        }
    }

    #[test]
    fn changes_go_first_and_answers_wait_for_their_group() {
        let (tx, rx) = unbounded();
        let (vt_tx, vt_rx) = unbounded();
        let mut inbox = Inbox::new(rx, vt_rx);
        let start = Instant::now();
        vt_tx.send(answered("a")).unwrap();
        vt_tx.send(VtMsg::KeyChanged).unwrap();
        vt_tx.send(VtMsg::Requested { time_ms: 7 }).unwrap();
        tx.send(Msg::Reopen).unwrap();
        assert_eq!(kind(inbox.next()), "change", "a change goes before VirusTotal messages sent earlier");
        assert_eq!(kind(inbox.next()), "requested", "a request is counted at once, not held");
        assert_eq!(inbox.held.len(), 2, "the answer and the key change are held, in order");
        assert!(matches!(inbox.held[1], VtMsg::KeyChanged));
        tx.send(Msg::Scan).unwrap();
        assert_eq!(kind(inbox.next()), "change", "a change arriving while answers are held goes at once");
        assert_eq!(kind(inbox.next()), "answers");
        assert!(start.elapsed() >= VT_GROUP, "the answers were held for their group");
    }

    #[test]
    fn held_answers_are_recorded_before_the_writer_ends() {
        let (tx, rx) = unbounded::<Msg>();
        let (vt_tx, vt_rx) = unbounded();
        let mut inbox = Inbox::new(rx, vt_rx);
        vt_tx.send(answered("a")).unwrap();
        drop(vt_tx);
        drop(tx);
        assert_eq!(kind(inbox.next()), "answers");
        inbox.held.clear();
        inbox.held_since = None;
        assert_eq!(kind(inbox.next()), "end");
    }

    #[test]
    fn a_full_group_goes_without_waiting() {
        let (_tx, rx) = unbounded::<Msg>();
        let (vt_tx, vt_rx) = unbounded();
        let mut inbox = Inbox::new(rx, vt_rx);
        for i in 0..VT_GROUP_MAX + 10 {
            vt_tx.send(answered(&i.to_string())).unwrap();
        }
        assert_eq!(kind(inbox.next()), "answers");
        assert_eq!(inbox.held.len(), VT_GROUP_MAX, "a full group goes as soon as it is full");
    }
}
