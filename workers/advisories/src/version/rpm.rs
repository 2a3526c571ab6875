//! rpm versions: `[epoch:]version[-release]`, compared by epoch, then `rpmvercmp` on the
//! version, then on the release. `rpmvercmp` compares alternating digit and letter segments;
//! `~` sorts before everything (pre-releases), `^` after the base version (snapshots).

use super::InvalidVersion;
use std::cmp::Ordering;

/// A parsed EVR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evr {
    pub epoch: u64,
    pub version: String,
    pub release: Option<String>,
}

impl Evr {
    /// Parses `[epoch:]version[-release]`.
    pub fn parse(s: &str) -> Result<Evr, InvalidVersion> {
        let invalid = |reason: &str| InvalidVersion::new("rpm", s, reason);
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("empty or contains whitespace"));
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => (
                e.parse().map_err(|_| invalid("epoch is not a number"))?,
                rest,
            ),
            None => (0, s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r.to_string())),
            None => (rest, None),
        };
        if version.is_empty() || release.as_deref() == Some("") {
            return Err(invalid("empty version or release"));
        }
        Ok(Evr {
            epoch,
            version: version.to_string(),
            release,
        })
    }
}

impl Ord for Evr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| {
                match (&self.release, &other.release) {
                    (Some(a), Some(b)) => rpmvercmp(a, b),
                    // A missing release matches any release (as rpm's dependency comparison does).
                    _ => Ordering::Equal,
                }
            })
    }
}

impl PartialOrd for Evr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two EVR strings.
pub fn compare(a: &str, b: &str) -> Result<Ordering, InvalidVersion> {
    Ok(Evr::parse(a)?.cmp(&Evr::parse(b)?))
}

/// rpm's `rpmvercmp`, byte for byte.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut one, mut two) = (0usize, 0usize);
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while one < a.len() || two < b.len() {
        while one < a.len() && separator(a[one]) {
            one += 1;
        }
        while two < b.len() && separator(b[two]) {
            two += 1;
        }
        let (c1, c2) = (a.get(one).copied(), b.get(two).copied());
        if c1 == Some(b'~') || c2 == Some(b'~') {
            if c1 != Some(b'~') {
                return Ordering::Greater;
            }
            if c2 != Some(b'~') {
                return Ordering::Less;
            }
            one += 1;
            two += 1;
            continue;
        }
        if c1 == Some(b'^') || c2 == Some(b'^') {
            if c1.is_none() {
                return Ordering::Less;
            }
            if c2.is_none() {
                return Ordering::Greater;
            }
            if c1 != Some(b'^') {
                return Ordering::Greater;
            }
            if c2 != Some(b'^') {
                return Ordering::Less;
            }
            one += 1;
            two += 1;
            continue;
        }
        if one >= a.len() || two >= b.len() {
            break;
        }
        let (start1, start2) = (one, two);
        let numeric = a[one].is_ascii_digit();
        let class = |c: u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        while one < a.len() && class(a[one]) {
            one += 1;
        }
        while two < b.len() && class(b[two]) {
            two += 1;
        }
        if two == start2 {
            // Segments of different types: numeric is newer than alpha.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut s1, mut s2) = (&a[start1..one], &b[start2..two]);
        if numeric {
            while s1.first() == Some(&b'0') {
                s1 = &s1[1..];
            }
            while s2.first() == Some(&b'0') {
                s2 = &s2[1..];
            }
            match s1.len().cmp(&s2.len()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        match s1.cmp(s2) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    match (one >= a.len(), two >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}
