//! Golden tests: the three FIM alert layouts, in alerts.log and alerts.json, against
//! files written by hand from `shared/reference/wazuh-formats.md` and the seed.

use chrono::{FixedOffset, TimeZone};
use fimvt::alert::Identity;
use fimvt::alert::format::{Header, fim_json, fim_log};
use fimvt::fim::{EventKind, FimEvent, ScanMode, changed_attributes};
use fimvt::model::Digests;
use fimvt::model::FileState;

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

fn check(ev: &FimEvent, epoch: i64, id: &str, firedtimes: u64, golden: &str) {
    let utc = FixedOffset::east_opt(0).unwrap();
    let h = Header { time: utc.timestamp_opt(epoch, 0).unwrap(), id, identity: &identity(), firedtimes };
    let log = std::fs::read_to_string(format!("{}/tests/golden/{golden}.log", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let json = std::fs::read_to_string(format!("{}/tests/golden/{golden}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(fim_log(ev, &h), log, "alerts.log layout of {golden}");
    assert_eq!(fim_json(ev, &h) + "\n", json, "alerts.json layout of {golden}");
}

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
        digests(
            "9519135089d69ad7ae6b00a78480bb2b",
            "68b92d885317929e5b283395400ec3322bc9db5e",
            "8a2e2d5d0e0d8a6b3f1c9e6f4b7a0c2d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b",
        ),
    );
    let ev = FimEvent {
        kind: EventKind::Added,
        mode: ScanMode::Scheduled,
        path: "/media/user/software/suspicious-file.exe".into(),
        before: None,
        after: Some(after),
        changed: vec![],
    };
    check(&ev, 1510684983, "1510684983.55139", 1, "added");
}

#[test]
fn golden_modified() {
    let (old, new) = modified_pair();
    let changed = changed_attributes(&old, &new);
    let ev = FimEvent {
        kind: EventKind::Modified,
        mode: ScanMode::Realtime,
        path: "/root/test.txt".into(),
        before: Some(old),
        after: Some(new),
        changed,
    };
    check(&ev, 1662759800, "1662759800.1092155", 3, "modified");
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
    };
    check(&ev, 1662760000, "1662760000.2000", 1, "deleted");
}
