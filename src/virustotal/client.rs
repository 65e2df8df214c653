//! The VirusTotal API v3 client: the only code that knows VirusTotal's JSON.
//! `GET {base_url}/api/v3/files/{sha256}` with the `x-apikey` header; every answer
//! becomes an [`Answer`]. Bodies are read up to a cap, so a hostile or broken
//! server cannot make fimvt hold gigabytes; the key is a sensitive header value
//! and never part of a URL, a log line or an error.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use serde::Deserialize;

use crate::model::Verdict;

/// Largest response body read; a file report is a few hundred KiB at most.
pub const MAX_BODY: usize = 4 << 20;

/// What one request came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 200 with a file report, or 404: a verdict either way.
    Verdict(Verdict),
    /// 429: over the rate or quota; `retry_after` when the server said.
    RateLimited { retry_after: Option<Duration> },
    /// 401 or 403: the key is wrong or not allowed.
    BadKey { status: u16 },
    /// Anything else worth retrying: 5xx, 424, NotAvailableYet, a timeout, a reset,
    /// an unparsable body. `status` is 0 when no HTTP status was received.
    Retry { status: u16, timed_out: bool, why: String },
}

pub struct Client {
    http: reqwest::Client,
    base_url: String,
    key: HeaderValue,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the API key is not a valid HTTP header value")]
    BadKeyFormat,
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
}

