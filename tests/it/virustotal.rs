//! VirusTotal end to end: `fimvt run` against the stand-in on 127.0.0.1. Every
//! VirusTotal alert type, one request per distinct hash, the cache, restarts with
//! a pending queue, 401, 429, broken answers, a slow VirusTotal, and the key kept
//! out of every output.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Daemon, Tree, external_digest, wait_until};
use crate::vt_standin::{Reply, StandIn};

const KEY: &str = "f00dfeed-0123456789abcdef-SECRET-KEY";

fn found(malicious: u32) -> Reply {
    Reply::Found { malicious, suspicious: 1, undetected: 60, harmless: 0 }
}

/// A tree whose daemon talks to `vt`, with `extra` lines in `[virustotal]`.
fn tree(vt: &StandIn, extra: &str) -> Tree {
    let t = Tree::new();
    t.write_config(&format!(
        "[general]\ndata_dir = \"var\"\nhostname = \"testhost\"\n[[directories]]\npath = \"watched\"\n\
         [realtime]\nsettle = \"100ms\"\n\
         [virustotal]\nenabled = true\napi_key = \"{KEY}\"\nbase_url = \"{}\"\nrequests_per_minute = 1000\n\
         retry_backoff = \"200ms\"\n{extra}\n",
        vt.url()
    ));
    t
}

fn vt_alerts(t: &Tree) -> Vec<Value> {
    t.alerts_json().into_iter().filter(|a| a["location"] == "virustotal").collect()
}

fn vt_alerts_for(t: &Tree, file: &Path) -> Vec<Value> {
    vt_alerts(t).into_iter().filter(|a| a["data"]["virustotal"]["source"]["file"] == file.to_str().unwrap()).collect()
}

fn wait_vt(t: &Tree, file: &Path) -> Value {
    wait_until(30, &format!("a VirusTotal alert for {}", file.display()), || !vt_alerts_for(t, file).is_empty());
    vt_alerts_for(t, file).remove(0)
}

fn rule(a: &Value) -> &str {
    a["rule"]["id"].as_str().unwrap()
}

fn sha256(p: &Path) -> String {
    external_digest("sha256sum", p)
}

