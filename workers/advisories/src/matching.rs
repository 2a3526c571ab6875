//! Matching packages to advisories: OS packages only against their own distro release's
//! records, by source package; language packages against their ecosystem; each ecosystem's
//! own version comparator; distro "not affected" respected. Every finding says which record,
//! which range and which comparator decided it.

use crate::model::{Advisory, Event, Range};
use crate::version::{apk, dpkg, golang, maven, nuget, pep440, rpm, semver};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use stella_model::Severity;

/// A package to match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub purl: String,
    pub name: String,
    pub version: String,
    /// Matching key: (OSV ecosystem, package name in it).
    pub ecosystem: String,
    pub package: String,
    pub layer_digest: Option<String>,
}

/// A package name as its ecosystem compares names, so an installed package and an advisory
/// that spell it differently meet: PyPI per PEP 503 (lowercase, each run of `-`, `_`, `.` one
/// `-`: `Products.PluggableAuthService` → `products-pluggableauthservice`), NuGet ids
/// case-insensitively (`Newtonsoft.Json` → `newtonsoft.json`), crates.io case-insensitively
/// with `-` and `_` alike. npm, Maven `group:artifact`, Go module paths (case-encoded in the
/// module cache, case-sensitive as written), Debian, Alpine and RPM names compare as written.
pub fn package_key<'n>(ecosystem: &str, name: &'n str) -> std::borrow::Cow<'n, str> {
    use std::borrow::Cow;
    match ecosystem {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut separator = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    separator = true;
                    continue;
                }
                if separator && !out.is_empty() {
                    out.push('-');
                }
                separator = false;
                out.extend(c.to_lowercase());
            }
            if out == name {
                Cow::Borrowed(name)
            } else {
                Cow::Owned(out)
            }
        }
        "NuGet" if name.chars().any(char::is_uppercase) => Cow::Owned(name.to_lowercase()),
        "crates.io" if name.chars().any(|c| c.is_uppercase() || c == '_') => {
            Cow::Owned(name.to_lowercase().replace('_', "-"))
        }
        _ => Cow::Borrowed(name),
    }
}

/// The match key of a package: its OSV ecosystem and name, from its purl type and the distro.
/// `None` when no advisory source covers it.
pub fn key(
    purl_type: &str,
    name: &str,
    namespace: Option<&str>,
    source_name: Option<&str>,
    distro: Option<(&str, &str)>,
) -> Option<(String, String)> {
    let base = source_name.unwrap_or(name).to_string();
    match purl_type {
        "deb" => {
            let (id, version) = distro?;
            (id == "debian").then(|| (format!("Debian:{version}"), base))
        }
        "apk" => {
            let (id, version) = distro?;
            let minor: Vec<&str> = version.split('.').take(2).collect();
            (id == "alpine").then(|| (format!("Alpine:v{}", minor.join(".")), base))
        }
        "npm" => Some((
            "npm".into(),
            match namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name.into(),
            },
        )),
        "pypi" => Some(("PyPI".into(), package_key("PyPI", name).into_owned())),
        "maven" => Some(("Maven".into(), format!("{}:{name}", namespace?))),
        "golang" => Some((
            "Go".into(),
            match namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name.into(),
            },
        )),
        "nuget" => Some(("NuGet".into(), package_key("NuGet", name).into_owned())),
        "cargo" => Some((
            "crates.io".into(),
            package_key("crates.io", name).into_owned(),
        )),
        _ => None,
    }
}

/// Which comparator an ecosystem's ECOSYSTEM ranges use.
pub fn comparator_name(ecosystem: &str) -> Option<&'static str> {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    Some(match base {
        "Debian" | "Ubuntu" => "dpkg",
        "Alpine" => "apk",
        "Red Hat" | "AlmaLinux" | "Rocky Linux" | "SUSE" | "openSUSE" | "Mageia" => "rpm",
        "npm" | "crates.io" => "semver",
        "PyPI" => "pep440",
        "Maven" => "maven",
        "NuGet" => "nuget",
        "Go" => "go",
        _ => return None,
    })
}

