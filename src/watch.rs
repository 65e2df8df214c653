//! Realtime events: turns notify's (inotify's) events into our own small event
//! type and hands them to the coalescer through a bounded channel.
//!
//! The notify callback runs on notify's thread and is treated as an interrupt
//! handler: it converts, `try_send`s and returns. It never blocks. When the channel
//! is full the event is not waited for but marked lost, and a lost event (or the
//! kernel's own queue overflow, or a watch that could not be added) becomes a
//! rescan, never a silent loss.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Sender, TrySendError};
use notify::event::{AccessKind, AccessMode, CreateKind, EventKindMask, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::config::Config;
use crate::textutil::escape_path;

/// How soon a path should be looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Content may still be changing (created, written): wait until it is quiet.
    Settle,
    /// Attributes changed: look now, unless a write is still settling.
    Meta,
    /// Written and closed, deleted, renamed: look now.
    Now,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Path {
        path: PathBuf,
        urgency: Urgency,
    },
    /// Events were or may have been lost: the trees must be rescanned.
    Rescan(String),
    /// A folder could not be watched because of the kernel's watch limit.
    WatchLimit(String),
}

/// The running watcher; dropping it stops the watches.
pub struct Watch {
    watcher: RecommendedWatcher,
    /// Folders that could not be (fully) watched: covered by periodic scans only.
    pub unwatched: Vec<PathBuf>,
    /// Realtime folders that did not exist at start: watched when they appear.
    pub missing: Vec<PathBuf>,
}

/// Maps one notify event to what fimvt does about it; `None` to ignore it.
fn urgency_of(kind: &EventKind) -> Option<Urgency> {
    Some(match kind {
        EventKind::Create(CreateKind::Folder) => Urgency::Now,
        EventKind::Create(_) => Urgency::Settle,
        EventKind::Modify(ModifyKind::Metadata(_)) => Urgency::Meta,
        EventKind::Modify(ModifyKind::Name(_)) => Urgency::Now,
        EventKind::Modify(_) => Urgency::Settle,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Urgency::Now,
        // Opens and reads (our own hashing among them) change nothing.
        EventKind::Access(_) => return None,
        EventKind::Remove(_) | EventKind::Any | EventKind::Other => Urgency::Now,
    })
}

/// Starts watching every `realtime` folder, sending events to `tx`. `lost` is set
/// whenever an event could not be queued.
pub fn start(
    cfg: &Config,
    tx: Sender<WatchEvent>,
    lost: Arc<AtomicBool>,
    limit_hit: Arc<AtomicBool>,
) -> notify::Result<Watch> {
    let handler = move |res: notify::Result<Event>| {
        let events: Vec<WatchEvent> = match res {
            Ok(ev) if ev.need_rescan() => vec![WatchEvent::Rescan("the kernel's inotify queue overflowed".into())],
            Ok(ev) => match urgency_of(&ev.kind) {
                Some(urgency) => ev.paths.into_iter().map(|path| WatchEvent::Path { path, urgency }).collect(),
                None => vec![],
            },
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                // Said through a flag too: an event lost to a full queue must not
                // hide that part of the tree is now unwatched.
                limit_hit.store(true, Ordering::SeqCst);
                let at = e.paths.first().map(|p| escape_path(p)).unwrap_or_default();
                vec![WatchEvent::WatchLimit(at)]
            }
            Err(e) => vec![WatchEvent::Rescan(format!("watcher error: {e}"))],
        };
        for ev in events {
            match tx.try_send(ev) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => lost.store(true, Ordering::SeqCst),
                // Shutting down: nothing is listening any more.
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    };
    // Only what can change a file's state: no opens, no read-only closes (our own
    // hashing would otherwise flood the kernel queue with events about itself).
    let kinds = EventKindMask::CORE | EventKindMask::ACCESS_CLOSE;
    let mut watcher = RecommendedWatcher::new(handler, notify::Config::default().with_event_kinds(kinds))?;
    let (mut unwatched, mut missing) = (Vec::new(), Vec::new());
    for dir in cfg.directories.iter().filter(|d| d.realtime) {
        if !dir.path.is_dir() {
            missing.push(dir.path.clone());
            continue;
        }
        if let Err(e) = watcher.watch(&dir.path, RecursiveMode::Recursive) {
            if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                tracing::warn!(
                    folder = %escape_path(&dir.path),
                    "the inotify watch limit is reached (raise fs.inotify.max_user_watches); \
                     changes in what is not watched are found by full scans, every 10 minutes at most"
                );
            } else {
                tracing::warn!(folder = %escape_path(&dir.path), "cannot watch: {e}; covered by periodic scans only");
            }
            unwatched.push(dir.path.clone());
        }
    }
    Ok(Watch { watcher, unwatched, missing })
}

impl Watch {
    /// Watches a monitored folder that appeared: one missing at start, or deleted
    /// and re-created (its old watch died with it).
    pub fn rewatch(&mut self, root: &std::path::Path) -> notify::Result<()> {
        self.watcher.watch(root, RecursiveMode::Recursive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{DataChange, MetadataKind, RemoveKind, RenameMode};

    #[test]
    fn own_reads_are_ignored_and_writes_settle() {
        assert_eq!(urgency_of(&EventKind::Access(AccessKind::Open(AccessMode::Read))), None);
        assert_eq!(urgency_of(&EventKind::Access(AccessKind::Close(AccessMode::Read))), None);
        assert_eq!(urgency_of(&EventKind::Modify(ModifyKind::Data(DataChange::Any))), Some(Urgency::Settle));
        assert_eq!(urgency_of(&EventKind::Create(CreateKind::File)), Some(Urgency::Settle));
        assert_eq!(urgency_of(&EventKind::Access(AccessKind::Close(AccessMode::Write))), Some(Urgency::Now));
        assert_eq!(urgency_of(&EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any))), Some(Urgency::Meta));
        assert_eq!(urgency_of(&EventKind::Modify(ModifyKind::Name(RenameMode::From))), Some(Urgency::Now));
        assert_eq!(urgency_of(&EventKind::Remove(RemoveKind::File)), Some(Urgency::Now));
    }
}
