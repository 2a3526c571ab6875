//! `stella`: the command-line shell over the scan engine crates.

mod scan;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Stella Ops: deterministic SBOMs, advisories, VEX and policy for container images — no
/// cluster and no database server needed.
#[derive(Debug, Parser)]
#[command(name = "stella", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan an image into an SBOM: an OCI layout directory (`dir` or `dir:tag`) or a
    /// `docker save` / skopeo docker-archive tar.
    Scan(scan::Args),
    /// Print the version of stella and of the analyzer set.
    Version,
}

/// Exit codes: distinct per failure class so CI scripts can tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    Unreachable = 3,
    Auth = 4,
    CorruptImage = 5,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage as u8
            } else {
                Exit::Ok as u8
            });
        }
    };
    let exit = match cli.command {
        Command::Scan(args) => scan::run(args),
        Command::Version => {
            println!(
                "stella {}\nanalyzers {}",
                env!("CARGO_PKG_VERSION"),
                stella_analyzers::ANALYZER_VERSION
            );
            Exit::Ok
        }
    };
    ExitCode::from(exit as u8)
}