#[test]
fn verdicts_raise_87103_87104_and_87105_with_the_seed_layout() {
    let vt = StandIn::start(Reply::NotFound);
    let t = tree(&vt, "");
    let d = Daemon::start(&t);
    // The stand-in knows the answers before the files exist.
    vt.set(&fimvt::hash::digest_bytes(b"pretend malware").sha256, found(7));
    vt.set(&fimvt::hash::digest_bytes(b"pretend clean program").sha256, found(0));
    let bad = t.write("suspicious-file.exe", b"pretend malware");
    let clean = t.write("clean.exe", b"pretend clean program");
    let unknown = t.write("my-clean-program.exe", b"never seen before");

    let a = wait_vt(&t, &bad);
    assert_eq!(rule(&a), "87105");
    assert_eq!(a["rule"]["level"], 12);
    assert_eq!(a["rule"]["mail"], true);
    assert_eq!(
        a["rule"]["description"],
        format!("VirusTotal: Alert - {} - 7 engines detected this file", bad.display())
    );
    // Wazuh's rule fields and MITRE view.
    assert_eq!(a["rule"]["groups"], serde_json::json!(["virustotal"]));
    assert_eq!(a["rule"]["pci_dss"], serde_json::json!(["10.6.1", "11.4"]));
    assert_eq!(a["rule"]["gdpr"], serde_json::json!(["IV_35.7.d"]));
    assert_eq!(a["rule"]["mitre"]["id"], serde_json::json!(["T1203"]));
    assert!(a.get("full_log").is_none(), "the VirusTotal rules set no_full_log: {a}");
    // Decoded values are strings, as Wazuh's alert writer stores them.
    let v = &a["data"]["virustotal"];
    assert_eq!((&v["found"], &v["malicious"], &v["positives"]), (&"1".into(), &"1".into(), &"7".into()));
    assert_eq!(v["total"], "68", "harmless 0 + malicious 7 + suspicious 1 + undetected 60");
    assert_eq!(v["scan_date"], "2017-11-14 17:24:37");
    assert_eq!(v["permalink"], format!("https://www.virustotal.com/gui/file/{}", sha256(&bad)));
    assert_eq!(v["source"]["md5"], external_digest("md5sum", &bad));
    assert!(v["source"].get("agent").is_none(), "Wazuh's script writes no source.agent: {v}");
    assert_eq!(a["agent"]["id"], "000");
    assert_eq!(a["data"]["integration"], "virustotal");
    // source.alert_id points at the FIM alert for the same file.
    let fim: Vec<Value> =
        t.alerts_json().into_iter().filter(|x| x["syscheck"]["path"] == bad.to_str().unwrap()).collect();
    assert_eq!(v["source"]["alert_id"], fim[0]["id"]);

    assert_eq!(rule(&wait_vt(&t, &clean)), "87104");
    let n = wait_vt(&t, &unknown);
    assert_eq!(rule(&n), "87103");
    assert_eq!(n["data"]["virustotal"]["found"], "0");
    d.stop();

    let log = t.alerts_log();
    assert!(log.contains(": mail  - virustotal,pci_dss_10.6.1,pci_dss_11.4,gdpr_IV_35.7.d,\n"), "{log}");
    assert!(log.contains("testhost->virustotal\nRule: 87105 (level 12) -> 'VirusTotal: Alert - "));
    assert!(log.contains("Rule: 87103 (level 3) -> 'VirusTotal: Alert - No records in VirusTotal database'\n{\"virustotal\": {\"found\": 0, \"malicious\": 0, \"source\": {\"alert_id\": \""));
    assert!(log.contains("\nvirustotal.positives: 7\n"));
    assert!(log.contains(&format!("\nvirustotal.source.file: {}\n", bad.display())));
    assert!(!log.contains("virustotal.source.agent") && !log.contains("\"agent\""), "{log}");
    assert!(log.contains("\nintegration: virustotal\n\n"));
    // Looked up by SHA-256, with the key in its header.
    let reqs = vt.requests();
    assert!(reqs.iter().all(|r| r.hash.len() == 64 && r.api_key.as_deref() == Some(KEY)));
    // integration.log: one line per request.
    let ilog = std::fs::read_to_string(t.data("integration.log")).unwrap();
    assert_eq!(ilog.lines().count(), reqs.len());
    assert!(ilog.contains(&format!("sha256={} status=200 outcome=found positives=7/68", sha256(&bad))), "{ilog}");
    assert!(ilog.contains("status=404 outcome=not_found"));
}

#[test]
fn one_hundred_files_with_the_same_content_make_one_request() {
    let vt = StandIn::start(found(2));
    let t = tree(&vt, "");
    let d = Daemon::start(&t);
    let files: Vec<_> = (0..100).map(|i| t.write(&format!("copies/c{i}.exe"), b"identical bytes")).collect();
    wait_until(60, "100 VirusTotal alerts", || vt_alerts(&t).len() >= 100);
    d.stop();
    assert_eq!(vt.requests().len(), 1, "one request for one hash");
    for f in &files {
        assert_eq!(rule(&vt_alerts_for(&t, f)[0]), "87105");
    }
}