/// Longest version compared: no real version comes near it, and some orders (Maven's
/// `ComparableVersion`) cost more than linear time in the length (found by fuzzing: a 29 kB
/// "version" took 3 s).
pub const MAX_VERSION_LEN: usize = 1024;

/// Compares two versions with the named comparator (`dpkg`, `rpm`, `apk`, `semver`, `pep440`,
/// `maven`, `nuget`, `go`); `None` when either does not parse or is longer than
/// [`MAX_VERSION_LEN`].
pub fn compare(comparator: &str, a: &str, b: &str) -> Option<Ordering> {
    if a.len() > MAX_VERSION_LEN || b.len() > MAX_VERSION_LEN {
        return None;
    }
    match comparator {
        "dpkg" => dpkg::compare(a, b).ok(),
        "apk" => Some(apk::compare(a, b)),
        "rpm" => rpm::compare(a, b).ok(),
        "semver" => semver::compare(
            a,
            b,
            semver::Options {
                loose: true,
                include_prerelease: true,
            },
        )
        .ok(),
        "pep440" => pep440::compare(a, b).ok(),
        "maven" => Some(maven::compare(a, b)),
        "nuget" => nuget::compare(a, b).ok(),
        "go" => {
            let v = |s: &str| {
                if s.starts_with('v') {
                    s.to_string()
                } else {
                    format!("v{s}")
                }
            };
            golang::compare(&v(a), &v(b)).ok()
        }
        _ => None,
    }
}

/// Whether `version` falls in `range` (the OSV evaluation algorithm over sorted events).
pub fn in_range(version: &str, range: &Range, comparator: &str) -> Option<bool> {
    let comparator = if range.kind == "SEMVER" {
        "semver"
    } else {
        comparator
    };
    if range.kind == "GIT" {
        return None;
    }
    let value = |e: &Event| match e {
        Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => {
            v.clone()
        }
    };
    let mut events = range.events.clone();
    let mut failed = false;
    events.sort_by(|a, b| {
        let (va, vb) = (value(a), value(b));
        if va == "0" {
            return Ordering::Less;
        }
        if vb == "0" {
            return Ordering::Greater;
        }
        compare(comparator, &va, &vb).unwrap_or_else(|| {
            failed = true;
            Ordering::Equal
        })
    });
    let mut affected = false;
    for event in &events {
        match event {
            Event::Introduced(v) => {
                if v == "0" || compare(comparator, version, v)? != Ordering::Less {
                    affected = true;
                }
            }
            Event::Fixed(v) | Event::Limit(v) => {
                if compare(comparator, version, v)? != Ordering::Less {
                    affected = false;
                }
            }
            Event::LastAffected(v) => {
                if compare(comparator, version, v)? == Ordering::Greater {
                    affected = false;
                }
            }
        }
    }
    (!failed).then_some(affected)
}

/// A vulnerable package.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub id: String,
    pub aliases: Vec<String>,
    pub purl: String,
    pub package: String,
    pub installed: String,
    pub fixed: Vec<String>,
    /// `fixed` (a fixed version exists), `unfixed`, `will-not-fix` or `fix-deferred` (the
    /// distro's decision for an unfixed issue).
    pub status: String,
    /// `Critical`, `High`, `Medium`, `Low`, `None` or `Unknown`.
    pub severity: Severity,
    /// The CVSS base score behind the severity, when it comes from a vector.
    pub cvss_score: Option<f64>,
    /// The vector or distro urgency the severity comes from.
    pub severity_source: Option<String>,
    /// The feed that supplied it (`osv`, `nvd`, `debian-tracker`, …).
    pub severity_origin: Option<String>,
    pub layer_digest: Option<String>,
    /// Whether the image's entrypoint uses the package (its usage view holds it); set by the
    /// caller, which knows the image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub used_by_entrypoint: bool,
    pub evidence: Evidence,
}

