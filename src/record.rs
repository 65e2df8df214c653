//! The recorder: the single writer of fimvt's state. It owns the database writer
//! connection and the alert sink, compares what was read with what was recorded,
//! raises the alert, appends the history and updates the current state. Scans and
//! the realtime pipeline both record through it, so they decide alike.
//!
//! Ordering is the point of this module: an alert is synced to disk before the
//! transaction that records its change commits, so a crash can repeat an alert but
//! never lose one. It also collects the hand-offs for VirusTotal lookups: every
//! alerted file whose SHA-256 is new or changed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::alert::AlertSink;
use crate::attrs::{FileState, NameCache};
use crate::fim::{Attr, EventKind, FimEvent, LookupRequest, ScanMode, changed_attributes};
use crate::store::{Store, StoreError};

/// Writes are committed (alerts synced first) at least every so many changes...
const BATCH_OPS: usize = 20_000;
/// ...and at least this often, so a long scan keeps its progress.
const BATCH_TIME: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("writing alerts: {0}")]
    Alerts(#[source] std::io::Error),
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Recorder {
    store: Store,
    sink: AlertSink,
    names: NameCache,
    pending: usize,
    last_commit: Instant,
    in_transaction: bool,
    handoffs: Vec<LookupRequest>,
}

impl Recorder {
    pub fn new(store: Store, sink: AlertSink) -> Recorder {
        Recorder {
            store,
            sink,
            names: NameCache::default(),
            pending: 0,
            last_commit: Instant::now(),
            in_transaction: false,
            handoffs: Vec::new(),
        }
    }

    /// Read access to the store (stat index, lookups).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn names(&mut self) -> &mut NameCache {
        &mut self.names
    }

    fn begin(&mut self) -> Result<(), RecordError> {
        if !self.in_transaction {
            self.store.begin()?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Records a file as just read (`after`), comparing with its row. `known`
    /// false skips the row lookup (the caller knows there is none). In a baseline
    /// nothing is alerted. Returns what was alerted, if anything.
    pub fn file_read(
        &mut self,
        path: PathBuf,
        after: FileState,
        known: bool,
        mode: ScanMode,
        baseline: bool,
    ) -> Result<Option<EventKind>, RecordError> {
        self.begin()?;
        let before = if known {
            self.store.get_file(&path)?
        } else {
            None
        };
        self.record(path, before, Some(after), mode, baseline)
    }

    /// Records that `path` is no longer a monitored file (deleted, moved out, or
    /// replaced by something that is not a regular file), if it was recorded.
    pub fn file_gone(
        &mut self,
        path: PathBuf,
        mode: ScanMode,
        baseline: bool,
    ) -> Result<Option<EventKind>, RecordError> {
        self.begin()?;
        let before = self.store.get_file(&path)?;
        self.record(path, before, None, mode, baseline)
    }

    /// Notes that `path` was seen unchanged.
    pub fn touch(&mut self, path: &Path) -> Result<(), RecordError> {
        self.begin()?;
        self.store.touch_file(path, unix_now())?;
        self.pending += 1;
        Ok(())
    }

    /// Drops the row of a path the configuration no longer covers (no alert).
    pub fn forget(&mut self, path: &Path) -> Result<(), RecordError> {
        self.begin()?;
        self.store.delete_file(path)?;
        self.pending += 1;
        Ok(())
    }

    fn record(
        &mut self,
        path: PathBuf,
        before: Option<FileState>,
        after: Option<FileState>,
        mode: ScanMode,
        baseline: bool,
    ) -> Result<Option<EventKind>, RecordError> {
        let now = unix_now();
        self.pending += 1;
        let (kind, changed) = match (&before, &after) {
            (None, None) => return Ok(None),
            (None, Some(_)) => (EventKind::Added, vec![]),
            (Some(_), None) => (EventKind::Deleted, vec![]),
            (Some(b), Some(a)) => {
                let changed = changed_attributes(b, a);
                if changed.is_empty() {
                    // Only unchecked fields moved (ctime, say): refresh silently.
                    self.store.upsert_file(&path, a, now)?;
                    return Ok(None);
                }
                (EventKind::Modified, changed)
            }
        };
        match &after {
            Some(a) => self.store.upsert_file(&path, a, now)?,
            None => self.store.delete_file(&path)?,
        }
        if baseline {
            return Ok(None);
        }
        let ev = FimEvent {
            kind,
            mode,
            path,
            before,
            after,
            changed,
        };
        // The alert goes out before the commit that records it (see `commit`).
        let id = self.sink.fim(&ev).map_err(RecordError::Alerts)?;
        self.store.insert_event(&id, now, &ev)?;
        self.hand_off(&ev, id);
        Ok(Some(kind))
    }

    /// The seam for VirusTotal: every added or modified file whose SHA-256 is new
    /// or changed becomes a lookup request. Collecting it costs no I/O, so a slow
    /// VirusTotal can never hold up an alert.
    fn hand_off(&mut self, ev: &FimEvent, alert_id: String) {
        let fresh = match ev.kind {
            EventKind::Added => true,
            EventKind::Modified => ev.has(Attr::Sha256),
            EventKind::Deleted => false,
        };
        if let (true, Some(digests)) = (fresh, ev.after.as_ref().and_then(|a| a.digests.clone())) {
            self.handoffs.push(LookupRequest {
                alert_id,
                path: ev.path.clone(),
                digests,
                mode: ev.mode,
            });
        }
    }

    /// The lookups handed off since the last call.
    pub fn take_handoffs(&mut self) -> Vec<LookupRequest> {
        std::mem::take(&mut self.handoffs)
    }

    /// Commits when enough work or time has accumulated.
    pub fn maybe_commit(&mut self) -> Result<(), RecordError> {
        if self.pending >= BATCH_OPS || self.last_commit.elapsed() >= BATCH_TIME {
            self.commit()?;
        }
        Ok(())
    }

    /// Alerts first, durably; then the database. A crash between the two repeats
    /// the alerts on the next scan; it can never lose one.
    pub fn commit(&mut self) -> Result<(), RecordError> {
        self.sink.sync().map_err(RecordError::Alerts)?;
        if self.in_transaction {
            self.store.commit()?;
            self.in_transaction = false;
        }
        self.pending = 0;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Reopens alerts.log and alerts.json (after logrotate moved them).
    pub fn reopen_alerts(&mut self) -> Result<(), RecordError> {
        self.commit()?;
        self.sink.reopen().map_err(RecordError::Alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Identity;
    use crate::fim::tests::state;

    fn recorder(dir: &Path) -> Recorder {
        let store = Store::open(&dir.join("fimvt.db")).unwrap();
        let identity = Identity {
            hostname: "h".into(),
            agent_id: "000".into(),
            agent_name: "h".into(),
        };
        Recorder::new(store, AlertSink::open(dir, identity).unwrap())
    }

    #[test]
    fn hand_offs_are_made_for_new_and_changed_content_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = recorder(dir.path());
        let p = PathBuf::from("/w/f");
        let rt = ScanMode::Realtime;
        rec.file_read(p.clone(), state(b"one"), true, rt, true)
            .unwrap();
        assert!(
            rec.take_handoffs().is_empty(),
            "a baseline hands nothing off"
        );

        let mut chmod = state(b"one");
        chmod.mode = 0o100600;
        assert_eq!(
            rec.file_read(p.clone(), chmod, true, rt, false).unwrap(),
            Some(EventKind::Modified)
        );
        assert!(
            rec.take_handoffs().is_empty(),
            "same content: no new lookup"
        );

        assert_eq!(
            rec.file_read(p.clone(), state(b"two"), true, rt, false)
                .unwrap(),
            Some(EventKind::Modified)
        );
        let h = rec.take_handoffs();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].digests, state(b"two").digests.unwrap());
        assert!(!h[0].alert_id.is_empty());

        let q = PathBuf::from("/w/new");
        assert_eq!(
            rec.file_read(q.clone(), state(b"x"), false, rt, false)
                .unwrap(),
            Some(EventKind::Added)
        );
        assert_eq!(rec.take_handoffs()[0].path, q);

        assert_eq!(
            rec.file_gone(q, rt, false).unwrap(),
            Some(EventKind::Deleted)
        );
        assert!(rec.take_handoffs().is_empty());
        rec.commit().unwrap();
    }
}
