//! The Scan status stays small whatever the image holds: etcd rejects requests over ~1.5 MiB
//! and trivy-operator's fat report objects hit that. Findings live in the object store.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use stella_crds::common::{Severity, Verdict};
use stella_crds::scan::v1alpha1::*;

#[test]
fn worst_case_scan_status_with_10000_findings_is_under_64_kib() {
    // 10,000 findings, spread over every severity.
    let findings = (0..10_000).map(|i| Severity::ALL[i % Severity::ALL.len()]);
    let counts = SeverityCounts::tally(findings);
    assert_eq!(counts.total(), 10_000);

    let digest = format!("sha256:{}", "a".repeat(64));
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_790_000_000).unwrap());
    // Every bounded list at its schema maximum, every bounded string at its maximum length.
    let artifacts = (0..16)
        .map(|i| ArtifactRef {
            kind: ArtifactKind::Sbom,
            format: "cyclonedx-protobuf".into(),
            view: Some(SbomView::Usage),
            key: format!("{i:02}{}", "k".repeat(510)),
            digest: digest.clone(),
            size: u64::MAX,
        })
        .collect();
    let conditions = (0..16)
        .map(|i| Condition {
            type_: format!("Condition{i}"),
            status: "False".into(),
            reason: "WorkerFailed".into(),
            message: "m".repeat(1024),
            last_transition_time: now.clone(),
            observed_generation: Some(i64::MAX),
        })
        .collect();
    let status = ScanStatus {
        phase: Some(ScanPhase::Completed),
        image_digest: Some(digest.clone()),
        verdict: Some(Verdict::Fail),
        counts,
        suppressed: u32::MAX,
        components: u32::MAX,
        artifacts,
        inputs: Some(ScanInputs {
            analyzer_version: Some("v".repeat(64)),
            feed_snapshot: Some(digest.clone()),
            vex_snapshot: Some(digest.clone()),
            policy_digest: Some(digest.clone()),
        }),
        last_delta: Some(ScanDelta {
            new_findings: u64::MAX,
            new_criticals: u64::MAX,
            new_high: u64::MAX,
            new_medium: u64::MAX,
            new_low: u64::MAX,
            removed_findings: u64::MAX,
            kev_hits: (0..10)
                .map(|i| format!("CVE-{i}-{}", "9".repeat(118)))
                .collect(),
            detected_at: "2".repeat(64),
            key: Some("k".repeat(512)),
        }),
        schedule_request: Some("s".repeat(160)),
        attestation: Some(AttestationStatus {
            state: AttestationState::Logged,
            reason: Some("r".repeat(64)),
            message: Some("m".repeat(1024)),
            key_id: Some("a".repeat(64)),
            envelopes: vec![
                stella_crds::scan::v1alpha1::AttestedEnvelope {
                    kind: "k".repeat(16),
                    key: "a".repeat(128),
                    digest: digest.clone(),
                    log_index: Some(i64::MAX),
                };
                8
            ],
        }),
        job_name: Some("j".repeat(63)),
        attempts: u32::MAX,
        start_time: Some(now.clone()),
        completion_time: Some(now),
        conditions,
        observed_generation: Some(i64::MAX),
    };
    let mut scan = Scan::new(
        "x".repeat(253).as_str(),
        ScanSpec {
            image: format!("registry.example.com/{}:tag", "r".repeat(990)),
            image_pull_secrets: vec![],
            platform: None,
            force: false,
            insecure_registry: false,
            views: vec![SbomView::Inventory, SbomView::Usage],
            formats: vec![SbomFormat::CyclonedxJson],
            policy_ref: None,
            attest: None,
            trust_build_time_sboms: None,
        },
    );
    scan.status = Some(status);
    let bytes = serde_json::to_vec(&scan).unwrap();
    assert!(
        bytes.len() < 64 * 1024,
        "worst-case Scan is {} bytes",
        bytes.len()
    );
}
