//! Validate: from a Scan and what it refers to, a [`ValidatedScan`] (the parsed image and
//! platform, the merged pull credentials, the policy as the worker will read it), or the
//! [`Invalid`] problem its status reports. Pure.

use super::dereference::References;
use super::job;
use std::time::Duration;
use stella_acquire::{Platform, Reference};
use stella_crds::scan::v1alpha1::Scan;

/// The platform scanned when the Scan names none.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// A Scan that can be scanned as written.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedScan {
    pub reference: Reference,
    pub platform: Platform,
    /// The referenced pull secrets merged into one `dockerconfigjson` (later ones win per
    /// registry), when the Scan has any.
    pub credentials: Option<Vec<u8>>,
    /// The referenced Policy, when the Scan names one.
    pub policy: Option<ValidPolicy>,
    /// `spec.insecureRegistry`: the registry speaks plain HTTP.
    pub insecure_registry: bool,
}

impl ValidatedScan {
    /// A registry client with the Scan's merged pull credentials.
    pub fn registry_client(&self) -> Result<stella_acquire::RegistryClient, Invalid> {
        let mut credentials = stella_acquire::Credentials::default();
        if let Some(bytes) = &self.credentials {
            credentials
                .merge(bytes, "imagePullSecrets")
                .map_err(|e| Invalid::unresolved("InvalidSecret", e.to_string()))?;
        }
        stella_acquire::RegistryClient::new(credentials, self.insecure_registry)
            .map_err(|e| Invalid::unresolved("Unreachable", e.to_string()))
    }
}

/// A Policy that loads, as the worker will read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidPolicy {
    /// The spec as JSON text (the worker's `STELLA_POLICY`).
    pub json: String,
    /// Its digest, which pins the result.
    pub digest: String,
}

/// When to look at an invalid Scan again without a change to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookAgain {
    /// Never: only an edit of the Scan can fix its own fields.
    OnChange,
    /// After a while: a referenced object may appear or be fixed without the Scan changing.
    After(Duration),
    /// After the retry backoff of the Scan's attempts (the registry may come back).
    Backoff,
}

/// How long a missing or unusable reference (a Secret, a Policy) waits before a look again.
pub const REFERENCE_LOOK_AGAIN: Duration = Duration::from_secs(60);
/// How long an invalid Policy waits (it is fixed by an edit, which takes longer).
pub const POLICY_LOOK_AGAIN: Duration = Duration::from_secs(300);

/// Why a Scan cannot be scanned (no Job): the condition reason and message, and when to look
/// again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
    pub look_again: LookAgain,
}

impl Invalid {
    /// A field of the Scan itself: waits for an edit.
    pub fn field(reason: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            reason,
            message: message.into(),
            look_again: LookAgain::OnChange,
        }
    }

    /// A referenced object that is missing or unusable: looked at again after a minute.
    pub fn reference(reason: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            reason,
            message: message.into(),
            look_again: LookAgain::After(REFERENCE_LOOK_AGAIN),
        }
    }

    /// A referenced Policy that does not load: looked at again after five minutes.
    pub fn policy(message: impl Into<String>) -> Invalid {
        Invalid {
            reason: "InvalidPolicy",
            message: message.into(),
            look_again: LookAgain::After(POLICY_LOOK_AGAIN),
        }
    }

    /// The registry could not resolve the image: looked at again after the retry backoff.
    pub fn unresolved(reason: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            reason,
            message: message.into(),
            look_again: LookAgain::Backoff,
        }
    }
}

