//! Configuration: reads the TOML file into raw serde structs, then validates it into
//! a typed [`Config`] in which every path is absolute, every glob and regex is
//! compiled and every size and duration is a number. Every error names the file,
//! the line and the key at fault, because an operator fixing a config needs all three.
//!
//! This module also decides which paths are monitored ([`Config::classify`]), so the
//! scanner and (later) the realtime watcher apply exactly the same rules.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod ossec;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

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
    /// Regular expressions of full paths to skip (Wazuh's `<ignore type="sregex">`).
    pub ignore_regex: Vec<Regex>,
    pub restrict: Option<Regex>,
    pub follow_symlinks: bool,
    /// Files larger than this are recorded without hashes.
    pub max_file_size: u64,
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

// ---------------------------------------------------------------------------
// Raw, as written in the file.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    general: RawGeneral,
    #[serde(default)]
    directories: Vec<RawDirectory>,
    #[serde(default)]
    scan: RawScan,
    #[serde(default)]
    realtime: RawRealtime,
    #[serde(default)]
    virustotal: RawVirusTotal,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRealtime {
    settle: Option<Spanned<DurationValue>>,
    queue_capacity: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGeneral {
    data_dir: Option<Spanned<String>>,
    hostname: Option<String>,
    agent_id: Option<Spanned<String>>,
    agent_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    path: Spanned<String>,
    #[serde(default = "yes")]
    realtime: bool,
    recursion_level: Option<Spanned<i64>>,
    #[serde(default)]
    ignore: Vec<Spanned<String>>,
    #[serde(default)]
    ignore_regex: Vec<Spanned<String>>,
    restrict: Option<Spanned<String>>,
    #[serde(default)]
    follow_symlinks: bool,
    max_file_size: Option<Spanned<SizeValue>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScan {
    frequency: Option<Spanned<DurationValue>>,
    scan_on_start: Option<bool>,
    rehash: Option<Spanned<String>>,
    threads: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVirusTotal {
    #[serde(default)]
    enabled: bool,
    api_key: Option<String>,
    api_key_file: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    requests_per_minute: Option<Spanned<i64>>,
    daily_quota: Option<Spanned<i64>>,
    cache_ttl: Option<Spanned<DurationValue>>,
    recheck_not_found: Option<Vec<Spanned<DurationValue>>>,
    scan_baseline: Option<bool>,
    max_retries: Option<Spanned<i64>>,
    retry_backoff: Option<Spanned<DurationValue>>,
    connect_timeout: Option<Spanned<DurationValue>>,
    timeout: Option<Spanned<DurationValue>>,
    concurrency: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(i64),
    Text(String),
}

fn yes() -> bool {
    true
}

pub const DEFAULT_RECURSION_LEVEL: u32 = 256;
/// Wazuh's own ceiling for `recursion_level`.
pub const MAX_RECURSION_LEVEL: u32 = 320;
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;
pub const DEFAULT_BASE_URL: &str = "https://www.virustotal.com";
pub const API_KEY_ENV: &str = "FIMVT_VT_API_KEY";

// ---------------------------------------------------------------------------
// Loading and validation.

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
        cfg.warnings = warnings;
        Ok(cfg)
    }

    /// Validates `text` as if read from `source` (relative paths resolve against
    /// `source`'s folder).
    pub fn from_str_at(text: &str, source: &Path, env_api_key: Option<String>) -> Result<Config, ConfigError> {
        let cx = Cx { text, file: source };
        let raw: RawConfig = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;
        Self::validate(&cx, raw, source, env_api_key)
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
        let directories = raw
            .directories
            .into_iter()
            .enumerate()
            .map(|(i, d)| cx.directory(i, d, &base))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in directories.iter().enumerate() {
            if let Some(j) = directories[..i].iter().position(|b| b.path == a.path) {
                return Err(cx.err(
                    None,
                    &format!("directories[{i}].path"),
                    &format!("{} is already listed as directories[{j}]", a.path.display()),
                ));
            }
        }
        let scan = cx.scan(raw.scan)?;
        let realtime = cx.realtime(raw.realtime)?;
        let virustotal = cx.virustotal(raw.virustotal, &base, env_api_key)?;
        Ok(Config {
            source: source.to_path_buf(),
            general,
            directories,
            scan,
            realtime,
            virustotal,
            warnings: Vec::new(),
        })
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

/// Context for error messages: the file and its text, to turn spans into lines.
struct Cx<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Cx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn err(&self, span: Option<std::ops::Range<usize>>, key: &str, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: span.map(|s| self.line_of(s.start)),
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    /// Turns a toml/serde error into one that names the key: serde's messages for
    /// wrong types do not, so the key is read back from the line the span points at.
    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
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

    fn general(&self, raw: RawGeneral, base: &Path) -> Result<General, ConfigError> {
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
        Ok(General { data_dir, hostname, agent_id, agent_name })
    }

    fn directory(&self, i: usize, raw: RawDirectory, base: &Path) -> Result<DirConfig, ConfigError> {
        let key = |k: &str| format!("directories[{i}].{k}");
        let written = raw.path.get_ref();
        let joined = base.join(written);
        let path = std::fs::canonicalize(&joined).map_err(|e| {
            self.err(
                Some(raw.path.span()),
                &key("path"),
                &format!("cannot use folder {:?} (resolved to {}): {e}", written, joined.display()),
            )
        })?;
        if !path.is_dir() {
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
                Regex::new(r.get_ref()).map_err(|e| {
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
                Regex::new(r.get_ref())
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
        })
    }

    fn scan(&self, raw: RawScan) -> Result<ScanConfig, ConfigError> {
        let frequency = match raw.frequency {
            Some(f) => {
                let d = self.duration(&f, "scan.frequency")?;
                if d < Duration::from_secs(1) {
                    return Err(self.err(Some(f.span()), "scan.frequency", "must be at least 1s"));
                }
                d
            }
            None => Duration::from_secs(12 * 3600),
        };
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
        Ok(ScanConfig { frequency, scan_on_start: raw.scan_on_start.unwrap_or(true), rehash, threads })
    }

    fn duration(&self, v: &Spanned<DurationValue>, key: &str) -> Result<Duration, ConfigError> {
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

    fn realtime(&self, raw: RawRealtime) -> Result<RealtimeConfig, ConfigError> {
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

    fn virustotal(
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

/// Parses sizes such as `1048576`, `512KiB`, `1GiB`, `10MB` (decimal units are
/// powers of 1000, binary units powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a size such as \"1GiB\" or \"500MB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        u => {
            return Err(format!("unknown size unit {u:?} in {text:?}: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"));
        }
    };
    n.checked_mul(mult).ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses durations such as `250ms`, `45s`, `30m`, `12h`, `1d`, `1h30m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as \"12h\", \"30m\", \"1d\", \"1h30m\" or \"250ms\"");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
            "d" => Duration::from_secs(n.checked_mul(86400).ok_or_else(bad)?),
            "w" => Duration::from_secs(n.checked_mul(7 * 86400).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `path` with its longest existing ancestor canonicalized (symlinks resolved), so
/// a folder that does not exist yet compares equal to the paths found under it later.
fn canonical_lenient(path: &Path) -> PathBuf {
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

/// Formats a duration the way the config accepts it back.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    match s {
        s if s % 86400 == 0 && s > 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

impl fmt::Display for Config {
    /// The effective settings, as `check-config` prints them; the key is masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# effective settings of {}", self.source.display())?;
        writeln!(f, "[general]")?;
        writeln!(f, "data_dir = {:?}", self.general.data_dir.display().to_string())?;
        writeln!(f, "hostname = {:?}", self.general.hostname)?;
        writeln!(f, "agent_id = {:?}", self.general.agent_id)?;
        writeln!(f, "agent_name = {:?}", self.general.agent_name)?;
        for d in &self.directories {
            writeln!(f, "\n[[directories]]")?;
            writeln!(f, "path = {:?}", d.path.display().to_string())?;
            writeln!(f, "realtime = {}", d.realtime)?;
            writeln!(f, "recursion_level = {}", d.recursion_level)?;
            writeln!(f, "ignore = {:?}", d.ignore_patterns)?;
            if !d.ignore_regex.is_empty() {
                let r: Vec<&str> = d.ignore_regex.iter().map(|r| r.as_str()).collect();
                writeln!(f, "ignore_regex = {r:?}")?;
            }
            if let Some(r) = &d.restrict {
                writeln!(f, "restrict = {:?}", r.as_str())?;
            }
            writeln!(f, "follow_symlinks = {}", d.follow_symlinks)?;
            writeln!(f, "max_file_size = {}", d.max_file_size)?;
        }
        writeln!(f, "\n[scan]")?;
        writeln!(f, "frequency = {:?}", format_duration(self.scan.frequency))?;
        writeln!(f, "scan_on_start = {}", self.scan.scan_on_start)?;
        let rehash = match self.scan.rehash {
            Rehash::Changed => "changed",
            Rehash::Always => "always",
        };
        writeln!(f, "rehash = {rehash:?}")?;
        writeln!(f, "threads = {}", self.scan.threads)?;
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
    fn wrong_type_names_line_and_key() {
        let e = load("[[directories]]\npath = \"watched\"\nrealtime = \"yes\"\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key, "directories[0].realtime", "{e}");
    }

    #[test]
    fn missing_folder_names_line_and_key() {
        let e = load("[[directories]]\n\npath = \"nope\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key, "directories[0].path");
        assert!(e.message.contains("nope"), "{e}");
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
