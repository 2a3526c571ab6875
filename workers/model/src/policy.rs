//! The policy document (DSL v1.0): rules, actions, the scoring configuration
//! (policy-scoring-schema@1) and the admission settings. The `Policy` custom resource's spec
//! is exactly this type; the policy engine validates, digests and evaluates it.

use crate::selector::LabelSelector;
use crate::{SecretKeyRef, Severity, Verdict};
use serde::{Deserialize, Serialize};

/// A policy: rules that turn findings (after VEX) into decisions and a PASS / WARN / FAIL
/// verdict, the scoring configuration, and how the admission webhook enforces verdicts.
/// The controller validates it and publishes its digest in the status.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// What this policy is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(length(max = 1024)))]
    pub description: Option<String>,

    /// DSL version; only `1.0` exists.
    pub version: PolicyVersion,

    /// Rules, evaluated in order; the first matching rule decides a finding.
    #[cfg_attr(feature = "schemars", schemars(length(max = 512)))]
    pub rules: Vec<PolicyRule>,

    /// Scoring configuration (policy-scoring-schema@1). Defaults to the built-in weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<ScoringConfig>,

    /// How the admission webhook enforces this policy's verdicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionConfig>,
}

/// DSL versions.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum PolicyVersion {
    #[serde(rename = "1.0")]
    V1_0,
}

/// One rule: matchers (all given matchers must match) and an action.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schemars", schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.action != 'escalate' || has(self.escalateTo)",
     "message": "action 'escalate' needs escalateTo", "fieldPath": ".escalateTo"},
    {"rule": "self.action == 'requireVEX' || !has(self.requireVex)",
     "message": "requireVex applies only to action 'requireVEX'", "fieldPath": ".requireVex"},
])))]
pub struct PolicyRule {
    /// Rule name, unique in the policy; every decision names the rule that made it.
    #[cfg_attr(feature = "schemars", schemars(length(min = 1, max = 128)))]
    pub name: String,
    /// Finding severities the rule applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schemars", schemars(length(max = 6)))]
    pub severity: Vec<Severity>,
    /// Environments (the `stella-ops.org/environment` namespace label, or `--env`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 32), inner(length(min = 1, max = 63)))
    )]
    pub environments: Vec<String>,
    /// Advisory sources (`NVD`, `GHSA`, `OSV`, `debian`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 32), inner(length(min = 1, max = 63)))
    )]
    pub sources: Vec<String>,
    /// Package vendors / suppliers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 32), inner(length(min = 1, max = 128)))
    )]
    pub vendors: Vec<String>,
    /// Image reference globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 64), inner(length(min = 1, max = 1024)))
    )]
    pub images: Vec<String>,
    /// Repository globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 64), inner(length(min = 1, max = 512)))
    )]
    pub repositories: Vec<String>,
    /// Namespace globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 64), inner(length(min = 1, max = 253)))
    )]
    pub namespaces: Vec<String>,
    /// Package URL prefixes (`pkg:deb/debian/openssl`, `pkg:npm/`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(
            length(max = 256),
            inner(length(min = 4, max = 512), regex(pattern = r"^pkg:[a-z]"))
        )
    )]
    pub purls: Vec<String>,
    /// Vulnerability ids or aliases (`CVE-2024-3094`, `GHSA-…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 1024), inner(length(min = 3, max = 128)))
    )]
    pub cves: Vec<String>,
    /// File path globs of the component's evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 64), inner(length(min = 1, max = 4096)))
    )]
    pub paths: Vec<String>,
    /// Digests of the layers that introduced the component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 256), inner(regex(pattern = r"^sha256:[a-f0-9]{64}$")))
    )]
    pub layer_digests: Vec<String>,
    /// Match only components the entrypoint uses (`true`) or does not use (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by_entrypoint: Option<bool>,
    /// Match only vulnerabilities in (or not in) the CISA KEV catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev: Option<bool>,
    /// Match only vulnerabilities whose EPSS probability is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 1.0)))]
    pub epss_at_least: Option<f64>,
    /// SPDX license ids or expressions of the component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 64), inner(length(min = 1, max = 128)))
    )]
    pub licenses: Vec<String>,
    /// What a match does: `block`, `ignore`, `warn`, `escalate`, `defer` or `requireVEX`.
    pub action: PolicyAction,
    /// Severity an `escalate` raises the finding to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<Severity>,
    /// Which VEX statements a `requireVEX` accepts. Absent: a `not_affected` or `fixed`
    /// consensus from any provider, with any justification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_vex: Option<RequireVex>,
    /// Decide by this rule's action even when a VEX consensus says `not_affected` or
    /// `fixed` (which otherwise suppresses the finding).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub override_vex: bool,
    /// Date (`YYYY-MM-DD`) or RFC 3339 time after which the rule no longer applies:
    /// waivers expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schemars",
        schemars(regex(
            pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
        ))
    )]
    pub expires: Option<String>,
    /// Why the rule exists (recorded with every decision it makes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(length(max = 1024)))]
    pub justification: Option<String>,
}

