//! Golden tests: the three FIM alert layouts (one also with tags) and three VirusTotal ones, in alerts.log
//! and alerts.json, against files written by hand from `shared/reference/wazuh-formats.md`,
//! the seed, and Wazuh 4.14.7's sources: `ruleset/rules/0015-ossec_rules.xml` and
//! `0490-virustotal_rules.xml` (groups, `<mitre>`, `no_full_log`),
//! `src/analysisd/format/to_json.c` and `json_extended.c` (alerts.json: `rule.mitre`
//! after `rule.id`, compliance arrays, no `full_log` under `no_full_log`, `data` after
//! `decoder`, no empty `changed_attributes`), `src/analysisd/alerts/log.c` (alerts.log
//! shows full_log and every decoded field regardless), `decoders/syscheck.c` (every
//! full_log line ends with a newline), `decoders/plugins/json_decoder.c` and
//! `src/shared/string_op.c` (decoded values are strings, empty ones dropped), and
//! `integrations/virustotal.py` (the document's keys and order, 204/403/408, "Error:
//! API request fail"). `http_status` and `sha256` are fimvt's additions (README).

use chrono::{FixedOffset, TimeZone};
use fimvt::alert::Identity;
use fimvt::alert::format::{Header, fim_json, fim_log, vt_json, vt_log};
use fimvt::alert::vt::{VtAlert, VtNumbers};
use fimvt::fim::{EventKind, FimEvent, ScanMode, changed_attributes};
use fimvt::model::Digests;
use fimvt::model::FileState;
use fimvt::model::VtSource;

fn identity() -> Identity {
    Identity { hostname: "PC".into(), agent_id: "000".into(), agent_name: "PC".into() }
}

fn digests(md5: &str, sha1: &str, sha256: &str) -> Option<Digests> {
    Some(Digests { md5: md5.into(), sha1: sha1.into(), sha256: sha256.into() })
}

fn state(size: u64, mode: u32, owner: (u32, &str), mtime: i64, inode: u64, d: Option<Digests>) -> FileState {
    FileState {
        size,
        mode,
        uid: owner.0,
        gid: owner.0,
        uname: owner.1.into(),
        gname: owner.1.into(),
        mtime,
        inode,
        digests: d,
        mtime_ns: mtime * 1_000_000_000,
        ctime_ns: mtime * 1_000_000_000,
    }
}

