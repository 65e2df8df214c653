//! The FIM event model: what changed about one path, compared the way Wazuh's
//! syscheck compares. Pure data and logic, shared by the scanner, the realtime
//! watcher, the alert writers and the store.

use std::path::PathBuf;

use crate::model::FileState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "added",
            EventKind::Modified => "modified",
            EventKind::Deleted => "deleted",
        }
    }
}

/// How the change was noticed, as Wazuh's `Mode:` line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    Scheduled,
    Realtime,
}

impl ScanMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanMode::Scheduled => "scheduled",
            ScanMode::Realtime => "realtime",
        }
    }
}

/// A checked attribute, in the order Wazuh lists them in `Changed attributes:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attr {
    Size,
    Permission,
    Uid,
    UserName,
    Gid,
    GroupName,
    Mtime,
    Inode,
    Md5,
    Sha1,
    Sha256,
}

impl Attr {
    pub fn as_str(self) -> &'static str {
        match self {
            Attr::Size => "size",
            Attr::Permission => "permission",
            Attr::Uid => "uid",
            Attr::UserName => "user_name",
            Attr::Gid => "gid",
            Attr::GroupName => "group_name",
            Attr::Mtime => "mtime",
            Attr::Inode => "inode",
            Attr::Md5 => "md5",
            Attr::Sha1 => "sha1",
            Attr::Sha256 => "sha256",
        }
    }
}

/// One added, modified or deleted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimEvent {
    pub kind: EventKind,
    pub mode: ScanMode,
    pub path: PathBuf,
    /// The last recorded state: `None` for added.
    pub before: Option<FileState>,
    /// The state now: `None` for deleted.
    pub after: Option<FileState>,
    /// For modified: what differs, in Wazuh's order. Empty otherwise.
    pub changed: Vec<Attr>,
    /// The `tags` of the folder the file is in, for the alert.
    pub tags: Vec<String>,
}

impl FimEvent {
    /// The state the alert's `Attributes:` block and `*_after` fields describe:
    /// the new one, or for a deletion the last one known (as Wazuh reports it).
    pub fn current(&self) -> &FileState {
        self.after.as_ref().or(self.before.as_ref()).expect("an event has a before or an after state")
    }

    pub fn has(&self, attr: Attr) -> bool {
        self.changed.contains(&attr)
    }
}

/// The checked attributes that differ between two states of one file. Hashes
/// compare only when both sides have them (a file over `max_file_size` has none).
pub fn changed_attributes(old: &FileState, new: &FileState) -> Vec<Attr> {
    let mut out = Vec::new();
    let mut check = |differs: bool, a: Attr| {
        if differs {
            out.push(a)
        }
    };
    check(old.size != new.size, Attr::Size);
    check(old.mode & 0o7777 != new.mode & 0o7777, Attr::Permission);
    check(old.uid != new.uid, Attr::Uid);
    check(old.uname != new.uname, Attr::UserName);
    check(old.gid != new.gid, Attr::Gid);
    check(old.gname != new.gname, Attr::GroupName);
    check(old.mtime != new.mtime, Attr::Mtime);
    check(old.inode != new.inode, Attr::Inode);
    match (&old.digests, &new.digests) {
        (Some(a), Some(b)) => {
            check(a.md5 != b.md5, Attr::Md5);
            check(a.sha1 != b.sha1, Attr::Sha1);
            check(a.sha256 != b.sha256, Attr::Sha256);
        }
        // Hashes appearing or disappearing (max_file_size crossed) is a change too.
        (None, Some(_)) | (Some(_), None) => {
            out.extend([Attr::Md5, Attr::Sha1, Attr::Sha256]);
        }
        (None, None) => {}
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hash::digest_bytes;

    pub fn state(content: &[u8]) -> FileState {
        FileState {
            size: content.len() as u64,
            mode: 0o100644,
            uid: 1000,
            gid: 1000,
            uname: "user".into(),
            gname: "user".into(),
            mtime: 1_510_684_961,
            inode: 104062,
            digests: Some(digest_bytes(content)),
            mtime_ns: 1_510_684_961_000_000_000,
            ctime_ns: 1_510_684_961_000_000_000,
        }
    }

    #[test]
    fn nothing_changed_means_no_attributes() {
        let a = state(b"x");
        let mut b = a.clone();
        b.ctime_ns += 5; // ctime alone is not a checked attribute
        assert!(changed_attributes(&a, &b).is_empty());
    }

    #[test]
    fn attributes_come_in_wazuh_order() {
        let a = state(b"abc");
        let mut b = state(b"abcd");
        b.mode = 0o100755;
        b.uid = 0;
        b.uname = "root".into();
        b.mtime += 50;
        let names: Vec<_> = changed_attributes(&a, &b).iter().map(|a| a.as_str()).collect();
        assert_eq!(names, ["size", "permission", "uid", "user_name", "mtime", "md5", "sha1", "sha256"]);
    }

    #[test]
    fn file_type_bits_alone_are_not_a_permission_change() {
        let a = state(b"x");
        let mut b = a.clone();
        b.mode = 0o644;
        assert!(changed_attributes(&a, &b).is_empty());
    }
}
