//! The Debian Security Tracker JSON (`{source package: {CVE: {releases: {codename: {status,
//! fixed_version, urgency}}}}}`) → advisories per CVE, one affected entry per release.
//! `fixed_version: "0"` means the release was never affected; an open issue with
//! `nodsa_reason: "ignored"` will not be fixed, with `"postponed"` is deferred.

use crate::model::{Advisory, Affected, Event, Range, SeverityScore};
use std::collections::BTreeMap;

/// Why tracker data was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not Debian tracker JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Debian codename → `VERSION_ID`.
pub fn release_version(codename: &str) -> Option<&'static str> {
    Some(match codename {
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        "sid" => "unstable",
        _ => return None,
    })
}

/// Parses the tracker's JSON into one advisory per CVE (sorted by id).
pub fn parse(bytes: &[u8]) -> Result<Vec<Advisory>> {
    let root: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
        serde_json::from_slice(bytes)?;
    let mut by_cve: BTreeMap<String, Advisory> = BTreeMap::new();
    for (package, cves) in root {
        for (cve, entry) in cves {
            if !cve.starts_with("CVE-") && !cve.starts_with("TEMP-") {
                continue;
            }
            let advisory = by_cve.entry(cve.clone()).or_insert_with(|| Advisory {
                id: cve.clone(),
                aliases: vec![],
                summary: entry
                    .get("description")
                    .and_then(|d| d.as_str())
                    .map(str::to_string),
                severity: vec![],
                modified: String::new(),
                published: None,
                withdrawn: None,
                affected: vec![],
                cwes: vec![],
                references: vec![],
                source: "debian-tracker".into(),
            });
            let Some(releases) = entry.get("releases").and_then(|r| r.as_object()) else {
                continue;
            };
            for (codename, release) in releases {
                let Some(version) = release_version(codename) else {
                    continue;
                };
                let status = release.get("status").and_then(|s| s.as_str()).unwrap_or("");
                let fixed = release.get("fixed_version").and_then(|s| s.as_str());
                if let Some(urgency) = release.get("urgency").and_then(|u| u.as_str())
                    && !advisory.severity.iter().any(|s| s.score == urgency)
                {
                    advisory.severity.push(SeverityScore {
                        kind: "urgency".into(),
                        score: urgency.into(),
                    });
                }
                // An open issue the security team decided not to fix (or to fix later).
                let fix_state = match release.get("nodsa_reason").and_then(|r| r.as_str()) {
                    _ if status == "resolved" => None,
                    Some("ignored") => Some("will-not-fix".to_string()),
                    Some("postponed") => Some("fix-deferred".to_string()),
                    _ => None,
                };
                let mut events = vec![Event::Introduced("0".into())];
                let not_affected = fixed == Some("0");
                match (status, fixed) {
                    (_, Some("0")) => {}
                    ("resolved", Some(v)) => events.push(Event::Fixed(v.to_string())),
                    _ => {}
                }
                advisory.affected.push(Affected {
                    ecosystem: format!("Debian:{version}"),
                    package: package.clone(),
                    purl: None,
                    ranges: vec![Range {
                        kind: "ECOSYSTEM".into(),
                        events,
                    }],
                    versions: vec![],
                    not_affected,
                    fix_state,
                });
            }
        }
    }
    Ok(by_cve.into_values().collect())
}
