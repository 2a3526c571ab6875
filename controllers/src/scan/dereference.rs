//! Dereference: reads what a Scan refers to from the API (its pull secrets and, for
//! discovery's Scans, those of the pods that run the image; its Policy). API reads only; a
//! missing object is `None` here and a problem for [`super::validate`] to name.

use super::error::{self, Result};
use super::{ANNOTATION_PULL_SECRETS, LABEL_DISCOVERED};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use stella_crds::policy::v1alpha1::Policy;
use stella_crds::scan::v1alpha1::Scan;

/// A pull secret a Scan refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    pub namespace: String,
    pub name: String,
}

/// What dereference read, in the order the Scan names it.
#[derive(Clone, Debug, Default)]
pub struct References {
    /// Every pull secret referred to, and the Secret when it exists.
    pub secrets: Vec<(SecretRef, Option<Secret>)>,
    /// `spec.policyRef` and the Policy when it exists.
    pub policy: Option<(String, Option<Policy>)>,
    /// With `spec.attest.enabled`: `spec.attest.signingKeySecretRef` (in the Scan's
    /// namespace) and the Secret when it exists.
    pub signing_key: Option<(SecretRef, Option<Secret>)>,
}

/// Reads the Scan's references.
pub async fn dereference(
    client: &Client,
    scan: &Scan,
    worker_namespace: &str,
) -> Result<References> {
    let mut secrets = Vec::new();
    for reference in pull_secret_refs(scan, worker_namespace) {
        let api: Api<Secret> = Api::namespaced(client.clone(), &reference.namespace);
        let secret = api
            .get_opt(&reference.name)
            .await
            .map_err(error::dereference("read a pull secret"))?;
        secrets.push((reference, secret));
    }
    let policy = match &scan.spec.policy_ref {
        None => None,
        Some(name) => {
            let policies: Api<Policy> = Api::all(client.clone());
            let policy = policies
                .get_opt(name)
                .await
                .map_err(error::dereference("read the policy"))?;
            Some((name.clone(), policy))
        }
    };
    let signing_key = match scan.spec.attest.as_ref().filter(|a| a.enabled) {
        Some(attest) => match &attest.signing_key_secret_ref {
            Some(key) => {
                let reference = SecretRef {
                    namespace: scan.namespace().unwrap_or_default(),
                    name: key.name.clone(),
                };
                let api: Api<Secret> = Api::namespaced(client.clone(), &reference.namespace);
                let secret = api
                    .get_opt(&reference.name)
                    .await
                    .map_err(error::dereference("read the signing key Secret"))?;
                Some((reference, secret))
            }
            None => None,
        },
        None => None,
    };
    Ok(References {
        secrets,
        policy,
        signing_key,
    })
}

/// The pull secrets of a Scan: its own `imagePullSecrets` (in its namespace), and for
/// discovery's Scans (labelled, in the operator's namespace) those of the pods that run the
/// image, from the `namespace/name` pairs of [`ANNOTATION_PULL_SECRETS`].
pub fn pull_secret_refs(scan: &Scan, worker_namespace: &str) -> Vec<SecretRef> {
    let namespace = scan.namespace().unwrap_or_default();
    let mut refs: Vec<SecretRef> = scan
        .spec
        .image_pull_secrets
        .iter()
        .map(|s| SecretRef {
            namespace: namespace.clone(),
            name: s.name.clone(),
        })
        .collect();
    let discovered = namespace == worker_namespace
        && scan.labels().get(LABEL_DISCOVERED).map(String::as_str) == Some("true");
    if discovered && let Some(list) = scan.annotations().get(ANNOTATION_PULL_SECRETS) {
        refs.extend(list.split(',').filter_map(|pair| {
            let (namespace, name) = pair.trim().split_once('/')?;
            Some(SecretRef {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })
        }));
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(namespace: &str, discovered: bool) -> Scan {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {
                "name": "s", "namespace": namespace,
                "labels": if discovered { serde_json::json!({LABEL_DISCOVERED: "true"}) } else { serde_json::json!({}) },
                "annotations": {ANNOTATION_PULL_SECRETS: "shop/regcred, team-a/pull ,garbage"},
            },
            "spec": {"image": "registry.example/x:1", "imagePullSecrets": [{"name": "own"}]},
        }))
        .unwrap()
    }

    fn refs(list: &[SecretRef]) -> Vec<String> {
        list.iter()
            .map(|r| format!("{}/{}", r.namespace, r.name))
            .collect()
    }

    #[test]
    fn only_discoverys_own_scans_borrow_the_pods_pull_secrets() {
        assert_eq!(
            refs(&pull_secret_refs(
                &scan("stella-system", true),
                "stella-system"
            )),
            ["stella-system/own", "shop/regcred", "team-a/pull"]
        );
        // The label alone, outside the operator's namespace, reads nothing of others.
        assert_eq!(
            refs(&pull_secret_refs(&scan("shop", true), "stella-system")),
            ["shop/own"]
        );
        assert_eq!(
            refs(&pull_secret_refs(
                &scan("stella-system", false),
                "stella-system"
            )),
            ["stella-system/own"]
        );
    }
}
