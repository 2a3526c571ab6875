//! What a scan reports of its findings, and SARIF 2.1.0 for code-scanning tools.
//!
//! [`select`] applies the CI filters, in this order: a VEX consensus of `not_affected` or
//! `fixed` hides a finding (listed as suppressed with `show_suppressed`); an ignore-file entry
//! in force hides it; `severities` keeps only those severities; `ignore_unfixed` keeps only
//! findings with a fixed version. Counts of what each filter hid come with the selection, so a
//! report can say what it left out. Pure: the evaluation time is an input.
//!
//! [`sarif`] renders a selection as one SARIF run: one rule per vulnerability id (its
//! severity, CVSS score as `security-severity`, tags), one result per finding with its level
//! from the severity, the package's database or manifest in the image as the location (what
//! GitHub code scanning shows), and VEX-suppressed findings as SARIF `suppressions`, which
//! code scanning shows as dismissed. Same inputs, same bytes.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use stella_advisories::matching::Finding;
use stella_model::Severity;
use stella_policy::IgnoreFile;
use stella_sbom::Inventory;
use stella_vex::Consensus;

/// Advisory data older than this is reported as stale (grype's default maximum database age).
pub const STALE_AFTER_SECONDS: i64 = 5 * 24 * 3600;

/// What the findings were checked against: a report never says "0 vulnerabilities" when
/// nothing was checked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvisoryData {
    /// `none` (no advisory imported: nothing was checked), `stale` (the last import is older
    /// than [`STALE_AFTER_SECONDS`]) or `current`.
    pub state: &'static str,
    /// Advisories in the catalog.
    pub advisories: i64,
    /// The last import (RFC 3339), when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_import: Option<String>,
    /// Seconds since the last import, at the evaluation time (not written: the same inputs
    /// give the same bytes; `lastImport` and `state` say it).
    #[serde(skip)]
    pub age_seconds: Option<i64>,
}

impl AdvisoryData {
    /// The state of `advisories` advisories last imported at `last_import`, judged at `now`.
    pub fn judge(advisories: i64, last_import: Option<&str>, now: DateTime<Utc>) -> AdvisoryData {
        let age_seconds = last_import
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| (now - t.with_timezone(&Utc)).num_seconds().max(0));
        let state = if advisories == 0 {
            "none"
        } else if age_seconds.is_some_and(|age| age > STALE_AFTER_SECONDS) {
            "stale"
        } else {
            "current"
        };
        AdvisoryData {
            state,
            advisories,
            last_import: last_import.map(str::to_string),
            age_seconds,
        }
    }

    /// Whether nothing was checked.
    pub fn unchecked(&self) -> bool {
        self.state == "none"
    }

    /// One line for people: `not checked: no advisory data …`, the age of stale data, or
    /// `None` when current.
    pub fn warning(&self) -> Option<String> {
        match self.state {
            "none" => Some(
                "not checked: no advisory data (fetch it: stella feeds sync, or stella feeds import <files, URLs or an offline kit>)"
                    .into(),
            ),
            "stale" => Some(format!(
                "advisory data is {} days old (last import {}): newer vulnerabilities are not reported",
                self.age_seconds.unwrap_or_default() / 86_400,
                self.last_import.as_deref().unwrap_or("unknown")
            )),
            _ => None,
        }
    }
}

/// The filters of a scan's report.
#[derive(Clone, Debug)]
pub struct Filters<'a> {
    /// Severities kept; empty keeps all.
    pub severities: Vec<Severity>,
    /// Keep only findings with a fixed version (drop `unfixed`, `will-not-fix`,
    /// `fix-deferred`).
    pub ignore_unfixed: bool,
    /// List VEX-suppressed findings (marked) instead of hiding them.
    pub show_suppressed: bool,
    /// Entries in force hide the findings they name.
    pub ignore: Option<&'a IgnoreFile>,
    /// The evaluation time (ignore entries expire against it).
    pub at: DateTime<Utc>,
}

/// One reported finding.
#[derive(Clone, Debug)]
pub struct Reported<'a> {
    pub finding: &'a Finding,
    /// The VEX consensus that quiets it, when it is listed although suppressed.
    pub suppressed_by: Option<&'a Consensus>,
}

/// The findings a report shows, and how many each filter hid.
#[derive(Clone, Debug, Default)]
pub struct Selection<'a> {
    pub reported: Vec<Reported<'a>>,
    /// Quieted by VEX (hidden unless `show_suppressed`; counted either way).
    pub vex_suppressed: usize,
    /// Hidden by an ignore-file entry, per entry index.
    pub ignored: BTreeMap<usize, usize>,
    pub below_severity: usize,
    pub unfixed: usize,
}

