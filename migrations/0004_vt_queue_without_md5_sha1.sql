-- Why: vt_queue.md5 and .sha1 were written with every queued hash and never read:
-- VirusTotal is asked by SHA-256, and the MD5 and SHA-1 an alert shows come from
-- the file it is about (vt_waiters, files). A column nobody reads only misleads
-- whoever queries the queue.
ALTER TABLE vt_queue DROP COLUMN md5;
ALTER TABLE vt_queue DROP COLUMN sha1;