#[test]
fn a_cached_verdict_answers_without_a_request() {
    let vt = StandIn::start(found(0));
    let t = tree(&vt, "");
    let d = Daemon::start(&t);
    let first = t.write("first.bin", b"shared content");
    wait_vt(&t, &first);
    let second = t.write("later/second.bin", b"shared content");
    assert_eq!(rule(&wait_vt(&t, &second)), "87104");
    d.stop();
    assert_eq!(vt.requests().len(), 1);
    // Users can join files and verdicts.
    let db = t.db();
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM files f JOIN vt_verdicts v ON v.sha256 = f.sha256 WHERE v.found = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn a_restart_with_a_pending_queue_finishes_it_without_asking_again() {
    let vt = StandIn::start(found(0));
    // 2 requests a minute: most of the 6 files stay queued when it stops.
    let t = tree(&vt, "").with_vt_rate(2);
    let d = Daemon::start(&t);
    let files: Vec<_> = (0..6).map(|i| t.write(&format!("f{i}"), format!("content {i}").as_bytes())).collect();
    wait_until(30, "two answers", || vt_alerts(&t).len() >= 2);
    d.stop();
    assert_eq!(vt.requests().len(), 2, "the minute's budget is 2");
    let queued: i64 = t.db().query_row("SELECT count(*) FROM vt_queue", [], |r| r.get(0)).unwrap();
    assert_eq!(queued, 4, "the rest is still queued");

    // A restart within the minute grants no fresh budget...
    let d = Daemon::start(&t);
    d.wait_log(30, "VirusTotal lookups are on");
    std::thread::sleep(Duration::from_millis(300)); // give a wrongly fresh budget a chance to show
    assert_eq!(vt.requests().len(), 2, "the restart spent nothing new");
    d.stop();
    // ...and with a larger budget the queue completes, each hash asked once.
    let t = t.with_vt_rate(1000);
    let d = Daemon::start(&t);
    wait_until(30, "six answers", || vt_alerts(&t).len() >= 6);
    d.stop();
    for f in &files {
        assert_eq!(vt.asked(&sha256(f)), 1, "{} asked once", f.display());
    }
    let queued: i64 = t.db().query_row("SELECT count(*) FROM vt_queue", [], |r| r.get(0)).unwrap();
    assert_eq!(queued, 0);
}

#[test]
fn a_refused_key_raises_87102_once_and_stops_asking_while_the_queue_grows() {
    let vt = StandIn::start(Reply::Status(401, "Unauthorized"));
    let t = tree(&vt, "concurrency = 1");
    let d = Daemon::start(&t);
    t.write("a", b"1");
    wait_until(30, "87102", || vt_alerts(&t).iter().any(|a| rule(a) == "87102"));
    for i in 0..5 {
        let f = t.write(&format!("more{i}"), format!("more {i}").as_bytes());
        wait_until(30, "its FIM alert", || t.alerts_log().contains(&format!("{}' added", f.display())));
    }
    d.wait_log(30, "refused the API key");
    let log = d.stop();
    assert_eq!(vt.requests().len(), 1, "no request after the 401");
    let errors: Vec<_> = vt_alerts(&t).into_iter().filter(|a| rule(a) == "87102").collect();
    assert_eq!(errors.len(), 1);
    // Wazuh's rule 87102 matches error 403 only; the real status is kept beside it.
    assert_eq!(errors[0]["data"]["virustotal"]["error"], "403");
    assert_eq!(errors[0]["data"]["virustotal"]["http_status"], "401");
    assert_eq!(errors[0]["rule"]["description"], "VirusTotal: Error: Check credentials");
    assert_eq!(errors[0]["rule"]["gdpr"], serde_json::json!(["IV_35.7.d", "IV_32.2"]));
    let queued: i64 = t.db().query_row("SELECT count(*) FROM vt_queue", [], |r| r.get(0)).unwrap();
    assert_eq!(queued, 6, "every lookup is kept");
    assert!(!log.contains(KEY));
}

#[test]
fn rate_limiting_pauses_with_one_87101_and_resumes() {
    let vt = StandIn::start(found(0));
    vt.script([Reply::RateLimited(Some(1))]);
    let t = tree(&vt, "concurrency = 1");
    let d = Daemon::start(&t);
    let files: Vec<_> = (0..3).map(|i| t.write(&format!("r{i}"), format!("rate {i}").as_bytes())).collect();
    for f in &files {
        assert_eq!(rule(&wait_vt(&t, f)), "87104", "answered after the pause");
    }
    d.stop();
    let limited: Vec<_> = vt_alerts(&t).into_iter().filter(|a| rule(a) == "87101").collect();
    assert_eq!(limited.len(), 1, "one 87101 per pause, not one per file");
    // Wazuh's rule 87101 matches error 204 (API v2's rate limit) only.
    assert_eq!(limited[0]["data"]["virustotal"]["error"], "204");
    assert_eq!(limited[0]["data"]["virustotal"]["http_status"], "429");
    let reqs = vt.requests();
    assert_eq!(reqs.len(), 4, "the 429 and one request per file");
    assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(900), "Retry-After: 1 was honoured");
}

