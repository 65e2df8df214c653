//! fimvt's integration tests: one binary, with shared helpers in `util`.

mod cli;
mod golden;
mod realtime;
mod scan;
mod util;
