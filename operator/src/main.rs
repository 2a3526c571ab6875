//! The operator binary: a thin shell over the library crates.

use anyhow::Result;
use clap::Parser;

mod cli;

fn main() -> Result<()> {
    cli::Cli::parse().run()
}
