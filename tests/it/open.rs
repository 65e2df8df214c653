//! Opening monitored files where openat2 is refused: `fimvt scan` run under a
//! seccomp filter that answers openat2 with an error, as older systemd does for a
//! unit with `RestrictSUIDSGID=yes` and some container profiles do.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use crate::util::{Tree, external_digest};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

fn jump_eq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt, jf, k }
}

/// Runs `fimvt args` with SYS_openat2 answering `errno` and every other system
/// call allowed (a foreign architecture kills the process, loudly).
fn fimvt_without_openat2(errno: i32, args: &[&str]) -> Output {
    // `struct seccomp_data`: nr at offset 0, arch at offset 4.
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let program = [
        stmt(load, 4),
        jump_eq(AUDIT_ARCH, 1, 0),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(load, 0),
        jump_eq(libc::SYS_openat2 as u32, 0, 1),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA)),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fimvt"));
    cmd.args(args).env_remove("FIMVT_VT_API_KEY").env_remove("RUST_LOG");
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes two prctl calls and
    // allocates nothing (the program is built before the fork and only read here).
    unsafe {
        cmd.pre_exec(move || {
            let prog =
                libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
            // A filter may be installed without privileges once no exec can gain any.
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run fimvt under the seccomp filter")
}

#[test]
fn a_scan_where_openat2_is_refused_reads_every_file_one_component_at_a_time() {
    for (errno, name) in [(libc::EPERM, "EPERM"), (libc::ENOSYS, "ENOSYS")] {
        let t = Tree::new();
        let files = ["top.txt", "sub/deeper/nested.bin"];
        t.write(files[0], b"alpha");
        t.write(files[1], &vec![9u8; 100_000]);
        let out = fimvt_without_openat2(errno, &["scan", "--config", t.config().to_str().unwrap()]);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{name}: {stdout}\n{stderr}");
        assert!(stdout.contains("2 files, 100005 bytes") && stdout.contains(" 0 errors"), "{name}: {stdout}\n{stderr}");
        let said = format!("openat2 refused ({name}): opening files one path component at a time with O_NOFOLLOW");
        assert_eq!(stderr.matches(&said).count(), 1, "{name}: the way in use is said once:\n{stderr}");
        let db = t.db();
        for rel in files {
            let p = t.path(rel);
            let sha256: String = db
                .query_row("SELECT sha256 FROM files WHERE path = ?1", [p.to_str().unwrap()], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{name}: {rel} not recorded with its hash ({e}):\n{stderr}"));
            assert_eq!(sha256, external_digest("sha256sum", &p), "{name}: {rel}");
        }
    }
}

#[test]
fn a_scan_where_openat2_works_says_so_once() {
    let t = Tree::new();
    t.write("a.txt", b"alpha");
    t.write("b/c.txt", b"gamma");
    let out = crate::util::fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("opening files with openat2(RESOLVE_NO_SYMLINKS)").count(), 1, "{stderr}");
    assert!(!stderr.contains("openat2 refused"), "{stderr}");
}
