//! The canonical advisory model every feed is normalised into (OSV-shaped).

use serde::{Deserialize, Serialize};

/// One advisory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<SeverityScore>,
    pub modified: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    pub affected: Vec<Affected>,
    /// CWE identifiers (`CWE-787`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cwes: Vec<String>,
    /// Reference URLs, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Which feed format it came from: `osv`, `debian-tracker`, `alpine-secdb`, `nvd`.
    pub source: String,
}

/// A severity statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityScore {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, or `urgency` (distro trackers).
    pub kind: String,
    /// The vector or level as given.
    pub score: String,
}

/// What an advisory affects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affected {
    /// OSV ecosystem (`Debian:12`, `Alpine:v3.19`, `PyPI`, `npm`, `Maven`, …).
    pub ecosystem: String,
    /// Package name in that ecosystem (for distros, the source package).
    pub package: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Explicitly enumerated affected versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// The distro says this release was never affected (`fixed_version: "0"`).
    #[serde(default)]
    pub not_affected: bool,
    /// For an unfixed entry, the distro's decision: `will-not-fix` (Debian `nodsa_reason:
    /// ignored`) or `fix-deferred` (`postponed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_state: Option<String>,
}

/// A version range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// `ECOSYSTEM`, `SEMVER` or `GIT`.
    pub kind: String,
    pub events: Vec<Event>,
}

/// A range event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// The `url`s of a JSON list of `{"url": …}` objects (OSV and NVD `references`), sorted and
/// deduplicated.
pub(crate) fn reference_urls(list: Option<&serde_json::Value>) -> Vec<String> {
    let mut urls: Vec<String> = list
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("url").and_then(|u| u.as_str()).map(str::to_string))
        .collect();
    urls.sort();
    urls.dedup();
    urls
}
