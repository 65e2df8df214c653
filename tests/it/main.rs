//! fimvt's integration tests: one binary, with shared helpers in `util`.

mod cli;
mod faults;
mod fuzz;
mod golden;
mod ops;
mod realtime;
mod scan;
mod service;
mod util;
mod virustotal;
mod vt_standin;