/// Why a finding was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub advisory: String,
    pub source: String,
    pub ecosystem: String,
    /// The range or version list that matched, rendered.
    pub matched: String,
    pub comparator: String,
}

/// The severity of a finding: the matched advisory's own CVSS v3, else NVD's CVSS v3 for the
/// same CVE, else a CVSS v2 (the advisory's, then NVD's), else the distro's urgency.
fn severity(advisory: &Advisory, nvd: Option<&Advisory>) -> Rated {
    let best = |a: &Advisory, kind: &str, score: fn(&str) -> Option<f64>| {
        a.severity
            .iter()
            .filter(|s| s.kind == kind || (kind == "CVSS_V3" && s.score.starts_with("CVSS:3")))
            .filter_map(|s| Some((score(&s.score)?, s.score.clone())))
            .max_by(|x, y| x.0.total_cmp(&y.0))
            .map(|(score, vector)| (score, vector, a.source.clone()))
    };
    let v3 = best(advisory, "CVSS_V3", crate::cvss::v3_base_score)
        .or_else(|| nvd.and_then(|n| best(n, "CVSS_V3", crate::cvss::v3_base_score)));
    if let Some((score, vector, origin)) = v3 {
        return Rated {
            rating: crate::cvss::rating(score),
            score: Some(score),
            source: Some(vector),
            origin: Some(origin),
        };
    }
    let v2 = best(advisory, "CVSS_V2", crate::cvss::v2_base_score)
        .or_else(|| nvd.and_then(|n| best(n, "CVSS_V2", crate::cvss::v2_base_score)));
    if let Some((score, vector, origin)) = v2 {
        return Rated {
            rating: crate::cvss::v2_rating(score),
            score: Some(score),
            source: Some(vector),
            origin: Some(origin),
        };
    }
    for s in &advisory.severity {
        if s.kind == "urgency" {
            let level = match s.score.trim_end_matches('*') {
                "high" => Severity::High,
                "medium" => Severity::Medium,
                "low" | "unimportant" => Severity::Low,
                _ => Severity::Unknown,
            };
            return Rated {
                rating: level,
                score: None,
                source: Some(format!("debian urgency {}", s.score)),
                origin: Some(advisory.source.clone()),
            };
        }
    }
    Rated {
        rating: Severity::Unknown,
        score: None,
        source: None,
        origin: None,
    }
}

struct Rated {
    rating: Severity,
    score: Option<f64>,
    source: Option<String>,
    origin: Option<String>,
}

/// (ecosystem, [`package_key`]) → (advisory, affected entry) positions.
type ByKey<'a> =
    std::collections::HashMap<(&'a str, std::borrow::Cow<'a, str>), Vec<(usize, usize)>>;

/// Advisories indexed by (ecosystem, package): built once when a store is loaded.
#[derive(Debug)]
pub struct Index<'a> {
    advisories: &'a [Advisory],
    by_key: ByKey<'a>,
    /// NVD enrichment records by CVE id.
    nvd: std::collections::HashMap<&'a str, usize>,
}

