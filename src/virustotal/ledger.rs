//! The writer's side of VirusTotal: what happens, inside the recorder's
//! transaction, when a new hash is handed off (cache or queue) and when the worker
//! brings an answer (verdict and alerts for every waiting file, retry later, or
//! pause). It also writes integration.log, one line per request.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::client::Answer;
use super::{PRIORITY_BASELINE, PRIORITY_RECHECK, Policy};
use crate::alert::AlertSink;
use crate::alert::vt::{VtAlert, VtNumbers};
use crate::clock::{unix_now, unix_now_ms};
use crate::daemon_state::{self, LookupState};
use crate::journal::{Journal, RecordError};
use crate::model::{Verdict, VtSource};
use crate::store::Store;

pub const INTEGRATION_LOG: &str = "integration.log";

/// The alert a verdict gives for one file.
pub fn alert_for(v: &Verdict, source: VtSource) -> VtAlert {
    if !v.found {
        return VtAlert::NotFound { source };
    }
    let numbers = VtNumbers {
        sha1: source.sha1.clone(),
        positives: v.malicious,
        total: v.total,
        scan_date: v.scan_date.clone(),
        permalink: v.permalink.clone(),
    };
    VtAlert::Found { source, numbers }
}

/// Hands off one file with new content: alerts from the cache when it can,
/// otherwise queues the hash (once) with the file as a waiter. Returns whether
/// something was queued (the worker then needs waking).
pub fn hand_off(
    store: &Store,
    sink: &mut AlertSink,
    policy: &Policy,
    sha256: &str,
    source: VtSource,
    priority: u8,
) -> Result<bool, RecordError> {
    if priority == PRIORITY_BASELINE && !policy.scan_baseline {
        return Ok(false);
    }
    let now = unix_now();
    if let Some(c) = store.vt_verdict(sha256)?
        && policy.answers_from_cache(&c, now)
    {
        sink.virustotal(&alert_for(&c.verdict, source)).map_err(RecordError::Alerts)?;
        return Ok(false);
    }
    store.vt_enqueue(sha256, priority, now, 0)?;
    store.vt_add_waiter(sha256, &source)?;
    Ok(true)
}

/// Exponential backoff with jitter: `first`, then doubling, capped at 1 h, ±25%.
/// The jitter keeps many failed lookups from retrying in one burst.
pub fn backoff(first: Duration, attempts: u32, seed: &str) -> Duration {
    let base = first.saturating_mul(1 << attempts.saturating_sub(1).min(16)).min(Duration::from_secs(3600));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (seed, attempts, std::time::SystemTime::now()).hash(&mut h);
    let jitter = (h.finish() % 51) as f64 / 100.0 - 0.25; // -25% ..= +25%
    base.mul_f64(1.0 + jitter)
}

/// The writer-side state of VirusTotal.
pub struct Ledger {
    policy: Policy,
    /// A rate-limit pause is in progress (87101 raised once for it).
    paused: bool,
    /// The key was refused (87102 raised once for it).
    bad_key: bool,
    dir: PathBuf,
    log: File,
    /// Queue depth for integration.log, refreshed at most once a second.
    depth: (u64, Instant),
}

fn open_log(dir: &Path) -> io::Result<File> {
    let path = dir.join(INTEGRATION_LOG);
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))
}

impl Ledger {
    pub fn new(policy: Policy, data_dir: &Path) -> io::Result<Ledger> {
        Ok(Ledger {
            policy,
            paused: false,
            bad_key: false,
            dir: data_dir.to_path_buf(),
            log: open_log(data_dir)?,
            depth: (0, Instant::now() - Duration::from_secs(60)),
        })
    }

    /// The once-per-episode flags (rate-limit pause alerted, bad key alerted), to
    /// put back if the batch that set them is rolled back.
    pub fn flags(&self) -> (bool, bool) {
        (self.paused, self.bad_key)
    }

    pub fn set_flags(&mut self, (paused, bad_key): (bool, bool)) {
        self.paused = paused;
        self.bad_key = bad_key;
    }

