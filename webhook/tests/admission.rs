//! The API server itself allows, warns and denies Pods and Deployments through the webhook:
//! verdicts from the catalog (PASS / WARN / FAIL with findings and rules), unscanned images,
//! exemptions, dry-run, scan-and-deny, cosign signatures (signed / unsigned / wrong key), and
//! `requireAttestation` (a signed passing report / none).

use crate::Sign;
use crate::{Registry, cluster, key_pair, kubectl_create, namespace, unique};
use clap::Parser;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use ring::signature::KeyPair;
use serde_json::json;
use std::time::{Duration, Instant};
use stella_crds::policy::v1alpha1::Policy;
use stella_crds::scan::v1alpha1::Scan;
use stella_store::ResultRow;
use stella_webhook::cli::{Cli, Command};

const FEED: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const POLICY_DIGEST: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn row(
    digest: &str,
    image: &str,
    verdict: &str,
    counts: [i64; 4],
    report_key: Option<String>,
) -> ResultRow {
    ResultRow {
        image_digest: digest.into(),
        image_ref: image.into(),
        analyzer_version: "test".into(),
        feed_snapshot: FEED.into(),
        vex_snapshot: None,
        policy_digest: Some(POLICY_DIGEST.into()),
        verdict: Some(verdict.into()),
        critical: counts[0],
        high: counts[1],
        medium: counts[2],
        low: counts[3],
        none: 0,
        unknown: 0,
        suppressed: 0,
        components: 3,
        report_key,
        finished_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn policy(name: &str, selector_value: &str, admission: serde_json::Value) -> Policy {
    let mut admission = admission;
    admission["namespaceSelector"] =
        json!({"matchLabels": {"stella-ops.org/zastava-e2e": selector_value}});
    serde_json::from_value(json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy", "metadata": {"name": name},
        "spec": {"version": "1.0", "rules": [{"name": "block-critical", "severity": ["Critical"], "action": "block"}], "admission": admission}
    }))
    .unwrap()
}

