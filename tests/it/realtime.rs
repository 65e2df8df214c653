//! `fimvt run` end to end: a daemon on a temporary tree, real file operations, and
//! the alerts and rows they must produce. Every wait is a condition with a
//! deadline; a final SIGTERM makes the daemon record everything still pending
//! before the last assertions.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::util::{Daemon, Tmpfs, Tree, external_digest, in_mount_namespace, wait_until};

/// A tree whose realtime settle time is short, to keep the tests quick.
fn tree(extra: &str) -> Tree {
    Tree::with_settings(&format!("{extra}\n[realtime]\nsettle = \"100ms\""))
}

fn alerts_for(t: &Tree, path: &Path) -> Vec<Value> {
    t.alerts_json().into_iter().filter(|a| a["syscheck"]["path"] == path.to_str().unwrap()).collect()
}

/// Waits until `path` has `n` alerts, and returns the last.
fn wait_alert(t: &Tree, path: &Path, n: usize) -> Value {
    wait_until(30, &format!("alert #{n} for {}", path.display()), || alerts_for(t, path).len() >= n);
    alerts_for(t, path).pop().unwrap()
}

fn rule(a: &Value) -> &str {
    a["rule"]["id"].as_str().unwrap()
}

fn changed(a: &Value) -> Vec<String> {
    a["syscheck"]["changed_attributes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn every_file_operation_raises_its_realtime_alert() {
    let t = tree("");
    let d = Daemon::start(&t);
    let f = t.path("setup.exe");

    std::fs::write(&f, b"first version").unwrap();
    let a = wait_alert(&t, &f, 1);
    assert_eq!((rule(&a), a["syscheck"]["mode"].as_str().unwrap()), ("554", "realtime"));
    assert_eq!(a["syscheck"]["sha256_after"], external_digest("sha256sum", &f));

    std::fs::write(&f, b"other version").unwrap(); // overwrite, same size
    let a = wait_alert(&t, &f, 2);
    assert_eq!(rule(&a), "550");
    assert!(changed(&a).contains(&"sha256".to_string()) && !changed(&a).contains(&"size".to_string()), "{a}");

    std::fs::OpenOptions::new().append(true).open(&f).unwrap().write_all(b" + appended").unwrap();
    let a = wait_alert(&t, &f, 3);
    assert!(changed(&a).contains(&"size".to_string()), "{a}");
    assert_eq!(a["syscheck"]["sha256_after"], external_digest("sha256sum", &f));

    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o700)).unwrap();
    let a = wait_alert(&t, &f, 4);
    assert_eq!(changed(&a), ["permission"]);

    let status = std::process::Command::new("touch").args(["-d", "2001-02-03 04:05:06"]).arg(&f).status().unwrap();
    assert!(status.success());
    let a = wait_alert(&t, &f, 5);
    assert_eq!(changed(&a), ["mtime"]);

    let g = t.path("renamed.exe");
    std::fs::rename(&f, &g).unwrap();
    assert_eq!(rule(&wait_alert(&t, &f, 6)), "553");
    assert_eq!(rule(&wait_alert(&t, &g, 1)), "554");

    std::fs::remove_file(&g).unwrap();
    assert_eq!(rule(&wait_alert(&t, &g, 2)), "553");

    d.stop();
    assert_eq!(alerts_for(&t, &f).len(), 6, "one alert per operation, no duplicates");
    assert_eq!(alerts_for(&t, &g).len(), 2);
    let db = t.db();
    let events: i64 = db.query_row("SELECT count(*) FROM events WHERE mode = 'realtime'", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 8);
    let files: i64 = db.query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
    assert_eq!(files, 0);
}

