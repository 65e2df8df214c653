//! The command line as an operator meets it: configuration errors that point at
//! the file, line and key; `check-config`; the schema-version guard; the lock.

use crate::util::{Tree, fimvt};

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configs_stop_fimvt_naming_file_line_and_key() {
    let cases = [
        ("[general]\ndata_dir = \"var\"\ncolour = \"blue\"\n[[directories]]\npath = \"watched\"\n", ":3", "colour"),
        ("[[directories]]\npath = \"watched\"\nrealtime = \"yes\"\n", ":3", "realtime"),
        ("[[directories]]\npath = \"watched\"\n[scan]\nfrequency = \"soon\"\n", ":4", "scan.frequency"),
        // A path that is not a folder (a missing one is monitored once it appears).
        ("[[directories]]\npath = \"fimvt.toml\"\n", ":2", "directories[0].path"),
        ("[[directories]]\npath = \"watched\"\nignore = [\"[unclosed\"]\n", ":3", "directories[0].ignore[0]"),
        ("[[directories]]\npath = \"watched\"\nrestrict = \"(\"\n", ":3", "directories[0].restrict"),
        ("[[directories]]\npath = \"watched\"\nrecursion_level = 100000\n", ":3", "directories[0].recursion_level"),
        ("[[directories]\npath = \"watched\"\n", ":1", ""),
    ];
    for (text, line, key) in cases {
        let t = Tree::new();
        t.write_config(text);
        let cfg = t.config();
        for cmd in ["scan", "check-config"] {
            let out = fimvt(&[cmd, "--config", cfg.to_str().unwrap()]);
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(2), "{cmd} with {text:?}: {err}");
            assert!(err.contains(&format!("{}{line}", cfg.display())), "file and line missing for {text:?}: {err}");
            assert!(err.contains(key), "key {key:?} missing: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
        assert!(!t.data("fimvt.db").exists(), "nothing is written on a bad config");
    }
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = fimvt(&["scan", "--config", "/nonexistent/fimvt.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("/nonexistent/fimvt.toml"), "{}", stderr_of(&out));
}

#[test]
fn check_config_prints_effective_settings_with_the_key_masked() {
    let t = Tree::new();
    let text = std::fs::read_to_string(t.config()).unwrap();
    t.write_config(&format!("{text}[virustotal]\nenabled = true\napi_key = \"0123456789abcdef-very-secret\"\n"));
    let out = fimvt(&["check-config", "--config", t.config().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("very-secret") && !stderr_of(&out).contains("very-secret"), "{stdout}");
    assert!(stdout.contains("api_key = \"****"), "{stdout}");
    assert!(stdout.contains(&format!("path = \"{}\"", t.root().display())), "paths are shown resolved: {stdout}");
    assert!(stdout.contains("recursion_level = 256") && stdout.contains("frequency = \"12h\""), "{stdout}");
}

#[test]
fn a_database_from_a_newer_fimvt_is_refused() {
    let t = Tree::new();
    t.scan();
    let conn = rusqlite::Connection::open(t.data("fimvt.db")).unwrap();
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v as usize, fimvt::store::MIGRATIONS.len(), "a fresh database carries the latest schema");
    conn.pragma_update(None, "user_version", v + 1).unwrap();
    drop(conn);
    let out = fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("newer fimvt"), "{}", stderr_of(&out));
}

#[test]
fn a_second_writer_on_the_same_data_dir_is_refused() {
    let t = Tree::new();
    t.scan();
    // Hold the lock as a running fimvt does.
    let lock = fimvt::lock::DataDirLock::acquire(&t.data("")).unwrap();
    let out = fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("already using data_dir"), "{}", stderr_of(&out));
    drop(lock);
    t.scan();
}

#[test]
fn created_files_are_not_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let t = Tree::new();
    t.write("f", b"1");
    t.scan();
    t.write("g", b"2");
    t.scan();
    for name in ["fimvt.db", "alerts.log", "alerts.json", "fimvt.lock"] {
        let mode = std::fs::metadata(t.data(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "{name} is readable by others: {mode:o}");
    }
}

#[test]
fn the_sample_ossec_conf_runs_and_names_what_it_does_not_use() {
    // The shipped sample, its one folder (the seed's /media/user/software) moved
    // into a temporary folder, which a normal user can create.
    let dir = tempfile::tempdir().unwrap();
    let folder = std::fs::canonicalize(dir.path()).unwrap().join("software");
    std::fs::create_dir(&folder).unwrap();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sample-config/ossec.conf")).unwrap();
    assert!(text.contains(">/media/user/software</directories>"), "{text}");
    let sample = dir.path().join("ossec.conf");
    std::fs::write(&sample, text.replace("/media/user/software", folder.to_str().unwrap())).unwrap();
    let sample = sample.to_str().unwrap();
    let out = fimvt(&["check-config", "--config", sample]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), stderr_of(&out));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(&format!("path = \"{}\"\nrealtime = true", folder.display())), "{stdout}");
    assert!(stdout.contains("frequency = \"12h\""), "{stdout}");
    assert!(stdout.contains("ignore_regex = [\"(?i:\\\\.part$|\\\\.crdownload$)\"]"), "{stdout}");
    assert!(stdout.contains("enabled = true") && !stdout.contains("API_KEY"), "{stdout}");
    for unsupported in ["<group>", "<alert_format>"] {
        assert!(stderr.contains(unsupported), "{unsupported} is not reported:\n{stderr}");
    }
    assert!(
        stderr.contains("<alert_new_files>yes</alert_new_files>: ignored, as Wazuh 4.x ignores it"),
        "alert_new_files is not explained:\n{stderr}"
    );
    // And it runs: a scan with a data folder of our own.
    let data = tempfile::tempdir().unwrap();
    let out = fimvt(&["scan", "--config", sample, "--data-dir", data.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("baseline scan complete"));
    assert!(data.path().join("fimvt.db").exists());
}

