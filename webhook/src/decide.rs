//! The admission decision, pure: what the I/O found about one image (its digest, its
//! verdict, its signatures) and one governing Policy's settings give allow / warn / deny with
//! a reason and a message a person can act on. `server` gathers the facts; nothing here waits.

use crate::policy::Governing;
use crate::signature::{self, Check, Signed};
use crate::workload::ContainerImage;
use stella_crds::policy::v1alpha1::{AdmissionMode, AttestedPredicate, UnscannedAction};

/// Longest message of one image decision (the API server shows them whole).
const MAX_MESSAGE: usize = 1024;
/// Findings named in a message.
pub const TOP_FINDINGS: usize = 3;

/// Allow < Warn < Deny: the strictest wins when several policies or images decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Allow,
    Warn,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Warn => "warn",
            Outcome::Deny => "deny",
        }
    }
}

/// Why: the metric label and the event's `reason` (a closed set, never formatted data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Nothing to decide: no Policy governs the namespace, or the object runs no new image.
    NotGoverned,
    Exempt,
    Pass,
    VerdictWarn,
    VerdictFail,
    Unscanned,
    ScanRequested,
    SignatureMissing,
    SignatureInvalid,
    AttestationMissing,
    AttestationInvalid,
    AttestationVerdict,
    ResolveFailed,
    CatalogUnavailable,
    RegistryUnavailable,
    Undecodable,
    Deadline,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotGoverned => "not-governed",
            Reason::Exempt => "exempt",
            Reason::Pass => "pass",
            Reason::VerdictWarn => "verdict-warn",
            Reason::VerdictFail => "verdict-fail",
            Reason::Unscanned => "unscanned",
            Reason::ScanRequested => "scan-requested",
            Reason::SignatureMissing => "signature-missing",
            Reason::SignatureInvalid => "signature-invalid",
            Reason::AttestationMissing => "attestation-missing",
            Reason::AttestationInvalid => "attestation-invalid",
            Reason::AttestationVerdict => "attestation-verdict",
            Reason::ResolveFailed => "resolve-failed",
            Reason::CatalogUnavailable => "catalog-unavailable",
            Reason::RegistryUnavailable => "registry-unavailable",
            Reason::Undecodable => "undecodable",
            Reason::Deadline => "deadline",
        }
    }
}

/// A finding named in a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopFinding {
    pub id: String,
    pub purl: String,
    pub severity: String,
    pub rule: Option<String>,
}

/// The latest verdict of a digest.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Verdict {
    /// `PASS`, `WARN`, `FAIL`; `None`: scanned without a policy.
    pub verdict: Option<String>,
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub policy_digest: Option<String>,
    /// The worst failing (then warning) findings, at most [`TOP_FINDINGS`].
    pub top: Vec<TopFinding>,
    /// Failing and warning findings in all.
    pub flagged: usize,
    /// `catalog` or `scan` (the Scan's status, which names no findings).
    pub source: &'static str,
}

/// What the I/O found about one image.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// `sha256:…`, or why it could not be resolved.
    pub digest: Option<Result<String, String>>,
    /// `Ok(None)`: no result for the digest.
    pub verdict: Option<Result<Option<Verdict>, String>>,
    /// The cosign signatures found (empty: none), when a governing policy asks for them.
    pub signatures: Option<Result<Vec<Signed>, String>>,
    /// The Scan requested for an unscanned image (`namespace/name`), or why not.
    pub scan: Option<Result<String, String>>,
    /// The signed envelope of each predicate a governing policy requires (`Ok(None)`: none
    /// stored for the current result).
    pub attestations: Vec<(AttestedPredicate, Result<Option<bytes::Bytes>, String>)>,
    /// When the facts were gathered: attestations' age is judged against it.
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

/// One image decided under one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    /// Empty for a plain allow.
    pub message: String,
}

