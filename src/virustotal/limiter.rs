//! The request budget: at most `per_minute` requests in any 60-second window and
//! `per_day` per UTC day. It works on tokio's clock (so tests run it on a paused
//! clock) plus the wall-clock day, and is seeded from the requests the database
//! recorded, so a restart grants no fresh budget.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::utc_day;
use crate::store::{Store, StoreError};

/// VirusTotal counts requests per 60 s as they arrive; ours leave a little
/// earlier or later depending on the network. A one-second margin keeps its
/// count within the limit whatever the jitter (measured: up to ~3 ms), for 1.6%
/// of the throughput.
const WINDOW: Duration = Duration::from_secs(61);

pub struct Limiter {
    per_minute: usize,
    per_day: u32,
    /// Times of the requests made in the last minute, oldest first.
    recent: VecDeque<Instant>,
    /// The UTC day (days since the epoch) `used_today` counts.
    day: i64,
    used_today: u32,
}

/// Whether a request may go now, and if not, when to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Now,
    /// The minute window is full until then.
    At(Instant),
    /// The daily quota is spent until the next UTC midnight, this far away.
    Tomorrow(Duration),
}

/// The requests the database recorded, as the budget counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spent {
    /// How long ago each request of the last 60 s was made.
    pub last_minute: Vec<Duration>,
    /// Requests made since the last UTC midnight.
    pub today: u32,
}

impl Spent {
    pub fn load(store: &Store, now_ms: i64) -> Result<Spent, StoreError> {
        let midnight_ms = utc_day(now_ms.div_euclid(1000)) * 86_400_000;
        let made = store.vt_requests_since(midnight_ms.min(now_ms - 60_000))?;
        Ok(Spent {
            last_minute: made
                .iter()
                .filter(|t| **t > now_ms - 60_000)
                .map(|t| Duration::from_millis((now_ms - t).max(0) as u64))
                .collect(),
            today: made.iter().filter(|t| **t >= midnight_ms).count() as u32,
        })
    }
}

impl Limiter {
    /// A budget with `spent` already used.
    pub fn new(per_minute: u32, per_day: u32, spent: &Spent, unix_now: i64) -> Limiter {
        let now = Instant::now();
        let mut recent: Vec<Instant> =
            spent.last_minute.iter().filter(|a| **a < WINDOW).map(|a| now.checked_sub(*a).unwrap_or(now)).collect();
        recent.sort();
        Limiter {
            per_minute: per_minute as usize,
            per_day,
            recent: recent.into(),
            day: utc_day(unix_now),
            used_today: spent.today,
        }
    }

    /// Asks for a slot at `now` (tokio clock) and `unix_now` (wall clock, seconds).
    pub fn check(&mut self, unix_now: i64) -> Permit {
        let now = Instant::now();
        while self.recent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            self.recent.pop_front();
        }
        if utc_day(unix_now) != self.day {
            self.day = utc_day(unix_now);
            self.used_today = 0;
        }
        if self.used_today >= self.per_day {
            let midnight = (self.day + 1) * 86_400;
            return Permit::Tomorrow(Duration::from_secs((midnight - unix_now).max(1) as u64));
        }
        if self.recent.len() >= self.per_minute {
            return Permit::At(self.recent[0] + WINDOW);
        }
        Permit::Now
    }

    /// Takes the slot `check` granted.
    pub fn take(&mut self) {
        self.recent.push_back(Instant::now());
        self.used_today += 1;
    }

    #[cfg(test)]
    fn used_this_minute(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: i64 = 1_795_000_000 / 86_400 * 86_400 + 43_200;

    /// Drives the limiter for `secs` of paused time, taking every slot it grants,
    /// and returns the instants of the requests made.
    async fn drive(l: &mut Limiter, secs: u64) -> Vec<Instant> {
        let start = Instant::now();
        let mut made = Vec::new();
        while start.elapsed() < Duration::from_secs(secs) {
            let unix = NOON + start.elapsed().as_secs() as i64;
            match l.check(unix) {
                Permit::Now => {
                    l.take();
                    made.push(Instant::now());
                }
                Permit::At(t) => tokio::time::sleep_until(t).await,
                Permit::Tomorrow(_) => break,
            }
        }
        made
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_rate_in_any_sixty_seconds() {
        let mut l = Limiter::new(4, 500, &Spent::default(), NOON);
        let made = drive(&mut l, 600).await;
        assert_eq!(made.len(), 40, "4 a minute for 10 minutes (with the margin, the last 4 in the 10th)");
        for (i, t) in made.iter().enumerate() {
            let sixty = Duration::from_secs(60);
            let in_window = made[i..].iter().take_while(|u| u.duration_since(*t) < sixty).count();
            assert!(in_window <= 4, "{in_window} requests within 60 s of request {i}");
            if let Some(next) = made.get(i + 4) {
                assert!(next.duration_since(*t) >= sixty + Duration::from_millis(900), "the margin holds");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_premium_rate_is_used_fully() {
        let mut l = Limiter::new(1000, 1_000_000, &Spent::default(), NOON);
        let made = drive(&mut l, 305).await;
        assert_eq!(made.len(), 5000, "98% of the nominal rate: 1000 per 61 s");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_from_before_a_restart_count() {
        let last_minute = vec![Duration::from_secs(10), Duration::from_secs(20), Duration::from_secs(70)];
        let mut l = Limiter::new(3, 500, &Spent { last_minute, today: 2 }, NOON);
        assert_eq!(l.used_this_minute(), 2, "the 70 s old request is out of the window");
        assert_eq!(l.check(NOON), Permit::Now);
        l.take();
        assert_eq!(l.check(NOON), Permit::At(Instant::now() + Duration::from_secs(41)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_daily_quota_holds_until_utc_midnight_and_then_resets() {
        let mut l = Limiter::new(1000, 5, &Spent { last_minute: vec![], today: 3 }, NOON);
        let made = drive(&mut l, 600).await;
        assert_eq!(made.len(), 2, "3 were used before the restart");
        assert_eq!(l.check(NOON + 10), Permit::Tomorrow(Duration::from_secs(43_200 - 10)));
        assert_eq!(l.check(NOON + 43_200), Permit::Now, "a new UTC day");
    }

    #[test]
    fn the_spent_budget_is_read_from_the_recorded_requests() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let now_ms = NOON * 1000;
        // Yesterday, earlier today, and twice within the last minute.
        for t in [now_ms - 13 * 3_600_000, now_ms - 3_600_000, now_ms - 30_000, now_ms - 1000] {
            store.vt_record_request(t).unwrap();
        }
        let spent = Spent::load(&store, now_ms).unwrap();
        assert_eq!(spent.today, 3);
        assert_eq!(spent.last_minute, [Duration::from_secs(30), Duration::from_secs(1)]);
    }
}
