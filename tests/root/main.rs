//! The tests only root can run: a file given to another owner, a device node.
//! Each fails at once without root instead of passing untested. Not built by a
//! plain `cargo test`; `.ci/run` (as root) runs them with
//! `cargo test --locked --features root-tests --test root`.

use std::os::unix::ffi::OsStrExt;

// The helpers of tests/it, shared; this binary uses only some of them.
#[allow(dead_code)]
#[path = "../it/util.rs"]
mod util;

use util::Tree;

/// Fails the test at once unless it runs as root.
fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(euid == 0, "run as root: {what}, not as uid {euid} (.ci/run runs these as root)");
}

#[test]
fn owner_change_is_reported() {
    require_root("chown to another user");
    let t = Tree::new();
    let f = t.write("owned", b"x");
    t.scan();
    std::os::unix::fs::chown(&f, Some(4242), Some(4343)).unwrap();
    t.scan();
    let alerts = t.alerts_json();
    assert_eq!(alerts.len(), 1);
    let s = &alerts[0]["syscheck"];
    assert_eq!(s["uid_before"], "0");
    assert_eq!(s["uid_after"], "4242");
    assert_eq!(s["gid_after"], "4343");
    let changed = s["changed_attributes"].as_array().unwrap();
    assert!(changed.contains(&"uid".into()) && changed.contains(&"gid".into()), "{changed:?}");
    assert!(t.alerts_log().contains("Ownership was '0', now it is '4242'\n"));
}

#[test]
fn a_device_node_is_skipped_without_hanging() {
    require_root("mknod of a character device");
    let t = Tree::new();
    t.write("plain", b"1");
    let dev = std::ffi::CString::new(t.path("zero").as_os_str().as_bytes()).unwrap();
    // SAFETY: valid path; char device 1:5 is /dev/zero, endless if ever read.
    assert_eq!(unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 5)) }, 0);
    let summary = t.scan();
    assert!(summary.contains(": 1 files"), "{summary}");
}
