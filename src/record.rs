//! The recorder: the single writer of fimvt's state. It owns the database writer
//! connection and the alert sink, compares what was read with what was recorded,
//! raises the alert, appends the history and updates the current state. Scans and
//! the realtime pipeline both record through it, so they decide alike.
//!
//! Ordering is the point of this module: an alert is synced to disk before the
//! transaction that records its change commits, so a crash can repeat an alert but
//! never lose one. It also hands every alerted file whose SHA-256 is new or changed
//! to VirusTotal, in the same transaction: a cached verdict is alerted at once,
//! anything else is queued.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::alert::AlertSink;
use crate::alert::vt::VtSource;
use crate::attrs::{FileState, NameCache};
use crate::fim::{Attr, EventKind, FimEvent, ScanMode, changed_attributes};
use crate::store::{Store, StoreError};
use crate::virustotal::{self, PRIORITY_BASELINE, Policy};

/// Writes are committed (alerts synced first) at least every so many changes...
const BATCH_OPS: usize = 20_000;
/// ...and at least this often, so a long scan keeps its progress.
const BATCH_TIME: Duration = Duration::from_secs(1);

/// What failed, with its cause as the error's source: print it with
/// `textutil::Chain` or anyhow's `{:#}` to see the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("database")]
    Store(#[from] StoreError),
    #[error("writing alerts")]
    Alerts(#[source] std::io::Error),
}

pub fn unix_now() -> i64 {
    unix_now_ms() / 1000
}

pub fn unix_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub struct Recorder {
    store: Store,
    sink: AlertSink,
    names: NameCache,
    pending: usize,
    last_commit: Instant,
    in_transaction: bool,
    /// VirusTotal lookups, when on.
    vt: Option<Policy>,
    /// Something was queued for VirusTotal since the last `take_queued`.
    vt_queued: bool,
    /// Write each FIM alert to the files as soon as it is formatted (see `set_alert_early`).
    alert_early: bool,
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
            vt: None,
            vt_queued: false,
            alert_early: false,
        }
    }

    /// Turns VirusTotal hand-offs on.
    pub fn set_virustotal(&mut self, policy: Policy) {
        self.vt = Some(policy);
    }

    /// With `on`, each FIM alert is written to the alert files (not synced) as
    /// soon as it is formatted, before its change's SQL and the rest of the batch:
    /// the daemon's writer asks for this when no other change is waiting, so a
    /// lone change is alerted without waiting for bookkeeping (the VirusTotal
    /// hand-off, say). Bursts and scans keep one write per batch.
    pub fn set_alert_early(&mut self, on: bool) {
        self.alert_early = on;
    }

    /// The store and the sink inside the open transaction, for writers that
    /// record through the recorder's transaction (the VirusTotal ledger).
    pub fn tx(&mut self) -> Result<(&Store, &mut AlertSink), RecordError> {
        self.begin()?;
        self.pending += 1;
        Ok((&self.store, &mut self.sink))
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
        let before = if known { self.store.get_file(&path)? } else { None };
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
        if baseline {
            self.write_row(&path, after.as_ref(), now)?;
            // No alert, but the baseline's files get a verdict too (lowest priority).
            if let Some(a) = &after {
                self.hand_off(&path, a, String::new(), PRIORITY_BASELINE)?;
            }
            return Ok(None);
        }
        let ev = FimEvent { kind, mode, path, before, after, changed };
        // The alert goes out before the commit that records it (see `commit`) and,
        // when asked, before this change's own SQL, so that cannot hold it up.
        let id = self.sink.fim(&ev).map_err(RecordError::Alerts)?;
        if self.alert_early {
            self.sink.flush().map_err(RecordError::Alerts)?;
        }
        self.write_row(&ev.path, ev.after.as_ref(), now)?;
        self.store.insert_event(&id, now, &ev)?;
        let fresh_content = match ev.kind {
            EventKind::Added => true,
            EventKind::Modified => ev.has(Attr::Sha256),
            EventKind::Deleted => false,
        };
        if let (true, Some(a)) = (fresh_content, &ev.after) {
            self.hand_off(&ev.path, a, id, virustotal::priority_of(ev.mode))?;
        }
        Ok(Some(kind))
    }

    /// The file's row as it is now: updated, or gone.
    fn write_row(&self, path: &Path, after: Option<&FileState>, now: i64) -> Result<(), RecordError> {
        match after {
            Some(a) => self.store.upsert_file(path, a, now)?,
            None => self.store.delete_file(path)?,
        }
        Ok(())
    }

    /// The seam for VirusTotal: every added or modified file whose SHA-256 is new
    /// or changed gets a verdict, from the cache at once or through the queue.
    /// Queueing is an insert in this same transaction: no I/O beyond SQLite, so a
    /// slow VirusTotal can never hold up an alert, and a crash loses no lookup.
    fn hand_off(&mut self, path: &Path, f: &FileState, alert_id: String, priority: u8) -> Result<(), RecordError> {
        let (Some(policy), Some(d)) = (&self.vt, &f.digests) else {
            return Ok(());
        };
        let source = VtSource { alert_id, file: path.to_path_buf(), md5: d.md5.clone(), sha1: d.sha1.clone() };
        if virustotal::ledger::hand_off(&self.store, &mut self.sink, policy, &d.sha256, source, priority)? {
            self.vt_queued = true;
        }
        Ok(())
    }

    /// Whether anything was queued for VirusTotal since the last call.
    pub fn take_queued(&mut self) -> bool {
        std::mem::take(&mut self.vt_queued)
    }

    /// Commits when enough work or time has accumulated.
    pub fn maybe_commit(&mut self) -> Result<(), RecordError> {
        if self.pending >= BATCH_OPS || self.last_commit.elapsed() >= BATCH_TIME {
            self.commit()?;
        }
        Ok(())
    }

    /// Starts making the alerts written so far durable on the sink's sync thread;
    /// `false` when there are none. The caller may record more meanwhile, then
    /// takes the answer from `sync_done` to `finish_sync`, and syncs again for
    /// what it recorded meanwhile before it commits (`commit` does that).
    pub fn start_sync(&mut self) -> Result<bool, RecordError> {
        self.sink.start_sync().map_err(RecordError::Alerts)
    }

    /// Where the answer to `start_sync` arrives.
    pub fn sync_done(&self) -> crossbeam_channel::Receiver<std::io::Result<()>> {
        self.sink.sync_done().clone()
    }

    /// Takes the answer to `start_sync`: on success, what it covered is durable.
    pub fn finish_sync(
        &mut self,
        answer: Result<std::io::Result<()>, crossbeam_channel::RecvError>,
    ) -> Result<(), RecordError> {
        self.sink.finish_sync(answer).map_err(RecordError::Alerts)
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

    /// Records one piece of the daemon's state for `fimvt status`.
    pub fn set_state(&mut self, key: &str, value: &str) -> Result<(), RecordError> {
        self.begin()?;
        self.store.set_state(key, value, unix_now())?;
        self.pending += 1;
        Ok(())
    }

    /// After a failed batch (a full disk, say): the transaction is abandoned and
    /// the alert files cut back to their last synced state. Nothing half-done
    /// stays; the caller rescans to find the changes again.
    pub fn recover(&mut self) -> Result<(), RecordError> {
        self.store.rollback();
        self.in_transaction = false;
        self.pending = 0;
        self.vt_queued = false;
        self.sink.recover().map_err(RecordError::Alerts)
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
        let identity = Identity { hostname: "h".into(), agent_id: "000".into(), agent_name: "h".into() };
        Recorder::new(store, AlertSink::open(dir, identity).unwrap())
    }

    #[test]
    fn hand_offs_queue_new_and_changed_content_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = recorder(dir.path());
        rec.set_virustotal(Policy {
            cache_ttl: std::time::Duration::from_secs(3600),
            recheck_not_found: vec![],
            scan_baseline: false,
            max_retries: 3,
            retry_backoff: std::time::Duration::from_secs(30),
        });
        let depth = |rec: &Recorder| rec.store().vt_queue_depth().unwrap();
        let p = PathBuf::from("/w/f");
        let rt = ScanMode::Realtime;
        rec.file_read(p.clone(), state(b"one"), true, rt, true).unwrap();
        assert_eq!(depth(&rec), [0, 0, 0, 0], "scan_baseline = false: the baseline queues nothing");
        assert!(!rec.take_queued());

        let mut chmod = state(b"one");
        chmod.mode = 0o100600;
        assert_eq!(rec.file_read(p.clone(), chmod, true, rt, false).unwrap(), Some(EventKind::Modified));
        assert_eq!(depth(&rec), [0, 0, 0, 0], "same content: no new lookup");

        assert_eq!(rec.file_read(p.clone(), state(b"two"), true, rt, false).unwrap(), Some(EventKind::Modified));
        assert_eq!(depth(&rec), [1, 0, 0, 0]);
        assert!(rec.take_queued());
        let sha = state(b"two").digests.unwrap().sha256;
        let waiters = rec.store().vt_waiters(&sha).unwrap();
        assert_eq!(waiters.len(), 1);
        assert!(!waiters[0].alert_id.is_empty(), "the waiter points at its FIM alert");

        let q = PathBuf::from("/w/same-content");
        rec.file_read(q.clone(), state(b"two"), false, ScanMode::Scheduled, false).unwrap();
        assert_eq!(depth(&rec), [1, 0, 0, 0], "one queue row per hash...");
        assert_eq!(rec.store().vt_waiters(&sha).unwrap().len(), 2, "...and every file waits on it");

        assert_eq!(rec.file_gone(q, rt, false).unwrap(), Some(EventKind::Deleted));
        assert_eq!(depth(&rec), [1, 0, 0, 0]);
        rec.commit().unwrap();
    }

    /// `{:#}` (how main prints errors) and `Chain` (how they are logged) give
    /// each cause once, after the context of each layer.
    fn printed_once(err: RecordError, context: &str, cause: &str) {
        let logged = crate::textutil::Chain(&err).to_string();
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(logged, shown);
        assert_eq!(shown.matches(cause).count(), 1, "{shown}");
        // What follows is the cause's own cause, if any (SQLite's error code).
        assert!(shown.starts_with(&format!("{context}: {cause}")), "{shown}");
    }

    #[test]
    fn error_chains_print_each_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        // A database that claims a schema it does not have: the next migration fails.
        let db = dir.path().join("fimvt.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", crate::store::schema_version() - 1).unwrap();
        drop(conn);
        let err = Store::open(&db).err().expect("the migration cannot run");
        let StoreError::Migration { name, source } = &err else { panic!("{err}") };
        let (name, sqlite) = (name.to_string(), source.to_string());
        assert!(sqlite.contains("no such table"), "{sqlite}");
        printed_once(err.into(), &format!("database: migration {name} failed"), &sqlite);

        let store = Store::open(&dir.path().join("other.db")).unwrap();
        store.begin().unwrap();
        let err = store.begin().unwrap_err();
        let sqlite = err.to_string();
        assert!(sqlite.contains("within a transaction"), "{sqlite}");
        printed_once(err.into(), "database", &sqlite);

        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let cause = full.to_string();
        printed_once(RecordError::Alerts(full), "writing alerts", &cause);
    }

    #[test]
    fn an_early_alert_is_in_the_files_before_its_commit_and_a_late_one_only_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = recorder(dir.path());
        let log = || std::fs::read_to_string(dir.path().join(crate::alert::sink::ALERTS_LOG)).unwrap();
        let rt = ScanMode::Realtime;
        rec.file_read(PathBuf::from("/w/baseline"), state(b"0"), false, rt, true).unwrap();
        rec.commit().unwrap();

        rec.file_read(PathBuf::from("/w/late"), state(b"1"), false, rt, false).unwrap();
        assert!(!log().contains("/w/late"), "without alert_early the alert waits for the commit");
        rec.commit().unwrap();
        assert!(log().contains("File '/w/late' added"));

        rec.set_alert_early(true);
        rec.file_read(PathBuf::from("/w/early"), state(b"2"), false, rt, false).unwrap();
        assert!(log().contains("File '/w/early' added"), "written before its change's SQL and the commit");
        rec.commit().unwrap();
        assert_eq!(log().matches("File '/w/early' added").count(), 1, "the commit does not write it again");
    }
}
