//! The lookup worker: one thread running a single-threaded tokio runtime. It
//! picks due hashes from the queue (through its own read-only connection), asks
//! VirusTotal within the limiter's budget, a few requests at a time, and sends
//! every answer to the writer. It never writes the database itself; a hash stays
//! "in flight" here until the writer acknowledges it has recorded the answer, but
//! its request slot is free as soon as the answer is in (the writer records
//! answers in groups).
//!
//! It stops asking while a 429 pause lasts and after a 401/403 until the key
//! changes. On shutdown, requests in flight are abandoned: their hashes are still
//! queued in the database and are asked again at the next start.
//!
//! Lookups are background work: the thread runs `WORKER_NICE` nice levels below
//! the rest of fimvt, so a FIM thread that wakes while it runs gets the CPU first.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Settings;
use super::client::{Answer, Client};
use super::limiter::{Limiter, Permit, Spent};
use crate::clock::{unix_now, unix_now_ms};
use crate::config::Secret;
use crate::store::Store;

const IDLE_POLL: Duration = Duration::from_secs(5);

/// How much nicer than the rest of fimvt the worker thread runs. On 2 CPUs, a file
/// change arriving while a lookup's ~0.15 ms of CPU ran could wait for it; at +10
/// the FIM threads take the CPU first. The busy/idle FIM p99 ratio fell by 0.11
/// and 0.17 in two A/B sets (BENCHMARKS.md, fifth pass). Only this thread: the
/// writer records FIM changes too.
const WORKER_NICE: i32 = 10;

/// Answers received but not yet recorded, at most (the writer records them in
/// groups a fraction of a second apart). A backstop: a writer that cannot record
/// says so first (`Link::set_recording`).
const UNRECORDED_MAX: usize = 64;

/// What the worker tells the writer.
#[derive(Debug)]
pub enum VtMsg {
    /// A request is about to be sent (Unix ms): count it against the quota.
    Requested {
        time_ms: i64,
    },
    Answered {
        sha256: String,
        answer: Answer,
        status: u16,
        latency: Duration,
    },
    /// A new key is in use.
    KeyChanged,
}

