//! Hashing: one read pass computes MD5, SHA-1 and SHA-256 together. This module
//! opens and reads the file and does nothing else: no database, no network, no
//! writes. Unless asked to follow symlinks, it opens with no symlink anywhere in
//! the path: with `openat2(RESOLVE_NO_SYMLINKS)`, or where openat2 is missing or
//! refused (old kernels, seccomp sandboxes), by opening one component at a time
//! with `O_NOFOLLOW`; which way is decided once and said in the log. It refuses
//! anything that is not a regular file once opened, so a file or folder swapped
//! for a FIFO or a symlink between the walk and the open can neither block nor
//! redirect a scan.

use std::ffi::{CStr, CString};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::path::Path;
use std::sync::OnceLock;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::model::{Digests, StatKey};

/// Read buffer per hashing thread: large reads mean few syscalls.
pub const READ_BUF: usize = 1 << 20;
/// The hashers are fed in slices small enough to stay in L2 while all three run.
const FEED: usize = 64 << 10;
/// How many times a file that changes while it is read is read again.
const MAX_ATTEMPTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("vanished before it could be read")]
    Vanished,
    #[error("is no longer a regular file")]
    NotRegular,
    #[error("kept changing while it was read ({MAX_ATTEMPTS} attempts)")]
    KeptChanging,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What reading one file gives: the metadata of what was read, and its digests
/// (`None` when over `max_file_size`).
pub type ReadResult = Result<(Metadata, Option<Digests>), HashError>;

/// Hashes everything `r` yields, using `buf` as the read buffer.
pub fn digest_reader(r: &mut impl Read, buf: &mut [u8]) -> io::Result<(Digests, u64)> {
    let mut md5 = Md5::new();
    let mut sha1 = Sha1::new();
    let mut sha256 = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        for chunk in buf[..n].chunks(FEED) {
            md5.update(chunk);
            sha1.update(chunk);
            sha256.update(chunk);
        }
    }
    let digests = Digests {
        md5: hex::encode(md5.finalize()),
        sha1: hex::encode(sha1.finalize()),
        sha256: hex::encode(sha256.finalize()),
    };
    Ok((digests, total))
}

/// Hashes a byte slice (tests and known vectors).
pub fn digest_bytes(data: &[u8]) -> Digests {
    let mut buf = vec![0u8; FEED];
    digest_reader(&mut &data[..], &mut buf).expect("reading a slice cannot fail").0
}

/// Opens `path` read-only without changing its access time and, unless
/// `follow_symlinks`, with no symlink anywhere in the path: the monitored roots
/// are canonical, so a symlink in a path is always something swapped in between
/// the walk and the open, and following it could lead outside the tree.
fn open(path: &Path, follow_symlinks: bool) -> io::Result<File> {
    // O_NONBLOCK: a FIFO swapped in cannot hang the scan. O_NOCTTY: a terminal
    // swapped in never becomes fimvt's controlling terminal.
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    let attempt = |flags: i32| {
        if follow_symlinks {
            OpenOptions::new().read(true).custom_flags(flags).open(path)
        } else {
            match no_symlink_way() {
                NoSymlinkWay::Openat2 => open_openat2(path, flags),
                NoSymlinkWay::ByComponent => open_by_component(path, flags),
            }
        }
    };
    match attempt(flags | libc::O_NOATIME) {
        // O_NOATIME is only allowed to the file's owner (or root).
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => attempt(flags),
        other => other,
    }
}

/// How a path is opened with no symlink anywhere in it. Both ways fail the same
/// way for the same path: ELOOP for a symlink in it, ENOENT for a missing
/// component, ENOTDIR for a component that is not a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoSymlinkWay {
    /// `openat2(RESOLVE_NO_SYMLINKS)`: the kernel checks every component.
    Openat2,
    /// One component at a time from the root (or the working folder), each
    /// opened with `O_NOFOLLOW`: where openat2 is missing (Linux before 5.6) or
    /// refused (a seccomp filter that does not know it answers EPERM or ENOSYS to it).
    ByComponent,
}

