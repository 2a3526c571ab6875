//! Debian versions (Debian policy 5.6.12): `[epoch:]upstream_version[-debian_revision]`,
//! compared as dpkg's `verrevcmp` does: `~` sorts before everything, even the end of the string;
//! letters before non-letters; digit runs numerically.

use super::InvalidVersion;
use std::cmp::Ordering;

/// A parsed Debian version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub epoch: u32,
    pub upstream: String,
    pub revision: String,
}

impl Version {
    /// Parses as dpkg's `parseversion` does, rejecting what it rejects (errors and warnings).
    pub fn parse(s: &str) -> Result<Version, InvalidVersion> {
        let invalid = |reason: &str| InvalidVersion::new("dpkg", s, reason);
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(invalid("empty"));
        }
        if trimmed.contains(char::is_whitespace) {
            return Err(invalid("embedded spaces"));
        }
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid("epoch is not a number"));
                }
                let epoch: u32 = e.parse().map_err(|_| invalid("epoch is too big"))?;
                if i32::try_from(epoch).is_err() {
                    return Err(invalid("epoch is too big"));
                }
                if rest.is_empty() {
                    return Err(invalid("nothing after the colon"));
                }
                (epoch, rest)
            }
            None => (0, trimmed),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(invalid("empty revision"));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(invalid("empty upstream version"));
        }
        if !upstream.as_bytes()[0].is_ascii_digit() {
            return Err(invalid("upstream version must start with a digit"));
        }
        let upstream_ok =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '~' | ':');
        if !upstream.chars().all(upstream_ok) {
            return Err(invalid("invalid character in upstream version"));
        }
        if !revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~'))
        {
            return Err(invalid("invalid character in revision"));
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

impl Version {
    /// Splits any version the way dpkg's comparison sees it, without judging the characters
    /// (dpkg compares versions it would warn about; only a bad epoch stops it).
    pub fn parse_lenient(s: &str) -> Result<Version, InvalidVersion> {
        let trimmed = s.trim();
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((e, rest)) => (
                e.parse()
                    .map_err(|_| InvalidVersion::new("dpkg", s, "epoch is not a number"))?,
                rest,
            ),
            None => (0, trimmed),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        Ok(Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two version strings as dpkg does (leniently: see [`Version::parse_lenient`]).
pub fn compare(a: &str, b: &str) -> Result<Ordering, InvalidVersion> {
    Ok(Version::parse_lenient(a)?.cmp(&Version::parse_lenient(b)?))
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` over one part (upstream or revision).
pub fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0i32;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}
