//! `[scan] time` and `day` (Wazuh's `<scan_time>` and `<scan_day>`): the text
//! forms Wazuh accepts, and when the next scheduled scan is due. Wazuh's
//! syscheckd (`run_check.c`, `start_daemon`) scans once on each matching local
//! day, at the first moment at or after the time (midnight without a time); a
//! day whose moment had passed when the daemon started, or that the machine
//! slept through, is skipped, since Wazuh checks "today, after the time, not yet
//! scanned" every second and forgets a day once the date changes.

use std::fmt;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Weekday};

/// A time of day, to the minute (Wazuh compares `HH:MM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanTime {
    pub hour: u32,
    pub minute: u32,
}

impl fmt::Display for ScanTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// A set of week days, bit 0 Sunday to bit 6 Saturday; never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekDays(u8);

const NAMES: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

impl WeekDays {
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_sunday()) != 0
    }
}

impl fmt::Display for WeekDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..7).filter(|i| self.0 & (1 << i) != 0).map(|i| NAMES[i]).collect();
        f.write_str(&names.join(","))
    }
}

/// A time as Wazuh's `OS_IsValidUniqueTime` reads it (`shared/validate_op.c`):
/// `H`, `HH` or `HH:MM` on a 24-hour clock, or followed by `am`/`pm` (any case,
/// spaces allowed before it), `12am` being midnight and `12pm` noon. Wazuh's
/// parser also lets through a few forms whose reading is an accident (`10:ab` as
/// 10:00, `10:99` as 11:00, `1:5 pm`, `15am` as 15:00): those are refused here.
pub fn parse_time(text: &str) -> Result<ScanTime, String> {
    let bad = || format!("{text:?} is not a time: expected e.g. \"22:00\", \"10pm\" or \"10:30am\"");
    let s = text.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&digits) {
        return Err(bad());
    }
    let mut hour: u32 = s[..digits].parse().map_err(|_| bad())?;
    let mut rest = &s[digits..];
    let mut minute = 0;
    if let Some(m) = rest.strip_prefix(':') {
        if m.len() < 2 || !m.as_bytes()[..2].iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        minute = m[..2].parse().map_err(|_| bad())?;
        rest = &m[2..];
    }
    match rest.trim_start().to_ascii_lowercase().as_str() {
        "" => {}
        half @ ("am" | "pm") => {
            if hour > 12 {
                return Err(format!("{text:?} is not a time: a 12-hour clock has no hour {hour}"));
            }
            hour %= 12;
            if half == "pm" {
                hour += 12;
            }
        }
        _ => return Err(bad()),
    }
    if hour > 23 || minute > 59 {
        return Err(format!("{text:?} is not a time: hours run 0 to 23, minutes 0 to 59"));
    }
    Ok(ScanTime { hour, minute })
}

/// Days as Wazuh's `OS_IsValidDay` reads them: day names (`saturday`) or their
/// first three letters (`sat`), `weekdays` (Monday to Friday) and `weekends`,
/// any case, separated by commas or spaces. Wazuh's `!` (negation) never works
/// in it (the `!` is not skipped, so no name matches): refused here as there.
pub fn parse_days(text: &str) -> Result<WeekDays, String> {
    let mut bits = 0u8;
    let words: Vec<&str> = text.split([',', ' ']).filter(|w| !w.is_empty()).collect();
    for word in &words {
        let w = word.to_ascii_lowercase();
        bits |= match w.as_str() {
            "weekdays" => 0b011_1110,
            "weekends" => 0b100_0001,
            _ => match NAMES.iter().position(|n| *n == w || n[..3] == w) {
                Some(i) => 1 << i,
                None => {
                    return Err(format!(
                        "{word:?} is not a day: expected e.g. \"saturday\", \"sat\", \"weekdays\", \"weekends\" \
                         or several separated by commas"
                    ));
                }
            },
        };
    }
    if bits == 0 {
        return Err("no day given: expected e.g. \"saturday\"".to_string());
    }
    Ok(WeekDays(bits))
}