/// The daemon's grip on the worker.
pub struct Handle {
    link: Link,
    key: KeySetter,
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

/// What the writer uses: wake the worker, acknowledge answers, say whether it
/// can record.
#[derive(Clone)]
pub struct Link {
    wake: Arc<Notify>,
    acks: mpsc::UnboundedSender<String>,
    /// False while the writer cannot record (a full disk): nothing new is asked.
    recording: Arc<AtomicBool>,
    /// True while the worker may be waiting for the queue to have something due.
    wanted: Arc<AtomicBool>,
}

impl Link {
    /// Something was queued: wakes the worker if it is waiting for work. A worker
    /// with every slot busy, or held by the limiter, looks at the queue again when
    /// a slot or the budget frees, so it is left asleep. Waking it for every file
    /// change woke it ~1,350 times a second in a burst of new files with a backlog
    /// queued, for nothing (BENCHMARKS.md, sixth pass).
    pub fn wake(&self) {
        if self.wanted.swap(false, Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// The writer has recorded the answer for `sha256`.
    pub fn ack(&self, sha256: String) {
        let _ = self.acks.send(sha256);
    }

    /// Whether the writer can record; asking resumes when it can again.
    pub fn set_recording(&self, ok: bool) {
        if self.recording.swap(ok, Ordering::SeqCst) != ok && ok {
            self.wake.notify_one();
        }
    }
}

/// Hands the worker a new key (config reloaded with SIGHUP).
#[derive(Clone)]
pub struct KeySetter(Arc<watch::Sender<Secret>>);

impl KeySetter {
    pub fn set(&self, key: Secret) {
        self.0.send_if_modified(|k| {
            let changed = *k != key;
            *k = key;
            changed
        });
    }
}

impl Handle {
    pub fn link(&self) -> Link {
        self.link.clone()
    }

    pub fn key_setter(&self) -> KeySetter {
        self.key.clone()
    }

    pub fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

struct Worker<F: Fn(VtMsg)> {
    settings: Settings,
    client: Arc<Client>,
    store: Store,
    limiter: Limiter,
    inflight: HashSet<String>,
    tasks: JoinSet<(String, Answer, u16, Duration)>,
    /// Which hash each task asks, to free it if the task dies.
    task_hash: std::collections::HashMap<tokio::task::Id, String>,
    out: F,
    paused_until: Option<Instant>,
    bad_key: bool,
    recording: Arc<AtomicBool>,
    /// See `Link::wanted`.
    wanted: Arc<AtomicBool>,
}

/// Starts the worker thread. `out` delivers its messages to the writer.
pub fn spawn(settings: Settings, db: PathBuf, out: impl Fn(VtMsg) + Send + 'static) -> anyhow::Result<Handle> {
    let client =
        Client::new(&settings.base_url, settings.api_key.expose(), settings.connect_timeout, settings.timeout)?;
    let store = Store::open_readonly(&db)?;
    let wake = Arc::new(Notify::new());
    let (acks, acks_rx) = mpsc::unbounded_channel();
    let (key, key_rx) = watch::channel(settings.api_key.clone());
    let (stop, stop_rx) = watch::channel(false);
    let wake2 = wake.clone();
    let recording = Arc::new(AtomicBool::new(true));
    let recording2 = recording.clone();
    let wanted = Arc::new(AtomicBool::new(true));
    let wanted2 = wanted.clone();
    let thread = std::thread::Builder::new().name("virustotal".into()).spawn(move || {
        lower_priority();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        rt.block_on(async move {
            let spent = Spent::load(&store, unix_now_ms()).unwrap_or_else(|e| {
                // Then the minute's and the day's budget start full; VirusTotal's 429 still holds.
                tracing::warn!("cannot read the requests already made: {e}");
                Spent::default()
            });
            let limiter = Limiter::new(settings.requests_per_minute, settings.daily_quota, &spent, unix_now());
            let w = Worker {
                settings,
                client: Arc::new(client),
                store,
                limiter,
                inflight: HashSet::new(),
                tasks: JoinSet::new(),
                task_hash: std::collections::HashMap::new(),
                out,
                paused_until: None,
                bad_key: false,
                recording: recording2,
                wanted: wanted2,
            };
            w.run(wake2, acks_rx, key_rx, stop_rx).await;
        });
    })?;
    Ok(Handle { link: Link { wake, acks, recording, wanted }, key: KeySetter(Arc::new(key)), stop, thread })
}

/// Makes the calling thread `WORKER_NICE` levels nicer (capped at 19 by the
/// kernel). On Linux a nice value is per thread, and raising it needs no privilege.
fn lower_priority() {
    // SAFETY: nice() takes and returns plain integers; errno is this thread's own.
    let failed = unsafe {
        *libc::__errno_location() = 0;
        libc::nice(WORKER_NICE) == -1 && *libc::__errno_location() != 0
    };
    if failed {
        // Lookups still work, at the same priority as everything else.
        tracing::warn!("cannot lower the VirusTotal thread's priority: {}", std::io::Error::last_os_error());
    }
}

impl<F: Fn(VtMsg)> Worker<F> {
    async fn run(
        mut self,
        wake: Arc<Notify>,
        mut acks: mpsc::UnboundedReceiver<String>,
        mut key: watch::Receiver<Secret>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            while let Ok(sha) = acks.try_recv() {
                self.inflight.remove(&sha);
            }
            if *stop.borrow() {
                break;
            }
            let until = self.dispatch();
            // With nothing to do, look again every few seconds anyway: `fimvt lookup`
            // may queue a hash from another process.
            let sleep = tokio::time::sleep_until(until.unwrap_or_else(|| Instant::now() + IDLE_POLL));
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => match done {
                    Ok((id, done)) => {
                        self.task_hash.remove(&id);
                        self.finished(done);
                    }
                    Err(e) => {
                        // A task that died must not hold its hash "in flight" forever.
                        if let Some(sha) = self.task_hash.remove(&e.id()) {
                            tracing::warn!("a VirusTotal request failed unexpectedly: {e}; it will be asked again");
                            self.inflight.remove(&sha);
                        }
                    }
                },
                Some(sha) = acks.recv() => {
                    self.inflight.remove(&sha);
                }
                _ = wake.notified() => {}
                _ = sleep => {}
                Ok(()) = key.changed() => {
                    let k = key.borrow_and_update().clone();
                    self.new_key(k);
                }
                _ = stop.changed() => break,
            }
        }
        // Abandoned requests stay queued in the database.
        self.tasks.abort_all();
    }

    /// Sends every request the budget allows; returns when to look again.
    fn dispatch(&mut self) -> Option<Instant> {
        loop {
            if self.bad_key || !self.recording.load(Ordering::SeqCst) {
                return None;
            }
            let now = Instant::now();
            if let Some(t) = self.paused_until {
                if t > now {
                    return Some(t);
                }
                self.paused_until = None;
            }
            if self.tasks.len() >= self.settings.concurrency
                || self.inflight.len() >= self.settings.concurrency + UNRECORDED_MAX
            {
                return None;
            }
            match self.limiter.check(unix_now()) {
                Permit::Now => {}
                Permit::At(t) => return Some(t),
                Permit::Tomorrow(d) => return Some(now + d.min(Duration::from_secs(3600))),
            }
            // Said before the queue is read: a hash committed after this read began
            // finds the flag set, so its wake-up is not lost (`Link::wake`).
            self.wanted.store(true, Ordering::SeqCst);
            let due = match self.store.vt_first_due(unix_now_ms(), |h| self.inflight.contains(h)) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("cannot read the VirusTotal queue: {e}");
                    return Some(now + Duration::from_secs(5));
                }
            };
            let Some(sha) = due else {
                // Nothing due: wake for the earliest retry, or when woken.
                let next = self.store.vt_next_due(unix_now_ms()).ok().flatten();
                return next.map(|t| now + Duration::from_millis((t - unix_now_ms()).max(1) as u64));
            };
            self.wanted.store(false, Ordering::SeqCst);
            self.limiter.take();
            (self.out)(VtMsg::Requested { time_ms: unix_now_ms() });
            self.inflight.insert(sha.clone());
            let client = self.client.clone();
            let task_sha = sha.clone();
            let handle = self.tasks.spawn(async move {
                let start = Instant::now();
                let (answer, status) = client.file_report(&sha).await;
                (sha, answer, status, start.elapsed())
            });
            self.task_hash.insert(handle.id(), task_sha);
        }
    }

    fn finished(&mut self, (sha256, answer, status, latency): (String, Answer, u16, Duration)) {
        match &answer {
            Answer::RateLimited { retry_after } => {
                let wait = retry_after.unwrap_or(Duration::from_secs(60));
                tracing::warn!("VirusTotal rate limit reached: pausing lookups for {} s", wait.as_secs());
                self.paused_until = Some(Instant::now() + wait);
            }
            Answer::BadKey { .. } => self.bad_key = true,
            _ => {}
        }
        // The hash stays in flight until the writer acknowledges it.
        (self.out)(VtMsg::Answered { sha256, answer, status, latency });
    }

    fn new_key(&mut self, key: Secret) {
        let s = &self.settings;
        match Client::new(&s.base_url, key.expose(), s.connect_timeout, s.timeout) {
            Ok(c) => {
                tracing::info!("VirusTotal API key changed: lookups resume");
                self.client = Arc::new(c);
                self.bad_key = false;
                (self.out)(VtMsg::KeyChanged);
            }
            Err(e) => tracing::error!("the new VirusTotal API key cannot be used: {}", crate::textutil::Chain(&e)),
        }
    }
}