/// The way in use, decided by the first open and said once in the log. The probe
/// opens "/" with `O_PATH` only, so it fails only when openat2 itself is refused,
/// never for a reason that belongs to one file (EPERM for `O_NOATIME` on another
/// user's file, EACCES), which `open` handles per file.
fn no_symlink_way() -> NoSymlinkWay {
    static WAY: OnceLock<NoSymlinkWay> = OnceLock::new();
    *WAY.get_or_init(|| match openat2(c"/", libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) {
        Ok(_) => {
            tracing::info!("opening files with openat2(RESOLVE_NO_SYMLINKS): no symlink is followed in a path");
            NoSymlinkWay::Openat2
        }
        Err(e) => {
            tracing::info!(
                "openat2 refused ({}): opening files one path component at a time with O_NOFOLLOW",
                errno_name(&e)
            );
            NoSymlinkWay::ByComponent
        }
    })
}

/// "EPERM", "ENOSYS", ...: what a seccomp profile or a kernel answers, as its
/// documentation names it.
fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::E2BIG) => "E2BIG",
        _ => return e.to_string(),
    };
    name.to_string()
}

/// `openat2(path, flags, RESOLVE_NO_SYMLINKS)`.
fn openat2(path: &CStr, flags: i32) -> io::Result<File> {
    /// `struct open_how` of openat2(2) (libc's is non-exhaustive).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow { flags: flags as u64, mode: 0, resolve: libc::RESOLVE_NO_SYMLINKS };
    // SAFETY: `path` and `how` outlive the call; the size is that of `how`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd as RawFd) })
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn open_openat2(path: &Path, flags: i32) -> io::Result<File> {
    openat2(&c_path(path)?, flags)
}

/// Opens `path` one component at a time: each folder with `O_PATH | O_DIRECTORY
/// | O_NOFOLLOW` relative to the one before, the last component with `flags |
/// O_NOFOLLOW`. No component is ever resolved through a symlink, as with
/// `RESOLVE_NO_SYMLINKS`, and it fails with the same errors.
fn open_by_component(path: &Path, flags: i32) -> io::Result<File> {
    let bytes = path.as_os_str().as_bytes();
    let names: Vec<&[u8]> = bytes.split(|&b| b == b'/').filter(|n| !n.is_empty()).collect();
    let absolute = bytes.first() == Some(&b'/');
    let dir_flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let Some((last, folders)) = names.split_last() else {
        // "/" itself (which is no symlink), or "" (ENOENT, as for openat2).
        return if absolute { openat(None, b"/", flags | libc::O_NOFOLLOW) } else { openat(None, b"", flags) };
    };
    // None: the working folder (AT_FDCWD).
    let mut dir = if absolute { Some(openat(None, b"/", dir_flags)?) } else { None };
    for name in folders {
        dir = Some(openat(dir.as_ref(), name, dir_flags)?);
    }
    // A trailing slash asks for a folder, as it does of openat2.
    let last_flags = if bytes.ends_with(b"/") { flags | libc::O_DIRECTORY } else { flags };
    openat(dir.as_ref(), last, last_flags | libc::O_NOFOLLOW)
}

/// `openat(dir, name, flags)`, `dir` None being the working folder. With
/// `O_NOFOLLOW | O_DIRECTORY` Linux answers ENOTDIR for a symlink; that is
/// reported as ELOOP, as `RESOLVE_NO_SYMLINKS` does.
fn openat(dir: Option<&File>, name: &[u8], flags: i32) -> io::Result<File> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `c` is NUL-terminated and outlives the call; `dirfd` is open (or AT_FDCWD).
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags, 0) };
    if fd >= 0 {
        // SAFETY: a new descriptor that nothing else owns.
        return Ok(unsafe { File::from_raw_fd(fd) });
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOTDIR) && flags & libc::O_DIRECTORY != 0 {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: as above; `st` is written by the kernel before it is read.
        let is_link = unsafe {
            libc::fstatat(dirfd, c.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) == 0
                && st.assume_init_ref().st_mode & libc::S_IFMT == libc::S_IFLNK
        };
        if is_link {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
    }
    Err(e)
}

