//! Pure formatting of FIM alerts in Wazuh 4.x's alerts.log and alerts.json layouts
//! (see `shared/reference/wazuh-formats.md`). No I/O: the caller supplies the time,
//! the alert id and the rule's fire count, which keeps these functions testable
//! against golden files.

use chrono::{DateTime, TimeZone};
use serde::Serialize;
use std::fmt::Display;
use std::fmt::Write as _;

use super::vt::{VtAlert, decoded, dotted_lines, python_json};
use super::{Identity, Rule, fim_rule};
use crate::fim::{Attr, EventKind, FimEvent};
use crate::model::Digests;
use crate::model::FileState;
use crate::textutil::{escape_bytes, escape_path, json_path, shorten_for_log};

/// What every alert header needs besides the event itself.
pub struct Header<'a, Tz: TimeZone> {
    pub time: DateTime<Tz>,
    /// `<epoch>.<offset>`.
    pub id: &'a str,
    pub identity: &'a Identity,
    /// How many times this rule has fired in this process, this one included.
    pub firedtimes: u64,
}

/// The first three lines of an alerts.log entry.
fn log_head<Tz: TimeZone>(rule: &Rule, description: &str, h: &Header<'_, Tz>) -> String
where
    Tz::Offset: Display,
{
    let mail = if rule.mail { " mail " } else { "" };
    let mut groups = String::new();
    for g in rule.groups {
        groups.push_str(g);
        groups.push(',');
    }
    format!(
        "** Alert {}:{mail} - {groups}\n{} {}->{}\nRule: {} (level {}) -> '{}'\n",
        h.id,
        h.time.format("%Y %b %d %H:%M:%S"),
        h.identity.hostname,
        rule.location,
        rule.id,
        rule.level,
        description,
    )
}

/// The full_log text of a FIM alert: what happened and each changed value.
pub fn fim_full_log(ev: &FimEvent) -> String {
    let path = shorten_for_log(&escape_path(&ev.path));
    let mut s = format!("File '{path}' {}\nMode: {}\n", ev.kind.as_str(), ev.mode.as_str());
    if ev.kind == EventKind::Modified {
        let names: Vec<&str> = ev.changed.iter().map(|a| a.as_str()).collect();
        let _ = writeln!(s, "Changed attributes: {}", names.join(","));
        let (Some(old), Some(new)) = (&ev.before, &ev.after) else {
            return s;
        };
        for attr in &ev.changed {
            let _ = match attr {
                Attr::Size => writeln!(s, "Size changed from '{}' to '{}'", old.size, new.size),
                Attr::Permission => {
                    writeln!(s, "Permissions changed from '{}' to '{}'", old.perm(), new.perm())
                }
                Attr::Uid => writeln!(s, "Ownership was '{}', now it is '{}'", old.uid, new.uid),
                Attr::UserName => writeln!(
                    s,
                    "User name was '{}', now it is '{}'",
                    escape_bytes(old.uname.as_bytes()),
                    escape_bytes(new.uname.as_bytes())
                ),
                Attr::Gid => writeln!(s, "Group ownership was '{}', now it is '{}'", old.gid, new.gid),
                Attr::GroupName => writeln!(
                    s,
                    "Group name was '{}', now it is '{}'",
                    escape_bytes(old.gname.as_bytes()),
                    escape_bytes(new.gname.as_bytes())
                ),
                Attr::Mtime => {
                    writeln!(s, "Old modification time was: '{}', now it is '{}'", old.mtime, new.mtime)
                }
                Attr::Inode => writeln!(s, "Old inode was: '{}', now it is '{}'", old.inode, new.inode),
                Attr::Md5 | Attr::Sha1 | Attr::Sha256 => {
                    let (label, pick): (&str, fn(&FileState) -> Option<&str>) = match attr {
                        Attr::Md5 => ("md5sum", |f| f.digests.as_ref().map(|d| d.md5.as_str())),
                        Attr::Sha1 => ("sha1sum", |f| f.digests.as_ref().map(|d| d.sha1.as_str())),
                        _ => ("sha256sum", |f| f.digests.as_ref().map(|d| d.sha256.as_str())),
                    };
                    // "is :" with the space is Wazuh's own text.
                    writeln!(
                        s,
                        "Old {label} was: '{}'\nNew {label} is : '{}'",
                        pick(old).unwrap_or(""),
                        pick(new).unwrap_or("")
                    )
                }
            };
        }
    }
    s
}

/// One complete alerts.log entry for a FIM event, blank line included.
pub fn fim_log<Tz: TimeZone>(ev: &FimEvent, h: &Header<'_, Tz>) -> String
where
    Tz::Offset: Display,
{
    let f = ev.current();
    let rule = fim_rule(ev.kind);
    let mut s = log_head(rule, rule.description, h);
    s.push_str(&fim_full_log(ev));
    let date = h.time.timezone().timestamp_opt(f.mtime, 0).single();
    let date = date.map(|d| d.format("%a %b %d %H:%M:%S %Y").to_string()).unwrap_or_default();
    let _ = write!(
        s,
        "\nAttributes:\n - Size: {}\n - Permissions: {}\n - Date: {date}\n - Inode: {}\n - User: {} ({})\n - Group: {} ({})\n",
        f.size,
        f.perm(),
        f.inode,
        escape_bytes(f.uname.as_bytes()),
        f.uid,
        escape_bytes(f.gname.as_bytes()),
        f.gid,
    );
    if let Some(d) = &f.digests {
        let _ = write!(s, " - MD5: {}\n - SHA1: {}\n - SHA256: {}\n", d.md5, d.sha1, d.sha256);
    }
    // After the attributes (and where Wazuh puts "What changed:"), as Wazuh
    // 4.14's alert writer (analysisd/alerts/log.c) lists them.
    if !ev.tags.is_empty() {
        s.push_str("\nTags:\n");
        for t in &ev.tags {
            let _ = writeln!(s, " - {t}");
        }
    }
    s.push('\n');
    s
}

#[derive(Serialize)]
struct JsonRule<'a> {
    level: u32,
    description: &'a str,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mitre: Option<JsonMitre>,
    firedtimes: u64,
    mail: bool,
    groups: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pci_dss: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gpg13: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gdpr: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hipaa: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nist_800_53: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tsc: Vec<&'a str>,
}

impl<'a> JsonRule<'a> {
    /// Splits compliance groups out of `groups`, prefix stripped, as Wazuh does.
    fn new(rule: &'a Rule, description: &'a str, firedtimes: u64) -> JsonRule<'a> {
        let mut r = JsonRule {
            level: rule.level,
            description,
            id: rule.id.to_string(),
            mitre: JsonMitre::new(rule),
            firedtimes,
            mail: rule.mail,
            groups: vec![],
            pci_dss: vec![],
            gpg13: vec![],
            gdpr: vec![],
            hipaa: vec![],
            nist_800_53: vec![],
            tsc: vec![],
        };
        for g in rule.groups {
            // Longest prefix first: "nist_800_53_" before anything shorter.
            if let Some(v) = g.strip_prefix("nist_800_53_") {
                r.nist_800_53.push(v);
            } else if let Some(v) = g.strip_prefix("pci_dss_") {
                r.pci_dss.push(v);
            } else if let Some(v) = g.strip_prefix("gpg13_") {
                r.gpg13.push(v);
            } else if let Some(v) = g.strip_prefix("gdpr_") {
                r.gdpr.push(v);
            } else if let Some(v) = g.strip_prefix("hipaa_") {
                r.hipaa.push(v);
            } else if let Some(v) = g.strip_prefix("tsc_") {
                r.tsc.push(v);
            } else {
                r.groups.push(g);
            }
        }
        r
    }
}