/// Validates `scan` against what dereference read. Problems are reported in the order a user
/// reads the spec: image, platform, pull secrets, policy.
pub fn validate(scan: &Scan, references: &References) -> Result<ValidatedScan, Invalid> {
    let reference = Reference::parse(&scan.spec.image)
        .map_err(|e| Invalid::field("InvalidImage", e.to_string()))?;
    let platform: Platform = scan
        .spec
        .platform
        .as_deref()
        .unwrap_or(DEFAULT_PLATFORM)
        .parse()
        .map_err(|e| Invalid::field("InvalidSpec", format!("spec.platform: {e}")))?;

    let mut payloads = Vec::new();
    for (secret_ref, secret) in &references.secrets {
        let (ns, name) = (&secret_ref.namespace, &secret_ref.name);
        let Some(secret) = secret else {
            return Err(Invalid::reference(
                "SecretNotFound",
                format!("pull secret {ns}/{name} does not exist"),
            ));
        };
        let data = secret.data.as_ref();
        let Some(bytes) =
            data.and_then(|d| d.get(".dockerconfigjson").or_else(|| d.get(".dockercfg")))
        else {
            return Err(Invalid::reference(
                "InvalidSecret",
                format!("pull secret {ns}/{name} holds no .dockerconfigjson"),
            ));
        };
        payloads.push((format!("{ns}/{name}"), bytes.0.as_slice()));
    }
    let credentials = if payloads.is_empty() {
        None
    } else {
        let borrowed: Vec<(&str, &[u8])> = payloads.iter().map(|(o, b)| (o.as_str(), *b)).collect();
        Some(
            job::merge_docker_configs(&borrowed)
                .map_err(|e| Invalid::reference("InvalidSecret", e.to_string()))?,
        )
    };

    let policy = match &references.policy {
        None => None,
        Some((name, None)) => {
            return Err(Invalid::reference(
                "PolicyNotFound",
                format!("policy {name:?} does not exist"),
            ));
        }
        Some((name, Some(policy))) => {
            let json = serde_json::to_string(&policy.spec).unwrap_or_default();
            match stella_policy::load_str(&json) {
                Ok(loaded) => Some(ValidPolicy {
                    json,
                    digest: loaded.digest,
                }),
                Err(issues) => return Err(Invalid::policy(format!("policy {name:?}: {issues}"))),
            }
        }
    };

    Ok(ValidatedScan {
        reference,
        platform,
        credentials,
        policy,
        insecure_registry: scan.spec.insecure_registry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::dereference::SecretRef;
    use k8s_openapi::api::core::v1::Secret;
    use stella_crds::policy::v1alpha1::Policy;

    fn scan(spec: serde_json::Value) -> Scan {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn secret(data: serde_json::Value) -> Secret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "regcred", "namespace": "shop"},
            "stringData": {}, "data": data,
        }))
        .unwrap()
    }

    fn dockerconfig(host: &str, user: &str) -> serde_json::Value {
        use k8s_openapi::ByteString;
        let json =
            format!("{{\"auths\":{{\"{host}\":{{\"username\":\"{user}\",\"password\":\"p\"}}}}}}");
        serde_json::to_value(ByteString(json.into_bytes())).unwrap()
    }

    fn pull(name: &str, secret: Option<Secret>) -> (SecretRef, Option<Secret>) {
        (
            SecretRef {
                namespace: "shop".into(),
                name: name.into(),
            },
            secret,
        )
    }

    fn sample_policy() -> Policy {
        serde_saphyr::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../config/samples/policy.yaml"
            ))
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_valid_scan_carries_its_merged_credentials_and_the_policy_digest() {
        let s = scan(serde_json::json!({
            "image": "registry.example/shop/web:1.0", "platform": "linux/arm64",
            "insecureRegistry": true, "policyRef": "baseline",
        }));
        let refs = References {
            secrets: vec![
                pull(
                    "a",
                    Some(secret(
                        serde_json::json!({".dockerconfigjson": dockerconfig("r1", "first")}),
                    )),
                ),
                pull(
                    "b",
                    Some(secret(
                        serde_json::json!({".dockerconfigjson": dockerconfig("r1", "second")}),
                    )),
                ),
            ],
            policy: Some(("baseline".into(), Some(sample_policy()))),
            ..References::default()
        };
        let valid = validate(&s, &refs).unwrap();
        assert_eq!(
            valid.reference.repository_url(),
            "registry.example/shop/web"
        );
        assert_eq!(valid.platform, "linux/arm64".parse::<Platform>().unwrap());
        assert!(valid.insecure_registry);
        let merged: serde_json::Value =
            serde_json::from_slice(valid.credentials.as_ref().unwrap()).unwrap();
        assert_eq!(merged["auths"]["r1"]["username"], "second", "later wins");
        let policy = valid.policy.unwrap();
        assert_eq!(
            policy.json,
            serde_json::to_string(&sample_policy().spec).unwrap()
        );
        assert_eq!(
            policy.digest,
            stella_policy::load_str(&policy.json).unwrap().digest
        );
        // No references: no credentials, no policy, the default platform.
        let plain = validate(
            &scan(serde_json::json!({"image": "registry.example/shop/web:1.0"})),
            &References::default(),
        )
        .unwrap();
        assert_eq!(plain.credentials, None);
        assert_eq!(plain.policy, None);
        assert_eq!(
            plain.platform,
            DEFAULT_PLATFORM.parse::<Platform>().unwrap()
        );
    }

    #[test]
    fn each_problem_has_its_reason_and_its_look_again() {
        let minute = LookAgain::After(Duration::from_secs(60));
        let secrets = |list: Vec<(SecretRef, Option<Secret>)>| References {
            secrets: list,
            ..References::default()
        };
        let policy = |policy: Option<Policy>| References {
            policy: Some(("x".into(), policy)),
            ..References::default()
        };
        let mut duplicate_rules = sample_policy();
        let first = duplicate_rules.spec.rules[0].clone();
        duplicate_rules.spec.rules.push(first);
        let garbage = serde_json::json!({".dockerconfigjson": "bm90IGpzb24="});
        let everything = References {
            secrets: vec![pull("gone", None)],
            policy: Some(("x".into(), None)),
            ..References::default()
        };
        let good = "registry.example/shop/web:1.0";
        let bad = "UPPER CASE:/x";
        let cases = [
            (
                bad,
                None,
                References::default(),
                "InvalidImage",
                LookAgain::OnChange,
                "",
            ),
            (
                good,
                Some("linux/"),
                References::default(),
                "InvalidSpec",
                LookAgain::OnChange,
                "spec.platform: ",
            ),
            (
                good,
                None,
                secrets(vec![pull("gone", None)]),
                "SecretNotFound",
                minute,
                "pull secret shop/gone does not exist",
            ),
            (
                good,
                None,
                secrets(vec![pull("empty", Some(secret(serde_json::json!({}))))]),
                "InvalidSecret",
                minute,
                "pull secret shop/empty holds no .dockerconfigjson",
            ),
            (
                good,
                None,
                secrets(vec![pull("garbage", Some(secret(garbage)))]),
                "InvalidSecret",
                minute,
                "shop/garbage: not a docker config",
            ),
            (
                good,
                None,
                policy(None),
                "PolicyNotFound",
                minute,
                "policy \"x\" does not exist",
            ),
            (
                good,
                None,
                policy(Some(duplicate_rules)),
                "InvalidPolicy",
                LookAgain::After(Duration::from_secs(300)),
                "policy \"x\": ",
            ),
            // Read as a user reads the spec: the image first, then the secrets, the policy.
            (
                bad,
                None,
                everything.clone(),
                "InvalidImage",
                LookAgain::OnChange,
                "",
            ),
            (good, None, everything, "SecretNotFound", minute, ""),
        ];
        for (image, platform, references, reason, look_again, message) in cases {
            let s = scan(serde_json::json!({"image": image, "platform": platform}));
            let problem = validate(&s, &references).unwrap_err();
            assert_eq!(
                (problem.reason, problem.look_again),
                (reason, look_again),
                "{problem:?}"
            );
            assert!(problem.message.starts_with(message), "{problem:?}");
        }
    }
}
