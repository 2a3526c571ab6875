//! Evaluation: findings (after VEX) against the rules, in order, into per-finding decisions,
//! a verdict and a report. Pure: the evaluation time is an input, never the clock.
//!
//! Per finding:
//! 1. The first rule all of whose given matchers match decides. A rule whose `expires` has
//!    passed no longer applies: evaluation goes on to the next rule, and the finding and the
//!    report record the expired waiver.
//! 2. A VEX consensus of `not_affected` or `fixed` suppresses the finding (`vex-suppressed`,
//!    with the provider), unless the deciding rule is `requireVEX` (which weighs the VEX
//!    itself) or sets `overrideVex`.
//! 3. Actions: `block` fails; `warn` warns; `ignore` waives (passes, with the waiver
//!    recorded); `defer` defers (counts as a warning in the verdict: the decision is open);
//!    `escalate` raises the severity to `escalateTo` (never lowers it) and then decides by
//!    severity; `requireVEX` fails unless a `not_affected` (with an accepted justification) or
//!    `fixed` consensus comes from an accepted vendor.
//! 4. No rule: by severity — Critical fails, High warns, anything else passes.
//!
//! The verdict is FAIL if any finding fails, else WARN if any warns or is deferred, else PASS.

use crate::glob::Glob;
use crate::scoring::{self, ScoreInput};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use stella_model::policy::{PolicyAction, PolicyRule, PolicySpec};
use stella_model::{Severity, Verdict};

/// The image a policy is evaluated for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Manifest digest (`sha256:…`).
    pub digest: String,
    /// The reference as given (`ghcr.io/acme/api:1.2`).
    pub name: String,
    /// Repository without tag or digest (`ghcr.io/acme/api`); derived from `name` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

impl Image {
    /// The repository: as given, else `name` without its digest and tag.
    pub fn repository(&self) -> String {
        if let Some(repository) = &self.repository {
            return repository.clone();
        }
        let name = self.name.split('@').next().unwrap_or_default();
        match name.rfind(':') {
            Some(colon) if !name[colon..].contains('/') => name[..colon].to_string(),
            _ => name.to_string(),
        }
    }
}

/// Where and when the policy is evaluated.
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    pub image: Image,
    /// Namespace of the workload (admission, cluster scans); `None` for a local scan.
    pub namespace: Option<String>,
    /// Environment (`stella-ops.org/environment` namespace label, or `--env`).
    pub environment: Option<String>,
    /// The evaluation time: decides which waivers (`expires`) still apply.
    pub evaluated_at: DateTime<Utc>,
}

/// A VEX consensus status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl VexStatus {
    /// Whether the status quiets a finding (`not_affected`, `fixed`).
    pub fn quiets(self) -> bool {
        matches!(self, VexStatus::NotAffected | VexStatus::Fixed)
    }
}

/// The VEX consensus for one finding (vulnerability × product), as the VEX engine computed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VexConsensus {
    pub status: VexStatus,
    /// OpenVEX justification of a `not_affected` (`vulnerable_code_not_present`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// The provider whose statement carried the consensus (a vendor or distro name).
    pub provider: String,
}

/// One finding and everything the matchers and the scoring need about it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Input {
    /// Vulnerability id (`CVE-2024-3094`, `GHSA-…`).
    pub id: String,
    /// Other ids of the same vulnerability.
    pub aliases: Vec<String>,
    /// Package URL of the affected component.
    pub purl: String,
    /// Severity from the advisory.
    pub severity: Severity,
    /// Advisory sources / feeds (`osv`, `nvd`, `debian-tracker`, `GHSA`, …).
    pub sources: Vec<String>,
    /// Package vendor / supplier.
    pub vendor: Option<String>,
    /// Path of the evidence (the package database or the file the component was found in).
    pub path: Option<String>,
    /// Digest of the layer that introduced the component.
    pub layer_digest: Option<String>,
    /// Whether the image's entrypoint uses the component.
    pub used_by_entrypoint: bool,
    /// In the CISA KEV catalog; `None` (no KEV data) counts as not in it.
    pub kev: Option<bool>,
    /// EPSS probability in `[0, 1]`; `None` never matches an `epssAtLeast`.
    pub epss: Option<f64>,
    /// SPDX license ids or expressions of the component.
    pub licenses: Vec<String>,
    /// Free tags for scoring: `trust:<key>`, `reachability:<bucket>`, `usage:<bucket>`,
    /// `unknown-age-days:<n>`, `unknown-since:<time>`, `observed-at:<time>`.
    pub tags: Vec<String>,
    /// The VEX consensus, when there is one.
    pub vex: Option<VexConsensus>,
}

