//! The `fimvt` binary: parse the command line, set up logging, run, and map the
//! outcome to an exit status. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <fimvt::cli::Cli as clap::Parser>::parse();
    fimvt::cli::init_logging(&args);
    match fimvt::cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole cause chain on one line: "what failed: why".
            eprintln!("fimvt: error: {err:#}");
            fimvt::cli::exit_code_for(&err)
        }
    }
}
