//! What is at a path now, as FIM sees it: the one place that decides whether a
//! recorded file is gone. False deletions are the worst failure a FIM can have,
//! so only a clear "not there" (ENOENT, or ENOTDIR for a folder on the path
//! replaced by a file) or something that can no longer be a monitored file (a
//! folder, FIFO, device, or a symlink fimvt does not follow) counts as gone. A
//! path that cannot be looked at (EACCES, EIO, ESTALE) may well exist: it keeps
//! its row.

use std::io;
use std::path::Path;

use crate::config::Config;
use crate::hash::HashError;

/// What `look` found at a path.
#[derive(Debug)]
pub enum Presence {
    /// A regular file (through a symlink where the folder follows them).
    File,
    /// Something that cannot be a monitored file: a folder, a FIFO, a device, a
    /// symlink not followed. A file recorded here is gone.
    Other,
    /// Nothing there.
    Gone,
    /// Cannot tell: it may exist. Never a deletion.
    Unknown(io::Error),
}

impl Presence {
    /// Whether a file recorded at this path is gone.
    pub fn is_gone(&self) -> bool {
        matches!(self, Presence::Gone | Presence::Other)
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
        Ok(md) if md.is_file() => Presence::File,
        Ok(_) => Presence::Other,
        Err(e) if not_there(&e) => Presence::Gone,
        Err(e) => Presence::Unknown(e),
    }
}

/// The file systems `skip_nfs`, `skip_dev`, `skip_sys` and `skip_proc` keep out
/// of the monitor, told by `statfs`'s `f_type` as Wazuh's `HasFilesystem`
/// (`src/shared/fs_op.c`) tells them: NFS and CIFS for `skip_nfs`; devfs, and a
/// tmpfs mounted without `nodev` (what `/dev` is today: devtmpfs reports
/// tmpfs's type) for `skip_dev`; sysfs for `skip_sys`; proc for `skip_proc`.
/// Returns the option that skips `path`'s file system, and its name. A path
/// `statfs` cannot look at is not skipped, as in Wazuh.
pub fn skipped_file_system(cfg: &Config, path: &Path) -> Option<(&'static str, &'static str)> {
    use std::os::unix::ffi::OsStrExt;
    let skip = &cfg.scan.skip_fs;
    if !(skip.nfs || skip.dev || skip.sys || skip.proc) {
        return None;
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer of the size statfs writes.
    if unsafe { libc::statfs(c_path.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statfs succeeded, so it filled the buffer.
    let f_type = unsafe { st.assume_init() }.f_type as u64 & 0xffff_ffff;
    // Mount flags come from statvfs; only a tmpfs needs them.
    let nodev = f_type == TMPFS && {
        let mut vfs = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: as above; a failed call leaves the tmpfs counted as nodev, not skipped.
        unsafe {
            libc::statvfs(c_path.as_ptr(), vfs.as_mut_ptr()) != 0 || vfs.assume_init().f_flag & libc::ST_NODEV != 0
        }
    };
    file_system_skip(f_type, nodev, skip)
}

const DEVFS: u64 = 0x1373;
const NFS: u64 = 0x6969;
const PROC: u64 = 0x9fa0;
const TMPFS: u64 = 0x0102_1994;
const SYSFS: u64 = 0x6265_6572;
const CIFS: u64 = 0xff53_4d42;

/// Whether a walk leaves `path` (a folder, or a followed symlink) out for its
/// file system; said in the log when it does.
pub fn walk_skips(cfg: &Config, path: &Path) -> bool {
    let Some((option, name)) = skipped_file_system(cfg, path) else {
        return false;
    };
    tracing::info!(path = %crate::textutil::escape_path(path), "not monitored: on a {name} file system ({option} is on)");
    true
}

/// `skipped_file_system`'s rule, on `f_type` and whether the mount is `nodev`.
fn file_system_skip(f_type: u64, nodev: bool, skip: &crate::config::SkipFs) -> Option<(&'static str, &'static str)> {
    let (on, option, name) = match f_type {
        NFS => (skip.nfs, "skip_nfs", "NFS"),
        CIFS => (skip.nfs, "skip_nfs", "CIFS"),
        DEVFS => (skip.dev, "skip_dev", "devfs"),
        TMPFS if !nodev => (skip.dev, "skip_dev", "device (tmpfs without nodev)"),
        SYSFS => (skip.sys, "skip_sys", "sysfs"),
        PROC => (skip.proc, "skip_proc", "proc"),
        _ => return None,
    };
    on.then_some((option, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SkipFs;

    #[test]
    fn each_skip_option_covers_the_file_systems_wazuh_gives_it() {
        let all = SkipFs { nfs: true, dev: true, sys: true, proc: true };
        let none = SkipFs { nfs: false, dev: false, sys: false, proc: false };
        for (f_type, option) in [
            (NFS, "skip_nfs"),
            (CIFS, "skip_nfs"),
            (DEVFS, "skip_dev"),
            (TMPFS, "skip_dev"),
            (SYSFS, "skip_sys"),
            (PROC, "skip_proc"),
        ] {
            assert_eq!(file_system_skip(f_type, false, &all).map(|s| s.0), Some(option), "{f_type:#x}");
            assert_eq!(file_system_skip(f_type, false, &none), None, "{f_type:#x} with {option} off");
        }
        assert_eq!(file_system_skip(TMPFS, true, &all), None, "a nodev tmpfs (a usual /tmp) is no device");
        assert_eq!(file_system_skip(0xef53, false, &all), None, "ext4 is never skipped");
        let only_proc = SkipFs { proc: true, ..none };
        assert_eq!(file_system_skip(SYSFS, false, &only_proc), None, "skip_proc leaves sysfs alone");
    }

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
        assert!(matches!(look(&cfg, &w.join("f")), Presence::File));
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
        assert!(matches!(look(&cfg, &w.join("link")), Presence::File));
        std::fs::remove_file(dir.path().join("target")).unwrap();
        assert!(matches!(look(&cfg, &w.join("link")), Presence::Gone), "its target is gone");
    }
}
