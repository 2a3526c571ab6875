//! The operator binary: a thin shell over the library crates.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    Ok(stella_operator::cli::Cli::parse().run()?)
}