impl Selection<'_> {
    /// The findings that count for a gate (`--exit-code`, `--fail-on`): the reported ones
    /// that VEX does not quiet.
    pub fn open(&self) -> impl Iterator<Item = &Finding> {
        self.reported
            .iter()
            .filter(|r| r.suppressed_by.is_none())
            .map(|r| r.finding)
    }
}

/// Whether a consensus quiets its finding (`not_affected`, `fixed`).
pub fn quiets(consensus: &Consensus) -> bool {
    matches!(
        consensus.status,
        Some(stella_vex::Status::NotAffected | stella_vex::Status::Fixed)
    )
}

/// Applies `filters` to `findings` (with their VEX consensus, in the same order).
pub fn select<'a>(
    findings: impl IntoIterator<Item = (&'a Finding, Option<&'a Consensus>)>,
    filters: &Filters,
) -> Selection<'a> {
    let mut selection = Selection::default();
    for (finding, consensus) in findings {
        let quieted = consensus.filter(|c| quiets(c));
        if quieted.is_some() {
            selection.vex_suppressed += 1;
            if !filters.show_suppressed {
                continue;
            }
        }
        if let Some((index, _)) = filters
            .ignore
            .and_then(|file| file.waiver(&finding.id, &finding.aliases, &finding.purl, filters.at))
        {
            *selection.ignored.entry(index).or_default() += 1;
            continue;
        }
        if !filters.severities.is_empty() && !filters.severities.contains(&finding.severity) {
            selection.below_severity += 1;
            continue;
        }
        if filters.ignore_unfixed && finding.status != "fixed" {
            selection.unfixed += 1;
            continue;
        }
        selection.reported.push(Reported {
            finding,
            suppressed_by: quieted,
        });
    }
    selection
}

/// SARIF `level` of a severity: Critical and High are errors, Medium a warning, the rest
/// notes.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::None | Severity::Unknown => "note",
    }
}

/// GitHub's `security-severity` (a CVSS-like score as text): the finding's CVSS base score,
/// else the middle of its severity's band; `None` for an unknown severity.
fn security_severity(finding: &Finding) -> Option<String> {
    let score = finding.cvss_score.or(match finding.severity {
        Severity::Critical => Some(9.5),
        Severity::High => Some(8.0),
        Severity::Medium => Some(5.5),
        Severity::Low => Some(2.0),
        Severity::None => Some(0.0),
        Severity::Unknown => None,
    })?;
    Some(format!("{score:.1}"))
}

/// Where a vulnerability is documented, for ids whose home is known.
fn help_uri(id: &str) -> Option<String> {
    let upper = id.to_ascii_uppercase();
    if upper.starts_with("CVE-") {
        Some(format!("https://nvd.nist.gov/vuln/detail/{upper}"))
    } else if upper.starts_with("GHSA-") {
        Some(format!("https://github.com/advisories/{id}"))
    } else if ["GO-", "PYSEC-", "RUSTSEC-", "OSV-"]
        .iter()
        .any(|p| upper.starts_with(p))
    {
        Some(format!("https://osv.dev/vulnerability/{id}"))
    } else {
        None
    }
}

fn fixed_text(finding: &Finding) -> String {
    match finding.status.as_str() {
        "fixed" => finding.fixed.join(", "),
        "will-not-fix" => "none (will not fix)".into(),
        "fix-deferred" => "none (fix deferred)".into(),
        _ => "none".into(),
    }
}

