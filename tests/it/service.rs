//! Running as a service: the shipped systemd unit passes `systemd-analyze verify`
//! and keeps its hardening, and the shipped logrotate snippet really rotates a
//! running daemon's alert files (SIGHUP makes it write to the new ones).

use crate::util::{Daemon, Tree, system_tool, wait_until};

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{}/sample-config/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = sample("fimvt.service");
    for directive in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/fimvt",
        "ProtectHome=read-only",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == directive), "{directive} missing");
    }
    // Verify it with this build's binary in place of /usr/local/bin/fimvt.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fimvt.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/fimvt", env!("CARGO_BIN_EXE_fimvt"))).unwrap();
    let out = std::process::Command::new(system_tool("systemd-analyze")).arg("verify").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_logrotate_snippet_rotates_a_running_daemon() {
    let t = Tree::with_settings("\n[realtime]\nsettle = \"100ms\"");
    let d = Daemon::start(&t);
    t.write("before.txt", b"1");
    wait_until(30, "the first alert", || t.alerts_log().contains("before.txt' added"));
    // The shipped snippet, pointed at this daemon's files and process.
    let conf = sample("fimvt.logrotate")
        .replace("/var/lib/fimvt", t.data("").to_str().unwrap().trim_end_matches('/'))
        .replace("systemctl kill --signal=HUP fimvt.service", &format!("kill -HUP {}", d.pid()))
        .replace("create 0640 root root", "create 0640");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fimvt"), conf).unwrap();
    let out = std::process::Command::new(system_tool("logrotate"))
        .args(["--force", "--state"])
        .arg(dir.path().join("state"))
        .arg(dir.path().join("fimvt"))
        .output()
        .expect("logrotate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    d.wait_log(30, "SIGHUP");
    t.write("after.txt", b"2");
    wait_until(30, "the alert in the new alerts.log", || t.alerts_log().contains("after.txt' added"));
    d.stop();
    let rotated = std::fs::read_to_string(t.data("alerts.log.1")).unwrap();
    assert!(rotated.contains("before.txt' added") && !rotated.contains("after.txt"));
    assert!(!t.alerts_log().contains("before.txt"));
}
