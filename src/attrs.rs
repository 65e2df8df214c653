//! File attributes from `fstat`: a `FileState` as Wazuh's `check_all` records it
//! (size, permissions, owner, group, mtime, inode) plus the nanosecond stamps
//! fimvt uses to decide whether a file must be re-read; permission text; uid/gid
//! to names, cached.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use crate::model::{Digests, FileState, StatKey};

impl FileState {
    /// Builds the state from `fstat` of the opened file; names come from `names`.
    pub fn from_metadata(md: &Metadata, digests: Option<Digests>, names: &mut NameCache) -> FileState {
        let key = StatKey::of(md);
        FileState {
            size: key.size,
            mode: key.mode,
            uid: key.uid,
            gid: key.gid,
            uname: names.user(key.uid),
            gname: names.group(key.gid),
            mtime: md.mtime(),
            inode: key.inode,
            digests,
            mtime_ns: key.mtime_ns,
            ctime_ns: key.ctime_ns,
        }
    }

    /// Permissions as Wazuh prints them: `rw-r--r--`, with `s`/`S`/`t`/`T` for the
    /// set-id and sticky bits as `ls` shows them.
    pub fn perm(&self) -> String {
        perm_string(self.mode)
    }
}

pub fn perm_string(mode: u32) -> String {
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let special = |x: u32, s: u32, on: char, off: char| match (mode & x != 0, mode & s != 0) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't', 'T'),
    ]
    .iter()
    .collect()
}

/// Caches uid/gid → name lookups; an id with no entry maps to an empty name.
#[derive(Default)]
pub struct NameCache {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl NameCache {
    pub fn user(&mut self, uid: u32) -> String {
        self.users.entry(uid).or_insert_with(|| lookup_user(uid).unwrap_or_default()).clone()
    }

    pub fn group(&mut self, gid: u32) -> String {
        self.groups.entry(gid).or_insert_with(|| lookup_group(gid).unwrap_or_default()).clone()
    }
}

fn lookup_user(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: `passwd` is plain data; all-zero is a valid value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `pwd` and `buf` outlive the call; getpwuid_r writes only within
        // `buf.len()` bytes and sets `result` to null or to `&pwd`.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
        return Some(unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned());
    }
}

fn lookup_group(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: `group` is plain data; all-zero is a valid value.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `lookup_user`, for getgrgid_r.
        let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || grp.gr_name.is_null() {
            return None;
        }
        // SAFETY: on success gr_name points to a NUL-terminated string inside `buf`.
        return Some(unsafe { CStr::from_ptr(grp.gr_name) }.to_string_lossy().into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perm_text_matches_ls() {
        assert_eq!(perm_string(0o100644), "rw-r--r--");
        assert_eq!(perm_string(0o100777), "rwxrwxrwx");
        assert_eq!(perm_string(0o104755), "rwsr-xr-x");
        assert_eq!(perm_string(0o102644), "rw-r-Sr--");
        assert_eq!(perm_string(0o41777), "rwxrwxrwt");
        assert_eq!(perm_string(0o1000), "--------T");
    }

    #[test]
    fn root_resolves_to_a_name() {
        let mut names = NameCache::default();
        assert_eq!(names.user(0), "root");
        assert_eq!(names.group(0), "root");
        // An id nobody has: empty, not an error.
        assert_eq!(names.user(3_999_999_999), "");
    }
}
