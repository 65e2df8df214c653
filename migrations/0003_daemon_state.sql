-- Why: `fimvt status` reports what only the daemon knows (whether it runs, since
-- when, which folders it watches, the state of VirusTotal lookups) whether or not
-- the daemon is running when it is asked. The writer thread keeps these rows
-- current; readers never guess from log files.
CREATE TABLE daemon_state (
    key      TEXT    PRIMARY KEY NOT NULL,
    value    TEXT    NOT NULL,
    updated  INTEGER NOT NULL   -- Unix seconds
) WITHOUT ROWID;
