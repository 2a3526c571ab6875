//! The command-line shells over the scan engine crates: `stella` ([`stella`], on a laptop or
//! in CI) and `stella-worker` ([`worker::main`], what the operator's Jobs run). Both binaries
//! are a line each; the commands live here, so the worker runs exactly `stella scan`'s
//! pipeline.

mod diff;
mod feeds;
mod http;
mod index;
mod policy;
mod report;
mod scan;
mod unknowns;
mod vex;
pub mod worker;

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

/// Why a step failed, for machines: the worker's termination message and run row, and the
/// reason of the Scan's condition. Each reason has one exit code ([`Reason::exit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Completed,
    /// The registry (or the image source) cannot be reached.
    Unreachable,
    /// The registry refused the credentials (or wants some).
    Unauthorized,
    /// No such image, tag or platform.
    ImageNotFound,
    /// A digest mismatch, a truncated or bomb layer, an invalid manifest.
    CorruptImage,
    /// The policy does not load (syntax, schema, semantic checks).
    InvalidPolicy,
    /// Bad flags, an unreadable credentials or trust file, a reference that names nothing.
    InvalidArguments,
    /// The registry answered with an error after retries (5xx, unexpected status).
    RegistryError,
    /// The catalog or the object store cannot be opened, read or written.
    StorageUnavailable,
    /// Anything else: a bug.
    Internal,
}

impl Reason {
    /// The CamelCase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Completed => "Completed",
            Reason::Unreachable => "Unreachable",
            Reason::Unauthorized => "Unauthorized",
            Reason::ImageNotFound => "ImageNotFound",
            Reason::CorruptImage => "CorruptImage",
            Reason::InvalidPolicy => "InvalidPolicy",
            Reason::InvalidArguments => "InvalidArguments",
            Reason::RegistryError => "RegistryError",
            Reason::StorageUnavailable => "StorageUnavailable",
            Reason::Internal => "Internal",
        }
    }

    /// The exit code of the class.
    pub fn exit_code(self) -> u8 {
        self.exit() as u8
    }

    pub(crate) fn exit(self) -> Exit {
        match self {
            Reason::Completed => Exit::Ok,
            Reason::Unreachable => Exit::Unreachable,
            Reason::Unauthorized => Exit::Auth,
            Reason::CorruptImage => Exit::CorruptImage,
            Reason::ImageNotFound | Reason::InvalidPolicy | Reason::InvalidArguments => Exit::Usage,
            Reason::RegistryError | Reason::StorageUnavailable | Reason::Internal => Exit::Failure,
        }
    }
}

/// A failed step: its reason (hence its exit code) and what to tell people.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) reason: Reason,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(reason: Reason, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
        }
    }

    /// Prints the message as the CLI does and returns the exit code.
    pub(crate) fn report(&self) -> Exit {
        fail(self.reason.exit(), &self.message)
    }
}

/// `stella`: parses the command line and runs the command; the process's exit code.
pub fn stella() -> ExitCode {
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

/// The storage every command uses: the data directory (default: the XDG data directory),
/// the catalog in PostgreSQL when `catalog_url` (`--catalog-url` / `--database-url`) or the
/// environment (`STELLA_CATALOG_URL`, then `STELLA_DATABASE_URL`) names one, artifacts in S3
/// when `STELLA_OBJECT_STORE` names a bucket.
pub(crate) fn storage_config(
    data_dir: Option<&Path>,
    catalog_url: Option<&str>,
) -> stella_store::StoreConfig {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    stella_store::StoreConfig {
        data_dir: data_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(stella_store::default_data_dir),
        catalog_url: catalog_url
            .map(str::to_string)
            .or_else(|| env("STELLA_CATALOG_URL"))
            .or_else(|| env("STELLA_DATABASE_URL")),
        object_store_url: env("STELLA_OBJECT_STORE"),
    }
}

/// Opens `config`'s store: a bad URL is a usage error, an unreachable database another.
pub(crate) async fn open_configured(
    config: &stella_store::StoreConfig,
) -> Result<stella_store::Store, Failure> {
    stella_store::Store::open(config).await.map_err(|e| {
        let reason = match e {
            stella_store::Error::ObjectStoreUrl { .. } | stella_store::Error::CatalogUrl { .. } => {
                Reason::InvalidArguments
            }
            _ => Reason::StorageUnavailable,
        };
        let place = match &config.catalog_url {
            Some(_) => "the PostgreSQL catalog".to_string(),
            None => config.data_dir.display().to_string(),
        };
        Failure::new(reason, format!("{place}: {e}"))
    })
}

/// A runtime and the store [`storage_config`] selects.
pub(crate) fn open_store(
    data_dir: Option<&Path>,
    catalog_url: Option<&str>,
) -> Result<(tokio::runtime::Runtime, stella_store::Store), (Exit, String)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| (Exit::Failure, format!("failed to start the runtime: {e}")))?;
    let config = storage_config(data_dir, catalog_url);
    let store = runtime
        .block_on(open_configured(&config))
        .map_err(|f| (f.reason.exit(), f.message))?;
    Ok((runtime, store))
}
