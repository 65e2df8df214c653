//! The writer thread: the only thread that records. It owns the Recorder (alert
//! files + SQLite) and the VirusTotal ledger, and turns what the checkers read and
//! what the VirusTotal worker answers into rows and alerts, committing whenever it
//! runs out of work.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::{Control, is_gone};
use crate::attrs::FileState;
use crate::config::Config;
use crate::fim::ScanMode;
use crate::hash::{HashError, ReadResult};
use crate::record::{RecordError, Recorder};
use crate::scan::ScanOptions;
use crate::textutil::escape_path;
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
    /// From the VirusTotal worker.
    Vt(VtMsg),
}

/// Pause after a batch could not be recorded, before trying again with a scan.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// The writer thread's state: the only thread that records.
pub(super) struct Writer {
    pub(super) cfg: Arc<Config>,
    pub(super) rec: Recorder,
    pub(super) scan_queued: Arc<AtomicBool>,
    pub(super) ctrl: Sender<Control>,
    /// VirusTotal, when on: the writer's side and the worker's link.
    pub(super) vt: Option<(Ledger, Link)>,
}

impl Writer {
    /// Commits whenever it runs out of work, so an alert reaches disk within
    /// milliseconds of its event; then acknowledges the VirusTotal answers it
    /// recorded and wakes the worker if anything was queued.
    pub(super) fn run(mut self, rx: Receiver<Msg>) -> Result<(), RecordError> {
        let mut acks = Vec::new();
        while let Ok(msg) = rx.recv() {
            let ledger_before = self.vt.as_ref().map(|(l, _)| l.flags());
            let batch = self.batch(msg, &rx, &mut acks);
            if let Err(e) = &batch {
                // A full disk, say. Undo the batch whole; what it recorded is found
                // again by a full scan once writing works, so nothing is lost.
                tracing::error!(
                    "cannot record changes: {e}; the database and alert files are left as they were, \
                     and a full scan will report what was missed once writing works again"
                );
                if let Err(e) = self.rec.recover() {
                    tracing::error!("cannot repair the alert files yet: {e}");
                }
                // The alerts the ledger's flags stand for were rolled back too.
                if let (Some((ledger, _)), Some(flags)) = (&mut self.vt, ledger_before) {
                    ledger.set_flags(flags);
                }
                std::thread::sleep(RETRY_AFTER_FAILURE);
                let _ = self.ctrl.send(Control::Scan);
            }
            // Acknowledged once recorded. After a failed batch the answers were
            // rolled back: their hashes stay "in flight" (not asked again, no quota
            // burnt while the disk is full) until a batch succeeds, then are asked again.
            if let (Some((_, link)), true) = (&self.vt, batch.is_ok()) {
                for sha in acks.drain(..) {
                    link.ack(sha);
                }
                if self.rec.take_queued() {
                    link.wake();
                }
            }
        }
        self.rec.set_state("stopped", &crate::record::unix_now().to_string())?;
        self.rec.commit()
    }

    /// Handles `first` and whatever else is queued, then commits.
    fn batch(&mut self, first: Msg, rx: &Receiver<Msg>, acks: &mut Vec<String>) -> Result<(), RecordError> {
        self.handle(first, acks)?;
        for msg in rx.try_iter().take(4096) {
            self.handle(msg, acks)?;
        }
        self.rec.commit()
    }

    fn handle(&mut self, msg: Msg, acks: &mut Vec<String>) -> Result<(), RecordError> {
        let rec = &mut self.rec;
        match msg {
            Msg::Read { path, mode, result: Ok((md, digests)) } => {
                let after = FileState::from_metadata(&md, digests, rec.names());
                rec.file_read(path, after, true, mode, false)?;
            }
            Msg::Read { path, mode, result: Err(HashError::Vanished | HashError::NotRegular) }
            | Msg::Gone(path, mode) => {
                gone(&self.cfg, rec, path, mode)?;
            }
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
                rec.set_state("watches", &summary.realtime_folders.to_string())?;
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
                rec.reopen_alerts()?;
                if let Some((ledger, _)) = &mut self.vt
                    && let Err(e) = ledger.reopen()
                {
                    tracing::error!("{e}");
                }
            }
            Msg::Vt(vt) => {
                let Some((ledger, _)) = &mut self.vt else { return Ok(()) };
                match vt {
                    VtMsg::Requested { time_ms } => ledger.requested(rec, time_ms)?,
                    VtMsg::Answered { sha256, answer, status, latency } => {
                        acks.push(sha256.clone());
                        ledger.answered(rec, &sha256, &answer, status, latency)?;
                    }
                    VtMsg::KeyChanged => ledger.key_changed(rec)?,
                }
            }
        }
        Ok(())
    }
}

/// `path` is not a monitored file now: report it deleted if it was recorded, or
/// every recorded file under it that is gone (a folder deleted or moved out).
fn gone(cfg: &Config, rec: &mut Recorder, path: PathBuf, mode: ScanMode) -> Result<(), RecordError> {
    // Anything but a clear "not there" counts as still there: no false deletion.
    let still_a_file = |p: &Path| match std::fs::symlink_metadata(p) {
        Ok(m) => m.is_file() || (m.is_symlink() && cfg.follows_symlinks(p)),
        Err(e) => !is_gone(&e),
    };
    if rec.store().get_file(&path)?.is_some() {
        // Re-created in the meantime: its own event brings the comparison.
        if !still_a_file(&path) {
            rec.file_gone(path, mode, false)?;
        }
        return Ok(());
    }
    for p in rec.store().paths_under(&path)? {
        if !still_a_file(&p) {
            rec.file_gone(p, mode, false)?;
        }
    }
    Ok(())
}
