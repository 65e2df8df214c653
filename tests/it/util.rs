//! Test helpers: a temporary monitored tree with its own config and data folder,
//! a runner for the built `fimvt` binary, readers for its outputs, and the ways
//! to get privileges without root (a user and mount namespace) or to lose them
//! (a user namespace mapping no one). Shared by both test binaries: `tests/it` and
//! the root-only `tests/root`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    /// A tree with an empty `watched/` folder and a config monitoring it.
    pub fn new() -> Tree {
        Tree::with_settings("")
    }

    /// As `new`, with extra lines appended to the `[[directories]]` block.
    pub fn with_settings(extra: &str) -> Tree {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("watched")).unwrap();
        let t = Tree { dir };
        t.write_config(&format!(
            "[general]\ndata_dir = \"var\"\nhostname = \"testhost\"\n[[directories]]\npath = \"watched\"\n{extra}\n"
        ));
        t
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config(), text).unwrap();
    }

    /// Sets `[virustotal] requests_per_minute` in the config.
    pub fn with_vt_rate(self, per_minute: u32) -> Tree {
        let text = std::fs::read_to_string(self.config()).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("requests_per_minute") {
                    format!("requests_per_minute = {per_minute}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        self.write_config(&text.join("\n"));
        self
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("fimvt.toml")
    }

    pub fn root(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path().join("watched")).unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join("var").join(name)
    }

    /// Writes a file under `watched/`, creating its folders.
    pub fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn fimvt(&self, args: &[&str]) -> Output {
        fimvt(args)
    }

    /// Writes `ossec.conf` beside the TOML with `syscheck` as its `<syscheck>`
    /// block, and returns its path.
    pub fn ossec_conf(&self, syscheck: &str) -> PathBuf {
        let conf = self.dir.path().join("ossec.conf");
        std::fs::write(&conf, format!("<ossec_config><syscheck>\n{syscheck}</syscheck></ossec_config>\n")).unwrap();
        conf
    }

    /// `fimvt COMMAND` on an ossec.conf, with this tree's data folder (`var`).
    pub fn fimvt_ossec(&self, command: &str, conf: &Path) -> Output {
        let data = self.dir.path().join("var");
        fimvt(&[command, "--config", conf.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
    }

    /// `fimvt scan` on this tree; panics with its output unless it succeeds.
    pub fn scan(&self) -> String {
        let out = fimvt(&["scan", "--config", self.config().to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "scan failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    /// alerts.log up to its last complete line (the daemon may be mid-write).
    pub fn alerts_log(&self) -> String {
        complete_lines(&self.data("alerts.log"))
    }

    /// Every complete alerts.json line, parsed; a line that does not parse fails the test.
    pub fn alerts_json(&self) -> Vec<serde_json::Value> {
        let text = complete_lines(&self.data("alerts.json"));
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"))).collect()
    }

    /// A read-only connection to the database, as a user's sqlite3 would open it.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(self.data("fimvt.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
    }
}

/// A file's text up to its last newline: a reader tailing a file the daemon is
/// appending to sees whole lines, as Filebeat would.
fn complete_lines(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8(bytes[..end].to_vec()).expect("alerts are UTF-8")
}

pub fn fimvt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fimvt"))
        .args(args)
        .env_remove("FIMVT_VT_API_KEY")
        .env_remove("RUST_LOG")
        .output()
        .expect("run fimvt")
}

/// `fimvt` with no privilege over the test's files, whoever runs the tests: in a
/// user namespace of its own that maps no user, it keeps its uid for the
/// permission checks but no capability (not even root's) applies to files
/// outside, so a mode-000 file or folder is as unreadable to it as to any user.
pub fn fimvt_unprivileged(args: &[&str]) -> Output {
    Command::new(system_tool("unshare"))
        .arg("--user")
        .arg(env!("CARGO_BIN_EXE_fimvt"))
        .args(args)
        .env_remove("FIMVT_VT_API_KEY")
        .env_remove("RUST_LOG")
        .output()
        .expect("run fimvt through unshare (util-linux)")
}

/// The path of a system tool: on PATH, else in /usr/sbin or /sbin, where Debian
/// keeps administration tools (logrotate, say) out of a normal user's PATH.
pub fn system_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH, in /usr/sbin or in /sbin: install it (see .ci/run)"))
}

/// Runs `body` as root of a user and mount namespace of its own, where it can
/// mount file systems without being root: the test binary runs itself again
/// under `unshare --user --map-root-user --mount` with only the test `name`
/// (its path as `cargo test` lists it) selected, and `body` runs there. What
/// `body` starts (a daemon, `mount`) runs there too and sees the same mounts;
/// they vanish when it exits. Root takes the same path.
pub fn in_mount_namespace(name: &str, body: impl FnOnce()) {
    const INSIDE: &str = "FIMVT_TEST_IN_MOUNT_NAMESPACE";
    if std::env::var_os(INSIDE).is_some_and(|n| n == name) {
        body();
    } else {
        let out = Command::new(system_tool("unshare"))
            .args(["--user", "--map-root-user", "--mount"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads=1"])
            .env(INSIDE, name)
            .output()
            .expect("run the test through unshare (util-linux)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("test result: ok. 1 passed"),
            "{name} run again in a user and mount namespace (`unshare --user --map-root-user --mount`, which \
             needs unprivileged user namespaces) did not pass as the one test of that name: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A tmpfs mounted for a test (inside `in_mount_namespace`); unmounted when
/// dropped, so the test's temporary folder can be removed.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs with `options` (`size=1m,mode=0750`) on the folder `at`.
    pub fn mount(at: &Path, options: &str) -> Tmpfs {
        let status = Command::new(system_tool("mount")).args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(at).status();
        assert!(status.as_ref().is_ok_and(|s| s.success()), "mount a tmpfs on {}: {status:?}", at.display());
        Tmpfs(at.to_path_buf())
    }

    /// Gives the mounted tmpfs a new size, keeping what it holds.
    pub fn resize(&self, size: &str) {
        // The source is named: without it mount(8) would add the options it reads
        // in /proc/self/mountinfo, whose uid= and gid= a user namespace cannot map.
        let status = Command::new(system_tool("mount"))
            .args(["-o", &format!("remount,size={size}"), "tmpfs"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "resize the tmpfs on {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new(system_tool("umount")).arg("-l").arg(&self.0).status();
    }
}

/// Runs an independent tool (`sha256sum`, `md5sum`, `sha1sum`) on a file.
pub fn external_digest(tool: &str, path: &Path) -> String {
    let out = Command::new(tool).arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `secs`.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A running `fimvt run` on a tree; killed if a test fails before stopping it.
pub struct Daemon {
    child: std::cell::RefCell<std::process::Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `fimvt run` and waits until its start-up scan is done.
    pub fn start(t: &Tree) -> Daemon {
        let d = Daemon::spawn(t);
        d.wait_log(30, "scan complete");
        d
    }

    /// Starts `fimvt run` without waiting for anything.
    pub fn spawn(t: &Tree) -> Daemon {
        Daemon::spawn_via(t, &[], &[])
    }

    /// Starts `fimvt run` with extra environment variables.
    pub fn spawn_with_env(t: &Tree, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn_via(t, &[], env)
    }

    /// Starts `fimvt run` through `wrapper` (a command line that ends by running
    /// the program and arguments appended to it).
    pub fn spawn_via(t: &Tree, wrapper: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = t.dir.path().join(format!(
            "daemon-{}.log",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let mut argv: Vec<&str> = wrapper.to_vec();
        let config = t.config();
        argv.extend([env!("CARGO_BIN_EXE_fimvt"), "run", "--config", config.to_str().unwrap()]);
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .env_remove("FIMVT_VT_API_KEY")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start fimvt run");
        Daemon { child: std::cell::RefCell::new(child), log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `needle` in the log; fails at once if the daemon has exited.
    pub fn wait_log(&self, secs: u64, needle: &str) {
        wait_until(secs, &format!("{needle:?} in the daemon's log"), || {
            if let Ok(Some(status)) = self.child.borrow_mut().try_wait() {
                panic!("fimvt run exited ({status}) before logging {needle:?}:\n{}", self.log());
            }
            self.log().contains(needle)
        });
    }

    pub fn pid(&self) -> u32 {
        self.child.borrow().id()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, sig) }, 0);
    }

    /// Waits up to `secs` for the daemon to exit on its own; fails if it does not.
    pub fn wait_exit(&self, secs: u64) -> std::process::ExitStatus {
        let mut status = None;
        wait_until(secs, "fimvt run to exit", || {
            status = self.child.borrow_mut().try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }

    /// SIGTERM, then waits for a clean exit: all pending work is recorded by then.
    pub fn stop(self) -> String {
        self.signal(libc::SIGTERM);
        let status = self.child.borrow_mut().wait().unwrap();
        let log = self.log();
        assert!(status.success(), "fimvt run exited with {status}:\n{log}");
        assert!(log.contains("stopped cleanly"), "{log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let mut child = self.child.borrow_mut();
        let _ = child.kill();
        let _ = child.wait();
    }
}
