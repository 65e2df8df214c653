//! VirusTotal alerts (rules 87101–87106) in the layout of Wazuh's VirusTotal
//! integration: the full_log is the integration's JSON document (Python's
//! `json.dumps` spacing), then one dotted `key: value` line per leaf. Pure
//! formatting; the sink appends.

use serde_json::{Value, json};

use super::{Identity, Rule};
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
    /// 87101, once per pause.
    RateLimited { error: u16 },
    /// 87102, once until the key changes.
    BadKey { error: u16 },
    /// 87103.
    NotFound { source: VtSource },
    /// 87104 (no positives) or 87105 (positives > 0).
    Found { source: VtSource, numbers: VtNumbers },
    /// 87106: the lookup kept failing; it stays queued.
    TimedOut { error: u16, source: VtSource },
}

const GROUPS: &[&str] = &["virustotal"];

fn rule(id: u32, level: u32, mail: bool) -> Rule {
    Rule { id, level, description: "", groups: GROUPS, mail, decoder: "json", location: "virustotal" }
}

impl VtAlert {
    /// The rule, with the description Wazuh's ruleset gives it.
    pub fn rule(&self) -> (Rule, String) {
        match self {
            VtAlert::RateLimited { .. } => {
                (rule(87101, 3, false), "VirusTotal: Error: Public API request rate limit reached".into())
            }
            VtAlert::BadKey { .. } => (rule(87102, 3, false), "VirusTotal: Error: Check credentials".into()),
            VtAlert::NotFound { .. } => {
                (rule(87103, 3, false), "VirusTotal: Alert - No records in VirusTotal database".into())
            }
            VtAlert::Found { source, numbers } if numbers.positives == 0 => (
                rule(87104, 3, false),
                format!("VirusTotal: Alert - {} - No positives found", escape_path(&source.file)),
            ),
            VtAlert::Found { source, numbers } => (
                rule(87105, 12, true),
                format!(
                    "VirusTotal: Alert - {} - {} engines detected this file",
                    escape_path(&source.file),
                    numbers.positives
                ),
            ),
            VtAlert::TimedOut { .. } => (rule(87106, 3, false), "VirusTotal: Error: API request timed out".into()),
        }
    }

    /// The integration's JSON document (`{"virustotal": {...}, "integration": "virustotal"}`).
    pub fn document(&self, identity: &Identity) -> Value {
        let source = |s: &VtSource| {
            json!({
                "alert_id": s.alert_id,
                "file": json_path(&s.file),
                "md5": s.md5,
                "sha1": s.sha1,
                "agent": {"id": identity.agent_id, "name": identity.agent_name},
            })
        };
        let body = match self {
            VtAlert::RateLimited { error } => {
                json!({"description": "Error: Public API request rate limit reached", "error": error})
            }
            VtAlert::BadKey { error } => json!({"description": "Error: Check credentials", "error": error}),
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
            VtAlert::TimedOut { error, source: s } => {
                json!({"description": "Error: API request timed out", "error": error, "source": source(s)})
            }
        };
        json!({"virustotal": body, "integration": "virustotal"})
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

/// One `dotted.key: value` line per leaf, in document order.
pub fn dotted_lines(v: &Value, prefix: &str, out: &mut String) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                dotted_lines(v, &key, out);
            }
        }
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
}
