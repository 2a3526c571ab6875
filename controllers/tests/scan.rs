//! Scan controller paths: new image → Job; Job succeeded → status; cached digest → no Job;
//! Job failed → Failed condition and retry; Job deleted mid-run; invalid references → a
//! condition and no requeue storm; concurrency counts only running Jobs; deletion → cleanup.

use crate::Harness;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use std::time::Duration;
use stella_crds::scan::v1alpha1::{Scan, ScanPhase};
use stella_store::{ArtifactRow, ResultRow, RunRow};

fn phase(scan: &Scan) -> Option<ScanPhase> {
    scan.status.as_ref().and_then(|s| s.phase)
}

fn condition<'a>(
    scan: &'a Scan,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    scan.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn job_name(scan: &Scan) -> String {
    scan.status
        .as_ref()
        .and_then(|s| s.job_name.clone())
        .expect("a job name")
}

/// What the worker writes when it succeeds: an SBOM artifact, the result and the run.
async fn worker_succeeds(
    h: &Harness,
    run_id: &str,
    digest: &str,
    critical: i64,
    policy: Option<(&str, &str)>,
) {
    let catalog = &h.ctx.store.catalog;
    let bytes = format!("{{\"bomFormat\":\"CycloneDX\",\"image\":\"{digest}\"}}").into_bytes();
    let key = stella_store::keys::image_artifact(digest, "inventory", "cdx.json");
    h.ctx.store.put(&key, bytes.clone()).await.unwrap();
    catalog
        .record_artifact(&ArtifactRow {
            key,
            image_digest: digest.into(),
            kind: "sbom".into(),
            format: "cyclonedx-json".into(),
            view: Some("inventory".into()),
            digest: crate::sha(&bytes),
            size: bytes.len() as i64,
        })
        .await
        .unwrap();
    let feed_snapshot = h.ctx.store.advisories.feed_snapshot().await.unwrap();
    catalog
        .record_result(&ResultRow {
            image_digest: digest.into(),
            image_ref: format!("{}/app@{digest}", h.registry.host),
            analyzer_version: stella_analyzers::ANALYZER_VERSION.into(),
            feed_snapshot,
            vex_snapshot: None,
            policy_digest: policy.map(|(digest, _)| digest.to_string()),
            verdict: policy.map(|(_, verdict)| verdict.to_string()),
            critical,
            high: 2,
            medium: 3,
            low: 4,
            none: 0,
            unknown: 1,
            suppressed: 5,
            components: 42,
            report_key: None,
            finished_at: "2026-11-28T08:00:00Z".into(),
        })
        .await
        .unwrap();
    catalog
        .record_run(&RunRow {
            run_id: run_id.into(),
            image_digest: Some(digest.into()),
            outcome: "succeeded".into(),
            reason: "Completed".into(),
            message: String::new(),
            finished_at: "2026-11-28T08:00:00Z".into(),
        })
        .await
        .unwrap();
}

