//! VirusTotal alerts (rules 87101–87106) in the layout of Wazuh's VirusTotal
//! integration and ruleset: the integration's JSON document (Python's
//! `json.dumps` spacing) with one dotted `key: value` line per leaf in alerts.log,
//! and the same document as Wazuh's decoder leaves it (string values) under
//! alerts.json's `data`. Pure formatting; the sink appends.

use serde_json::{Value, json};

use super::{Rule, T1203};
use crate::model::VtSource;
use crate::textutil::{escape_bytes, escape_path, json_path};

/// The numbers of a verdict, as the alert shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtNumbers {
    pub sha1: String,
    pub positives: u32,
    pub total: u32,
    pub scan_date: Option<String>,
    pub permalink: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VtAlert {
    /// 87101, once per pause. `http_status` is VirusTotal's answer (429 in API v3);
    /// the document's `error` is the 204 Wazuh's rule matches.
    RateLimited { http_status: u16 },
    /// 87102, once until the key changes; `error` 403, whatever VirusTotal said.
    BadKey { http_status: u16 },
    /// 87103.
    NotFound { source: VtSource },
    /// 87104 (no positives) or 87105 (positives > 0).
    Found { source: VtSource, numbers: VtNumbers },
    /// 87106, once per hash: its lookup kept failing and stays queued. `error`
    /// is the 408 Wazuh's rule matches; `http_status` the last answer, if any.
    Failed { sha256: String, http_status: Option<u16>, timed_out: bool },
}

/// Rule 87100's group, which every VirusTotal rule inherits.
const GROUPS: &[&str] = &["virustotal"];
/// 87102 and 87106 add GDPR groups.
const GROUPS_GDPR: &[&str] = &["virustotal", "gdpr_IV_35.7.d", "gdpr_IV_32.2"];
/// 87105 adds PCI DSS and GDPR groups.
const GROUPS_DETECTED: &[&str] = &["virustotal", "pci_dss_10.6.1", "pci_dss_11.4", "gdpr_IV_35.7.d"];

fn rule(id: u32, level: u32, groups: &'static [&'static str]) -> Rule {
    let detected = id == 87105;
    Rule {
        id,
        level,
        description: "",
        groups,
        mail: detected,
        mitre: if detected { &[T1203] } else { &[] },
        // Every VirusTotal rule sets no_full_log.
        no_full_log: true,
        decoder: "json",
        location: "virustotal",
    }
}

impl VtAlert {
    /// The rule, with the description Wazuh's ruleset gives it.
    pub fn rule(&self) -> (Rule, String) {
        match self {
            VtAlert::RateLimited { .. } => {
                (rule(87101, 3, GROUPS), "VirusTotal: Error: Public API request rate limit reached".into())
            }
            VtAlert::BadKey { .. } => (rule(87102, 3, GROUPS_GDPR), "VirusTotal: Error: Check credentials".into()),
            VtAlert::NotFound { .. } => {
                (rule(87103, 3, GROUPS), "VirusTotal: Alert - No records in VirusTotal database".into())
            }
            VtAlert::Found { source, numbers } if numbers.positives == 0 => (
                rule(87104, 3, GROUPS),
                format!("VirusTotal: Alert - {} - No positives found", escape_path(&source.file)),
            ),
            VtAlert::Found { source, numbers } => (
                rule(87105, 12, GROUPS_DETECTED),
                format!(
                    "VirusTotal: Alert - {} - {} engines detected this file",
                    escape_path(&source.file),
                    numbers.positives
                ),
            ),
            VtAlert::Failed { .. } => (rule(87106, 3, GROUPS_GDPR), "VirusTotal: Error: API request timed out".into()),
        }
    }

    /// The integration's JSON document (`{"virustotal": {...}, "integration":
    /// "virustotal"}`), keys in the order Wazuh's script writes them; fimvt's
    /// additions (`http_status`, `sha256`) come last.
    pub fn document(&self) -> Value {
        let source = |s: &VtSource| {
            json!({
                "alert_id": s.alert_id,
                "file": json_path(&s.file),
                "md5": s.md5,
                "sha1": s.sha1,
            })
        };
        let body = match self {
            VtAlert::RateLimited { http_status } => json!({
                "error": 204,
                "description": "Error: Public API request rate limit reached",
                "http_status": http_status,
            }),
            VtAlert::BadKey { http_status } => {
                json!({"error": 403, "description": "Error: Check credentials", "http_status": http_status})
            }
            VtAlert::NotFound { source: s } => json!({"found": 0, "malicious": 0, "source": source(s)}),
            VtAlert::Found { source: s, numbers: n } => json!({
                "found": 1,
                "malicious": u32::from(n.positives > 0),
                "source": source(s),
                "sha1": n.sha1,
                "scan_date": n.scan_date.clone().unwrap_or_default(),
                "positives": n.positives,
                "total": n.total,
                "permalink": n.permalink,
            }),
            VtAlert::Failed { sha256, http_status, timed_out } => {
                // The script's words: a timeout, or any other failed request.
                let description = if *timed_out { "Error: API request timed out" } else { "Error: API request fail" };
                let mut body = json!({"error": 408, "description": description});
                if let Some(status) = http_status {
                    body["http_status"] = json!(status);
                }
                body["sha256"] = json!(sha256);
                body
            }
        };
        json!({"virustotal": body, "integration": "virustotal"})
    }
}