#[test]
fn broken_answers_are_retried_not_fatal_and_87106_comes_after_the_retries() {
    let vt = StandIn::start(found(0));
    vt.script([Reply::Truncated, Reply::Garbage, Reply::Status(503, "Service Unavailable")]);
    let t = tree(&vt, "concurrency = 1");
    let d = Daemon::start(&t);
    let f = t.write("retry.bin", b"eventually answered");
    assert_eq!(rule(&wait_vt(&t, &f)), "87104");
    assert_eq!(vt.requests().len(), 4);

    // A lookup that keeps failing: 87106 after max_retries, and it stays queued.
    vt.script(std::iter::repeat_n(Reply::Status(503, "Service Unavailable"), 50));
    let stuck = t.write("stuck.bin", b"never answered");
    let stuck_sha = sha256(&stuck);
    let failed = || -> Vec<Value> {
        vt_alerts(&t).into_iter().filter(|a| a["data"]["virustotal"]["sha256"] == stuck_sha.as_str()).collect()
    };
    wait_until(30, "the 87106 for stuck.bin", || !failed().is_empty());
    let a = failed().remove(0);
    assert_eq!(rule(&a), "87106");
    assert_eq!(a["rule"]["description"], "VirusTotal: Error: API request timed out");
    // Rule 87106 matches error 408; Wazuh's script calls a failed request this.
    let v = &a["data"]["virustotal"];
    assert_eq!((&v["error"], &v["http_status"]), (&"408".into(), &"503".into()));
    assert_eq!(v["description"], "Error: API request fail");
    assert!(v.get("source").is_none(), "Wazuh's 87106 has no source block: {v}");
    d.stop();
    assert_eq!(failed().len(), 1, "one 87106 per stuck hash");
    let queued: i64 = t.db().query_row("SELECT count(*) FROM vt_queue", [], |r| r.get(0)).unwrap();
    assert_eq!(queued, 1, "no lookup is ever dropped");
    let ilog = std::fs::read_to_string(t.data("integration.log")).unwrap();
    assert!(ilog.contains("outcome=retry"), "{ilog}");
}

#[test]
fn a_slow_virustotal_does_not_delay_fim_alerts() {
    let vt = StandIn::start(Reply::Slow(Duration::from_secs(5), Box::new(found(0))));
    let t = tree(&vt, "");
    let d = Daemon::start(&t);
    let f = t.write("slow.exe", b"slow lookup");
    wait_until(3, "the FIM alert, long before VirusTotal answers", || t.alerts_log().contains("slow.exe' added"));
    assert!(vt_alerts_for(&t, &f).is_empty());
    let g = t.write("second.exe", b"another");
    wait_until(3, "a second FIM alert while the first lookup hangs", || t.alerts_log().contains("second.exe' added"));
    assert_eq!(rule(&wait_vt(&t, &f)), "87104");
    wait_vt(&t, &g);
    d.stop();
}

#[test]
fn a_new_file_is_asked_at_once_when_the_worker_waits_for_work() {
    // The writer wakes the worker only when it may be waiting for work. A lost
    // wake-up would leave the hash queued until the worker's next look (5 s).
    let vt = StandIn::start(found(0));
    let t = tree(&vt, "");
    let d = Daemon::start(&t);
    for i in 0..5 {
        // Time for the worker to find the queue empty and wait.
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        let f = t.write(&format!("new{i}.exe"), format!("new content {i}").as_bytes());
        let sha = sha256(&f);
        wait_until(10, &format!("a request for {}", f.display()), || vt.asked(&sha) == 1);
        let took = start.elapsed();
        assert!(took < Duration::from_millis(1500), "file {i} was asked {took:?} after it was written");
    }
    d.stop();
}

#[test]
fn lookups_use_every_slot_of_concurrency_and_never_more() {
    // Answers are recorded in groups, so a slot is freed when its answer arrives,
    // not when it is recorded: `concurrency` requests stay in flight while the
    // backlog lasts, and never more.
    let vt = StandIn::start(Reply::Slow(Duration::from_millis(300), Box::new(Reply::NotFound)));
    let t = tree(&vt, "concurrency = 3");
    let d = Daemon::start(&t);
    let files: Vec<_> = (0..12).map(|i| t.write(&format!("c{i}.bin"), format!("concurrent {i}").as_bytes())).collect();
    for f in &files {
        wait_vt(&t, f);
    }
    d.stop();
    assert_eq!(vt.requests().len(), files.len(), "one request per distinct hash");
    assert_eq!(vt.max_in_flight(), 3, "three slots used, never a fourth");
}

