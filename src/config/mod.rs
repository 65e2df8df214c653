//! Configuration: the typed, validated [`Config`] in which every path is absolute,
//! every glob and regex is compiled and every size and duration is a number, and
//! the rule of which paths are monitored ([`Config::classify`]), so scans and the
//! realtime watcher apply exactly the same rules. Every error names the file, the
//! line and the key at fault, because an operator fixing a config needs all three.
//!
//! `raw` holds the serde types as written, `ossec` reads a Wazuh ossec.conf into
//! them, `validate` turns them into this module's types, `units` parses sizes and
//! durations, `schedule` reads scan times and days and says when one is due,
//! and `display` prints the effective settings for `check-config`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

mod display;
mod env;
mod ossec;
mod raw;
mod schedule;
mod units;
mod validate;

pub use schedule::{ScanSchedule, ScanTime, WeekDays};
pub use units::{format_duration, parse_duration, parse_size};
pub use validate::system_hostname;

use raw::RawConfig;
use validate::{Cx, canonical_lenient};

use globset::GlobSet;
use regex::Regex;

/// A configuration problem, located in its file.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {key}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted key, e.g. `directories[0].path`.
    pub key: String,
    pub message: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (absolute).
    pub source: PathBuf,
    pub general: General,
    pub directories: Vec<DirConfig>,
    pub scan: ScanConfig,
    pub realtime: RealtimeConfig,
    pub virustotal: VirusTotalConfig,
    /// Options read but not supported (from a Wazuh ossec.conf): said at start.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// How long a file must be quiet (no write events) before it is read, when it
    /// was not closed after writing.
    pub settle: Duration,
    /// Capacity of fimvt's own event queue; when full, events become a rescan.
    pub queue_capacity: usize,
}

#[derive(Debug, Clone)]
pub struct General {
    pub data_dir: PathBuf,
    pub hostname: String,
    pub agent_id: String,
    pub agent_name: String,
    /// The nice value of fimvt's FIM work (Wazuh's `process_priority`); `None`
    /// keeps the one fimvt was started with.
    pub process_priority: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct DirConfig {
    /// Absolute, canonical path of the monitored folder.
    pub path: PathBuf,
    pub realtime: bool,
    /// How many levels of subfolders below `path` are monitored (0: only its files).
    pub recursion_level: u32,
    /// The globs as written, for display.
    pub ignore_patterns: Vec<String>,
    ignore: GlobSet,
    /// Patterns of full paths to skip (Wazuh's `<ignore type="sregex">`).
    pub ignore_regex: Vec<Pattern>,
    /// Only the files whose full path matches are monitored.
    pub restrict: Option<Pattern>,
    pub follow_symlinks: bool,
    /// Files larger than this are recorded without hashes.
    pub max_file_size: u64,
    /// Added to every FIM alert of this folder (Wazuh's `tags` attribute).
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rehash {
    /// Re-read a file only when its size, mtime, ctime, inode, mode or owner changed.
    Changed,
    /// Re-read every file on every scan.
    Always,
}

#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub frequency: Duration,
    pub scan_on_start: bool,
    pub rehash: Rehash,
    /// Hashing threads; defaults to the number of cores.
    pub threads: usize,
    /// File systems left out of the walks (`presence::skipped_file_system`).
    pub skip_fs: SkipFs,
    /// `time` and `day`: scheduled scans at fixed local times instead of every
    /// `frequency` (which is then a week, the longest gap, as in Wazuh).
    pub schedule: Option<ScanSchedule>,
    /// At most this many files looked at per second by a scan; 0 is no limit.
    pub max_files_per_second: u32,
}

/// `skip_nfs`, `skip_dev`, `skip_sys`, `skip_proc`: all on unless said
/// otherwise, Wazuh's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkipFs {
    pub nfs: bool,
    pub dev: bool,
    pub sys: bool,
    pub proc: bool,
}

