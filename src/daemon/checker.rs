//! The checkers: each looks at the paths dispatched to it, reads a monitored file
//! (one streaming hash pass) or reports it gone, and hands the result to the writer.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use super::writer::Msg;
use crate::config::Config;
use crate::fim::ScanMode;
use crate::hash::{READ_BUF, hash_file};
use crate::presence::{self, Presence};
use crate::textutil::escape_path;

/// Looks at each dispatched path: reads a monitored file, or reports it gone.
pub(super) fn checker(cfg: &Config, paths: Receiver<(PathBuf, ScanMode)>, out: Sender<Msg>) {
    let mut buf = vec![0u8; READ_BUF];
    for (path, mode) in paths.iter() {
        let msg = match presence::look(cfg, &path) {
            Presence::Unknown(e) => {
                // It may well exist: the next full scan looks again.
                tracing::warn!(path = %escape_path(&path), "cannot look at it: {e}");
                continue;
            }
            // Not there, or not a file (a folder: everything recorded under it
            // may be gone): the writer decides what was recorded there.
            Presence::Gone | Presence::Other => Msg::Gone(path, mode),
            // On a file system the walks leave out (said when they did).
            Presence::File if presence::skipped_file_system(cfg, &path).is_some() => continue,
            Presence::File => match cfg.file_rules_match(&path) {
                Some(dir) => {
                    let d = &cfg.directories[dir];
                    let result = hash_file(&path, d.follow_symlinks, d.max_file_size, &mut buf);
                    Msg::Read { path, mode, result }
                }
                None => continue,
            },
        };
        if out.send(msg).is_err() {
            return;
        }
    }
}
