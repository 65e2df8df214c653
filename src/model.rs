//! The records fimvt keeps, as plain data that depends on nothing else in the
//! crate: what the store, the alerts, the recorder and VirusTotal pass between
//! them. Behaviour lives with its stage (`attrs`, `hash`, `virustotal`).

use std::path::PathBuf;

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