/// `Debug` is safe: the key is a [`Secret`].
#[derive(Debug, Clone)]
pub struct VirusTotalConfig {
    pub enabled: bool,
    pub api_key: Option<Secret>,
    /// The file the key was read from (the config or `api_key_file`), if any.
    pub api_key_file: Option<PathBuf>,
    pub base_url: String,
    pub requests_per_minute: u32,
    pub daily_quota: u32,
    /// A verdict younger than this answers a new file with the same content.
    pub cache_ttl: Duration,
    /// Waits before asking again about a hash VirusTotal did not know.
    pub recheck_not_found: Vec<Duration>,
    /// Queue the files of the baseline too, at the lowest priority.
    pub scan_baseline: bool,
    /// Failed tries before 87106 is raised (the lookup stays queued).
    pub max_retries: u32,
    /// Wait before the first retry; it doubles with each failure, up to 1 h.
    pub retry_backoff: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
}

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Enough to tell two keys apart, never enough to use one.
        write!(f, "**** ({} characters)", self.0.chars().count())
    }
}

/// A regular expression over a full path; a leading `!` in the configuration
/// negates it, as in Wazuh's sregex (`!\.log$`: everything but logs).
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
    negate: bool,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Pattern, regex::Error> {
        let (negate, body) = text.strip_prefix('!').map_or((false, text), |b| (true, b));
        Ok(Pattern { regex: Regex::new(body)?, negate })
    }

    pub fn is_match(&self, path: &str) -> bool {
        self.regex.is_match(path) != self.negate
    }
}

impl fmt::Display for Pattern {
    /// As written in the configuration, so check-config's output reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", if self.negate { "!" } else { "" }, self.regex.as_str())
    }
}

/// What [`Config::classify`] says about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathClass {
    /// A regular file to record, under directory entry `dir`.
    File { dir: usize },
    /// A folder to descend into, under directory entry `dir`.
    Dir { dir: usize },
    /// Not monitored: outside every folder, ignored, filtered, too deep, or not a
    /// regular file (FIFO, socket, device, unfollowed symlink).
    Excluded,
}

pub const DEFAULT_RECURSION_LEVEL: u32 = 256;
/// Wazuh's syscheckd default `process_priority`, for an ossec.conf without one.
pub const WAZUH_PROCESS_PRIORITY: i32 = 10;
/// Wazuh's own ceiling for `recursion_level`.
pub const MAX_RECURSION_LEVEL: u32 = 320;
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;
pub const DEFAULT_BASE_URL: &str = "https://www.virustotal.com";
pub const API_KEY_ENV: &str = "FIMVT_VT_API_KEY";

/// Expands the TOML's `$VARIABLE` folder paths and ignores as an ossec.conf's
/// are (`env`): a folder entry per path the variable holds, each inheriting the
/// entry's settings; an ignore per path, with everything under it. Returns
/// what could not be used.
fn expand_env(raw: &mut RawConfig) -> Vec<String> {
    let mut warnings = Vec::new();
    let expanded = |entry: &str, warnings: &mut Vec<String>| match env::expand_here(entry) {
        env::Expansion::Literal => None,
        env::Expansion::Paths(paths, w) => {
            warnings.extend(w);
            Some(paths)
        }
        env::Expansion::Unset(w) => {
            warnings.push(w);
            Some(Vec::new())
        }
    };
    let mut directories = Vec::new();
    for mut d in std::mem::take(&mut raw.directories) {
        let mut ignore = Vec::new();
        for g in std::mem::take(&mut d.ignore) {
            match expanded(g.get_ref().trim(), &mut warnings) {
                None => ignore.push(g),
                Some(paths) => {
                    for p in paths {
                        let escaped = globset::escape(&p);
                        ignore.push(Spanned::new(g.span(), escaped.clone()));
                        ignore.push(Spanned::new(g.span(), format!("{escaped}/**")));
                    }
                }
            }
        }
        d.ignore = ignore;
        match expanded(d.path.get_ref().trim(), &mut warnings) {
            None => directories.push(d),
            Some(paths) => {
                for p in paths {
                    let mut e = d.clone();
                    e.path = Spanned::new(d.path.span(), p);
                    directories.push(e);
                }
            }
        }
    }
    raw.directories = directories;
    warnings
}

