//! The operator's read commands: `history`, `verdicts`, `status` and `lookup`.
//! They open the database read-only (WAL lets them run beside the daemon), and
//! print aligned tables for people or, with `--json`, one JSON object per line
//! for machines. No SQL here: the queries are in `store/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{Local, TimeZone};
use serde_json::{Value, json};

use crate::clock::{local_time, unix_now, unix_now_ms};
use crate::config::{Config, format_duration, parse_duration};
use crate::daemon_state::{self, LookupState, Occupant, occupant};
use crate::model::Verdict;
use crate::store::{FileVerdict, HistoryFilter, HistoryRow, Store};
use crate::textutil::{escape_path, json_path};
use crate::virustotal::limiter::Spent;
use crate::virustotal::lookup::{Outcome, Source};

/// Exit statuses of the query commands (documented in the README).
pub const EXIT_OK: u8 = 0;
/// `lookup`: VirusTotal engines detect the file.
pub const EXIT_DETECTED: u8 = 3;
/// `lookup`: no verdict could be had (unknown, queued, or lookups off).
pub const EXIT_NO_VERDICT: u8 = 4;

/// A bad argument value (exit status 2, like clap's own usage errors).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Opens the configuration's database read-only; it must exist.
pub fn open(cfg: &Config) -> anyhow::Result<Store> {
    let db = cfg.db_path();
    if !db.exists() {
        anyhow::bail!("no database at {}: run `fimvt run` or `fimvt scan` first", db.display());
    }
    Store::open_readonly(&db).with_context(|| format!("database {}", db.display()))
}

/// `--since`: a duration back from now (`2h`, `30m`, `7d`) or a local date or
/// date and time (`2026-11-27`, `2026-11-27 18:00`).
pub fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(d) = parse_duration(text) {
        return Ok(unix_now() - d.as_secs() as i64);
    }
    let t = text.trim();
    let naive = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).expect("midnight"))
        })
        .map_err(|_| {
            format!("{text:?} is neither a duration (2h, 7d) nor a date (2026-11-27 or \"2026-11-27 18:00\")")
        })?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|d| d.timestamp())
        .ok_or_else(|| format!("{text:?} does not exist in the local time zone"))
}

fn verdict_text(v: Option<&Verdict>, queued: bool) -> String {
    match v {
        Some(v) if !v.found => "unknown".into(),
        Some(v) => format!("{}/{}", v.malicious, v.total),
        None if queued => "queued".into(),
        None => "-".into(),
    }
}

fn verdict_json(v: Option<&Verdict>) -> Value {
    match v {
        None => Value::Null,
        Some(v) => json!({
            "found": v.found, "positives": v.malicious, "total": v.total,
            "suspicious": v.suspicious, "scan_date": v.scan_date, "permalink": v.permalink,
        }),
    }
}