#[test]
fn a_broken_ossec_conf_is_refused_with_its_line() {
    let t = Tree::new();
    let path = t.dir.path().join("ossec.conf");
    std::fs::write(
        &path,
        "<ossec_config>\n  <syscheck>\n    <frequency>often</frequency>\n  </syscheck>\n</ossec_config>\n",
    )
    .unwrap();
    let out = fimvt(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains(&format!("{}:3: syscheck.frequency", path.display())), "{err}");
    std::fs::write(&path, "<ossec_config>\n  <syscheck>\n    <directories>/tmp</directories>\n").unwrap();
    let out = fimvt(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("not closed"), "{}", stderr_of(&out));
}

#[test]
fn an_api_key_in_a_world_readable_config_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let t = Tree::new();
    let text = std::fs::read_to_string(t.config()).unwrap();
    t.write_config(&format!("{text}[virustotal]\nenabled = true\napi_key = \"k-123\"\n"));
    std::fs::set_permissions(t.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = fimvt(&["check-config", "--config", t.config().to_str().unwrap()]);
    assert!(stderr_of(&out).contains("readable by every user"), "{}", stderr_of(&out));
    std::fs::set_permissions(t.config(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = fimvt(&["check-config", "--config", t.config().to_str().unwrap()]);
    assert!(!stderr_of(&out).contains("readable by every user"));
}

#[test]
fn a_scan_shows_progress_on_a_terminal_only() {
    let t = Tree::new();
    for i in 0..500 {
        t.write(&format!("d{}/f{i}", i % 5), format!("{i}").as_bytes());
    }
    // `script` gives fimvt a terminal, as an operator's shell would.
    let cmd = format!("{} scan --config {}", env!("CARGO_BIN_EXE_fimvt"), t.config().display());
    let out =
        std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("scanning:") && screen.contains("files"), "{screen}");
    assert!(screen.contains("baseline scan complete: 500 files"), "{screen}");
    // Not a terminal: no bar in the output.
    let out = fimvt(&["scan", "--config", t.config().to_str().unwrap()]);
    let all = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr_of(&out);
    assert!(!all.contains("scanning:") && !all.contains('\r'), "{all}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    use std::os::unix::fs::PermissionsExt;
    let t = Tree::new();
    // A key in a world-readable file: a warning is certain to be logged.
    t.write_config(&format!("{}[virustotal]\napi_key = \"k\"\n", std::fs::read_to_string(t.config()).unwrap()));
    std::fs::set_permissions(t.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = t.config();
    let out = fimvt(&["--log-format", "json", "scan", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success());
    let err = stderr_of(&out);
    let lines: Vec<serde_json::Value> =
        err.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().any(|v| v["level"] == "WARN"
        && v["fields"]["message"].as_str().is_some_and(|m| m.contains("readable by every user"))));
}

#[test]
fn an_ossec_conf_listing_a_folder_twice_uses_the_later_entry_and_reads_escaped_commas() {
    // As Wazuh (wazuh-qa's ossec_conf_duplicate tests): the same folder twice is
    // no error, and the later entry's options apply. `\,` is a comma in a path.
    let t = Tree::new();
    let dir = t.root();
    let comma = dir.parent().unwrap().join("a,b");
    std::fs::create_dir(&comma).unwrap();
    let comma_escaped = comma.display().to_string().replace(',', "\\,");
    let conf = t.ossec_conf(&format!(
        "<directories realtime=\"no\" recursion_level=\"1\">{d}</directories>\n\
         <directories realtime=\"yes\">{d}/,{comma_escaped}</directories>\n",
        d = dir.display()
    ));
    let out = t.fimvt_ossec("check-config", &conf);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), stderr_of(&out));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.matches(&format!("path = \"{}\"", dir.display())).count(), 1, "{stdout}");
    assert!(stdout.contains(&format!("path = \"{}\"\nrealtime = true", dir.display())), "{stdout}");
    assert!(stdout.contains(&format!("path = \"{}\"", comma.display())), "{stdout}");
    assert!(stderr.contains("listed again; this later entry's settings apply"), "{stderr}");
}