impl<'a> Index<'a> {
    pub fn new(advisories: &'a [Advisory]) -> Index<'a> {
        let mut by_key = ByKey::new();
        let mut nvd = std::collections::HashMap::new();
        for (a, advisory) in advisories.iter().enumerate() {
            if advisory.withdrawn.is_some() {
                continue;
            }
            if advisory.source == "nvd" {
                nvd.insert(advisory.id.as_str(), a);
            }
            for (f, affected) in advisory.affected.iter().enumerate() {
                by_key
                    .entry((
                        affected.ecosystem.as_str(),
                        package_key(&affected.ecosystem, &affected.package),
                    ))
                    .or_default()
                    .push((a, f));
            }
        }
        Index {
            advisories,
            by_key,
            nvd,
        }
    }

    /// Matches candidates; findings sorted by (purl, id).
    pub fn match_all(&self, candidates: &[Candidate]) -> Vec<Finding> {
        let advisories = self.advisories;
        let mut findings = Vec::new();
        for c in candidates {
            let Some(hits) = self
                .by_key
                .get(&(c.ecosystem.as_str(), package_key(&c.ecosystem, &c.package)))
            else {
                continue;
            };
            let Some(comparator) = comparator_name(&c.ecosystem) else {
                continue;
            };
            for &(a, f) in hits {
                let (advisory, affected) = (&advisories[a], &advisories[a].affected[f]);
                let nvd = std::iter::once(&advisory.id)
                    .chain(&advisory.aliases)
                    .find_map(|id| self.nvd.get(id.as_str()))
                    .map(|&n| &advisories[n]);
                if let Some(finding) = finding(c, advisory, affected, comparator, nvd) {
                    findings.push(finding);
                }
            }
        }
        findings.sort_by(|a, b| a.purl.cmp(&b.purl).then_with(|| a.id.cmp(&b.id)));
        findings.dedup_by(|a, b| a.purl == b.purl && a.id == b.id);
        findings
    }
}

fn finding(
    c: &Candidate,
    advisory: &Advisory,
    affected: &crate::model::Affected,
    comparator: &str,
    nvd: Option<&Advisory>,
) -> Option<Finding> {
    if affected.not_affected {
        return None;
    }
    let mut matched = None;
    if affected.versions.iter().any(|v| v == &c.version) {
        matched = Some(format!("versions contains {}", c.version));
    }
    for range in &affected.ranges {
        if matched.is_none() && in_range(&c.version, range, comparator) == Some(true) {
            let events: Vec<String> = range
                .events
                .iter()
                .map(|e| match e {
                    Event::Introduced(v) => format!("introduced {v}"),
                    Event::Fixed(v) => format!("fixed {v}"),
                    Event::LastAffected(v) => format!("last_affected {v}"),
                    Event::Limit(v) => format!("limit {v}"),
                })
                .collect();
            matched = Some(format!("{} range [{}]", range.kind, events.join(", ")));
        }
    }
    let matched = matched?;
    let fixed: Vec<String> = affected
        .ranges
        .iter()
        .flat_map(|r| &r.events)
        .filter_map(|e| match e {
            Event::Fixed(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    let severity = severity(advisory, nvd);
    let status = if !fixed.is_empty() {
        "fixed".to_string()
    } else {
        affected
            .fix_state
            .clone()
            .unwrap_or_else(|| "unfixed".into())
    };
    Some(Finding {
        id: advisory.id.clone(),
        aliases: advisory.aliases.clone(),
        purl: c.purl.clone(),
        package: c.name.clone(),
        installed: c.version.clone(),
        fixed,
        status,
        severity: severity.rating,
        cvss_score: severity.score,
        severity_source: severity.source,
        severity_origin: severity.origin,
        layer_digest: c.layer_digest.clone(),
        used_by_entrypoint: false,
        evidence: Evidence {
            advisory: advisory.id.clone(),
            source: advisory.source.clone(),
            ecosystem: c.ecosystem.clone(),
            matched,
            comparator: comparator.into(),
        },
    })
}

/// Matches candidates against advisories (builds a one-off [`Index`]).
pub fn match_all(candidates: &[Candidate], advisories: &[Advisory]) -> Vec<Finding> {
    Index::new(advisories).match_all(candidates)
}

/// The content hash of a set of advisories: SHA-256 over their canonical JSON, sorted by id.
pub fn snapshot_hash(advisories: &[Advisory]) -> String {
    use sha2::{Digest, Sha256};
    let mut lines: Vec<String> = advisories
        .iter()
        .map(|a| serde_json::to_string(a).unwrap_or_default())
        .collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for line in lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}
