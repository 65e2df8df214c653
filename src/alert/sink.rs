//! The alert sink: the one place that appends to alerts.log and alerts.json. It
//! assigns each alert its `<epoch>.<offset>` id from the byte length of alerts.log,
//! counts how often each rule fired, and makes both files durable on `sync` (the
//! caller syncs before committing the matching database change, so a crash can
//! repeat an alert but never lose one).
//!
//! A sync can also run on a thread of its own (`start_sync`, `finish_sync`), so
//! the writer can write out the next alert while the disk works: two
//! `fdatasync` take about half a millisecond, and a file change waiting for
//! them had its alert late by as much.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Local;
use crossbeam_channel::{Receiver, RecvError, Sender, bounded};

use super::format::{self, Header};
use super::vt::VtAlert;
use super::{Identity, fim_rule};
use crate::fim::FimEvent;

pub const ALERTS_LOG: &str = "alerts.log";
pub const ALERTS_JSON: &str = "alerts.json";

/// Appends alerts; owned by a single writer.
pub struct AlertSink {
    dir: PathBuf,
    identity: Identity,
    log: BufWriter<File>,
    json: BufWriter<File>,
    /// Bytes in alerts.log and alerts.json, buffered ones included (the first is
    /// the next alert's offset).
    lens: (u64, u64),
    fired: HashMap<u32, u64>,
    /// Alerts written since the last sync started.
    dirty: bool,
    /// Lengths of both files at the last successful sync: all whole alerts.
    synced: (u64, u64),
    /// The files again, for the sync thread.
    files: Arc<(File, File)>,
    /// Asks the sync thread to sync these files.
    sync_tx: Sender<Arc<(File, File)>>,
    /// Its answer, one per request.
    sync_done: Receiver<io::Result<()>>,
    /// The lengths a sync in flight will have made durable.
    in_flight: Option<(u64, u64)>,
}

/// What a sync comes to when the sync thread is gone (it panicked).
fn sync_thread_gone() -> io::Error {
    io::Error::other("the alert sync thread is gone")
}

/// Syncs both files for each request, and says how it went.
fn sync_thread(requests: Receiver<Arc<(File, File)>>, done: Sender<io::Result<()>>) {
    // Fault injection for the tests, in debug builds only: a disk this slow.
    #[cfg(debug_assertions)]
    let slow_disk = std::env::var("FIMVT_TEST_SYNC_DELAY_MS").ok().and_then(|ms| ms.parse().ok());
    for files in requests {
        #[cfg(debug_assertions)]
        if let Some(ms) = slow_disk {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let r = files.0.sync_data().and_then(|()| files.1.sync_data());
        if done.send(r).is_err() {
            return;
        }
    }
}

/// Opens `name` in `dir` for appending, not readable by others. A crash in the
/// middle of writing an alert can leave it torn at the end of the file; such an
/// alert was never committed (alerts are synced before their commit), so it is
/// cut off here and raised again when the change is found again. Every alert
/// left in the file is whole, and every line of alerts.json parses.
fn open_append(dir: &Path, name: &str) -> io::Result<(File, u64)> {
    let path = dir.join(name);
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o640)
        // Never write through a symlink someone planted in the data folder.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    let len = f.metadata()?.len();
    // An alert is a few KiB at most: the last 1 MiB holds any torn one whole.
    let start = len.saturating_sub(1 << 20);
    let mut tail = Vec::new();
    f.seek(SeekFrom::Start(start))?;
    f.read_to_end(&mut tail)?;
    let keep = start + complete_prefix(name, &tail) as u64;
    if keep < len {
        tracing::warn!(file = %path.display(), bytes = len - keep, "removing an alert torn by a crash; it will be raised again");
        f.set_len(keep)?;
    }
    Ok((f, keep))
}