#[test]
fn alert_new_files_no_in_an_ossec_conf_is_ignored_as_wazuh_4_ignores_it() {
    // Wazuh's syscheckd has not read <alert_new_files> since 3.11: a new file in a
    // monitored folder raises 554 whatever it says. The operator is told why.
    let t = Tree::new();
    let conf = t.ossec_conf(&format!(
        "<alert_new_files>no</alert_new_files>\n<directories>{}</directories>\n",
        t.root().display()
    ));
    let scan = || {
        let out = t.fimvt_ossec("scan", &conf);
        assert!(out.status.success(), "{}", stderr_of(&out));
        stderr_of(&out)
    };
    let stderr = scan();
    assert!(
        stderr.contains(
            "<alert_new_files>no</alert_new_files>: ignored, as Wazuh 4.x ignores it; new files always raise 554"
        ),
        "{stderr}"
    );
    t.write("new.txt", b"new");
    scan();
    let log = t.alerts_log();
    assert!(log.contains("Rule: 554 (level 5)") && log.contains("new.txt' added"), "{log}");
}

#[test]
fn tags_are_read_from_an_ossec_conf_as_wazuh_reads_them_and_checked_in_toml() {
    // Wazuh's syscheck-config.c strips spaces, '!' and ':' from `tags`, then its
    // alert writers split on commas, dropping empty ones.
    let t = Tree::new();
    let conf =
        t.ossec_conf(&format!("<directories tags=\"tag1, tag:2,,!tag3\">{}</directories>\n", t.root().display()));
    let out = t.fimvt_ossec("check-config", &conf);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), stderr_of(&out));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("tags = [\"tag1\", \"tag2\", \"tag3\"]"), "{stdout}");
    assert!(!stderr.contains("tags"), "tags are supported, not warned about:\n{stderr}");

    t.write_config("[[directories]]\npath = \"watched\"\ntags = [\"ok\", \"two words\"]\n");
    let out = fimvt(&["check-config", "--config", t.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains(":3: directories[0].tags[1]: \"two words\" is not a tag"), "{err}");
}

