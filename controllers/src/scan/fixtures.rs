//! Fixtures the Scan controller's unit tests share: a Scan, limits, what observe reads, the
//! worker settings.

use super::job::WorkerSettings;
use super::plan::{Inputs, Limits, Observed};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use std::time::Duration;
use stella_crds::scan::v1alpha1::{Scan, ScanStatus};
use stella_store::ArtifactRow;

pub(crate) const DIGEST: &str =
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(crate) const FEED: &str =
    "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

pub(crate) fn at(second: i64) -> Time {
    Time(Timestamp::from_second(second).unwrap())
}

pub(crate) fn limits() -> Limits {
    Limits {
        max_concurrent: 2,
        retry_base: Duration::from_secs(30),
        retry_max: Duration::from_secs(600),
        resync: Duration::from_secs(600),
    }
}

pub(crate) fn scan(status: Option<ScanStatus>) -> Scan {
    let mut scan: Scan = serde_json::from_value(serde_json::json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "generation": 1},
        "spec": {"image": "registry.example/shop/web:1.0"},
    }))
    .unwrap();
    scan.status = status;
    scan
}

pub(crate) fn observed() -> Observed {
    Observed {
        digest: DIGEST.into(),
        inputs: Inputs {
            analyzer_version: "a1".into(),
            feed_snapshot: FEED.into(),
            policy_digest: Some(FEED.into()),
        },
        job: None,
        run: None,
        latest: None,
        cached: None,
        artifacts: vec![ArtifactRow {
            key: format!("images/{DIGEST}/inventory.cdx.json"),
            image_digest: DIGEST.into(),
            kind: "sbom".into(),
            format: "cyclonedx-json".into(),
            view: Some("inventory".into()),
            digest: FEED.into(),
            size: 1234,
        }],
        running_jobs: 0,
        feed_untouched: false,
        cached_delta: None,
    }
}

pub(crate) fn worker_settings(namespace: &str) -> WorkerSettings {
    WorkerSettings {
        namespace: namespace.into(),
        image: "stella-ops/worker:0.1.0".into(),
        service_account: "stella-worker".into(),
        backoff_limit: 2,
        active_deadline_seconds: 1800,
        ttl_seconds_after_finished: 600,
        cpu_request: "500m".into(),
        cpu_limit: "2".into(),
        memory_request: "256Mi".into(),
        memory_limit: "1Gi".into(),
        storage_secret: Some("stella-storage".into()),
    }
}