#[test]
fn a_file_written_in_many_pieces_gives_one_alert_with_its_final_content() {
    let t = tree("");
    let d = Daemon::start(&t);
    let f = t.path("big.iso");
    let mut file = std::fs::File::create(&f).unwrap();
    for i in 0..400u32 {
        file.write_all(&[i as u8; 16 << 10]).unwrap();
        file.flush().unwrap();
    }
    drop(file);
    let a = wait_alert(&t, &f, 1);
    d.stop();
    assert_eq!(alerts_for(&t, &f).len(), 1, "a burst of writes is one alert");
    assert_eq!(a["syscheck"]["size_after"], (400 * (16 << 10)).to_string());
    assert_eq!(a["syscheck"]["sha256_after"], external_digest("sha256sum", &f), "hashed once complete");
}

#[test]
fn mkdir_p_followed_at_once_by_files_finds_every_file() {
    let t = tree("");
    let d = Daemon::start(&t);
    let deep = t.path("a/b/c/d");
    std::fs::create_dir_all(&deep).unwrap();
    let files: Vec<_> =
        ["a/1", "a/b/2", "a/b/c/3", "a/b/c/d/4", "a/b/c/d/5"].iter().map(|r| t.write(r, r.as_bytes())).collect();
    for f in &files {
        assert_eq!(rule(&wait_alert(&t, f, 1)), "554");
    }
    d.stop();
    assert_eq!(t.alerts_json().len(), files.len());
}

#[test]
fn a_populated_folder_moved_in_and_out_is_reported_file_by_file() {
    let t = tree("");
    let outside = t.dir.path().join("incoming");
    for i in 0..20 {
        let p = outside.join(format!("sub{}/file{i}.bin", i % 4));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("content {i}")).unwrap();
    }
    let d = Daemon::start(&t);
    let inside = t.path("incoming");
    std::fs::rename(&outside, &inside).unwrap();
    wait_until(30, "20 added alerts", || t.alerts_json().iter().filter(|a| rule(a) == "554").count() == 20);
    std::fs::rename(&inside, &outside).unwrap();
    wait_until(30, "20 deleted alerts", || t.alerts_json().iter().filter(|a| rule(a) == "553").count() == 20);
    d.stop();
    assert_eq!(t.alerts_json().len(), 40);
    let files: i64 = t.db().query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
    assert_eq!(files, 0);
}

#[test]
fn a_burst_of_2000_files_in_new_nested_folders_is_all_alerted_and_stored() {
    let t = tree("");
    let d = Daemon::start(&t);
    for i in 0..2000 {
        t.write(&format!("burst/d{}/e{}/f{i}.dat", i % 10, i % 40), format!("payload {i}").as_bytes());
    }
    wait_until(120, "2000 added alerts", || t.alerts_json().len() >= 2000);
    d.stop();
    let alerts = t.alerts_json();
    assert_eq!(alerts.len(), 2000, "one alert per file");
    assert!(alerts.iter().all(|a| rule(a) == "554"));
    let db = t.db();
    let files: i64 = db.query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
    assert_eq!(files, 2000);
    let sample = t.path("burst/d7/e37/f1997.dat");
    let sha: String =
        db.query_row("SELECT sha256 FROM files WHERE path = ?1", [sample.to_str().unwrap()], |r| r.get(0)).unwrap();
    assert_eq!(sha, external_digest("sha256sum", &sample));
}

