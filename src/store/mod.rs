//! The SQLite store: the only module that speaks SQL. One [`Store`] owns the writer
//! connection; writes are grouped by the caller into transactions with
//! [`Store::begin`] / [`Store::commit`]. The schema is a public interface,
//! documented in the README; see `migrations/`.

mod migrate;
mod query;
mod vt;

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, params};

use crate::fim::{EventKind, FimEvent};
use crate::model::Digests;
use crate::model::{FileState, StatKey};

pub use migrate::{MIGRATIONS, latest as schema_version};
pub use query::{FileVerdict, HistoryFilter, HistoryRow, LastScan};
pub use vt::{CachedVerdict, QueueDepth};

pub const DB_FILE: &str = "fimvt.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database has schema version {found}, but this fimvt knows only up to {supported}: \
         it was written by a newer fimvt; upgrade fimvt or point data_dir elsewhere"
    )]
    TooNew { found: i64, supported: i64 },
    #[error(
        "the database has schema version {found}, older than this fimvt's {supported}: it was written by \
         an older fimvt, and this one upgrades it when `fimvt run` or `fimvt scan` opens it; restart the \
         daemon with this fimvt"
    )]
    TooOld { found: i64, supported: i64 },
    #[error("not a fimvt database (schema version {user_version})")]
    NotOurs { user_version: i64 },
    #[error("migration {name} failed")]
    Migration { name: &'static str, source: rusqlite::Error },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A path as SQLite sees it: TEXT when its bytes are UTF-8, a BLOB otherwise.
pub struct SqlPath<'a>(pub &'a Path);

