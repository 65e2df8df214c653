//! The VirusTotal tables: the persistent lookup queue, the file alerts waiting on
//! each hash, the verdict cache and the request log (see
//! `migrations/0002_virustotal.sql`).

use rusqlite::{OptionalExtension, params};

use super::{PathValue, SqlPath, Store, StoreError};
use crate::model::Verdict;
use crate::model::VtSource;

/// A verdict as cached, with when it was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedVerdict {
    pub verdict: Verdict,
    /// Unix seconds.
    pub fetched: i64,
    /// Not-found re-checks done so far.
    pub rechecks: u32,
}

/// Queue depth by priority (realtime, scheduled, baseline, re-check).
pub type QueueDepth = [u64; 4];

/// The queue in the order it is asked, read row by row until the worker finds a
/// hash it is not asking yet. No LIMIT: a bound LIMIT made SQLite prepare the
/// statement again on every run (about 15% of the worker's CPU), and the index
/// gives the order without a sort either way.
const DUE_SQL: &str = "SELECT sha256 FROM vt_queue WHERE not_before <= ?1 ORDER BY priority, enqueued";

impl Store {
    pub fn vt_verdict(&self, sha256: &str) -> Result<Option<CachedVerdict>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT found, malicious, suspicious, undetected, harmless, total, scan_date, permalink,
                    fetched, rechecks
             FROM vt_verdicts WHERE sha256 = ?1",
        )?;
        Ok(stmt
            .query_row([sha256], |r| {
                Ok(CachedVerdict {
                    verdict: Verdict {
                        found: r.get::<_, i64>(0)? != 0,
                        malicious: r.get(1)?,
                        suspicious: r.get(2)?,
                        undetected: r.get(3)?,
                        harmless: r.get(4)?,
                        total: r.get(5)?,
                        scan_date: r.get(6)?,
                        permalink: r.get(7)?,
                    },
                    fetched: r.get(8)?,
                    rechecks: r.get(9)?,
                })
            })
            .optional()?)
    }

    pub fn vt_put_verdict(&self, sha256: &str, v: &Verdict, fetched: i64, rechecks: u32) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO vt_verdicts (sha256, found, malicious, suspicious, undetected,
                harmless, total, scan_date, permalink, fetched, rechecks)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        stmt.execute(params![
            sha256,
            v.found,
            v.malicious,
            v.suspicious,
            v.undetected,
            v.harmless,
            v.total,
            v.scan_date,
            v.permalink,
            fetched,
            rechecks
        ])?;
        Ok(())
    }

    /// Queues `sha256` (once: a hash already queued keeps its place, and moves up
    /// if this request is more urgent). `now` in Unix seconds, `not_before` in ms.
    pub fn vt_enqueue(&self, sha256: &str, priority: u8, now: i64, not_before: i64) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO vt_queue (sha256, priority, enqueued, not_before) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (sha256) DO UPDATE SET priority = min(priority, excluded.priority)",
        )?;
        stmt.execute(params![sha256, priority, now, not_before])?;
        Ok(())
    }

    pub fn vt_add_waiter(&self, sha256: &str, s: &VtSource) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO vt_waiters (sha256, alert_id, path, md5, sha1) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        stmt.execute(params![sha256, s.alert_id, SqlPath(&s.file), s.md5, s.sha1])?;
        Ok(())
    }

    pub fn vt_waiters(&self, sha256: &str) -> Result<Vec<VtSource>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT alert_id, path, md5, sha1 FROM vt_waiters WHERE sha256 = ?1")?;
        let rows = stmt.query_map([sha256], |r| {
            let PathValue(file) = r.get(1)?;
            Ok(VtSource { alert_id: r.get(0)?, file, md5: r.get(2)?, sha1: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes `sha256` from the queue with its waiters (it was answered).
    pub fn vt_dequeue(&self, sha256: &str) -> Result<(), StoreError> {
        self.conn.prepare_cached("DELETE FROM vt_queue WHERE sha256 = ?1")?.execute([sha256])?;
        self.conn.prepare_cached("DELETE FROM vt_waiters WHERE sha256 = ?1")?.execute([sha256])?;
        Ok(())
    }

    /// Counts a failed try and sets when (Unix ms) to try again; returns the tries so far.
    pub fn vt_retry_later(&self, sha256: &str, not_before: i64) -> Result<u32, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE vt_queue SET attempts = attempts + 1, not_before = ?2 WHERE sha256 = ?1 RETURNING attempts",
        )?;
        Ok(stmt.query_row(params![sha256, not_before], |r| r.get(0)).optional()?.unwrap_or(0))
    }

    /// Failed tries of a queued hash since its last answer.
    pub fn vt_attempts(&self, sha256: &str) -> Result<u32, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT attempts FROM vt_queue WHERE sha256 = ?1")?;
        Ok(stmt.query_row([sha256], |r| r.get(0)).optional()?.unwrap_or(0))
    }

    /// The most urgent hash due at `now_ms` that `skip` does not pass over (the
    /// worker skips the ones it is already asking).
    pub fn vt_first_due(&self, now_ms: i64, skip: impl Fn(&str) -> bool) -> Result<Option<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(DUE_SQL)?;
        let mut rows = stmt.query([now_ms])?;
        while let Some(row) = rows.next()? {
            let sha256: String = row.get(0)?;
            if !skip(&sha256) {
                return Ok(Some(sha256));
            }
        }
        Ok(None)
    }

    /// When (Unix ms) the earliest hash that is not due yet becomes due.
    pub fn vt_next_due(&self, now_ms: i64) -> Result<Option<i64>, StoreError> {
        // Cached: the worker asks this after nearly every dispatch.
        let mut stmt = self.conn.prepare_cached("SELECT min(not_before) FROM vt_queue WHERE not_before > ?1")?;
        Ok(stmt.query_row([now_ms], |r| r.get(0))?)
    }

    pub fn vt_queue_depth(&self) -> Result<QueueDepth, StoreError> {
        let mut depth = [0u64; 4];
        let mut stmt = self.conn.prepare_cached("SELECT priority, count(*) FROM vt_queue GROUP BY priority")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (p, n) = row?;
            depth[p.clamp(0, 3) as usize] += n as u64;
        }
        Ok(depth)
    }

    /// Logs one request (Unix milliseconds).
    pub fn vt_record_request(&self, time_ms: i64) -> Result<(), StoreError> {
        self.conn.prepare_cached("INSERT INTO vt_requests (time) VALUES (?1)")?.execute([time_ms])?;
        Ok(())
    }

    /// The times (Unix ms) of the requests made since `since_ms`.
    pub fn vt_requests_since(&self, since_ms: i64) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT time FROM vt_requests WHERE time >= ?1 ORDER BY time")?;
        let rows = stmt.query_map([since_ms], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn vt_prune_requests(&self, before_ms: i64) -> Result<(), StoreError> {
        self.conn.prepare_cached("DELETE FROM vt_requests WHERE time < ?1")?.execute([before_ms])?;
        Ok(())
    }

    /// Every recorded file whose content has this SHA-256 now.
    pub fn files_with_sha256(&self, sha256: &str) -> Result<Vec<VtSource>, StoreError> {
        // No index on files.sha256 (it halves baseline speed); this runs only when
        // a verdict turns malicious, and a full pass over `files` is milliseconds.
        let mut stmt = self.conn.prepare_cached("SELECT path, md5, sha1 FROM files WHERE sha256 = ?1")?;
        let rows = stmt.query_map([sha256], |r| {
            let PathValue(file) = r.get(0)?;
            Ok(VtSource { alert_id: String::new(), file, md5: r.get(1)?, sha1: r.get(2)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("fimvt.db")).unwrap();
        (d, s)
    }

    fn source(alert: &str, file: &str) -> VtSource {
        VtSource { alert_id: alert.into(), file: PathBuf::from(file), md5: "m".into(), sha1: "s".into() }
    }

    /// Every hash due at `now_ms`, in the order the worker meets them.
    fn due(s: &Store, now_ms: i64) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        while let Some(h) = s.vt_first_due(now_ms, |h| seen.iter().any(|x| x == h)).unwrap() {
            seen.push(h);
        }
        seen
    }

    #[test]
    fn one_queue_row_per_hash_in_priority_order_with_all_its_waiters() {
        let (_d, s) = store();
        s.vt_enqueue("bbb", 2, 10, 0).unwrap();
        s.vt_enqueue("aaa", 1, 20, 0).unwrap();
        s.vt_enqueue("bbb", 0, 30, 0).unwrap(); // again, more urgent
        s.vt_add_waiter("bbb", &source("1.0", "/w/a")).unwrap();
        s.vt_add_waiter("bbb", &source("2.0", "/w/b")).unwrap();
        assert_eq!(due(&s, 100), ["bbb", "aaa"]);
        assert_eq!(s.vt_queue_depth().unwrap(), [1, 1, 0, 0]);
        assert_eq!(s.vt_waiters("bbb").unwrap().len(), 2);
        s.vt_dequeue("bbb").unwrap();
        assert_eq!(due(&s, 100), ["aaa"]);
        assert!(s.vt_waiters("bbb").unwrap().is_empty());
    }

    #[test]
    fn retries_wait_their_turn() {
        let (_d, s) = store();
        s.vt_enqueue("aaa", 0, 10, 0).unwrap();
        assert_eq!(s.vt_retry_later("aaa", 500).unwrap(), 1);
        assert_eq!(s.vt_retry_later("aaa", 600).unwrap(), 2);
        assert!(due(&s, 100).is_empty());
        assert_eq!(s.vt_next_due(100).unwrap(), Some(600));
        assert_eq!(due(&s, 600), ["aaa"]);
    }

    #[test]
    fn verdicts_and_requests_round_trip() {
        let (_d, s) = store();
        let v = Verdict::not_found("abc");
        s.vt_put_verdict("abc", &v, 99, 1).unwrap();
        assert_eq!(s.vt_verdict("abc").unwrap(), Some(CachedVerdict { verdict: v, fetched: 99, rechecks: 1 }));
        for t in [1000, 2000, 3000] {
            s.vt_record_request(t).unwrap();
        }
        assert_eq!(s.vt_requests_since(2000).unwrap(), [2000, 3000]);
        s.vt_prune_requests(3000).unwrap();
        assert_eq!(s.vt_requests_since(0).unwrap(), [3000]);
        assert!(s.files_with_sha256("abc").unwrap().is_empty());
    }

    #[test]
    fn the_due_query_reads_the_queue_in_order_and_is_prepared_once() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("fimvt.db");
        let writer = Store::open(&path).unwrap();
        for i in 0..100 {
            writer.vt_enqueue(&format!("{i:064x}"), 2, i, 0).unwrap();
        }
        let worker = Store::open_readonly(&path).unwrap();
        let plan: Vec<String> = worker
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {DUE_SQL}"))
            .unwrap()
            .query_map([0], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(plan, ["SCAN vt_queue USING INDEX vt_queue_order"], "no sort of the whole queue per request");
        for i in 0..20 {
            writer.vt_record_request(i).unwrap();
            let first = worker.vt_first_due(1000 + i, |h| h.ends_with('0')).unwrap();
            assert_eq!(first.as_deref(), Some(format!("{:064x}", 1).as_str()));
        }
        let stmt = worker.conn.prepare_cached(DUE_SQL).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0, "prepared once, not once per request");
    }
}
