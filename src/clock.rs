//! The wall clock, in the units fimvt stores: Unix seconds, milliseconds and
//! nanoseconds, the UTC day (VirusTotal's daily quota) and local time for people.
//! Intervals and deadlines use `Instant` (or tokio's, in the VirusTotal worker).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn since_epoch() -> Duration {
    // A clock before 1970 is a broken clock: count from the epoch rather than panic.
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

pub fn unix_now() -> i64 {
    since_epoch().as_secs() as i64
}

pub fn unix_now_ms() -> i64 {
    since_epoch().as_millis() as i64
}

pub fn unix_now_ns() -> i64 {
    since_epoch().as_nanos() as i64
}

/// Days since the Unix epoch, UTC.
pub fn utc_day(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(86_400)
}

/// A Unix time as local `YYYY-MM-DD HH:MM:SS`, or empty if it has no local time.
pub fn local_time(t: i64) -> String {
    use chrono::TimeZone;
    chrono::Local.timestamp_opt(t, 0).single().map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_agree() {
        let (s, ms, ns) = (unix_now(), unix_now_ms(), unix_now_ns());
        assert!(ms / 1000 - s <= 1 && ns / 1_000_000 - ms <= 1000, "{s} {ms} {ns}");
        assert_eq!(utc_day(86_399), 0);
        assert_eq!(utc_day(86_400), 1);
        assert_eq!(utc_day(-1), -1, "before the epoch rounds down");
    }
}
