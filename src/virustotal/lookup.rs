//! `fimvt lookup`'s VirusTotal side: the verdict for one SHA-256, from the cache
//! when the daemon would answer from it, otherwise asked within the daemon's
//! budget: through the running daemon's queue, or by this process itself when no
//! fimvt holds the data folder. It decides; `report.rs` prints.

use std::time::{Duration, Instant};

use super::client::{Answer, Client};
use super::ledger::Ledger;
use super::limiter::{Limiter, Permit, Spent};
use super::{PRIORITY_REALTIME, Policy, Settings, Status};
use crate::clock::{unix_now, unix_now_ms};
use crate::config::Config;
use crate::daemon_state::{LookupState, Occupant, occupant};
use crate::journal::Journal;
use crate::model::Verdict;
use crate::store::Store;

/// How long `lookup` waits for the running daemon to answer a hash it queued.
const DAEMON_WAIT: Duration = Duration::from_secs(90);

/// Where a verdict came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The cache, fetched at this Unix time.
    Cache { fetched: i64 },
    /// Asked now (by this process or by the daemon for it).
    Asked,
}

/// What `lookup` can say about a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Verdict(Verdict, Source),
    /// No verdict to be had now, and why.
    NoVerdict(String),
}

/// The verdict for `sha256`. `store` is a read-only connection to `cfg`'s database.
pub fn lookup(cfg: &Config, store: &Store, sha256: &str) -> anyhow::Result<Outcome> {
    let cached = store.vt_verdict(sha256)?;
    let (policy, settings) = match super::status(cfg) {
        Status::On(p, s) => (p, s),
        Status::Off(why) => {
            // With lookups off, a cached verdict of any age is the best there is.
            return Ok(match cached {
                Some(c) => Outcome::Verdict(c.verdict, Source::Cache { fetched: c.fetched }),
                None => Outcome::NoVerdict(format!("VirusTotal lookups are off: {why}")),
            });
        }
    };
    if let Some(c) = cached
        && policy.answers_from_cache(&c, unix_now())
    {
        return Ok(Outcome::Verdict(c.verdict, Source::Cache { fetched: c.fetched }));
    }
    match occupant(store, &cfg.general.data_dir)? {
        Occupant::Nobody => ask_now(cfg, policy, settings, sha256),
        Occupant::Daemon { pid, .. } => match LookupState::load(store)? {
            Some(LookupState::Off(why)) => {
                Ok(Outcome::NoVerdict(format!("the running daemon (pid {pid}) has VirusTotal lookups off: {why}")))
            }
            _ => ask_through_daemon(cfg, sha256),
        },
        Occupant::OneShot { pid } => Ok(Outcome::NoVerdict(format!(
            "another fimvt (pid {pid}, a one-shot scan or lookup) holds the data folder; try again when it ends"
        ))),
    }
}

/// Queues the hash at realtime priority for the running daemon and waits for
/// its verdict (the daemon's worker looks at the queue every few seconds).
fn ask_through_daemon(cfg: &Config, sha256: &str) -> anyhow::Result<Outcome> {
    // A write connection beside the daemon's, for one row: never migrating (the
    // daemon owns the schema), refused if the schema is not this binary's.
    let store = Store::open_existing(&cfg.db_path())?;
    store.vt_enqueue(sha256, PRIORITY_REALTIME, unix_now(), 0)?;
    let asked = unix_now();
    let deadline = Instant::now() + DAEMON_WAIT;
    while Instant::now() < deadline {
        if let Some(c) = store.vt_verdict(sha256)?
            && c.fetched >= asked
        {
            return Ok(Outcome::Verdict(c.verdict, Source::Asked));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Outcome::NoVerdict(format!(
        "queued for the running daemon; no answer within {} s (rate limit or quota?)",
        DAEMON_WAIT.as_secs()
    )))
}

/// Asks VirusTotal from this process when no fimvt holds the data folder: it
/// takes the lock and records the answer as the daemon would. The request counts
/// against the persisted budget; the answer updates the cache, alerts every file
/// waiting on it and leaves the queue, with its integration.log line.
fn ask_now(cfg: &Config, policy: Policy, s: Settings, sha256: &str) -> anyhow::Result<Outcome> {
    let _lock = crate::lock::DataDirLock::acquire(&cfg.general.data_dir)?;
    let store = Store::open(&cfg.db_path())?;
    let spent = Spent::load(&store, unix_now_ms())?;
    let sink = crate::alert::AlertSink::open(&cfg.general.data_dir, crate::alert::Identity::from_config(&cfg.general))?;
    let mut journal = Journal::new(store, sink);
    let mut ledger = Ledger::new(policy, &cfg.general.data_dir)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answered = rt.block_on(async {
        let mut limiter = Limiter::new(s.requests_per_minute, s.daily_quota, &spent, unix_now());
        match limiter.check(unix_now()) {
            Permit::Now => {}
            Permit::At(t) => tokio::time::sleep_until(t).await,
            Permit::Tomorrow(_) => return Ok(None),
        }
        ledger.requested(&mut journal, unix_now_ms())?;
        let client = Client::new(&s.base_url, s.api_key.expose(), s.connect_timeout, s.timeout)?;
        let start = Instant::now();
        let (answer, status) = client.file_report(sha256).await;
        ledger.answered(&mut journal, sha256, &answer, status, start.elapsed())?;
        anyhow::Ok(Some((answer, status)))
    })?;
    journal.commit()?;
    Ok(match answered {
        None => Outcome::NoVerdict("the daily quota is spent until 00:00 UTC".into()),
        Some((Answer::Verdict(v), _)) => Outcome::Verdict(v, Source::Asked),
        Some((Answer::RateLimited { .. }, status)) => {
            Outcome::NoVerdict(format!("VirusTotal rate limit (HTTP {status})"))
        }
        Some((Answer::BadKey { status }, _)) => {
            Outcome::NoVerdict(format!("VirusTotal refused the API key (HTTP {status})"))
        }
        Some((Answer::Retry { why, .. }, _)) => {
            Outcome::NoVerdict(format!("VirusTotal did not answer usefully: {why}"))
        }
    })
}