/// Prints rows as a table with a header, columns padded to their widest cell;
/// the last column is not padded.
fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Prints `rows` as JSON lines or as a table.
fn print_rows<T>(
    out: &mut impl Write,
    as_json: bool,
    rows: &[T],
    to_json: impl Fn(&T) -> Value,
    header: &[&str],
    to_cells: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<u8> {
    if as_json {
        for r in rows {
            writeln!(out, "{}", to_json(r))?;
        }
    } else {
        let cells: Vec<Vec<String>> = rows.iter().map(to_cells).collect();
        table(out, header, &cells)?;
    }
    Ok(EXIT_OK)
}

pub fn history(cfg: &Config, filter: &HistoryFilter, as_json: bool, out: &mut impl Write) -> anyhow::Result<u8> {
    let rows = open(cfg)?.history(filter)?;
    let to_json = |r: &HistoryRow| {
        let changed: Vec<&str> = r.changed_attributes.split(',').filter(|a| !a.is_empty()).collect();
        json!({
            "id": r.id, "alert_id": r.alert_id, "time": local_time(r.time), "unix_time": r.time,
            "path": json_path(&r.path), "event": r.event, "mode": r.mode, "changed_attributes": changed,
            "size": r.size, "md5": r.md5, "sha1": r.sha1, "sha256": r.sha256,
            "verdict": verdict_json(r.verdict.as_ref()),
        })
    };
    let to_cells = |r: &HistoryRow| {
        vec![
            local_time(r.time),
            r.event.clone(),
            r.mode.clone(),
            r.size.map_or("-".into(), |s| s.to_string()),
            r.sha256.clone().unwrap_or_else(|| "-".into()),
            verdict_text(r.verdict.as_ref(), false),
            escape_path(&r.path),
        ]
    };
    print_rows(out, as_json, &rows, to_json, &["TIME", "EVENT", "MODE", "SIZE", "SHA256", "VT", "PATH"], to_cells)
}

pub fn verdicts(cfg: &Config, malicious_only: bool, as_json: bool, out: &mut impl Write) -> anyhow::Result<u8> {
    let rows = open(cfg)?.file_verdicts(malicious_only)?;
    let to_json = |r: &FileVerdict| {
        json!({
            "path": json_path(&r.path), "sha256": r.sha256, "queued": r.queued,
            "verdict": verdict_json(r.verdict.as_ref()),
        })
    };
    let to_cells = |r: &FileVerdict| {
        let v = r.verdict.as_ref();
        vec![
            verdict_text(v, r.queued),
            v.and_then(|v| v.scan_date.clone()).unwrap_or_else(|| "-".into()),
            escape_path(&r.path),
            v.filter(|v| v.found).map_or("-".into(), |v| v.permalink.clone()),
        ]
    };
    print_rows(out, as_json, &rows, to_json, &["VT", "SCAN DATE", "PATH", "PERMALINK"], to_cells)
}

pub fn status(cfg: &Config, as_json: bool, out: &mut impl Write) -> anyhow::Result<u8> {
    let store = open(cfg)?;
    let state = |k: &str| store.state(k).ok().flatten();
    let occupant = occupant(&store, &cfg.general.data_dir)?;
    let running = matches!(occupant, Occupant::Daemon { .. });
    let started = state(daemon_state::STARTED).and_then(|s| s.0.parse::<i64>().ok());
    let stopped = state(daemon_state::STOPPED).and_then(|s| s.0.parse::<i64>().ok());
    let (daemon, holder) = match &occupant {
        Occupant::Daemon { pid, started } => {
            (format!("running (pid {pid}) since {}", started.map(local_time).unwrap_or_default()), Some(pid.clone()))
        }
        Occupant::OneShot { pid } => {
            (format!("not running; a one-shot scan or lookup holds the data folder (pid {pid})"), Some(pid.clone()))
        }
        Occupant::Nobody => (
            match stopped {
                Some(t) => format!("not running (stopped {})", local_time(t)),
                None if started.is_some() => "not running (did not stop cleanly)".into(),
                None => "not running (never started)".into(),
            },
            None,
        ),
    };
    let files = store.count_files()?;
    let realtime = cfg.directories.iter().filter(|d| d.realtime).count();
    let watched = state(daemon_state::WATCHED).map(|s| s.0).unwrap_or_default();
    let unwatched = state(daemon_state::UNWATCHED).map(|s| s.0).unwrap_or_default();
    let count = |s: &str| s.lines().filter(|l| !l.is_empty()).count();
    // Folders under the watched roots at the last scan: notify holds one watch each.
    let watches = state(daemon_state::WATCHES).and_then(|s| s.0.parse::<u64>().ok()).filter(|_| running);
    let last = store.last_scan()?;
    let vt = if !cfg.virustotal.enabled {
        "off ([virustotal] enabled = false)".to_string()
    } else if cfg.virustotal.api_key.is_none() {
        "off (no API key)".to_string()
    } else {
        match LookupState::load(&store)? {
            Some(LookupState::PausedUntil(t)) if t > unix_now() => {
                format!("paused for rate limit until {}", local_time(t))
            }
            Some(LookupState::PausedUntil(_) | LookupState::Ok) => "ok".into(),
            Some(LookupState::BadKey) => "bad key (refused by VirusTotal; fix it and send SIGHUP)".into(),
            Some(LookupState::Off(why)) => format!("off in the running daemon: {why}"),
            None => "ok (not started yet)".into(),
        }
    };
    let depth = store.vt_queue_depth()?;
    let spent = Spent::load(&store, unix_now_ms())?;
    let (minute, today) = (spent.last_minute.len(), spent.today);
    let db = cfg.db_path();
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let db_bytes = size(db.clone()) + size(db.with_extension("db-wal"));
    let (rpm, quota) = (cfg.virustotal.requests_per_minute, cfg.virustotal.daily_quota);

    if as_json {
        let v = json!({
            "daemon": {"running": running, "pid": holder, "started": started, "stopped": stopped},
            "files": files,
            "directories": {"configured": cfg.directories.len(), "realtime": realtime,
                            "watched": count(&watched), "unwatched": count(&unwatched)},
            "watches": watches,
            "last_scan": last.as_ref().map(|l| json!({
                "kind": l.kind, "started": l.started, "finished": l.finished,
                "seconds": l.finished.map(|f| f - l.started), "files": l.files, "added": l.added,
                "modified": l.modified, "deleted": l.deleted, "errors": l.errors,
            })),
            "virustotal": {"state": vt, "queue": {"realtime": depth[0], "scheduled": depth[1], "baseline": depth[2], "recheck": depth[3]},
                           "requests_this_minute": minute, "requests_per_minute": rpm,
                           "requests_today": today, "daily_quota": quota},
            "database_bytes": db_bytes,
        });
        writeln!(out, "{v}")?;
        return Ok(EXIT_OK);
    }
    let last_text = match &last {
        None => "none yet".to_string(),
        Some(l) => format!(
            "{} {} ({}), {} files, {} added, {} modified, {} deleted, {} errors",
            local_time(l.started),
            l.kind,
            l.finished.map_or("did not finish".to_string(), |f| format_duration(Duration::from_secs(
                (f - l.started).max(0) as u64
            ))),
            l.files.unwrap_or(0),
            l.added.unwrap_or(0),
            l.modified.unwrap_or(0),
            l.deleted.unwrap_or(0),
            l.errors.unwrap_or(0),
        ),
    };
    let lines = [
        ("daemon", daemon),
        ("monitored", format!("{files} files in {} folders ({realtime} realtime)", cfg.directories.len())),
        (
            "watches",
            format!(
                "{} inotify watches (one per folder) under {} realtime roots, {} roots unwatched (scanned only)",
                watches.map_or("?".into(), |w| w.to_string()),
                count(&watched),
                count(&unwatched)
            ),
        ),
        ("last scan", last_text),
        ("virustotal", vt),
        (
            "queue",
            format!("{} realtime, {} scheduled, {} baseline, {} re-check", depth[0], depth[1], depth[2], depth[3]),
        ),
        ("requests", format!("{minute}/{rpm} this minute, {today}/{quota} today (UTC)")),
        ("database", format!("{:.1} MB ({})", db_bytes as f64 / 1e6, db.display())),
    ];
    for (k, v) in lines {
        writeln!(out, "{:<11} {v}", format!("{k}:"))?;
    }
    Ok(EXIT_OK)
}

/// The SHA-256 `lookup` was given: a file's, or a recorded file's for an MD5 or
/// SHA-1. What is neither is a usage error.
fn resolve(store: &Store, what: &str) -> anyhow::Result<String> {
    let p = Path::new(what);
    if p.exists() {
        let mut buf = vec![0u8; crate::hash::READ_BUF];
        let (_, d) = crate::hash::hash_file(p, true, u64::MAX, &mut buf)
            .map_err(|e| anyhow::anyhow!("cannot hash {}: {e}", escape_path(p)))?;
        return Ok(d.expect("no size limit").sha256);
    }
    let hex = what.trim().to_ascii_lowercase();
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(UsageError(format!("{what:?} is neither an existing file nor an MD5, SHA-1 or SHA-256")).into());
    }
    let found = match hex.len() {
        64 => return Ok(hex),
        40 => store.sha256_of(None, None, Some(&hex))?,
        32 => store.sha256_of(None, Some(&hex), None)?,
        _ => return Err(UsageError(format!("{what:?} is not 32, 40 or 64 hex digits")).into()),
    };
    // VirusTotal is asked by SHA-256 only: an MD5 or SHA-1 must belong to a recorded file.
    Ok(found.ok_or_else(|| UsageError("no recorded file has that hash; give its SHA-256 or a path".into()))?)
}

