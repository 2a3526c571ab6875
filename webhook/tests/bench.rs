//! Load benchmark on loopback (ignored by default; `make`-free:
//! `cargo test -p stella-webhook --release --test tests bench -- --ignored --nocapture`):
//! 1,000 AdmissionReviews/s against a warm cache, then the same with `requireAttestation` (a
//! signed report envelope verified per review) against it as the baseline; then the catalog
//! unreachable (a PostgreSQL
//! address that accepts and never answers) and a registry that never answers, where every
//! answer must still arrive within the deadline.

use crate::{cluster, namespace, unique};
use clap::Parser;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};
use stella_bench::webhook_load::{Plan, run};
use stella_crds::policy::v1alpha1::Policy;
use stella_webhook::cli::{Cli, Command, Running};

const DIGEST: &str = "sha256:abababababababababababababababababababababababababababababababab";

async fn webhook(
    client: &kube::Client,
    own: &str,
    extra: &[String],
    names: &[String],
) -> (Running, stella_e2e::pki::TestCa, tempfile::TempDir) {
    let ca = stella_e2e::pki::TestCa::new("bench-ca").unwrap();
    let serving = ca.serving_cert("stella-webhook", &["localhost"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), &serving.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &serving.key_pem).unwrap();
    let mut argv = vec![
        "stella-webhook".to_string(),
        "serve".into(),
        "--listen=127.0.0.1:0".into(),
        "--metrics-addr=127.0.0.1:0".into(),
        "--mode=enforce".into(),
        format!("--tls-dir={}", dir.path().display()),
        format!("--namespace={own}"),
        format!("--blob-dir={}", dir.path().join("blobs").display()),
        "--events=none".into(),
        "--verdict-cache-ttl=60s".into(),
    ];
    argv.extend(extra.iter().cloned());
    let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command;
    let running = stella_webhook::cli::start(args, client.clone())
        .await
        .unwrap();
    let started = Instant::now();
    while running
        .state
        .policies
        .read()
        .unwrap()
        .policies
        .iter()
        .filter(|g| names.contains(&g.policy))
        .count()
        < names.len()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "policies not loaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (running, ca, dir)
}

