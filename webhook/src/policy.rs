//! The admission settings in force: every `Policy` with a `spec.admission` section, compiled
//! once per change (selectors, exemptions, signature keys) so a request only matches. Pure:
//! the Policies and their keys are handed in by the watch in `server`.

use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use stella_crds::policy::v1alpha1::{
    AdmissionConfig, AdmissionMode, Exemption, FailureMode, Policy,
};
use stella_model::selector::{InvalidSelector, LabelSelector};

/// A cosign public key, ready to verify with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// The key's name in the Policy.
    pub name: String,
    /// Uncompressed SEC1 P-256 point (65 bytes) of the PEM SPKI.
    pub point: Vec<u8>,
}

/// The keys of one Policy, loaded from their Secrets: cosign signature keys, attestation keys,
/// and why any could not be loaded.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    pub signatures: Vec<PublicKey>,
    pub attestations: Vec<stella_attest::PublicKey>,
    pub errors: Vec<String>,
}

/// One Policy's admission settings.
#[derive(Clone, Debug)]
pub struct Governing {
    pub policy: String,
    /// `sha256:…` from the Policy's status, when the controller has published it.
    pub policy_digest: Option<String>,
    pub config: AdmissionConfig,
    /// Keys of `config.signatures`, loaded from their Secrets; a key that could not be
    /// loaded is absent and reported in `key_errors`.
    pub keys: Vec<PublicKey>,
    pub key_errors: Vec<String>,
    /// Keys of `config.requireAttestation`, loaded from their Secrets (problems in
    /// `key_errors`).
    pub attestation_keys: Vec<stella_attest::PublicKey>,
}

impl Governing {
    /// Whether this policy selects a namespace with these labels.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.config
            .namespace_selector
            .as_ref()
            .is_none_or(|s| selector_matches(s, labels))
    }

    /// The first exemption in force for `image` in `namespace` at `now`.
    pub fn exemption(
        &self,
        namespace: &str,
        image: &str,
        now: DateTime<Utc>,
    ) -> Option<&Exemption> {
        self.config
            .exemptions
            .iter()
            .find(|e| exemption_applies(e, namespace, image, now))
    }

    pub fn enforce(&self) -> bool {
        self.config.mode == AdmissionMode::Enforce
    }

    pub fn fail_closed(&self) -> bool {
        self.config.on_error == FailureMode::FailClosed
    }
}

/// Every Policy with admission settings, by name.
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    pub policies: Vec<Arc<Governing>>,
}

impl PolicySet {
    /// Compiles the Policies; `keys` loads the signature and attestation keys of one (pure in
    /// tests).
    pub fn compile(policies: &[Policy], mut keys: impl FnMut(&Policy) -> Keys) -> PolicySet {
        let mut compiled: Vec<Arc<Governing>> = policies
            .iter()
            .filter_map(|p| {
                let config = p.spec.admission.clone()?;
                let loaded = if config.signatures.is_some() || config.require_attestation.is_some()
                {
                    keys(p)
                } else {
                    Keys::default()
                };
                Some(Arc::new(Governing {
                    policy: p.metadata.name.clone().unwrap_or_default(),
                    policy_digest: p.status.as_ref().and_then(|s| s.digest.clone()),
                    config,
                    keys: loaded.signatures,
                    key_errors: loaded.errors,
                    attestation_keys: loaded.attestations,
                }))
            })
            .collect();
        compiled.sort_by(|a, b| a.policy.cmp(&b.policy));
        PolicySet { policies: compiled }
    }

    /// The policies governing a namespace with these labels, by name.
    pub fn governing(&self, labels: &BTreeMap<String, String>) -> Vec<Arc<Governing>> {
        self.policies
            .iter()
            .filter(|g| g.selects(labels))
            .cloned()
            .collect()
    }
}

/// Label selector semantics (`matchLabels` and `matchExpressions`: `In`, `NotIn`, `Exists`,
/// `DoesNotExist`); an unknown operator matches nothing, as the API server refuses it.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector.matches(labels)
}

/// Parses a label selector in kubectl's equality syntax: comma-separated `key=value`,
/// `key==value`, `key!=value`, `key` (exists) and `!key` (does not exist).
pub fn parse_selector(text: &str) -> Result<LabelSelector, InvalidSelector> {
    LabelSelector::parse(text)
}

/// Namespace and image patterns: `*` any run, `?` one character (discovery's matcher).
pub use stella_model::glob;