fn print_verdict(
    out: &mut impl Write,
    sha: &str,
    v: &Verdict,
    source: &str,
    files: &[String],
    as_json: bool,
) -> anyhow::Result<u8> {
    let code = if v.malicious > 0 { EXIT_DETECTED } else { EXIT_OK };
    if as_json {
        writeln!(
            out,
            "{}",
            json!({"sha256": sha, "verdict": verdict_json(Some(v)), "source": source, "files": files})
        )?;
        return Ok(code);
    }
    let text = if v.found {
        format!(
            "{}/{} engines detect it (last analysis {})",
            v.malicious,
            v.total,
            v.scan_date.as_deref().unwrap_or("unknown")
        )
    } else {
        "not known to VirusTotal".to_string()
    };
    writeln!(out, "sha256:    {sha}\nverdict:   {text}\nsource:    {source}")?;
    if v.found {
        writeln!(out, "permalink: {}", v.permalink)?;
    }
    for f in files {
        writeln!(out, "file:      {f}")?;
    }
    Ok(code)
}

/// `lookup`: the verdict from the cache when the daemon would answer from it,
/// otherwise asked now within the daemon's budget (`virustotal::lookup`).
pub fn lookup(cfg: &Config, what: &str, as_json: bool, out: &mut impl Write) -> anyhow::Result<u8> {
    let store = open(cfg)?;
    let sha = resolve(&store, what)?;
    let files: Vec<String> = store.files_with_sha256(&sha)?.iter().map(|f| escape_path(&f.file)).collect();
    match crate::virustotal::lookup::lookup(cfg, &store, &sha)? {
        Outcome::Verdict(v, Source::Cache { fetched }) => {
            print_verdict(out, &sha, &v, &format!("cache (fetched {})", local_time(fetched)), &files, as_json)
        }
        Outcome::Verdict(v, Source::Asked) => print_verdict(out, &sha, &v, "VirusTotal, now", &files, as_json),
        Outcome::NoVerdict(why) => {
            if as_json {
                writeln!(out, "{}", json!({"sha256": sha, "verdict": null, "reason": why}))?;
            } else {
                writeln!(out, "sha256:    {sha}\nverdict:   none ({why})")?;
            }
            Ok(EXIT_NO_VERDICT)
        }
    }
}
