//! Read-side queries for the operator commands (`history`, `verdicts`, `status`,
//! `lookup`) and the daemon's state rows. They run on read-only connections
//! beside a running daemon (WAL), except `set_state`, which the writer uses.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use super::{PathValue, SqlPath, Store, StoreError};
use crate::model::Verdict;

/// One row of the history, with the verdict of the content it describes.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: i64,
    pub alert_id: String,
    pub time: i64,
    pub path: PathBuf,
    pub event: String,
    pub mode: String,
    pub changed_attributes: String,
    pub size: Option<i64>,
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub verdict: Option<Verdict>,
}

/// Filters for [`Store::history`].
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// A file, or a folder whose files are wanted.
    pub path: Option<PathBuf>,
    /// Unix seconds.
    pub since: Option<i64>,
    pub event: Option<String>,
    pub limit: Option<u64>,
}

/// A file on disk now with its verdict, if any.
#[derive(Debug, Clone)]
pub struct FileVerdict {
    pub path: PathBuf,
    pub sha256: Option<String>,
    pub verdict: Option<Verdict>,
    /// Its hash waits in the VirusTotal queue.
    pub queued: bool,
}

/// The last scan, for `status`.
#[derive(Debug, Clone)]
pub struct LastScan {
    pub kind: String,
    pub started: i64,
    pub finished: Option<i64>,
    pub files: Option<i64>,
    pub added: Option<i64>,
    pub modified: Option<i64>,
    pub deleted: Option<i64>,
    pub errors: Option<i64>,
}

const VERDICT_COLUMNS: &str =
    "v.found, v.malicious, v.suspicious, v.undetected, v.harmless, v.total, v.scan_date, v.permalink";

fn verdict_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Verdict>> {
    let found: Option<i64> = r.get(at)?;
    let Some(found) = found else { return Ok(None) };
    Ok(Some(Verdict {
        found: found != 0,
        malicious: r.get(at + 1)?,
        suspicious: r.get(at + 2)?,
        undetected: r.get(at + 3)?,
        harmless: r.get(at + 4)?,
        total: r.get(at + 5)?,
        scan_date: r.get(at + 6)?,
        permalink: r.get(at + 7)?,
    }))
}

impl Store {
    /// Events, newest first, with the verdict of the content each one left
    /// (or, for a deletion, the content that was deleted).
    pub fn history(&self, f: &HistoryFilter) -> Result<Vec<HistoryRow>, StoreError> {
        use rusqlite::types::Value;
        // Blob bounds always; text bounds when the folder is UTF-8 (else an empty range).
        let ranges = f.path.as_deref().map(super::subtree_ranges).unwrap_or_default();
        let bound = |i: usize, j: usize| {
            ranges.get(i).map(|r| if j == 0 { r.0.clone() } else { r.1.clone() }).unwrap_or(Value::Null)
        };
        let sql = format!(
            "SELECT e.id, e.alert_id, e.time, e.path, e.event, e.mode, e.changed_attributes,
                    coalesce(e.size_after, e.size_before), coalesce(e.md5_after, e.md5_before),
                    coalesce(e.sha1_after, e.sha1_before), coalesce(e.sha256_after, e.sha256_before),
                    {VERDICT_COLUMNS}
             FROM events e
             LEFT JOIN vt_verdicts v ON v.sha256 = coalesce(e.sha256_after, e.sha256_before)
             WHERE (?1 IS NULL OR e.path = ?1 OR (e.path >= ?2 AND e.path < ?3) OR (e.path >= ?7 AND e.path < ?8))
               AND (?4 IS NULL OR e.time >= ?4)
               AND (?5 IS NULL OR e.event = ?5)
             ORDER BY e.id DESC
             LIMIT ?6"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let limit = f.limit.map_or(-1, |l| l as i64);
        let rows = stmt.query_map(
            params![
                f.path.as_deref().map(SqlPath),
                bound(0, 0),
                bound(0, 1),
                f.since,
                f.event,
                limit,
                bound(1, 0),
                bound(1, 1)
            ],
            |r| {
                let PathValue(path) = r.get(3)?;
                Ok(HistoryRow {
                    id: r.get(0)?,
                    alert_id: r.get(1)?,
                    time: r.get(2)?,
                    path,
                    event: r.get(4)?,
                    mode: r.get(5)?,
                    changed_attributes: r.get(6)?,
                    size: r.get(7)?,
                    md5: r.get(8)?,
                    sha1: r.get(9)?,
                    sha256: r.get(10)?,
                    verdict: verdict_at(r, 11)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Files on disk now with their verdicts: detected first, then by path.
    pub fn file_verdicts(&self, malicious_only: bool) -> Result<Vec<FileVerdict>, StoreError> {
        let sql = format!(
            "SELECT f.path, f.sha256, {VERDICT_COLUMNS}, q.sha256 IS NOT NULL
             FROM files f
             LEFT JOIN vt_verdicts v ON v.sha256 = f.sha256
             LEFT JOIN vt_queue q ON q.sha256 = f.sha256
             WHERE ?1 = 0 OR v.malicious > 0
             ORDER BY coalesce(v.malicious, -1) DESC, f.path"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([malicious_only as i64], |r| {
            let PathValue(path) = r.get(0)?;
            Ok(FileVerdict { path, sha256: r.get(1)?, verdict: verdict_at(r, 2)?, queued: r.get(10)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The SHA-256 of a recorded file, or of any recorded content with this MD5 or SHA-1.
    pub fn sha256_of(
        &self,
        path: Option<&Path>,
        md5: Option<&str>,
        sha1: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sha256 FROM files WHERE sha256 IS NOT NULL AND (path = ?1 OR md5 = ?2 OR sha1 = ?3) LIMIT 1",
        )?;
        Ok(stmt.query_row(params![path.map(SqlPath), md5, sha1], |r| r.get(0)).optional()?)
    }

    pub fn count_files(&self) -> Result<u64, StoreError> {
        Ok(self.conn.query_row("SELECT count(*) FROM files", [], |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn last_scan(&self) -> Result<Option<LastScan>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT kind, started, finished, files, added, modified, deleted, errors
                 FROM scans ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(LastScan {
                        kind: r.get(0)?,
                        started: r.get(1)?,
                        finished: r.get(2)?,
                        files: r.get(3)?,
                        added: r.get(4)?,
                        modified: r.get(5)?,
                        deleted: r.get(6)?,
                        errors: r.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records one piece of the daemon's state (writer only).
    pub fn set_state(&self, key: &str, value: &str, now: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO daemon_state (key, value, updated) VALUES (?1, ?2, ?3)")?
            .execute(params![key, value, now])?;
        Ok(())
    }

    /// One piece of the daemon's state, with when it was set.
    pub fn state(&self, key: &str) -> Result<Option<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT value, updated FROM daemon_state WHERE key = ?1")?;
        Ok(stmt.query_row([key], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
    }
}
