//! `scan-and-deny`: the Scan requested for an unscanned image, named and labelled as the
//! operator's workload discovery names its own (`sha256-<hex>` in the operator's namespace,
//! `stella-ops.org/discovered: "true"`), so discovery adopts it and collects it when unused.
//! (`stella-controllers` depends on this crate, so its `desired_scan` cannot be reused here.)

use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use stella_crds::scan::v1alpha1::{Scan, ScanSpec};

/// Label discovery puts on the Scans it manages.
pub const LABEL_DISCOVERED: &str = "stella-ops.org/discovered";
/// Pull secrets (`namespace/name`, comma-separated) the Scan's worker may use.
pub const ANNOTATION_PULL_SECRETS: &str = "stella-ops.org/pull-secrets";
/// Who asked for the Scan.
pub const ANNOTATION_REQUESTED_BY: &str = "stella-ops.org/requested-by";

/// `sha256-<hex>`: the Scan of a digest.
pub fn scan_name(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| format!("sha256-{hex}"))
}

/// The Scan of `repository@digest` (`image` as written, its digest pinned).
pub fn desired_scan(
    namespace: &str,
    image: &str,
    digest: &str,
    pull_secrets: &[(String, String)],
    policy_ref: Option<&str>,
    insecure: bool,
) -> Option<Scan> {
    let name = scan_name(digest)?;
    let reference = stella_acquire::Reference::parse(image).ok()?;
    let pinned = format!("{}/{}@{digest}", reference.registry, reference.repository);
    let mut spec: ScanSpec = serde_json::from_value(serde_json::json!({ "image": pinned })).ok()?;
    spec.policy_ref = policy_ref.map(str::to_string);
    spec.insecure_registry = insecure;
    let mut scan = Scan::new(&name, spec);
    scan.metadata.namespace = Some(namespace.to_string());
    scan.metadata.labels = Some(BTreeMap::from([
        (LABEL_DISCOVERED.to_string(), "true".to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "stella-operator".to_string(),
        ),
    ]));
    let mut annotations = BTreeMap::from([(
        ANNOTATION_REQUESTED_BY.to_string(),
        "stella-webhook".to_string(),
    )]);
    if !pull_secrets.is_empty() {
        let secrets: Vec<String> = pull_secrets
            .iter()
            .map(|(ns, n)| format!("{ns}/{n}"))
            .collect();
        annotations.insert(ANNOTATION_PULL_SECRETS.to_string(), secrets.join(","));
    }
    scan.metadata.annotations = Some(annotations);
    Some(scan)
}

/// Creates the Scan unless it exists; returns `namespace/name`.
pub async fn request(client: &kube::Client, scan: &Scan) -> Result<String, String> {
    let namespace = scan.metadata.namespace.clone().unwrap_or_default();
    let name = scan.metadata.name.clone().unwrap_or_default();
    let api: Api<Scan> = Api::namespaced(client.clone(), &namespace);
    match api.create(&PostParams::default(), scan).await {
        Ok(_) => Ok(format!("{namespace}/{name}")),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(format!("{namespace}/{name}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_labelled_like_discovery() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let scan = desired_scan(
            "stella-system",
            "registry.example.com:5000/shop/web:1.4",
            &digest,
            &[("shop".into(), "pull".into())],
            Some("prod"),
            true,
        )
        .unwrap();
        assert_eq!(
            scan.metadata.name.as_deref(),
            Some(&*format!("sha256-{}", "ab".repeat(32)))
        );
        assert_eq!(
            scan.spec.image,
            format!("registry.example.com:5000/shop/web@{digest}")
        );
        assert_eq!(scan.spec.policy_ref.as_deref(), Some("prod"));
        assert!(scan.spec.insecure_registry);
        assert_eq!(
            scan.metadata.labels.as_ref().unwrap()[LABEL_DISCOVERED],
            "true"
        );
        assert_eq!(
            scan.metadata.annotations.as_ref().unwrap()[ANNOTATION_PULL_SECRETS],
            "shop/pull"
        );
        assert!(scan_name("sha256:ABCD").is_none());
        assert!(desired_scan("ns", "x:1", "md5:00", &[], None, false).is_none());
    }
}
