//! NuGet versions (NuGet.Versioning `NuGetVersion` with `VersionComparer.Default`): up to four
//! numeric parts (missing ones are zero, leading zeros ignored), a SemVer 2 release label
//! compared case-insensitively, and build metadata as the last, case-insensitive tiebreak (a
//! version without metadata differs from one with it).

use super::InvalidVersion;
use std::cmp::Ordering;

/// A parsed NuGet version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// major, minor, patch, revision.
    pub parts: [u64; 4],
    pub release: Vec<String>,
    pub metadata: Option<String>,
}

fn label_ok(label: &str) -> bool {
    !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, InvalidVersion> {
        let invalid = |reason: &str| InvalidVersion::new("nuget", s, reason);
        let s = s.trim();
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        let (rest, metadata) = match s.split_once('+') {
            Some((r, m)) => {
                if !m.split('.').all(label_ok) {
                    return Err(invalid("invalid metadata"));
                }
                (r, Some(m.to_string()))
            }
            None => (s, None),
        };
        let (numbers, release) = match rest.split_once('-') {
            Some((n, r)) => {
                if !r.split('.').all(label_ok) {
                    return Err(invalid("invalid release label"));
                }
                (n, r.split('.').map(str::to_string).collect())
            }
            None => (rest, Vec::new()),
        };
        let fields: Vec<&str> = numbers.split('.').collect();
        if fields.is_empty() || fields.len() > 4 {
            return Err(invalid("one to four numeric parts"));
        }
        let mut parts = [0u64; 4];
        for (slot, field) in parts.iter_mut().zip(&fields) {
            if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("numeric parts must be numbers"));
            }
            *slot = field
                .parse::<i32>()
                .map_err(|_| invalid("numeric part too large"))? as u64;
        }
        Ok(Version {
            parts,
            release,
            metadata,
        })
    }

    /// `ToNormalizedString`: three parts (four when the revision is set), the release label.
    pub fn normalized(&self) -> String {
        let [a, b, c, d] = self.parts;
        let mut s = if d > 0 {
            format!("{a}.{b}.{c}.{d}")
        } else {
            format!("{a}.{b}.{c}")
        };
        if !self.release.is_empty() {
            s.push('-');
            s.push_str(&self.release.join("."));
        }
        s
    }
}

fn compare_label(a: &str, b: &str) -> Ordering {
    let (na, nb) = (
        a.parse::<u64>()
            .ok()
            .filter(|_| a.bytes().all(|x| x.is_ascii_digit())),
        b.parse::<u64>()
            .ok()
            .filter(|_| b.bytes().all(|x| x.is_ascii_digit())),
    );
    match (na, nb) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts
            .cmp(&other.parts)
            .then_with(
                || match (self.release.is_empty(), other.release.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => {
                        for (a, b) in self.release.iter().zip(&other.release) {
                            match compare_label(a, b) {
                                Ordering::Equal => {}
                                other => return other,
                            }
                        }
                        self.release.len().cmp(&other.release.len())
                    }
                },
            )
            .then_with(|| {
                let lower = |m: &Option<String>| m.as_deref().unwrap_or("").to_ascii_lowercase();
                lower(&self.metadata).cmp(&lower(&other.metadata))
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two NuGet versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, InvalidVersion> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}