/// When scheduled scans run: at `time` (midnight when only days are given) on
/// each of `days` (every day when only a time is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanSchedule {
    pub time: Option<ScanTime>,
    pub days: Option<WeekDays>,
}

impl ScanSchedule {
    /// The first scheduled moment strictly after `now`, in `now`'s time zone.
    /// A time that a daylight-saving change skips on some day means the first
    /// moment after the gap; one that happens twice, the first of the two.
    pub fn next_after<Tz: TimeZone>(&self, now: &DateTime<Tz>) -> DateTime<Tz> {
        let at = self.time.map_or(NaiveTime::MIN, |t| {
            NaiveTime::from_hms_opt(t.hour, t.minute, 0).expect("validated: hour < 24, minute < 60")
        });
        let today = now.date_naive();
        // Any set of days recurs within a week: eight dates cover today's slot
        // having passed.
        for offset in 0..=7 {
            let date = today + TimeDelta::days(offset);
            if self.days.is_some_and(|d| !d.contains(date.weekday())) {
                continue;
            }
            let slot = resolve(&now.timezone(), date, at);
            if slot > *now {
                return slot;
            }
        }
        unreachable!("a non-empty set of days recurs within eight dates")
    }

    /// At `now`, with `planned` the scan planned last (by `next_after`): whether
    /// to scan now, and the scan to plan next. A planned scan is due from its
    /// moment to the end of its local day; a day that ended without it (the
    /// machine slept, the clock was set forward) is skipped, so after a long
    /// sleep the scan runs only if today's moment has passed.
    pub fn tick<Tz: TimeZone>(&self, planned: &DateTime<Tz>, now: &DateTime<Tz>) -> (bool, DateTime<Tz>) {
        let mut planned = planned.clone();
        while planned <= *now && planned.date_naive() != now.date_naive() {
            planned = self.next_after(&planned);
        }
        if planned <= *now { (true, self.next_after(now)) } else { (false, planned) }
    }
}