impl ToSql for SqlPath<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let bytes = self.0.as_os_str().as_bytes();
        Ok(match std::str::from_utf8(bytes) {
            Ok(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Err(_) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

/// The key ranges holding `dir`'s descendants, as index range scans: `[dir/,
/// dir0)` ('0' follows '/'), once among TEXT paths (when `dir` is UTF-8) and
/// once among BLOB paths (names below it that are not UTF-8). `dir` is taken
/// without its trailing slashes, so `/` is `["/", "0")`, every absolute path, and
/// `/tmp/x/` is `/tmp/x`.
pub(crate) fn subtree_ranges(dir: &Path) -> Vec<(rusqlite::types::Value, rusqlite::types::Value)> {
    use rusqlite::types::Value;
    let mut b = dir.as_os_str().as_bytes();
    while let [rest @ .., b'/'] = b {
        b = rest;
    }
    let (lo, hi) = ([b, b"/"].concat(), [b, b"0"].concat());
    let mut ranges = vec![(Value::Blob(lo.clone()), Value::Blob(hi.clone()))];
    if let (Ok(lo), Ok(hi)) = (String::from_utf8(lo), String::from_utf8(hi)) {
        ranges.push((Value::Text(lo), Value::Text(hi)));
    }
    ranges
}

/// Reads a path stored by [`SqlPath`] back to its exact bytes.
struct PathValue(PathBuf);

impl FromSql for PathValue {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(b) | ValueRef::Blob(b) => Ok(PathValue(PathBuf::from(std::ffi::OsStr::from_bytes(b)))),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// Totals of one scan, as recorded in `scans`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanTotals {
    pub files: u64,
    pub bytes: u64,
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
    pub errors: u64,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const FILE_COLUMNS: &str = "size, mode, uid, gid, uname, gname, mtime, inode, md5, sha1, sha256, mtime_ns, ctime_ns";

fn state_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<FileState> {
    let md5: Option<String> = r.get(at + 8)?;
    let sha1: Option<String> = r.get(at + 9)?;
    let sha256: Option<String> = r.get(at + 10)?;
    let digests = match (md5, sha1, sha256) {
        (Some(md5), Some(sha1), Some(sha256)) => Some(Digests { md5, sha1, sha256 }),
        _ => None,
    };
    Ok(FileState {
        size: r.get::<_, i64>(at)? as u64,
        mode: r.get(at + 1)?,
        uid: r.get(at + 2)?,
        gid: r.get(at + 3)?,
        uname: r.get(at + 4)?,
        gname: r.get(at + 5)?,
        mtime: r.get(at + 6)?,
        inode: r.get::<_, i64>(at + 7)? as u64,
        digests,
        mtime_ns: r.get(at + 11)?,
        ctime_ns: r.get(at + 12)?,
    })
}

impl Store {
    /// Opens (creating if needed) the database at `path`, readable only by its
    /// owner and group, in WAL mode, and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        // Create the file ourselves so it never exists world-readable, and never
        // through a symlink planted in the data folder.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        let flags =
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a power cut may lose the last commits but never
        // corrupts; alerts are synced before each commit, so a lost commit is
        // re-detected and re-alerted, never silently skipped.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        migrate::migrate(&mut conn)?;
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// A write connection to an existing database of exactly this binary's
    /// schema, without migrating it (another process owns it).
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        let flags =
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = schema_version();
        match version {
            v if v < 0 => Err(StoreError::NotOurs { user_version: v }),
            v if v < supported => Err(StoreError::TooOld { found: v, supported }),
            v if v > supported => Err(StoreError::TooNew { found: v, supported }),
            _ => Ok(Store { conn, path: path.to_path_buf() }),
        }
    }

    /// Leaves WAL checkpoints to [`Store::checkpoint`] on another connection, so
    /// the writer never waits for the fsyncs of one (the daemon's writer).
    pub fn disable_auto_checkpoint(&self) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }

    /// Copies what it can from the WAL into the database without blocking the
    /// writer (a PASSIVE checkpoint).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// A read-only connection to an existing database (for readers beside the
    /// writer; WAL lets them read while it writes).
    pub fn open_readonly(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > schema_version() {
            return Err(StoreError::TooNew { found: version, supported: schema_version() });
        }
        Ok(Store { conn, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn begin(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    pub fn commit(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// Abandons the open transaction, if SQLite has not already (it rolls back by
    /// itself on some errors, such as a full disk).
    pub fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Every known path with the stat fields that decide whether to re-read it.
    pub fn stat_index(&self) -> Result<HashMap<PathBuf, StatKey>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT path, size, mode, uid, gid, inode, mtime_ns, ctime_ns FROM files")?;
        let rows = stmt.query_map([], |r| {
            let PathValue(path) = r.get(0)?;
            let key = StatKey {
                size: r.get::<_, i64>(1)? as u64,
                mode: r.get(2)?,
                uid: r.get(3)?,
                gid: r.get(4)?,
                inode: r.get::<_, i64>(5)? as u64,
                mtime_ns: r.get(6)?,
                ctime_ns: r.get(7)?,
            };
            Ok((path, key))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn get_file(&self, path: &Path) -> Result<Option<FileState>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files WHERE path = ?1"))?;
        Ok(stmt.query_row([SqlPath(path)], |r| state_from_row(r, 0)).optional()?)
    }

    /// Every recorded path under `dir` (the folder itself excluded).
    pub fn paths_under(&self, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT path FROM files WHERE path >= ?1 AND path < ?2")?;
        let mut out = Vec::new();
        for (lo, hi) in subtree_ranges(dir) {
            for row in stmt.query_map([lo, hi], |r| r.get::<_, PathValue>(0))? {
                out.push(row?.0);
            }
        }
        Ok(out)
    }

    /// Records the current state of `path`, keeping its `first_seen`.
    pub fn upsert_file(&self, path: &Path, f: &FileState, now: i64) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO files (path, size, perm, mode, uid, gid, uname, gname, mtime, inode,
                                md5, sha1, sha256, first_seen, last_seen, mtime_ns, ctime_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, ?16)
             ON CONFLICT (path) DO UPDATE SET
                size = excluded.size, perm = excluded.perm, mode = excluded.mode,
                uid = excluded.uid, gid = excluded.gid, uname = excluded.uname,
                gname = excluded.gname, mtime = excluded.mtime, inode = excluded.inode,
                md5 = excluded.md5, sha1 = excluded.sha1, sha256 = excluded.sha256,
                last_seen = excluded.last_seen, mtime_ns = excluded.mtime_ns,
                ctime_ns = excluded.ctime_ns",
        )?;
        let d = f.digests.as_ref();
        stmt.execute(params![
            SqlPath(path),
            f.size as i64,
            f.perm(),
            f.mode,
            f.uid,
            f.gid,
            f.uname,
            f.gname,
            f.mtime,
            f.inode as i64,
            d.map(|d| &d.md5),
            d.map(|d| &d.sha1),
            d.map(|d| &d.sha256),
            now,
            f.mtime_ns,
            f.ctime_ns,
        ])?;
        Ok(())
    }

    /// Notes that `path` was seen unchanged.
    pub fn touch_file(&self, path: &Path, now: i64) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached("UPDATE files SET last_seen = ?2 WHERE path = ?1")?;
        stmt.execute(params![SqlPath(path), now])?;
        Ok(())
    }

    pub fn delete_file(&self, path: &Path) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached("DELETE FROM files WHERE path = ?1")?;
        stmt.execute([SqlPath(path)])?;
        Ok(())
    }

    /// Appends one event to the history.
    pub fn insert_event(&self, alert_id: &str, time: i64, ev: &FimEvent) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO events (alert_id, time, path, event, mode, changed_attributes,
                size_before, size_after, perm_before, perm_after, uid_before, uid_after,
                gid_before, gid_after, uname_before, uname_after, gname_before, gname_after,
                mtime_before, mtime_after, inode_before, inode_after, md5_before, md5_after,
                sha1_before, sha1_after, sha256_before, sha256_after)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
        )?;
        let (b, a) = (ev.before.as_ref(), ev.after.as_ref());
        let changed: Vec<&str> = ev.changed.iter().map(|c| c.as_str()).collect();
        let dig = |s: Option<&FileState>, pick: fn(&Digests) -> &String| {
            s.and_then(|s| s.digests.as_ref()).map(pick).cloned()
        };
        stmt.execute(params![
            alert_id,
            time,
            SqlPath(&ev.path),
            ev.kind.as_str(),
            ev.mode.as_str(),
            changed.join(","),
            b.map(|s| s.size as i64),
            a.map(|s| s.size as i64),
            b.map(|s| s.perm()),
            a.map(|s| s.perm()),
            b.map(|s| s.uid),
            a.map(|s| s.uid),
            b.map(|s| s.gid),
            a.map(|s| s.gid),
            b.map(|s| &s.uname),
            a.map(|s| &s.uname),
            b.map(|s| &s.gname),
            a.map(|s| &s.gname),
            b.map(|s| s.mtime),
            a.map(|s| s.mtime),
            b.map(|s| s.inode as i64),
            a.map(|s| s.inode as i64),
            dig(b, |d| &d.md5),
            dig(a, |d| &d.md5),
            dig(b, |d| &d.sha1),
            dig(a, |d| &d.sha1),
            dig(b, |d| &d.sha256),
            dig(a, |d| &d.sha256),
        ])?;
        debug_assert!(matches!(ev.kind, EventKind::Added | EventKind::Modified | EventKind::Deleted));
        Ok(())
    }

    /// True once any scan has completed: the next scan is not a baseline.
    pub fn has_completed_scan(&self) -> Result<bool, StoreError> {
        Ok(self.conn.query_row("SELECT EXISTS (SELECT 1 FROM scans WHERE finished IS NOT NULL)", [], |r| r.get(0))?)
    }

    pub fn scan_started(&self, kind: &str, started: i64) -> Result<i64, StoreError> {
        self.conn.execute("INSERT INTO scans (kind, started) VALUES (?1, ?2)", params![kind, started])?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn scan_finished(&self, id: i64, finished: i64, t: &ScanTotals) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE scans SET finished = ?2, files = ?3, bytes = ?4, added = ?5, modified = ?6,
                              deleted = ?7, errors = ?8 WHERE id = ?1",
            params![
                id,
                finished,
                t.files as i64,
                t.bytes as i64,
                t.added as i64,
                t.modified as i64,
                t.deleted as i64,
                t.errors as i64
            ],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fim::tests::state;
    use std::ffi::OsStr;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join(DB_FILE)).unwrap();
        (dir, store)
    }

    #[test]
    fn fresh_database_gets_the_latest_schema_in_wal_mode() {
        let (_d, store) = temp_store();
        let v: i64 = store.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, schema_version());
        let mode: String = store.conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn reopening_is_idempotent_and_a_newer_schema_is_refused() {
        let (d, store) = temp_store();
        let path = store.path().to_path_buf();
        drop(store);
        Store::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", schema_version() + 1).unwrap();
        drop(conn);
        let err = Store::open(&path).err().expect("a newer schema must be refused");
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
        assert!(err.to_string().contains("newer fimvt"), "{err}");
        drop(d);
    }

    #[test]
    fn open_existing_says_whether_the_database_is_older_or_newer() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(DB_FILE);
        let older = schema_version() - 1;
        let conn = Connection::open(&path).unwrap();
        for (_, sql) in &migrate::MIGRATIONS[..older as usize] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", older).unwrap();
        drop(conn);

        let err = Store::open_existing(&path).err().expect("an older schema must be refused");
        let msg = err.to_string();
        assert!(matches!(err, StoreError::TooOld { .. }), "{msg}");
        assert!(msg.contains("older fimvt") && msg.contains("`fimvt run`"), "{msg}");
        assert!(!msg.contains("newer"), "{msg}");
        // The way out it names works: `fimvt run` and `fimvt scan` open with Store::open.
        drop(Store::open(&path).unwrap());
        Store::open_existing(&path).unwrap();

        Connection::open(&path).unwrap().pragma_update(None, "user_version", schema_version() + 1).unwrap();
        let err = Store::open_existing(&path).err().expect("a newer schema must be refused");
        let msg = err.to_string();
        assert!(matches!(err, StoreError::TooNew { .. }), "{msg}");
        assert!(msg.contains("newer fimvt") && msg.contains("upgrade fimvt"), "{msg}");
        assert!(!msg.contains("older"), "{msg}");
    }

    #[test]
    fn an_older_database_is_upgraded_with_its_queued_lookups_in_place() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(DB_FILE);
        let conn = Connection::open(&path).unwrap();
        for (_, sql) in &migrate::MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute(
            "INSERT INTO vt_queue (sha256, priority, enqueued, not_before, attempts, md5, sha1)
             VALUES ('abc', 2, 10, 500, 1, 'm', 's')",
            [],
        )
        .unwrap();
        drop(conn);
        let store = Store::open(&path).unwrap();
        let v: i64 = store.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, schema_version());
        assert_eq!(store.vt_queue_depth().unwrap(), [0, 0, 1, 0]);
        assert_eq!(store.vt_next_due(0).unwrap(), Some(500), "its retry time kept");
        assert_eq!(store.vt_attempts("abc").unwrap(), 1);
        let cols: Vec<String> = store
            .conn
            .prepare("SELECT name FROM pragma_table_info('vt_queue')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(cols, ["sha256", "priority", "enqueued", "not_before", "attempts"]);
    }

    #[test]
    fn non_utf8_paths_round_trip_and_utf8_ones_stay_text() {
        let (_d, store) = temp_store();
        let odd = PathBuf::from(OsStr::from_bytes(b"/w/\xff\xfe.bin"));
        let plain = PathBuf::from("/w/plain.txt");
        store.upsert_file(&odd, &state(b"a"), 1).unwrap();
        store.upsert_file(&plain, &state(b"b"), 1).unwrap();
        let index = store.stat_index().unwrap();
        assert!(index.contains_key(&odd) && index.contains_key(&plain));
        assert_eq!(store.get_file(&odd).unwrap().unwrap(), state(b"a"));
        let t: String = store
            .conn
            .query_row("SELECT typeof(path) FROM files WHERE path = '/w/plain.txt'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(t, "text");
        let mut under = store.paths_under(Path::new("/w")).unwrap();
        under.sort();
        assert_eq!(under, vec![plain, odd]);
        assert!(store.paths_under(Path::new("/w/plain.txt")).unwrap().is_empty());
    }

    #[test]
    fn the_subtree_of_the_root_or_of_a_folder_with_a_trailing_slash_is_all_below_it() {
        let (_d, store) = temp_store();
        let paths: Vec<PathBuf> = ["/etc/passwd", "/tmp/x/a", "/tmp/x/deep/b", "/tmp/xy/c", "/top"]
            .iter()
            .map(PathBuf::from)
            .chain([PathBuf::from(OsStr::from_bytes(b"/tmp/x/\xff"))])
            .collect();
        for p in &paths {
            store.upsert_file(p, &state(b"a"), 1).unwrap();
        }
        let under = |dir: &str| {
            let mut v = store.paths_under(Path::new(dir)).unwrap();
            v.sort();
            v
        };
        let mut all = paths.clone();
        all.sort();
        assert_eq!(under("/"), all);
        assert_eq!(under("//"), all);
        let x: Vec<PathBuf> = under("/tmp/x");
        assert_eq!(x.len(), 3, "{x:?}");
        assert!(x.iter().all(|p| p.starts_with("/tmp/x")), "{x:?}");
        assert_eq!(under("/tmp/x/"), x);
        assert_eq!(under("/tmp/x//"), x);

        // history goes through the same ranges.
        for (i, p) in paths.iter().enumerate() {
            let ev = FimEvent {
                path: p.clone(),
                kind: EventKind::Added,
                mode: crate::fim::ScanMode::Scheduled,
                changed: vec![],
                before: None,
                after: Some(state(b"a")),
                tags: vec![],
            };
            store.insert_event(&format!("id{i}"), 10, &ev).unwrap();
        }
        let history = |dir: &str| {
            let f = HistoryFilter { path: Some(PathBuf::from(dir)), ..Default::default() };
            store.history(&f).unwrap().len()
        };
        assert_eq!(history("/"), paths.len());
        assert_eq!(history("/tmp/x/"), 3);
        assert_eq!(history("/tmp/x"), 3);
    }

    #[test]
    fn upsert_keeps_first_seen() {
        let (_d, store) = temp_store();
        let p = Path::new("/w/f");
        store.upsert_file(p, &state(b"1"), 100).unwrap();
        store.upsert_file(p, &state(b"2"), 200).unwrap();
        let (first, last): (i64, i64) = store
            .conn
            .query_row("SELECT first_seen, last_seen FROM files", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((first, last), (100, 200));
    }
}