#[test]
fn process_priority_is_shown_and_checked_in_ossec_conf_and_toml() {
    let t = Tree::new();
    let check = |path: &std::path::Path| fimvt(&["check-config", "--config", path.to_str().unwrap()]);
    let out = check(&t.config());
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("# process_priority not set"));

    let conf = t.dir.path().join("ossec.conf");
    let ossec = |extra: &str| {
        let text = format!(
            "<ossec_config>\n<syscheck>\n<directories>{}</directories>\n{extra}</syscheck>\n</ossec_config>\n",
            t.root().display()
        );
        std::fs::write(&conf, text).unwrap();
        check(&conf)
    };
    let out = ossec("");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\nprocess_priority = 10\n"), "Wazuh's default");
    let out = ossec("<process_priority>-5</process_priority>\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\nprocess_priority = -5\n"));
    assert!(!stderr_of(&out).contains("process_priority"), "supported, not warned about: {}", stderr_of(&out));
    // Wazuh refuses to start on a value outside -20..19.
    let out = ossec("<process_priority>20</process_priority>\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains(":4: syscheck.process_priority: out of range"), "{}", stderr_of(&out));

    t.write_config("[general]\nprocess_priority = -21\n[[directories]]\npath = \"watched\"\n");
    let out = check(&t.config());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains(":2: general.process_priority: -21 is out of range"), "{}", stderr_of(&out));
}

/// `fimvt` with extra environment variables.
fn fimvt_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fimvt"));
    cmd.args(args).env_remove("FIMVT_VT_API_KEY").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run fimvt")
}

#[test]
fn environment_variables_in_ossec_conf_paths_and_ignores_expand_as_in_wazuh() {
    // Wazuh on Linux: an entry `$NAME` is the variable's value, `:` separating
    // several paths; an unset one is reported and nothing is monitored for it.
    let t = Tree::new();
    let (a, b) = (t.root(), t.dir.path().canonicalize().unwrap().join("other"));
    std::fs::create_dir(&b).unwrap();
    let conf = t.dir.path().join("ossec.conf");
    std::fs::write(
        &conf,
        "<ossec_config><syscheck>\n\
         <directories>$FIMVT_TEST_DIR</directories>\n\
         <directories>$FIMVT_TEST_UNSET_DIR</directories>\n\
         <ignore>$FIMVT_TEST_IGNORE</ignore>\n\
         </syscheck></ossec_config>\n",
    )
    .unwrap();
    let data = t.dir.path().join("var");
    let dirs = format!("{}:{}", a.display(), b.display());
    let ignore = a.join("skip");
    let env = [("FIMVT_TEST_DIR", dirs.as_ref()), ("FIMVT_TEST_IGNORE", ignore.as_os_str())];
    let scan = || {
        let out =
            fimvt_with_env(&["scan", "--config", conf.to_str().unwrap(), "--data-dir", data.to_str().unwrap()], &env);
        assert!(out.status.success(), "{}", stderr_of(&out));
        stderr_of(&out)
    };
    let stderr = scan();
    assert!(
        stderr.contains("$FIMVT_TEST_UNSET_DIR: could not expand the environment variable FIMVT_TEST_UNSET_DIR"),
        "{stderr}"
    );
    t.write("new.txt", b"a");
    t.write("skip/hidden.txt", b"b");
    std::fs::write(b.join("also.txt"), b"c").unwrap();
    scan();
    let log = t.alerts_log();
    assert!(log.contains(&format!("File '{}' added", a.join("new.txt").display())), "{log}");
    assert!(log.contains(&format!("File '{}' added", b.join("also.txt").display())), "{log}");
    assert!(!log.contains("hidden.txt"), "the ignored variable's path is ignored:\n{log}");
}

