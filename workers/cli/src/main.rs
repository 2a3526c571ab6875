//! `stella`: the command-line shell over the scan engine crates.

use clap::{Parser, Subcommand};

/// Stella Ops: deterministic SBOMs, advisories, VEX and policy for container images.
#[derive(Debug, Parser)]
#[command(name = "stella", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version of stella and of the analyzer set.
    Version,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Version => {
            println!("stella {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
