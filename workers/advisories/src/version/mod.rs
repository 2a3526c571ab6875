//! Version comparison, one module per scheme. Each parses strictly (a clear error for what the
//! native tool would reject) and compares with the native tool's exact rules.

pub mod apk;
pub mod dpkg;
pub mod golang;
pub mod maven;
pub mod nuget;
pub mod pep440;
pub mod rpm;
pub mod semver;

/// A version the scheme's parser rejects, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {scheme} version {version:?}: {reason}")]
pub struct InvalidVersion {
    pub scheme: &'static str,
    pub version: String,
    pub reason: String,
}

impl InvalidVersion {
    pub(crate) fn new(
        scheme: &'static str,
        version: &str,
        reason: impl Into<String>,
    ) -> InvalidVersion {
        InvalidVersion {
            scheme,
            version: version.to_string(),
            reason: reason.into(),
        }
    }
}