/// `rule.mitre` as Wazuh's alert writer fills it: the ids, each tactic once, and
/// the technique names.
#[derive(Serialize)]
struct JsonMitre {
    id: Vec<&'static str>,
    tactic: Vec<&'static str>,
    technique: Vec<&'static str>,
}

impl JsonMitre {
    fn new(rule: &Rule) -> Option<JsonMitre> {
        if rule.mitre.is_empty() {
            return None;
        }
        let mut m = JsonMitre { id: vec![], tactic: vec![], technique: vec![] };
        for t in rule.mitre {
            m.id.push(t.id);
            m.technique.push(t.name);
            if !m.tactic.contains(&t.tactic) {
                m.tactic.push(t.tactic);
            }
        }
        Some(m)
    }
}

#[derive(Serialize)]
struct JsonAgent<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct JsonManager<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct JsonDecoder {
    name: &'static str,
}

/// The `syscheck` object; `*_before` only for values that changed.
#[derive(Serialize)]
struct Syscheck<'a> {
    path: String,
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_before: Option<String>,
    size_after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    perm_before: Option<String>,
    perm_after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid_before: Option<String>,
    uid_after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid_before: Option<String>,
    gid_after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5_before: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5_after: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha1_before: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha1_after: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256_before: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256_after: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uname_before: Option<&'a str>,
    uname_after: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    gname_before: Option<&'a str>,
    gname_after: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtime_before: Option<String>,
    mtime_after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    inode_before: Option<u64>,
    inode_after: u64,
    /// An array, as Wazuh's to_json.c splits the tags; absent when there are none.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    /// Absent, not empty, when nothing changed (added, deleted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changed_attributes: Vec<&'static str>,
    event: &'static str,
}

