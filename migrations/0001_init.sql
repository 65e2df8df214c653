-- Why: fimvt's first schema. `files` holds the current state, one row per monitored
-- path; `events` is the append-only history behind every FIM alert; `scans` records
-- each scan so a baseline is told apart from later scans and `status` can report.
--
-- Paths have no declared type: a path whose bytes are UTF-8 is stored as TEXT (so
-- `WHERE path = '/x'` and LIKE work in sqlite3), any other path as a BLOB of its
-- exact bytes, so every name round-trips. Times are Unix seconds (UTC); use
-- datetime(col, 'unixepoch', 'localtime') to read them.

CREATE TABLE files (
    path        PRIMARY KEY NOT NULL,
    size        INTEGER NOT NULL,
    perm        TEXT    NOT NULL,   -- 'rw-r--r--', as Wazuh prints it
    mode        INTEGER NOT NULL,   -- st_mode; printf('%o', mode) gives '100644'
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    uname       TEXT    NOT NULL,   -- '' when the uid has no user name
    gname       TEXT    NOT NULL,
    mtime       INTEGER NOT NULL,
    inode       INTEGER NOT NULL,
    md5         TEXT,               -- NULL when the file exceeded max_file_size
    sha1        TEXT,
    sha256      TEXT,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    -- Nanosecond mtime and ctime: only used to decide whether to re-read a file.
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL
) WITHOUT ROWID;  -- one b-tree keyed by path: half the work per write of a rowid table + index

CREATE TABLE events (
    id                  INTEGER PRIMARY KEY,
    alert_id            TEXT    NOT NULL,   -- '<epoch>.<offset>' in alerts.log / alerts.json
    time                INTEGER NOT NULL,
    path                        NOT NULL,   -- TEXT or BLOB, as in files
    event               TEXT    NOT NULL CHECK (event IN ('added', 'modified', 'deleted')),
    mode                TEXT    NOT NULL CHECK (mode IN ('scheduled', 'realtime')),
    changed_attributes  TEXT    NOT NULL DEFAULT '',  -- 'size,mtime,md5,sha1,sha256'
    -- The state before (NULL for added) and after (NULL for deleted).
    size_before INTEGER, size_after INTEGER,
    perm_before TEXT,    perm_after TEXT,
    uid_before INTEGER,  uid_after INTEGER,
    gid_before INTEGER,  gid_after INTEGER,
    uname_before TEXT,   uname_after TEXT,
    gname_before TEXT,   gname_after TEXT,
    mtime_before INTEGER, mtime_after INTEGER,
    inode_before INTEGER, inode_after INTEGER,
    md5_before TEXT,     md5_after TEXT,
    sha1_before TEXT,    sha1_after TEXT,
    sha256_before TEXT,  sha256_after TEXT
);

CREATE INDEX events_path_time ON events (path, time);
CREATE INDEX events_time ON events (time);

CREATE TABLE scans (
    id        INTEGER PRIMARY KEY,
    kind      TEXT    NOT NULL CHECK (kind IN ('baseline', 'scheduled')),
    started   INTEGER NOT NULL,
    finished  INTEGER,            -- NULL: the scan did not complete
    files     INTEGER,
    bytes     INTEGER,
    added     INTEGER,
    modified  INTEGER,
    deleted   INTEGER,
    errors    INTEGER
);
