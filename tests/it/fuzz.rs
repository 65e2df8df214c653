//! Property tests (proptest) for what reads untrusted input: the TOML and
//! ossec.conf readers, VirusTotal's answers, and the escaping of file names in
//! alerts. CI runs the default number of cases; `bench/fuzz.sh` runs many more
//! and records the count in BENCHMARKS.md.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use chrono::{FixedOffset, TimeZone};
use fimvt::alert::Identity;
use fimvt::alert::format::{Header, fim_json, fim_log};
use fimvt::config::Config;
use fimvt::fim::{EventKind, FimEvent, ScanMode};
use fimvt::hash::digest_bytes;
use fimvt::model::FileState;
use fimvt::textutil::escape_path;
use fimvt::virustotal::client::interpret;
use proptest::prelude::*;

const VALID_TOML: &str = "[general]\ndata_dir = \"var\"\n[[directories]]\npath = \"/tmp\"\nignore = [\"*.tmp\"]\n[scan]\nfrequency = \"12h\"\n[virustotal]\nenabled = true\napi_key = \"k\"\n";
const VALID_XML: &str = "<ossec_config><syscheck><frequency>60</frequency><directories realtime=\"yes\">/tmp</directories><ignore type=\"sregex\">.log$</ignore></syscheck><integration><name>virustotal</name><api_key>k</api_key></integration></ossec_config>";

fn source() -> PathBuf {
    std::env::temp_dir().join("fimvt-fuzz.toml")
}

/// A valid text with a few bytes replaced, inserted or cut: close to real mistakes.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    (proptest::collection::vec((0..base.len(), any::<u8>(), 0u8..3), 1..6)).prop_map(move |edits| {
        let mut b = base.as_bytes().to_vec();
        for (at, byte, op) in edits {
            if b.is_empty() {
                b.push(byte);
                continue;
            }
            let at = at.min(b.len() - 1);
            match op {
                0 => b[at] = byte,
                1 => b.insert(at, byte),
                _ => b.truncate(at),
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

fn event(path: PathBuf) -> FimEvent {
    let after = FileState {
        size: 1,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        uname: "root".into(),
        gname: "root".into(),
        mtime: 0,
        inode: 1,
        digests: Some(digest_bytes(b"x")),
        mtime_ns: 0,
        ctime_ns: 0,
    };
    FimEvent {
        kind: EventKind::Added,
        mode: ScanMode::Realtime,
        path,
        before: None,
        after: Some(after),
        changed: vec![],
        tags: vec![],
    }
}

proptest! {
    #[test]
    fn config_readers_never_panic_on_arbitrary_text(text in ".{0,400}") {
        let _ = Config::from_str_at(&text, &source(), None);
        let _ = Config::from_ossec_at(&text, &source(), None);
    }

    #[test]
    fn config_readers_never_panic_on_damaged_valid_files(toml in mutated(VALID_TOML), xml in mutated(VALID_XML)) {
        if let Err(e) = Config::from_str_at(&toml, &source(), None) {
            prop_assert!(e.to_string().starts_with(source().to_str().unwrap()), "an error names the file: {}", e);
        }
        if let Err(e) = Config::from_ossec_at(&xml, &source(), None) {
            prop_assert!(e.to_string().starts_with(source().to_str().unwrap()), "an error names the file: {}", e);
        }
    }

    #[test]
    fn virustotal_answers_never_panic(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = interpret(status, None, &body, "ab");
    }

    #[test]
    fn report_like_json_never_panics(
        malicious in any::<i64>(), date in any::<i64>(), id in ".{0,80}", extra in "[a-z\\-]{1,12}"
    ) {
        let body = format!(
            r#"{{"data": {{"id": {id:?}, "attributes": {{"last_analysis_stats": {{"malicious": {malicious}, "{extra}": 1}}, "last_analysis_date": {date}}}}}}}"#
        );
        let _ = interpret(200, None, body.as_bytes(), "ab");
    }

    #[test]
    fn no_file_name_can_break_an_alert(name in proptest::collection::vec(1u8..=255, 1..255)) {
        let name: Vec<u8> = name.into_iter().map(|b| if b == b'/' { b'_' } else { b }).collect();
        let path = Path::new("/w").join(OsStr::from_bytes(&name));
        let escaped = escape_path(&path);
        prop_assert!(!escaped.chars().any(|c| c.is_control()), "{:?}", escaped);
        let identity = Identity { hostname: "h".into(), agent_id: "000".into(), agent_name: "h".into() };
        let time = FixedOffset::east_opt(0).unwrap().timestamp_opt(0, 0).unwrap();
        let h = Header { time, id: "0.0", identity: &identity, firedtimes: 1 };
        let ev = event(path);
        let log = fim_log(&ev, &h);
        // The same number of lines as for a plain name: nothing was added or cut.
        let plain = fim_log(&event(PathBuf::from("/w/plain")), &h);
        prop_assert_eq!(log.lines().count(), plain.lines().count());
        prop_assert_eq!(log.matches("** Alert ").count(), 1);
        let json = fim_json(&ev, &h);
        prop_assert!(!json.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(v["syscheck"]["event"].as_str(), Some("added"));
    }
}