/// `expires`: an RFC 3339 time, or a date meaning its start (00:00 UTC). `None` for a value
/// that names no time.
pub fn parse_expires(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Some(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|_| value.len() == 10)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Whether an exemption covers `image` in `namespace` at `now`: every given list must match
/// (namespaces and images), and it must not have expired. An unparsable expiry never exempts.
pub fn exemption_applies(e: &Exemption, namespace: &str, image: &str, now: DateTime<Utc>) -> bool {
    let in_force = match &e.expires {
        None => true,
        Some(expires) => parse_expires(expires).is_some_and(|t| now < t),
    };
    let namespace_ok = e.namespaces.is_empty() || e.namespaces.iter().any(|g| glob(g, namespace));
    let image_ok = e.images.is_empty() || e.images.iter().any(|g| glob(g, image));
    let something = !(e.namespaces.is_empty() && e.images.is_empty());
    in_force && namespace_ok && image_ok && something
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, admission: serde_json::Value) -> Policy {
        serde_json::from_value(json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy",
            "metadata": {"name": name},
            "spec": {"version": "1.0", "rules": [], "admission": admission}
        }))
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn namespace_selectors_pick_the_governing_policies() {
        let set = PolicySet::compile(
            &[
                policy(
                    "prod",
                    json!({"mode": "enforce", "namespaceSelector": {"matchLabels": {"env": "prod"}}}),
                ),
                policy("all", json!({"mode": "dry-run"})),
                policy(
                    "not-dev",
                    json!({"mode": "enforce", "namespaceSelector": {"matchExpressions": [
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "team", "operator": "Exists"}]}}),
                ),
            ],
            |_| Keys::default(),
        );
        let names = |l: &[(&str, &str)]| -> Vec<String> {
            set.governing(&labels(l))
                .iter()
                .map(|g| g.policy.clone())
                .collect()
        };
        assert_eq!(
            names(&[("env", "prod"), ("team", "a")]),
            ["all", "not-dev", "prod"]
        );
        assert_eq!(names(&[("env", "dev"), ("team", "a")]), ["all"]);
        assert_eq!(names(&[]), ["all"]);
        let defaults = &set.policies[0].config;
        assert_eq!(defaults.digest_cache_ttl_seconds, 300);
        assert_eq!(defaults.on_error, FailureMode::FailOpen);
    }

    #[test]
    fn exemptions_match_namespace_and_image_until_they_expire() {
        let e: Exemption = serde_json::from_value(json!({
            "namespaces": ["team-*"], "images": ["registry.example.com/base/*"],
            "expires": "2030-01-01", "reason": "migration"
        }))
        .unwrap();
        let before = parse_expires("2029-12-31T23:59:59Z").unwrap();
        let after = parse_expires("2030-01-01T00:00:00Z").unwrap();
        assert!(exemption_applies(
            &e,
            "team-a",
            "registry.example.com/base/debian:12",
            before
        ));
        assert!(!exemption_applies(
            &e,
            "team-a",
            "registry.example.com/base/debian:12",
            after
        ));
        assert!(!exemption_applies(
            &e,
            "prod",
            "registry.example.com/base/debian:12",
            before
        ));
        assert!(!exemption_applies(
            &e,
            "team-a",
            "docker.io/library/debian:12",
            before
        ));
        let broken: Exemption =
            serde_json::from_value(json!({"images": ["*"], "expires": "soon", "reason": "x"}))
                .unwrap();
        assert!(!exemption_applies(&broken, "a", "b", before));
        let empty: Exemption = serde_json::from_value(json!({"reason": "x"})).unwrap();
        assert!(!exemption_applies(&empty, "a", "b", before));
    }

    #[test]
    fn selectors_in_kubectl_syntax() {
        let s = parse_selector("stella-ops.org/enforce=true, tier!=dev,team,!legacy").unwrap();
        assert!(selector_matches(
            &s,
            &labels(&[("stella-ops.org/enforce", "true"), ("team", "a")])
        ));
        assert!(!selector_matches(
            &s,
            &labels(&[("stella-ops.org/enforce", "true")])
        ));
        assert!(!selector_matches(
            &s,
            &labels(&[
                ("stella-ops.org/enforce", "true"),
                ("team", "a"),
                ("tier", "dev")
            ])
        ));
        assert!(!selector_matches(
            &s,
            &labels(&[
                ("stella-ops.org/enforce", "true"),
                ("team", "a"),
                ("legacy", "")
            ])
        ));
        assert!(parse_selector("a b=c").is_err());
        assert!(selector_matches(&parse_selector("").unwrap(), &labels(&[])));
    }
}