#[test]
fn a_toml_folder_path_or_ignore_may_be_an_environment_variable() {
    let t = Tree::new();
    let (a, b) = (t.root(), t.dir.path().canonicalize().unwrap().join("other"));
    std::fs::create_dir(&b).unwrap();
    t.write_config(
        "[general]\ndata_dir = \"var\"\n[[directories]]\npath = \"$FIMVT_TEST_DIR\"\nrealtime = false\n\
         ignore = [\"$FIMVT_TEST_IGNORE\"]\n",
    );
    let dirs = format!("{}:{}", a.display(), b.display());
    let ignore = a.join("skip");
    let env = [("FIMVT_TEST_DIR", dirs.as_ref()), ("FIMVT_TEST_IGNORE", ignore.as_os_str())];
    let out = fimvt_with_env(&["check-config", "--config", t.config().to_str().unwrap()], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr_of(&out));
    for d in [&a, &b] {
        assert!(stdout.contains(&format!("path = \"{}\"\nrealtime = false", d.display())), "{stdout}");
    }
    assert_eq!(stdout.matches(&format!("{}/**", ignore.display())).count(), 2, "each entry ignores it: {stdout}");
    let out = fimvt_with_env(&["check-config", "--config", t.config().to_str().unwrap()], &[]);
    assert!(!out.status.success(), "an unset variable leaves nothing to monitor");
    assert!(
        stderr_of(&out).contains("could not expand the environment variable FIMVT_TEST_DIR"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn scan_time_and_day_are_shown_by_check_config_from_toml_and_ossec_conf() {
    let t = Tree::new();
    let check = |path: &std::path::Path| {
        let out = fimvt(&["check-config", "--config", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        (String::from_utf8_lossy(&out.stdout).into_owned(), stderr_of(&out))
    };
    let (stdout, _) = check(&t.config());
    assert!(stdout.contains("frequency = \"12h\"\n# time and day not set"), "{stdout}");

    let toml = std::fs::read_to_string(t.config()).unwrap();
    t.write_config(&format!("{toml}[scan]\ntime = \"22:00\"\nday = \"saturday\"\n"));
    let (stdout, _) = check(&t.config());
    assert!(stdout.contains("frequency = \"7d\"\ntime = \"22:00\"\nday = \"saturday\"\n"), "{stdout}");

    // Wazuh's own example forms; the <frequency> beside them is replaced by a week.
    let conf = t.ossec_conf(&format!(
        "<frequency>3600</frequency>\n<scan_time>10pm</scan_time>\n<scan_day>sat,sun</scan_day>\n\
         <directories>{}</directories>\n",
        t.root().display()
    ));
    let (stdout, stderr) = check(&conf);
    assert!(stdout.contains("frequency = \"7d\"\ntime = \"22:00\"\nday = \"sunday,saturday\"\n"), "{stdout}");
    assert!(!stderr.contains("scan_time") && !stderr.contains("scan_day"), "supported, not warned about:\n{stderr}");
    assert!(stderr.contains("frequency 1h is not used"), "{stderr}");

    let conf =
        t.ossec_conf(&format!("<directories>{}</directories>\n<scan_time>10:30 pm</scan_time>\n", t.root().display()));
    let (stdout, _) = check(&conf);
    assert!(stdout.contains("time = \"22:30\"\n# day not set: every day\n"), "{stdout}");
    let conf =
        t.ossec_conf(&format!("<directories>{}</directories>\n<scan_time>noon</scan_time>\n", t.root().display()));
    let out = fimvt(&["check-config", "--config", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("ossec.conf:3: syscheck.scan_time: \"noon\" is not a time"), "{err}");
}

#[test]
fn max_files_per_second_is_shown_by_check_config_from_toml_and_ossec_conf() {
    let t = Tree::new();
    let check = |path: &std::path::Path| {
        let out = fimvt(&["check-config", "--config", path.to_str().unwrap()]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), stderr_of(&out))
    };
    let (_, stdout, _) = check(&t.config());
    assert!(stdout.contains("\nmax_files_per_second = 0 # no limit\n"), "Wazuh's default:\n{stdout}");
    let toml = std::fs::read_to_string(t.config()).unwrap();
    t.write_config(&format!("{toml}[scan]\nmax_files_per_second = -1\n"));
    let (code, _, stderr) = check(&t.config());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("fimvt.toml:8: scan.max_files_per_second: -1 is out of range"), "{stderr}");

    let dirs = format!("<directories>{}</directories>\n", t.root().display());
    let conf = t.ossec_conf(&format!("{dirs}<max_files_per_second>250</max_files_per_second>\n"));
    let (code, stdout, stderr) = check(&conf);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\nmax_files_per_second = 250\n"), "{stdout}");
    assert!(!stderr.contains("max_files_per_second"), "supported, not warned about:\n{stderr}");
    let conf = t.ossec_conf(&format!("{dirs}<max_files_per_second>fast</max_files_per_second>\n"));
    let (code, _, stderr) = check(&conf);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("ossec.conf:3: syscheck.max_files_per_second: expected a whole number"), "{stderr}");
}
