//! What a running fimvt publishes for the read commands in the `daemon_state`
//! table, and the one reading of it: who holds the data folder (the daemon, a
//! one-shot scan, or nobody) and what state VirusTotal lookups are in. The daemon
//! and the ledger write these keys; `status` and `lookup` read them here.

use std::path::Path;

use crate::store::{Store, StoreError};

/// The daemon's pid, written at start.
pub const PID: &str = "pid";
/// Unix time of the daemon's start.
pub const STARTED: &str = "started";
/// Unix time of a clean stop; empty while it runs.
pub const STOPPED: &str = "stopped";
/// Realtime roots with watches, one escaped path per line.
pub const WATCHED: &str = "watched";
/// Realtime roots without watches (scanned only), one escaped path per line.
pub const UNWATCHED: &str = "unwatched";
/// Watches held after the last scan (one per folder).
pub const WATCHES: &str = "watches";
/// `LookupState`, encoded.
pub const VIRUSTOTAL: &str = "vt";

/// Who holds the data folder's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occupant {
    Nobody,
    /// `fimvt run`, since `started` (Unix time).
    Daemon {
        pid: String,
        started: Option<i64>,
    },
    /// Something else holding the lock: `fimvt scan`, or `lookup` asking by itself.
    OneShot {
        pid: String,
    },
}

/// Tells the daemon from a one-shot process: the lock's holder is the daemon when
/// its pid is the one the daemon published and it has not said it stopped.
pub fn occupant(store: &Store, data_dir: &Path) -> Result<Occupant, StoreError> {
    let Some(pid) = crate::lock::holder(data_dir) else {
        return Ok(Occupant::Nobody);
    };
    let published = store.state(PID)?.map(|s| s.0);
    let running = store.state(STOPPED)?.is_some_and(|s| s.0.is_empty());
    if running && published.as_deref() == Some(pid.as_str()) {
        let started = store.state(STARTED)?.and_then(|s| s.0.parse().ok());
        Ok(Occupant::Daemon { pid, started })
    } else {
        Ok(Occupant::OneShot { pid })
    }
}

/// The state of VirusTotal lookups, as the daemon last recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupState {
    Ok,
    /// Lookups are off in the daemon, and why.
    Off(String),
    /// A 429 paused lookups until this Unix time.
    PausedUntil(i64),
    /// VirusTotal refused the key: no lookups until it changes.
    BadKey,
}

impl LookupState {
    pub fn encode(&self) -> String {
        match self {
            LookupState::Ok => "ok".into(),
            LookupState::Off(why) => format!("off: {why}"),
            LookupState::PausedUntil(t) => format!("paused until {t}"),
            LookupState::BadKey => "bad_key".into(),
        }
    }

    /// `None` for a value this binary does not write.
    pub fn decode(s: &str) -> Option<LookupState> {
        if s == "ok" {
            Some(LookupState::Ok)
        } else if s == "bad_key" {
            Some(LookupState::BadKey)
        } else if let Some(why) = s.strip_prefix("off: ") {
            Some(LookupState::Off(why.into()))
        } else {
            s.strip_prefix("paused until ").and_then(|t| t.parse().ok()).map(LookupState::PausedUntil)
        }
    }

    pub fn load(store: &Store) -> Result<Option<LookupState>, StoreError> {
        Ok(store.state(VIRUSTOTAL)?.and_then(|s| LookupState::decode(&s.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_states_read_back_as_written() {
        for s in [
            LookupState::Ok,
            LookupState::Off("no API key".into()),
            LookupState::PausedUntil(1_795_804_923),
            LookupState::BadKey,
        ] {
            assert_eq!(LookupState::decode(&s.encode()), Some(s.clone()), "{}", s.encode());
        }
        assert_eq!(LookupState::decode("paused until soon"), None);
    }
}