/// The selection as a SARIF 2.1.0 log (canonical JSON, pretty-printed). `version` is the
/// tool's version.
pub fn sarif(
    inventory: &Inventory,
    selection: &Selection,
    data: &AdvisoryData,
    version: &str,
) -> String {
    let paths: BTreeMap<&str, &str> = inventory
        .components
        .iter()
        .map(|c| (c.package.purl.as_str(), c.package.evidence.path.as_str()))
        .collect();
    // One rule per vulnerability id, at the most severe of its findings.
    let mut rules: BTreeMap<&str, (&Finding, Vec<&str>)> = BTreeMap::new();
    for reported in &selection.reported {
        let f = reported.finding;
        let entry = rules.entry(f.id.as_str()).or_insert((f, Vec::new()));
        if (f.severity.rank(), f.cvss_score.unwrap_or(-1.0))
            > (entry.0.severity.rank(), entry.0.cvss_score.unwrap_or(-1.0))
        {
            entry.0 = f;
        }
        entry.1.push(f.package.as_str());
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let rule_values: Vec<Value> = rules
        .iter()
        .map(|(id, (worst, packages))| {
            let mut packages = packages.clone();
            packages.sort_unstable();
            packages.dedup();
            let severity = worst.severity.as_str().to_ascii_uppercase();
            let mut properties = json!({
                "precision": "very-high",
                "tags": ["vulnerability", "security", severity],
            });
            if let Some(score) = security_severity(worst) {
                properties["security-severity"] = json!(score);
            }
            let mut rule = json!({
                "id": id,
                "name": "ContainerPackageVulnerability",
                "shortDescription": {"text": format!("{id} in {}", packages.join(", "))},
                "fullDescription": {"text": format!(
                    "{id}: {severity} vulnerability in {} (advisory {} from {})",
                    packages.join(", "), worst.evidence.advisory, worst.evidence.source
                )},
                "defaultConfiguration": {"level": level(worst.severity)},
                "help": {
                    "text": format!(
                        "Vulnerability {id}\nSeverity: {severity}\nPackages: {}\nFixed version: {}",
                        packages.join(", "), fixed_text(worst)
                    ),
                    "markdown": format!(
                        "**Vulnerability {id}**\n\n| Severity | Packages | Fixed version |\n| --- | --- | --- |\n| {severity} | {} | {} |",
                        packages.join(", "), fixed_text(worst)
                    ),
                },
                "properties": properties,
            });
            if let Some(uri) = help_uri(id) {
                rule["helpUri"] = json!(uri);
            }
            rule
        })
        .collect();
    let results: Vec<Value> = selection
        .reported
        .iter()
        .map(|reported| {
            let f = reported.finding;
            let path = paths
                .get(f.purl.as_str())
                .map(|p| p.trim_start_matches('/'))
                .filter(|p| !p.is_empty())
                .unwrap_or(inventory.image.name.as_str());
            let mut result = json!({
                "ruleId": f.id,
                "ruleIndex": index[f.id.as_str()],
                "level": level(f.severity),
                "message": {"text": format!(
                    "Package: {}\nInstalled version: {}\nVulnerability: {}\nSeverity: {}\nFixed version: {}\nPackage URL: {}",
                    f.package, f.installed, f.id, f.severity.as_str().to_ascii_uppercase(),
                    fixed_text(f), f.purl
                )},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": path, "uriBaseId": "ROOTPATH"},
                        "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
                    },
                    "message": {"text": format!("{}: {}@{}", inventory.image.name, f.package, f.installed)},
                }],
                "partialFingerprints": {
                    "stellaFinding/v1": fingerprint(&inventory.image.name, f),
                },
            });
            if let Some(consensus) = reported.suppressed_by {
                let status = consensus.status.map(|s| s.as_str()).unwrap_or_default();
                let mut justification = format!("VEX {status}");
                if let Some(j) = consensus.justification {
                    justification.push_str(&format!(" ({})", j.as_str()));
                }
                if let Some(claim) = consensus.support.first() {
                    justification.push_str(&format!(" from {}", claim.statement.provider.name));
                }
                result["suppressions"] = json!([{
                    "kind": "external",
                    "status": "accepted",
                    "justification": justification,
                }]);
            }
            result
        })
        .collect();
    // What was checked, as a tool notification code scanning shows beside the results.
    let notifications: Vec<Value> = data
        .warning()
        .map(|text| {
            json!({
                "level": if data.unchecked() { "error" } else { "warning" },
                "message": {"text": text},
                "descriptor": {"id": format!("advisory-data-{}", data.state)},
            })
        })
        .into_iter()
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "tool": {"driver": {
                "name": "stella",
                "fullName": "Stella Ops",
                "informationUri": "https://stella-ops.org",
                "version": version,
                "rules": rule_values,
            }},
            "results": results,
            "columnKind": "utf16CodeUnits",
            "originalUriBaseIds": {"ROOTPATH": {"uri": "file:///"}},
            "properties": {
                "imageName": inventory.image.name,
                "imageDigest": inventory.image.digest,
                "advisoryData": data,
            },
        }],
    });
    stella_sbom::canonical::to_string_pretty(&log)
}