/// The document as Wazuh's JSON decoder and alert writer leave it in alerts.json's
/// `data`: every value a string (`"found": "1"`), empty values left out.
pub fn decoded(v: &Value) -> Option<Value> {
    match v {
        Value::Object(map) => {
            let out: serde_json::Map<String, Value> =
                map.iter().filter_map(|(k, v)| decoded(v).map(|v| (k.clone(), v))).collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::String(s) if s.is_empty() => None,
        Value::String(_) => Some(v.clone()),
        Value::Null => None,
        other => Some(Value::String(other.to_string())),
    }
}

/// JSON as Python's `json.dumps` writes it (`{"a": 1, "b": [1, 2]}`, non-ASCII as
/// `\uXXXX`), as the integration script does. Escaping everything outside
/// printable ASCII also keeps bidi overrides and line separators in a file name
/// out of alerts.log.
pub fn python_json(v: &Value) -> String {
    let mut out = String::new();
    write_python(v, &mut out);
    out
}

fn write_python(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_ascii_string(k, out);
                out.push_str(": ");
                write_python(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python(v, out);
            }
            out.push(']');
        }
        Value::String(text) => write_ascii_string(text, out),
        leaf => out.push_str(&leaf.to_string()),
    }
}

fn write_ascii_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// One `dotted.key: value` line per leaf, in document order; like Wazuh, none for
/// an empty value.
pub fn dotted_lines(v: &Value, prefix: &str, out: &mut String) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                dotted_lines(v, &key, out);
            }
        }
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => {
            // A string can hold anything a file name can: escape it like one.
            out.push_str(&format!("{prefix}: {}\n", escape_bytes(s.as_bytes())));
        }
        other => out.push_str(&format!("{prefix}: {other}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_is_ascii_like_json_dumps() {
        let v = json!({"file": "/w/a\"b\\c\n\u{202e}é😀", "n": 7});
        assert_eq!(python_json(&v), r#"{"file": "/w/a\"b\\c\n\u202e\u00e9\ud83d\ude00", "n": 7}"#);
        let back: Value = serde_json::from_str(&python_json(&v)).unwrap();
        assert_eq!(back, v, "still the same JSON");
    }

    #[test]
    fn empty_values_are_left_out_of_data_and_the_dotted_lines_as_wazuh_does() {
        // A baseline file has no FIM alert, so no alert_id; VirusTotal may give no date.
        let source = VtSource { alert_id: String::new(), file: "/w/f".into(), md5: "m".into(), sha1: "s".into() };
        let doc = VtAlert::NotFound { source }.document();
        assert!(python_json(&doc).contains(r#""alert_id": """#), "the script's document keeps it");
        let data = decoded(&doc).unwrap();
        assert_eq!(data["virustotal"]["source"], json!({"file": "/w/f", "md5": "m", "sha1": "s"}));
        assert_eq!(data["virustotal"]["found"], "0");
        let mut lines = String::new();
        dotted_lines(&doc, "", &mut lines);
        assert!(!lines.contains("alert_id") && lines.contains("virustotal.source.file: /w/f\n"), "{lines}");
    }

    #[test]
    fn a_stuck_lookup_says_timed_out_only_when_it_timed_out() {
        let failed = |http_status, timed_out| {
            VtAlert::Failed { sha256: "ab".into(), http_status, timed_out }.document()["virustotal"].clone()
        };
        let t = failed(None, true);
        assert_eq!((&t["error"], &t["description"]), (&json!(408), &json!("Error: API request timed out")));
        assert!(t.get("http_status").is_none());
        let f = failed(Some(503), false);
        assert_eq!((&f["error"], &f["http_status"]), (&json!(408), &json!(503)));
        assert_eq!(f["description"], "Error: API request fail");
    }
}
