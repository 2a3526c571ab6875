//! OSV 1.x records → the canonical model, with the checks the OSV linter makes: an id and a
//! modified time, ranges whose events begin with `introduced`, known range types, distinct
//! affected entries, non-empty `affected` (unless withdrawn).

use crate::model::{Advisory, Affected, Event, Range, SeverityScore};
use serde_json::Value;
use std::collections::BTreeSet;

/// Why a record was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("missing id")]
    MissingId,
    /// A record with an id that breaks one of the linter's rules.
    #[error("{id}: {problem}")]
    Invalid { id: String, problem: Problem },
}

/// The rule an identified record breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("missing modified")]
    MissingModified,
    #[error("range without type")]
    RangeWithoutType,
    #[error("unknown range type {0}")]
    UnknownRangeType(String),
    /// The event object as JSON.
    #[error("unknown event {0}")]
    UnknownEvent(Value),
    #[error("non-distinct event value {value} in a {kind} range")]
    DuplicateEventValue { value: String, kind: String },
    #[error("missing 'introduced' object in event")]
    MissingIntroduced,
    #[error("package without ecosystem")]
    PackageWithoutEcosystem,
    #[error("package without name")]
    PackageWithoutName,
    #[error("non-distinct versions for {ecosystem}/{name}")]
    DuplicateVersions { ecosystem: String, name: String },
    #[error("non-distinct affected entries for {ecosystem}/{name}")]
    DuplicateAffected { ecosystem: String, name: String },
    #[error("Invalid Affected: affected field cannot be null or empty")]
    NoAffected,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses one OSV record.
pub fn parse(bytes: &[u8]) -> Result<Advisory> {
    let value: Value = serde_json::from_slice(bytes)?;
    from_value(&value)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| x.as_str()).map(str::to_string)
}

/// Checks and converts one OSV record already decoded.
pub fn from_value(v: &Value) -> Result<Advisory> {
    let id = text(v, "id")
        .filter(|s| !s.is_empty())
        .ok_or(Error::MissingId)?;
    let err = |problem: Problem| Error::Invalid {
        id: id.clone(),
        problem,
    };
    let modified = text(v, "modified").ok_or_else(|| err(Problem::MissingModified))?;
    let withdrawn = text(v, "withdrawn");
    let aliases = v
        .get("aliases")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let severity = v
        .get("severity")
        .and_then(|s| s.as_array())
        .map(|s| {
            s.iter()
                .filter_map(|x| {
                    Some(SeverityScore {
                        kind: text(x, "type")?,
                        score: text(x, "score")?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut affected = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in v
        .get("affected")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
    {
        let mut ranges = Vec::new();
        for range in entry
            .get("ranges")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let kind = text(range, "type").ok_or_else(|| err(Problem::RangeWithoutType))?;
            if !["ECOSYSTEM", "SEMVER", "GIT"].contains(&kind.as_str()) {
                return Err(err(Problem::UnknownRangeType(kind)));
            }
            let mut events = Vec::new();
            for event in range
                .get("events")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten()
            {
                let ev = if let Some(x) = text(event, "introduced") {
                    Event::Introduced(x)
                } else if let Some(x) = text(event, "fixed") {
                    Event::Fixed(x)
                } else if let Some(x) = text(event, "last_affected") {
                    Event::LastAffected(x)
                } else if let Some(x) = text(event, "limit") {
                    Event::Limit(x)
                } else {
                    return Err(err(Problem::UnknownEvent(event.clone())));
                };
                events.push(ev);
            }
            let mut values = BTreeSet::new();
            for e in &events {
                let (Event::Introduced(v)
                | Event::Fixed(v)
                | Event::LastAffected(v)
                | Event::Limit(v)) = e;
                if !values.insert(v.clone()) {
                    return Err(err(Problem::DuplicateEventValue {
                        value: v.clone(),
                        kind,
                    }));
                }
            }
            if !events.iter().any(|e| matches!(e, Event::Introduced(_))) {
                return Err(err(Problem::MissingIntroduced));
            }
            ranges.push(Range { kind, events });
        }
        // Entries without a package (repository-only GIT ranges) are valid but name nothing to match.
        let Some(package) = entry.get("package") else {
            continue;
        };
        let ecosystem = text(package, "ecosystem")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(Problem::PackageWithoutEcosystem))?;
        let name = text(package, "name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(Problem::PackageWithoutName))?;
        let versions: Vec<String> = entry
            .get("versions")
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let distinct: BTreeSet<&String> = versions.iter().collect();
        if distinct.len() != versions.len() {
            return Err(err(Problem::DuplicateVersions { ecosystem, name }));
        }
        let key =
            serde_json::to_string(&(&ecosystem, &name, &ranges, &versions)).unwrap_or_default();
        if !seen.insert(key) {
            return Err(err(Problem::DuplicateAffected { ecosystem, name }));
        }
        affected.push(Affected {
            ecosystem,
            package: name,
            purl: text(package, "purl"),
            ranges,
            versions,
            not_affected: false,
            fix_state: None,
        });
    }
    let declared = v
        .get("affected")
        .and_then(|a| a.as_array())
        .is_some_and(|a| !a.is_empty());
    if !declared && withdrawn.is_none() {
        return Err(err(Problem::NoAffected));
    }
    // GitHub advisories in OSV form carry their CWEs in `database_specific.cwe_ids`.
    let mut cwes: Vec<String> = v
        .pointer("/database_specific/cwe_ids")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    cwes.sort();
    cwes.dedup();
    let references = crate::model::reference_urls(v.get("references"));
    Ok(Advisory {
        id,
        aliases,
        summary: text(v, "summary"),
        severity,
        modified,
        published: text(v, "published"),
        withdrawn,
        affected,
        cwes,
        references,
        source: "osv".into(),
    })
}