/// The moment `date` at `at` in `tz`: the earlier one when the clock is set back
/// over it, the end of the gap when the clock jumps over it.
fn resolve<Tz: TimeZone>(tz: &Tz, date: NaiveDate, at: NaiveTime) -> DateTime<Tz> {
    let mut local = date.and_time(at);
    // Daylight-saving gaps are at most a few hours; step to their end by minutes.
    for _ in 0..24 * 60 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t,
            LocalResult::None => local += TimeDelta::minutes(1),
        }
    }
    tz.from_utc_datetime(&date.and_time(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn at(text: &str) -> ScanTime {
        parse_time(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn times_read_as_wazuh_reads_them() {
        let hm = |h, m| ScanTime { hour: h, minute: m };
        assert_eq!(at("22:00"), hm(22, 0));
        assert_eq!(at("10pm"), hm(22, 0));
        assert_eq!(at("10:30am"), hm(10, 30));
        assert_eq!(at(" 10:30 PM "), hm(22, 30));
        assert_eq!(at("9"), hm(9, 0));
        assert_eq!(at("12am"), hm(0, 0), "12am is midnight");
        assert_eq!(at("12pm"), hm(12, 0), "12pm is noon");
        assert_eq!(at("0:05"), hm(0, 5));
        for bad in ["", "24", "24:00", "13pm", "10:5", "10:ab", "10:99", "22:00:00", "10 p.m.", "!10pm", "pm", "100"] {
            assert!(parse_time(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn days_read_as_wazuh_reads_them() {
        let d = |t: &str| parse_days(t).unwrap_or_else(|e| panic!("{e}")).to_string();
        assert_eq!(d("saturday"), "saturday");
        assert_eq!(d("Sat"), "saturday");
        assert_eq!(d("mon, wed fri"), "monday,wednesday,friday");
        assert_eq!(d("weekdays"), "monday,tuesday,wednesday,thursday,friday");
        assert_eq!(d("weekends"), "sunday,saturday");
        for bad in ["", " , ", "caturday", "saturdays", "!monday", "sa"] {
            assert!(parse_days(bad).is_err(), "{bad:?} must be refused");
        }
    }

    /// 2026-12-08 is a Tuesday; times are UTC+1 so the zone is not UTC by accident.
    fn clock(day: u32, h: u32, m: u32, s: u32) -> DateTime<FixedOffset> {
        FixedOffset::east_opt(3600).unwrap().with_ymd_and_hms(2026, 12, day, h, m, s).unwrap()
    }

    fn schedule(time: Option<&str>, days: Option<&str>) -> ScanSchedule {
        ScanSchedule { time: time.map(at), days: days.map(|d| parse_days(d).unwrap()) }
    }

    #[test]
    fn a_time_alone_is_every_day_and_a_passed_time_waits_for_tomorrow() {
        let s = schedule(Some("10pm"), None);
        assert_eq!(s.next_after(&clock(8, 21, 0, 0)), clock(8, 22, 0, 0), "later today");
        assert_eq!(s.next_after(&clock(8, 22, 0, 0)), clock(9, 22, 0, 0), "the moment itself has passed");
        assert_eq!(s.next_after(&clock(8, 23, 30, 0)), clock(9, 22, 0, 0));
    }

    #[test]
    fn a_day_alone_is_its_midnight_and_today_counts_as_done() {
        let s = schedule(None, Some("saturday"));
        assert_eq!(s.next_after(&clock(8, 12, 0, 0)), clock(12, 0, 0, 0), "Tuesday: the coming Saturday");
        assert_eq!(s.next_after(&clock(12, 0, 0, 0)), clock(19, 0, 0, 0), "Saturday itself: a week on");
        assert_eq!(s.next_after(&clock(12, 9, 0, 0)), clock(19, 0, 0, 0));
    }

    #[test]
    fn a_time_and_days_is_that_time_on_those_days() {
        let s = schedule(Some("22:00"), Some("saturday"));
        assert_eq!(s.next_after(&clock(8, 23, 0, 0)), clock(12, 22, 0, 0));
        assert_eq!(s.next_after(&clock(12, 21, 59, 59)), clock(12, 22, 0, 0), "Saturday before the time");
        assert_eq!(s.next_after(&clock(12, 22, 0, 1)), clock(19, 22, 0, 0), "Saturday after the time");
        let s = schedule(Some("6:30am"), Some("weekdays"));
        assert_eq!(s.next_after(&clock(11, 7, 0, 0)), clock(14, 6, 30, 0), "Friday after: Monday");
    }

    #[test]
    fn a_planned_scan_runs_late_on_its_day_but_not_after_it() {
        let s = schedule(Some("22:00"), None);
        let planned = clock(8, 22, 0, 0);
        assert_eq!(s.tick(&planned, &clock(8, 21, 59, 59)), (false, planned), "not yet");
        assert_eq!(s.tick(&planned, &clock(8, 22, 0, 0)), (true, clock(9, 22, 0, 0)));
        assert_eq!(s.tick(&planned, &clock(8, 23, 59, 0)), (true, clock(9, 22, 0, 0)), "late the same day runs");
        assert_eq!(s.tick(&planned, &clock(9, 9, 0, 0)), (false, clock(9, 22, 0, 0)), "slept past it: skipped");
        assert_eq!(s.tick(&planned, &clock(10, 23, 0, 0)), (true, clock(11, 22, 0, 0)), "woke after today's time");
        let s = schedule(None, Some("saturday"));
        let planned = clock(12, 0, 0, 0);
        assert_eq!(s.tick(&planned, &clock(13, 10, 0, 0)), (false, clock(19, 0, 0, 0)), "slept through Saturday");
    }
}