impl Decision {
    fn new(outcome: Outcome, reason: Reason, message: String) -> Decision {
        Decision {
            outcome,
            reason,
            message: truncate(message, MAX_MESSAGE),
        }
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub(1);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// `enforce` after the webhook's own cap (`--mode=dry-run` turns every deny into a warning).
fn enforcing(mode: AdmissionMode, cap_enforce: bool) -> bool {
    mode == AdmissionMode::Enforce && cap_enforce
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// Deny when enforcing, else warn that it would have.
fn deny_or_warn(enforce: bool, reason: Reason, message: String) -> Decision {
    if enforce {
        Decision::new(Outcome::Deny, reason, message)
    } else {
        Decision::new(
            Outcome::Warn,
            reason,
            format!("dry-run, would deny: {message}"),
        )
    }
}

/// A decision that could not be made: the policy's `onError` choice (dry-run never denies).
pub fn on_error(g: &Governing, cap_enforce: bool, reason: Reason, what: &str) -> Decision {
    if g.fail_closed() {
        deny_or_warn(
            enforcing(g.config.mode, cap_enforce),
            reason,
            format!("{what} (policy {}: onError fail-closed)", g.policy),
        )
    } else {
        Decision::new(
            Outcome::Warn,
            reason,
            format!(
                "{what}; admitted unchecked (policy {}: onError fail-open)",
                g.policy
            ),
        )
    }
}

/// The exemption decision, when one covers the image.
pub fn exempt(
    g: &Governing,
    namespace: &str,
    image: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Decision> {
    let e = g.exemption(namespace, image, now)?;
    let until = e
        .expires
        .as_deref()
        .map(|x| format!(" until {x}"))
        .unwrap_or_default();
    Some(Decision::new(
        Outcome::Allow,
        Reason::Exempt,
        format!(
            "image {image} exempt from policy {}{until}: {}",
            g.policy, e.reason
        ),
    ))
}

/// Decides one (non-exempt) image under one policy from its facts.
pub fn decide(g: &Governing, image: &ContainerImage, facts: &Facts, cap_enforce: bool) -> Decision {
    let name = &image.image;
    let enforce = enforcing(g.config.mode, cap_enforce);
    let digest = match &facts.digest {
        Some(Ok(d)) => d.as_str(),
        Some(Err(e)) => {
            return on_error(
                g,
                cap_enforce,
                Reason::ResolveFailed,
                &format!("image {name}: cannot resolve its digest: {e}"),
            );
        }
        None => {
            return on_error(
                g,
                cap_enforce,
                Reason::Deadline,
                &format!("image {name}: not resolved in time"),
            );
        }
    };
    let shown = format!("image {name} ({})", short(digest));
    let verdict = match &facts.verdict {
        Some(Ok(v)) => v.as_ref(),
        Some(Err(e)) => {
            return on_error(
                g,
                cap_enforce,
                Reason::CatalogUnavailable,
                &format!("{shown}: verdict unavailable: {e}"),
            );
        }
        None => {
            return on_error(
                g,
                cap_enforce,
                Reason::Deadline,
                &format!("{shown}: verdict not found in time"),
            );
        }
    };
    let mut decision = match verdict.and_then(|v| v.verdict.as_deref().map(|s| (v, s))) {
        Some((_, "PASS")) => Decision::new(Outcome::Allow, Reason::Pass, String::new()),
        Some((v, "WARN")) => Decision::new(
            Outcome::Warn,
            Reason::VerdictWarn,
            format!("{shown}: verdict WARN{}", explain(v)),
        ),
        Some((v, other)) => deny_or_warn(
            enforce,
            Reason::VerdictFail,
            format!(
                "{shown} fails policy {}: verdict {other}{}",
                g.policy,
                explain(v)
            ),
        ),
        None => {
            let what = match verdict {
                Some(_) => format!("{shown} was scanned without a policy: no verdict"),
                None => format!("{shown} has not been scanned"),
            };
            match g.config.unscanned {
                UnscannedAction::Allow => {
                    Decision::new(Outcome::Allow, Reason::Unscanned, String::new())
                }
                UnscannedAction::Warn => Decision::new(Outcome::Warn, Reason::Unscanned, what),
                UnscannedAction::Deny => deny_or_warn(
                    enforce,
                    Reason::Unscanned,
                    format!("{what} (policy {}: unscanned images are denied)", g.policy),
                ),
                UnscannedAction::ScanAndDeny => match &facts.scan {
                    Some(Ok(scan)) => deny_or_warn(
                        enforce,
                        Reason::ScanRequested,
                        format!(
                            "{what}; Scan {scan} requested, retry once it is Ready (policy {})",
                            g.policy
                        ),
                    ),
                    Some(Err(e)) => on_error(
                        g,
                        cap_enforce,
                        Reason::ScanRequested,
                        &format!("{what}; requesting its Scan failed: {e}"),
                    ),
                    None => on_error(
                        g,
                        cap_enforce,
                        Reason::Deadline,
                        &format!("{what}; its Scan was not requested in time"),
                    ),
                },
            }
        }
    };
    if let Some(config) = &g.config.signatures {
        let sig_enforce = enforcing(config.mode, cap_enforce);
        let names = g
            .keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let signed = match &facts.signatures {
            Some(Ok(s)) => Some(signature::check(s, digest, &g.keys)),
            Some(Err(e)) => {
                let d = on_error(
                    g,
                    cap_enforce,
                    Reason::RegistryUnavailable,
                    &format!("{shown}: signatures unavailable: {e}"),
                );
                decision = stricter(decision, d);
                None
            }
            None => {
                let d = on_error(
                    g,
                    cap_enforce,
                    Reason::Deadline,
                    &format!("{shown}: signatures not checked in time"),
                );
                decision = stricter(decision, d);
                None
            }
        };
        let extra = if g.key_errors.is_empty() {
            String::new()
        } else {
            format!(" [unusable keys: {}]", g.key_errors.join("; "))
        };
        let sig = match signed {
            Some(Check::Missing) => Some(deny_or_warn(
                sig_enforce,
                Reason::SignatureMissing,
                format!(
                    "{shown} has no cosign signature (policy {} requires one by: {names}){extra}",
                    g.policy
                ),
            )),
            Some(Check::Invalid(why)) => Some(deny_or_warn(
                sig_enforce,
                Reason::SignatureInvalid,
                format!(
                    "{shown}: no signature verifies with policy {}'s keys ({names}): {why}{extra}",
                    g.policy
                ),
            )),
            Some(Check::Verified { .. }) | None => None,
        };
        if let Some(sig) = sig {
            decision = stricter(decision, sig);
        }
    }
    if let Some(gate) = attestation(g, digest, &shown, facts, cap_enforce) {
        decision = stricter(decision, gate);
    }
    decision
}

/// `requireAttestation`: the current result's envelope of the required predicate, verified
/// with the policy's keys for this digest, young enough, and (a report) with an admitted
/// signed verdict. `None`: satisfied, or not required.
fn attestation(
    g: &Governing,
    digest: &str,
    shown: &str,
    facts: &Facts,
    cap_enforce: bool,
) -> Option<Decision> {
    let required = g.config.require_attestation.as_ref()?;
    let enforce = enforcing(required.mode, cap_enforce);
    let kind = match required.predicate {
        AttestedPredicate::Report => stella_attest::Kind::Report,
        AttestedPredicate::Sbom => stella_attest::Kind::Sbom,
    };
    let extra = if g.key_errors.is_empty() {
        String::new()
    } else {
        format!(" [unusable keys: {}]", g.key_errors.join("; "))
    };
    let found = facts
        .attestations
        .iter()
        .find(|(p, _)| *p == required.predicate)
        .map(|(_, found)| found);
    let bytes = match found {
        None => {
            return Some(on_error(
                g,
                cap_enforce,
                Reason::Deadline,
                &format!("{shown}: its attestation was not checked in time"),
            ));
        }
        Some(Err(e)) => {
            return Some(on_error(
                g,
                cap_enforce,
                Reason::CatalogUnavailable,
                &format!("{shown}: its attestation is unavailable: {e}"),
            ));
        }
        Some(Ok(None)) => {
            return Some(deny_or_warn(
                enforce,
                Reason::AttestationMissing,
                format!(
                    "{shown} has no signed {} attestation (policy {} requires one; set spec.attest on its Scan)",
                    kind.as_str(),
                    g.policy
                ),
            ));
        }
        Some(Ok(Some(bytes))) => bytes,
    };
    let expect = stella_attest::Expect {
        kind: Some(kind),
        subject: Some(digest.to_string()),
        max_age: required
            .max_age_seconds
            .map(|s| chrono::Duration::seconds(i64::from(s))),
    };
    let now = facts.now.unwrap_or_else(chrono::Utc::now);
    let verified = match stella_attest::verify(bytes, &g.attestation_keys, &expect, now) {
        Ok(verified) => verified,
        Err(e) => {
            return Some(deny_or_warn(
                enforce,
                Reason::AttestationInvalid,
                format!(
                    "{shown}: its {} attestation is not valid under policy {}: {e}{extra}",
                    kind.as_str(),
                    g.policy
                ),
            ));
        }
    };
    if kind != stella_attest::Kind::Report {
        return None;
    }
    let signed = verified
        .statement
        .predicate
        .get("verdict")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if required.verdicts.iter().any(|v| v.as_str() == signed) {
        return None;
    }
    let admitted: Vec<&str> = required.verdicts.iter().map(|v| v.as_str()).collect();
    Some(deny_or_warn(
        enforce,
        Reason::AttestationVerdict,
        format!(
            "{shown}: its signed verdict is {signed}, policy {} admits {}",
            g.policy,
            admitted.join(", ")
        ),
    ))
}

/// The stricter of two decisions; on a tie, the first; messages of both are kept when both
/// say something.
pub fn stricter(a: Decision, b: Decision) -> Decision {
    let (mut first, second) = if b.outcome > a.outcome {
        (b, a)
    } else {
        (a, b)
    };
    if !second.message.is_empty() && second.outcome != Outcome::Allow {
        first.message = if first.message.is_empty() {
            second.message
        } else {
            format!("{}; {}", first.message, second.message)
        };
        first.message = truncate(std::mem::take(&mut first.message), MAX_MESSAGE * 2);
    }
    first
}

/// `: 2 critical, 5 high; CVE-… critical in pkg:… (rule r); …; +4 more` (see the Scan).
fn explain(v: &Verdict) -> String {
    let counts: Vec<String> = [
        (v.critical, "critical"),
        (v.high, "high"),
        (v.medium, "medium"),
        (v.low, "low"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, s)| format!("{n} {s}"))
    .collect();
    let mut out = String::new();
    if !counts.is_empty() {
        out.push_str(&format!(" ({})", counts.join(", ")));
    }
    for (i, f) in v.top.iter().enumerate() {
        out.push_str(if i == 0 { ": " } else { "; " });
        out.push_str(&format!("{} {} in {}", f.id, f.severity, f.purl));
        match &f.rule {
            Some(rule) => out.push_str(&format!(" (rule {rule})")),
            None => out.push_str(" (severity default)"),
        }
    }
    if v.flagged > v.top.len() {
        out.push_str(&format!("; +{} more", v.flagged - v.top.len()));
    }
    if v.source == "scan" {
        out.push_str(" (findings: kubectl get scan)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySet;
    use crate::workload::ContainerKind;
    use serde_json::json;

    fn governing(admission: serde_json::Value) -> Governing {
        let policy = serde_json::from_value(json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy", "metadata": {"name": "prod"},
            "spec": {"version": "1.0", "rules": [], "admission": admission}}))
        .unwrap();
        let set = PolicySet::compile(&[policy], |_| crate::policy::Keys {
            errors: vec!["k: missing".into()],
            ..Default::default()
        });
        (*set.policies[0]).clone()
    }

    fn image() -> ContainerImage {
        ContainerImage {
            kind: ContainerKind::Container,
            container: "web".into(),
            image: "registry.example.com/shop/web:1.4".into(),
        }
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn facts(verdict: Option<Verdict>) -> Facts {
        Facts {
            digest: Some(Ok(DIGEST.into())),
            verdict: Some(Ok(verdict)),
            ..Facts::default()
        }
    }

    fn failing() -> Verdict {
        Verdict {
            verdict: Some("FAIL".into()),
            critical: 1,
            high: 2,
            top: vec![
                TopFinding {
                    id: "CVE-2024-3094".into(),
                    purl: "pkg:deb/debian/xz-utils@5.6.0".into(),
                    severity: "critical".into(),
                    rule: Some("block-critical".into()),
                },
                TopFinding {
                    id: "CVE-2023-4911".into(),
                    purl: "pkg:deb/debian/libc6@2.36".into(),
                    severity: "high".into(),
                    rule: None,
                },
            ],
            flagged: 5,
            source: "catalog",
            ..Verdict::default()
        }
    }

    #[test]
    fn fail_denies_in_enforce_and_warns_in_dry_run_naming_image_findings_and_rule() {
        let g = governing(json!({"mode": "enforce"}));
        let d = decide(&g, &image(), &facts(Some(failing())), true);
        assert_eq!((d.outcome, d.reason), (Outcome::Deny, Reason::VerdictFail));
        assert_eq!(
            d.message,
            "image registry.example.com/shop/web:1.4 (sha256:0123456789ab) fails policy prod: verdict FAIL \
             (1 critical, 2 high): CVE-2024-3094 critical in pkg:deb/debian/xz-utils@5.6.0 (rule block-critical); \
             CVE-2023-4911 high in pkg:deb/debian/libc6@2.36 (severity default); +3 more"
        );
        let capped = decide(&g, &image(), &facts(Some(failing())), false);
        assert_eq!(capped.outcome, Outcome::Warn);
        assert!(
            capped
                .message
                .starts_with("dry-run, would deny: image registry.example.com/shop/web:1.4")
        );
        let dry = governing(json!({"mode": "dry-run"}));
        assert_eq!(
            decide(&dry, &image(), &facts(Some(failing())), true).outcome,
            Outcome::Warn
        );
    }

    /// A signed report statement about [`DIGEST`] with `verdict`, evaluated at `at`.
    fn signed_report(key: &stella_attest::SigningKey, verdict: &str, at: &str) -> bytes::Bytes {
        use stella_attest::statement::{REPORT, Statement, Subject};
        let statement = Statement::new(
            vec![
                Subject::sha256("registry.example.com/shop/web", DIGEST),
                Subject::sha256("images/x/reports/y.json", &"b".repeat(64)),
            ],
            REPORT,
            json!({"imageDigest": DIGEST, "verdict": verdict, "evaluatedAt": at}),
        );
        stella_attest::sign(&statement, key)
            .unwrap()
            .to_json()
            .into()
    }

    #[test]
    fn require_attestation_admits_only_a_valid_young_signed_admitted_verdict() {
        use stella_attest::{Algorithm, Signer, SigningKey};
        let (key, _) = SigningKey::generate(Algorithm::EcdsaP256).unwrap();
        let (other, _) = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let policy = |mode: &str| {
            let policy = serde_json::from_value(json!({
                "apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy", "metadata": {"name": "prod"},
                "spec": {"version": "1.0", "rules": [], "admission": {"mode": "enforce", "unscanned": "allow",
                    "requireAttestation": {"mode": mode, "maxAgeSeconds": 3600,
                        "keys": [{"name": "release", "secretRef": {"name": "k", "key": "cosign.pub"}}]}}}}))
            .unwrap();
            let set = PolicySet::compile(&[policy], |_| crate::policy::Keys {
                attestations: vec![key.public().clone()],
                ..Default::default()
            });
            (*set.policies[0]).clone()
        };
        let g = policy("enforce");
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let with = |envelope: Result<Option<bytes::Bytes>, String>| Facts {
            attestations: vec![(AttestedPredicate::Report, envelope)],
            now: Some(now),
            ..facts(Some(Verdict {
                verdict: Some("PASS".into()),
                ..Verdict::default()
            }))
        };
        let run = |g: &Governing, f: Facts| decide(g, &image(), &f, true);
        let good = signed_report(&key, "PASS", "2026-12-01T11:30:00Z");
        let d = run(&g, with(Ok(Some(good.clone()))));
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Allow, Reason::Pass),
            "{}",
            d.message
        );

        let d = run(&g, with(Ok(None)));
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Deny, Reason::AttestationMissing)
        );
        assert!(
            d.message.contains("has no signed report attestation"),
            "{}",
            d.message
        );
        let d = run(
            &g,
            with(Ok(Some(signed_report(
                &key,
                "FAIL",
                "2026-12-01T11:30:00Z",
            )))),
        );
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Deny, Reason::AttestationVerdict)
        );
        assert!(
            d.message
                .contains("its signed verdict is FAIL, policy prod admits PASS"),
            "{}",
            d.message
        );
        for (bad, wanted) in [
            (
                signed_report(&key, "PASS", "2026-12-01T09:00:00Z"),
                "older than",
            ),
            (
                signed_report(&other, "PASS", "2026-12-01T11:30:00Z"),
                "no signature verifies",
            ),
            (
                bytes::Bytes::from(
                    String::from_utf8(good.to_vec())
                        .unwrap()
                        .replace("\"payload\":\"", "\"payload\":\"AAAA"),
                ),
                "no signature verifies",
            ),
            (good.slice(..40), "not a DSSE envelope"),
        ] {
            let d = run(&g, with(Ok(Some(bad))));
            assert_eq!(
                (d.outcome, d.reason),
                (Outcome::Deny, Reason::AttestationInvalid),
                "{}",
                d.message
            );
            assert!(
                d.message.contains(wanted),
                "{} (wanted {wanted})",
                d.message
            );
        }
        // Dry-run first: the same refusal is a warning.
        let d = run(&policy("dry-run"), with(Ok(None)));
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Warn, Reason::AttestationMissing)
        );
        assert!(
            d.message.starts_with("dry-run, would deny: "),
            "{}",
            d.message
        );
        // The catalog down: onError (fail-open by default) decides.
        let d = run(&g, with(Err("connection refused".into())));
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Warn, Reason::CatalogUnavailable)
        );
        // Not gathered in time.
        let late = Facts {
            attestations: vec![],
            ..with(Ok(None))
        };
        assert_eq!(run(&g, late).reason, Reason::Deadline);
    }

    #[test]
    fn pass_allows_and_warn_warns() {
        let g = governing(json!({"mode": "enforce"}));
        let pass = Verdict {
            verdict: Some("PASS".into()),
            ..Verdict::default()
        };
        let d = decide(&g, &image(), &facts(Some(pass)), true);
        assert_eq!(
            (d.outcome, d.reason, d.message.as_str()),
            (Outcome::Allow, Reason::Pass, "")
        );
        let warn = Verdict {
            verdict: Some("WARN".into()),
            medium: 3,
            ..Verdict::default()
        };
        let d = decide(&g, &image(), &facts(Some(warn)), true);
        assert_eq!((d.outcome, d.reason), (Outcome::Warn, Reason::VerdictWarn));
        assert!(
            d.message.ends_with("verdict WARN (3 medium)"),
            "{}",
            d.message
        );
    }

    #[test]
    fn unscanned_follows_the_policy() {
        for (unscanned, outcome, reason) in [
            ("allow", Outcome::Allow, Reason::Unscanned),
            ("warn", Outcome::Warn, Reason::Unscanned),
            ("deny", Outcome::Deny, Reason::Unscanned),
            ("scan-and-deny", Outcome::Deny, Reason::ScanRequested),
        ] {
            let g = governing(json!({"mode": "enforce", "unscanned": unscanned}));
            let mut f = facts(None);
            f.scan = Some(Ok("stella-system/sha256-0123".into()));
            let d = decide(&g, &image(), &f, true);
            assert_eq!((d.outcome, d.reason), (outcome, reason), "{unscanned}");
        }
        let g = governing(json!({"mode": "enforce", "unscanned": "scan-and-deny"}));
        let mut f = facts(None);
        f.scan = Some(Ok("stella-system/sha256-0123".into()));
        assert!(
            decide(&g, &image(), &f, true)
                .message
                .contains("Scan stella-system/sha256-0123 requested")
        );
        let no_policy_verdict = facts(Some(Verdict::default()));
        let g = governing(json!({"mode": "enforce", "unscanned": "deny"}));
        assert!(
            decide(&g, &image(), &no_policy_verdict, true)
                .message
                .contains("scanned without a policy")
        );
    }

    #[test]
    fn errors_follow_on_error_and_dry_run_never_denies() {
        let broken = Facts {
            digest: Some(Ok(DIGEST.into())),
            verdict: Some(Err("connection refused".into())),
            ..Facts::default()
        };
        let open = governing(json!({"mode": "enforce"}));
        let d = decide(&open, &image(), &broken, true);
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Warn, Reason::CatalogUnavailable)
        );
        assert!(d.message.contains("fail-open"));
        let closed = governing(json!({"mode": "enforce", "onError": "fail-closed"}));
        assert_eq!(
            decide(&closed, &image(), &broken, true).outcome,
            Outcome::Deny
        );
        let closed_dry = governing(json!({"mode": "dry-run", "onError": "fail-closed"}));
        assert_eq!(
            decide(&closed_dry, &image(), &broken, true).outcome,
            Outcome::Warn
        );
        let unresolved = Facts {
            digest: Some(Err("manifest unknown".into())),
            ..Facts::default()
        };
        assert_eq!(
            decide(&closed, &image(), &unresolved, true).reason,
            Reason::ResolveFailed
        );
        assert_eq!(
            decide(&closed, &image(), &Facts::default(), true).reason,
            Reason::Deadline
        );
    }

    #[test]
    fn exemptions_decide_with_their_reason() {
        let g = governing(json!({"mode": "enforce", "exemptions": [
            {"images": ["registry.example.com/shop/*"], "expires": "2999-01-01", "reason": "vendor fix pending"}]}));
        let d = exempt(&g, "shop", &image().image, chrono::Utc::now()).unwrap();
        assert_eq!((d.outcome, d.reason), (Outcome::Allow, Reason::Exempt));
        assert!(d.message.ends_with("until 2999-01-01: vendor fix pending"));
        assert!(exempt(&g, "shop", "other/image:1", chrono::Utc::now()).is_none());
    }

    #[test]
    fn missing_signatures_follow_the_signature_mode() {
        let g = governing(json!({"mode": "dry-run", "signatures": {"mode": "enforce",
            "keys": [{"name": "release", "secretRef": {"name": "cosign", "key": "cosign.pub"}}]}}));
        let mut f = facts(Some(Verdict {
            verdict: Some("PASS".into()),
            ..Verdict::default()
        }));
        f.signatures = Some(Ok(vec![]));
        let d = decide(&g, &image(), &f, true);
        assert_eq!(
            (d.outcome, d.reason),
            (Outcome::Deny, Reason::SignatureMissing)
        );
        assert!(
            d.message.contains("has no cosign signature"),
            "{}",
            d.message
        );
        assert!(
            d.message.contains("unusable keys: k: missing"),
            "{}",
            d.message
        );
    }

    #[test]
    fn stricter_keeps_both_messages() {
        let a = Decision::new(Outcome::Warn, Reason::VerdictWarn, "a".into());
        let b = Decision::new(Outcome::Deny, Reason::SignatureMissing, "b".into());
        let d = stricter(a, b);
        assert_eq!(
            (d.outcome, d.reason, d.message.as_str()),
            (Outcome::Deny, Reason::SignatureMissing, "b; a")
        );
        let long = Decision::new(Outcome::Deny, Reason::Unscanned, "é".repeat(2000));
        assert!(long.message.len() <= MAX_MESSAGE + 3);
    }
}
