//! Scan progress for people: a progress bar (files, bytes, rate, ETA) when
//! standard error is a terminal, otherwise one log line every few seconds, so a
//! long baseline under systemd still shows it is moving.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Instant,
    files: u64,
    bytes: u64,
    total: Option<u64>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            // Until the walk is over the total is unknown: no length, no ETA.
            bar.set_style(
                ProgressStyle::with_template("{spinner} scanning: {pos} files, {msg} [{elapsed_precise}]")
                    .expect("a valid template"),
            );
            bar
        });
        let now = Instant::now();
        Progress { bar, started: now, last_log: now, files: 0, bytes: 0, total: None }
    }

    /// The walk is done: `files` is the number of files this scan will count.
    pub fn set_total(&mut self, files: u64) {
        self.total = Some(files);
        if let Some(bar) = &self.bar {
            bar.set_length(files);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} scanning: {pos}/{len} files, {msg} [{elapsed_precise}, ETA {eta}]",
                )
                .expect("a valid template"),
            );
        }
    }

    pub fn file_done(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.bytes as f64 / 1e6 / secs;
        if let Some(bar) = &self.bar {
            bar.set_position(self.files);
            if self.files.is_multiple_of(64) {
                bar.set_message(format!("{:.1} MB at {rate:.0} MB/s", self.bytes as f64 / 1e6));
            }
        } else if self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            let of = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
            tracing::info!(
                "scan progress: {}{of} files, {:.1} MB, {rate:.0} MB/s",
                self.files,
                self.bytes as f64 / 1e6
            );
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}
