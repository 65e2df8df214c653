//! fimvt's integration tests: one binary, with shared helpers in `util`.

mod cli;
mod faults;
mod fuzz;
mod golden;
// The seccomp filter there knows these two architectures.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod open;
mod ops;
mod realtime;
mod scan;
mod service;
mod util;
mod virustotal;
mod vt_standin;
