//! fimvt: a file integrity monitor that keeps its history in SQLite and writes
//! Wazuh-compatible FIM alerts. The binary in `main.rs` is a thin shell over this
//! library; see ARCHITECTURE.md for the data flow and the invariants.

pub mod alert;
pub mod attrs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod daemon_state;
pub mod fim;
pub mod hash;
pub mod journal;
pub mod lock;
pub mod model;
pub mod presence;
pub mod progress;
pub mod record;
pub mod report;
pub mod scan;
pub mod store;
pub mod textutil;
pub mod virustotal;
pub mod watch;