#[test]
fn an_unknown_hash_later_detected_raises_87105_for_every_file_carrying_it() {
    let vt = StandIn::start(Reply::NotFound);
    let t = tree(&vt, "recheck_not_found = [\"1s\", \"1s\", \"1s\"]");
    let d = Daemon::start(&t);
    let a = t.write("a/dropper.exe", b"fresh malware");
    assert_eq!(rule(&wait_vt(&t, &a)), "87103");
    let b = t.write("b/copy.exe", b"fresh malware");
    assert_eq!(rule(&wait_vt(&t, &b)), "87103", "from the cache, or asked again if a re-check fell due");
    vt.set_default(found(12));
    wait_until(30, "87105 for both copies", || vt_alerts(&t).iter().filter(|x| rule(x) == "87105").count() >= 2);
    d.stop();
    let asked = vt.requests().len();
    assert!((2..=4).contains(&asked), "the first lookup and a re-check or two, not one per file: {asked}");
    for f in [&a, &b] {
        assert!(vt_alerts_for(&t, f).iter().any(|x| rule(x) == "87105"), "{}", f.display());
    }
}

#[test]
fn the_api_key_appears_in_no_output() {
    let vt = StandIn::start(found(3));
    vt.script([Reply::Status(401, "Unauthorized")]);
    let t = tree(&vt, "");
    let out = t.fimvt(&["check-config", "--config", t.config().to_str().unwrap()]);
    let mut seen = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let d = Daemon::spawn_with_env(&t, &[("RUST_LOG", "trace")]);
    d.wait_log(30, "scan complete");
    t.write("x.exe", b"x");
    wait_until(30, "the 87102", || vt_alerts(&t).iter().any(|a| rule(a) == "87102"));
    seen += &d.stop();
    for name in ["alerts.log", "alerts.json", "integration.log"] {
        seen += &std::fs::read_to_string(t.data(name)).unwrap();
    }
    seen += &String::from_utf8_lossy(&std::fs::read(t.data("fimvt.db")).unwrap());
    assert!(seen.len() > 1000);
    assert!(!seen.contains(KEY) && !seen.contains("SECRET-KEY"), "the key leaked");
}

#[test]
fn without_a_key_fimvt_is_a_plain_fim_and_says_why_once() {
    let vt = StandIn::start(found(0));
    let t = tree(&vt, "");
    let text = std::fs::read_to_string(t.config()).unwrap().replace(&format!("api_key = \"{KEY}\""), "");
    t.write_config(&text);
    let d = Daemon::start(&t);
    let f = t.write("plain.txt", b"1");
    wait_until(30, "its FIM alert", || t.alerts_log().contains("plain.txt' added"));
    let log = d.stop();
    assert_eq!(log.matches("VirusTotal lookups are off: no API key").count(), 1, "{log}");
    assert!(vt.requests().is_empty() && vt_alerts_for(&t, &f).is_empty());
}

#[test]
fn a_new_key_given_with_sighup_resumes_the_lookups() {
    let vt = StandIn::start(found(0));
    vt.require_key("the-right-key");
    let t = tree(&vt, "concurrency = 1");
    let d = Daemon::start(&t);
    let f = t.write("waiting.exe", b"needs a good key");
    wait_until(30, "87102", || vt_alerts(&t).iter().any(|a| rule(a) == "87102"));
    let text = std::fs::read_to_string(t.config()).unwrap().replace(KEY, "the-right-key");
    t.write_config(&text);
    d.signal(libc::SIGHUP);
    assert_eq!(rule(&wait_vt(&t, &f)), "87104", "the queued lookup is made with the new key");
    let log = d.stop();
    assert!(log.contains("API key changed"), "{log}");
    assert_eq!(vt.requests().iter().filter(|r| r.api_key.as_deref() == Some("the-right-key")).count(), 1);
}

#[test]
fn realtime_lookups_go_before_the_baseline() {
    // The baseline's 5 files are queued at the lowest priority; a realtime file
    // created while the first of them is being asked goes next.
    let vt = StandIn::start(Reply::Slow(Duration::from_millis(400), Box::new(found(0))));
    let t = tree(&vt, "concurrency = 1");
    for i in 0..5 {
        t.write(&format!("old{i}"), format!("baseline {i}").as_bytes());
    }
    let d = Daemon::start(&t);
    wait_until(30, "the first baseline request", || !vt.requests().is_empty());
    let hot = t.write("hot.exe", b"just downloaded");
    wait_until(30, "the FIM alert", || t.alerts_log().contains("hot.exe' added"));
    wait_until(30, "every verdict", || vt_alerts(&t).len() >= 6);
    d.stop();
    let order: Vec<String> = vt.requests().into_iter().map(|r| r.hash).collect();
    assert_eq!(order[1], sha256(&hot), "the realtime lookup jumps the baseline queue: {order:?}");
    assert_eq!(order.len(), 6);
}

