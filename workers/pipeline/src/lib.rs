//! The scan pipeline, the one implementation that `stella scan` / `report` / `diff`, the
//! worker Jobs, the REST API's reports and analysis-only re-evaluations all call:
//!
//! 1. [`acquire`]: an [`ImageSource`] (OCI layout, docker-archive, registry reference) opened
//!    into a verified image;
//! 2. [`analyze`]: its layers read (cached fragments reused), the analyzers run, and what a
//!    scan stores (SBOMs, BOM-Index, inventory, catalog rows) written: the [`Inventory`];
//! 3. [`evaluate`]: the inventory matched against the imported advisories, VEX consensus,
//!    KEV / EPSS, the policy with its proof ledger, and the unknowns: an [`Evaluation`];
//! 4. [`record`] (the unknowns registry) and [`record_result`] (the policy report and the
//!    catalog's result under pinned inputs, what the operator and the webhook read);
//! 5. [`attest`], when asked: the outputs' in-toto statements, signed into DSSE envelopes.
//!
//! Typed inputs and outputs, no flags and no exit codes: every failure is an [`Error`] whose
//! [`Error::reason`] is one of the [`Reason`] classes the shells map to exit codes, run rows
//! and Scan conditions.
//!
//! [`Inventory`]: stella_sbom::Inventory

mod acquire;
mod analyze;
pub mod attest;
pub mod buildtime;
mod cache;
pub mod delta;
mod evaluate;
pub mod events;
pub mod imported;
mod policy;
mod record;
pub mod referrers;
mod stored;
pub mod transparency;

pub use acquire::{AcquireOptions, ImageSource, acquire};
pub use analyze::{AnalyzeOptions, analyze, analyze_rootfs};
pub use cache::EvaluationCache;
pub use evaluate::{
    Counts, EvaluateInputs, Evaluation, PolicyEvaluation, advisories_for, evaluate, evaluate_with,
};
pub use events::EventContext;
pub use policy::{load_policy_file, load_policy_text};
pub use record::{
    DELTA_KIND, delta_key, record, record_reevaluation, record_result, record_result_reporting,
};
pub use stella_scan::Rootfs;
pub use stored::stored_inventory;

/// Why a step failed, for machines: the worker's termination message and run row, the reason
/// of the Scan's condition, the CLI's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
}

/// A failed step of the pipeline. The message is what people are told (lowercase, no period);
/// [`Error::reason`] is the class machines see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image argument names no layout directory, no archive and no valid reference.
    #[error("{0}: no such OCI layout directory or image tar, nor a valid image reference")]
    UnknownSource(String),
    /// Options that cannot work (a platform that does not parse, an unreadable credentials
    /// file).
    #[error("{0}")]
    InvalidOptions(String),
    /// The image could not be acquired or read.
    #[error("{image}: {source}")]
    Acquire {
        image: String,
        source: stella_acquire::Error,
    },
    /// A layer could not be analysed (integrity, a broken tar).
    #[error("{image}: {source}")]
    Scan {
        image: String,
        source: stella_scan::Error,
    },
    /// The catalog or the object store failed.
    #[error("{what}: {source}")]
    Storage {
        what: String,
        source: stella_store::Error,
    },
    /// The policy does not load: where it came from, and every problem found.
    #[error("{origin}: invalid policy\n{detail}")]
    InvalidPolicy { origin: String, detail: String },
    /// A stored inventory that does not parse.
    #[error("the stored inventory {key} is corrupt: {source}")]
    CorruptInventory {
        key: String,
        source: serde_json::Error,
    },
    /// A blocking step panicked or could not be run.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The failure class.
    pub fn reason(&self) -> Reason {
        match self {
            Error::UnknownSource(_) | Error::InvalidOptions(_) => Reason::InvalidArguments,
            Error::Acquire { source, .. } => acquire_reason(source),
            Error::Scan {
                source: stella_scan::Error::Acquire(source),
                ..
            } => acquire_reason(source),
            // A directory that cannot be read is the caller's to fix, not a corrupt image.
            Error::Scan {
                source: stella_scan::Error::Rootfs { .. },
                ..
            } => Reason::InvalidArguments,
            Error::Scan { .. } => Reason::CorruptImage,
            Error::Storage { .. } => Reason::StorageUnavailable,
            Error::InvalidPolicy { .. } => Reason::InvalidPolicy,
            Error::CorruptInventory { .. } | Error::Internal(_) => Reason::Internal,
        }
    }

    pub(crate) fn storage(what: impl Into<String>) -> impl FnOnce(stella_store::Error) -> Error {
        let what = what.into();
        move |source| Error::Storage { what, source }
    }
}

/// The failure class of an acquisition error.
fn acquire_reason(e: &stella_acquire::Error) -> Reason {
    use stella_acquire::Error as E;
    match e {
        E::UnknownSource { .. } => Reason::InvalidArguments,
        E::NoMatchingPlatform { .. } | E::Registry { status: 404, .. } => Reason::ImageNotFound,
        E::Unreachable { .. } => Reason::Unreachable,
        E::Auth { .. } => Reason::Unauthorized,
        E::Io { .. } => Reason::StorageUnavailable,
        E::Registry { .. } => Reason::RegistryError,
        _ => Reason::CorruptImage,
    }
}

/// A result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The current time at whole seconds: scan manifests record time at that precision, and a
/// replay must evaluate waivers at exactly the recorded instant.
pub fn now_seconds() -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    let now = chrono::Utc::now();
    now.with_nanosecond(0).unwrap_or(now)
}