#[derive(Serialize)]
struct JsonAlert<'a> {
    timestamp: String,
    rule: JsonRule<'a>,
    agent: JsonAgent<'a>,
    manager: JsonManager<'a>,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    full_log: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    syscheck: Option<Syscheck<'a>>,
    decoder: JsonDecoder,
    /// After `decoder`, where Wazuh's alert writer puts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
    location: &'static str,
}

/// One alerts.json line (without the newline) for a FIM event.
pub fn fim_json<Tz: TimeZone>(ev: &FimEvent, h: &Header<'_, Tz>) -> String
where
    Tz::Offset: Display,
{
    let rule = fim_rule(ev.kind);
    let f = ev.current();
    let tz = h.time.timezone();
    let mtime =
        |t: i64| tz.timestamp_opt(t, 0).single().map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string()).unwrap_or_default();
    // `before` only where the value changed (modified events only).
    let old = ev.before.as_ref().filter(|_| ev.kind == EventKind::Modified);
    let was = |a: Attr| old.filter(|_| ev.has(a));
    fn digest(s: Option<&FileState>, pick: fn(&Digests) -> &str) -> Option<&str> {
        s.and_then(|s| s.digests.as_ref()).map(pick)
    }
    let syscheck = Syscheck {
        path: json_path(&ev.path),
        mode: ev.mode.as_str(),
        size_before: was(Attr::Size).map(|o| o.size.to_string()),
        size_after: f.size.to_string(),
        perm_before: was(Attr::Permission).map(|o| o.perm()),
        perm_after: f.perm(),
        uid_before: was(Attr::Uid).map(|o| o.uid.to_string()),
        uid_after: f.uid.to_string(),
        gid_before: was(Attr::Gid).map(|o| o.gid.to_string()),
        gid_after: f.gid.to_string(),
        md5_before: digest(was(Attr::Md5), |d| &d.md5),
        md5_after: digest(Some(f), |d| &d.md5),
        sha1_before: digest(was(Attr::Sha1), |d| &d.sha1),
        sha1_after: digest(Some(f), |d| &d.sha1),
        sha256_before: digest(was(Attr::Sha256), |d| &d.sha256),
        sha256_after: digest(Some(f), |d| &d.sha256),
        uname_before: was(Attr::UserName).map(|o| o.uname.as_str()),
        uname_after: &f.uname,
        gname_before: was(Attr::GroupName).map(|o| o.gname.as_str()),
        gname_after: &f.gname,
        mtime_before: was(Attr::Mtime).map(|o| mtime(o.mtime)),
        mtime_after: mtime(f.mtime),
        inode_before: was(Attr::Inode).map(|o| o.inode),
        inode_after: f.inode,
        tags: &ev.tags,
        changed_attributes: ev.changed.iter().map(|a| a.as_str()).collect(),
        event: ev.kind.as_str(),
    };
    let full_log = fim_full_log(ev);
    let alert = JsonAlert {
        timestamp: h.time.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string(),
        rule: JsonRule::new(rule, rule.description, h.firedtimes),
        agent: JsonAgent { id: &h.identity.agent_id, name: &h.identity.agent_name },
        manager: JsonManager { name: &h.identity.hostname },
        id: h.id,
        full_log: Some(full_log),
        syscheck: Some(syscheck),
        decoder: JsonDecoder { name: rule.decoder },
        data: None,
        location: rule.location,
    };
    serde_json::to_string(&alert).expect("alert structs always serialize")
}

/// One complete alerts.log entry for a VirusTotal alert. Wazuh's alerts.log shows
/// the full_log even for rules with `no_full_log`.
pub fn vt_log<Tz: TimeZone>(alert: &VtAlert, h: &Header<'_, Tz>) -> String
where
    Tz::Offset: Display,
{
    let (rule, description) = alert.rule();
    let doc = alert.document();
    let mut s = log_head(&rule, &description, h);
    s.push_str(&python_json(&doc));
    s.push('\n');
    dotted_lines(&doc, "", &mut s);
    s.push('\n');
    s
}

/// One alerts.json line (without the newline) for a VirusTotal alert: the
/// document, decoded, as `data`; no `full_log` (the rules set `no_full_log`).
pub fn vt_json<Tz: TimeZone>(alert: &VtAlert, h: &Header<'_, Tz>) -> String
where
    Tz::Offset: Display,
{
    let (rule, description) = alert.rule();
    let doc = alert.document();
    let json = JsonAlert {
        timestamp: h.time.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string(),
        rule: JsonRule::new(&rule, &description, h.firedtimes),
        agent: JsonAgent { id: &h.identity.agent_id, name: &h.identity.agent_name },
        manager: JsonManager { name: &h.identity.hostname },
        id: h.id,
        full_log: (!rule.no_full_log).then(|| python_json(&doc)),
        syscheck: None,
        decoder: JsonDecoder { name: rule.decoder },
        data: decoded(&doc),
        location: rule.location,
    };
    serde_json::to_string(&json).expect("alert structs always serialize")
}