/// A stable identity for a finding across runs of the same image name (code scanning tracks
/// alerts by it): SHA-256 of image name, vulnerability and package, shortened.
fn fingerprint(image: &str, f: &Finding) -> String {
    use sha2::Digest;
    let name = image.split('@').next().unwrap_or(image);
    let hash = sha2::Sha256::digest(format!("{name}\n{}\n{}", f.id, f.purl).as_bytes());
    hex::encode(&hash[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, purl: &str, severity: Severity, status: &str) -> Finding {
        Finding {
            id: id.into(),
            aliases: vec![],
            purl: purl.into(),
            package: purl
                .split('/')
                .next_back()
                .unwrap()
                .split('@')
                .next()
                .unwrap()
                .into(),
            installed: "1.0".into(),
            fixed: if status == "fixed" {
                vec!["1.1".into()]
            } else {
                vec![]
            },
            status: status.into(),
            severity,
            cvss_score: None,
            severity_source: None,
            severity_origin: None,
            layer_digest: None,
            used_by_entrypoint: false,
            evidence: stella_advisories::matching::Evidence {
                advisory: id.into(),
                source: "osv".into(),
                ecosystem: "npm".into(),
                matched: "<1.1".into(),
                comparator: "semver".into(),
            },
        }
    }

    #[test]
    fn advisory_data_is_none_stale_or_current() {
        let now = DateTime::parse_from_rfc3339("2026-12-10T00:00:00Z")
            .unwrap()
            .into();
        let none = AdvisoryData::judge(0, None, now);
        assert!(none.unchecked());
        assert!(
            none.warning()
                .unwrap()
                .starts_with("not checked: no advisory data")
        );
        let stale = AdvisoryData::judge(5, Some("2026-12-01T00:00:00Z"), now);
        assert_eq!(stale.state, "stale");
        assert!(
            stale
                .warning()
                .unwrap()
                .starts_with("advisory data is 9 days old")
        );
        let current = AdvisoryData::judge(5, Some("2026-12-08T00:00:00Z"), now);
        assert_eq!((current.state, current.warning()), ("current", None));
    }

    #[test]
    fn filters_compose_and_count() {
        let findings = [
            finding("CVE-2024-1", "pkg:npm/a@1.0", Severity::Critical, "fixed"),
            finding("CVE-2024-2", "pkg:npm/b@1.0", Severity::High, "unfixed"),
            finding("CVE-2024-3", "pkg:npm/c@1.0", Severity::Low, "fixed"),
            finding("CVE-2024-4", "pkg:npm/d@1.0", Severity::Critical, "fixed"),
        ];
        let ignore = stella_policy::parse_ignore(
            "ignore:\n  - id: CVE-2024-4\n    justification: accepted\n",
        )
        .unwrap();
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .into();
        let filters = Filters {
            severities: vec![Severity::Critical, Severity::High],
            ignore_unfixed: true,
            show_suppressed: false,
            ignore: Some(&ignore),
            at,
        };
        let selection = select(findings.iter().map(|f| (f, None)), &filters);
        let ids: Vec<&str> = selection.open().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["CVE-2024-1"]);
        assert_eq!(selection.below_severity, 1);
        assert_eq!(selection.unfixed, 1);
        assert_eq!(selection.ignored, BTreeMap::from([(0, 1)]));
        let all = Filters {
            severities: vec![],
            ignore_unfixed: false,
            ignore: None,
            ..filters
        };
        assert_eq!(
            select(findings.iter().map(|f| (f, None)), &all)
                .open()
                .count(),
            4
        );
    }

    #[test]
    fn sarif_has_a_rule_per_vulnerability_and_is_stable() {
        let findings = [
            finding("CVE-2024-1", "pkg:npm/a@1.0", Severity::Medium, "fixed"),
            finding("CVE-2024-1", "pkg:npm/b@1.0", Severity::Critical, "unfixed"),
            finding(
                "GHSA-xxxx-yyyy-zzzz",
                "pkg:npm/a@1.0",
                Severity::Unknown,
                "fixed",
            ),
        ];
        let filters = Filters {
            severities: vec![],
            ignore_unfixed: false,
            show_suppressed: false,
            ignore: None,
            at: Utc::now(),
        };
        let selection = select(findings.iter().map(|f| (f, None)), &filters);
        let inventory = Inventory {
            image: stella_sbom::ImageInfo {
                name: "registry.example/app:1".into(),
                digest: format!("sha256:{}", "0".repeat(64)),
                config_digest: format!("sha256:{}", "1".repeat(64)),
                repository: None,
                tags: vec![],
                created: None,
                os: "linux".into(),
                architecture: "amd64".into(),
                layers: vec![],
                user: None,
            },
            distro: None,
            components: vec![],
            analyzer_version: "test".into(),
            errors: vec![],
            relationships: vec![],
            entry_trace: None,
            view: Default::default(),
            origin: None,
        };
        let data = AdvisoryData::judge(10, Some("2026-01-01T00:00:00Z"), Utc::now());
        let text = sarif(&inventory, &selection, &data, "0.0.0");
        assert_eq!(text, sarif(&inventory, &selection, &data, "0.0.0"));
        let log: Value = serde_json::from_str(&text).unwrap();
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["id"], "CVE-2024-1");
        assert_eq!(rules[0]["defaultConfiguration"]["level"], "error");
        assert_eq!(rules[0]["properties"]["security-severity"], "9.5");
        assert!(rules[1]["properties"].get("security-severity").is_none());
        let results = log["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["level"], "warning");
        assert_eq!(results[2]["ruleIndex"], 1);
        // No component known: the image itself is the location.
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "registry.example/app:1"
        );
    }
}
