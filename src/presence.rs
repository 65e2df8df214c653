//! What is at a path now, as FIM sees it: the one place that decides whether a
//! recorded file is gone. False deletions are the worst failure a FIM can have,
//! so only a clear "not there" (ENOENT, or ENOTDIR for a folder on the path
//! replaced by a file) or something that can no longer be a monitored file (a
//! folder, FIFO, device, or a symlink fimvt does not follow) counts as gone. A
//! path that cannot be looked at (EACCES, EIO, ESTALE) may well exist: it keeps
//! its row.

use std::fs::Metadata;
use std::io;
use std::path::Path;

use crate::config::Config;
use crate::hash::HashError;

/// What `look` found at a path.
#[derive(Debug)]
pub enum Presence {
    /// A regular file (through a symlink where the folder follows them).
    File(Metadata),
    /// Something that cannot be a monitored file: a folder, a FIFO, a device, a
    /// symlink not followed. A file recorded here is gone.
    Other(Metadata),
    /// Nothing there.
    Gone,
    /// Cannot tell: it may exist. Never a deletion.
    Unknown(io::Error),
}

impl Presence {
    /// Whether a file recorded at this path is gone.
    pub fn is_gone(&self) -> bool {
        matches!(self, Presence::Gone | Presence::Other(_))
    }
}

/// Whether a failed look at a path means it is not there (as opposed to unreadable).
pub fn not_there(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

/// Whether a failed read means the file is gone: it vanished, or is no longer a
/// regular file, between the look and the read.
pub fn read_says_gone(e: &HashError) -> bool {
    match e {
        HashError::Vanished | HashError::NotRegular => true,
        HashError::Io(e) => not_there(e),
        HashError::KeptChanging => false,
    }
}

/// Looks at `path` without following a symlink, unless its folder follows them.
pub fn look(cfg: &Config, path: &Path) -> Presence {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_symlink() && cfg.follows_symlinks(path) => std::fs::metadata(path),
        other => other,
    };
    match md {
        Ok(md) if md.is_file() => Presence::File(md),
        Ok(md) => Presence::Other(md),
        Err(e) if not_there(&e) => Presence::Gone,
        Err(e) => Presence::Unknown(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, follow: bool) -> Config {
        let text = format!(
            "[general]\ndata_dir = \"{0}/var\"\n[[directories]]\npath = \"{0}/w\"\nfollow_symlinks = {follow}\n",
            dir.display()
        );
        std::fs::create_dir_all(dir.join("w")).unwrap();
        let file = dir.join("fimvt.toml");
        std::fs::write(&file, text).unwrap();
        Config::load(&file).unwrap()
    }

    #[test]
    fn only_not_there_or_not_a_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("w");
        let cfg = config(dir.path(), false);
        std::fs::write(w.join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(w.join("f"), w.join("link")).unwrap();
        assert!(matches!(look(&cfg, &w.join("f")), Presence::File(_)));
        assert!(matches!(look(&cfg, &w.join("missing")), Presence::Gone));
        // A folder on the path replaced by a file: ENOTDIR, gone.
        assert!(matches!(look(&cfg, &w.join("f/below")), Presence::Gone));
        assert!(look(&cfg, &w).is_gone(), "a folder where a file was");
        assert!(look(&cfg, &w.join("link")).is_gone(), "a symlink not followed");
        assert!(!Presence::Unknown(io::Error::from_raw_os_error(libc::EACCES)).is_gone());
        assert!(!not_there(&io::Error::from_raw_os_error(libc::EIO)));
        assert!(read_says_gone(&HashError::Io(io::Error::from_raw_os_error(libc::ENOTDIR))));
        assert!(!read_says_gone(&HashError::Io(io::Error::from_raw_os_error(libc::EACCES))));
    }

    #[test]
    fn a_followed_symlink_is_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("w");
        let cfg = config(dir.path(), true);
        std::fs::write(dir.path().join("target"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("target"), w.join("link")).unwrap();
        assert!(matches!(look(&cfg, &w.join("link")), Presence::File(_)));
        std::fs::remove_file(dir.path().join("target")).unwrap();
        assert!(matches!(look(&cfg, &w.join("link")), Presence::Gone), "its target is gone");
    }
}