/// What a decision means for the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Fail,
    Warn,
    Deferred,
    Pass,
    /// Waived by an `ignore` rule.
    Ignored,
    /// Quieted by a VEX consensus of `not_affected` or `fixed`.
    VexSuppressed,
}

/// What decided a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecidedBy {
    /// A rule (named in `rule`).
    Rule,
    /// The VEX consensus (no rule, or a rule without `overrideVex`).
    Vex,
    /// No rule matched: the severity decided.
    Default,
}

/// The score of a finding and how it was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreBreakdown {
    pub severity_weight: f64,
    /// The trust override that applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_key: Option<String>,
    pub trust_weight: f64,
    pub reachability_bucket: String,
    pub reachability_weight: f64,
    /// `severityWeight × trustWeight × reachabilityWeight`.
    pub base_score: f64,
    /// `quiet`, `warn` or `ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub penalty_kind: Option<String>,
    pub penalty: f64,
    /// `max(0, baseScore − penalty)`.
    pub score: f64,
    /// Unknown-state metadata, for findings of unknown severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<UnknownState>,
}

/// Confidence of a finding of unknown severity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnknownState {
    #[serde(rename = "unknownConfidence")]
    pub confidence: f64,
    #[serde(
        rename = "unknownAgeDays",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub age_days: Option<u32>,
    #[serde(
        rename = "confidenceBand",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub band: Option<String>,
}

/// A waiver (an `ignore` rule) that applied to a finding, or that expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiver {
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

/// The decision for one finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingDecision {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub purl: String,
    pub outcome: Outcome,
    pub decided_by: DecidedBy,
    /// The deciding rule's name (when `decidedBy` is `rule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The deciding rule's action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<PolicyAction>,
    /// The advisory's severity.
    pub original_severity: Severity,
    /// The severity after escalation.
    pub severity: Severity,
    pub score: ScoreBreakdown,
    /// The VEX consensus that was considered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vex: Option<VexConsensus>,
    /// The waiver that applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<Waiver>,
    /// Rules that matched but had expired (and so did not apply), in rule order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expired_waivers: Vec<Waiver>,
    /// Why, in words.
    pub reason: String,
}

/// A rule whose `expires` has passed, and how many findings it would still have matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiredWaiver {
    pub rule: String,
    pub action: PolicyAction,
    pub expires: String,
    pub findings: usize,
}

/// Findings per outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub total: usize,
    pub fail: usize,
    pub warn: usize,
    pub deferred: usize,
    pub pass: usize,
    pub ignored: usize,
    pub vex_suppressed: usize,
}

/// The policy report of one image: deterministic for the same inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `stella-ops.org/policy-report@1`.
    pub schema: String,
    pub policy_digest: String,
    pub image: Image,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// RFC 3339, UTC.
    pub evaluated_at: String,
    pub verdict: Verdict,
    pub counts: Counts,
    /// Sorted by purl, then id, then the rest of the decision.
    pub findings: Vec<FindingDecision>,
    /// Every rule of the policy whose `expires` has passed, in rule order.
    pub expired_waivers: Vec<ExpiredWaiver>,
}

/// The report's schema name.
pub const REPORT_SCHEMA: &str = "stella-ops.org/policy-report@1";

