//! The records fimvt keeps, as plain data that depends on nothing else in the
//! crate: what the store, the alerts, the recorder and VirusTotal pass between
//! them. Behaviour lives with its stage (`attrs`, `hash`, `virustotal`).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Hex digests of one file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
}

/// Everything recorded about one file at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub size: u64,
    /// Full `st_mode`, file type bits included (`printf('%o', mode)` gives `100644`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub uname: String,
    pub gname: String,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    pub inode: u64,
    /// `None` when hashing was skipped (file larger than `max_file_size`).
    pub digests: Option<Digests>,
    /// Nanosecond mtime and ctime: not alerted on, only used to skip re-reading.
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// The stat fields that decide whether a file needs re-reading. A file's owner can
/// set mtime back with `touch -d`, but not ctime, so a content change always shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatKey {
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub inode: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl StatKey {
    pub fn of(md: &Metadata) -> StatKey {
        StatKey {
            size: md.size(),
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            inode: md.ino(),
            mtime_ns: md.mtime().saturating_mul(1_000_000_000).saturating_add(md.mtime_nsec()),
            ctime_ns: md.ctime().saturating_mul(1_000_000_000).saturating_add(md.ctime_nsec()),
        }
    }
}

/// A file's verdict, as cached and alerted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// False for a hash VirusTotal does not know (404).
    pub found: bool,
    pub malicious: u32,
    pub suspicious: u32,
    pub undetected: u32,
    pub harmless: u32,
    /// harmless + malicious + suspicious + undetected.
    pub total: u32,
    /// Last analysis, `YYYY-MM-DD HH:MM:SS` UTC.
    pub scan_date: Option<String>,
    pub permalink: String,
}

impl Verdict {
    pub fn not_found(sha256: &str) -> Verdict {
        Verdict {
            found: false,
            malicious: 0,
            suspicious: 0,
            undetected: 0,
            harmless: 0,
            total: 0,
            scan_date: None,
            permalink: format!(
                "https://www.virustotal.com/gui/file/{}",
                sha256.chars().filter(|c| c.is_ascii_hexdigit()).collect::<String>()
            ),
        }
    }
}

/// The file a VirusTotal alert is about, and the FIM alert that reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtSource {
    /// Empty for a file of the baseline, which had no FIM alert.
    pub alert_id: String,
    pub file: PathBuf,
    pub md5: String,
    pub sha1: String,
}