/// Rule actions.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum PolicyAction {
    #[serde(rename = "block")]
    Block,
    #[serde(rename = "ignore")]
    Ignore,
    #[serde(rename = "warn")]
    Warn,
    #[serde(rename = "escalate")]
    Escalate,
    #[serde(rename = "defer")]
    Defer,
    #[serde(rename = "requireVEX")]
    RequireVex,
}

/// The VEX a `requireVEX` rule accepts: a consensus of `not_affected` (with one of the
/// justifications) or `fixed`, from one of the vendors.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RequireVex {
    /// VEX providers whose statement counts (case-insensitive); empty accepts any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 32), inner(length(min = 1, max = 128)))
    )]
    pub vendors: Vec<String>,
    /// Accepted `not_affected` justifications; empty accepts any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schemars", schemars(length(max = 5)))]
    pub justifications: Vec<VexJustification>,
}

/// OpenVEX `not_affected` justifications.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum VexJustification {
    ComponentNotPresent,
    VulnerableCodeNotPresent,
    VulnerableCodeNotInExecutePath,
    VulnerableCodeCannotBeControlledByAdversary,
    InlineMitigationsAlreadyExist,
}

impl VexJustification {
    /// The OpenVEX spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VexJustification::ComponentNotPresent => "component_not_present",
            VexJustification::VulnerableCodeNotPresent => "vulnerable_code_not_present",
            VexJustification::VulnerableCodeNotInExecutePath => {
                "vulnerable_code_not_in_execute_path"
            }
            VexJustification::VulnerableCodeCannotBeControlledByAdversary => {
                "vulnerable_code_cannot_be_controlled_by_adversary"
            }
            VexJustification::InlineMitigationsAlreadyExist => "inline_mitigations_already_exist",
        }
    }
}

/// Scoring configuration, policy-scoring-schema@1.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ScoringConfig {
    /// Scoring schema version; only `1.0` exists.
    pub version: PolicyVersion,
    /// Base score per severity.
    pub severity_weights: SeverityWeights,
    /// Penalty for a finding quieted by VEX or policy.
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 100.0)))]
    pub quiet_penalty: f64,
    /// Penalty for a finding under a `warn` rule.
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 100.0)))]
    pub warn_penalty: f64,
    /// Penalty for a finding under an `ignore` rule.
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 100.0)))]
    pub ignore_penalty: f64,
    /// Multipliers by provider trust key (`vendor`, `distro`, …), matched against the
    /// finding's `trust:<key>` tag first, then its source / vendor; missing keys weigh 1.0.
    #[serde(default)]
    #[cfg_attr(feature = "schemars", schemars(extend("maxProperties" = 64)))]
    pub trust_overrides: std::collections::BTreeMap<String, Weight>,
    /// Multipliers by reachability bucket (`entrypoint`, `direct`, `indirect`, `runtime`,
    /// `unreachable`, `unknown`).
    #[serde(default)]
    #[cfg_attr(feature = "schemars", schemars(extend("maxProperties" = 16)))]
    pub reachability_buckets: std::collections::BTreeMap<String, Weight>,
    /// Confidence decay for unknowns.
    pub unknown_confidence: UnknownConfidence,
}

/// A multiplier in `[0, 1]`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Weight(pub f64);

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Weight {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Weight".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "number", "minimum": 0.0, "maximum": 1.0})
    }
    fn inline_schema() -> bool {
        true
    }
}

/// Base scores per severity.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "PascalCase")]
pub struct SeverityWeights {
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 100.0)))]
    pub critical: f64,
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 100.0)))]
    pub high: f64,
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 100.0)))]
    pub medium: f64,
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 100.0)))]
    pub low: f64,
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 100.0)))]
    pub none: f64,
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 100.0)))]
    pub unknown: f64,
}

/// Unknown-confidence decay and bands.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct UnknownConfidence {
    /// Confidence of a fresh unknown.
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 1.0)))]
    pub initial: f64,
    /// Confidence lost per day.
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 1.0)))]
    pub decay_per_day: f64,
    /// Lowest confidence.
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 1.0)))]
    pub floor: f64,
    /// Named bands, resolved by the first whose `min` the confidence reaches
    /// (the controller orders them by `min`, descending).
    #[cfg_attr(feature = "schemars", schemars(length(min = 1, max = 8)))]
    pub bands: Vec<ConfidenceBand>,
}

/// A confidence band.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConfidenceBand {
    /// Band name (`high`, `medium`, `low`).
    #[cfg_attr(feature = "schemars", schemars(length(min = 1, max = 32)))]
    pub name: String,
    /// Lowest confidence in the band.
    #[cfg_attr(feature = "schemars", schemars(range(min = 0.0, max = 1.0)))]
    pub min: f64,
}

