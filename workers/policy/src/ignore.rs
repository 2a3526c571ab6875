//! The ignore file (`.stellaignore`, YAML or JSON): findings a team has decided to accept, each
//! with why and until when.
//!
//! ```yaml
//! ignore:
//!   - id: CVE-2023-4911              # a vulnerability id or alias (case-insensitive)
//!     purl: pkg:deb/debian/glibc     # and/or a package URL prefix (ends at a purl boundary)
//!     expires: 2027-03-31            # optional: a date (its start, UTC) or an RFC 3339 time
//!     justification: setuid binaries are removed from this image
//! ```
//!
//! Each entry becomes a policy waiver (an `ignore` rule named `stellaignore-N`, placed before
//! the policy's own rules), so the report and the proof bundle record which entry waived a
//! finding and why, and an expired entry is reported as an expired waiver. Without a policy
//! the same entries filter what a scan reports ([`IgnoreFile::waiver`]).

use crate::evaluate::{parse_expires, purl_matches};
use crate::{Issue, Issues, Loaded, Segment};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use stella_model::policy::{PolicyAction, PolicyRule};

/// Largest ignore file read.
pub const MAX_IGNORE_BYTES: usize = 1024 * 1024;
/// Most entries in an ignore file (a policy holds 512 rules, its own included).
pub const MAX_IGNORE_ENTRIES: usize = 256;

/// One entry: what it ignores, until when, and why.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreEntry {
    /// Vulnerability id or alias (`CVE-…`, `GHSA-…`).
    #[serde(default)]
    pub id: Option<String>,
    /// Package URL prefix (`pkg:deb/debian/openssl`, `pkg:npm/lodash@4.17.20`).
    #[serde(default)]
    pub purl: Option<String>,
    /// The first instant the entry no longer applies: `YYYY-MM-DD` (00:00 UTC) or RFC 3339.
    #[serde(default)]
    pub expires: Option<String>,
    /// Why the finding is accepted (required: a waiver must say why).
    pub justification: String,
}

/// A parsed, valid ignore file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreFile {
    pub entries: Vec<IgnoreEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    ignore: Vec<serde_json::Value>,
}

/// Parses and validates an ignore file; every problem at once, located (`ignore[2].purl`).
pub fn parse_ignore(text: &str) -> Result<IgnoreFile, Issues> {
    if text.len() > MAX_IGNORE_BYTES {
        return Err(Issues(vec![Issue::at(
            vec![],
            format!(
                "ignore file is {} bytes, more than the {MAX_IGNORE_BYTES} allowed",
                text.len()
            ),
        )]));
    }
    if text.trim().is_empty() {
        return Ok(IgnoreFile::default());
    }
    let value = crate::load::parse(text).map_err(|issue| Issues(vec![issue]))?;
    if value.is_null() {
        return Ok(IgnoreFile::default());
    }
    let document: Document = serde_json::from_value(value).map_err(|e| {
        Issues(vec![Issue::at(
            vec![],
            format!("not an ignore file (expected a mapping with an `ignore` list): {e}"),
        )])
    })?;
    if document.ignore.len() > MAX_IGNORE_ENTRIES {
        return Err(Issues(vec![Issue::at(
            vec![Segment::Key("ignore".into())],
            format!(
                "{} entries, more than the {MAX_IGNORE_ENTRIES} allowed",
                document.ignore.len()
            ),
        )]));
    }
    let mut issues = Vec::new();
    let mut entries = Vec::new();
    for (i, value) in document.ignore.into_iter().enumerate() {
        let at = |key: Option<&str>| {
            let mut path = vec![Segment::Key("ignore".into()), Segment::Index(i)];
            path.extend(key.map(|k| Segment::Key(k.into())));
            path
        };
        let entry: IgnoreEntry = match serde_json::from_value(value) {
            Ok(entry) => entry,
            Err(e) => {
                issues.push(Issue::at(at(None), format!("not an ignore entry: {e}")));
                continue;
            }
        };
        if entry.id.is_none() && entry.purl.is_none() {
            issues.push(Issue::at(at(None), "needs an `id`, a `purl` or both"));
        }
        if let Some(id) = &entry.id
            && !(3..=128).contains(&id.len())
        {
            issues.push(Issue::at(at(Some("id")), "must be 3 to 128 characters"));
        }
        if let Some(purl) = &entry.purl {
            let shaped = purl.len() <= 512
                && purl.len() >= 4
                && purl.starts_with("pkg:")
                && purl[4..].starts_with(|c: char| c.is_ascii_lowercase());
            if !shaped {
                issues.push(Issue::at(
                    at(Some("purl")),
                    format!(
                        "{:?} is not a package URL prefix (`pkg:type/…`, at most 512 characters)",
                        truncated(purl)
                    ),
                ));
            }
        }
        if let Some(expires) = &entry.expires
            && parse_expires(expires).is_none()
        {
            issues.push(Issue::at(
                at(Some("expires")),
                format!(
                    "invalid date {:?} (expected a date YYYY-MM-DD or an RFC 3339 time that exists)",
                    truncated(expires)
                ),
            ));
        }
        let justification = entry.justification.trim();
        if justification.is_empty() {
            issues.push(Issue::at(
                at(Some("justification")),
                "must not be blank (a waiver must say why)",
            ));
        } else if entry.justification.len() > 1024 {
            issues.push(Issue::at(
                at(Some("justification")),
                "longer than 1024 characters",
            ));
        }
        entries.push(entry);
    }
    if !issues.is_empty() {
        return Err(Issues(issues));
    }
    Ok(IgnoreFile { entries })
}

