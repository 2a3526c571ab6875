//! Alpine secdb JSON (`{"distroversion": "v3.19", "packages": [{"pkg": {"name", "secfixes":
//! {fixed version: [CVE ids]}}}]}`) → advisories per CVE for that release. A fixed version of
//! `0` means the release was never affected.

use crate::model::{Advisory, Affected, Event, Range};
use std::collections::BTreeMap;

/// Why a secdb document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("secdb without distroversion")]
    MissingRelease,
    #[error("unexpected distroversion {0:?}")]
    InvalidRelease(String),
    #[error("secdb without packages")]
    MissingPackages,
    #[error("package entry without pkg")]
    EntryWithoutPkg,
    #[error("package without name")]
    PackageWithoutName,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a JSON document looks like an Alpine secdb file.
pub fn is_secdb(value: &serde_json::Value) -> bool {
    value.get("distroversion").is_some_and(|v| v.is_string())
        && value.get("packages").is_some_and(|p| p.is_array())
}

/// Parses a secdb document into advisories (sorted by id).
pub fn parse(value: &serde_json::Value) -> Result<Vec<Advisory>> {
    let release = value
        .get("distroversion")
        .and_then(|v| v.as_str())
        .ok_or(Error::MissingRelease)?;
    if !release.starts_with('v')
        || !release[1..]
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::InvalidRelease(release.to_string()));
    }
    let ecosystem = format!("Alpine:{release}");
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for entry in value
        .get("packages")
        .and_then(|p| p.as_array())
        .ok_or(Error::MissingPackages)?
    {
        let pkg = entry.get("pkg").ok_or(Error::EntryWithoutPkg)?;
        let name = pkg
            .get("name")
            .and_then(|n| n.as_str())
            .filter(|n| !n.is_empty())
            .ok_or(Error::PackageWithoutName)?;
        let Some(secfixes) = pkg.get("secfixes").and_then(|s| s.as_object()) else {
            continue;
        };
        for (fixed, ids) in secfixes {
            for id in ids
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_str())
            {
                // Entries may carry more than one identifier ("CVE-2018-1 GHSA-…"): the first names it.
                let Some(id) = id.split_whitespace().next() else {
                    continue;
                };
                let advisory = by_id.entry(id.to_string()).or_insert_with(|| Advisory {
                    id: id.to_string(),
                    aliases: vec![],
                    summary: None,
                    severity: vec![],
                    modified: String::new(),
                    published: None,
                    withdrawn: None,
                    affected: vec![],
                    cwes: vec![],
                    references: vec![],
                    source: "alpine-secdb".into(),
                });
                let not_affected = fixed == "0";
                let mut events = vec![Event::Introduced("0".into())];
                if !not_affected {
                    events.push(Event::Fixed(fixed.clone()));
                }
                advisory.affected.push(Affected {
                    ecosystem: ecosystem.clone(),
                    package: name.to_string(),
                    purl: None,
                    ranges: vec![Range {
                        kind: "ECOSYSTEM".into(),
                        events,
                    }],
                    versions: vec![],
                    not_affected,
                    fix_state: None,
                });
            }
        }
    }
    Ok(by_id.into_values().collect())
}
