//! Validation: raw values become typed settings (absolute paths, compiled globs and
//! regexes, numbers for sizes and durations), and every error names the file, the
//! line and the key at fault.

use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{GlobBuilder, GlobSetBuilder};
use toml::Spanned;

use super::raw::*;
use super::units::{parse_duration, parse_size};
use super::*;

/// The period of scans when a scan time or day is set (Wazuh's `run_check.c`).
const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// Context for error messages: the file and its text, to turn spans into lines.
pub(super) struct Cx<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a Path,
}

impl Cx<'_> {
    pub(super) fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    pub(super) fn err(&self, span: Option<std::ops::Range<usize>>, key: &str, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: span.map(|s| self.line_of(s.start)),
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    /// Turns a toml/serde error into one that names the key: serde's messages for
    /// wrong types do not, so the key is read back from the line the span points at.
    pub(super) fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let message = e.message().trim().to_string();
        let Some(span) = e.span() else {
            return self.err(None, "(file)", &message);
        };
        let line = self.line_of(span.start);
        let line_text = self.text.lines().nth(line - 1).unwrap_or("");
        let headers: Vec<&str> = self.text.lines().take(line).map(str::trim).filter(|l| l.starts_with('[')).collect();
        // `[[directories]]` is an array: name the entry, as validation errors do.
        let section = headers.last().map(|h| {
            let name = h.trim_matches(['[', ']']).trim();
            if h.starts_with("[[") {
                let index =
                    headers.iter().filter(|o| o.starts_with("[[") && o.trim_matches(['[', ']']).trim() == name).count();
                format!("{name}[{}]", index - 1)
            } else {
                name.to_string()
            }
        });
        let key = match line_text.split_once('=') {
            Some((k, _)) if !line_text.trim_start().starts_with('[') => k.trim().to_string(),
            _ => String::new(),
        };
        let key = match (section, key.is_empty()) {
            (Some(s), false) => format!("{s}.{key}"),
            (Some(s), true) => s,
            (None, false) => key,
            (None, true) => "(file)".to_string(),
        };
        ConfigError { file: self.file.to_path_buf(), line: Some(line), key, message }
    }

    pub(super) fn general(&self, raw: RawGeneral, base: &Path) -> Result<General, ConfigError> {
        let data_dir = match raw.data_dir {
            Some(d) => {
                if d.get_ref().is_empty() {
                    return Err(self.err(Some(d.span()), "general.data_dir", "must not be empty"));
                }
                canonical_lenient(&base.join(d.get_ref()))
            }
            None => canonical_lenient(&base.join("var")),
        };
        let hostname = raw.hostname.filter(|h| !h.is_empty()).unwrap_or_else(system_hostname);
        let agent_id = match raw.agent_id {
            Some(id) => {
                let v = id.get_ref();
                if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) {
                    return Err(self.err(
                        Some(id.span()),
                        "general.agent_id",
                        &format!("{v:?} is not an agent id: expected digits such as \"000\""),
                    ));
                }
                v.clone()
            }
            None => "000".to_string(),
        };
        let agent_name = raw.agent_name.filter(|n| !n.is_empty()).unwrap_or_else(|| hostname.clone());
        let process_priority = match raw.process_priority {
            Some(p) => Some(i32::try_from(*p.get_ref()).ok().filter(|v| (-20..=19).contains(v)).ok_or_else(|| {
                self.err(
                    Some(p.span()),
                    "general.process_priority",
                    &format!("{} is out of range: expected a nice value, -20 to 19", p.get_ref()),
                )
            })?),
            None => None,
        };
        Ok(General { data_dir, hostname, agent_id, agent_name, process_priority })
    }

    pub(super) fn directory(&self, i: usize, raw: RawDirectory, base: &Path) -> Result<DirConfig, ConfigError> {
        let key = |k: &str| format!("directories[{i}].{k}");
        let written = raw.path.get_ref();
        let joined = base.join(written);
        let path = match std::fs::canonicalize(&joined) {
            Ok(p) => p,
            // Not there yet: monitored once it appears (said at start), as Wazuh does.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => canonical_lenient(&joined),
            Err(e) => {
                return Err(self.err(
                    Some(raw.path.span()),
                    &key("path"),
                    &format!("cannot use folder {:?} (resolved to {}): {e}", written, joined.display()),
                ));
            }
        };
        if path.exists() && !path.is_dir() {
            return Err(self.err(Some(raw.path.span()), &key("path"), &format!("{} is not a folder", path.display())));
        }
        let recursion_level = match raw.recursion_level {
            Some(r) => u32::try_from(*r.get_ref()).ok().filter(|&v| v <= MAX_RECURSION_LEVEL).ok_or_else(|| {
                self.err(
                    Some(r.span()),
                    &key("recursion_level"),
                    &format!("{} is out of range: expected 0 to {MAX_RECURSION_LEVEL}", r.get_ref()),
                )
            })?,
            None => DEFAULT_RECURSION_LEVEL,
        };
        let mut set = GlobSetBuilder::new();
        let mut ignore_patterns = Vec::new();
        for (j, g) in raw.ignore.iter().enumerate() {
            let glob = GlobBuilder::new(g.get_ref())
                .backslash_escape(true)
                .build()
                .map_err(|e| self.err(Some(g.span()), &format!("{}[{j}]", key("ignore")), &format!("bad glob: {e}")))?;
            set.add(glob);
            ignore_patterns.push(g.get_ref().clone());
        }
        let ignore = set.build().map_err(|e| self.err(None, &key("ignore"), &format!("bad glob set: {e}")))?;
        let ignore_regex = raw
            .ignore_regex
            .iter()
            .enumerate()
            .map(|(j, r)| {
                Pattern::new(r.get_ref()).map_err(|e| {
                    self.err(
                        Some(r.span()),
                        &format!("{}[{j}]", key("ignore_regex")),
                        &format!("bad regular expression: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let restrict = match raw.restrict {
            Some(r) => Some(
                Pattern::new(r.get_ref())
                    .map_err(|e| self.err(Some(r.span()), &key("restrict"), &format!("bad regular expression: {e}")))?,
            ),
            None => None,
        };
        let max_file_size = match raw.max_file_size {
            Some(s) => {
                let parsed = match s.get_ref() {
                    SizeValue::Bytes(n) => u64::try_from(*n).map_err(|_| "must not be negative".to_string()),
                    SizeValue::Text(t) => parse_size(t),
                };
                parsed.map_err(|m| self.err(Some(s.span()), &key("max_file_size"), &m))?
            }
            None => DEFAULT_MAX_FILE_SIZE,
        };
        let mut tags = Vec::new();
        for (j, t) in raw.tags.iter().enumerate() {
            // Wazuh joins tags with commas and strips spaces, `!` and `:`: a tag
            // holding one would not come out of Wazuh's layout as written.
            let tag = t.get_ref();
            let odd = |c: char| c.is_whitespace() || c.is_control() || matches!(c, ',' | '!' | ':');
            if tag.is_empty() || tag.contains(odd) {
                return Err(self.err(
                    Some(t.span()),
                    &format!("{}[{j}]", key("tags")),
                    &format!("{tag:?} is not a tag: expected a non-empty word without spaces, ',', '!' or ':'"),
                ));
            }
            tags.push(tag.clone());
        }
        Ok(DirConfig {
            path,
            realtime: raw.realtime,
            recursion_level,
            ignore_patterns,
            ignore,
            ignore_regex,
            restrict,
            follow_symlinks: raw.follow_symlinks,
            max_file_size,
            tags,
        })
    }

    pub(super) fn scan(&self, raw: RawScan, warnings: &mut Vec<String>) -> Result<ScanConfig, ConfigError> {
        let time = match &raw.time {
            Some(t) => {
                Some(super::schedule::parse_time(t.get_ref()).map_err(|m| self.err(Some(t.span()), "scan.time", &m))?)
            }
            None => None,
        };
        let days = match &raw.day {
            Some(d) => {
                Some(super::schedule::parse_days(d.get_ref()).map_err(|m| self.err(Some(d.span()), "scan.day", &m))?)
            }
            None => None,
        };
        let schedule = (time.is_some() || days.is_some()).then_some(ScanSchedule { time, days });
        let frequency_set = raw.frequency.is_some();
        let mut frequency = match raw.frequency {
            Some(f) => {
                let d = self.duration(&f, "scan.frequency")?;
                if d < Duration::from_secs(1) {
                    return Err(self.err(Some(f.span()), "scan.frequency", "must be at least 1s"));
                }
                d
            }
            None => Duration::from_secs(12 * 3600),
        };
        // Wazuh's run_check.c: with a scan time or day, the period is a week.
        if schedule.is_some() {
            if frequency_set {
                warnings.push(format!(
                    "frequency {} is not used: with a scan time or day set, scheduled scans run then \
                     (and at least once a week), as in Wazuh",
                    format_duration(frequency)
                ));
            }
            frequency = WEEK;
        }
        let rehash = match raw.rehash {
            Some(r) => match r.get_ref().as_str() {
                "changed" => Rehash::Changed,
                "always" => Rehash::Always,
                other => {
                    return Err(self.err(
                        Some(r.span()),
                        "scan.rehash",
                        &format!("{other:?} is not one of \"changed\", \"always\""),
                    ));
                }
            },
            None => Rehash::Changed,
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let threads = match raw.threads {
            Some(t) => usize::try_from(*t.get_ref())
                .ok()
                .filter(|&n| (1..=256).contains(&n))
                .ok_or_else(|| self.err(Some(t.span()), "scan.threads", "expected 1 to 256"))?,
            None => cores,
        };
        let skip_fs = SkipFs {
            nfs: raw.skip_nfs.unwrap_or(true),
            dev: raw.skip_dev.unwrap_or(true),
            sys: raw.skip_sys.unwrap_or(true),
            proc: raw.skip_proc.unwrap_or(true),
        };
        let max_files_per_second = match raw.max_files_per_second {
            Some(n) => u32::try_from(*n.get_ref()).map_err(|_| {
                self.err(
                    Some(n.span()),
                    "scan.max_files_per_second",
                    &format!("{} is out of range: expected 0 (no limit) to {}", n.get_ref(), u32::MAX),
                )
            })?,
            // Wazuh's default: no limit.
            None => 0,
        };
        Ok(ScanConfig {
            frequency,
            scan_on_start: raw.scan_on_start.unwrap_or(true),
            rehash,
            threads,
            skip_fs,
            schedule,
            max_files_per_second,
        })
    }

    pub(super) fn duration(&self, v: &Spanned<DurationValue>, key: &str) -> Result<Duration, ConfigError> {
        let d = match v.get_ref() {
            DurationValue::Seconds(n) => {
                u64::try_from(*n).map(Duration::from_secs).map_err(|_| "must not be negative".to_string())
            }
            DurationValue::Text(t) => parse_duration(t),
        }
        .map_err(|m| self.err(Some(v.span()), key, &m))?;
        // Longer makes no sense for any setting, and keeps time arithmetic in range.
        if d > Duration::from_secs(366 * 86_400) {
            return Err(self.err(Some(v.span()), key, "must be at most a year (366d)"));
        }
        Ok(d)
    }

    pub(super) fn realtime(&self, raw: RawRealtime) -> Result<RealtimeConfig, ConfigError> {
        let settle = match &raw.settle {
            Some(s) => {
                let d = self.duration(s, "realtime.settle")?;
                if d > Duration::from_secs(60) {
                    return Err(self.err(Some(s.span()), "realtime.settle", "must be at most 60s"));
                }
                d
            }
            None => Duration::from_millis(250),
        };
        let queue_capacity = match raw.queue_capacity {
            Some(q) => usize::try_from(*q.get_ref())
                .ok()
                .filter(|&n| (1..=10_000_000).contains(&n))
                .ok_or_else(|| self.err(Some(q.span()), "realtime.queue_capacity", "expected 1 to 10000000"))?,
            None => 65_536,
        };
        Ok(RealtimeConfig { settle, queue_capacity })
    }

    pub(super) fn virustotal(
        &self,
        raw: RawVirusTotal,
        base: &Path,
        env_key: Option<String>,
    ) -> Result<VirusTotalConfig, ConfigError> {
        // Precedence: the file's `api_key`, then `api_key_file`, then the environment.
        let mut api_key = raw.api_key.filter(|k| !k.trim().is_empty()).map(|k| Secret(k.trim().to_string()));
        let mut api_key_file = api_key.as_ref().map(|_| self.file.to_path_buf());
        if let Some(f) = &raw.api_key_file {
            let p = base.join(f.get_ref());
            let text = std::fs::read_to_string(&p).map_err(|e| {
                self.err(Some(f.span()), "virustotal.api_key_file", &format!("cannot read {}: {e}", p.display()))
            })?;
            if api_key.is_none() {
                api_key = Some(Secret(text.trim().to_string())).filter(|s| !s.0.is_empty());
                api_key_file = api_key.as_ref().map(|_| p.clone());
            }
        }
        if api_key.is_none() {
            api_key = env_key.filter(|k| !k.trim().is_empty()).map(|k| Secret(k.trim().to_string()));
        }
        let base_url = match raw.base_url {
            Some(u) => {
                let v = u.get_ref().trim_end_matches('/').to_string();
                if !(v.starts_with("https://") || v.starts_with("http://")) {
                    return Err(self.err(
                        Some(u.span()),
                        "virustotal.base_url",
                        &format!("{v:?} is not an http(s) URL"),
                    ));
                }
                v
            }
            None => DEFAULT_BASE_URL.to_string(),
        };
        let positive = |v: Option<Spanned<i64>>, key: &str, default: u32| match v {
            Some(n) => u32::try_from(*n.get_ref()).ok().filter(|&x| x > 0).ok_or_else(|| {
                self.err(Some(n.span()), key, &format!("{} must be a positive whole number", n.get_ref()))
            }),
            None => Ok(default),
        };
        let duration = |v: &Option<Spanned<DurationValue>>, key: &str, default: Duration| match v {
            Some(d) => self.duration(d, key),
            None => Ok(default),
        };
        let recheck_not_found = match &raw.recheck_not_found {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, d)| self.duration(d, &format!("virustotal.recheck_not_found[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![Duration::from_secs(3600), Duration::from_secs(86_400), Duration::from_secs(7 * 86_400)],
        };
        let timeout = duration(&raw.timeout, "virustotal.timeout", Duration::from_secs(30))?;
        let connect_timeout = duration(&raw.connect_timeout, "virustotal.connect_timeout", Duration::from_secs(10))?;
        for (d, key) in [(timeout, "virustotal.timeout"), (connect_timeout, "virustotal.connect_timeout")] {
            if d.is_zero() {
                return Err(self.err(None, key, "must be longer than 0s"));
            }
        }
        Ok(VirusTotalConfig {
            enabled: raw.enabled,
            api_key,
            api_key_file,
            base_url,
            requests_per_minute: positive(raw.requests_per_minute, "virustotal.requests_per_minute", 4)?,
            daily_quota: positive(raw.daily_quota, "virustotal.daily_quota", 500)?,
            cache_ttl: duration(&raw.cache_ttl, "virustotal.cache_ttl", Duration::from_secs(7 * 86_400))?,
            recheck_not_found,
            scan_baseline: raw.scan_baseline.unwrap_or(true),
            max_retries: positive(raw.max_retries, "virustotal.max_retries", 5)?,
            retry_backoff: duration(&raw.retry_backoff, "virustotal.retry_backoff", Duration::from_secs(30))?,
            connect_timeout,
            timeout,
            concurrency: positive(raw.concurrency, "virustotal.concurrency", 4)?.min(64) as usize,
        })
    }
}

/// `path` with its longest existing ancestor canonicalized (symlinks resolved), so
/// a folder that does not exist yet compares equal to the paths found under it later.
pub(super) fn canonical_lenient(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(c, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// The machine's host name, for alert headers.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
