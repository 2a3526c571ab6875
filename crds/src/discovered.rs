//! The Scans workload discovery keeps: one per image digest in the operator's namespace, named
//! `sha256-<hex>`, labelled and annotated with the workloads that run it and their pull
//! secrets. Discovery, the Scan controller and the admission webhook's `scan-and-deny` agree on
//! these names through this module (pure: no client).

use crate::scan::v1alpha1::{Scan, ScanSpec};
use std::collections::{BTreeMap, BTreeSet};

/// Label of Scans workload discovery manages.
pub const LABEL_DISCOVERED: &str = "stella-ops.org/discovered";
/// On discovered Scans: pull secrets of the pods that run the image, as `namespace/name`
/// pairs (honoured only on discovery's own Scans in the operator namespace).
pub const ANNOTATION_PULL_SECRETS: &str = "stella-ops.org/pull-secrets";
/// Every workload running the image: `namespace/Kind/name`, comma-separated, sorted.
pub const ANNOTATION_WORKLOADS: &str = "stella-ops.org/workloads";
/// When a discovered Scan's image was last seen running (set when it stops running).
pub const ANNOTATION_UNUSED_SINCE: &str = "stella-ops.org/unused-since";
/// Label prefix per workload: `workload.stella-ops.org/<kind>.<name>: <namespace>`.
pub const WORKLOAD_LABEL_PREFIX: &str = "workload.stella-ops.org/";
/// Pods or namespaces labelled `stella-ops.org/scan: "false"` are left out.
pub const OPT_OUT_LABEL: &str = "stella-ops.org/scan";
/// At most this many workload labels per Scan (the annotation lists them all).
pub const MAX_WORKLOAD_LABELS: usize = 32;

/// A workload: (namespace, kind, name).
pub type Workload = (String, String, String);

/// `sha256-<hex>`: the Scan of a digest.
pub fn scan_name(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| format!("sha256-{hex}"))
}

/// `workload.stella-ops.org/<kind>.<name>`, when that is a valid label key.
pub fn workload_label(kind: &str, name: &str) -> Option<String> {
    let part = format!("{}.{name}", kind.to_ascii_lowercase());
    let valid = part.len() <= 63
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && part
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && part
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    valid.then(|| format!("{WORKLOAD_LABEL_PREFIX}{part}"))
}

/// What a discovered Scan is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered<'a> {
    /// The operator's namespace, where discovered Scans live.
    pub namespace: &'a str,
    /// `repository@sha256:…`: the image as the node pulled it.
    pub image: &'a str,
    /// Its digest, which names the Scan.
    pub digest: &'a str,
    /// Who runs it.
    pub workloads: &'a BTreeSet<Workload>,
    /// Pull secrets of the pods that run it: (namespace, name).
    pub pull_secrets: &'a BTreeSet<(String, String)>,
    /// The Policy discovered Scans are judged by.
    pub policy_ref: Option<&'a str>,
    /// Whether the image's registry is reached over plain HTTP.
    pub insecure_registry: bool,
}

impl Discovered<'_> {
    /// The Scan (what discovery applies; other fields are the controller's or the user's).
    /// `None` when the digest cannot name a Scan.
    pub fn scan(&self) -> Option<Scan> {
        let name = scan_name(self.digest)?;
        let mut labels = BTreeMap::from([
            (LABEL_DISCOVERED.to_string(), "true".to_string()),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "stella-operator".to_string(),
            ),
        ]);
        for (namespace, kind, workload) in self.workloads.iter().take(MAX_WORKLOAD_LABELS) {
            if let Some(key) = workload_label(kind, workload)
                && namespace.len() <= 63
            {
                labels.insert(key, namespace.clone());
            }
        }
        let workloads: Vec<String> = self
            .workloads
            .iter()
            .map(|(ns, kind, name)| format!("{ns}/{kind}/{name}"))
            .collect();
        let mut annotations =
            BTreeMap::from([(ANNOTATION_WORKLOADS.to_string(), workloads.join(","))]);
        if !self.pull_secrets.is_empty() {
            let secrets: Vec<String> = self
                .pull_secrets
                .iter()
                .map(|(ns, n)| format!("{ns}/{n}"))
                .collect();
            annotations.insert(ANNOTATION_PULL_SECRETS.to_string(), secrets.join(","));
        }
        let mut spec: ScanSpec =
            serde_json::from_value(serde_json::json!({ "image": self.image })).ok()?;
        spec.policy_ref = self.policy_ref.map(str::to_string);
        spec.insecure_registry = self.insecure_registry;
        let mut scan = Scan::new(&name, spec);
        scan.metadata.namespace = Some(self.namespace.to_string());
        scan.metadata.labels = Some(labels);
        scan.metadata.annotations = Some(annotations);
        Some(scan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_valid_or_absent() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            scan_name(&digest),
            Some(format!("sha256-{}", "ab".repeat(32)))
        );
        assert!(scan_name("sha256:ABCD").is_none());
        assert!(scan_name(&format!("sha512:{}", "ab".repeat(32))).is_none());
        assert_eq!(
            workload_label("Deployment", "web").as_deref(),
            Some("workload.stella-ops.org/deployment.web")
        );
        assert!(workload_label("Deployment", &"x".repeat(64)).is_none());
        assert!(workload_label("Deployment", "web/").is_none());
    }
}