    /// Reopens integration.log (logrotate).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.log = open_log(&self.dir)?;
        Ok(())
    }

    /// A new key is in use: a refusal will be alerted again.
    pub fn key_changed(&mut self, journal: &mut Journal) -> Result<(), RecordError> {
        self.bad_key = false;
        journal.set_state(daemon_state::VIRUSTOTAL, &LookupState::Ok.encode())
    }

    /// Counts one request against the persisted budget.
    pub fn requested(&mut self, journal: &mut Journal, time_ms: i64) -> Result<(), RecordError> {
        let (store, _) = journal.tx()?;
        store.vt_record_request(time_ms)?;
        // Two days of history covers the minute window and the UTC day.
        store.vt_prune_requests(time_ms - 2 * 86_400_000)?;
        Ok(())
    }

    /// Applies one answer.
    pub fn answered(
        &mut self,
        journal: &mut Journal,
        sha256: &str,
        answer: &Answer,
        status: u16,
        latency: Duration,
    ) -> Result<(), RecordError> {
        let now_ms = unix_now_ms();
        let now = now_ms / 1000;
        let (store, sink) = journal.tx()?;
        let alert = |sink: &mut AlertSink, a: VtAlert| sink.virustotal(&a).map(|_| ()).map_err(RecordError::Alerts);
        let outcome = match answer {
            Answer::Verdict(v) => {
                if self.paused || self.bad_key {
                    store.set_state(daemon_state::VIRUSTOTAL, &LookupState::Ok.encode(), now)?;
                }
                self.paused = false;
                let prev = store.vt_verdict(sha256)?;
                let rechecks = match &prev {
                    Some(p) if !v.found && !p.verdict.found => p.rechecks + 1,
                    _ => 0,
                };
                store.vt_put_verdict(sha256, v, now, rechecks)?;
                let waiters = store.vt_waiters(sha256)?;
                store.vt_dequeue(sha256)?;
                let mut told: HashSet<PathBuf> = HashSet::new();
                for w in waiters {
                    told.insert(w.file.clone());
                    alert(sink, alert_for(v, w))?;
                }
                // Clean or unknown before, detected now: every file carrying it is told.
                let turned = v.malicious > 0 && prev.is_some_and(|p| !p.verdict.found || p.verdict.malicious == 0);
                if turned {
                    for f in store.files_with_sha256(sha256)? {
                        if !told.contains(&f.file) {
                            alert(sink, alert_for(v, f))?;
                        }
                    }
                }
                if !v.found
                    && let Some(wait) = self.policy.recheck_not_found.get(rechecks as usize)
                {
                    store.vt_enqueue(sha256, PRIORITY_RECHECK, now, now_ms + wait.as_millis() as i64)?;
                }
                if v.found { format!("found positives={}/{}", v.malicious, v.total) } else { "not_found".into() }
            }
            Answer::RateLimited { retry_after } => {
                if !self.paused {
                    self.paused = true;
                    alert(sink, VtAlert::RateLimited { http_status: status })?;
                }
                let until = now + retry_after.map_or(60, |d| d.as_secs() as i64);
                store.set_state(daemon_state::VIRUSTOTAL, &LookupState::PausedUntil(until).encode(), now)?;
                format!("rate_limited retry_after={}", retry_after.map_or(0, |d| d.as_secs()))
            }
            Answer::BadKey { status } => {
                if !self.bad_key {
                    self.bad_key = true;
                    store.set_state(daemon_state::VIRUSTOTAL, &LookupState::BadKey.encode(), now)?;
                    tracing::error!(
                        "VirusTotal refused the API key (HTTP {status}): lookups stop until the key changes \
                         (edit it and send SIGHUP, or restart); the queue keeps growing"
                    );
                    alert(sink, VtAlert::BadKey { http_status: *status })?;
                }
                "bad_key".to_string()
            }
            Answer::Retry { status: s, timed_out, why } => {
                let attempts = store.vt_attempts(sha256)? + 1;
                let wait = backoff(self.policy.retry_backoff, attempts, sha256);
                store.vt_retry_later(sha256, now_ms + wait.as_millis() as i64)?;
                if attempts == self.policy.max_retries {
                    // It stays queued; the alert says the lookup is stuck, once per
                    // hash (Wazuh's 87106 names no file).
                    let failed = VtAlert::Failed {
                        sha256: sha256.to_string(),
                        http_status: (*s != 0).then_some(*s),
                        timed_out: *timed_out,
                    };
                    alert(sink, failed)?;
                }
                format!("retry attempt={attempts} wait_s={} reason={why:?}", wait.as_secs())
            }
        };
        if self.depth.1.elapsed() >= Duration::from_secs(1) {
            let d = store.vt_queue_depth()?;
            self.depth = (d.iter().sum(), Instant::now());
        }
        let line = format!(
            "{} sha256={} status={status} outcome={outcome} latency_ms={} queue={}\n",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            sha256,
            latency.as_millis(),
            self.depth.0,
        );
        if let Err(e) = self.log.write_all(line.as_bytes()) {
            tracing::warn!("cannot write {INTEGRATION_LOG}: {e}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let first = Duration::from_secs(30);
        let b1 = backoff(first, 1, "x").as_secs();
        assert!((22..=38).contains(&b1), "{b1}");
        let b3 = backoff(first, 3, "x").as_secs();
        assert!((90..=150).contains(&b3), "{b3}");
        let b20 = backoff(first, 20, "x").as_secs();
        assert!((2700..=4500).contains(&b20), "{b20}");
    }
}
