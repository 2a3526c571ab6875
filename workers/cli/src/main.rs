//! `stella`: the command-line shell over the scan engine crates.

mod diff;
mod feeds;
mod http;
mod index;
mod policy;
mod report;
mod scan;
mod unknowns;
mod vex;

use clap::{Parser, Subcommand};
use std::path::Path;
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
    /// Scan an image into an SBOM and match it against the imported advisories: a registry
    /// reference, an OCI layout directory (`dir` or `dir:tag`) or a docker-archive tar.
    Scan(scan::Args),
    /// Import advisory feeds (OSV, Debian Security Tracker, Alpine secdb, NVD), build offline
    /// kits, and show their status.
    Feeds(feeds::Args),
    /// Compare two images package by package: added, removed, upgraded / downgraded (by each
    /// ecosystem's own version order) and metadata changes, with the layer responsible.
    Diff(diff::Args),
    /// Query the BOM-Index sidecars of the scanned images: which images contain a package
    /// (exact purl or purl prefix), optionally only where the entrypoint uses it.
    Index(index::Args),
    /// Validate a policy file and print its digest: every problem with its location.
    Policy(policy::Args),
    /// Scan an image and print its policy report (canonical JSON): every finding's decision,
    /// the rule that decided it, its score breakdown, and the PASS / WARN / FAIL verdict.
    Report(report::ReportArgs),
    /// Recompute a proof bundle and prove its root, or replay it with another feed snapshot,
    /// other VEX or another policy and show which decisions and verdicts change.
    Replay(report::ReplayArgs),
    /// Import VEX documents (OpenVEX, CSAF VEX, CycloneDX VEX), show their status, and the
    /// consensus per vulnerability and product under provider trust and justification gates.
    Vex(vex::Args),
    /// The unknowns registry: what scans could not classify (no VEX, conflicting VEX, no
    /// advisory, incomplete SBOM), ranked HOT / WARM / COLD; list, show, resolve, escalate.
    Unknowns(unknowns::Args),
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
    /// `--fail-on`: a finding at or above the threshold.
    Findings = 6,
    /// `--policy`: the verdict is FAIL.
    PolicyFail = 7,
    /// `stella replay`: the recomputed root differs from the recorded one.
    NotProved = 8,
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
        Command::Feeds(args) => feeds::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Index(args) => index::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Report(args) => report::report(args),
        Command::Replay(args) => report::replay(args),
        Command::Vex(args) => vex::run(args),
        Command::Unknowns(args) => unknowns::run(args),
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

pub(crate) fn fail(exit: Exit, message: &str) -> Exit {
    eprintln!("stella: {message}");
    exit
}

/// A runtime and the embedded store under `data_dir` (default: the XDG data directory), with
/// advisories in PostgreSQL when `database_url` is given.
pub(crate) fn open_store(
    data_dir: Option<&Path>,
    database_url: Option<&str>,
) -> Result<(tokio::runtime::Runtime, stella_store::Store), (Exit, String)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| (Exit::Failure, format!("failed to start the runtime: {e}")))?;
    let data_dir = data_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(stella_store::default_data_dir);
    let store = runtime
        .block_on(stella_store::Store::open_embedded(&data_dir))
        .map_err(|e| (Exit::Failure, format!("{}: {e}", data_dir.display())))?;
    // Artifacts in S3 when `STELLA_OBJECT_STORE` names a bucket (`s3://bucket[/prefix][?…]`).
    let store = match std::env::var("STELLA_OBJECT_STORE") {
        Ok(url) if !url.is_empty() => store
            .with_s3(&url)
            .map_err(|e| (Exit::Usage, e.to_string()))?,
        _ => store,
    };
    let store = match database_url {
        Some(url) => runtime
            .block_on(store.with_postgres_advisories(url))
            .map_err(|e| (Exit::Failure, format!("PostgreSQL advisory database: {e}")))?,
        None => store,
    };
    Ok((runtime, store))
}
