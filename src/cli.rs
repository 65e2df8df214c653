//! The command line: clap definitions, logging set-up, and one function per
//! command. Commands only wire library pieces together; they hold no logic of
//! their own beyond reporting.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::alert::{AlertSink, Identity};
use crate::config::{Config, ConfigError};
use crate::fim::ScanMode;
use crate::record::Recorder;
use crate::report::UsageError;
use crate::store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "fimvt",
    version,
    about = "File integrity monitor with VirusTotal verdicts and Wazuh-compatible alerts"
)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,

    /// Log lines as text for people, or one JSON object per line for machines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Use this data folder instead of the configuration's `data_dir` (needed
    /// with a Wazuh ossec.conf, which has no such setting).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Watch the monitored folders in real time (the main job); stops on SIGTERM/SIGINT.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Scan every monitored folder once, raise alerts for what changed, and exit.
    Scan {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and print the effective settings.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The timeline of a file or folder (or of everything), newest first.
    History {
        #[arg(long, short)]
        config: PathBuf,
        /// A file, or a folder whose files' history is wanted.
        path: Option<PathBuf>,
        /// Only events since then: a duration back (2h, 7d) or a date (2026-11-27).
        #[arg(long)]
        since: Option<String>,
        /// Only this kind of event.
        #[arg(long, value_parser = ["added", "modified", "deleted"])]
        event: Option<String>,
        /// At most this many events.
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The files on disk now with their VirusTotal verdicts, detected first.
    Verdicts {
        #[arg(long, short)]
        config: PathBuf,
        /// Only files some engine detects.
        #[arg(long)]
        malicious: bool,
        #[arg(long)]
        json: bool,
    },
    /// What fimvt is doing: daemon, files, watches, last scan, VirusTotal state,
    /// queue, request budget, database size. Works whether the daemon runs or not.
    Status {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The VirusTotal verdict for a file, an MD5, SHA-1 or SHA-256: from the
    /// cache, or asked now within the same budget as the daemon.
    /// Exit status: 0 no engine detects it, 3 detected, 4 no verdict to be had.
    Lookup {
        #[arg(long, short)]
        config: PathBuf,
        /// A path, or a hash of a recorded file (any SHA-256 works).
        what: String,
        #[arg(long)]
        json: bool,
    },
}

/// Exit status for usage and configuration errors, as sysexits' EX_CONFIG is 78
/// but most tools (and systemd units) expect a small number: 2.
const EXIT_CONFIG: u8 = 2;

pub fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
}

pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<ConfigError>().is_some() || err.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(EXIT_CONFIG)
    } else {
        ExitCode::FAILURE
    }
}

