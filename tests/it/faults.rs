//! Hostile and broken file systems: odd names, huge sparse files, sockets,
//! unreadable folders, a planted symlink among fimvt's own files, and a monitored
//! folder that is a mount point (device nodes, which only root can make, are in
//! tests/root). fimvt records what it should, skips what it must, never hangs,
//! and never writes outside its data folder.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use crate::util::{Tmpfs, Tree, fimvt_unprivileged, in_mount_namespace};

#[test]
fn odd_names_are_recorded_and_every_alert_stays_whole() {
    let t = Tree::new();
    t.scan();
    let names: Vec<Vec<u8>> = vec![
        vec![b'n'; 255], // the longest name ext4 allows
        b"it's \"quoted\"".to_vec(),
        b"100% %s%n%x".to_vec(),
        b"\x1b[31mred\x1b[0m".to_vec(),
        b"two\nlines\r\n** Alert 1.1: - ossec,".to_vec(),
        b"tab\there".to_vec(),
        b"\xc3\x28 not utf-8 \xff".to_vec(),
        "\u{202e}gpj.exe".as_bytes().to_vec(), // right-to-left override
    ];
    for n in &names {
        std::fs::write(t.root().join(std::ffi::OsStr::from_bytes(n)), b"x").unwrap();
    }
    let summary = t.scan();
    assert!(summary.contains(&format!("{} added", names.len())), "{summary}");
    let alerts = t.alerts_json();
    assert_eq!(alerts.len(), names.len(), "every alerts.json line parses");
    let log = t.alerts_log();
    assert_eq!(log.lines().filter(|l| l.starts_with("** Alert ")).count(), names.len(), "no forged header");
    assert!(log.lines().all(|l| !l.contains('\x1b') && !l.contains('\r') && !l.contains('\u{202e}')), "{log}");
    let rows: i64 = t.db().query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
    assert_eq!(rows as usize, names.len());
}

#[test]
fn a_4_gib_sparse_file_over_max_file_size_is_recorded_without_reading_it() {
    let t = Tree::new();
    let big = t.path("disk.img");
    std::fs::File::create(&big).unwrap().set_len(4 << 30).unwrap();
    let start = std::time::Instant::now();
    let summary = t.scan();
    assert!(summary.contains("1 files over max_file_size"), "{summary}");
    assert!(start.elapsed() < std::time::Duration::from_secs(20), "it was not read");
    let (size, sha): (i64, Option<String>) =
        t.db().query_row("SELECT size, sha256 FROM files", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((size, sha), (4 << 30, None));
}

#[test]
fn a_socket_is_skipped_without_hanging() {
    let t = Tree::new();
    t.write("plain", b"1");
    let _sock = std::os::unix::net::UnixListener::bind(t.path("a.sock")).unwrap();
    let summary = t.scan();
    assert!(summary.contains(": 1 files"), "{summary}");
}

#[test]
fn an_unreadable_folder_is_reported_but_its_files_are_not_called_deleted() {
    let t = Tree::new();
    t.write("open/a", b"1");
    t.write("locked/b", b"2");
    let scan = |t: &Tree| {
        let out = fimvt_unprivileged(&["scan", "--config", t.config().to_str().unwrap()]);
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (out, err) = scan(&t);
    assert!(out.contains(": 2 files"), "{out}{err}");
    std::fs::set_permissions(t.path("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let (out, err) = scan(&t);
    assert!(out.contains("0 deleted") && out.contains("1 errors"), "{out}{err}");
    assert!(err.contains("locked") && err.contains("keeping its last state"), "{err}");
    std::fs::set_permissions(t.path("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_symlink_planted_among_fimvts_files_is_never_written_through() {
    let t = Tree::new();
    let victim = t.dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::create_dir_all(t.data("")).unwrap();
    std::os::unix::fs::symlink(&victim, t.data("alerts.log")).unwrap();
    t.write("f", b"1");
    let out = t.fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("alerts.log"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn a_monitored_folder_that_is_a_mount_point_is_scanned() {
    in_mount_namespace("faults::a_monitored_folder_that_is_a_mount_point_is_scanned", || {
        let t = Tree::new();
        let _tmpfs = Tmpfs::mount(&t.root(), "size=4m,nodev");
        t.write("on-tmpfs.txt", b"1");
        let summary = t.scan();
        assert!(summary.contains(": 1 files"), "{summary}");
    });
}

#[test]
fn a_symlink_planted_as_the_database_is_refused() {
    let t = Tree::new();
    let victim = t.dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::create_dir_all(t.data("")).unwrap();
    std::os::unix::fs::symlink(&victim, t.data("fimvt.db")).unwrap();
    let out = t.fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn a_data_folder_others_can_write_to_is_refused() {
    let t = Tree::new();
    std::fs::create_dir_all(t.data("")).unwrap();
    std::fs::set_permissions(t.data(""), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = t.fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not writable by group or others"), "{err}");
    std::fs::set_permissions(t.data(""), std::fs::Permissions::from_mode(0o750)).unwrap();
    t.scan();
}