fn pod(namespace: &str, name: &str, images: &[&str]) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": images.iter().enumerate().map(|(i, im)| json!({"name": format!("c{i}"), "image": im})).collect::<Vec<_>>()}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_allows_warns_and_denies_through_the_webhook() {
    stella_webhook::cli::init_tracing(false);
    let Some(cluster) = cluster() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let client = cluster.client().await.unwrap();
    stella_e2e::install_crds(&client).await;
    let id = unique();
    let host = registry.host.clone();

    // Images: verdicts PASS / WARN / FAIL in the catalog, one unscanned, one exempt.
    let pass = registry.push_motd("shop/pass", "1.0", "pass").await;
    let warn = registry.push_motd("shop/warn", "1.0", "warn").await;
    let fail = registry.push_motd("shop/fail", "1.0", "fail").await;
    registry
        .push_motd("shop/unscanned", "1.0", "unscanned")
        .await;
    registry.push_motd("shop/fresh", "1.0", "fresh").await;
    registry.push_motd("base/debian", "12", "exempt").await;
    let signed = registry.push_motd("shop/signed", "1.0", "signed").await;
    registry.push_motd("shop/unsigned", "1.0", "unsigned").await;
    let wrong = registry.push_motd("shop/wrong", "1.0", "wrong").await;
    let release = key_pair();
    registry.sign("shop/signed", &signed, &release).await;
    registry.sign("shop/wrong", &wrong, &key_pair()).await;
    let attested = registry.push_motd("shop/attested", "1.0", "attested").await;
    let unattested = registry
        .push_motd("shop/unattested", "1.0", "unattested")
        .await;

    let data = tempfile::tempdir().unwrap();
    let store = stella_store::Store::open_embedded(data.path())
        .await
        .unwrap();
    let report = json!({"schema": "stella-ops.org/policy-report@1", "policyDigest": POLICY_DIGEST, "verdict": "FAIL", "findings": [
        {"id": "CVE-2024-3094", "purl": "pkg:deb/debian/xz-utils@5.6.0", "outcome": "fail", "severity": "critical", "rule": "block-critical", "decidedBy": "rule"},
        {"id": "CVE-2023-0001", "purl": "pkg:deb/debian/zlib@1.2", "outcome": "pass", "severity": "low", "decidedBy": "default"}]});
    let key = format!("images/{fail}/report.json");
    store
        .put(&key, serde_json::to_vec(&report).unwrap())
        .await
        .unwrap();
    // The attested image: its report and the envelope the operator would have signed for it.
    let (attest_key, _) =
        stella_attest::SigningKey::generate(stella_attest::Algorithm::EcdsaP256).unwrap();
    let report_key = crate::store_signed_report(
        &store,
        &attested,
        &format!("{host}/shop/attested"),
        "PASS",
        &attest_key,
    )
    .await;
    for r in [
        row(
            &attested,
            "shop/attested:1.0",
            "PASS",
            [0, 0, 0, 0],
            Some(report_key.clone()),
        ),
        row(
            &unattested,
            "shop/unattested:1.0",
            "PASS",
            [0, 0, 0, 0],
            None,
        ),
        row(&pass, "shop/pass:1.0", "PASS", [0, 0, 0, 1], None),
        row(&warn, "shop/warn:1.0", "WARN", [0, 0, 2, 0], None),
        row(&fail, "shop/fail:1.0", "FAIL", [1, 0, 0, 1], Some(key)),
    ] {
        store.catalog.record_result(&r).await.unwrap();
    }

    // Namespaces: enforce, dry-run, signatures, scan-and-deny; and the webhook's own.
    let enforce = namespace(
        &client,
        &format!("zastava-enforce-{id}"),
        json!({"stella-ops.org/zastava-e2e": format!("enforce-{id}")}),
    )
    .await;
    let dry = namespace(
        &client,
        &format!("zastava-dry-{id}"),
        json!({"stella-ops.org/zastava-e2e": format!("dry-{id}")}),
    )
    .await;
    let signing = namespace(
        &client,
        &format!("zastava-sign-{id}"),
        json!({"stella-ops.org/zastava-e2e": format!("sign-{id}")}),
    )
    .await;
    let scanning = namespace(
        &client,
        &format!("zastava-scan-{id}"),
        json!({"stella-ops.org/zastava-e2e": format!("scan-{id}")}),
    )
    .await;
    let attesting = namespace(
        &client,
        &format!("zastava-attest-{id}"),
        json!({"stella-ops.org/zastava-e2e": format!("attest-{id}")}),
    )
    .await;
    let own = namespace(&client, &format!("zastava-system-{id}"), json!({})).await;
    let attest_pub: Secret = serde_json::from_value(json!({"metadata": {"name": "stella-attest"},
        "stringData": {"cosign.pub": stella_attest::Signer::public(&attest_key).to_pem()}}))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &own)
        .create(&PostParams::default(), &attest_pub)
        .await
        .unwrap();
    let pem = stella_webhook::signature::public_key_pem(release.public_key().as_ref());
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "cosign-release"}, "stringData": {"cosign.pub": pem}}),
    )
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &own)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let policies: Api<Policy> = Api::all(client.clone());
    let names = [
        format!("zastava-enforce-{id}"),
        format!("zastava-dry-{id}"),
        format!("zastava-sign-{id}"),
        format!("zastava-scan-{id}"),
        format!("zastava-attest-{id}"),
    ];
    for p in [
        policy(
            &names[0],
            &format!("enforce-{id}"),
            json!({"mode": "enforce", "unscanned": "deny",
            "exemptions": [{"images": [format!("{host}/base/*")], "expires": "2999-01-01", "reason": "base images are vetted upstream"},
                           {"images": ["*"], "expires": "2001-01-01", "reason": "expired long ago"}]}),
        ),
        policy(
            &names[1],
            &format!("dry-{id}"),
            json!({"mode": "dry-run", "unscanned": "warn"}),
        ),
        policy(
            &names[2],
            &format!("sign-{id}"),
            json!({"mode": "enforce", "unscanned": "allow",
            "signatures": {"mode": "enforce", "keys": [{"name": "release", "secretRef": {"name": "cosign-release", "key": "cosign.pub"}}]}}),
        ),
        policy(
            &names[3],
            &format!("scan-{id}"),
            json!({"mode": "enforce", "unscanned": "scan-and-deny"}),
        ),
        policy(
            &names[4],
            &format!("attest-{id}"),
            json!({"mode": "enforce", "unscanned": "allow",
            "requireAttestation": {"mode": "enforce", "maxAgeSeconds": 3600, "keys": [{"name": "stella", "secretRef": {"name": "stella-attest", "key": "cosign.pub"}}]}}),
        ),
    ] {
        policies.create(&PostParams::default(), &p).await.unwrap();
    }

    // The webhook, in enforce mode, with a certificate from a test CA.
    let ca = stella_e2e::pki::TestCa::new("zastava-test-ca").unwrap();
    let serving = ca.serving_cert("stella-webhook", &["localhost"]).unwrap();
    let tls = tempfile::tempdir().unwrap();
    std::fs::write(tls.path().join("tls.crt"), &serving.cert_pem).unwrap();
    std::fs::write(tls.path().join("tls.key"), &serving.key_pem).unwrap();
    let events = data.path().join("events.jsonl");
    let cli = Cli::try_parse_from([
        "stella-webhook".to_string(),
        "serve".into(),
        "--listen=127.0.0.1:0".into(),
        "--metrics-addr=127.0.0.1:0".into(),
        "--mode=enforce".into(),
        format!("--tls-dir={}", tls.path().display()),
        "--deadline=3s".into(),
        format!("--namespace={own}"),
        format!("--data-dir={}", data.path().display()),
        format!("--insecure-registry={host}"),
        format!("--blob-dir={}", data.path().join("blobs").display()),
        format!("--events={}", events.display()),
    ])
    .unwrap();
    let Command::Serve(args) = cli.command;
    let running = stella_webhook::cli::start(args, client.clone())
        .await
        .unwrap();
    let started = Instant::now();
    while !(running
        .state
        .ready
        .load(std::sync::atomic::Ordering::Relaxed)
        && running
            .state
            .policies
            .read()
            .unwrap()
            .policies
            .iter()
            .filter(|g| names.contains(&g.policy))
            .count()
            == 5
        && running
            .state
            .policies
            .read()
            .unwrap()
            .policies
            .iter()
            .any(|g| !g.keys.is_empty())
        && running
            .state
            .policies
            .read()
            .unwrap()
            .policies
            .iter()
            .any(|g| !g.attestation_keys.is_empty()))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the webhook did not load the policies: ready {:?}, {:?}",
            running.state.ready,
            running
                .state
                .policies
                .read()
                .unwrap()
                .policies
                .iter()
                .map(|g| (g.policy.clone(), g.keys.len(), g.key_errors.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Register it with the API server, for our namespaces only.
    let vwc_name = format!("zastava-e2e-{id}");
    let vwc: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": vwc_name},
        "webhooks": [{
            "name": "workloads.zastava.stella-ops.org",
            "admissionReviewVersions": ["v1"], "sideEffects": "NoneOnDryRun", "failurePolicy": "Fail", "timeoutSeconds": 5,
            "clientConfig": {"url": format!("https://{}/validate", running.admission_addr), "caBundle": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca.cert_pem())},
            "namespaceSelector": {"matchExpressions": [{"key": "stella-ops.org/zastava-e2e", "operator": "Exists"}]},
            "rules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods", "pods/ephemeralcontainers"], "scope": "Namespaced"},
                {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"], "scope": "Namespaced"},
                {"apiGroups": ["batch"], "apiVersions": ["v1", "v1beta1"], "operations": ["CREATE", "UPDATE"], "resources": ["jobs", "cronjobs"], "scope": "Namespaced"}
            ]
        }]
    }))
    .unwrap();
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    vwcs.create(&PostParams::default(), &vwc).await.unwrap();

    // FAIL in enforce: denied by the API server with the webhook's message. (Retried while
    // the API server picks up the new configuration.)
    let failing = format!("{host}/shop/fail:1.0");
    let started = Instant::now();
    let stderr = loop {
        let (ok, _, stderr) = kubectl_create(
            cluster,
            &pod(
                &enforce,
                &format!("fail-{}", started.elapsed().as_millis()),
                &[&failing],
            ),
        );
        if !ok {
            break stderr;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the API server never called the webhook"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        stderr
            .contains("admission webhook \"workloads.zastava.stella-ops.org\" denied the request"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("image {failing} ({}", &fail[..19])),
        "{stderr}"
    );
    assert!(stderr.contains("verdict FAIL (1 critical, 1 low): CVE-2024-3094 critical in pkg:deb/debian/xz-utils@5.6.0 (rule block-critical)"), "{stderr}");

    // PASS: allowed, silently.
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(&enforce, "pass", &[&format!("{host}/shop/pass:1.0")]),
    );
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("Warning"), "{stderr}");
    // WARN: allowed with a warning.
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(&enforce, "warn", &[&format!("{host}/shop/warn:1.0")]),
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("Warning: stella-ops: image") && stderr.contains("verdict WARN (2 medium)"),
        "{stderr}"
    );
    // Unscanned under unscanned=deny: denied.
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(
            &enforce,
            "unscanned",
            &[&format!("{host}/shop/unscanned:1.0")],
        ),
    );
    assert!(
        !ok && stderr.contains("has not been scanned (policy"),
        "{stderr}"
    );
    // Exempt by image pattern (the expired blanket exemption exempts nothing): allowed.
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(
            &enforce,
            "exempt",
            &[
                &format!("{host}/base/debian:12"),
                &format!("{host}/shop/pass:1.0"),
            ],
        ),
    );
    assert!(ok, "{stderr}");
    // A Deployment whose init container fails: denied too.
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": enforce},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "initContainers": [{"name": "migrate", "image": failing}],
            "containers": [{"name": "web", "image": format!("{host}/shop/pass:1.0")}]}}}});
    let (ok, _, stderr) = kubectl_create(cluster, &deployment);
    assert!(!ok && stderr.contains("fails policy"), "{stderr}");
    // Every other pod-template owner, as the API server sends it: denied with the message.
    // (Kubernetes 1.20 serves CronJobs as batch/v1beta1; 1.21+ as batch/v1, same shape.)
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {
        "containers": [{"name": "main", "image": failing}]}});
    let batch = json!({"metadata": {"labels": {"app": "x"}}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": "main", "image": failing}]}});
    let selector = json!({"matchLabels": {"app": "x"}});
    let cronjob_version = if client
        .apiserver_version()
        .await
        .unwrap()
        .minor
        .trim_end_matches('+')
        .parse::<u32>()
        .unwrap_or(0)
        >= 21
    {
        "batch/v1"
    } else {
        "batch/v1beta1"
    };
    let owners = [
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": enforce},
            "spec": {"serviceName": "db", "selector": selector, "template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": enforce},
            "spec": {"selector": selector, "template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": enforce},
            "spec": {"selector": selector, "template": template}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": enforce},
            "spec": {"template": batch}}),
        json!({"apiVersion": cronjob_version, "kind": "CronJob", "metadata": {"name": "nightly", "namespace": enforce},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": batch}}}}),
    ];
    for owner in &owners {
        let (ok, _, stderr) = kubectl_create(cluster, owner);
        assert!(
            !ok && stderr.contains("fails policy") && stderr.contains(&failing),
            "{}: {stderr}",
            owner["kind"]
        );
    }

    // Dry-run: FAIL is admitted with a warning saying it would have been denied.
    let (ok, _, stderr) = kubectl_create(cluster, &pod(&dry, "fail", &[&failing]));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("Warning: stella-ops: dry-run, would deny: image"),
        "{stderr}"
    );

    // Signatures: signed by the configured key → allowed; unsigned or signed by another key → denied.
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(&signing, "signed", &[&format!("{host}/shop/signed:1.0")]),
    );
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(
            &signing,
            "unsigned",
            &[&format!("{host}/shop/unsigned:1.0")],
        ),
    );
    assert!(
        !ok && stderr.contains("has no cosign signature") && stderr.contains("release"),
        "{stderr}"
    );
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(&signing, "wrong", &[&format!("{host}/shop/wrong:1.0")]),
    );
    assert!(!ok && stderr.contains("no signature verifies"), "{stderr}");

    // requireAttestation: a signed PASS report → allowed; a PASS verdict with nothing signed →
    // denied, saying what is missing.
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(
            &attesting,
            "attested",
            &[&format!("{host}/shop/attested:1.0")],
        ),
    );
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(
            &attesting,
            "unattested",
            &[&format!("{host}/shop/unattested:1.0")],
        ),
    );
    assert!(
        !ok && stderr.contains("has no signed report attestation"),
        "{stderr}"
    );

    // scan-and-deny: denied, and the Scan is requested as discovery names it.
    let (ok, _, stderr) = kubectl_create(
        cluster,
        &pod(
            &scanning,
            "unscanned",
            &[&format!("{host}/shop/unscanned:1.0")],
        ),
    );
    assert!(
        !ok && stderr.contains("requested, retry once it is Ready"),
        "{stderr}"
    );
    let scans: Api<Scan> = Api::namespaced(client.clone(), &own);
    let listed = scans.list(&Default::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1, "one Scan requested");
    let scan = &listed.items[0];
    assert!(
        scan.metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("sha256-")
    );
    assert_eq!(
        scan.metadata.labels.as_ref().unwrap()["stella-ops.org/discovered"],
        "true"
    );
    assert!(scan.spec.insecure_registry);
    assert_eq!(scan.spec.policy_ref.as_deref(), Some(names[3].as_str()));
    // A server-side dry run creates nothing more and is still answered.
    let mut child = cluster.kubectl();
    let out = child
        .args([
            "run",
            "dry",
            "-n",
            &scanning,
            "--dry-run=server",
            &format!("--image={host}/shop/fresh:1.0"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("requested, retry once it is Ready"),
        "{stderr}"
    );
    assert_eq!(
        scans.list(&Default::default()).await.unwrap().items.len(),
        1
    );

    // Every answer was counted and recorded.
    let metrics = reqwest::get(format!("http://{}/metrics", running.metrics_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Every webhook metric the shipped alerts and dashboard query is served.
    let missing = stella_e2e::monitoring::missing(&metrics, true);
    assert!(
        missing.is_empty(),
        "monitored, not served: {missing:?}\n{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "namespace=\"{enforce}\",decision=\"deny\",reason=\"verdict-fail\""
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "namespace=\"{signing}\",decision=\"deny\",reason=\"signature-missing\""
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "namespace=\"{enforce}\",decision=\"allow\",reason=\"pass\""
        )),
        "{metrics}"
    );
    let ready = reqwest::get(format!("http://{}/readyz", running.metrics_addr))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let started = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.iter().any(|e| e["namespace"] == scanning.as_str())
            || started.elapsed() > Duration::from_secs(5)
        {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let exempt = lines
        .iter()
        .find(|e| {
            e["namespace"] == enforce.as_str()
                && e["images"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["reason"] == "exempt")
        })
        .expect("the exempt pod's event");
    assert_eq!(exempt["kind"], "zastava.admission");
    assert_eq!(exempt["decision"], "allow");
    let image = exempt["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reason"] == "exempt")
        .unwrap();
    assert!(
        image.get("digest").is_none(),
        "an exemption decides without resolving: {image}"
    );
    assert!(
        image["message"]
            .as_str()
            .unwrap()
            .contains("base images are vetted upstream")
    );

    vwcs.delete(&vwc_name, &DeleteParams::default())
        .await
        .unwrap();
    for name in &names {
        let _ = policies.delete(name, &DeleteParams::default()).await;
    }
    running.stop().await;
}
