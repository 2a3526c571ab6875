//! Snapshots of the canonical store: a deterministic export (one canonical JSON record per
//! line, sorted) with its content hash, and the delta between two snapshots — the advisories
//! added, removed or changed and the (ecosystem, package) keys they touch, which is what a
//! re-evaluation needs to select impacted images.

use crate::model::Advisory;
use std::collections::{BTreeMap, BTreeSet};

/// Why an export could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The first line (counted from 1) that is not a canonical record.
    #[error("line {line}: {source}")]
    Line {
        line: usize,
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The export: canonical JSON lines, sorted by (id, source).
pub fn export(advisories: &[Advisory]) -> String {
    let mut sorted: Vec<&Advisory> = advisories.iter().collect();
    sorted.sort_by(|a, b| (&a.id, &a.source).cmp(&(&b.id, &b.source)));
    let mut out = String::new();
    for a in sorted {
        out.push_str(&serde_json::to_string(a).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Reads an export back; the line number of the first bad line on error.
pub fn import(text: &str) -> Result<Vec<Advisory>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| Error::Line {
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// What changed between two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delta {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// `ecosystem/package` keys named by any added, removed or changed advisory (old or new form).
    pub changed_keys: Vec<String>,
}

/// The delta from `old` to `new`.
pub fn delta(old: &[Advisory], new: &[Advisory]) -> Delta {
    let key = |a: &Advisory| format!("{}#{}", a.id, a.source);
    let old: BTreeMap<String, &Advisory> = old.iter().map(|a| (key(a), a)).collect();
    let new: BTreeMap<String, &Advisory> = new.iter().map(|a| (key(a), a)).collect();
    let mut d = Delta::default();
    let mut keys = BTreeSet::new();
    let mut touch = |a: &Advisory| {
        for f in &a.affected {
            keys.insert(format!("{}/{}", f.ecosystem, f.package));
        }
    };
    for (k, a) in &new {
        match old.get(k) {
            None => {
                d.added.push(a.id.clone());
                touch(a);
            }
            Some(o) if o != a => {
                d.changed.push(a.id.clone());
                touch(a);
                touch(o);
            }
            _ => {}
        }
    }
    for (k, a) in &old {
        if !new.contains_key(k) {
            d.removed.push(a.id.clone());
            touch(a);
        }
    }
    d.changed_keys = keys.into_iter().collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Affected, Event, Range};

    fn advisory(id: &str, package: &str, fixed: &str) -> Advisory {
        Advisory {
            id: id.into(),
            aliases: vec![],
            summary: None,
            severity: vec![],
            modified: "2026-01-01T00:00:00Z".into(),
            published: None,
            withdrawn: None,
            affected: vec![Affected {
                ecosystem: "Debian:12".into(),
                package: package.into(),
                purl: None,
                ranges: vec![Range {
                    kind: "ECOSYSTEM".into(),
                    events: vec![Event::Introduced("0".into()), Event::Fixed(fixed.into())],
                }],
                versions: vec![],
                not_affected: false,
                fix_state: None,
            }],
            cwes: vec![],
            references: vec![],
            source: "osv".into(),
        }
    }

    #[test]
    fn export_is_sorted_and_round_trips_and_delta_names_the_keys() {
        let old = vec![
            advisory("B", "curl", "1"),
            advisory("A", "bash", "1"),
            advisory("C", "tar", "1"),
        ];
        let new = vec![
            advisory("A", "bash", "1"),
            advisory("B", "curl", "2"),
            advisory("D", "sed", "1"),
        ];
        let text = export(&old);
        assert!(text.find(r#""A""#).unwrap() < text.find(r#""B""#).unwrap());
        assert_eq!(export(&import(&text).unwrap()), text);
        assert_eq!(
            crate::matching::snapshot_hash(&old),
            crate::matching::snapshot_hash(&import(&text).unwrap())
        );
        let d = delta(&old, &new);
        assert_eq!(
            (d.added, d.removed, d.changed),
            (
                vec!["D".to_string()],
                vec!["C".to_string()],
                vec!["B".to_string()]
            )
        );
        assert_eq!(
            d.changed_keys,
            ["Debian:12/curl", "Debian:12/sed", "Debian:12/tar"]
        );
        assert!(
            import("{not json}\n")
                .unwrap_err()
                .to_string()
                .starts_with("line 1")
        );
    }
}