impl Config {
    /// Reads and validates `path`. The VirusTotal key may also come from the
    /// `FIMVT_VT_API_KEY` environment variable.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let text = std::fs::read_to_string(&source).map_err(|e| ConfigError {
            file: source.clone(),
            line: None,
            key: "(file)".into(),
            message: format!("cannot read the configuration: {e}"),
        })?;
        let env_key = std::env::var(API_KEY_ENV).ok();
        if ossec::looks_like_xml(&text) {
            return Self::from_ossec_at(&text, &source, env_key);
        }
        Self::from_str_at(&text, &source, env_key)
    }

    /// Reads a Wazuh `ossec.conf`: its `<syscheck>` and VirusTotal `<integration>`,
    /// validated exactly like the TOML; unsupported options become `warnings`.
    pub fn from_ossec_at(text: &str, source: &Path, env_api_key: Option<String>) -> Result<Config, ConfigError> {
        let cx = Cx { text, file: source };
        let (raw, warnings) =
            ossec::read(text).map_err(|(offset, key, message)| cx.err(Some(offset..offset), &key, &message))?;
        let mut cfg = Self::validate(&cx, raw, source, env_api_key)?;
        cfg.warnings.extend(warnings);
        Ok(cfg)
    }

    /// Validates `text` as if read from `source` (relative paths resolve against
    /// `source`'s folder).
    pub fn from_str_at(text: &str, source: &Path, env_api_key: Option<String>) -> Result<Config, ConfigError> {
        let cx = Cx { text, file: source };
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;
        let warnings = expand_env(&mut raw);
        if raw.directories.is_empty() && !warnings.is_empty() {
            return Err(cx.err(None, "directories", &format!("nothing to monitor: {}", warnings.join("; "))));
        }
        let mut cfg = Self::validate(&cx, raw, source, env_api_key)?;
        cfg.warnings.extend(warnings);
        Ok(cfg)
    }

    fn validate(
        cx: &Cx<'_>,
        raw: RawConfig,
        source: &Path,
        env_api_key: Option<String>,
    ) -> Result<Config, ConfigError> {
        let base = source.parent().unwrap_or(Path::new("/")).to_path_buf();

        let general = cx.general(raw.general, &base)?;
        if raw.directories.is_empty() {
            return Err(cx.err(None, "directories", "no [[directories]] entry: nothing to monitor"));
        }
        let mut directories: Vec<DirConfig> = Vec::new();
        let mut warnings = Vec::new();
        for (i, d) in raw.directories.into_iter().enumerate() {
            let d = cx.directory(i, d, &base)?;
            // A folder listed twice: the later entry's settings apply, as in Wazuh.
            if let Some(j) = directories.iter().position(|b| b.path == d.path) {
                warnings.push(format!(
                    "directories[{i}]: {} is listed again; this later entry's settings apply",
                    d.path.display()
                ));
                directories.remove(j);
            }
            directories.push(d);
        }
        let scan = cx.scan(raw.scan, &mut warnings)?;
        let realtime = cx.realtime(raw.realtime)?;
        let virustotal = cx.virustotal(raw.virustotal, &base, env_api_key)?;
        Ok(Config { source: source.to_path_buf(), general, directories, scan, realtime, virustotal, warnings })
    }

    /// Puts the data folder elsewhere (`--data-dir`).
    pub fn set_data_dir(&mut self, dir: &Path) {
        let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        self.general.data_dir = canonical_lenient(&abs);
    }

    /// Things an operator should hear at start: unsupported ossec.conf options,
    /// and an API key in a file other users can read.
    pub fn startup_warnings(&self) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let mut w: Vec<String> = self.warnings.iter().map(|x| format!("{}: {x}", self.source.display())).collect();
        for d in self.directories.iter().filter(|d| !d.path.exists()) {
            w.push(format!("{} does not exist yet: it is monitored as soon as it appears", d.path.display()));
        }
        if let Some(f) = &self.virustotal.api_key_file
            && let Ok(md) = std::fs::metadata(f)
            && md.permissions().mode() & 0o004 != 0
        {
            w.push(format!(
                "{} holds the VirusTotal API key and is readable by every user (mode {:o}): chmod o-r it",
                f.display(),
                md.permissions().mode() & 0o777
            ));
        }
        w
    }

    pub fn db_path(&self) -> PathBuf {
        self.general.data_dir.join("fimvt.db")
    }

    /// Decides whether `path` is monitored, given its `lstat` file type (or, for a
    /// followed symlink, its target's). The most specific directory entry wins, as
    /// in Wazuh, so a nested entry can have settings of its own.
    pub fn classify(&self, path: &Path, file_type: std::fs::FileType) -> PathClass {
        if file_type.is_dir() {
            let Some((dir_index, dir)) = self.owner_of(path) else {
                return PathClass::Excluded;
            };
            let rel = path.strip_prefix(&dir.path).unwrap_or(Path::new(""));
            // A folder d levels down holds files that sit in d folders.
            let depth = rel.components().count();
            if depth as u64 > u64::from(dir.recursion_level) || (depth > 0 && dir.is_ignored(rel, path)) {
                return PathClass::Excluded;
            }
            return PathClass::Dir { dir: dir_index };
        }
        // Symlinks (unfollowed), FIFOs, sockets and devices are never recorded:
        // reading a FIFO could block and a device could be endless.
        if !file_type.is_file() {
            return PathClass::Excluded;
        }
        match self.file_rules_match(path) {
            Some(dir) => PathClass::File { dir },
            None => PathClass::Excluded,
        }
    }

    /// Whether a regular file at `path` would be monitored, judging by its path
    /// alone (folder, depth, `ignore`, `restrict`); returns its directory entry.
    pub fn file_rules_match(&self, path: &Path) -> Option<usize> {
        let (dir_index, dir) = self.owner_of(path)?;
        let rel = path.strip_prefix(&dir.path).ok()?;
        let depth = rel.components().count();
        if depth == 0 || (depth - 1) as u64 > u64::from(dir.recursion_level) || dir.is_ignored(rel, path) {
            return None;
        }
        if let Some(re) = &dir.restrict
            && !re.is_match(&path.to_string_lossy())
        {
            return None;
        }
        Some(dir_index)
    }

    /// Whether the entry covering `path` follows symlinks.
    pub fn follows_symlinks(&self, path: &Path) -> bool {
        self.owner_of(path).is_some_and(|(_, d)| d.follow_symlinks)
    }

    /// The directory entry a path belongs to: the longest configured prefix. fimvt's
    /// own data folder belongs to none, even inside a monitored folder: its files
    /// change with every alert and must never feed back into the monitor.
    pub fn owner_of(&self, path: &Path) -> Option<(usize, &DirConfig)> {
        if path.starts_with(&self.general.data_dir) {
            return None;
        }
        self.directories
            .iter()
            .enumerate()
            .filter(|(_, d)| path.starts_with(&d.path))
            .max_by_key(|(_, d)| d.path.as_os_str().len())
    }
}

