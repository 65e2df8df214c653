//! The alert sink: the one place that appends to alerts.log and alerts.json. It
//! assigns each alert its `<epoch>.<offset>` id from the byte length of alerts.log,
//! counts how often each rule fired, and makes both files durable on `sync` (the
//! caller syncs before committing the matching database change, so a crash can
//! repeat an alert but never lose one).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::Local;

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
    /// Bytes in alerts.log, buffered ones included: the next alert's offset.
    log_len: u64,
    fired: HashMap<u32, u64>,
    /// Alerts written since the last `sync`.
    dirty: bool,
}

/// Opens `name` in `dir` for appending, not readable by others, and ends a line a
/// crash may have left torn so the next alert starts on a line of its own.
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
    let mut len = f.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            f.write_all(b"\n")?;
            len += 1;
        }
    }
    Ok((f, len))
}

impl AlertSink {
    pub fn open(dir: &Path, identity: Identity) -> io::Result<AlertSink> {
        let (log, log_len) = open_append(dir, ALERTS_LOG)?;
        let (json, _) = open_append(dir, ALERTS_JSON)?;
        Ok(AlertSink {
            dir: dir.to_path_buf(),
            identity,
            log: BufWriter::with_capacity(256 << 10, log),
            json: BufWriter::with_capacity(256 << 10, json),
            log_len,
            fired: HashMap::new(),
            dirty: false,
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
        let id = format!("{}.{}", time.timestamp(), self.log_len);
        let fired = self.fired.entry(rule_id).or_insert(0);
        *fired += 1;
        let header = Header { time, id: &id, identity: &self.identity, firedtimes: *fired };
        let (log, mut json) = format(&header);
        json.push('\n');
        self.log.write_all(log.as_bytes())?;
        self.log_len += log.len() as u64;
        self.json.write_all(json.as_bytes())?;
        self.dirty = true;
        Ok(id)
    }

    /// Writes out buffered alerts and waits until they are on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.log.flush()?;
        self.json.flush()?;
        self.log.get_ref().sync_data()?;
        self.json.get_ref().sync_data()?;
        self.dirty = false;
        Ok(())
    }

    /// Reopens both files (after logrotate moved them away).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.sync()?;
        let (log, log_len) = open_append(&self.dir, ALERTS_LOG)?;
        let (json, _) = open_append(&self.dir, ALERTS_JSON)?;
        self.log = BufWriter::with_capacity(256 << 10, log);
        self.json = BufWriter::with_capacity(256 << 10, json);
        self.log_len = log_len;
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
