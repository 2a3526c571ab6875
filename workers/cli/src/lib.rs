//! The command-line shells over the scan engine crates: `stella` ([`stella`], on a laptop or
//! in CI) and `stella-worker` ([`worker::main`], what the operator's Jobs run). Both binaries
//! are a line each; the commands live here, so the worker runs exactly `stella scan`'s
//! pipeline.

mod attest;
mod config;
mod diff;
mod feeds;
mod index;
mod policy;
mod report;
mod sbom;
mod scan;
mod unknowns;
mod vex;
pub mod worker;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Stella Ops: deterministic SBOMs, advisories, VEX and policy for container images — no
/// cluster and no database server needed.
#[derive(Debug, Parser)]
#[command(name = "stella", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Configuration file (default: `$STELLA_CONFIG`, else `stella.yaml` here when there is
    /// one): each command's flags by long name. A flag given, then its `STELLA_<FLAG>`
    /// variable, then the file, then the default.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan an image into an SBOM and match it against the imported advisories: a registry
    /// reference, an OCI layout directory (`dir` or `dir:tag`), a docker-archive tar, or an
    /// existing SBOM (`sbom:FILE`: CycloneDX 1.4–1.6, SPDX 2.3 or SPDX 3.0.1 JSON).
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
    /// Attestations: `keygen` and `public-key` for keys (files or PKCS#11), `sign` for an SBOM
    /// made elsewhere, `attach` / `list` / `fetch` for the image's referrers in its registry,
    /// `verify-log` for a Sigstore bundle's transparency-log entries.
    Attest(attest::Args),
    /// Verify a DSSE envelope offline against trusted public keys: prints the signer's key
    /// id, the subjects, the predicate and its time; exits 9 when it does not verify.
    Verify(attest::VerifyArgs),
    /// The SBOM of a root filesystem at build time (`--rootfs DIR`), or run as a BuildKit SBOM
    /// generator (`--buildkit`); sign it with `stella attest sign`.
    Sbom(sbom::Args),
    /// Print the version of stella and of the analyzer set.
    Version,
}

/// A command whose subcommands share the storage flags (`stella feeds`, `vex`, `index`,
/// `unknowns`).
#[derive(Debug, clap::Args)]
pub(crate) struct WithStorage<C: clap::Subcommand> {
    #[command(subcommand)]
    pub(crate) command: C,
    #[command(flatten)]
    pub(crate) storage: stella_store::StorageArgs,
}

/// Exit codes: distinct per failure class so CI scripts can tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Ok,
    Failure,
    Usage,
    Unreachable,
    Auth,
    CorruptImage,
    /// `--fail-on`: a finding at or above the threshold (6).
    Findings,
    /// `--policy`: the verdict is FAIL (7).
    PolicyFail,
    /// `stella replay`: the recomputed root differs from the recorded one (8).
    NotProved,
    /// `stella verify`: the envelope does not verify (signature, key, statement, subject,
    /// age or artifact) (9).
    NotVerified,
    /// `--exit-code N`: a reported finding remains.
    Gate(u8),
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Unreachable => 3,
            Exit::Auth => 4,
            Exit::CorruptImage => 5,
            Exit::Findings => 6,
            Exit::PolicyFail => 7,
            Exit::NotProved => 8,
            Exit::NotVerified => 9,
            Exit::Gate(code) => code,
        }
    }
}

pub use stella_pipeline::Reason;

/// The exit code of each failure class (distinct per class, so CI scripts can tell them
/// apart; the worker exits with the same codes).
pub trait ExitClass {
    /// The exit code of the class.
    fn exit_code(self) -> u8;
}

impl ExitClass for Reason {
    fn exit_code(self) -> u8 {
        exit_of(self).code()
    }
}

pub(crate) fn exit_of(reason: Reason) -> Exit {
    match reason {
        Reason::Completed => Exit::Ok,
        Reason::Unreachable => Exit::Unreachable,
        Reason::Unauthorized => Exit::Auth,
        Reason::CorruptImage => Exit::CorruptImage,
        Reason::ImageNotFound | Reason::InvalidPolicy | Reason::InvalidArguments => Exit::Usage,
        Reason::RegistryError | Reason::StorageUnavailable | Reason::Internal => Exit::Failure,
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
        fail(exit_of(self.reason), &self.message)
    }
}

impl From<stella_pipeline::Error> for Failure {
    fn from(e: stella_pipeline::Error) -> Failure {
        Failure::new(e.reason(), e.to_string())
    }
}

/// The `stella` command line's clap definition (for checks of its shape).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// `stella`: parses the command line and runs the command; the process's exit code.
pub fn stella() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let command = match config::apply(command(), &args) {
        Ok(command) => command,
        Err(message) => return ExitCode::from(fail(Exit::Usage, &message).code()),
    };
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                Exit::Ok.code()
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
        Command::Attest(args) => attest::run(args),
        Command::Verify(args) => attest::verify(args),
        Command::Sbom(args) => sbom::run(args),
        Command::Version => {
            println!(
                "stella {}\nanalyzers {}",
                env!("CARGO_PKG_VERSION"),
                stella_analyzers::ANALYZER_VERSION
            );
            Exit::Ok
        }
    };
    ExitCode::from(exit.code())
}

pub(crate) fn fail(exit: Exit, message: &str) -> Exit {
    eprintln!("stella: {message}");
    exit
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

/// A runtime and the store `config` selects.
pub(crate) fn open_store(
    config: &stella_store::StoreConfig,
) -> Result<(tokio::runtime::Runtime, stella_store::Store), (Exit, String)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| (Exit::Failure, format!("failed to start the runtime: {e}")))?;
    let store = runtime
        .block_on(open_configured(config))
        .map_err(|f| (exit_of(f.reason), f.message))?;
    Ok((runtime, store))
}