impl DirConfig {
    /// Globs match the path relative to the monitored folder (`*.tmp` matches at any
    /// depth, as `*` may cross `/`), and absolute globs match the whole path.
    fn is_ignored(&self, rel: &Path, abs: &Path) -> bool {
        (!self.ignore.is_empty() && (self.ignore.is_match(rel) || self.ignore.is_match(abs)))
            || (!self.ignore_regex.is_empty() && {
                let full = abs.to_string_lossy();
                self.ignore_regex.iter().any(|r| r.is_match(&full))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_in(text: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("watched")).unwrap();
        let file = dir.path().join("fimvt.toml");
        std::fs::write(&file, text).unwrap();
        let result = Config::from_str_at(text, &file, None);
        (dir, result)
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        load_in(text).1
    }

    const MINIMAL: &str = "[[directories]]\npath = \"watched\"\n";

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = load(MINIMAL).unwrap();
        let d = &c.directories[0];
        assert!(d.path.is_absolute() && d.path.ends_with("watched"));
        assert_eq!(d.recursion_level, 256);
        assert_eq!(d.max_file_size, 1 << 30);
        assert!(d.realtime);
        assert!(!d.follow_symlinks);
        assert_eq!(c.scan.frequency, Duration::from_secs(12 * 3600));
        assert!(c.scan.scan_on_start);
        assert_eq!(c.general.agent_id, "000");
        assert!(c.general.data_dir.ends_with("var"));
        assert_eq!(c.virustotal.requests_per_minute, 4);
        assert_eq!(c.virustotal.daily_quota, 500);
        assert_eq!(c.virustotal.base_url, DEFAULT_BASE_URL);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = load("[general]\ndata_dir = \"var\"\nbogus = 1\n[[directories]]\npath = \"watched\"\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().contains("bogus"), "{e}");
        assert!(e.to_string().contains("fimvt.toml:3"), "{e}");
    }

    #[test]
    fn scan_time_and_day_replace_the_frequency_by_a_week_and_bad_ones_name_file_line_and_key() {
        let c = load(&format!("{MINIMAL}[scan]\nfrequency = \"1h\"\ntime = \"10pm\"\nday = \"sat\"\n")).unwrap();
        let s = c.scan.schedule.expect("a schedule");
        assert_eq!((s.time.unwrap().to_string(), s.days.unwrap().to_string()), ("22:00".into(), "saturday".into()));
        assert_eq!(c.scan.frequency, Duration::from_secs(7 * 86_400), "Wazuh's run_check.c: a week");
        assert!(c.warnings.iter().any(|w| w.contains("frequency 1h is not used")), "{:?}", c.warnings);
        assert!(load(MINIMAL).unwrap().scan.schedule.is_none());
        for (line, key) in [("time = \"25:00\"", "scan.time"), ("day = \"someday\"", "scan.day")] {
            let e = load(&format!("{MINIMAL}[scan]\n{line}\n")).unwrap_err();
            assert_eq!((e.line, e.key.as_str()), (Some(4), key), "{e}");
            assert!(e.to_string().contains("fimvt.toml:4: "), "{e}");
        }
    }

    #[test]
    fn ossec_scan_time_and_day_are_read_and_bad_ones_name_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ossec.conf");
        let conf = |extra: &str| {
            format!(
                "<ossec_config>\n<syscheck>\n<directories>{}</directories>\n{extra}\n</syscheck>\n</ossec_config>\n",
                dir.path().display()
            )
        };
        let c =
            Config::from_ossec_at(&conf("<scan_time>10:30am</scan_time><scan_day>weekdays</scan_day>"), &file, None)
                .unwrap();
        let s = c.scan.schedule.expect("a schedule");
        assert_eq!(s.time.unwrap().to_string(), "10:30");
        assert_eq!(s.days.unwrap().to_string(), "monday,tuesday,wednesday,thursday,friday");
        assert!(c.warnings.iter().all(|w| !w.contains("scan_")), "supported, not warned about: {:?}", c.warnings);
        for (extra, key) in [
            ("<scan_time>13pm</scan_time>", "syscheck.scan_time"),
            ("<scan_day>!monday</scan_day>", "syscheck.scan_day"),
        ] {
            let e = Config::from_ossec_at(&conf(extra), &file, None).unwrap_err();
            assert_eq!((e.line, e.key.as_str()), (Some(4), key), "{e}");
            assert!(e.to_string().contains("ossec.conf:4: "), "{e}");
        }
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let e = load("[[directories]]\npath = \"watched\"\nrealtime = \"yes\"\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key, "directories[0].realtime", "{e}");
    }

    #[test]
    fn a_folder_listed_twice_takes_the_later_entry_as_wazuh_does() {
        let c = load(
            "[[directories]]\npath = \"watched\"\nrealtime = false\nrecursion_level = 1\n\
             [[directories]]\npath = \"watched/\"\nrealtime = true\n",
        )
        .unwrap();
        assert_eq!(c.directories.len(), 1, "one folder, once");
        let d = &c.directories[0];
        assert!(d.realtime, "the later entry's settings");
        assert_eq!(d.recursion_level, DEFAULT_RECURSION_LEVEL, "none of the earlier entry's");
        let w = c.startup_warnings().join("\n");
        assert!(w.contains("directories[1]") && w.contains("listed again"), "{w}");
    }

    #[test]
    fn a_path_that_is_not_a_folder_names_line_and_key() {
        // fimvt.toml itself: it exists and is not a folder.
        let e = load("[[directories]]\n\npath = \"fimvt.toml\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key, "directories[0].path");
        assert!(e.message.contains("fimvt.toml is not a folder"), "{e}");
    }

    #[test]
    fn a_folder_that_does_not_exist_yet_is_accepted_and_said_at_start() {
        let (dir, c) = load_in("[[directories]]\npath = \"later/deeper\"\n");
        let c = c.unwrap();
        let want = std::fs::canonicalize(dir.path()).unwrap().join("later/deeper");
        assert_eq!(c.directories[0].path, want, "resolved against the config's folder");
        let w = c.startup_warnings();
        assert!(w.iter().any(|w| w.contains("later/deeper does not exist yet")), "{w:?}");
    }

    #[test]
    fn bad_glob_and_regex_are_located() {
        let e = load("[[directories]]\npath = \"watched\"\nignore = [\"ok\", \"a[\"]\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(3), "directories[0].ignore[1]"), "{e}");
        let e = load("[[directories]]\npath = \"watched\"\nrestrict = \"(\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(3), "directories[0].restrict"), "{e}");
    }

    #[test]
    fn absurd_numbers_are_refused() {
        let e = load("[[directories]]\npath = \"watched\"\nrecursion_level = -1\n").unwrap_err();
        assert_eq!(e.key, "directories[0].recursion_level");
        let e = load("[[directories]]\npath = \"watched\"\n[virustotal]\nrequests_per_minute = 0\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(4), "virustotal.requests_per_minute"));
        let e = load("[[directories]]\npath = \"watched\"\nmax_file_size = \"12 parsecs\"\n").unwrap_err();
        assert_eq!(e.key, "directories[0].max_file_size");
    }

    #[test]
    fn no_directories_is_an_error() {
        let e = load("[general]\n").unwrap_err();
        assert_eq!(e.key, "directories");
    }

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("42"), Ok(42));
        assert!(parse_size("1XB").is_err());
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("12").is_ok());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("1h30").is_err());
    }

    #[test]
    fn api_key_sources_and_masking() {
        let c = load(&format!("{MINIMAL}[virustotal]\napi_key = \"sekrit-123\"\n")).unwrap();
        assert_eq!(c.virustotal.api_key.as_ref().unwrap().expose(), "sekrit-123");
        let shown = format!("{c} {c:?}");
        assert!(!shown.contains("sekrit-123"), "{shown}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("watched")).unwrap();
        let file = dir.path().join("f.toml");
        let c = Config::from_str_at(MINIMAL, &file, Some("from-env".into())).unwrap();
        assert_eq!(c.virustotal.api_key.unwrap().expose(), "from-env");
        let e = load(&format!("{MINIMAL}[virustotal]\napi_key_file = \"missing.key\"\n")).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(4), "virustotal.api_key_file"));
    }

    #[test]
    fn classify_honours_ignore_restrict_and_depth() {
        let (_keep, c) = load_in(
            "[[directories]]\npath = \"watched\"\nrecursion_level = 1\nignore = [\"*.tmp\", \"**/.cache/**\"]\nrestrict = \"\\\\.(exe|txt)$\"\n",
        );
        let c = c.unwrap();
        let root = c.directories[0].path.clone();
        let dir = std::fs::metadata(&root).unwrap().file_type();
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let file = std::fs::metadata(tmp.path()).unwrap().file_type();
        assert_eq!(c.classify(&root.join("a.exe"), file), PathClass::File { dir: 0 });
        assert_eq!(c.classify(&root.join("sub/a.txt"), file), PathClass::File { dir: 0 });
        assert_eq!(c.classify(&root.join("sub/deeper/a.txt"), file), PathClass::Excluded);
        assert_eq!(c.classify(&root.join("sub/deeper"), dir), PathClass::Excluded);
        assert_eq!(c.classify(&root.join("sub"), dir), PathClass::Dir { dir: 0 });
        assert_eq!(c.classify(&root.join("x.tmp.txt"), file), PathClass::File { dir: 0 });
        assert_eq!(c.classify(&root.join("sub/x.tmp"), file), PathClass::Excluded);
        assert_eq!(c.classify(&root.join(".cache/a.txt"), file), PathClass::Excluded);
        assert_eq!(c.classify(&root.join("a.doc"), file), PathClass::Excluded);
        assert_eq!(c.classify(Path::new("/elsewhere/a.exe"), file), PathClass::Excluded);
    }
}
