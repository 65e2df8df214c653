//! The durability protocol, in one type: everything fimvt records goes through a
//! `Journal`, which holds the database writer connection, the alert sink, the
//! open transaction and what it has pending. An alert is synced to disk before
//! the transaction that records it commits, so a crash can repeat an alert but
//! never lose one; `commit` is the only way to COMMIT, and it syncs first.
//!
//! The FIM recorder (`record.rs`) and the VirusTotal ledger both write through
//! it. The daemon's writer may overlap a sync with more recording
//! (`start_sync`, `finish_sync`); the commit still waits for a sync that covers
//! every alert written before it.

use std::time::{Duration, Instant};

use crate::alert::AlertSink;
use crate::store::{Store, StoreError};

/// Writes are committed (alerts synced first) at least every so many changes...
const BATCH_OPS: usize = 20_000;
/// ...and at least this often, so a long scan keeps its progress.
const BATCH_TIME: Duration = Duration::from_secs(1);

/// Recording failed: the batch is to be rolled back (`Journal::recover`). The
/// cause is the error's source: print it with `textutil::Chain` or anyhow's
/// `{:#}` to see the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("database")]
    Store(#[from] StoreError),
    #[error("writing alerts")]
    Alerts(#[source] std::io::Error),
}

pub struct Journal {
    store: Store,
    sink: AlertSink,
    in_transaction: bool,
    /// Changes recorded since the last commit.
    pending: usize,
    last_commit: Instant,
}

impl Journal {
    pub fn new(store: Store, sink: AlertSink) -> Journal {
        Journal { store, sink, in_transaction: false, pending: 0, last_commit: Instant::now() }
    }

    /// Read access to the store, inside the open transaction if there is one.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store and the sink inside the open transaction (begun if need be),
    /// for one change: its rows and its alerts.
    pub fn tx(&mut self) -> Result<(&Store, &mut AlertSink), RecordError> {
        if !self.in_transaction {
            self.store.begin()?;
            self.in_transaction = true;
        }
        self.pending += 1;
        Ok((&self.store, &mut self.sink))
    }

    /// Records one piece of the daemon's state for `fimvt status`.
    pub fn set_state(&mut self, key: &str, value: &str) -> Result<(), RecordError> {
        let (store, _) = self.tx()?;
        store.set_state(key, value, crate::clock::unix_now())?;
        Ok(())
    }

    /// Commits when enough work or time has accumulated.
    pub fn maybe_commit(&mut self) -> Result<(), RecordError> {
        if self.pending >= BATCH_OPS || self.last_commit.elapsed() >= BATCH_TIME {
            self.commit()?;
        }
        Ok(())
    }

    /// Writes out the alerts written so far without waiting for the disk:
    /// readers of the files see them; they are durable after the next sync.
    pub fn flush_alerts(&mut self) -> Result<(), RecordError> {
        self.sink.flush().map_err(RecordError::Alerts)
    }

    /// Starts making the alerts written so far durable on the sink's sync thread;
    /// `false` when there are none. The caller may record more meanwhile, then
    /// takes the answer from `sync_done` to `finish_sync`; `commit` syncs again
    /// for what was recorded meanwhile.
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

    /// After a failed batch (a full disk, say): the transaction is abandoned and
    /// the alert files cut back to their last synced state. Nothing half-done
    /// stays; the caller rescans to find the changes again.
    pub fn recover(&mut self) -> Result<(), RecordError> {
        self.store.rollback();
        self.in_transaction = false;
        self.pending = 0;
        self.sink.recover().map_err(RecordError::Alerts)
    }

    /// Reopens alerts.log and alerts.json (after logrotate moved them), after a
    /// commit: nothing written to the old files is left unsynced.
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
    use crate::fim::{EventKind, FimEvent, ScanMode};
    use crate::store::StoreError;

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
    fn an_alert_is_durable_before_its_commit_and_a_failed_batch_leaves_neither() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity { hostname: "h".into(), agent_id: "000".into(), agent_name: "h".into() };
        let mut j = Journal::new(
            Store::open(&dir.path().join("fimvt.db")).unwrap(),
            AlertSink::open(dir.path(), identity).unwrap(),
        );
        let log = || std::fs::read_to_string(dir.path().join(crate::alert::sink::ALERTS_LOG)).unwrap();
        let ev = |p: &str| FimEvent {
            kind: EventKind::Added,
            mode: ScanMode::Realtime,
            path: p.into(),
            before: None,
            after: Some(state(b"x")),
            changed: vec![],
            tags: vec![],
        };
        let (store, sink) = j.tx().unwrap();
        sink.fim(&ev("/w/kept")).unwrap();
        store.upsert_file(std::path::Path::new("/w/kept"), &state(b"x"), 1).unwrap();
        j.commit().unwrap();
        assert!(log().contains("/w/kept"), "the commit synced the alert");
        assert!(j.store().get_file(std::path::Path::new("/w/kept")).unwrap().is_some());

        let (store, sink) = j.tx().unwrap();
        sink.fim(&ev("/w/lost")).unwrap();
        store.upsert_file(std::path::Path::new("/w/lost"), &state(b"x"), 1).unwrap();
        j.flush_alerts().unwrap();
        assert!(log().contains("/w/lost"));
        j.recover().unwrap();
        assert!(!log().contains("/w/lost"), "the unsynced alert is cut back");
        assert!(j.store().get_file(std::path::Path::new("/w/lost")).unwrap().is_none(), "and its row rolled back");
        assert!(log().contains("/w/kept"));
    }
}