#[test]
fn a_one_shot_scan_queues_its_lookups_for_the_daemon() {
    let vt = StandIn::start(found(0));
    let t = tree(&vt, "");
    t.scan();
    let f = t.write("between-runs.exe", b"found by fimvt scan");
    let summary = t.scan();
    assert!(summary.contains("1 VirusTotal lookups queued"), "{summary}");
    assert!(vt.requests().is_empty(), "fimvt scan itself asks nothing");
    let d = Daemon::start(&t);
    assert_eq!(rule(&wait_vt(&t, &f)), "87104");
    d.stop();
    let fim: Vec<Value> =
        t.alerts_json().into_iter().filter(|a| a["syscheck"]["path"] == f.to_str().unwrap()).collect();
    assert_eq!(vt_alerts_for(&t, &f)[0]["data"]["virustotal"]["source"]["alert_id"], fim[0]["id"]);
}

#[test]
fn faults_from_virustotal_never_stop_fim_and_the_queue_resumes() {
    let vt = StandIn::start(found(0));
    vt.script([
        Reply::Reset,
        Reply::Slow(Duration::from_secs(3), Box::new(found(0))), // beyond the 1 s timeout
        Reply::Status(500, "Internal Server Error"),
        Reply::RateLimited(Some(1)),
        Reply::RateLimited(Some(1)),
        Reply::RateLimited(Some(1)),
        Reply::Drip, // slower than the timeout allows
        Reply::Huge, // capped, not read whole
        Reply::Truncated,
        Reply::Garbage,
    ]);
    let t = tree(&vt, "concurrency = 1\ntimeout = \"1s\"\nmax_retries = 50");
    let d = Daemon::start(&t);
    let first = t.write("first.exe", b"asked through every fault");
    // FIM goes on meanwhile.
    for i in 0..5 {
        let f = t.write(&format!("during{i}.txt"), format!("{i}").as_bytes());
        wait_until(5, "a FIM alert while VirusTotal misbehaves", || {
            t.alerts_log().contains(&format!("{}' added", f.display()))
        });
    }
    assert_eq!(rule(&wait_vt(&t, &first)), "87104", "answered once the faults are over");
    wait_until(60, "every verdict", || vt_alerts(&t).iter().filter(|a| rule(a) != "87101").count() >= 6);
    let log = d.stop();
    assert_eq!(vt_alerts(&t).iter().filter(|a| rule(a) == "87101").count(), 1, "one 87101 for the storm");
    assert!(!log.contains("panicked"), "{log}");
    let queued: i64 = t.db().query_row("SELECT count(*) FROM vt_queue", [], |r| r.get(0)).unwrap();
    assert_eq!(queued, 0);
}

#[test]
fn kill_9_with_a_lookup_backlog_loses_no_lookup_and_asks_no_answered_hash_again() {
    let vt = StandIn::start(Reply::Slow(Duration::from_millis(100), Box::new(found(0))));
    let t = tree(&vt, "concurrency = 1");
    let d = Daemon::start(&t);
    let files: Vec<_> = (0..30).map(|i| t.write(&format!("b{i}.bin"), format!("backlog {i}").as_bytes())).collect();
    wait_until(30, "some verdicts", || vt_alerts(&t).len() >= 8);
    d.signal(libc::SIGKILL);
    drop(d);
    let answered: Vec<String> = {
        let db = t.db();
        let mut stmt = db.prepare("SELECT sha256 FROM vt_verdicts").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert!(!answered.is_empty());
    let d = Daemon::start(&t);
    wait_until(60, "the backlog to drain", || {
        t.db().query_row("SELECT count(*) FROM vt_queue", [], |r| r.get::<_, i64>(0)).unwrap() == 0
    });
    d.stop();
    for sha in &answered {
        assert_eq!(vt.asked(sha), 1, "{sha} was answered before the kill and asked again");
    }
    let verdicts: i64 = t.db().query_row("SELECT count(*) FROM vt_verdicts", [], |r| r.get(0)).unwrap();
    assert_eq!(verdicts as usize, files.len(), "every queued lookup completed");
}

/// Each thread of `pid` by name, with its nice value (from /proc).
fn thread_nice(pid: u32) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let (Ok(comm), Ok(stat)) =
            (std::fs::read_to_string(task.path().join("comm")), std::fs::read_to_string(task.path().join("stat")))
        else {
            continue; // the thread ended meanwhile
        };
        // After "(comm)": state is field 3, nice field 19.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let nice = rest.split(' ').nth(16).unwrap().parse().unwrap();
        out.push((comm.trim().to_string(), nice));
    }
    out
}