/// Reads `path` once and returns the metadata of what was read (from `fstat` of the
/// open file) with its digests. A file larger than `max_size` is not read: its
/// digests are `None`. A file whose size, mtime or ctime moved during the read is
/// read again, up to a few times.
pub fn hash_file(path: &Path, follow_symlinks: bool, max_size: u64, buf: &mut [u8]) -> ReadResult {
    for _ in 0..MAX_ATTEMPTS {
        let mut file = match open(path, follow_symlinks) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(HashError::Vanished),
            // ELOOP: a symlink in the path, and we do not follow symlinks.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(HashError::NotRegular),
            Err(e) => return Err(e.into()),
        };
        let before = file.metadata()?;
        if !before.is_file() {
            return Err(HashError::NotRegular);
        }
        if before.len() > max_size {
            return Ok((before, None));
        }
        // SAFETY: plain advisory call on a valid descriptor we own.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
        }
        let (digests, _) = digest_reader(&mut file, buf)?;
        let after = file.metadata()?;
        if StatKey::of(&before) == StatKey::of(&after) {
            return Ok((after, Some(digests)));
        }
        tracing::debug!(path = %path.display(), "changed while being read; reading it again");
    }
    Err(HashError::KeptChanging)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn known_vectors() {
        let d = digest_bytes(b"");
        assert_eq!(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(d.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let d = digest_bytes(b"abc");
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(d.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn chunk_boundaries_do_not_change_the_result() {
        // 3 MiB + 7 bytes crosses both the read buffer and the feed slice size.
        let data: Vec<u8> = (0..(3 * READ_BUF + 7)).map(|i| (i * 31 % 251) as u8).collect();
        let mut small = vec![0u8; 4096 + 3];
        let (a, n) = digest_reader(&mut &data[..], &mut small).unwrap();
        let mut big = vec![0u8; READ_BUF];
        let (b, _) = digest_reader(&mut &data[..], &mut big).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(a, b);
    }

    #[test]
    fn a_file_rewritten_while_read_is_never_recorded_half_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("moving");
        std::fs::write(&f, vec![1u8; 4 << 20]).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (f, stop) = (f.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u8;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n = n % 4 + 1; // four versions: 1, 2, 3, 4
                    // Replace it (a new inode) or rewrite it in place, in turn.
                    if n.is_multiple_of(2) {
                        let tmp = f.with_extension("tmp");
                        std::fs::write(&tmp, vec![n; 4 << 20]).unwrap();
                        std::fs::rename(&tmp, &f).unwrap();
                    } else {
                        std::fs::write(&f, vec![n; 4 << 20]).unwrap();
                    }
                }
            })
        };
        let versions: Vec<String> = (1..=4u8).map(|b| digest_bytes(&vec![b; 4 << 20]).sha256).collect();
        let mut buf = vec![0u8; READ_BUF];
        for _ in 0..20 {
            match hash_file(&f, false, u64::MAX, &mut buf) {
                // Whatever was accepted is one whole version: 4 MiB of a single byte.
                Ok((md, Some(d))) if md.len() == 4 << 20 => {
                    assert!(versions.contains(&d.sha256), "a torn read was accepted")
                }
                // Caught mid-rewrite, between truncate and write: a shorter, still consistent file.
                Ok((md, Some(_))) => assert!(md.len() < 4 << 20),
                Ok((_, None)) => unreachable!("no size limit"),
                Err(HashError::KeptChanging | HashError::Vanished) => {}
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
    }

    /// Every case of a path with a symlink, a missing component or a file where
    /// a folder should be, with the errno openat2(RESOLVE_NO_SYMLINKS) gives it.
    fn no_symlink_cases(dir: &Path) -> Vec<(std::path::PathBuf, Option<i32>)> {
        let outside = dir.join("outside");
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(dir.join("a/b/file"), b"abc").unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        let link = |target: &Path, at: &str| std::os::unix::fs::symlink(target, dir.join(at)).unwrap();
        link(&outside, "a/to_outside");
        link(Path::new("b"), "a/relative_b");
        link(&dir.join("a/b/file"), "a/b/to_file");
        link(Path::new("nowhere"), "a/b/dangling");
        let mut cases: Vec<(&str, Option<i32>)> = vec![
            ("a/b/file", None),
            ("a/b/../b/file", None),
            ("a/b/", None),
            ("a/to_outside/secret", Some(libc::ELOOP)),
            ("a/relative_b/file", Some(libc::ELOOP)),
            ("a/to_outside", Some(libc::ELOOP)),
            ("a/to_outside/", Some(libc::ELOOP)),
            ("a/b/to_file", Some(libc::ELOOP)),
            ("a/b/to_file/x", Some(libc::ELOOP)),
            ("a/b/dangling", Some(libc::ELOOP)),
            ("a/missing/file", Some(libc::ENOENT)),
            ("a/b/missing", Some(libc::ENOENT)),
            ("a/b/file/x", Some(libc::ENOTDIR)),
            ("a/b/file/", Some(libc::ENOTDIR)),
        ];
        cases.push(("", None)); // the folder itself
        cases
            .into_iter()
            .map(|(rel, errno)| (if rel.is_empty() { dir.to_path_buf() } else { dir.join(rel) }, errno))
            .collect()
    }

    fn outcome(r: io::Result<File>) -> Result<(), Option<i32>> {
        r.map(|_| ()).map_err(|e| e.raw_os_error())
    }

    #[test]
    fn openat2_gives_the_errors_the_component_walk_matches() {
        let dir = tempfile::tempdir().unwrap();
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
        for (path, errno) in no_symlink_cases(dir.path()) {
            let want = errno.map_or(Ok(()), |e| Err(Some(e)));
            assert_eq!(outcome(open_openat2(&path, flags)), want, "openat2 on {}", path.display());
        }
    }

    #[test]
    fn the_component_walk_refuses_symlinks_and_fails_as_openat2_does() {
        let dir = tempfile::tempdir().unwrap();
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
        for (path, errno) in no_symlink_cases(dir.path()) {
            let want = errno.map_or(Ok(()), |e| Err(Some(e)));
            assert_eq!(outcome(open_by_component(&path, flags)), want, "the walk on {}", path.display());
        }
        // What it opened is the file asked for, with the flags asked for.
        let mut f = open_by_component(&dir.path().join("a/b/file"), flags | libc::O_NOATIME).unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        assert_eq!(text, "abc");
        // SAFETY: F_GETFL on a descriptor we own.
        let got = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(got & (libc::O_NONBLOCK | libc::O_NOATIME), libc::O_NONBLOCK | libc::O_NOATIME);
        assert!(open_by_component(Path::new("/"), flags).unwrap().metadata().unwrap().is_dir());
        // A FIFO as the last component opens without blocking, to be refused by hash_file.
        let fifo = dir.path().join("a/fifo");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(open_by_component(&fifo, flags).unwrap().metadata().unwrap().file_type().is_fifo());
    }

    #[test]
    fn hash_file_refuses_symlinks_and_fifos_and_skips_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"abc").unwrap();
        let mut buf = vec![0u8; READ_BUF];
        let (md, d) = hash_file(&f, false, 1 << 20, &mut buf).unwrap();
        assert_eq!(md.len(), 3);
        assert_eq!(d.unwrap().sha256, digest_bytes(b"abc").sha256);

        let (_, none) = hash_file(&f, false, 2, &mut buf).unwrap();
        assert!(none.is_none(), "over max_file_size: no hashes");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(matches!(hash_file(&link, false, 1 << 20, &mut buf), Err(HashError::NotRegular)));
        assert!(hash_file(&link, true, 1 << 20, &mut buf).is_ok());

        // A folder in the path swapped for a symlink (to outside the tree): refused.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).unwrap();
        assert!(matches!(
            hash_file(&dir.path().join("sub/secret"), false, 1 << 20, &mut buf),
            Err(HashError::NotRegular)
        ));

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(matches!(hash_file(&fifo, false, 1 << 20, &mut buf), Err(HashError::NotRegular)));
        assert!(matches!(hash_file(&dir.path().join("gone"), false, 1, &mut buf), Err(HashError::Vanished)));
    }
}
