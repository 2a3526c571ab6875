//! Go module versions (golang.org/x/mod/semver): `v` + SemVer, with `v1` and `v1.2` as
//! shorthands for `v1.0.0` and `v1.2.0`. Build metadata, including `+incompatible`, is ignored
//! in comparisons; pseudo-versions (`v0.0.0-20240101120000-abcdef123456`) are prereleases and
//! order by their timestamp as SemVer prescribes.

use super::InvalidVersion;
use super::semver::{Options, Version};
use std::cmp::Ordering;

/// Parses a Go module version.
pub fn parse(s: &str) -> Result<Version, InvalidVersion> {
    let invalid = |reason: &str| InvalidVersion::new("go", s, reason);
    let rest = s
        .strip_prefix('v')
        .ok_or_else(|| invalid("must start with v"))?;
    let (core, suffix) = match rest.find(['-', '+']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.iter().any(|p| {
        p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || (p.len() > 1 && p.starts_with('0'))
    }) {
        return Err(invalid("invalid numbers"));
    }
    let full = match parts.len() {
        // Shorthands take no prerelease or build suffix.
        1 if suffix.is_empty() => format!("{}.0.0", parts[0]),
        2 if suffix.is_empty() => format!("{}.{}.0", parts[0], parts[1]),
        3 => format!("{core}{suffix}"),
        _ => return Err(invalid("not vMAJOR[.MINOR[.PATCH]]")),
    };
    Version::parse(&full, Options::default()).map_err(|e| invalid(&e.reason))
}

/// Compares two Go module versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, InvalidVersion> {
    Ok(parse(a)?.cmp(&parse(b)?))
}

/// Whether a version is a pseudo-version (`vX.Y.Z-[0.]yyyymmddhhmmss-<12 hex>`).
pub fn is_pseudo(s: &str) -> bool {
    let Ok(v) = parse(s) else { return false };
    let pre: Vec<String> = v.prerelease.iter().map(ToString::to_string).collect();
    let joined = pre.join(".");
    let tail = joined
        .rsplit_once('-')
        .map(|(a, b)| (a.rsplit('.').next().unwrap_or(a), b));
    matches!(tail, Some((time, rev)) if time.len() == 14 && time.bytes().all(|b| b.is_ascii_digit())
        && rev.len() == 12 && rev.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_order_as_x_mod_semver() {
        // From golang.org/x/mod/semver's own test list, ascending.
        let ascending = [
            "v0.0.0-20190101000000-abcdefabcdef",
            "v0.0.0",
            "v0.0.1-alpha",
            "v0.1.0",
            "v1.0.0-alpha",
            "v1.0.0-alpha.1",
            "v1.0.0-alpha.beta",
            "v1.0.0-beta",
            "v1.0.0-beta.2",
            "v1.0.0-beta.11",
            "v1.0.0-rc.1",
            "v1",
            "v1.2",
            "v1.2.3",
            "v1.2.4-0.20240101120000-0123456789ab",
            "v1.2.4",
            "v2.0.0+incompatible",
            "v2.1.0+incompatible",
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                let expected = if a.starts_with("v1") && b.starts_with("v1.0.0")
                    || b.starts_with("v1") && a.starts_with("v1.0.0")
                {
                    None
                } else {
                    Some(i.cmp(&j))
                };
                if let Some(expected) = expected {
                    assert_eq!(compare(a, b).unwrap(), expected, "{a} vs {b}");
                }
            }
        }
        assert_eq!(compare("v1", "v1.0.0").unwrap(), Ordering::Equal);
        assert_eq!(
            compare("v2.0.0+incompatible", "v2.0.0").unwrap(),
            Ordering::Equal
        );
        for bad in [
            "1.0.0", "v", "v1.0.0.0", "v01.0.0", "v1.0-rc1", "vx.y.z", "v1.2.3-", "v1.2+x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(is_pseudo("v0.0.0-20190101000000-abcdefabcdef"));
        assert!(is_pseudo("v1.2.4-0.20240101120000-0123456789ab"));
        assert!(!is_pseudo("v1.2.4-rc.1"));
    }
}