fn truncated(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

impl IgnoreFile {
    /// The name of entry `index`'s rule.
    pub fn rule_name(index: usize) -> String {
        format!("stellaignore-{}", index + 1)
    }

    /// The entries as `ignore` rules, in file order.
    pub fn rules(&self) -> Vec<PolicyRule> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, entry)| PolicyRule {
                name: Self::rule_name(i),
                severity: vec![],
                environments: vec![],
                sources: vec![],
                vendors: vec![],
                images: vec![],
                repositories: vec![],
                namespaces: vec![],
                purls: entry.purl.iter().cloned().collect(),
                cves: entry.id.iter().cloned().collect(),
                paths: vec![],
                layer_digests: vec![],
                used_by_entrypoint: None,
                kev: None,
                epss_at_least: None,
                licenses: vec![],
                action: PolicyAction::Ignore,
                escalate_to: None,
                require_vex: None,
                override_vex: false,
                expires: entry.expires.clone(),
                justification: Some(entry.justification.trim().to_string()),
            })
            .collect()
    }

    /// The first entry in force at `at` that waives the finding `id` (or one of its
    /// `aliases`) in `purl`, with its index — the same matching as the waiver rules.
    pub fn waiver<'s>(
        &'s self,
        id: &str,
        aliases: &[String],
        purl: &str,
        at: DateTime<Utc>,
    ) -> Option<(usize, &'s IgnoreEntry)> {
        self.entries.iter().enumerate().find(|(_, entry)| {
            !expired(entry, at)
                && entry.purl.as_deref().is_none_or(|p| purl_matches(p, purl))
                && entry.id.as_deref().is_none_or(|wanted| {
                    std::iter::once(id)
                        .chain(aliases.iter().map(String::as_str))
                        .any(|have| have.eq_ignore_ascii_case(wanted))
                })
        })
    }

    /// The entries no longer in force at `at`.
    pub fn expired(&self, at: DateTime<Utc>) -> impl Iterator<Item = (usize, &IgnoreEntry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, e)| expired(e, at))
    }
}

fn expired(entry: &IgnoreEntry, at: DateTime<Utc>) -> bool {
    entry
        .expires
        .as_deref()
        .is_some_and(|e| parse_expires(e).is_none_or(|until| at >= until))
}

