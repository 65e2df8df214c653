//! VirusTotal lookups: the API client (the only code that knows VirusTotal's
//! JSON), the request budget, the asynchronous worker that asks, and the ledger,
//! the writer's side that turns answers into verdicts, alerts and queue changes.
//!
//! ```text
//! Recorder (writer thread): new SHA-256 -> cache hit? alert now : vt_queue + vt_waiters
//!                                                          | wake
//! worker (tokio, own thread): limiter -> vt_first_due (read-only connection) -> GET /api/v3/files/{sha256}
//!                                      -> VtMsg::Answered -> writer: Ledger -> alerts, vt_verdicts,
//!                                                                    dequeue or retry later -> ack
//! ```

pub mod client;
pub mod ledger;
pub mod limiter;
pub mod lookup;
pub mod worker;

use std::time::Duration;

use crate::config::{Config, Secret};
use crate::fim::ScanMode;
#[cfg(test)]
use crate::model::Verdict;
use crate::store::CachedVerdict;

/// Queue priorities: lower is asked first.
pub const PRIORITY_REALTIME: u8 = 0;
pub const PRIORITY_SCHEDULED: u8 = 1;
pub const PRIORITY_BASELINE: u8 = 2;
pub const PRIORITY_RECHECK: u8 = 3;

pub fn priority_of(mode: ScanMode) -> u8 {
    match mode {
        ScanMode::Realtime => PRIORITY_REALTIME,
        ScanMode::Scheduled => PRIORITY_SCHEDULED,
    }
}

/// What the recorder needs to decide between the cache and the queue.
#[derive(Debug, Clone)]
pub struct Policy {
    pub cache_ttl: Duration,
    /// Waits before asking again about a hash VirusTotal did not know.
    pub recheck_not_found: Vec<Duration>,
    /// Queue the files of the baseline too (at the lowest priority).
    pub scan_baseline: bool,
    pub max_retries: u32,
    /// Wait before the first retry (doubling after each failure, up to 1 h).
    pub retry_backoff: Duration,
}

impl Policy {
    /// Whether a cached verdict answers without asking: younger than `cache_ttl`,
    /// and for a hash VirusTotal did not know, no re-check is due. The daemon and
    /// `fimvt lookup` both decide by this.
    pub fn answers_from_cache(&self, c: &CachedVerdict, now: i64) -> bool {
        let age = now.saturating_sub(c.fetched).max(0) as u64;
        if age >= self.cache_ttl.as_secs() {
            return false;
        }
        c.verdict.found || self.recheck_not_found.get(c.rechecks as usize).is_none_or(|d| age < d.as_secs())
    }
}

/// Everything the worker needs.
#[derive(Clone)]
pub struct Settings {
    pub base_url: String,
    pub api_key: Secret,
    pub requests_per_minute: u32,
    pub daily_quota: u32,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub concurrency: usize,
}

/// Whether lookups run, and if not, why (said once, at start).
pub enum Status {
    On(Policy, Settings),
    Off(&'static str),
}

pub fn status(cfg: &Config) -> Status {
    let vt = &cfg.virustotal;
    if !vt.enabled {
        return Status::Off("[virustotal] enabled = false");
    }
    let Some(key) = vt.api_key.clone() else {
        return Status::Off("no API key (set api_key, api_key_file or FIMVT_VT_API_KEY)");
    };
    Status::On(
        Policy {
            cache_ttl: vt.cache_ttl,
            recheck_not_found: vt.recheck_not_found.clone(),
            scan_baseline: vt.scan_baseline,
            max_retries: vt.max_retries,
            retry_backoff: vt.retry_backoff,
        },
        Settings {
            base_url: vt.base_url.clone(),
            api_key: key,
            requests_per_minute: vt.requests_per_minute,
            daily_quota: vt.daily_quota,
            connect_timeout: vt.connect_timeout,
            timeout: vt.timeout,
            concurrency: vt.concurrency,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            cache_ttl: Duration::from_secs(7 * 86_400),
            recheck_not_found: vec![Duration::from_secs(3600), Duration::from_secs(86_400)],
            scan_baseline: true,
            max_retries: 3,
            retry_backoff: Duration::from_secs(30),
        }
    }

    fn cached(found: bool, fetched: i64, rechecks: u32) -> CachedVerdict {
        let mut verdict = Verdict::not_found("ab");
        verdict.found = found;
        CachedVerdict { verdict, fetched, rechecks }
    }

    #[test]
    fn cache_freshness_follows_ttl_and_recheck_schedule() {
        let p = policy();
        let fresh = |c: CachedVerdict, now: i64| p.answers_from_cache(&c, now);
        assert!(fresh(cached(true, 1000, 0), 1000 + 6 * 86_400));
        assert!(!fresh(cached(true, 1000, 0), 1000 + 7 * 86_400));
        assert!(fresh(cached(false, 1000, 0), 1000 + 3599));
        assert!(!fresh(cached(false, 1000, 0), 1000 + 3600), "first re-check due after 1 h");
        assert!(!fresh(cached(false, 1000, 1), 1000 + 86_400));
        assert!(fresh(cached(false, 1000, 2), 1000 + 5 * 86_400), "re-checks done: the ttl rules");
    }
}
