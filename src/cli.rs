//! The command line: clap definitions, logging set-up, and one function per
//! command. Commands only wire library pieces together; they hold no logic of
//! their own beyond reporting.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::os::unix::fs::DirBuilderExt as _;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::alert::{AlertSink, Identity};
use crate::config::{Config, ConfigError};
use crate::fim::ScanMode;
use crate::record::Recorder;
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

    #[command(subcommand)]
    pub command: Command,
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
}

/// Exit status for usage and configuration errors, as sysexits' EX_CONFIG is 78
/// but most tools (and systemd units) expect a small number: 2.
const EXIT_CONFIG: u8 = 2;

pub fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<ConfigError>().is_some() { ExitCode::from(EXIT_CONFIG) } else { ExitCode::FAILURE }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Scan { config } => scan(&config),
        Command::Run { config } => run_daemon(&config),
        Command::CheckConfig { config } => {
            let cfg = Config::load(&config)?;
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
    crate::lock::DataDirLock::acquire(dir)
}

/// Opens the database and the alert files of `cfg`'s data folder.
fn open_recorder(cfg: &Config) -> anyhow::Result<Recorder> {
    let db = cfg.db_path();
    let store = Store::open(&db).with_context(|| format!("database {}", db.display()))?;
    let sink = AlertSink::open(&cfg.general.data_dir, Identity::from_config(&cfg.general))
        .with_context(|| format!("alerts in {}", cfg.general.data_dir.display()))?;
    Ok(Recorder::new(store, sink))
}

fn run_daemon(config: &Path) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let _lock = prepare_data_dir(&cfg)?;
    let rec = open_recorder(&cfg)?;
    crate::daemon::run(cfg, config.to_path_buf(), rec)?;
    Ok(ExitCode::SUCCESS)
}

fn scan(config: &Path) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let _lock = prepare_data_dir(&cfg)?;
    let mut rec = open_recorder(&cfg)?;
    // Lookups found here are queued (or answered from the cache); `fimvt run`
    // asks VirusTotal. Nothing is lost by scanning without the daemon.
    if let crate::virustotal::Status::On(policy, _) = crate::virustotal::status(&cfg) {
        rec.set_virustotal(policy);
    }
    let summary = crate::scan::scan(&cfg, &mut rec, ScanMode::Scheduled, None)?;
    println!("{summary}");
    let queued: u64 = rec.store().vt_queue_depth()?.iter().sum();
    if queued > 0 {
        println!("{queued} VirusTotal lookups queued; `fimvt run` makes them");
    }
    Ok(ExitCode::SUCCESS)
}
