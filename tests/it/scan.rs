//! `fimvt scan` end to end: baseline, then added / modified / deleted files, checked
//! in alerts.log, alerts.json, the `files` table and the `events` history.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::Value;

use crate::util::{Tree, external_digest, fimvt_unprivileged};

/// The alerts.json lines for `path`, by event.
fn events_for<'a>(alerts: &'a [Value], path: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["syscheck"]["path"] == path).collect()
}

#[test]
fn baseline_records_every_file_with_hashes_matching_coreutils_and_raises_no_alert() {
    let t = Tree::new();
    t.write("a.txt", b"alpha");
    t.write("sub/b.bin", &vec![7u8; 3 << 20]);
    t.write("sub/deeper/c", b"");
    let summary = t.scan();
    assert!(summary.starts_with("baseline scan complete: 3 files, 3145733 bytes, 0 added"), "{summary}");
    assert!(t.alerts_log().is_empty(), "a baseline raises no alerts");
    assert!(t.alerts_json().is_empty());

    let db = t.db();
    let n: i64 = db.query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 3);
    for rel in ["a.txt", "sub/b.bin", "sub/deeper/c"] {
        let p = t.path(rel);
        let (md5, sha1, sha256, size, perm, first_seen): (String, String, String, i64, String, i64) = db
            .query_row(
                "SELECT md5, sha1, sha256, size, perm, first_seen FROM files WHERE path = ?1",
                [p.to_str().unwrap()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap();
        assert_eq!(md5, external_digest("md5sum", &p), "{rel}");
        assert_eq!(sha1, external_digest("sha1sum", &p), "{rel}");
        assert_eq!(sha256, external_digest("sha256sum", &p), "{rel}");
        assert_eq!(size as u64, std::fs::metadata(&p).unwrap().len());
        assert_eq!(perm, perm_of(&p));
        assert!(first_seen > 1_700_000_000);
    }
    let events: i64 = db.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 0, "the baseline writes no history events");
}

fn perm_of(p: &std::path::Path) -> String {
    fimvt::attrs::perm_string(std::fs::metadata(p).unwrap().permissions().mode())
}