/// How much of `tail` (the end of an alert file) is whole alerts.
fn complete_prefix(name: &str, tail: &[u8]) -> usize {
    // First, whole lines only.
    let lines = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if name == ALERTS_JSON {
        return lines;
    }
    let tail = &tail[..lines];
    // alerts.log: the last alert starts at the last "** Alert " line; it is whole
    // if it ends with its blank line and, for a FIM alert, has its Attributes block.
    let Some(last) = find_last_header(tail) else {
        return tail.len(); // no header in view: nothing to judge, leave it
    };
    let alert = &tail[last..];
    let fim = alert.windows(9).any(|w| w == b"\nRule: 55");
    let whole = alert.ends_with(b"\n\n") && (!fim || alert.windows(13).any(|w| w == b"\nAttributes:\n"));
    if whole { tail.len() } else { last }
}

fn find_last_header(tail: &[u8]) -> Option<usize> {
    const HEADER: &[u8] = b"** Alert ";
    (0..tail.len()).rev().find(|&i| tail[i..].starts_with(HEADER) && (i == 0 || tail[i - 1] == b'\n'))
}

impl AlertSink {
    pub fn open(dir: &Path, identity: Identity) -> io::Result<AlertSink> {
        let (log, log_len) = open_append(dir, ALERTS_LOG)?;
        let (json, json_len) = open_append(dir, ALERTS_JSON)?;
        let (sync_tx, requests) = bounded(1);
        let (done, sync_done) = bounded(1);
        std::thread::Builder::new().name("alert-sync".into()).spawn(move || sync_thread(requests, done))?;
        Ok(AlertSink {
            synced: (log_len, json_len),
            dir: dir.to_path_buf(),
            identity,
            files: Arc::new((log.try_clone()?, json.try_clone()?)),
            log: BufWriter::with_capacity(256 << 10, log),
            json: BufWriter::with_capacity(256 << 10, json),
            lens: (log_len, json_len),
            fired: HashMap::new(),
            dirty: false,
            sync_tx,
            sync_done,
            in_flight: None,
        })
    }

    /// Appends the alerts for one FIM event and returns its alert id.
    pub fn fim(&mut self, ev: &FimEvent) -> io::Result<String> {
        self.append(fim_rule(ev.kind).id, |h| (format::fim_log(ev, h), format::fim_json(ev, h)))
    }

    /// Appends one VirusTotal alert and returns its alert id.
    pub fn virustotal(&mut self, alert: &VtAlert) -> io::Result<String> {
        self.append(alert.rule().0.id, |h| (format::vt_log(alert, h), format::vt_json(alert, h)))
    }

