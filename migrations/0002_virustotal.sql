-- Why: VirusTotal lookups that survive restarts and crashes, one request per
-- distinct SHA-256, a verdict cache users can join against `files`, and the
-- request log that keeps the rate and daily quota honest across restarts.

-- Hashes waiting for a verdict, asked in (priority, enqueued) order.
CREATE TABLE vt_queue (
    sha256      TEXT    PRIMARY KEY NOT NULL,
    priority    INTEGER NOT NULL,   -- 0 realtime, 1 scheduled scan, 2 baseline, 3 re-check
    enqueued    INTEGER NOT NULL,   -- Unix seconds
    not_before  INTEGER NOT NULL DEFAULT 0,  -- Unix ms: retry backoff or re-check time
    attempts    INTEGER NOT NULL DEFAULT 0,  -- failed tries since the last answer
    md5         TEXT,
    sha1        TEXT
) WITHOUT ROWID;

CREATE INDEX vt_queue_order ON vt_queue (priority, enqueued);

-- The file alerts waiting for a hash's answer: it fans out to each of them.
CREATE TABLE vt_waiters (
    sha256      TEXT NOT NULL,
    alert_id    TEXT NOT NULL,      -- '' for a file of the baseline (no FIM alert)
    path             NOT NULL,      -- TEXT or BLOB, as in files
    md5         TEXT NOT NULL,
    sha1        TEXT NOT NULL,
    PRIMARY KEY (sha256, alert_id, path)
) WITHOUT ROWID;

-- The verdict cache: the last answer for each hash.
CREATE TABLE vt_verdicts (
    sha256      TEXT    PRIMARY KEY NOT NULL,
    found       INTEGER NOT NULL,   -- 1 known to VirusTotal, 0 not found (404)
    malicious   INTEGER NOT NULL,
    suspicious  INTEGER NOT NULL,
    undetected  INTEGER NOT NULL,
    harmless    INTEGER NOT NULL,
    total       INTEGER NOT NULL,   -- harmless + malicious + suspicious + undetected
    scan_date   TEXT,               -- 'YYYY-MM-DD HH:MM:SS' UTC, VirusTotal's last analysis
    permalink   TEXT    NOT NULL,
    fetched     INTEGER NOT NULL,   -- Unix seconds of the answer
    rechecks    INTEGER NOT NULL DEFAULT 0  -- not-found re-checks done so far
) WITHOUT ROWID;

-- One row per request sent (Unix milliseconds), for the minute window and the
-- daily quota; rows older than two days are pruned.
CREATE TABLE vt_requests (
    time        INTEGER NOT NULL
);

CREATE INDEX vt_requests_time ON vt_requests (time);