fn golden_pair(golden: &str) -> (String, String) {
    let read =
        |ext| std::fs::read_to_string(format!("{}/tests/golden/{golden}.{ext}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    (read("log"), read("json"))
}

fn header<'a>(epoch: i64, id: &'a str, identity: &'a Identity, firedtimes: u64) -> Header<'a, FixedOffset> {
    let utc = FixedOffset::east_opt(0).unwrap();
    Header { time: utc.timestamp_opt(epoch, 0).unwrap(), id, identity, firedtimes }
}

fn check(ev: &FimEvent, epoch: i64, id: &str, firedtimes: u64, golden: &str) {
    let identity = identity();
    let h = header(epoch, id, &identity, firedtimes);
    let (log, json) = golden_pair(golden);
    assert_eq!(fim_log(ev, &h), log, "alerts.log layout of {golden}");
    assert_eq!(fim_json(ev, &h) + "\n", json, "alerts.json layout of {golden}");
}

fn check_vt(alert: &VtAlert, epoch: i64, id: &str, golden: &str) {
    let identity = identity();
    let h = header(epoch, id, &identity, 1);
    let (log, json) = golden_pair(golden);
    assert_eq!(vt_log(alert, &h), log, "alerts.log layout of {golden}");
    assert_eq!(vt_json(alert, &h) + "\n", json, "alerts.json layout of {golden}");
}

const SHA256: &str = "8a2e2d5d0e0d8a6b3f1c9e6f4b7a0c2d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b";

fn modified_pair() -> (FileState, FileState) {
    let old = state(
        54,
        0o100644,
        (0, "root"),
        1662759745,
        2362547,
        digests(
            "1d4a8a6c4e5a7e1e7ce6b2b24b9a4d58",
            "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ),
    );
    let new = state(
        57,
        0o100644,
        (0, "root"),
        1662759795,
        2362547,
        digests(
            "2a5b9c4e6a0b1c2d3e4f5a6b7c8d9e0f",
            "1b2c3d4e5f60718293a4b5c6d7e8f90123456789",
            "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100",
        ),
    );
    (old, new)
}

#[test]
fn golden_added() {
    let after = state(
        1568509,
        0o100777,
        (1000, "user"),
        1510684961,
        104062,
        digests("9519135089d69ad7ae6b00a78480bb2b", "68b92d885317929e5b283395400ec3322bc9db5e", SHA256),
    );
    let ev = FimEvent {
        kind: EventKind::Added,
        mode: ScanMode::Scheduled,
        path: "/media/user/software/suspicious-file.exe".into(),
        before: None,
        after: Some(after),
        changed: vec![],
        tags: vec![],
    };
    check(&ev, 1510684983, "1510684983.55139", 1, "added");
}

/// The golden 550: /root/test.txt modified in realtime, with these tags.
fn modified_event(tags: Vec<String>) -> FimEvent {
    let (old, new) = modified_pair();
    let changed = changed_attributes(&old, &new);
    FimEvent {
        kind: EventKind::Modified,
        mode: ScanMode::Realtime,
        path: "/root/test.txt".into(),
        before: Some(old),
        after: Some(new),
        changed,
        tags,
    }
}

#[test]
fn golden_modified() {
    check(&modified_event(vec![]), 1662759800, "1662759800.1092155", 3, "modified");
}

#[test]
fn golden_modified_with_tags() {
    // Wazuh 4.14.7's analysisd: alerts/log.c lists the tags after the attributes
    // ("\nTags:\n" then " - <tag>" each); format/to_json.c splits them into the
    // `syscheck.tags` array, between `inode_after` (`diff`) and `changed_attributes`.
    let ev = modified_event(vec!["tag1".into(), "tag2".into()]);
    check(&ev, 1662759800, "1662759800.1092155", 3, "modified-tags");
}

#[test]
fn golden_deleted() {
    let (_, last) = modified_pair();
    let ev = FimEvent {
        kind: EventKind::Deleted,
        mode: ScanMode::Scheduled,
        path: "/root/test.txt".into(),
        before: Some(last),
        after: None,
        changed: vec![],
        tags: vec![],
    };
    check(&ev, 1662760000, "1662760000.2000", 1, "deleted");
}

#[test]
fn golden_virustotal_detected() {
    let source = VtSource {
        alert_id: "1510684983.55139".into(),
        file: "/media/user/software/suspicious-file.exe".into(),
        md5: "9519135089d69ad7ae6b00a78480bb2b".into(),
        sha1: "68b92d885317929e5b283395400ec3322bc9db5e".into(),
    };
    let numbers = VtNumbers {
        sha1: source.sha1.clone(),
        positives: 7,
        total: 67,
        scan_date: Some("2017-11-14 17:24:37".into()),
        permalink: format!("https://www.virustotal.com/gui/file/{SHA256}"),
    };
    check_vt(&VtAlert::Found { source, numbers }, 1510684984, "1510684984.55826", "vt-detected");
}

#[test]
fn golden_virustotal_bad_key() {
    check_vt(&VtAlert::BadKey { http_status: 401 }, 1510676062, "1510676062.9653", "vt-bad-key");
}

#[test]
fn golden_virustotal_failed() {
    let failed = VtAlert::Failed { sha256: SHA256.into(), http_status: Some(503), timed_out: false };
    check_vt(&failed, 1510685000, "1510685000.60518", "vt-failed");
}