impl Report {
    /// The canonical JSON of the report (keys sorted, no whitespace): byte-identical for the
    /// same inputs.
    pub fn to_canonical_json(&self) -> String {
        crate::canonical_json(&serde_json::to_value(self).expect("a report serialises"))
    }
}

/// `expires`: an RFC 3339 time, or a date meaning its start (00:00 UTC), the first instant
/// the waiver no longer applies. `None` for a value that names no real time.
pub(crate) fn parse_expires(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Some(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|_| value.len() == 10)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// A rule with its patterns compiled.
struct Compiled<'a> {
    rule: &'a PolicyRule,
    images: Vec<Option<Glob>>,
    repositories: Vec<Option<Glob>>,
    namespaces: Vec<Option<Glob>>,
    paths: Vec<Option<Glob>>,
    vendors: Vec<Option<Glob>>,
    licenses: Vec<Option<Glob>>,
    /// Whether the rule has expired at the evaluation time (an unparsable `expires` counts as
    /// expired: a broken date never grants a waiver).
    expired: bool,
}

/// A pattern that does not compile (only possible in an unvalidated spec) matches nothing.
fn globs(patterns: &[String], case_insensitive: bool, strip_slash: bool) -> Vec<Option<Glob>> {
    patterns
        .iter()
        .map(|p| {
            let p = if strip_slash {
                p.trim_start_matches('/')
            } else {
                p
            };
            Glob::new(p, case_insensitive).ok()
        })
        .collect()
}

fn any_glob(globs: &[Option<Glob>], text: &str) -> bool {
    globs.iter().flatten().any(|g| g.is_match(text))
}

/// `pkg:deb/debian/openssl` matches itself and `…@3.0.11-1?arch=amd64`, but not
/// `pkg:deb/debian/openssl-dev`: a prefix must end at a purl boundary.
pub(crate) fn purl_matches(prefix: &str, purl: &str) -> bool {
    match purl.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => {
            prefix.ends_with(['/', '@', '?', '#']) || rest.starts_with(['/', '@', '?', '#'])
        }
        None => false,
    }
}

/// License tokens of an SPDX expression: ids without operators and parentheses.
fn license_tokens(expression: &str) -> impl Iterator<Item = &str> {
    expression
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| {
            !t.is_empty() && !matches!(t.to_ascii_uppercase().as_str(), "AND" | "OR" | "WITH")
        })
}

impl<'a> Compiled<'a> {
    fn new(rule: &'a PolicyRule, now: DateTime<Utc>) -> Compiled<'a> {
        Compiled {
            rule,
            images: globs(&rule.images, false, false),
            repositories: globs(&rule.repositories, false, false),
            namespaces: globs(&rule.namespaces, false, false),
            paths: globs(&rule.paths, false, true),
            vendors: globs(&rule.vendors, true, false),
            licenses: globs(&rule.licenses, true, false),
            expired: rule
                .expires
                .as_deref()
                .is_some_and(|e| parse_expires(e).is_none_or(|at| now >= at)),
        }
    }

    /// Whether every matcher the rule gives matches.
    fn matches(&self, input: &Input, context: &Context) -> bool {
        let r = self.rule;
        fn ci_any<'s>(wanted: &[String], mut have: impl Iterator<Item = &'s str>) -> bool {
            have.any(|h| wanted.iter().any(|w| w.eq_ignore_ascii_case(h)))
        }
        (r.severity.is_empty() || r.severity.contains(&input.severity))
            && (r.environments.is_empty()
                || context
                    .environment
                    .as_ref()
                    .is_some_and(|e| r.environments.contains(e)))
            && (r.sources.is_empty()
                || ci_any(&r.sources, input.sources.iter().map(String::as_str)))
            && (r.vendors.is_empty()
                || input
                    .vendor
                    .as_deref()
                    .is_some_and(|v| any_glob(&self.vendors, v)))
            && (r.images.is_empty() || {
                let image = &context.image;
                any_glob(&self.images, &image.name)
                    || any_glob(&self.images, &image.digest)
                    || any_glob(
                        &self.images,
                        &format!("{}@{}", image.repository(), image.digest),
                    )
            })
            && (r.repositories.is_empty()
                || any_glob(&self.repositories, &context.image.repository()))
            && (r.namespaces.is_empty()
                || context
                    .namespace
                    .as_deref()
                    .is_some_and(|n| any_glob(&self.namespaces, n)))
            && (r.purls.is_empty() || r.purls.iter().any(|p| purl_matches(p, &input.purl)))
            && (r.cves.is_empty()
                || ci_any(
                    &r.cves,
                    std::iter::once(input.id.as_str())
                        .chain(input.aliases.iter().map(String::as_str)),
                ))
            && (r.paths.is_empty()
                || input
                    .path
                    .as_deref()
                    .is_some_and(|p| any_glob(&self.paths, p.trim_start_matches('/'))))
            && (r.layer_digests.is_empty()
                || input
                    .layer_digest
                    .as_ref()
                    .is_some_and(|d| r.layer_digests.contains(d)))
            && r.used_by_entrypoint
                .is_none_or(|u| u == input.used_by_entrypoint)
            && r.kev.is_none_or(|k| k == input.kev.unwrap_or(false))
            && r.epss_at_least
                .is_none_or(|min| input.epss.is_some_and(|e| e >= min))
            && (r.licenses.is_empty()
                || input.licenses.iter().any(|expression| {
                    any_glob(&self.licenses, expression)
                        || license_tokens(expression).any(|t| any_glob(&self.licenses, t))
                }))
    }
}