impl Client {
    pub fn new(
        base_url: &str,
        api_key: &str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        // rustls on ring, chosen once per process (reqwest leaves the choice to us).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut key = HeaderValue::from_str(api_key).map_err(|_| ClientError::BadKeyFormat)?;
        // Keeps the value out of reqwest's and http's Debug output.
        key.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("fimvt/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Ok(Client { http, base_url: base_url.trim_end_matches('/').to_string(), key })
    }

    /// Asks for the report of one file by SHA-256.
    pub async fn file_report(&self, sha256: &str) -> (Answer, u16) {
        let url = format!("{}/api/v3/files/{sha256}", self.base_url);
        let response = match self.http.get(&url).header("x-apikey", self.key.clone()).send().await {
            Ok(r) => r,
            Err(e) => return (transport_error(&e), 0),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = match read_capped(response).await {
            Ok(b) => b,
            Err(e) => return (e, status),
        };
        (interpret(status, retry_after, &body, sha256), status)
    }
}

/// Describes a transport failure without the URL's query or any header.
fn transport_error(e: &reqwest::Error) -> Answer {
    let why = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "connection failed".to_string()
    };
    Answer::Retry { status: 0, timed_out: e.is_timeout(), why }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, Answer> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(Answer::Retry {
                        status: response.status().as_u16(),
                        timed_out: false,
                        why: format!("answer larger than {MAX_BODY} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(transport_error(&e)),
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    // Seconds; an HTTP date is rare enough from VirusTotal to treat as absent.
    v.parse::<u64>().ok().map(|s| Duration::from_secs(s.min(86_400)))
}

/// Maps one HTTP answer to what fimvt does with it. Pure, for tests and fuzzing.
pub fn interpret(status: u16, retry_after: Option<Duration>, body: &[u8], sha256: &str) -> Answer {
    match status {
        200 => match parse_report(body) {
            Ok(v) => Answer::Verdict(v),
            Err(why) => Answer::Retry { status, timed_out: false, why },
        },
        // Only VirusTotal's own "not found" is a verdict: a 404 from a proxy or a
        // wrong base_url must not cache every hash as unknown.
        404 if error_code(body).as_deref() == Some("NotFoundError") => Answer::Verdict(Verdict::not_found(sha256)),
        401 | 403 => Answer::BadKey { status },
        429 => Answer::RateLimited { retry_after },
        _ => {
            let code = error_code(body).unwrap_or_default();
            Answer::Retry { status, timed_out: status == 504, why: format!("HTTP {status} {code}").trim().to_string() }
        }
    }
}

fn error_code(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Err {
        error: ErrBody,
    }
    #[derive(Deserialize)]
    struct ErrBody {
        code: String,
    }
    let e: Err = serde_json::from_slice(body).ok()?;
    // The code is VirusTotal's text: keep it short and printable before logging it.
    Some(e.error.code.chars().filter(|c| c.is_ascii_alphanumeric()).take(64).collect())
}

#[derive(Deserialize)]
struct Report {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    id: Option<String>,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Deserialize, Default)]
struct Attributes {
    #[serde(default)]
    last_analysis_stats: Stats,
    last_analysis_date: Option<i64>,
    sha256: Option<String>,
}

#[derive(Deserialize, Default)]
struct Stats {
    #[serde(default)]
    harmless: u32,
    #[serde(default)]
    malicious: u32,
    #[serde(default)]
    suspicious: u32,
    #[serde(default)]
    undetected: u32,
    // Parsed so a wrong type there is noticed, even though they are not counted.
    #[serde(default, rename = "type-unsupported")]
    _type_unsupported: u32,
    #[serde(default, rename = "confirmed-timeout")]
    _confirmed_timeout: u32,
}

/// Parses a 200 file report. Unknown fields are ignored and missing ones
/// tolerated, but the body must be a JSON object with `data`.
pub fn parse_report(body: &[u8]) -> Result<Verdict, String> {
    let r: Report = serde_json::from_slice(body).map_err(|e| format!("unreadable file report: {e}"))?;
    let a = r.data.attributes;
    let sha256 = a.sha256.or(r.data.id).unwrap_or_default();
    let s = a.last_analysis_stats;
    let scan_date = a
        .last_analysis_date
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string());
    Ok(Verdict {
        found: true,
        malicious: s.malicious,
        suspicious: s.suspicious,
        undetected: s.undetected,
        harmless: s.harmless,
        // Saturating: absurd counts from a broken server must not wrap or panic.
        total: s.harmless.saturating_add(s.malicious).saturating_add(s.suspicious).saturating_add(s.undetected),
        scan_date,
        permalink: format!("https://www.virustotal.com/gui/file/{}", sanitize_hash(&sha256)),
    })
}

/// Keeps only hex digits: the hash ends up in alerts and a URL.
fn sanitize_hash(h: &str) -> String {
    h.chars().filter(|c| c.is_ascii_hexdigit()).take(64).collect::<String>().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

    #[test]
    fn a_full_report_maps_to_the_alert_fields() {
        let body = format!(
            r#"{{"data": {{"id": "{SHA}", "type": "file", "attributes": {{
              "last_analysis_stats": {{"harmless": 0, "malicious": 7, "suspicious": 1, "undetected": 59,
                "timeout": 0, "confirmed-timeout": 0, "failure": 0, "type-unsupported": 8}},
              "last_analysis_date": 1510680277, "sha256": "{SHA}", "names": ["x"], "reputation": -12,
              "something_new": {{"nested": [1, 2]}}}}}}}}"#
        );
        let v = parse_report(body.as_bytes()).unwrap();
        assert!(v.found);
        assert_eq!((v.malicious, v.total), (7, 67));
        assert_eq!(v.scan_date.as_deref(), Some("2017-11-14 17:24:37"));
        assert_eq!(v.permalink, format!("https://www.virustotal.com/gui/file/{SHA}"));
    }

    #[test]
    fn missing_fields_are_tolerated() {
        let v = parse_report(format!(r#"{{"data": {{"id": "{SHA}"}}}}"#).as_bytes()).unwrap();
        assert_eq!((v.found, v.malicious, v.total, v.scan_date), (true, 0, 0, None));
    }

    #[test]
    fn statuses_map_to_answers() {
        let not_found = br#"{"error": {"code": "NotFoundError", "message": "x"}}"#;
        assert_eq!(interpret(404, None, not_found, SHA), Answer::Verdict(Verdict::not_found(SHA)));
        assert!(matches!(interpret(404, None, b"<html>Not Found</html>", SHA), Answer::Retry { .. }), "a proxy's 404");
        let huge = br#"{"data": {"id": "ab", "attributes": {"last_analysis_stats": {"harmless": 4294967295, "malicious": 4294967295}}}}"#;
        assert!(matches!(interpret(200, None, huge, SHA), Answer::Verdict(v) if v.total == u32::MAX));
        assert_eq!(interpret(401, None, b"", SHA), Answer::BadKey { status: 401 });
        assert_eq!(interpret(403, None, b"", SHA), Answer::BadKey { status: 403 });
        assert_eq!(
            interpret(429, Some(Duration::from_secs(7)), b"", SHA),
            Answer::RateLimited { retry_after: Some(Duration::from_secs(7)) }
        );
        assert!(matches!(interpret(503, None, br#"{"error": {"code": "TransientError"}}"#, SHA),
            Answer::Retry { status: 503, ref why, .. } if why.contains("TransientError")));
        assert!(matches!(interpret(200, None, b"{\"data\": {\"id\": \"ab", SHA), Answer::Retry { status: 200, .. }));
        assert!(matches!(interpret(200, None, b"<html>", SHA), Answer::Retry { .. }));
        assert!(matches!(interpret(200, None, b"[]", SHA), Answer::Retry { .. }));
    }

    #[test]
    fn hostile_fields_cannot_inject_into_the_permalink() {
        let v = parse_report(br#"{"data": {"id": "abc\n** xyz", "attributes": {}}}"#).unwrap();
        assert_eq!(v.permalink, "https://www.virustotal.com/gui/file/abc");
    }
}
