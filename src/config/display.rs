//! The effective settings as `check-config` prints them: paths resolved, defaults
//! filled in, the API key masked.

use std::fmt;

use super::{Config, Rehash, format_duration};

impl fmt::Display for Config {
    /// The effective settings, as `check-config` prints them; the key is masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# effective settings of {}", self.source.display())?;
        writeln!(f, "[general]")?;
        writeln!(f, "data_dir = {:?}", self.general.data_dir.display().to_string())?;
        writeln!(f, "hostname = {:?}", self.general.hostname)?;
        writeln!(f, "agent_id = {:?}", self.general.agent_id)?;
        writeln!(f, "agent_name = {:?}", self.general.agent_name)?;
        match self.general.process_priority {
            Some(p) => writeln!(f, "process_priority = {p}")?,
            None => writeln!(f, "# process_priority not set: the nice value fimvt is started with")?,
        }
        for d in &self.directories {
            writeln!(f, "\n[[directories]]")?;
            writeln!(f, "path = {:?}", d.path.display().to_string())?;
            writeln!(f, "realtime = {}", d.realtime)?;
            writeln!(f, "recursion_level = {}", d.recursion_level)?;
            writeln!(f, "ignore = {:?}", d.ignore_patterns)?;
            if !d.ignore_regex.is_empty() {
                let r: Vec<String> = d.ignore_regex.iter().map(|r| r.to_string()).collect();
                writeln!(f, "ignore_regex = {r:?}")?;
            }
            if let Some(r) = &d.restrict {
                writeln!(f, "restrict = {:?}", r.to_string())?;
            }
            writeln!(f, "follow_symlinks = {}", d.follow_symlinks)?;
            writeln!(f, "max_file_size = {}", d.max_file_size)?;
            writeln!(f, "tags = {:?}", d.tags)?;
        }
        writeln!(f, "\n[scan]")?;
        writeln!(f, "frequency = {:?}", format_duration(self.scan.frequency))?;
        match self.scan.schedule {
            None => writeln!(f, "# time and day not set: scans run every frequency")?,
            Some(s) => {
                match s.time {
                    Some(t) => writeln!(f, "time = \"{t}\"")?,
                    None => writeln!(f, "# time not set: at midnight")?,
                }
                match s.days {
                    Some(d) => writeln!(f, "day = \"{d}\"")?,
                    None => writeln!(f, "# day not set: every day")?,
                }
            }
        }
        writeln!(f, "scan_on_start = {}", self.scan.scan_on_start)?;
        let rehash = match self.scan.rehash {
            Rehash::Changed => "changed",
            Rehash::Always => "always",
        };
        writeln!(f, "rehash = {rehash:?}")?;
        writeln!(f, "threads = {}", self.scan.threads)?;
        match self.scan.max_files_per_second {
            0 => writeln!(f, "max_files_per_second = 0 # no limit")?,
            n => writeln!(f, "max_files_per_second = {n}")?,
        }
        let skip = &self.scan.skip_fs;
        writeln!(f, "skip_nfs = {}", skip.nfs)?;
        writeln!(f, "skip_dev = {}", skip.dev)?;
        writeln!(f, "skip_sys = {}", skip.sys)?;
        writeln!(f, "skip_proc = {}", skip.proc)?;
        writeln!(f, "\n[realtime]")?;
        writeln!(f, "settle = {:?}", format_duration(self.realtime.settle))?;
        writeln!(f, "queue_capacity = {}", self.realtime.queue_capacity)?;
        let vt = &self.virustotal;
        writeln!(f, "\n[virustotal]")?;
        writeln!(f, "enabled = {}", vt.enabled)?;
        match &vt.api_key {
            Some(k) => writeln!(f, "api_key = \"{k}\"")?,
            None => writeln!(f, "api_key = \"\" # not set")?,
        }
        writeln!(f, "base_url = {:?}", vt.base_url)?;
        writeln!(f, "requests_per_minute = {}", vt.requests_per_minute)?;
        writeln!(f, "daily_quota = {}", vt.daily_quota)?;
        writeln!(f, "cache_ttl = {:?}", format_duration(vt.cache_ttl))?;
        let rechecks: Vec<String> = vt.recheck_not_found.iter().map(|d| format_duration(*d)).collect();
        writeln!(f, "recheck_not_found = {rechecks:?}")?;
        writeln!(f, "scan_baseline = {}", vt.scan_baseline)?;
        writeln!(f, "max_retries = {}", vt.max_retries)?;
        writeln!(f, "retry_backoff = {:?}", format_duration(vt.retry_backoff))?;
        writeln!(f, "connect_timeout = {:?}", format_duration(vt.connect_timeout))?;
        writeln!(f, "timeout = {:?}", format_duration(vt.timeout))?;
        write!(f, "concurrency = {}", vt.concurrency)
    }
}