/// What the Job controller would write.
async fn job_finished(h: &Harness, name: &str, condition: &str, reason: &str) {
    let status = serde_json::json!({"status": {
        "conditions": [{"type": condition, "status": "True", "reason": reason, "message": format!("test: {reason}")}],
        "succeeded": i32::from(condition == "Complete"),
        "failed": i32::from(condition == "Failed"),
    }});
    h.jobs()
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// A public key PEM for `trustBuildTimeSboms`: the controller passes it to the Job as written (the
/// worker parses it).
const TRUSTED_SBOM_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvBTWGrWzp9FGy0SqnmqEkSSZ8t/D\nOKgJKlSwYq5yDKMkdzW6CmVA9rq1LSgAu0Xl2rJJYYnkZsyKa0IUtDd3Sw==\n-----END PUBLIC KEY-----\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_image_gets_a_locked_down_job_then_the_result_fills_the_status() {
    let Some(h) = Harness::start("scan-new", 4).await else {
        return;
    };
    let digest = h.registry.push_motd("shop/web", "1.0", "new image").await;
    // A pull secret, mounted into the Job (copied into a Secret the Job owns), never inlined.
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "regcred", "namespace": h.namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": format!("{{\"auths\":{{\"{}\":{{\"username\":\"u\",\"password\":\"p\"}}}}}}", h.registry.host)},
    }))
    .unwrap();
    Api::<Secret>::namespaced(h.client.clone(), &h.namespace)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // A policy: passed to the worker, its digest pins the result.
    let mut policy: stella_crds::policy::v1alpha1::Policy = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/samples/policy.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let policy_name = format!("{}-baseline", h.namespace);
    policy.metadata.name = Some(policy_name.clone());
    let policy = Api::<stella_crds::policy::v1alpha1::Policy>::all(h.client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    let policy_json = serde_json::to_string(&policy.spec).unwrap();
    let policy_digest = stella_policy::load_str(&policy_json).unwrap().digest;
    h.scan(
        "web",
        serde_json::json!({"image": format!("{}/shop/web:1.0", h.registry.host), "insecureRegistry": true, "imagePullSecrets": [{"name": "regcred"}], "policyRef": policy_name,
                           "trustBuildTimeSboms": {"publicKeys": [TRUSTED_SBOM_KEY]}}),
    )
    .await;
    let scan = h
        .wait("web", "Scanning", |s| phase(s) == Some(ScanPhase::Scanning))
        .await;
    let status = scan.status.clone().unwrap();
    assert_eq!(
        status.image_digest.as_deref(),
        Some(digest.as_str()),
        "the tag resolved at the registry"
    );
    assert_eq!(status.attempts, 1);
    assert!(
        scan.finalizers()
            .contains(&"stella-ops.org/cleanup".to_string())
    );
    let name = job_name(&scan);
    let job = h.jobs().get(&name).await.unwrap();

    // The Job: owned by the Scan, bounded, locked down, pinned to the digest.
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Scan", "web"));
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(2));
    assert_eq!(spec.active_deadline_seconds, Some(1800));
    // (ttlSecondsAfterFinished is alpha, off, on a 1.20 server: dropped there; the unit test
    // of the builder pins it.)
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("stella-worker"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
    let container = &pod.containers[0];
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let resources = container.resources.as_ref().unwrap();
    assert!(resources.requests.as_ref().unwrap().contains_key("memory"));
    assert!(resources.limits.as_ref().unwrap().contains_key("cpu"));
    let args = container.args.as_ref().unwrap();
    let pinned = format!("{}/shop/web@{digest}", h.registry.host);
    assert!(
        args.windows(2).any(|w| w == ["--image", pinned.as_str()]),
        "{args:?}"
    );
    assert!(args.windows(2).any(|w| w == ["--run-id", name.as_str()]));
    assert!(args.contains(&"--insecure-registry".to_string()));
    assert!(args.contains(&"/var/run/secrets/stella/registry/.dockerconfigjson".to_string()));
    let env = container.env.as_ref().unwrap();
    assert!(
        env.iter()
            .any(|e| e.name == "STELLA_POLICY" && e.value.as_deref() == Some(policy_json.as_str()))
    );
    // The trusted build-time SBOM keys: public, in the environment.
    assert!(
        env.iter().any(|e| e.name == "STELLA_TRUSTED_SBOM_KEYS"
            && e.value.as_deref() == Some(TRUSTED_SBOM_KEY))
    );
    let rendered = serde_json::to_string(&job).unwrap();
    assert!(
        !rendered.contains("\"password\""),
        "credentials are mounted, not inlined"
    );
    let copied = Api::<Secret>::namespaced(h.client.clone(), &h.namespace)
        .get(&format!("{name}-registry"))
        .await
        .unwrap();
    assert_eq!(
        copied.metadata.owner_references.as_ref().unwrap()[0].kind,
        "Job"
    );
    let merged: serde_json::Value =
        serde_json::from_slice(&copied.data.as_ref().unwrap()[".dockerconfigjson"].0).unwrap();
    assert_eq!(merged["auths"][&h.registry.host]["username"], "u");

    // The worker reports, the Job completes: the status carries the result.
    worker_succeeds(&h, &name, &digest, 1, Some((&policy_digest, "FAIL"))).await;
    job_finished(&h, &name, "Complete", "Completed").await;
    let scan = h
        .wait("web", "Completed", |s| {
            phase(s) == Some(ScanPhase::Completed)
        })
        .await;
    let status = scan.status.clone().unwrap();
    assert_eq!(status.counts.critical, 1);
    assert_eq!(status.counts.high, 2);
    assert_eq!(status.counts.unknown, 1);
    assert_eq!(status.suppressed, 5);
    assert_eq!(status.components, 42);
    assert_eq!(serde_json::to_value(status.verdict).unwrap(), "FAIL");
    assert_eq!(status.observed_generation, scan.metadata.generation);
    assert_eq!(status.artifacts.len(), 1);
    assert_eq!(
        status.artifacts[0].key,
        format!("images/{digest}/inventory.cdx.json")
    );
    let inputs = status.inputs.as_ref().unwrap();
    assert_eq!(
        inputs.analyzer_version.as_deref(),
        Some(stella_analyzers::ANALYZER_VERSION)
    );
    assert_eq!(
        inputs.policy_digest.as_deref(),
        Some(policy_digest.as_str())
    );
    let ready = condition(&scan, "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "ScanSucceeded")
    );
    assert_eq!(condition(&scan, "Scanned").unwrap().status, "True");
    assert_eq!(condition(&scan, "Failed").unwrap().status, "False");

    // Events for the transitions.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(h.client.clone(), &h.namespace);
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.contains(&"ScanStarted".to_string()), "{reasons:?}");
    assert!(reasons.contains(&"PolicyFailed".to_string()), "{reasons:?}");

    // The same digest under another name: reused from the catalog, no second Job.
    h.scan(
        "web-again",
        serde_json::json!({"image": format!("{}/shop/web@{digest}", h.registry.host), "insecureRegistry": true, "policyRef": policy_name}),
    )
    .await;
    let again = h
        .wait("web-again", "Completed", |s| {
            phase(s) == Some(ScanPhase::Completed)
        })
        .await;
    assert_eq!(condition(&again, "Ready").unwrap().reason, "ResultReused");
    assert_eq!(again.status.as_ref().unwrap().counts.critical, 1);
    assert_eq!(
        h.job_names().await,
        std::slice::from_ref(&name),
        "no Job for a cached digest"
    );

    // Deleting the Scan: the finalizer removes its Job and Secret, then lets go.
    h.scans().delete("web", &Default::default()).await.unwrap();
    let started = std::time::Instant::now();
    while h.scans().get_opt("web").await.unwrap().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the Scan was not released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        h.jobs().get_opt(&name).await.unwrap().is_none(),
        "the Job went with the Scan"
    );
    assert!(
        Api::<Secret>::namespaced(h.client.clone(), &h.namespace)
            .get_opt(&format!("{name}-registry"))
            .await
            .unwrap()
            .is_none()
    );
    // Retention keeps the image: web-again still refers to the digest.
    assert!(
        h.ctx
            .store
            .catalog
            .latest_result(&digest)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_vanished_job_says_why_and_retries_with_backoff() {
    let Some(h) = Harness::start("scan-fail", 4).await else {
        return;
    };
    h.registry
        .push_motd("shop/api", "2.0", "failing image")
        .await;
    h.scan("api", serde_json::json!({"image": format!("{}/shop/api:2.0", h.registry.host), "insecureRegistry": true})).await;
    let scan = h
        .wait("api", "Scanning", |s| phase(s) == Some(ScanPhase::Scanning))
        .await;
    let first = job_name(&scan);

    // The worker could not reach the registry and said so; the Job gave up.
    h.ctx
        .store
        .catalog
        .record_run(&RunRow {
            run_id: first.clone(),
            image_digest: None,
            outcome: "failed".into(),
            reason: "Unreachable".into(),
            message: "registry 10.0.0.1:5000: connection refused".into(),
            finished_at: "2026-11-28T08:00:00Z".into(),
        })
        .await
        .unwrap();
    job_finished(&h, &first, "Failed", "BackoffLimitExceeded").await;
    let failed = h
        .wait("api", "Failed", |s| phase(s) == Some(ScanPhase::Failed))
        .await;
    let cond = condition(&failed, "Failed").unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("True", "Unreachable")
    );
    assert!(
        cond.message.contains("connection refused"),
        "{}",
        cond.message
    );
    assert!(cond.message.contains("retrying in 2s"), "{}", cond.message);
    assert_eq!(condition(&failed, "Ready").unwrap().status, "False");

    // After the backoff: attempt 2, a new Job.
    let retried = h
        .wait("api", "a second attempt", |s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.attempts == 2 && st.phase == Some(ScanPhase::Scanning))
        })
        .await;
    let second = job_name(&retried);
    assert_ne!(first, second);

    // The second Job is deleted mid-run without a report: JobDeleted, then attempt 3.
    h.jobs().delete(&second, &Default::default()).await.unwrap();
    let vanished = h
        .wait("api", "JobDeleted", |s| {
            condition(s, "Failed").is_some_and(|c| c.reason == "JobDeleted")
        })
        .await;
    assert_eq!(phase(&vanished), Some(ScanPhase::Failed));
    let third = h
        .wait("api", "a third attempt", |s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.attempts == 3 && st.phase == Some(ScanPhase::Scanning))
        })
        .await;
    assert!(condition(&third, "Ready").is_some_and(|c| c.reason == "Scanning"));
    // Never stuck: the failure classes of the Job itself are reasons too.
    let third_job = job_name(&third);
    job_finished(&h, &third_job, "Failed", "DeadlineExceeded").await;
    h.wait("api", "DeadlineExceeded", |s| {
        condition(s, "Failed").is_some_and(|c| c.reason == "DeadlineExceeded")
    })
    .await;

    // Attempt 4: the worker cannot reach the catalog; its pod's termination message (what
    // the kubelet reports from /dev/termination-log) carries the reason instead.
    let fourth = h
        .wait("api", "a fourth attempt", |s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.attempts == 4 && st.phase == Some(ScanPhase::Scanning))
        })
        .await;
    let fourth_job = job_name(&fourth);
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(h.client.clone(), &h.namespace);
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{fourth_job}-x1"), "labels": {"job-name": fourth_job}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "stella-ops/worker:test"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let terminated = serde_json::json!({"status": {"phase": "Failed", "containerStatuses": [{
        "name": "worker", "image": "stella-ops/worker:test", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-11-28T08:00:00Z",
            "message": "{\"outcome\":\"failed\",\"reason\":\"StorageUnavailable\",\"message\":\"catalog postgres://stella@db:5432/stella: connection refused\"}"}},
    }]}});
    pods.patch_status(
        &format!("{fourth_job}-x1"),
        &PatchParams::default(),
        &Patch::Merge(&terminated),
    )
    .await
    .unwrap();
    job_finished(&h, &fourth_job, "Failed", "BackoffLimitExceeded").await;
    let storage = h
        .wait("api", "StorageUnavailable", |s| {
            condition(s, "Failed").is_some_and(|c| c.reason == "StorageUnavailable")
        })
        .await;
    assert!(
        condition(&storage, "Failed")
            .unwrap()
            .message
            .contains("connection refused")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_references_set_a_condition_without_a_requeue_storm() {
    let Some(h) = Harness::start("scan-invalid", 4).await else {
        return;
    };
    h.registry.push_motd("shop/db", "3.0", "db").await;
    h.scan(
        "no-policy",
        serde_json::json!({"image": format!("{}/shop/db:3.0", h.registry.host), "insecureRegistry": true, "policyRef": "does-not-exist"}),
    )
    .await;
    h.scan(
        "no-secret",
        serde_json::json!({"image": format!("{}/shop/db:3.0", h.registry.host), "insecureRegistry": true, "imagePullSecrets": [{"name": "missing"}]}),
    )
    .await;
    h.scan(
        "no-image",
        serde_json::json!({"image": format!("{}/shop/nothing:1", h.registry.host), "insecureRegistry": true}),
    )
    .await;
    for (name, reason) in [
        ("no-policy", "PolicyNotFound"),
        ("no-secret", "SecretNotFound"),
        ("no-image", "ImageNotFound"),
    ] {
        let scan = h
            .wait(name, reason, |s| {
                condition(s, "Failed").is_some_and(|c| c.status == "True")
            })
            .await;
        let cond = condition(&scan, "Failed").unwrap();
        assert_eq!(cond.reason, reason, "{}", cond.message);
        assert_eq!(condition(&scan, "Ready").unwrap().status, "False");
    }
    assert!(h.job_names().await.is_empty(), "no Job for an invalid Scan");
    // No storm: a few seconds later the reconcile count has barely moved.
    let runs = |text: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with("stella_reconcile_runs_total{controller=\"scan\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = runs(&h.ctx.metrics.render());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = runs(&h.ctx.metrics.render());
    assert!(after - before <= 6, "{before} → {after} reconciles in 4 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_counts_only_running_jobs() {
    let Some(h) = Harness::start("scan-limit", 1).await else {
        return;
    };
    let a = h.registry.push_motd("team/a", "1", "image a").await;
    h.registry.push_motd("team/b", "1", "image b").await;
    h.scan("a", serde_json::json!({"image": format!("{}/team/a:1", h.registry.host), "insecureRegistry": true})).await;
    let running = h
        .wait("a", "Scanning", |s| phase(s) == Some(ScanPhase::Scanning))
        .await;
    h.scan("b", serde_json::json!({"image": format!("{}/team/b:1", h.registry.host), "insecureRegistry": true})).await;
    let queued = h
        .wait("b", "WaitingForSlot", |s| {
            condition(s, "Ready").is_some_and(|c| c.reason == "WaitingForSlot")
        })
        .await;
    assert_eq!(phase(&queued), Some(ScanPhase::Pending));
    assert_eq!(h.job_names().await.len(), 1);
    assert!(
        h.ctx
            .metrics
            .render()
            .contains("stella_scan_queue_depth 1\n")
    );

    // The first Job finishes (and is kept, as ttlSecondsAfterFinished does): it holds no slot.
    let first = job_name(&running);
    worker_succeeds(&h, &first, &a, 0, None).await;
    job_finished(&h, &first, "Complete", "Completed").await;
    h.wait("b", "Scanning", |s| phase(s) == Some(ScanPhase::Scanning))
        .await;
    assert!(
        h.jobs().get_opt(&first).await.unwrap().is_some(),
        "the finished Job still exists"
    );
    assert_eq!(h.job_names().await.len(), 2);
    let job: Job = h.jobs().get(&first).await.unwrap();
    assert!(
        job.status
            .unwrap()
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Complete")
    );
}