    /// Appends one alert, formatted from its header, to both files.
    fn append(
        &mut self,
        rule_id: u32,
        format: impl FnOnce(&Header<'_, Local>) -> (String, String),
    ) -> io::Result<String> {
        let time = Local::now();
        let id = format!("{}.{}", time.timestamp(), self.lens.0);
        let fired = self.fired.entry(rule_id).or_insert(0);
        *fired += 1;
        let header = Header { time, id: &id, identity: &self.identity, firedtimes: *fired };
        let (log, mut json) = format(&header);
        json.push('\n');
        self.log.write_all(log.as_bytes())?;
        self.lens.0 += log.len() as u64;
        self.json.write_all(json.as_bytes())?;
        self.lens.1 += json.len() as u64;
        self.dirty = true;
        Ok(id)
    }

    /// Writes out buffered alerts, without waiting for the disk: readers of the
    /// files see them; a crash may still lose them (see `sync`).
    pub fn flush(&mut self) -> io::Result<()> {
        self.log.flush()?;
        self.json.flush()
    }

    /// Writes out buffered alerts and waits until they are on disk (through the
    /// sync thread too: one way to sync, one place that says what is durable).
    pub fn sync(&mut self) -> io::Result<()> {
        if self.start_sync()? {
            self.wait_in_flight()?;
        }
        Ok(())
    }

    /// Writes out buffered alerts and has the sync thread make them durable;
    /// `false` when there was nothing to sync. Alerts written meanwhile are not
    /// covered: they need a sync of their own. Then `finish_sync` with what
    /// `sync_done` says.
    pub fn start_sync(&mut self) -> io::Result<bool> {
        self.wait_in_flight()?;
        if !self.dirty {
            return Ok(false);
        }
        self.flush()?;
        self.sync_tx.send(self.files.clone()).map_err(|_| sync_thread_gone())?;
        self.in_flight = Some(self.lens);
        self.dirty = false;
        Ok(true)
    }

    /// Where the sync thread answers, once per `start_sync`.
    pub fn sync_done(&self) -> &Receiver<io::Result<()>> {
        &self.sync_done
    }

    /// Takes the sync thread's answer to `start_sync`.
    pub fn finish_sync(&mut self, answer: Result<io::Result<()>, RecvError>) -> io::Result<()> {
        let lens = self.in_flight.take().expect("a sync in flight");
        let result = answer.unwrap_or_else(|_| Err(sync_thread_gone()));
        if let Err(e) = result {
            // What the failed sync covered is still to be made durable.
            self.dirty = true;
            return Err(e);
        }
        self.synced = lens;
        Ok(())
    }

    fn wait_in_flight(&mut self) -> io::Result<()> {
        if self.in_flight.is_some() {
            let answer = self.sync_done.recv();
            self.finish_sync(answer)?;
        }
        Ok(())
    }

    /// After a failed write or sync (a full disk): forgets the alerts not synced
    /// yet and cuts both files back to their last synced length, so no partial
    /// alert stays. The changes those alerts reported were not committed either;
    /// they are found and alerted again.
    pub fn recover(&mut self) -> io::Result<()> {
        // Not while the sync thread still works on the files; its answer is moot.
        if self.in_flight.take().is_some() {
            let _ = self.sync_done.recv();
        }
        let (log_len, json_len) = self.synced;
        // into_parts hands the files back without flushing what is buffered.
        let (log, _) =
            std::mem::replace(&mut self.log, BufWriter::new(open_append(&self.dir, ALERTS_LOG)?.0)).into_parts();
        let (json, _) =
            std::mem::replace(&mut self.json, BufWriter::new(open_append(&self.dir, ALERTS_JSON)?.0)).into_parts();
        log.set_len(log_len)?;
        json.set_len(json_len)?;
        self.files = Arc::new((log.try_clone()?, json.try_clone()?));
        self.log = BufWriter::with_capacity(256 << 10, log);
        self.json = BufWriter::with_capacity(256 << 10, json);
        self.lens = (log_len, json_len);
        self.dirty = false;
        Ok(())
    }

    /// Reopens both files (after logrotate moved them away).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.sync()?;
        let (log, log_len) = open_append(&self.dir, ALERTS_LOG)?;
        let (json, json_len) = open_append(&self.dir, ALERTS_JSON)?;
        self.files = Arc::new((log.try_clone()?, json.try_clone()?));
        self.log = BufWriter::with_capacity(256 << 10, log);
        self.json = BufWriter::with_capacity(256 << 10, json);
        self.lens = (log_len, json_len);
        self.synced = (log_len, json_len);
        Ok(())
    }
}

