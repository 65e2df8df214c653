//! The configuration as written in the TOML file (and as the ossec.conf reader
//! builds it): serde types with spans, so validation can name the line at fault.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) general: RawGeneral,
    #[serde(default)]
    pub(super) directories: Vec<RawDirectory>,
    #[serde(default)]
    pub(super) scan: RawScan,
    #[serde(default)]
    pub(super) realtime: RawRealtime,
    #[serde(default)]
    pub(super) virustotal: RawVirusTotal,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealtime {
    pub(super) settle: Option<Spanned<DurationValue>>,
    pub(super) queue_capacity: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGeneral {
    pub(super) data_dir: Option<Spanned<String>>,
    pub(super) hostname: Option<String>,
    pub(super) agent_id: Option<Spanned<String>>,
    pub(super) agent_name: Option<String>,
    pub(super) process_priority: Option<Spanned<i64>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDirectory {
    pub(super) path: Spanned<String>,
    #[serde(default = "yes")]
    pub(super) realtime: bool,
    pub(super) recursion_level: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) ignore: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) ignore_regex: Vec<Spanned<String>>,
    pub(super) restrict: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) follow_symlinks: bool,
    pub(super) max_file_size: Option<Spanned<SizeValue>>,
    #[serde(default)]
    pub(super) tags: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScan {
    pub(super) frequency: Option<Spanned<DurationValue>>,
    pub(super) scan_on_start: Option<bool>,
    pub(super) rehash: Option<Spanned<String>>,
    pub(super) threads: Option<Spanned<i64>>,
    pub(super) skip_nfs: Option<bool>,
    pub(super) skip_dev: Option<bool>,
    pub(super) skip_sys: Option<bool>,
    pub(super) skip_proc: Option<bool>,
    pub(super) time: Option<Spanned<String>>,
    pub(super) day: Option<Spanned<String>>,
    pub(super) max_files_per_second: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVirusTotal {
    #[serde(default)]
    pub(super) enabled: bool,
    pub(super) api_key: Option<String>,
    pub(super) api_key_file: Option<Spanned<String>>,
    pub(super) base_url: Option<Spanned<String>>,
    pub(super) requests_per_minute: Option<Spanned<i64>>,
    pub(super) daily_quota: Option<Spanned<i64>>,
    pub(super) cache_ttl: Option<Spanned<DurationValue>>,
    pub(super) recheck_not_found: Option<Vec<Spanned<DurationValue>>>,
    pub(super) scan_baseline: Option<bool>,
    pub(super) max_retries: Option<Spanned<i64>>,
    pub(super) retry_backoff: Option<Spanned<DurationValue>>,
    pub(super) connect_timeout: Option<Spanned<DurationValue>>,
    pub(super) timeout: Option<Spanned<DurationValue>>,
    pub(super) concurrency: Option<Spanned<i64>>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum SizeValue {
    Bytes(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum DurationValue {
    Seconds(i64),
    Text(String),
}

pub(super) fn yes() -> bool {
    true
}