impl Loaded {
    /// This policy with `rules` placed before its own (an ignore file's waivers decide first),
    /// validated again and with its digest recomputed: the digest, hence the report and the
    /// proof, covers the waivers.
    pub fn with_waivers(self, rules: Vec<PolicyRule>) -> Result<Loaded, Issues> {
        if rules.is_empty() {
            return Ok(self);
        }
        let mut spec = self.spec;
        let own = std::mem::take(&mut spec.rules);
        spec.rules = rules;
        spec.rules.extend(own);
        let text = serde_json::to_string(&spec).expect("a policy spec serialises");
        let loaded = crate::load_str(&text)?;
        Ok(Loaded {
            kind: self.kind,
            ..loaded
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    #[test]
    fn entries_parse_and_waive_like_the_rules() {
        let file = parse_ignore(
            "ignore:\n  - id: cve-2023-4911\n    purl: pkg:deb/debian/glibc\n    expires: 2027-03-31\n    justification: setuid binaries removed\n  - purl: pkg:npm/lodash@4.17.20\n    justification: ' build tool only '\n",
        )
        .unwrap();
        assert_eq!(file.entries.len(), 2);
        let now = at("2026-12-01T00:00:00Z");
        let glibc = "pkg:deb/debian/glibc@2.36-9?arch=amd64";
        assert_eq!(file.waiver("CVE-2023-4911", &[], glibc, now).unwrap().0, 0);
        // By alias, case-insensitive; not another package, not a longer name.
        assert!(
            file.waiver("DSA-1", &["CVE-2023-4911".into()], glibc, now)
                .is_some()
        );
        assert!(
            file.waiver("CVE-2023-4911", &[], "pkg:deb/debian/glibc-doc@1", now)
                .is_none()
        );
        assert!(file.waiver("CVE-2023-1", &[], glibc, now).is_none());
        // Expired: no longer waives, and is listed.
        let later = at("2027-03-31T00:00:00Z");
        assert!(file.waiver("CVE-2023-4911", &[], glibc, later).is_none());
        assert_eq!(file.expired(later).map(|(i, _)| i).collect::<Vec<_>>(), [0]);
        // A purl-only entry waives every vulnerability of that package version.
        assert_eq!(
            file.waiver("GHSA-x", &[], "pkg:npm/lodash@4.17.20", now)
                .unwrap()
                .0,
            1
        );
        let rules = file.rules();
        assert_eq!(rules[1].name, "stellaignore-2");
        assert_eq!(rules[1].justification.as_deref(), Some("build tool only"));
        assert_eq!(rules[0].cves, ["cve-2023-4911"]);
    }

    #[test]
    fn bad_files_say_where() {
        let issues = parse_ignore(
            "ignore:\n  - justification: x\n  - id: CVE-1\n    purl: npm/lodash\n    expires: 2027-02-30\n    justification: '  '\n  - id: CVE-2024-1\n    justification: why\n    reason: z\n",
        )
        .unwrap_err()
        .to_string();
        for wanted in [
            "ignore[0]: needs an `id`, a `purl` or both",
            "ignore[1].purl",
            "ignore[1].expires: invalid date",
            "ignore[1].justification: must not be blank",
            "ignore[2]: not an ignore entry: unknown field `reason`",
        ] {
            assert!(issues.contains(wanted), "{wanted} in {issues}");
        }
        assert!(parse_ignore("- id: CVE-1\n").is_err());
        assert!(parse_ignore("ignore: {a: [").is_err());
        assert!(parse_ignore(&"x".repeat(MAX_IGNORE_BYTES + 1)).is_err());
        let many: String = (0..=MAX_IGNORE_ENTRIES)
            .map(|i| format!("  - id: CVE-{i:04}\n    justification: j\n"))
            .collect();
        assert!(
            parse_ignore(&format!("ignore:\n{many}"))
                .unwrap_err()
                .to_string()
                .contains("more than the 256 allowed")
        );
        // A billion-laughs alias bomb is stopped by the YAML budget.
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
        assert!(parse_ignore(bomb).is_err());
        assert_eq!(parse_ignore("").unwrap(), IgnoreFile::default());
        assert_eq!(parse_ignore("# nothing\n").unwrap(), IgnoreFile::default());
    }

    #[test]
    fn waivers_join_the_policy_and_its_digest() {
        let policy = crate::load_str(
            "version: '1.0'\nrules:\n  - name: block-critical\n    severity: [Critical]\n    action: block\n",
        )
        .unwrap();
        let file =
            parse_ignore("ignore:\n  - id: CVE-2024-1\n    justification: accepted\n").unwrap();
        let with = policy.clone().with_waivers(file.rules()).unwrap();
        assert_ne!(with.digest, policy.digest);
        assert_eq!(with.spec.rules[0].name, "stellaignore-1");
        assert_eq!(with.spec.rules[1].name, "block-critical");
        assert_eq!(policy.clone().with_waivers(vec![]).unwrap(), policy);
        // A policy rule already named like a waiver is a clear conflict.
        let clash =
            crate::load_str("version: '1.0'\nrules:\n  - name: stellaignore-1\n    action: warn\n")
                .unwrap();
        assert!(
            clash
                .with_waivers(file.rules())
                .unwrap_err()
                .to_string()
                .contains("duplicate rule name")
        );
    }
}
