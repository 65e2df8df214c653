//! The operator's commands against prepared databases: `history`, `verdicts`,
//! `status` and `lookup`, in tables and `--json`, with the daemon running and
//! stopped, and the key absent from all of it.

use serde_json::Value;

use crate::util::{Daemon, Tree, external_digest, wait_until};
use crate::vt_standin::{Reply, StandIn};

const KEY: &str = "ops-test-KEY-0123456789";

fn run(t: &Tree, args: &[&str]) -> (i32, String, String) {
    let cfg = t.config();
    let mut all = vec![args[0], "--config", cfg.to_str().unwrap()];
    all.extend(&args[1..]);
    let out = t.fimvt(&all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}

fn vt_tree(vt: &StandIn) -> Tree {
    let t = Tree::new();
    t.write_config(&format!(
        "[general]\ndata_dir = \"var\"\n[[directories]]\npath = \"watched\"\n[realtime]\nsettle = \"100ms\"\n\
         [virustotal]\nenabled = true\napi_key = \"{KEY}\"\nbase_url = \"{}\"\nrequests_per_minute = 1000\n",
        vt.url()
    ));
    t
}

#[test]
fn history_lists_events_newest_first_with_filters() {
    let t = Tree::new();
    let a = t.write("dir/a.txt", b"one");
    let b = t.write("b.txt", b"two");
    t.scan();
    std::fs::write(&a, b"one, changed").unwrap();
    std::fs::remove_file(&b).unwrap();
    let c = t.write("dir/c.txt", b"three");
    t.scan();

    let (code, out, _) = run(&t, &["history"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TIME") && lines[0].contains("EVENT") && lines[0].ends_with("PATH"), "{out}");
    assert_eq!(lines.len(), 4, "a header and three events:\n{out}");

    let (_, out, _) = run(&t, &["history", "--json"]);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 3);
    assert!(rows.windows(2).all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()), "newest first");
    let modified = rows.iter().find(|r| r["event"] == "modified").unwrap();
    assert_eq!(modified["path"], a.to_str().unwrap());
    assert_eq!(modified["sha256"], external_digest("sha256sum", &a));
    assert!(modified["changed_attributes"].as_array().unwrap().contains(&"sha256".into()));
    let deleted = rows.iter().find(|r| r["event"] == "deleted").unwrap();
    assert_eq!(deleted["size"], 3, "a deletion shows the content that was deleted");

    let (_, out, _) = run(&t, &["history", a.to_str().unwrap(), "--json"]);
    assert_eq!(json_lines(&out).len(), 1, "one file's timeline");
    let (_, out, _) = run(&t, &["history", t.path("dir").to_str().unwrap(), "--json"]);
    let paths: Vec<Value> = json_lines(&out).iter().map(|r| r["path"].clone()).collect();
    assert_eq!(paths.len(), 2, "a folder shows the files under it: {paths:?}");
    assert!(paths.contains(&c.to_str().unwrap().into()));
    let (_, out, _) = run(&t, &["history", "--event", "deleted", "--json"]);
    assert_eq!(json_lines(&out)[0]["path"], b.to_str().unwrap());
    let (_, out, _) = run(&t, &["history", "--since", "1h", "--limit", "2", "--json"]);
    assert_eq!(json_lines(&out).len(), 2);
    let (_, out, _) = run(&t, &["history", "--since", "2099-01-01", "--json"]);
    assert!(out.is_empty());
    let (code, _, err) = run(&t, &["history", "--since", "last tuesday"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("last tuesday"));
}

#[test]
fn verdicts_status_and_lookup_with_the_daemon_running_and_stopped() {
    let vt = StandIn::start(Reply::Found { malicious: 0, suspicious: 0, undetected: 60, harmless: 2 });
    vt.set(
        &fimvt::hash::digest_bytes(b"evil bytes").sha256,
        Reply::Found { malicious: 9, suspicious: 0, undetected: 50, harmless: 0 },
    );
    let t = vt_tree(&vt);
    let d = Daemon::start(&t);
    let bad = t.write("bad.exe", b"evil bytes");
    let good = t.write("good.exe", b"good bytes");
    // An alert is written before its verdict is committed: wait for both.
    wait_until(30, "two verdicts alerted and recorded", || {
        let recorded: i64 = t.db().query_row("SELECT count(*) FROM vt_verdicts", [], |r| r.get(0)).unwrap();
        recorded == 2 && t.alerts_json().iter().filter(|a| a["location"] == "virustotal").count() >= 2
    });

    let (code, out, _) = run(&t, &["status", "--json"]);
    assert_eq!(code, 0);
    let s = &json_lines(&out)[0];
    assert_eq!(s["daemon"]["running"], true, "{s}");
    assert_eq!(s["files"], 2);
    assert_eq!(s["directories"]["watched"], 1);
    assert_eq!(s["watches"], 1, "one folder, one watch (at the start-up scan)");
    assert_eq!(s["virustotal"]["state"], "ok");
    assert_eq!(s["virustotal"]["requests_this_minute"], 2);
    assert_eq!(s["virustotal"]["requests_per_minute"], 1000);
    assert_eq!(s["last_scan"]["kind"], "baseline");
    let (_, text, _) = run(&t, &["status"]);
    assert!(text.contains("daemon:     running (pid "), "{text}");

    // Queries work while the daemon runs (read-only connections).
    let (_, out, _) = run(&t, &["verdicts", "--json"]);
    let rows = json_lines(&out);
    assert_eq!(rows[0]["path"], bad.to_str().unwrap(), "detected first");
    assert_eq!(rows[0]["verdict"]["positives"], 9);
    assert_eq!(rows[1]["path"], good.to_str().unwrap());
    let (_, out, _) = run(&t, &["verdicts", "--malicious"]);
    assert!(out.contains("9/59") && !out.contains("good.exe"), "{out}");
    d.stop();

    let (_, out, _) = run(&t, &["status", "--json"]);
    let s = &json_lines(&out)[0];
    assert_eq!(s["daemon"]["running"], false);
    assert!(s["daemon"]["stopped"].as_i64().is_some());

    // lookup: from the cache by path and by MD5, with exit status 3 when detected.
    let asked = vt.requests().len();
    let (code, out, _) = run(&t, &["lookup", bad.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("9/59 engines detect it") && out.contains("source:    cache"), "{out}");
    let (code, out, _) = run(&t, &["lookup", &external_digest("md5sum", &good), "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json_lines(&out)[0]["verdict"]["positives"], 0);
    assert_eq!(vt.requests().len(), asked, "the cache answered");
    // A hash never seen is asked now (no daemon running), within the same budget.
    let unseen = "a".repeat(64);
    vt.set(&unseen, Reply::NotFound);
    let (code, out, _) = run(&t, &["lookup", &unseen]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not known to VirusTotal"), "{out}");
    assert_eq!(vt.asked(&unseen), 1);
    let (_, out, _) = run(&t, &["status", "--json"]);
    assert_eq!(json_lines(&out)[0]["virustotal"]["requests_today"], 3, "the lookup counted against the quota");
    let (code, _, err) = run(&t, &["lookup", "not-a-hash"]);
    assert_eq!(code, 2, "a bad argument is a usage error: {err}");
    assert!(err.contains("neither an existing file nor an MD5"), "{err}");
    let (code, _, err) = run(&t, &["lookup", &"b".repeat(40)]);
    assert_eq!(code, 2, "a SHA-1 no file has: {err}");

    // The key is nowhere in what the commands print.
    for args in
        [vec!["status"], vec!["status", "--json"], vec!["verdicts"], vec!["history", "--json"], vec!["check-config"]]
    {
        let (_, out, err) = run(&t, &args);
        assert!(!out.contains(KEY) && !err.contains(KEY), "{args:?} printed the key");
    }
}

#[test]
fn status_works_before_the_first_start_and_on_a_plain_fim() {
    let t = Tree::new();
    let (code, _, err) = run(&t, &["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("no database"), "{err}");
    t.write("f", b"1");
    t.scan();
    let (code, out, _) = run(&t, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("daemon:     not running (never started)"), "{out}");
    assert!(out.contains("virustotal: off ([virustotal] enabled = false)"), "{out}");
    assert!(out.contains("monitored:  1 files"), "{out}");
    let (code, out, _) = run(&t, &["lookup", t.path("f").to_str().unwrap()]);
    assert_eq!(code, 4, "no verdict to be had with lookups off: {out}");
}

/// A read command with the key in the environment, as an operator whose daemon
/// has none would run it.
fn with_key(t: &Tree, command: &str, what: &str) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fimvt"))
        .args([command, "--config", t.config().to_str().unwrap()])
        .args((!what.is_empty()).then_some(what))
        .env("FIMVT_VT_API_KEY", KEY)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into())
}

/// A tree whose config turns lookups on but gives no key: the daemon runs as a
/// plain FIM unless the key is in its environment.
fn keyless_vt_tree(vt: &StandIn) -> Tree {
    let t = Tree::new();
    t.write_config(&format!(
        "[general]\ndata_dir = \"var\"\n[[directories]]\npath = \"watched\"\n\
         [virustotal]\nenabled = true\nbase_url = \"{}\"\nrequests_per_minute = 1000\n",
        vt.url()
    ));
    t
}

#[test]
fn lookup_does_not_wait_on_a_daemon_with_lookups_off() {
    let vt = StandIn::start(Reply::NotFound);
    let t = keyless_vt_tree(&vt);
    let d = Daemon::start(&t);
    let started = std::time::Instant::now();
    let (code, out) = with_key(&t, "lookup", &"c".repeat(64));
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("has VirusTotal lookups off: no API key"), "says why there is no verdict: {out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "it did not wait for the daemon");
    assert_eq!(vt.requests().len(), 0);
    let (_, out) = with_key(&t, "status", "");
    assert!(out.contains("virustotal: off in the running daemon: no API key"), "{out}");
    d.stop();
}

#[test]
fn lookup_does_not_mistake_a_one_shot_holder_for_the_daemon() {
    let vt = StandIn::start(Reply::NotFound);
    let t = vt_tree(&vt);
    t.write("f", b"1");
    t.scan();
    // What `fimvt scan` holds while it runs: the data folder's lock, and no
    // daemon published as running.
    let _scan = fimvt::lock::DataDirLock::acquire(&t.data("")).unwrap();
    let started = std::time::Instant::now();
    let (code, out, _) = run(&t, &["lookup", &"c".repeat(64)]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains(&format!("another fimvt (pid {}", std::process::id())), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "it did not wait for a daemon");
    let (_, out, _) = run(&t, &["status"]);
    assert!(out.contains("not running; a one-shot scan or lookup holds the data folder"), "{out}");
    assert_eq!(vt.requests().len(), 0, "nothing was queued for a daemon that is not there");
}

#[test]
fn lookup_asks_again_when_the_daemon_would_recheck_an_unknown_hash() {
    let vt = StandIn::start(Reply::NotFound);
    let t = vt_tree(&vt);
    t.write("f", b"1");
    t.scan();
    let sha = "d".repeat(64);
    let (code, out, _) = run(&t, &["lookup", &sha]);
    assert_eq!((code, vt.asked(&sha)), (0, 1), "{out}");
    let (_, out, _) = run(&t, &["lookup", &sha]);
    assert!(out.contains("source:    cache"), "fresh: answered from the cache: {out}");
    // Two hours later the first re-check (after 1 h) is due: the daemon would ask.
    let db = rusqlite::Connection::open(t.data("fimvt.db")).unwrap();
    db.execute("UPDATE vt_verdicts SET fetched = fetched - 7200", []).unwrap();
    drop(db);
    vt.set(&sha, Reply::Found { malicious: 3, suspicious: 0, undetected: 60, harmless: 0 });
    let (code, out, _) = run(&t, &["lookup", &sha]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("source:    VirusTotal, now") && out.contains("3/63"), "{out}");
    assert_eq!(vt.asked(&sha), 2);
}

#[test]
fn history_of_the_root_and_of_a_gone_folder_with_a_trailing_slash_lists_what_is_below() {
    let t = Tree::new();
    t.write("b.txt", b"two");
    t.scan();
    t.write("gone/a.txt", b"one");
    t.write("gone/deeper/c.txt", b"three");
    t.write("gone_too.txt", b"not in gone/");
    t.scan();
    std::fs::remove_dir_all(t.path("gone")).unwrap();

    let (code, out, err) = run(&t, &["history", "/", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out).len(), 3, "`history /` is everything:\n{out}");
    // A folder no longer there is not canonicalized: its trailing slash stays.
    let gone = format!("{}/", t.path("gone").display());
    let (code, out, err) = run(&t, &["history", &gone, "--json"]);
    assert_eq!(code, 0, "{err}");
    let mut paths: Vec<String> = json_lines(&out).iter().map(|r| r["path"].as_str().unwrap().to_string()).collect();
    paths.sort();
    let want = [t.path("gone/a.txt"), t.path("gone/deeper/c.txt")].map(|p| p.to_str().unwrap().to_string());
    assert_eq!(paths, want, "{out}");
}