#[test]
fn an_overflowing_event_queue_is_recovered_by_a_rescan() {
    // A queue of 2 events cannot hold a burst: the rest must come from a rescan.
    let t = Tree::with_settings("\n[realtime]\nsettle = \"100ms\"\nqueue_capacity = 2");
    let d = Daemon::start(&t);
    for i in 0..500 {
        t.write(&format!("flood/{}/f{i}", i % 7), format!("{i}").as_bytes());
    }
    wait_until(60, "500 added alerts", || t.alerts_json().len() >= 500);
    d.wait_log(30, "event queue was full");
    let log = d.stop();
    let alerts = t.alerts_json();
    let mut seen = std::collections::HashMap::new();
    for a in &alerts {
        *seen.entry(a["syscheck"]["path"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    let doubled: Vec<_> = alerts
        .iter()
        .filter(|a| seen[a["syscheck"]["path"].as_str().unwrap()] > 1)
        .map(|a| {
            (
                a["syscheck"]["path"].clone(),
                a["rule"]["id"].clone(),
                a["syscheck"]["mode"].clone(),
                a["syscheck"]["changed_attributes"].clone(),
            )
        })
        .collect();
    assert_eq!(alerts.len(), 500, "nothing lost, nothing doubled: {doubled:?}");
    assert!(alerts.iter().any(|a| a["syscheck"]["mode"] == "scheduled"), "some came from the rescan:\n{log}");
    let files: i64 = t.db().query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
    assert_eq!(files, 500);
}

#[test]
fn a_writer_that_dies_stops_the_daemon_with_an_error_and_a_restart_catches_up() {
    // A bug in the writer must not leave a process that watches and records
    // nothing: it exits non-zero (systemd restarts it) and nothing is lost.
    let t = tree("");
    Daemon::start(&t).stop();
    let d = Daemon::spawn_with_env(&t, &[("FIMVT_TEST_WRITER_PANIC", "trigger.bin")]);
    d.wait_log(30, "scan complete");
    let before = t.write("before.bin", b"recorded");
    wait_alert(&t, &before, 1);
    // Alerted first, committed just after: "recorded" once the row is in the database.
    let recorded = || t.db().query_row("SELECT count(*) FROM files", [], |r| r.get::<_, i64>(0)).unwrap() == 1;
    wait_until(30, "before.bin in the database", recorded);
    let trigger = t.write("trigger.bin", b"the writer dies on this one");
    let status = d.wait_exit(30);
    assert!(!status.success(), "exit status {status}");
    let log = d.log();
    assert!(log.contains("the writer thread stopped unexpectedly"), "{log}");
    assert!(!log.contains("stopped cleanly"), "{log}");
    assert!(alerts_for(&t, &trigger).is_empty(), "the panic came before its alert");

    let d = Daemon::start(&t);
    assert_eq!(rule(&wait_alert(&t, &trigger, 1)), "554", "found by the start-up scan");
    d.stop();
    assert_eq!(alerts_for(&t, &before).len(), 1, "what was recorded is not alerted again");
}

#[test]
fn a_change_is_alerted_while_the_alerts_before_it_are_still_being_synced() {
    // A slow disk: each alert sync the writer hands to its sync thread takes 4 s
    // (a hook in debug builds). The next change's alert must not wait for it,
    // and no database commit may come before the sync of the alerts it records.
    let t = tree("");
    Daemon::start(&t).stop();
    let d = Daemon::spawn_with_env(&t, &[("FIMVT_TEST_SYNC_DELAY_MS", "4000")]);
    d.wait_log(30, "scan complete");
    let first = t.write("first.bin", b"synced slowly");
    wait_alert(&t, &first, 1);
    let second = t.write("second.bin", b"arrives during that sync");
    wait_until(2, "the second alert while the first is still being synced", || !alerts_for(&t, &second).is_empty());
    let recorded = |p: &Path| -> bool {
        let n: i64 = t
            .db()
            .query_row("SELECT count(*) FROM files WHERE path = ?1", [p.to_str().unwrap()], |r| r.get(0))
            .unwrap();
        n == 1
    };
    assert!(!recorded(&first) && !recorded(&second), "committed before its alerts were durable");
    wait_until(30, "both changes committed once their alerts are synced", || recorded(&first) && recorded(&second));
    d.stop();
    assert_eq!(alerts_for(&t, &first).len() + alerts_for(&t, &second).len(), 2, "each alerted once");
}

#[test]
fn changes_made_while_stopped_are_reported_at_restart() {
    let t = tree("");
    let keep = t.write("keep", b"1");
    let change = t.write("change", b"1");
    let delete = t.write("delete", b"1");
    Daemon::start(&t).stop();
    assert!(t.alerts_json().is_empty(), "the first start is the baseline");

    std::fs::write(&change, b"22").unwrap();
    std::fs::remove_file(&delete).unwrap();
    let added = t.write("added", b"3");
    Daemon::start(&t).stop();
    let alerts = t.alerts_json();
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    assert!(alerts.iter().all(|a| a["syscheck"]["mode"] == "scheduled"));
    assert_eq!(rule(&alerts_for(&t, &change)[0]), "550");
    assert_eq!(rule(&alerts_for(&t, &delete)[0]), "553");
    assert_eq!(rule(&alerts_for(&t, &added)[0]), "554");
    assert!(alerts_for(&t, &keep).is_empty());
}

#[test]
fn sighup_reopens_the_alert_files_for_logrotate() {
    rotate_with_sighup(&[]);
}

/// logrotate's move and SIGHUP, with the daemon's environment `env`: `one` is
/// alerted before the move, `two` after the signal, each in its own file.
fn rotate_with_sighup(env: &[(&str, &str)]) {
    let t = tree("");
    let d = Daemon::spawn_with_env(&t, env);
    d.wait_log(30, "scan complete");
    let one = t.write("one", b"1");
    wait_alert(&t, &one, 1);
    for name in ["alerts.log", "alerts.json"] {
        std::fs::rename(t.data(name), t.data(&format!("{name}.1"))).unwrap();
    }
    d.signal(libc::SIGHUP);
    d.wait_log(30, "reopening alert files");
    // The reopen is done once the writer has handled it; a new alert shows it.
    let two = t.write("two", b"2");
    wait_until(30, "the alert for 'two' in the new alerts.log", || t.alerts_log().contains("two' added"));
    d.stop();
    let old = std::fs::read_to_string(t.data("alerts.log.1")).unwrap();
    assert!(old.contains("one' added") && !old.contains("two' added"), "{old}");
    assert!(!t.alerts_log().contains("one' added"));
    assert_eq!(alerts_for(&t, &two).len(), 1, "alerted once, in the new file");
    assert!(t.alerts_log().starts_with("** Alert "), "ids restart at offset 0 in a new file");
}

#[test]
fn a_second_daemon_on_the_same_data_dir_is_refused() {
    let t = tree("");
    let d = Daemon::start(&t);
    let out = t.fimvt(&["run", "--config", t.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already using data_dir") && err.contains("pid"), "{err}");
    d.stop();
}

#[test]
fn scheduled_only_folders_are_scanned_periodically_and_on_sigusr1() {
    let t = Tree::with_settings("realtime = false\n[scan]\nfrequency = \"1h\"");
    let d = Daemon::start(&t);
    let f = t.write("quiet.txt", b"x");
    d.signal(libc::SIGUSR1);
    let a = wait_alert(&t, &f, 1);
    assert_eq!(a["syscheck"]["mode"], "scheduled");
    d.stop();

    let t = Tree::with_settings("realtime = false\n[scan]\nfrequency = \"1s\"");
    let d = Daemon::start(&t);
    let f = t.write("later.txt", b"y");
    assert_eq!(wait_alert(&t, &f, 1)["syscheck"]["mode"], "scheduled");
    d.stop();
}

#[test]
fn sigterm_leaves_a_consistent_database_and_whole_alerts() {
    let t = tree("");
    let d = Daemon::start(&t);
    for i in 0..200 {
        t.write(&format!("f{i}"), b"data");
    }
    d.stop();
    let ok: String = t.db().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let log = t.alerts_log();
    assert!(log.is_empty() || log.ends_with("\n\n"), "no half-written alert");
    // Whatever was alerted is recorded, and the rest is found by the next start.
    let alerted = t.alerts_json().len();
    Daemon::start(&t).stop();
    assert_eq!(t.alerts_json().len(), 200, "{alerted} alerted before the stop, the rest after the restart");
}

#[test]
fn at_the_watch_limit_fimvt_says_so_and_falls_back_to_scans() {
    // A user namespace has its own inotify watch limit (user.max_inotify_watches):
    // set it to 3 there, leaving the machine's own setting alone.
    let t = tree("");
    for i in 0..8 {
        t.write(&format!("dir{i}/sub/file"), b"x");
    }
    let limit = "echo 3 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\"";
    let d = Daemon::spawn_via(&t, &["unshare", "--user", "--map-root-user", "sh", "-c", limit], &[]);
    d.wait_log(30, "scan complete");
    assert!(d.log().contains("fs.inotify.max_user_watches"), "{}", d.log());
    // Changes the watches cannot see are still found by a scan.
    let f = t.write("dir7/sub/new.bin", b"unseen by inotify");
    d.signal(libc::SIGUSR1);
    let a = wait_alert(&t, &f, 1);
    assert_eq!(rule(&a), "554");
    d.stop();
}

#[test]
fn realtime_applies_ignore_restrict_depth_and_size_rules_like_scans() {
    let t = tree("recursion_level = 1\nignore = [\"*.tmp\"]\nrestrict = \"\\\\.(exe|bin)$\"\nmax_file_size = \"1KiB\"");
    let d = Daemon::start(&t);
    t.write("skip.tmp", b"ignored");
    t.write("notes.txt", b"restricted away");
    t.write("a/b/too-deep.exe", b"beyond recursion_level");
    let big = t.write("big.bin", &[7u8; 4096]);
    let ok = t.write("a/ok.exe", b"monitored");
    let a = wait_alert(&t, &ok, 1);
    assert_eq!(rule(&a), "554");
    let b = wait_alert(&t, &big, 1);
    assert!(b["syscheck"].get("sha256_after").is_none(), "over max_file_size: no hashes");
    d.stop();
    assert_eq!(t.alerts_json().len(), 2, "{:#?}", t.alerts_json());
}

#[test]
fn kill_9_in_the_middle_of_a_burst_loses_nothing() {
    let t = tree("");
    let d = Daemon::start(&t);
    let writer = {
        let root = t.root();
        std::thread::spawn(move || {
            for i in 0..5000 {
                let p = root.join(format!("k{}/f{i}", i % 50));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, format!("file number {i}")).unwrap();
            }
        })
    };
    wait_until(60, "some alerts", || t.alerts_json().len() >= 500);
    d.signal(libc::SIGKILL);
    drop(d);
    writer.join().unwrap();
    // Whatever the kill left, every line must still parse...
    let _ = t.alerts_json();
    // ...and a restart finds and reports the rest.
    Daemon::start(&t).stop();
    let alerts = t.alerts_json();
    let mut added = std::collections::HashSet::new();
    for a in &alerts {
        if a["rule"]["id"] == "554" {
            added.insert(a["syscheck"]["path"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(added.len(), 5000, "every file has its 554 (repeats allowed, losses not)");
    let db = t.db();
    let ok: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    // Every file on disk is in `files` with the hash an independent tool computes.
    let mut stmt = db.prepare("SELECT path, sha256 FROM files").unwrap();
    let stored: std::collections::HashMap<String, String> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("find '{}' -type f -exec sha256sum {{}} +", t.root().display()))
        .output()
        .unwrap();
    let on_disk: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (sha, path) = l.split_once("  ").unwrap();
            (path.to_string(), sha.to_string())
        })
        .collect();
    assert_eq!(on_disk.len(), 5000);
    assert_eq!(stored.len(), 5000);
    for (path, sha) in &on_disk {
        assert_eq!(stored.get(path), Some(sha), "{path}");
    }
    // Every alert in alerts.log is whole (each file may also hold alerts of a batch
    // the kill kept from committing: they were raised again, duplicates allowed).
    let log = t.alerts_log();
    assert!(log.ends_with("\n\n"), "the last alert is whole");
    let blocks: Vec<&str> = log.split("\n\n** Alert ").collect();
    assert!(blocks.len() >= 5000, "{} alerts in alerts.log", blocks.len());
    for b in &blocks {
        assert!(b.contains("\nAttributes:\n - Size: ") && b.contains("\n - SHA256: "), "a torn alert: {b:?}");
    }
}

#[test]
fn a_full_disk_is_said_clearly_and_caught_up_once_space_is_back() {
    // The data folder on a 1 MiB tmpfs, in a mount namespace of the test's own.
    in_mount_namespace("realtime::a_full_disk_is_said_clearly_and_caught_up_once_space_is_back", || {
        let t = tree("");
        let data = t.dir.path().join("var");
        std::fs::create_dir_all(&data).unwrap();
        let tmpfs = Tmpfs::mount(&data, "size=1m,mode=0750");
        let d = Daemon::start(&t);
        for i in 0..600 {
            t.write(
                &format!("full/{}/a-rather-long-file-name-to-fill-the-disk-sooner-{i:04}.bin", i % 6),
                format!("{i}").as_bytes(),
            );
        }
        d.wait_log(60, "cannot record changes");
        let log = d.log();
        assert!(log.contains("disk is full") || log.contains("No space left on device"), "{log}");
        // Space is back: the next retry's scan reports everything that was missed.
        tmpfs.resize("64m");
        wait_until(60, "600 files recorded", || {
            let seen: std::collections::HashSet<String> = t
                .alerts_json()
                .iter()
                .filter(|a| a["rule"]["id"] == "554")
                .map(|a| a["syscheck"]["path"].as_str().unwrap().to_string())
                .collect();
            seen.len() == 600
        });
        d.stop();
        let db = t.db();
        let ok: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        let n: i64 = db.query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 600);
    });
}

#[test]
fn a_full_disk_stops_virustotal_lookups_until_answers_can_be_recorded_again() {
    // Answers that cannot be recorded are rolled back and asked again later, so
    // asking on while the disk is full would only burn quota.
    in_mount_namespace("realtime::a_full_disk_stops_virustotal_lookups_until_answers_can_be_recorded_again", || {
        let clean = crate::vt_standin::Reply::Found { malicious: 0, suspicious: 0, undetected: 60, harmless: 0 };
        let vt = crate::vt_standin::StandIn::start(crate::vt_standin::Reply::Slow(
            std::time::Duration::from_millis(200),
            Box::new(clean),
        ));
        let t = Tree::new();
        t.write_config(&format!(
            "[general]\ndata_dir = \"var\"\nhostname = \"testhost\"\n[[directories]]\npath = \"watched\"\n\
             [realtime]\nsettle = \"100ms\"\n\
             [virustotal]\nenabled = true\napi_key = \"k\"\nbase_url = \"{}\"\nrequests_per_minute = 100000\n\
             daily_quota = 1000000\nconcurrency = 2\n",
            vt.url()
        ));
        let data = t.dir.path().join("var");
        std::fs::create_dir_all(&data).unwrap();
        let _tmpfs = Tmpfs::mount(&data, "size=4m,mode=0750");
        let d = Daemon::start(&t);
        let files: Vec<_> = (0..40).map(|i| t.write(&format!("q{i}.bin"), format!("queued {i}").as_bytes())).collect();
        let verdicts = || -> i64 { t.db().query_row("SELECT count(*) FROM vt_verdicts", [], |r| r.get(0)).unwrap() };
        wait_until(30, "the first verdicts", || verdicts() >= 2);
        // Fill the disk under the daemon.
        let filler = data.join("filler");
        {
            let mut f = std::fs::File::create(&filler).unwrap();
            while f.write_all(&[0u8; 64 << 10]).is_ok() {}
        }
        d.wait_log(30, "cannot record changes");
        let at_failure = vt.requests().len();
        std::thread::sleep(std::time::Duration::from_secs(3));
        let asked = vt.requests().len() - at_failure;
        assert!(asked <= 2, "{asked} requests while nothing could be recorded (concurrency 2)");
        std::fs::remove_file(&filler).unwrap();
        wait_until(60, "every lookup answered and recorded", || verdicts() == files.len() as i64);
        d.stop();
        let queued: i64 = t.db().query_row("SELECT count(*) FROM vt_queue", [], |r| r.get(0)).unwrap();
        assert_eq!(queued, 0);
    });
}

#[test]
fn a_monitored_folder_deleted_and_recreated_is_watched_again() {
    let t = tree("");
    let old = t.write("old.txt", b"before");
    let d = Daemon::start(&t);
    std::fs::remove_dir_all(t.root()).unwrap();
    assert_eq!(rule(&wait_alert(&t, &old, 1)), "553");
    d.wait_log(30, "a monitored folder was deleted");
    std::fs::create_dir(t.dir.path().join("watched")).unwrap();
    d.wait_log(30, "watching it again");
    // Realtime works again: a file created now is alerted by its own event.
    let new = t.write("new.txt", b"after");
    assert_eq!(rule(&wait_alert(&t, &new, 1)), "554");
    let later = t.write("sub/later.txt", b"later still");
    assert_eq!(rule(&wait_alert(&t, &later, 1)), "554");
    d.stop();
}

#[test]
fn regression_a_file_replaced_by_a_folder_is_reported_deleted() {
    let t = tree("");
    let f = t.write("thing", b"a file first");
    let d = Daemon::start(&t);
    std::fs::remove_file(&f).unwrap();
    std::fs::create_dir(&f).unwrap();
    assert_eq!(rule(&wait_alert(&t, &f, 1)), "553");
    d.stop();
}

#[test]
fn a_folder_missing_at_start_is_watched_as_soon_as_it_appears() {
    // As Wazuh: a configured folder that does not exist yet is no configuration
    // error; it is monitored once it exists (here: at once, not at the next scan).
    let t = tree("");
    let later = t.dir.path().join("later");
    let mut text = std::fs::read_to_string(t.config()).unwrap();
    text.push_str("\n[[directories]]\npath = \"later\"\n[scan]\nfrequency = \"12h\"\n");
    t.write_config(&text);
    let out = t.fimvt(&["check-config", "--config", t.config().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("does not exist yet: it is monitored as soon as it appears"), "{err}");
    let d = Daemon::start(&t);
    let out = t.fimvt(&["status", "--config", t.config().to_str().unwrap()]);
    assert!(out.status.success(), "status works while a folder is missing: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!d.log().contains("cannot scan"), "a missing folder is no scan error:\n{}", d.log());

    std::fs::create_dir_all(later.join("sub")).unwrap();
    std::fs::write(later.join("sub/setup.exe"), b"arrived after the start").unwrap();
    let file = std::fs::canonicalize(later.join("sub/setup.exe")).unwrap();
    let a = wait_alert(&t, &file, 1);
    assert_eq!((rule(&a), a["syscheck"]["mode"].as_str()), ("554", Some("realtime")), "{a}");
    // Watched from then on.
    std::fs::write(later.join("second.exe"), b"and another").unwrap();
    let second = std::fs::canonicalize(later.join("second.exe")).unwrap();
    assert_eq!(rule(&wait_alert(&t, &second, 1)), "554");
    d.stop();
    let errors: i64 = t.db().query_row("SELECT errors FROM scans ORDER BY id DESC LIMIT 1", [], |r| r.get(0)).unwrap();
    assert_eq!(errors, 0, "the start-up scan counted the missing folder as no error");
}

#[test]
fn a_change_after_a_sighup_goes_to_the_new_alert_file_even_while_a_sync_is_slow() {
    // A slow disk: each alert sync takes 1.5 s (a hook in debug builds), so the
    // SIGHUP arrives while `one`'s commit waits for its sync. The writer takes in
    // changes meanwhile; the reopen must still come before the changes after it,
    // or their alerts land in the file logrotate just moved away.
    rotate_with_sighup(&[("FIMVT_TEST_SYNC_DELAY_MS", "1500")]);
}
