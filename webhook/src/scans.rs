//! `scan-and-deny`: the Scan requested for an unscanned image is the one the operator's
//! workload discovery keeps for that digest (`sha256-<hex>` in the operator's namespace,
//! `stella-ops.org/discovered: "true"`, built by `stella_crds::discovered` as discovery builds
//! it), so discovery adopts it and collects it when no Pod runs the image.

use kube::api::{Api, PostParams};
use stella_crds::discovered::Discovered;
pub use stella_crds::discovered::{ANNOTATION_PULL_SECRETS, LABEL_DISCOVERED, scan_name};
use stella_crds::scan::v1alpha1::Scan;

/// Why a Scan could not be created.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Create(#[from] kube::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who asked for the Scan.
pub const ANNOTATION_REQUESTED_BY: &str = "stella-ops.org/requested-by";

/// The Scan of `image` pinned to `digest`, as discovery would make it.
pub fn desired_scan(
    namespace: &str,
    image: &str,
    digest: &str,
    pull_secrets: &[(String, String)],
    policy_ref: Option<&str>,
    insecure: bool,
) -> Option<Scan> {
    let reference = stella_acquire::Reference::parse(image).ok()?;
    let pinned = format!("{}@{digest}", reference.repository_url());
    let mut scan = Discovered {
        namespace,
        image: &pinned,
        digest,
        workloads: &Default::default(),
        pull_secrets: &pull_secrets.iter().cloned().collect(),
        policy_ref,
        insecure_registry: insecure,
    }
    .scan()?;
    scan.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            ANNOTATION_REQUESTED_BY.to_string(),
            "stella-webhook".to_string(),
        );
    Some(scan)
}

/// Creates the Scan unless it exists; returns `namespace/name`.
pub async fn request(client: &kube::Client, scan: &Scan) -> Result<String> {
    let namespace = scan.metadata.namespace.clone().unwrap_or_default();
    let name = scan.metadata.name.clone().unwrap_or_default();
    let api: Api<Scan> = Api::namespaced(client.clone(), &namespace);
    match api.create(&PostParams::default(), scan).await {
        Ok(_) => Ok(format!("{namespace}/{name}")),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(format!("{namespace}/{name}")),
        Err(e) => Err(e.into()),
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