/// Admission enforcement of this policy's verdicts (the Zastava webhook).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdmissionConfig {
    /// `dry-run` admits and warns; `enforce` denies.
    pub mode: AdmissionMode,
    /// Namespaces this policy governs at admission. Empty selects every namespace the
    /// webhook configuration sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// What to do with an image that has no verdict yet: `allow`, `warn`, `deny`, or
    /// `scan-and-deny` (create a Scan and deny until it is Ready).
    #[serde(default = "default_unscanned")]
    pub unscanned: UnscannedAction,
    /// Answer when the decision cannot be made in time (catalog or registry unreachable).
    #[serde(default = "default_failure")]
    pub on_error: FailureMode,
    /// Cache lifetime of tag → digest resolutions, in seconds.
    #[serde(default = "default_cache_ttl")]
    #[cfg_attr(feature = "schemars", schemars(range(min = 0, max = 86400)))]
    pub digest_cache_ttl_seconds: u32,
    /// Exemptions, by namespace and/or image pattern, each with an optional expiry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schemars", schemars(length(max = 256)))]
    pub exemptions: Vec<Exemption>,
    /// Cosign signature verification of image digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<SignatureConfig>,
    /// A signed Stella Ops attestation the image must have: the DSSE envelope the operator
    /// signs for a Scan with `spec.attest` (see `stella verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_attestation: Option<AttestationRequirement>,
}

/// What an image's attestation must show to be admitted.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AttestationRequirement {
    /// `dry-run` warns about images without a valid attestation; `enforce` denies them.
    pub mode: AdmissionMode,
    /// Public keys (PEM, ECDSA P-256 or Ed25519) the envelope may verify against; any one
    /// suffices, so keys can rotate.
    #[cfg_attr(feature = "schemars", schemars(length(min = 1, max = 16)))]
    pub keys: Vec<SignatureKey>,
    /// What must be attested: the verdict `report` of the image's current result, or its
    /// inventory `sbom`.
    #[serde(default)]
    pub predicate: AttestedPredicate,
    /// Refuse attestations older than this (a report's `evaluatedAt`; an SBOM's the image's
    /// creation time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(range(min = 60, max = 31_536_000)))]
    pub max_age_seconds: Option<u32>,
    /// The signed verdicts admitted (with `predicate: report`).
    #[serde(default = "default_verdicts")]
    #[cfg_attr(feature = "schemars", schemars(length(min = 1, max = 3)))]
    pub verdicts: Vec<Verdict>,
}

fn default_verdicts() -> Vec<Verdict> {
    vec![Verdict::Pass]
}

/// The predicates `requireAttestation` can ask for.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AttestedPredicate {
    #[default]
    Report,
    Sbom,
}

fn default_unscanned() -> UnscannedAction {
    UnscannedAction::Warn
}
fn default_failure() -> FailureMode {
    FailureMode::FailOpen
}
fn default_cache_ttl() -> u32 {
    300
}

/// Enforcement modes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AdmissionMode {
    DryRun,
    Enforce,
}

/// What to do with unscanned images.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum UnscannedAction {
    Allow,
    Warn,
    Deny,
    ScanAndDeny,
}

/// Fail-open admits on error; fail-closed denies.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum FailureMode {
    FailOpen,
    FailClosed,
}

/// An admission exemption.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schemars", schemars(extend("x-kubernetes-validations" = [
    {"rule": "size(self.namespaces) > 0 || size(self.images) > 0",
     "message": "an exemption needs namespaces or images"},
])))]
pub struct Exemption {
    /// Namespace globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 64), inner(length(min = 1, max = 253)))
    )]
    pub namespaces: Vec<String>,
    /// Image reference globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schemars",
        schemars(length(max = 64), inner(length(min = 1, max = 1024)))
    )]
    pub images: Vec<String>,
    /// RFC 3339 time or date after which the exemption no longer applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schemars",
        schemars(regex(
            pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
        ))
    )]
    pub expires: Option<String>,
    /// Why (shown in admission answers and events).
    #[cfg_attr(feature = "schemars", schemars(length(min = 1, max = 1024)))]
    pub reason: String,
}

/// Cosign signature verification.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignatureConfig {
    /// `dry-run` warns about unsigned or wrongly signed images; `enforce` denies them.
    pub mode: AdmissionMode,
    /// Public keys (PEM) an image signature may verify against; any one suffices.
    #[cfg_attr(feature = "schemars", schemars(length(min = 1, max = 16)))]
    pub keys: Vec<SignatureKey>,
}

/// A cosign public key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignatureKey {
    /// Key name, shown in decisions.
    #[cfg_attr(
        feature = "schemars",
        schemars(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )
    )]
    pub name: String,
    /// Secret key holding the PEM public key.
    pub secret_ref: SecretKeyRef,
}
