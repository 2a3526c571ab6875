//! The policy engine: loads a `Policy` (YAML or JSON, a whole manifest or a bare spec),
//! validates it against the CRD's schema and its semantic rules with precise locations,
//! computes its canonical digest, and evaluates findings after VEX into per-finding decisions
//! and a PASS / WARN / FAIL verdict with a score breakdown.
//!
//! The policy's shape is [`stella_model::policy::PolicySpec`] (the `Policy` CRD's spec); this crate adds no
//! parallel types for it. Pure: no clock, no network; the only I/O is [`load_file`].
//!
//! ```no_run
//! let loaded = stella_policy::load_file("policy.yaml".as_ref())?;
//! println!("{}", loaded.digest);
//! # Ok::<(), stella_policy::Error>(())
//! ```

mod canonical;
mod cel;
mod convert;
mod evaluate;
mod glob;
mod ignore;
mod load;
mod scoring;
mod validate;

pub use canonical::{canonical_json, digest, normalize};
pub use convert::parse_severity;
pub use evaluate::{
    Context, Counts, DecidedBy, ExpiredWaiver, FindingDecision, Image, Input, Outcome,
    REPORT_SCHEMA, Report, ScoreBreakdown, UnknownState, VexConsensus, VexStatus, Waiver, evaluate,
};
pub use ignore::{IgnoreEntry, IgnoreFile, MAX_IGNORE_BYTES, MAX_IGNORE_ENTRIES, parse_ignore};
pub use load::{DocumentKind, Loaded, MAX_DOCUMENT_BYTES, load_file, load_str};
pub use scoring::default_scoring;
pub use stella_model::policy::{
    PolicyAction, PolicyRule, PolicySpec, RequireVex, ScoringConfig, VexJustification,
};

use std::fmt;
use std::path::PathBuf;

/// A result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The document is not a valid policy; every problem found, sorted by location.
    #[error("invalid policy: {0}")]
    Invalid(Issues),
}

/// One step of a location inside the document: a mapping key or a list index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    Index(usize),
    Key(String),
}

/// One problem with a policy document, at a location: a path of keys and indices
/// (`rules[3].action`), or, for YAML / JSON syntax errors, a line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// 1-based `(line, column)` of a syntax error; `None` for problems located by path.
    pub position: Option<(u64, u64)>,
    /// Keys and indices from the document root to the offending value (empty: the document).
    pub path: Vec<Segment>,
    /// What is wrong: the offending value and what was expected, lowercase, no period.
    pub message: String,
}

impl Issue {
    pub(crate) fn at(path: Vec<Segment>, message: impl Into<String>) -> Issue {
        Issue {
            position: None,
            path,
            message: message.into(),
        }
    }

    /// The location as shown: `3:4` for a position, `rules[3].action` for a path,
    /// `(document)` for the whole document.
    pub fn location(&self) -> String {
        if let Some((line, column)) = self.position {
            return format!("{line}:{column}");
        }
        if self.path.is_empty() {
            return "(document)".into();
        }
        render_path(&self.path)
    }

    fn sort_key(&self) -> (u8, (u64, u64), &[Segment], &str) {
        match self.position {
            Some(position) => (0, position, &[], &self.message),
            None => (1, (0, 0), &self.path, &self.message),
        }
    }
}

/// `[Key("rules"), Index(3), Key("action")]` → `rules[3].action`.
pub(crate) fn render_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
        }
    }
    out
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

/// Every problem found in a document, sorted by location (syntax positions first, then
/// paths in document-structure order: keys alphabetically, list indices numerically).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Issues(pub Vec<Issue>);

impl Issues {
    /// Sorts by location and drops exact duplicates and, where the schema already reported a
    /// location, later problems at the same location.
    pub(crate) fn finish(mut issues: Vec<Issue>) -> Issues {
        let mut seen = std::collections::HashSet::new();
        issues.retain(|issue| seen.insert((issue.position, issue.path.clone())));
        issues.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        Issues(issues)
    }

    /// The problems, one per line, as `location: message`.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(Issue::to_string).collect()
    }
}

impl fmt::Display for Issues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems", many.len())?;
                for issue in many {
                    write!(f, "\n  {issue}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Issues {}