/// Loads the configuration, applies `--data-dir`, and says what deserves a warning.
fn load(path: &Path, data_dir: Option<&Path>) -> anyhow::Result<Config> {
    let mut cfg = Config::load(path)?;
    if let Some(d) = data_dir {
        cfg.set_data_dir(d);
    }
    for w in cfg.startup_warnings() {
        tracing::warn!("{w}");
    }
    Ok(cfg)
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = cli.data_dir.clone();
    match cli.command {
        Command::Scan { config } => scan(&config, data_dir.as_deref()),
        Command::Run { config } => run_daemon(&config, data_dir.as_deref()),
        Command::History { config, path, since, event, limit, json } => {
            let cfg = load(&config, data_dir.as_deref())?;
            let since = since.map(|s| crate::report::parse_since(&s)).transpose().map_err(UsageError)?;
            let path = path.map(|p| std::path::absolute(&p).unwrap_or(p));
            let path = path.map(|p| std::fs::canonicalize(&p).unwrap_or(p));
            let filter = crate::store::HistoryFilter { path, since, event, limit };
            Ok(ExitCode::from(crate::report::history(&cfg, &filter, json, &mut std::io::stdout().lock())?))
        }
        Command::Verdicts { config, malicious, json } => {
            let cfg = load(&config, data_dir.as_deref())?;
            Ok(ExitCode::from(crate::report::verdicts(&cfg, malicious, json, &mut std::io::stdout().lock())?))
        }
        Command::Status { config, json } => {
            let cfg = load(&config, data_dir.as_deref())?;
            Ok(ExitCode::from(crate::report::status(&cfg, json, &mut std::io::stdout().lock())?))
        }
        Command::Lookup { config, what, json } => {
            let cfg = load(&config, data_dir.as_deref())?;
            Ok(ExitCode::from(crate::report::lookup(&cfg, &what, json, &mut std::io::stdout().lock())?))
        }
        Command::CheckConfig { config } => {
            let cfg = load(&config, data_dir.as_deref())?;
            println!("{cfg}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Creates the data folder (not readable by others) and takes its lock.
pub fn prepare_data_dir(cfg: &Config) -> anyhow::Result<crate::lock::DataDirLock> {
    let dir = &cfg.general.data_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .with_context(|| format!("cannot create data_dir {}", dir.display()))?;
    // fimvt runs as root: a data folder others can write to would let them plant
    // links among its files or swap the folder itself.
    let md = std::fs::symlink_metadata(dir).with_context(|| format!("data_dir {}", dir.display()))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !md.is_dir() || md.uid() != me || md.mode() & 0o022 != 0 {
        anyhow::bail!(
            "data_dir {} must be a folder owned by uid {me} and not writable by group or others \
             (it is owned by uid {}, mode {:o}): fix it with chown and chmod go-w",
            dir.display(),
            md.uid(),
            md.mode() & 0o7777
        );
    }
    crate::lock::DataDirLock::acquire(dir)
}

/// Sets the calling thread's nice value to `process_priority`, before it starts
/// any other: on Linux a nice value is per thread and inherited by the threads a
/// thread starts, so all of fimvt's work runs at it (the VirusTotal worker 10
/// levels below, capped at 19). A failure (a negative value without
/// CAP_SYS_NICE, say) is said and fimvt goes on, as Wazuh's syscheckd does.
fn set_process_priority(cfg: &Config) {
    let Some(nice) = cfg.general.process_priority else {
        return;
    };
    // SAFETY: setpriority takes plain integers; who = 0 is the calling thread.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
        tracing::warn!(
            "cannot set process_priority {nice} (the nice value stays as it was): {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Opens the database and the alert files of `cfg`'s data folder.
fn open_recorder(cfg: &Config) -> anyhow::Result<Recorder> {
    let db = cfg.db_path();
    let store = Store::open(&db).with_context(|| format!("database {}", db.display()))?;
    let sink = AlertSink::open(&cfg.general.data_dir, Identity::from_config(&cfg.general))
        .with_context(|| format!("alerts in {}", cfg.general.data_dir.display()))?;
    let mut rec = Recorder::new(store, sink);
    rec.set_tags(cfg);
    Ok(rec)
}

fn run_daemon(config: &Path, data_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = load(config, data_dir)?;
    let _lock = prepare_data_dir(&cfg)?;
    set_process_priority(&cfg);
    let rec = open_recorder(&cfg)?;
    crate::daemon::run(cfg, config.to_path_buf(), rec)?;
    Ok(ExitCode::SUCCESS)
}

fn scan(config: &Path, data_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = load(config, data_dir)?;
    let _lock = prepare_data_dir(&cfg)?;
    set_process_priority(&cfg);
    let mut rec = open_recorder(&cfg)?;
    // Lookups found here are queued (or answered from the cache); `fimvt run`
    // asks VirusTotal. Nothing is lost by scanning without the daemon.
    if let crate::virustotal::Status::On(policy, _) = crate::virustotal::status(&cfg) {
        rec.set_virustotal(policy);
    }
    let opts = crate::scan::ScanOptions { mode: ScanMode::Scheduled, defer_recent: None, progress: true };
    let summary = crate::scan::scan(&cfg, &mut rec, opts)?;
    println!("{summary}");
    let queued: u64 = rec.store().vt_queue_depth()?.iter().sum();
    if queued > 0 {
        println!("{queued} VirusTotal lookups queued; `fimvt run` makes them");
    }
    Ok(ExitCode::SUCCESS)
}
