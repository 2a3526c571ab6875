//! The operator binary: a thin shell over the library crates.

use anyhow::Result;
use clap::Parser;

fn main() -> Result<()> {
    stella_operator::cli::Cli::parse().run()
}
