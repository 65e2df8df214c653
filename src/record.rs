//! The recorder: the single writer of fimvt's file state. It compares what was read with what was recorded,
//! raises the alert, appends the history and updates the current state. Scans and
//! the realtime pipeline both record through it, so they decide alike.
//!
//! It records through a `Journal` (which syncs each alert before the commit that
//! records its change), and hands every alerted file whose SHA-256 is new or
//! changed to VirusTotal, in the same transaction: a cached verdict is alerted at
//! once, anything else is queued.

use std::path::{Path, PathBuf};

use crate::alert::AlertSink;
use crate::attrs::NameCache;
use crate::clock::unix_now;
use crate::config::Config;
use crate::fim::{Attr, EventKind, FimEvent, ScanMode, changed_attributes};
use crate::journal::{Journal, RecordError};
use crate::model::FileState;
use crate::model::VtSource;
use crate::store::Store;
use crate::virustotal::{self, PRIORITY_BASELINE, Policy};

pub struct Recorder {
    journal: Journal,
    names: NameCache,
    /// VirusTotal lookups, when on.
    vt: Option<Policy>,
    /// Something was queued for VirusTotal since the last `take_queued`.
    vt_queued: bool,
    /// Write each FIM alert to the files as soon as it is formatted (see `set_alert_early`).
    alert_early: bool,
    /// Each monitored folder with tags, and its tags, for the alerts of its files.
    tags: Vec<(PathBuf, Vec<String>)>,
}

impl Recorder {
    pub fn new(store: Store, sink: AlertSink) -> Recorder {
        Recorder {
            journal: Journal::new(store, sink),
            names: NameCache::default(),
            vt: None,
            vt_queued: false,
            alert_early: false,
            tags: Vec::new(),
        }
    }

    /// Takes the folders' `tags` for the alerts of their files.
    pub fn set_tags(&mut self, cfg: &Config) {
        self.tags.clear();
        if cfg.directories.iter().any(|d| !d.tags.is_empty()) {
            self.tags = cfg.directories.iter().map(|d| (d.path.clone(), d.tags.clone())).collect();
        }
    }

    /// The tags of the folder entry `path` belongs to: the most specific one, as
    /// `Config::owner_of` decides (a nested entry without tags has none).
    fn tags_of(&self, path: &Path) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(dir, _)| path.starts_with(dir))
            .max_by_key(|(dir, _)| dir.as_os_str().len())
            .map(|(_, tags)| tags.clone())
            .unwrap_or_default()
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

    /// The journal this records through, for the other writers of the same
    /// transaction (the VirusTotal ledger) and for commits.
    pub fn journal(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// Read access to the store (stat index, lookups).
    pub fn store(&self) -> &Store {
        self.journal.store()
    }

    pub fn names(&mut self) -> &mut NameCache {
        &mut self.names
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
        let before = if known { self.store().get_file(&path)? } else { None };
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
        let before = self.store().get_file(&path)?;
        self.record(path, before, None, mode, baseline)
    }

    /// Notes that `path` was seen unchanged.
    pub fn touch(&mut self, path: &Path) -> Result<(), RecordError> {
        self.journal.tx()?.0.touch_file(path, unix_now())?;
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
        let (kind, changed) = match (&before, &after) {
            (None, None) => return Ok(None),
            (None, Some(_)) => (EventKind::Added, vec![]),
            (Some(_), None) => (EventKind::Deleted, vec![]),
            (Some(b), Some(a)) => {
                let changed = changed_attributes(b, a);
                if changed.is_empty() {
                    // Only unchecked fields moved (ctime, say): refresh silently.
                    self.journal.tx()?.0.upsert_file(&path, a, now)?;
                    return Ok(None);
                }
                (EventKind::Modified, changed)
            }
        };
        if baseline {
            write_row(self.journal.tx()?.0, &path, after.as_ref(), now)?;
            // No alert, but the baseline's files get a verdict too (lowest priority).
            if let Some(a) = &after {
                self.hand_off(&path, a, String::new(), PRIORITY_BASELINE)?;
            }
            return Ok(None);
        }
        let tags = self.tags_of(&path);
        let ev = FimEvent { kind, mode, path, before, after, changed, tags };
        // The alert goes out before the commit that records it (see `commit`) and,
        // when asked, before this change's own SQL, so that cannot hold it up.
        let (_, sink) = self.journal.tx()?;
        let id = sink.fim(&ev).map_err(RecordError::Alerts)?;
        if self.alert_early {
            self.journal.flush_alerts()?;
        }
        let store = self.journal.store();
        write_row(store, &ev.path, ev.after.as_ref(), now)?;
        store.insert_event(&id, now, &ev)?;
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

    /// The seam for VirusTotal: every added or modified file whose SHA-256 is new
    /// or changed gets a verdict, from the cache at once or through the queue.
    /// Queueing is an insert in this same transaction: no I/O beyond SQLite, so a
    /// slow VirusTotal can never hold up an alert, and a crash loses no lookup.
    fn hand_off(&mut self, path: &Path, f: &FileState, alert_id: String, priority: u8) -> Result<(), RecordError> {
        let (Some(policy), Some(d)) = (&self.vt, &f.digests) else {
            return Ok(());
        };
        let source = VtSource { alert_id, file: path.to_path_buf(), md5: d.md5.clone(), sha1: d.sha1.clone() };
        let (store, sink) = self.journal.tx()?;
        if virustotal::ledger::hand_off(store, sink, policy, &d.sha256, source, priority)? {
            self.vt_queued = true;
        }
        Ok(())
    }

    /// Whether anything was queued for VirusTotal since the last call.
    pub fn take_queued(&mut self) -> bool {
        std::mem::take(&mut self.vt_queued)
    }

    /// Commits when enough work or time has accumulated (`Journal::maybe_commit`).
    pub fn maybe_commit(&mut self) -> Result<(), RecordError> {
        self.journal.maybe_commit()
    }

    /// Syncs the alerts, then commits (`Journal::commit`).
    pub fn commit(&mut self) -> Result<(), RecordError> {
        self.journal.commit()
    }

    /// Records one piece of the daemon's state for `fimvt status`.
    pub fn set_state(&mut self, key: &str, value: &str) -> Result<(), RecordError> {
        self.journal.set_state(key, value)
    }

    /// After a failed batch: rolls it back whole (`Journal::recover`), including
    /// what it queued for VirusTotal.
    pub fn recover(&mut self) -> Result<(), RecordError> {
        self.vt_queued = false;
        self.journal.recover()
    }
}

/// The file's row as it is now: updated, or gone.
fn write_row(store: &Store, path: &Path, after: Option<&FileState>, now: i64) -> Result<(), RecordError> {
    match after {
        Some(a) => store.upsert_file(path, a, now)?,
        None => store.delete_file(path)?,
    }
    Ok(())
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