#[test]
fn lookups_run_at_a_lower_priority_than_fim_work() {
    let vt = StandIn::start(found(0));
    let t = tree(&vt, "");
    let d = Daemon::start(&t);
    let nice_of = |name: &str| {
        let threads = thread_nice(d.pid());
        let nice = threads.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        (nice.unwrap_or_else(|| panic!("no {name} thread in {threads:?}")), threads)
    };
    // The worker lowers its own priority as it starts: give it a moment.
    wait_until(5, "the VirusTotal thread to change its nice value", || nice_of("virustotal").0 != nice_of("writer").0);
    let (writer, threads) = nice_of("writer");
    let (worker, _) = nice_of("virustotal");
    d.stop();
    assert_eq!(worker, (writer + 10).min(19), "the VirusTotal thread is 10 nice levels below the writer: {threads:?}");
}

/// Waits for the VirusTotal thread to lower its priority, stops the daemon, and
/// returns the nice value of every other thread and of the VirusTotal one.
fn nice_values(d: Daemon) -> (Vec<(String, i32)>, i32) {
    let worker = |threads: &[(String, i32)]| threads.iter().find(|(n, _)| n == "virustotal").map(|(_, v)| *v);
    let mut threads = thread_nice(d.pid());
    wait_until(5, "the VirusTotal thread to lower its priority", || {
        threads = thread_nice(d.pid());
        let fim = threads.iter().find(|(n, _)| n == "writer").map(|(_, v)| *v);
        worker(&threads).is_some() && worker(&threads) != fim
    });
    d.stop();
    let vt = worker(&threads).unwrap();
    (threads.into_iter().filter(|(n, _)| n != "virustotal").collect(), vt)
}

#[test]
fn process_priority_sets_the_nice_value_of_the_fim_threads_and_the_worker_stays_10_below() {
    let vt = StandIn::start(found(0));
    let t = tree(&vt, "");
    let text = std::fs::read_to_string(t.config()).unwrap();
    t.write_config(&text.replace("hostname = \"testhost\"\n", "hostname = \"testhost\"\nprocess_priority = 5\n"));
    let (fim, worker) = nice_values(Daemon::start(&t));
    for name in ["fimvt", "writer", "checker-0", "alert-sync"] {
        assert!(fim.iter().any(|(n, _)| n == name), "no {name} thread in {fim:?}");
    }
    assert!(fim.iter().all(|(_, nice)| *nice == 5), "every FIM thread at nice 5: {fim:?}");
    assert_eq!(worker, 15, "the VirusTotal thread 10 levels below");
}

#[test]
fn an_ossec_conf_without_process_priority_runs_at_wazuh_s_default_nice_10() {
    // Wazuh's syscheckd default: <process_priority>10</process_priority>.
    let vt = StandIn::start(found(0));
    let t = Tree::new();
    t.write_config(&format!(
        "<ossec_config>\n<syscheck><directories realtime=\"yes\">{}</directories></syscheck>\n\
         <integration><name>virustotal</name><api_key>{KEY}</api_key><hook_url>{}</hook_url></integration>\n\
         </ossec_config>\n",
        t.root().display(),
        vt.url()
    ));
    let (fim, worker) = nice_values(Daemon::start(&t));
    assert!(fim.iter().any(|(n, _)| n == "writer"), "{fim:?}");
    assert!(fim.iter().all(|(_, nice)| *nice == 10), "every FIM thread at nice 10: {fim:?}");
    assert_eq!(worker, 19, "the VirusTotal thread 10 levels below, capped at 19");
}