fn rank(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 5,
        Severity::High => 4,
        Severity::Medium => 3,
        Severity::Low => 2,
        Severity::Unknown => 1,
        Severity::None => 0,
    }
}

fn by_severity(severity: Severity) -> Outcome {
    match severity {
        Severity::Critical => Outcome::Fail,
        Severity::High => Outcome::Warn,
        _ => Outcome::Pass,
    }
}

fn vex_words(vex: &VexConsensus) -> String {
    let status = serde_json::to_value(vex.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match &vex.justification {
        Some(j) => format!("{status} ({j}) from {}", vex.provider),
        None => format!("{status} from {}", vex.provider),
    }
}

/// Whether a `requireVEX` rule accepts the consensus; `Err` says why not.
fn require_vex(rule: &PolicyRule, vex: Option<&VexConsensus>) -> Result<String, String> {
    let Some(vex) = vex else {
        return Err("requires a VEX statement: no VEX consensus".into());
    };
    if !vex.status.quiets() {
        return Err(format!(
            "requires a not_affected or fixed VEX consensus: {}",
            vex_words(vex)
        ));
    }
    if let Some(require) = &rule.require_vex {
        if !require.vendors.is_empty()
            && !require
                .vendors
                .iter()
                .any(|v| v.eq_ignore_ascii_case(&vex.provider))
        {
            return Err(format!(
                "requires VEX from {}: {}",
                require.vendors.join(", "),
                vex_words(vex)
            ));
        }
        if vex.status == VexStatus::NotAffected && !require.justifications.is_empty() {
            let accepted = vex.justification.as_deref().is_some_and(|j| {
                require
                    .justifications
                    .iter()
                    .any(|a| a.as_str().eq_ignore_ascii_case(j))
            });
            if !accepted {
                let wanted: Vec<&str> = require.justifications.iter().map(|j| j.as_str()).collect();
                return Err(format!(
                    "requires a not_affected justification of {}: {}",
                    wanted.join(", "),
                    vex_words(vex)
                ));
            }
        }
    }
    Ok(format!("VEX {} satisfies requireVEX", vex_words(vex)))
}

fn waiver(rule: &PolicyRule) -> Waiver {
    Waiver {
        rule: rule.name.clone(),
        expires: rule.expires.clone(),
        justification: rule.justification.clone(),
    }
}

/// Evaluates `findings` for the image in `context` under `policy`. The policy is expected to
/// be valid ([`crate::load_str`] guarantees it); in an unvalidated spec a pattern that does
/// not compile matches nothing and an `expires` that names no real time counts as expired.
pub fn evaluate(policy: &PolicySpec, context: &Context, findings: &[Input]) -> Report {
    let now = context.evaluated_at;
    let default_scoring;
    let scoring = match &policy.scoring {
        Some(scoring) => scoring,
        None => {
            default_scoring = scoring::default_scoring();
            &default_scoring
        }
    };
    let rules: Vec<Compiled<'_>> = policy.rules.iter().map(|r| Compiled::new(r, now)).collect();
    let mut expired_hits = vec![0usize; rules.len()];

    let mut decisions: Vec<(String, FindingDecision)> = findings
        .iter()
        .map(|input| {
            let mut expired_waivers = Vec::new();
            let mut decided = None;
            for (i, rule) in rules.iter().enumerate() {
                if !rule.matches(input, context) {
                    continue;
                }
                if rule.expired {
                    expired_hits[i] += 1;
                    expired_waivers.push(waiver(rule.rule));
                    continue;
                }
                decided = Some(rule.rule);
                break;
            }
            let quieting_vex = input.vex.as_ref().filter(|v| v.status.quiets());
            let mut severity = input.severity;
            let mut waiver_applied = None;
            let (outcome, decided_by, reason) = match decided {
                Some(rule) if rule.action == PolicyAction::RequireVex => {
                    match require_vex(rule, input.vex.as_ref()) {
                        Ok(why) => (Outcome::VexSuppressed, DecidedBy::Rule, why),
                        Err(why) => (Outcome::Fail, DecidedBy::Rule, why),
                    }
                }
                Some(rule) if quieting_vex.is_some() && !rule.override_vex => (
                    Outcome::VexSuppressed,
                    DecidedBy::Vex,
                    format!(
                        "VEX {} (rule \"{}\" would have applied)",
                        vex_words(quieting_vex.expect("checked above")),
                        rule.name
                    ),
                ),
                None if quieting_vex.is_some() => (
                    Outcome::VexSuppressed,
                    DecidedBy::Vex,
                    format!("VEX {}", vex_words(quieting_vex.expect("checked above"))),
                ),
                Some(rule) => match rule.action {
                    PolicyAction::Block => (Outcome::Fail, DecidedBy::Rule, "blocked".into()),
                    PolicyAction::Warn => (Outcome::Warn, DecidedBy::Rule, "warned".into()),
                    PolicyAction::Defer => (Outcome::Deferred, DecidedBy::Rule, "deferred".into()),
                    PolicyAction::Ignore => {
                        waiver_applied = Some(waiver(rule));
                        let until = rule
                            .expires
                            .as_deref()
                            .map_or("no expiry".to_string(), |e| format!("until {e}"));
                        (
                            Outcome::Ignored,
                            DecidedBy::Rule,
                            format!("waived ({until})"),
                        )
                    }
                    PolicyAction::Escalate => {
                        if let Some(to) = rule.escalate_to
                            && rank(to) > rank(severity)
                        {
                            severity = to;
                        }
                        (
                            by_severity(severity),
                            DecidedBy::Rule,
                            format!("escalated {:?} → {severity:?}", input.severity),
                        )
                    }
                    PolicyAction::RequireVex => unreachable!("handled by the first arm"),
                },
                None => (
                    by_severity(severity),
                    DecidedBy::Default,
                    format!("no rule matched: {severity:?} decides"),
                ),
            };
            let score = scoring::score(
                scoring,
                &ScoreInput {
                    severity,
                    tags: &input.tags,
                    sources: &input.sources,
                    vendor: input.vendor.as_deref(),
                    used_by_entrypoint: input.used_by_entrypoint,
                },
                outcome,
                now,
            );
            let rule = decided.filter(|_| decided_by == DecidedBy::Rule);
            let mut aliases = input.aliases.clone();
            aliases.sort();
            aliases.dedup();
            let decision = FindingDecision {
                id: input.id.clone(),
                aliases,
                purl: input.purl.clone(),
                outcome,
                decided_by,
                rule: rule.map(|r| r.name.clone()),
                action: rule.map(|r| r.action),
                original_severity: input.severity,
                severity,
                score,
                vex: input.vex.clone(),
                waiver: waiver_applied,
                expired_waivers,
                reason,
            };
            let key = crate::canonical_json(
                &serde_json::to_value(&decision).expect("a decision serialises"),
            );
            (key, decision)
        })
        .collect();
    decisions.sort_by(|(ka, a), (kb, b)| {
        (a.purl.as_str(), a.id.as_str(), ka).cmp(&(b.purl.as_str(), b.id.as_str(), kb))
    });
    let findings: Vec<FindingDecision> = decisions.into_iter().map(|(_, d)| d).collect();

    let mut counts = Counts {
        total: findings.len(),
        ..Counts::default()
    };
    for finding in &findings {
        *match finding.outcome {
            Outcome::Fail => &mut counts.fail,
            Outcome::Warn => &mut counts.warn,
            Outcome::Deferred => &mut counts.deferred,
            Outcome::Pass => &mut counts.pass,
            Outcome::Ignored => &mut counts.ignored,
            Outcome::VexSuppressed => &mut counts.vex_suppressed,
        } += 1;
    }
    let verdict = if counts.fail > 0 {
        Verdict::Fail
    } else if counts.warn + counts.deferred > 0 {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let expired_waivers = rules
        .iter()
        .zip(expired_hits)
        .filter(|(rule, _)| rule.expired)
        .map(|(rule, findings)| ExpiredWaiver {
            rule: rule.rule.name.clone(),
            action: rule.rule.action,
            expires: rule.rule.expires.clone().unwrap_or_default(),
            findings,
        })
        .collect();
    Report {
        schema: REPORT_SCHEMA.into(),
        policy_digest: crate::digest(policy),
        image: context.image.clone(),
        namespace: context.namespace.clone(),
        environment: context.environment.clone(),
        evaluated_at: now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        verdict,
        counts,
        findings,
        expired_waivers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_prefixes_end_at_a_boundary() {
        let purl = "pkg:deb/debian/openssl@3.0.11-1?arch=amd64";
        assert!(purl_matches("pkg:deb/debian/openssl", purl));
        assert!(purl_matches("pkg:deb/", purl));
        assert!(purl_matches("pkg:deb", purl));
        assert!(purl_matches(purl, purl));
        assert!(purl_matches("pkg:deb/debian/openssl@3.0.11-1", purl));
        assert!(!purl_matches("pkg:deb/debian/openssl@3.0.1", purl));
        assert!(!purl_matches("pkg:deb/debian/open", purl));
        assert!(!purl_matches(
            "pkg:deb/debian/openssl",
            "pkg:deb/debian/openssl-dev@3.0.11-1"
        ));
    }

    #[test]
    fn expiry_dates_mean_their_first_instant() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            parse_expires("2026-01-01"),
            Some(at("2026-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_expires("2026-01-01T12:00:00+02:00"),
            Some(at("2026-01-01T10:00:00Z"))
        );
        assert_eq!(parse_expires("2026-02-30"), None);
        assert_eq!(parse_expires("2026-1-01"), None);
    }

    #[test]
    fn repositories_drop_tags_and_digests_but_not_ports() {
        let image = |name: &str| Image {
            digest: "sha256:00".into(),
            name: name.into(),
            repository: None,
        };
        assert_eq!(
            image("ghcr.io/acme/api:1.2").repository(),
            "ghcr.io/acme/api"
        );
        assert_eq!(
            image("localhost:5000/acme/api@sha256:ab").repository(),
            "localhost:5000/acme/api"
        );
        assert_eq!(
            image("localhost:5000/acme/api").repository(),
            "localhost:5000/acme/api"
        );
    }
}