impl Drop for AlertSink {
    fn drop(&mut self) {
        // Best effort: an explicit `sync` is what callers rely on.
        let _ = self.log.flush();
        let _ = self.json.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE_FIM: &[u8] = b"** Alert 1.0: - ossec,\n2026 Nov 27 18:06:04 h->syscheck\nRule: 554 (level 5) -> 'File added to the system.'\nFile '/w/a' added\nMode: realtime\n\nAttributes:\n - Size: 1\n\n";

    #[test]
    fn a_torn_alert_at_the_end_is_cut_off() {
        let two = [WHOLE_FIM, WHOLE_FIM].concat();
        assert_eq!(complete_prefix(ALERTS_LOG, &two), two.len(), "whole alerts stay");
        for cut in [WHOLE_FIM.len() + 5, WHOLE_FIM.len() + 80, WHOLE_FIM.len() + 99] {
            assert_eq!(complete_prefix(ALERTS_LOG, &two[..cut]), WHOLE_FIM.len(), "cut at {cut}");
        }
        assert_eq!(complete_prefix(ALERTS_JSON, b"{\"a\":1}\n{\"a\":"), 8);
        assert_eq!(complete_prefix(ALERTS_JSON, b""), 0);
    }

    #[test]
    fn reopening_a_file_with_a_torn_alert_repairs_it() {
        let dir = tempfile::tempdir().unwrap();
        let whole = [WHOLE_FIM, WHOLE_FIM].concat();
        std::fs::write(dir.path().join(ALERTS_LOG), &whole[..whole.len() - 30]).unwrap();
        std::fs::write(dir.path().join(ALERTS_JSON), b"{\"id\":\"1.0\"}\n{\"id\":\"1.").unwrap();
        let identity = Identity { hostname: "h".into(), agent_id: "000".into(), agent_name: "h".into() };
        let sink = AlertSink::open(dir.path(), identity).unwrap();
        assert_eq!(sink.lens.0, WHOLE_FIM.len() as u64, "the next alert id starts where the whole ones end");
        drop(sink);
        assert_eq!(std::fs::read(dir.path().join(ALERTS_LOG)).unwrap(), WHOLE_FIM);
        assert_eq!(std::fs::read(dir.path().join(ALERTS_JSON)).unwrap(), b"{\"id\":\"1.0\"}\n");
    }

    fn sink(dir: &Path) -> AlertSink {
        let identity = Identity { hostname: "h".into(), agent_id: "000".into(), agent_name: "h".into() };
        AlertSink::open(dir, identity).unwrap()
    }

    fn file_lens(dir: &Path) -> (u64, u64) {
        let len = |name| std::fs::metadata(dir.join(name)).unwrap().len();
        (len(ALERTS_LOG), len(ALERTS_JSON))
    }

    #[test]
    fn an_alert_written_while_a_sync_is_in_flight_needs_a_sync_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        assert!(!sink.start_sync().unwrap(), "nothing written, nothing to sync");
        sink.virustotal(&VtAlert::RateLimited { http_status: 429 }).unwrap();
        assert!(sink.start_sync().unwrap());
        let first = file_lens(dir.path());
        assert!(first.0 > 0 && first.1 > 0, "the alert was written out when the sync started");
        sink.virustotal(&VtAlert::BadKey { http_status: 401 }).unwrap();
        sink.flush().unwrap();
        let answer = sink.sync_done().recv();
        sink.finish_sync(answer).unwrap();
        assert_eq!(sink.synced, first, "the sync covers what was written before it started, no more");
        assert!(sink.dirty, "the second alert still needs a sync");
        // A failure now (a full disk) cuts back to what is durable: the first alert.
        sink.recover().unwrap();
        assert_eq!(file_lens(dir.path()), first);
        assert!(!std::fs::read_to_string(dir.path().join(ALERTS_LOG)).unwrap().contains("87102"));
    }

    #[test]
    fn a_blocking_sync_waits_for_the_one_in_flight_then_covers_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        sink.virustotal(&VtAlert::RateLimited { http_status: 429 }).unwrap();
        assert!(sink.start_sync().unwrap());
        sink.virustotal(&VtAlert::BadKey { http_status: 401 }).unwrap();
        sink.sync().unwrap();
        assert_eq!(sink.in_flight, None, "the answer to the first sync was taken");
        assert_eq!(sink.synced, file_lens(dir.path()), "both alerts are durable");
        assert!(!sink.dirty);
        // The sync thread is free for the next round.
        sink.virustotal(&VtAlert::RateLimited { http_status: 429 }).unwrap();
        assert!(sink.start_sync().unwrap());
        let answer = sink.sync_done().recv();
        sink.finish_sync(answer).unwrap();
        assert_eq!(sink.synced, file_lens(dir.path()));
    }
}