#[test]
fn add_modify_chmod_delete_raise_the_exact_alerts() {
    let t = Tree::new();
    let keep = t.write("keep.txt", b"unchanged");
    let grow = t.write("grow.txt", b"0123456789");
    let modes = t.write("modes.sh", b"#!/bin/sh\n");
    let gone = t.write("dir/gone.txt", b"bye");
    t.scan();

    let added = t.write("dir/new.exe", b"MZ fresh");
    std::fs::write(&grow, b"0123456789 and more").unwrap();
    std::fs::set_permissions(&modes, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(&gone).unwrap();
    let summary = t.scan();
    assert!(summary.contains("1 added, 2 modified, 1 deleted, 0 errors"), "{summary}");

    let alerts = t.alerts_json();
    assert_eq!(alerts.len(), 4, "{alerts:#?}");
    assert!(events_for(&alerts, keep.to_str().unwrap()).is_empty(), "an unchanged file raises nothing");

    let a = events_for(&alerts, added.to_str().unwrap());
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["rule"]["id"], "554");
    assert_eq!(a[0]["syscheck"]["event"], "added");
    assert_eq!(a[0]["syscheck"]["mode"], "scheduled");
    assert_eq!(a[0]["syscheck"]["sha256_after"], external_digest("sha256sum", &added));
    assert_eq!(a[0]["syscheck"]["size_after"], "8");

    let g = events_for(&alerts, grow.to_str().unwrap());
    assert_eq!(g[0]["rule"]["id"], "550");
    let changed: Vec<&str> =
        g[0]["syscheck"]["changed_attributes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    // mtime may or may not tick within the same second; the rest must be there, in order.
    let expected: Vec<&str> = ["size", "mtime", "md5", "sha1", "sha256"]
        .into_iter()
        .filter(|a| *a != "mtime" || changed.contains(&"mtime"))
        .collect();
    assert_eq!(changed, expected);
    assert_eq!(g[0]["syscheck"]["size_before"], "10");
    assert_eq!(g[0]["syscheck"]["size_after"], "19");
    assert_eq!(g[0]["syscheck"]["sha256_after"], external_digest("sha256sum", &grow));
    assert!(g[0]["syscheck"]["sha256_before"].is_string());

    let m = events_for(&alerts, modes.to_str().unwrap());
    assert_eq!(m[0]["rule"]["id"], "550");
    assert_eq!(m[0]["syscheck"]["changed_attributes"], serde_json::json!(["permission"]));
    assert_eq!(m[0]["syscheck"]["perm_before"], "rw-r--r--");
    assert_eq!(m[0]["syscheck"]["perm_after"], "rwxr-xr-x");
    assert!(m[0]["syscheck"].get("size_before").is_none(), "only changed values get a _before");

    let d = events_for(&alerts, gone.to_str().unwrap());
    assert_eq!(d[0]["rule"]["id"], "553");
    assert_eq!(d[0]["syscheck"]["event"], "deleted");
    assert_eq!(d[0]["syscheck"]["size_after"], "3", "a deletion reports the last known attributes");

    // alerts.log: the same four alerts, each id being the byte offset of its header.
    let log = t.alerts_log();
    assert_eq!(log.matches("** Alert ").count(), 4);
    for alert in &alerts {
        let id = alert["id"].as_str().unwrap();
        let offset: usize = id.split('.').nth(1).unwrap().parse().unwrap();
        assert!(log[offset..].starts_with(&format!("** Alert {id}:")), "id {id} is not the offset of its alert");
        assert!(log.contains(alert["full_log"].as_str().unwrap()), "alerts.log carries the same full_log");
    }
    assert!(log.contains(&format!("File '{}' modified\nMode: scheduled\nChanged attributes: permission\nPermissions changed from 'rw-r--r--' to 'rwxr-xr-x'\n", modes.display())));
    assert!(log.contains("Rule: 553 (level 7) -> 'File deleted.'\n"));
    assert!(log.contains("Rule: 554 (level 5) -> 'File added to the system.'\n"));
    assert!(log.contains("testhost->syscheck\n"));

    // The store: current state and history.
    let db = t.db();
    let gone_rows: i64 =
        db.query_row("SELECT count(*) FROM files WHERE path = ?1", [gone.to_str().unwrap()], |r| r.get(0)).unwrap();
    assert_eq!(gone_rows, 0);
    let (size, sha256): (i64, String) = db
        .query_row("SELECT size, sha256 FROM files WHERE path = ?1", [grow.to_str().unwrap()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((size, sha256), (19, external_digest("sha256sum", &grow)));
    let mut stmt = db
        .prepare("SELECT alert_id, event, mode, changed_attributes, size_before, size_after, perm_before, perm_after FROM events WHERE path = ?1")
        .unwrap();
    type Row = (String, String, String, String, Option<i64>, Option<i64>, Option<String>, Option<String>);
    let mut row = |p: &PathBuf| -> Row {
        stmt.query_row([p.to_str().unwrap()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
        })
        .unwrap()
    };
    let r = row(&gone);
    assert_eq!((r.1.as_str(), r.4, r.5), ("deleted", Some(3), None));
    let r = row(&added);
    assert_eq!((r.1.as_str(), r.2.as_str(), r.4, r.5), ("added", "scheduled", None, Some(8)));
    let r = row(&modes);
    assert_eq!((r.1.as_str(), r.3.as_str()), ("modified", "permission"));
    assert_eq!((r.6.as_deref(), r.7.as_deref()), (Some("rw-r--r--"), Some("rwxr-xr-x")));
    assert_eq!(
        &r.0,
        events_for(&alerts, modes.to_str().unwrap())[0]["id"].as_str().unwrap(),
        "event rows carry the alert id"
    );

    // A third scan with nothing changed raises nothing more.
    let summary = t.scan();
    assert!(summary.contains("0 added, 0 modified, 0 deleted"), "{summary}");
    assert_eq!(t.alerts_json().len(), 4);
}

#[test]
fn odd_names_are_monitored_round_trip_and_cannot_forge_alerts() {
    let t = Tree::new();
    t.scan();
    let non_utf8 = t.root().join(OsStr::from_bytes(b"bad\xff\xfe.bin"));
    std::fs::write(&non_utf8, b"latin1").unwrap();
    let forged = "evil\n** Alert 1.1: - ossec,syscheck,\n2017 Nov 14 18:43:03 PC->syscheck\nRule: 553 (level 7) -> 'File deleted.'\x1b[2J.txt";
    let newline = t.write(forged, b"x");
    let summary = t.scan();
    assert!(summary.contains("2 added"), "{summary}");

    let log = t.alerts_log();
    assert_eq!(log.matches("\n** Alert ").count() + 1, 2, "exactly two alert headers:\n{log}");
    assert!(!log.contains('\x1b'), "no raw escape sequence reaches alerts.log");
    assert!(log.lines().all(|l| !l.starts_with("Rule: 553")), "the name could not forge a rule line");
    assert!(log.contains("bad\\xff\\xfe.bin' added"), "{log}");
    assert!(log.contains("evil\\n** Alert 1.1"), "{log}");

    let alerts = t.alerts_json();
    assert_eq!(alerts.len(), 2);
    assert!(
        alerts.iter().any(|a| a["syscheck"]["path"] == newline.to_str().unwrap()),
        "UTF-8 names stay exact in JSON"
    );

    // The store keeps the exact bytes, as a BLOB.
    let db = t.db();
    let stored: Vec<u8> = db.query_row("SELECT path FROM files WHERE typeof(path) = 'blob'", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, non_utf8.as_os_str().as_bytes());

    // And it is still monitored: a change to it is seen.
    std::fs::write(&non_utf8, b"changed!").unwrap();
    std::fs::remove_file(&newline).unwrap();
    let summary = t.scan();
    assert!(summary.contains("0 added, 1 modified, 1 deleted"), "{summary}");
}

#[test]
fn ignore_recursion_symlinks_and_special_files_are_honoured() {
    let t = Tree::with_settings("recursion_level = 1\nignore = [\"*.tmp\", \"**/.cache/**\"]");
    t.write("top.txt", b"1");
    t.write("one/level.txt", b"2");
    t.write("one/two/too-deep.txt", b"3");
    t.write("skip.tmp", b"4");
    t.write(".cache/x/skipped.txt", b"5");
    let outside = t.dir.path().join("outside.txt");
    std::fs::write(&outside, b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, t.path("link-to-outside")).unwrap();
    std::os::unix::fs::symlink(t.root(), t.path("one/loop")).unwrap();
    let fifo = t.path("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);

    let summary = t.scan();
    assert!(summary.contains(": 2 files"), "{summary}");
    let db = t.db();
    let mut stmt = db.prepare("SELECT path FROM files ORDER BY path").unwrap();
    let paths: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(paths, vec![t.path("one/level.txt").to_str().unwrap(), t.path("top.txt").to_str().unwrap()]);
}

#[test]
fn following_symlinks_records_targets_and_a_loop_does_not_hang() {
    let t = Tree::with_settings("follow_symlinks = true");
    t.write("real/file.txt", b"data");
    std::os::unix::fs::symlink(t.path("real"), t.path("real/back-to-parent")).unwrap();
    std::os::unix::fs::symlink(t.path("real/file.txt"), t.path("alias.txt")).unwrap();
    let out = t.fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
    assert!(out.status.success());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains(": 2 files"), "{summary}");
    assert!(summary.contains("1 errors"), "the loop is reported: {summary}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("symlink loop"));
}

#[test]
fn files_over_max_file_size_are_recorded_without_hashes_and_said_so() {
    let t = Tree::with_settings("max_file_size = \"1KiB\"");
    t.write("small", b"fits");
    t.write("big", &vec![1u8; 4096]);
    let out = t.fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than max_file_size"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 files over max_file_size"));
    let db = t.db();
    let (size, sha): (i64, Option<String>) = db
        .query_row("SELECT size, sha256 FROM files WHERE path = ?1", [t.path("big").to_str().unwrap()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((size, sha), (4096, None));
}

#[test]
fn rehash_always_rereads_but_reports_only_real_changes() {
    let t = Tree::new();
    t.write("f", b"same");
    t.scan();
    t.write_config(
        &std::fs::read_to_string(t.config())
            .unwrap()
            .replace("[[directories]]", "[scan]\nrehash = \"always\"\n[[directories]]"),
    );
    let summary = t.scan();
    assert!(summary.contains("1 files, 4 bytes, 0 added, 0 modified"), "{summary}");
    assert!(t.alerts_json().is_empty());
}

#[test]
fn unreadable_file_is_reported_and_the_scan_goes_on() {
    let t = Tree::new();
    t.write("ok", b"fine");
    let locked = t.write("locked", b"secret");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = fimvt_unprivileged(&["scan", "--config", t.config().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(": 1 files") && stdout.contains("1 errors"), "{stdout}");
    assert!(stderr.contains("locked") && stderr.contains("Permission denied"), "{stderr}");
}

#[test]
fn a_data_dir_inside_the_watched_folder_is_never_monitored() {
    let t = Tree::new();
    t.write_config("[general]\ndata_dir = \"watched/.fimvt\"\n[[directories]]\npath = \"watched\"\n");
    t.write("real.txt", b"1");
    t.scan();
    t.write("more.txt", b"2");
    let summary = t.scan();
    assert!(summary.contains(": 2 files") && summary.contains("1 added, 0 modified"), "{summary}");
    let summary = t.scan();
    assert!(summary.contains("0 added, 0 modified, 0 deleted"), "its own files never alert: {summary}");
}

#[test]
fn regression_files_under_a_folder_replaced_by_a_file_are_reported_deleted() {
    let t = Tree::new();
    let inner = t.write("a/f.txt", b"1");
    t.scan();
    std::fs::remove_dir_all(t.path("a")).unwrap();
    t.write("a", b"now a file");
    let summary = t.scan();
    assert!(summary.contains("1 added, 0 modified, 1 deleted"), "{summary}");
    assert_eq!(events_for(&t.alerts_json(), inner.to_str().unwrap())[0]["rule"]["id"], "553");
}

#[test]
fn a_folder_removed_from_the_configuration_gets_its_553s() {
    // As Wazuh: the files of a folder no longer configured are reported deleted.
    let t = Tree::new();
    std::fs::create_dir(t.dir.path().join("other")).unwrap();
    let base = std::fs::read_to_string(t.config()).unwrap();
    t.write_config(&format!("{base}\n[[directories]]\npath = \"other\"\n"));
    let other = std::fs::canonicalize(t.dir.path().join("other")).unwrap();
    std::fs::write(other.join("a.exe"), b"a").unwrap();
    t.write("kept.txt", b"k");
    t.scan();
    t.write_config(&base);
    let summary = t.scan();
    assert!(summary.contains("1 deleted"), "{summary}");
    let deleted: Vec<_> = t.alerts_json().into_iter().filter(|a| a["rule"]["id"] == "553").collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["syscheck"]["path"], other.join("a.exe").to_str().unwrap());
    let rows: i64 = t.db().query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 1, "only kept.txt is still recorded");
}

#[test]
fn a_tagged_folder_tags_every_alert_of_its_files() {
    // As wazuh-qa's test_fim/test_files/test_tags: a file added, modified and
    // deleted in a folder with tags raises alerts that all carry its tags, in
    // alerts.log after the attributes and as the `syscheck.tags` array. A nested
    // folder entry of its own, without tags, gives its files none.
    let t = Tree::new();
    std::fs::create_dir(t.path("plain")).unwrap();
    t.write_config(
        "[general]\ndata_dir = \"var\"\nhostname = \"testhost\"\n\
         [[directories]]\npath = \"watched\"\ntags = [\"tag1\", \"tag2\"]\n\
         [[directories]]\npath = \"watched/plain\"\n",
    );
    t.scan();
    let f = t.write("tagged.txt", b"one");
    let p = t.write("plain/untagged.txt", b"one");
    t.scan();
    std::fs::write(&f, b"two").unwrap();
    t.scan();
    std::fs::remove_file(&f).unwrap();
    t.scan();

    let alerts = t.alerts_json();
    let tagged = events_for(&alerts, f.to_str().unwrap());
    let kinds: Vec<&str> = tagged.iter().map(|a| a["syscheck"]["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["added", "modified", "deleted"]);
    for a in &tagged {
        assert_eq!(a["syscheck"]["tags"], serde_json::json!(["tag1", "tag2"]), "{a}");
    }
    let plain = events_for(&alerts, p.to_str().unwrap());
    assert_eq!(plain.len(), 1);
    assert!(plain[0]["syscheck"].get("tags").is_none(), "{}", plain[0]);

    let log = t.alerts_log();
    let entries: Vec<&str> = log.split("** Alert ").filter(|e| !e.is_empty()).collect();
    assert_eq!(entries.len(), 4, "{log}");
    for e in entries {
        if e.contains("untagged.txt") {
            assert!(!e.contains("Tags:"), "{e}");
        } else {
            assert!(e.ends_with("\n\nTags:\n - tag1\n - tag2\n\n"), "the tags close the alert:\n{e}");
        }
    }
}

#[test]
fn an_ossec_conf_sregex_ignore_negates_and_ignores_case_as_wazuh_does() {
    // `<ignore type="sregex">!.exe$</ignore>`: ignore everything but .exe files,
    // whatever their case (OS_Match, compiled without OS_CASE_SENSITIVE).
    let t = Tree::new();
    for name in ["setup.exe", "OTHER.EXE", "notes.txt"] {
        t.write(name, b"x");
    }
    let conf = t.ossec_conf(&format!(
        "<directories>{}</directories>\n<ignore type=\"sregex\">!.exe$</ignore>\n",
        t.root().display()
    ));
    let out = t.fimvt_ossec("scan", &conf);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut recorded: Vec<String> = t
        .db()
        .prepare("SELECT path FROM files ORDER BY path")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|p| p.unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    recorded.sort();
    assert_eq!(recorded, ["OTHER.EXE", "setup.exe"]);
}

/// `fimvt scan` of a config whose one folder is `/proc` (only `/proc/version`, so
/// the scan stays small); returns the summary and the log.
fn scan_proc(t: &Tree, skip_proc: Option<&str>, ossec: bool) -> (String, String) {
    let data = t.dir.path().join("var");
    let conf = if ossec {
        let conf = t.dir.path().join("ossec.conf");
        let skip = skip_proc.map(|v| format!("<skip_proc>{v}</skip_proc>")).unwrap_or_default();
        std::fs::write(
            &conf,
            format!(
                "<ossec_config><syscheck>{skip}\n\
                 <directories recursion_level=\"0\" restrict=\"^/proc/version$\">/proc</directories>\n\
                 </syscheck></ossec_config>\n"
            ),
        )
        .unwrap();
        conf
    } else {
        let skip = skip_proc.map(|v| format!("[scan]\nskip_proc = {v}\n")).unwrap_or_default();
        t.write_config(&format!(
            "[general]\ndata_dir = \"var\"\n[[directories]]\npath = \"/proc\"\nrealtime = false\n\
             recursion_level = 0\nrestrict = \"^/proc/version$\"\n{skip}"
        ));
        t.config()
    };
    let out = crate::util::fimvt(&["scan", "--config", conf.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    (stdout.into_owned(), stderr.into_owned())
}

#[test]
fn a_folder_on_proc_is_skipped_unless_skip_proc_is_off() {
    // Wazuh's HasFilesystem (src/shared/fs_op.c): statfs says proc, and skip_proc
    // (yes by default) leaves it out; the configured folder itself is checked.
    let skipped = "not monitored: on a proc file system (skip_proc is on)";
    for (skip, ossec) in [(None, false), (Some("true"), false), (None, true), (Some("yes"), true)] {
        let t = Tree::new();
        let (summary, log) = scan_proc(&t, skip, ossec);
        assert!(summary.contains(": 0 files"), "{skip:?} ossec={ossec}: {summary}");
        assert!(log.contains(skipped) && log.contains("/proc"), "{skip:?} ossec={ossec}: {log}");
    }
    for (skip, ossec) in [("false", false), ("no", true)] {
        let t = Tree::new();
        let (summary, log) = scan_proc(&t, Some(skip), ossec);
        assert!(summary.contains(": 1 files"), "{skip} ossec={ossec}: {summary}");
        assert!(!log.contains(skipped), "{log}");
        let n: i64 =
            t.db().query_row("SELECT count(*) FROM files WHERE path = '/proc/version'", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "/proc/version is recorded");
    }
}

#[test]
fn a_tmpfs_without_nodev_counts_as_a_device_file_system_for_skip_dev() {
    // As Wazuh reads statfs: devtmpfs (/dev) reports tmpfs's type, so a tmpfs
    // mounted without nodev is skip_dev's; one with nodev is an ordinary folder.
    crate::util::in_mount_namespace("scan::a_tmpfs_without_nodev_counts_as_a_device_file_system_for_skip_dev", || {
        let t = Tree::new();
        t.write("on-disk.txt", b"1");
        for (name, options) in [("dev", "size=1m"), ("nodev", "size=1m,nodev")] {
            std::fs::create_dir(t.path(name)).unwrap();
            std::mem::forget(crate::util::Tmpfs::mount(&t.path(name), options));
            t.write(&format!("{name}/file.txt"), b"2");
        }
        let out = t.fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
        let (summary, log) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(summary.contains(": 2 files"), "on-disk.txt and nodev/file.txt: {summary}{log}");
        assert!(
            log.contains("not monitored: on a device (tmpfs without nodev) file system (skip_dev is on)")
                && log.contains(&format!("{}", t.path("dev").display())),
            "{log}"
        );
        t.write_config(&format!("{}\n[scan]\nskip_dev = false\n", std::fs::read_to_string(t.config()).unwrap()));
        assert!(t.scan().contains(": 3 files"), "with skip_dev off, the tmpfs is scanned");
        // On again: what was recorded on the tmpfs is no longer reached, so deleted.
        t.write_config(&std::fs::read_to_string(t.config()).unwrap().replace("skip_dev = false", ""));
        let summary = t.scan();
        assert!(summary.contains(": 2 files") && summary.contains(" 1 deleted"), "{summary}");
        assert!(t.alerts_log().contains(&format!("File '{}' deleted", t.path("dev/file.txt").display())));
    });
}

#[test]
fn max_files_per_second_paces_a_scan_without_dropping_files() {
    // Wazuh's check_max_fps: at most N files a second; the rest wait, none is skipped.
    let recorded = |limit: u32| {
        let t = Tree::new();
        for i in 0..30 {
            t.write(&format!("f{i:02}.txt"), format!("file {i}").as_bytes());
        }
        let base = std::fs::read_to_string(t.config()).unwrap();
        t.write_config(&format!("{base}[scan]\nmax_files_per_second = {limit}\n"));
        let started = std::time::Instant::now();
        let summary = t.scan();
        let elapsed = started.elapsed();
        assert!(summary.contains("30 files"), "{summary}");
        let rows: i64 = t.db().query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 30, "every file recorded");
        elapsed
    };
    let paced = recorded(20);
    assert!(paced >= std::time::Duration::from_secs(1), "30 files at 20/s took only {paced:?}");
    // 0 is no limit: nothing to assert about speed, only that nothing is lost.
    recorded(0);
}