fn review(namespace: &str, image: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "bench", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": namespace, "operation": "CREATE",
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"initContainers": [{"name": "init", "image": image}], "containers": [{"name": "web", "image": image}, {"name": "sidecar", "image": image}]}}}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: cargo test -p stella-webhook --release --test tests bench -- --ignored --nocapture"]
async fn bench_admission_latency() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client().await.unwrap();
    stella_e2e::install_crds(&client).await;
    let id = unique();
    let ns = namespace(
        &client,
        &format!("zastava-bench-{id}"),
        json!({"stella-ops.org/zastava-bench": id}),
    )
    .await;
    let own = namespace(&client, &format!("zastava-bench-system-{id}"), json!({})).await;
    let name = format!("zastava-bench-{id}");
    let policy: Policy = serde_json::from_value(json!({"apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy", "metadata": {"name": name},
        "spec": {"version": "1.0", "rules": [], "admission": {"mode": "enforce", "unscanned": "warn", "onError": "fail-open",
            "namespaceSelector": {"matchLabels": {"stella-ops.org/zastava-bench": id}}}}}))
    .unwrap();
    let policies: Api<Policy> = Api::all(client.clone());
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    // The same image under a policy that requires a signed PASS report.
    let attest_ns = namespace(
        &client,
        &format!("zastava-bench-attest-{id}"),
        json!({"stella-ops.org/zastava-bench": format!("attest-{id}")}),
    )
    .await;
    let attest_name = format!("zastava-bench-attest-{id}");
    let attest_policy: Policy = serde_json::from_value(json!({"apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy", "metadata": {"name": attest_name},
        "spec": {"version": "1.0", "rules": [], "admission": {"mode": "enforce", "unscanned": "warn", "onError": "fail-open",
            "namespaceSelector": {"matchLabels": {"stella-ops.org/zastava-bench": format!("attest-{id}")}},
            "requireAttestation": {"mode": "enforce", "maxAgeSeconds": 86400,
                "keys": [{"name": "old", "secretRef": {"name": "stella-attest", "key": "old.pub"}},
                         {"name": "new", "secretRef": {"name": "stella-attest", "key": "cosign.pub"}}]}}}}))
    .unwrap();
    policies
        .create(&PostParams::default(), &attest_policy)
        .await
        .unwrap();
    let (key, _) =
        stella_attest::SigningKey::generate(stella_attest::Algorithm::EcdsaP256).unwrap();
    let (old, _) = stella_attest::SigningKey::generate(stella_attest::Algorithm::Ed25519).unwrap();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({"metadata": {"name": "stella-attest"},
        "stringData": {"cosign.pub": stella_attest::Signer::public(&key).to_pem(), "old.pub": stella_attest::Signer::public(&old).to_pem()}}))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &own)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let names = vec![name.clone(), attest_name.clone()];

    // 1. Warm cache: a digest-pinned image whose PASS verdict is in the catalog.
    let data = tempfile::tempdir().unwrap();
    let store = stella_store::Store::open_embedded(data.path())
        .await
        .unwrap();
    let report_key = crate::store_signed_report(
        &store,
        DIGEST,
        "registry.example.com/shop/web",
        "PASS",
        &key,
    )
    .await;
    store
        .catalog
        .record_result(&stella_store::ResultRow {
            image_digest: DIGEST.into(),
            image_ref: "registry.example.com/shop/web:1.0".into(),
            analyzer_version: "bench".into(),
            feed_snapshot: DIGEST.into(),
            vex_snapshot: None,
            policy_digest: Some(DIGEST.into()),
            verdict: Some("PASS".into()),
            critical: 0,
            high: 0,
            medium: 0,
            low: 0,
            none: 0,
            unknown: 0,
            suppressed: 0,
            components: 1,
            report_key: Some(report_key),
            finished_at: "2026-01-01T00:00:00Z".into(),
        })
        .await
        .unwrap();
    let (running, ca, _dir) = webhook(
        &client,
        &own,
        &[format!("--data-dir={}", data.path().display())],
        &names,
    )
    .await;
    let plan = |addr, body, rate, secs, connections| Plan {
        addr,
        ca_pem: ca.cert_pem().to_string(),
        server_name: "localhost".into(),
        body,
        rate,
        duration: Duration::from_secs(secs),
        connections,
    };
    let body = review(&ns, &format!("registry.example.com/shop/web@{DIGEST}"));
    run(plan(running.admission_addr, body.clone(), 100, 1, 4))
        .await
        .unwrap(); // warm up
    let warm = run(plan(running.admission_addr, body, 1000, 10, 16))
        .await
        .unwrap();
    println!(
        "warm cache, 1000/s for 10 s, 3 containers per pod: {}",
        warm.summary()
    );
    assert_eq!(warm.failed, 0);
    assert_eq!(warm.allowed, warm.sent);
    let attested = review(
        &attest_ns,
        &format!("registry.example.com/shop/web@{DIGEST}"),
    );
    run(plan(running.admission_addr, attested.clone(), 100, 1, 4))
        .await
        .unwrap(); // warm up
    let signed = run(plan(running.admission_addr, attested, 1000, 10, 16))
        .await
        .unwrap();
    println!(
        "warm cache with requireAttestation (two trusted keys), 1000/s for 10 s: {}",
        signed.summary()
    );
    let (p99, base) = (signed.quantile(0.99), warm.quantile(0.99));
    println!(
        "requireAttestation p99 {:.2} ms = {:.2}x the same reviews without it (target <= 5 ms: {})",
        p99.as_secs_f64() * 1e3,
        p99.as_secs_f64() / base.as_secs_f64().max(1e-9),
        if p99 <= Duration::from_millis(5) {
            "met"
        } else {
            "NOT met"
        }
    );
    assert_eq!(signed.failed, 0);
    assert_eq!(signed.allowed, signed.sent, "the signed PASS report admits");
    running.stop().await;

    // 2. The catalog unreachable: a PostgreSQL address that accepts and never answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let catalog = format!(
        "--catalog-url=postgres://stella@{}/stella",
        blackhole.local_addr().unwrap()
    );
    let (running, ca2, _dir2) =
        webhook(&client, &own, &[catalog, "--deadline=1s".into()], &names).await;
    let mut p = plan(
        running.admission_addr,
        review(&ns, &format!("registry.example.com/shop/web@{DIGEST}")),
        1000,
        5,
        16,
    );
    p.ca_pem = ca2.cert_pem().to_string();
    let unreachable = run(p).await.unwrap();
    println!(
        "catalog unreachable (fail-open), 1000/s for 5 s: {}",
        unreachable.summary()
    );
    assert_eq!(unreachable.failed, 0);
    assert_eq!(unreachable.allowed, unreachable.sent, "fail-open admits");
    assert!(
        unreachable.max() < Duration::from_secs(1),
        "every answer within the deadline"
    );

    // 3. A registry that never answers: tag resolution is cut off by the deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = silent.local_addr().unwrap().to_string();
    running.stop().await;
    let (running, ca3, _dir3) = webhook(
        &client,
        &own,
        &[
            format!("--insecure-registry={host}"),
            "--deadline=500ms".into(),
        ],
        &names,
    )
    .await;
    let mut p = plan(
        running.admission_addr,
        review(&ns, &format!("{host}/shop/web:1.0")),
        50,
        5,
        64,
    );
    p.ca_pem = ca3.cert_pem().to_string();
    let hung = run(p).await.unwrap();
    println!(
        "registry never answers, deadline 500 ms, 50/s for 5 s: {}",
        hung.summary()
    );
    assert_eq!(hung.failed, 0);
    assert_eq!(hung.allowed, hung.sent, "fail-open admits");
    assert!(
        hung.quantile(0.5) >= Duration::from_millis(500),
        "answered at the deadline"
    );
    assert!(
        hung.max() < Duration::from_millis(1500),
        "and not much later"
    );
    running.stop().await;
    drop((blackhole, silent));
    let _ = policies.delete(&name, &DeleteParams::default()).await;
    let _ = policies
        .delete(&attest_name, &DeleteParams::default())
        .await;
}
