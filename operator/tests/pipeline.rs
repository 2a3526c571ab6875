//! The whole operator path with real parts: `stella-operator run` (leader election, Scan
//! controller, REST API) against the real API server, a real registry, PostgreSQL and an S3
//! server (moto); the worker Job is run as the kubelet would run it — the real `stella-worker`
//! binary with the Job's arguments and environment — then marked complete, as the Job
//! controller would. The Scan ends Completed with the worker's counts and verdict, and its
//! SBOM is one API call away.

#[path = "../../workers/store/tests/moto.rs"]
mod moto;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use stella_crds::scan::v1alpha1::{Scan, ScanPhase};
use stella_crds::schedule::v1alpha1::{RUN_NOW, RunState, RunTrigger, Schedule, ScheduleStatus};
use stella_e2e::services::{PgDatabase, Registry, skip};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary of the workspace built beside this test's (`target/<profile>/<name>`), built
/// with cargo when a partial build left it out.
fn workspace_binary(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_stella-operator"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = dir.join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "stella-cli", "--bins"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building stella-cli failed");
    }
    path
}

const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";
const DPKG_STATUS: &str = "Package: dash\nStatus: install ok installed\nPriority: required\nSection: shells\nInstalled-Size: 212\nMaintainer: Debian Shell Maintainers <pkg-debian-shells@lists.debian.org>\nArchitecture: amd64\nVersion: 0.5.12-2\nDescription: POSIX-compliant shell\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_runs_through_operator_worker_catalog_and_api() {
    let cluster = match stella_e2e::TestCluster::shared() {
        Ok(c) => c,
        Err(e) => return skip(&format!("no API server: {e}")),
    };
    let Some(registry) = Registry::start() else {
        return;
    };
    let Some(db) = PgDatabase::create("pipeline") else {
        return;
    };
    let Some(s3) = moto::Moto::start("stella") else {
        return;
    };
    let client = cluster.client().await.unwrap();
    stella_e2e::install_crds(&client).await;
    let ns = format!("pipeline-{}", std::process::id());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();

    // The image: Debian 12 with dash 0.5.12-2; an advisory fixed in 0.5.12-3, imported into
    // the PostgreSQL catalog with the real CLI.
    let digest = registry
        .push(
            "shop/shell",
            "1.0",
            &[
                ("etc/os-release", OS_RELEASE.as_bytes()),
                ("var/lib/dpkg/status", DPKG_STATUS.as_bytes()),
            ],
        )
        .await;
    let feeds = tempfile::tempdir().unwrap();
    std::fs::write(
        feeds.path().join("osv.json"),
        serde_json::json!({"id": "OSV-2099-7", "modified": "2099-01-01T00:00:00Z",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.5.12-3"}]}]}]})
        .to_string(),
    )
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    // `stella feeds import` of the feeds directory into the PostgreSQL catalog, as a user would.
    let import_feeds = || {
        let import = Command::new(workspace_binary("stella"))
            .args(["feeds", "import"])
            .arg(feeds.path())
            .args(["--catalog-url", &db.url, "--data-dir"])
            .arg(scratch.path())
            .output()
            .unwrap();
        assert!(
            import.status.success(),
            "{}",
            String::from_utf8_lossy(&import.stderr)
        );
    };
    import_feeds();

    // Storage settings as the install keeps them: one Secret, environment for the operator
    // and (through envFrom) for every worker Job.
    let storage = BTreeMap::from([
        ("STELLA_CATALOG_URL".to_string(), db.url.clone()),
        (
            "STELLA_OBJECT_STORE".to_string(),
            s3.url("stella", "artifacts"),
        ),
        ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "test".to_string()),
    ]);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("stella-storage".into()),
            ..Default::default()
        },
        string_data: Some(storage.clone()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // A policy blocking critical findings.
    let mut policy: stella_crds::policy::v1alpha1::Policy = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/samples/policy.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let policy_name = format!("{ns}-baseline");
    policy.metadata.name = Some(policy_name.clone());
    Api::<stella_crds::policy::v1alpha1::Policy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = scratch.path().join("operator.log");
    // The operator's own key on a PKCS#11 token (SoftHSM2 as the HSM), for Scans that name
    // no key Secret.
    let hsm = stella_e2e::services::SoftHsm::start("operator", "4321", "signer");
    let mut operator = Command::new(env!("CARGO_BIN_EXE_stella-operator"));
    if let Some(hsm) = &hsm {
        operator.env("SOFTHSM2_CONF", &hsm.conf).env(
            "STELLA_SIGNING_KEY_URI",
            hsm.uri("operator", "signer", "4321"),
        );
    }
    let _operator = Process(
        operator
            .args([
                "run",
                "--lease-duration",
                "5",
                "--identity",
                "op-0",
                "--no-discovery",
                "--feed-poll-seconds",
                "1",
            ])
            .args(["--namespace", &ns, "--watch-namespace", &ns])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(["--worker-image", "stella-ops/worker:test", "--data-dir"])
            .arg(scratch.path().join("operator"))
            .envs(&storage)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("stderr")).unwrap())
            .spawn()
            .unwrap(),
    );

    // The signing key, as `cosign generate-key-pair k8s://…` leaves it: an encrypted key and
    // its password in a Secret of the Scan's namespace, which only the operator reads.
    let (key, der) =
        stella_attest::SigningKey::generate(stella_attest::Algorithm::EcdsaP256).unwrap();
    let signing = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("signing".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            (
                "cosign.key".to_string(),
                stella_attest::cosign::encrypt(&der, b"hunter2").unwrap(),
            ),
            ("cosign.password".to_string(), "hunter2".to_string()),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &signing)
        .await
        .unwrap();

    // A Rekor v2 log on loopback (the test log: no Rekor server runs here), its key pinned.
    let tlog = stella_e2e::tlog::TestLog::start("stella-test.log", 3);
    let scans: Api<Scan> = Api::namespaced(client.clone(), &ns);
    let scan: Scan = serde_json::from_value(serde_json::json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
        "metadata": {"name": "shell", "namespace": ns},
        "spec": {"image": format!("{}/shop/shell:1.0", registry.host), "insecureRegistry": true, "policyRef": policy_name,
                 "attest": {"enabled": true, "attach": true, "signingKeySecretRef": {"name": "signing", "key": "cosign.key"},
                            "rekorUrl": tlog.url, "rekorPublicKey": tlog.public_key_pem()}},
    }))
    .unwrap();
    scans.create(&PostParams::default(), &scan).await.unwrap();
    let operator_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait = |what: &'static str, check: fn(&Scan) -> bool| {
        let scans = scans.clone();
        async move {
            let started = Instant::now();
            loop {
                if let Some(scan) = scans.get_opt("shell").await.unwrap()
                    && check(&scan)
                {
                    return scan;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "timed out waiting for {what}\noperator log:\n{}",
                    operator_log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let scanning = wait("Scanning", |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.phase == Some(ScanPhase::Scanning))
    })
    .await;
    // Argo CD's health of the objects as the API server returns them (config/argocd).
    let lua = stella_e2e::argocd::available();
    let argo = |object: &dyn erased::Serialize| -> (String, String) {
        stella_e2e::argocd::health(&object.to_json())
    };
    if lua {
        let (health, message) = argo(&scanning);
        assert_eq!(health, "Progressing", "{message}");
        assert!(message.starts_with("Scanning: worker Job"), "{message}");
    }
    let job_name = scanning.status.unwrap().job_name.unwrap();
    run_worker_job(&client, &ns, &job_name, &storage, &digest).await;
    let done = wait("Completed", |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.phase == Some(ScanPhase::Completed))
    })
    .await;
    if lua {
        // A FAIL verdict is a scan that worked: Healthy, the verdict in the message.
        let (health, message) = argo(&done);
        assert_eq!(health, "Healthy", "{message}");
        assert!(message.ends_with("verdict FAIL"), "{message}");
        let policy = Api::<stella_crds::policy::v1alpha1::Policy>::all(client.clone())
            .get(&policy_name)
            .await
            .unwrap();
        assert_eq!(argo(&policy).0, "Healthy", "{:?}", argo(&policy));
        // A Scan naming a Policy that does not exist: Stalled, so Degraded with the reason.
        let orphan: Scan = serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": "orphan", "namespace": ns},
            "spec": {"image": format!("{}/shop/shell:1.0", registry.host), "insecureRegistry": true,
                     "policyRef": "no-such-policy"},
        }))
        .unwrap();
        scans.create(&PostParams::default(), &orphan).await.unwrap();
        let started = Instant::now();
        let stalled = loop {
            let scan = scans.get("orphan").await.unwrap();
            let stalled = scan.status.as_ref().is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == "Stalled" && c.status == "True")
            });
            if stalled {
                break scan;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the orphan Scan never stalled:\n{}",
                operator_log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let (health, message) = argo(&stalled);
        assert_eq!(health, "Degraded", "{message}");
        assert!(message.starts_with("PolicyNotFound: "), "{message}");
        scans.delete("orphan", &Default::default()).await.unwrap();
        let started = Instant::now();
        while scans.get_opt("orphan").await.unwrap().is_some() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "orphan not deleted"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let status = done.status.unwrap();
    assert_eq!(status.image_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(status.counts.critical, 1, "dash 0.5.12-2 < 0.5.12-3");
    assert_eq!(
        serde_json::to_value(status.verdict).unwrap(),
        "FAIL",
        "Block Critical"
    );
    assert!(status.components >= 1);
    let inventory = status
        .artifacts
        .iter()
        .find(|a| a.key == format!("images/{digest}/inventory.cdx.json"))
        .expect("the inventory SBOM is referenced");

    // Signed by the operator: the worker Job was asked for statements only (it has no key).
    let job: Job = Api::namespaced(client.clone(), &ns)
        .get(&job_name)
        .await
        .unwrap();
    let pod = job.spec.unwrap().template.spec.unwrap();
    assert!(
        pod.containers[0]
            .args
            .as_ref()
            .unwrap()
            .contains(&"--attest".to_string())
    );
    assert!(
        !serde_json::to_string(&pod).unwrap().contains("signing"),
        "the Job never mounts or names the key Secret"
    );
    let signed = wait("Attested", |s| {
        s.status.as_ref().is_some_and(|st| {
            st.attestation
                .as_ref()
                .is_some_and(|a| a.state == stella_crds::scan::v1alpha1::AttestationState::Logged)
        })
    })
    .await;
    let attestation = signed.status.as_ref().unwrap().attestation.clone().unwrap();
    assert_eq!(
        attestation.key_id.as_deref(),
        Some(stella_attest::Signer::public(&key).key_id())
    );
    let kinds: Vec<&str> = attestation
        .envelopes
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["proof", "report", "sbom", "vulns"]);
    let attested = signed
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Attested")
        .unwrap();
    assert_eq!(
        (attested.status.as_str(), attested.reason.as_str()),
        ("True", "Logged")
    );
    // Every envelope is in the log once, at the index the status says.
    let mut indices: Vec<i64> = attestation
        .envelopes
        .iter()
        .map(|e| e.log_index.unwrap())
        .collect();
    indices.sort();
    assert_eq!(indices, [3, 4, 5, 6]);
    assert_eq!(tlog.counts().0, 3 + 4);
    // Anyone with the public key verifies them offline; the SBOM's binds the status's bytes.
    let objects_dir = tempfile::tempdir().unwrap();
    let objects = stella_store::Store::open_embedded(objects_dir.path())
        .await
        .unwrap()
        .with_s3_credentials(&s3.url("stella", "artifacts"), "test", "test")
        .unwrap();
    let fetch = |key: String| {
        let objects = objects.clone();
        async move {
            objects
                .get(&key)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{key} is not stored"))
                .to_vec()
        }
    };
    let trusted = [stella_attest::Signer::public(&key).clone()];
    let mut verified = BTreeMap::new();
    let trusted_log = stella_attest::rekor::TrustedLogs::from_trusted_root(
        tlog.trusted_root().to_string().as_bytes(),
    )
    .unwrap();
    for envelope in &attestation.envelopes {
        let bytes = fetch(envelope.key.clone()).await;
        assert_eq!(stella_e2e::services::sha256(&bytes), envelope.digest);
        // Its Sigstore bundle is stored beside it and verifies offline.
        let bundle: serde_json::Value = serde_json::from_slice(
            &fetch(stella_pipeline::transparency::bundle_key(&envelope.key)).await,
        )
        .unwrap();
        let logged = stella_attest::rekor::check_logged(
            &bundle["verificationMaterial"]["tlogEntries"][0],
            &stella_attest::Envelope::from_json(&bytes).unwrap(),
            &trusted_log,
        )
        .unwrap();
        assert_eq!(Some(logged.log_index as i64), envelope.log_index);
        let kind: stella_attest::Kind = envelope.kind.parse().unwrap();
        let v = stella_attest::verify(
            &bytes,
            &trusted,
            &stella_attest::Expect {
                kind: Some(kind),
                subject: Some(digest.clone()),
                // An SBOM's time is the image's `created`, which this image lacks.
                max_age: (kind != stella_attest::Kind::Sbom).then(|| chrono::Duration::hours(1)),
            },
            chrono::Utc::now(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", envelope.kind));
        verified.insert(envelope.kind.clone(), v.statement);
    }
    assert_eq!(
        verified["sbom"].subject[1].sha256_digest().as_deref(),
        Some(inventory.digest.as_str())
    );
    assert_eq!(verified["report"].predicate["verdict"], "FAIL");
    // `attach`: the same envelopes are the image's referrers in its registry (Debian's
    // docker-registry: the referrers tag schema).
    assert!(
        attestation
            .message
            .as_deref()
            .is_some_and(|m| m.contains("4 envelopes attached")
                && m.contains("4 envelopes in http://127.0.0.1:")),
        "{attestation:?}"
    );
    let registry_client =
        stella_acquire::RegistryClient::new(stella_acquire::Credentials::default(), true).unwrap();
    let shell = stella_acquire::Reference::parse(&format!("{}/shop/shell", registry.host)).unwrap();
    let referrers = stella_pipeline::referrers::list(
        &registry_client,
        &shell,
        &stella_acquire::Digest::parse(&digest).unwrap(),
    )
    .await
    .unwrap();
    let mut attached: Vec<&str> = referrers
        .iter()
        .map(|r| r.predicate_type.as_str())
        .collect();
    attached.sort();
    assert_eq!(
        attached,
        [
            "https://cyclonedx.org/bom",
            "https://in-toto.io/attestation/vulns/v0.1",
            "https://stella-ops.org/attestations/proof/v1",
            "https://stella-ops.org/attestations/report/v1",
        ]
    );
    let first_report = attestation
        .envelopes
        .iter()
        .find(|e| e.kind == "report")
        .unwrap()
        .clone();
    // A Scan of the same image whose key Secret does not exist: the reused result stands,
    // unsigned, and says why.
    let unsigned: Scan = serde_json::from_value(serde_json::json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
        "metadata": {"name": "unsigned", "namespace": ns},
        "spec": {"image": format!("{}/shop/shell:1.0", registry.host), "insecureRegistry": true, "policyRef": policy_name,
                 "attest": {"enabled": true, "signingKeySecretRef": {"name": "no-such-key", "key": "cosign.key"}}},
    }))
    .unwrap();
    scans
        .create(&PostParams::default(), &unsigned)
        .await
        .unwrap();
    let started = Instant::now();
    let refused = loop {
        let scan = scans.get("unsigned").await.unwrap();
        if let Some(a) = scan.status.as_ref().and_then(|s| s.attestation.clone()) {
            break (scan, a);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no attestation state:\n{}",
            operator_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (refused_scan, refused) = refused;
    assert_eq!(
        refused.state,
        stella_crds::scan::v1alpha1::AttestationState::Failed
    );
    assert_eq!(refused.reason.as_deref(), Some("SigningKeyMissing"));
    let status = refused_scan.status.unwrap();
    assert_eq!(
        status.phase,
        Some(ScanPhase::Completed),
        "the result is kept"
    );
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Attested")
        .unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "SigningKeyMissing")
    );
    assert!(
        condition.message.contains("no-such-key"),
        "{}",
        condition.message
    );
    scans.delete("unsigned", &Default::default()).await.unwrap();

    // A Scan of the same image naming no key Secret: the operator's PKCS#11 key signs, and
    // its signature joins the envelopes the Secret's key made (one envelope per artifact,
    // several signers).
    if let Some(hsm) = &hsm {
        // The token's public key, as `stella attest public-key` reads it off the token.
        let public = Command::new(workspace_binary("stella"))
            .args(["attest", "public-key", "--key"])
            .arg(hsm.uri("operator", "signer", "4321"))
            .env("SOFTHSM2_CONF", &hsm.conf)
            .output()
            .unwrap();
        assert!(
            public.status.success(),
            "{}",
            String::from_utf8_lossy(&public.stderr)
        );
        let token_key =
            stella_attest::PublicKey::from_pem(&String::from_utf8(public.stdout).unwrap()).unwrap();
        let by_hsm: Scan = serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": "hsm", "namespace": ns},
            "spec": {"image": format!("{}/shop/shell:1.0", registry.host), "insecureRegistry": true, "policyRef": policy_name,
                     "attest": {"enabled": true}},
        }))
        .unwrap();
        scans.create(&PostParams::default(), &by_hsm).await.unwrap();
        let started = Instant::now();
        let attestation = loop {
            let scan = scans.get("hsm").await.unwrap();
            if let Some(a) = scan.status.as_ref().and_then(|s| s.attestation.clone())
                && a.state == stella_crds::scan::v1alpha1::AttestationState::Signed
            {
                break a;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "not signed by the token's key: {:?}\n{}",
                scan.status.and_then(|s| s.attestation),
                operator_log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(attestation.key_id.as_deref(), Some(token_key.key_id()));
        assert_eq!(attestation.envelopes.len(), 4);
        for envelope in &attestation.envelopes {
            let bytes = fetch(envelope.key.clone()).await;
            let parsed = stella_attest::Envelope::from_json(&bytes).unwrap();
            assert_eq!(
                parsed.signatures.len(),
                2,
                "{}: both signers",
                envelope.kind
            );
            for key in [
                token_key.clone(),
                stella_attest::Signer::public(&key).clone(),
            ] {
                stella_attest::verify(
                    &bytes,
                    &[key],
                    &stella_attest::Expect::default(),
                    chrono::Utc::now(),
                )
                .unwrap_or_else(|e| panic!("{}: {e}", envelope.kind));
            }
        }
        scans.delete("hsm", &Default::default()).await.unwrap();
    }

    // One API call away: the SBOM the status references, from S3 through the REST API.
    let token = cluster.token("admin").unwrap();
    let http = reqwest::Client::new();
    let sbom = http
        .get(format!("http://127.0.0.1:{port}/api/v1/scanner/sboms/{digest}?format=cyclonedx-json&view=inventory"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(sbom.status(), 200);
    let bytes = sbom.bytes().await.unwrap();
    assert_eq!(
        stella_e2e::services::sha256(&bytes),
        inventory.digest,
        "the bytes the status names"
    );
    let bom: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "dash")
    );
    let anonymous = http
        .get(format!(
            "http://127.0.0.1:{port}/api/v1/scanner/sboms/{digest}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // kubectl get scans shows the verdict and counts.
    let table = cluster
        .kubectl()
        .args(["get", "scans", "-n", &ns])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        table.contains("Completed") && table.contains("FAIL"),
        "{table}"
    );

    // New feeds: a second advisory on dash (high). The Scan is judged again in the operator
    // from its stored inventory — no new Job — and gains the finding.
    let job_count = || async {
        Api::<Job>::namespaced(client.clone(), &ns)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len()
    };
    assert_eq!(job_count().await, 1);
    std::fs::write(
        feeds.path().join("osv.json"),
        serde_json::json!({"id": "OSV-2099-8", "modified": "2099-01-02T00:00:00Z",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.5.12-9"}]}]}]})
        .to_string(),
    )
    .unwrap();
    import_feeds();
    // The operator notices the new feed snapshot by itself (`--feed-poll-seconds`).
    let ready_reason = |s: &Scan| {
        s.status.as_ref().and_then(|st| {
            st.conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| c.reason.clone())
        })
    };
    let reevaluated = wait("Reevaluated under new feeds", |s| {
        s.status.as_ref().is_some_and(|st| st.counts.high == 1)
    })
    .await;
    assert_eq!(ready_reason(&reevaluated).as_deref(), Some("Reevaluated"));
    let after = reevaluated.status.unwrap();
    assert_eq!(after.counts.critical, 1);
    assert_eq!(serde_json::to_value(after.verdict).unwrap(), "FAIL");
    assert_eq!(after.job_name, None, "no Job");
    assert_ne!(
        after.inputs.as_ref().unwrap().feed_snapshot,
        status.inputs.as_ref().unwrap().feed_snapshot
    );
    assert_eq!(
        job_count().await,
        1,
        "no new Job: nothing pulled, nothing analysed"
    );
    // The delta against the previous report: dash's new high finding.
    let delta = after.last_delta.clone().expect("a delta");
    assert_eq!((delta.new_findings, delta.new_high), (1, 1), "{delta:?}");
    assert_eq!(delta.removed_findings, 0);
    // The re-evaluated report is signed too: a new report envelope, the same SBOM's.
    let resigned = after
        .attestation
        .clone()
        .expect("attested after the re-evaluation");
    assert_eq!(
        resigned.state,
        stella_crds::scan::v1alpha1::AttestationState::Logged
    );
    let report = resigned
        .envelopes
        .iter()
        .find(|e| e.kind == "report")
        .unwrap();
    assert!(
        report.log_index.unwrap() > 6,
        "the new report is logged after the first four: {report:?}"
    );
    assert_ne!(
        report.digest, first_report.digest,
        "the new report's envelope"
    );
    let statement = stella_attest::verify(
        &fetch(report.key.clone()).await,
        &trusted,
        &stella_attest::Expect::default(),
        chrono::Utc::now(),
    )
    .unwrap()
    .statement;
    assert_eq!(statement.predicate["verdict"], "FAIL");
    assert_eq!(
        statement.predicate["feedSnapshot"].as_str(),
        after.inputs.as_ref().unwrap().feed_snapshot.as_deref()
    );

    // A new policy: dash's findings accepted first, so the verdict is no longer FAIL; again
    // no Job.
    let policies = Api::<stella_crds::policy::v1alpha1::Policy>::all(client.clone());
    let mut edited = policies.get(&policy_name).await.unwrap();
    edited.spec.0.rules.insert(
        0,
        serde_json::from_value(
            serde_json::json!({"name": "Accept dash", "purls": ["pkg:deb/debian/dash"],
            "action": "ignore", "justification": "not reachable in this image"}),
        )
        .unwrap(),
    );
    // The edit alone wakes the Scan (the controller watches the Policies its Scans name).
    policies
        .replace(&policy_name, &PostParams::default(), &edited)
        .await
        .unwrap();
    let relaxed = wait("Reevaluated under the new policy", |s| {
        s.status.as_ref().is_some_and(|st| {
            st.verdict
                .is_some_and(|v| serde_json::to_value(v).unwrap() != "FAIL")
        })
    })
    .await;
    assert_eq!(ready_reason(&relaxed).as_deref(), Some("Reevaluated"));
    let relaxed = relaxed.status.unwrap();
    assert_ne!(
        relaxed.inputs.as_ref().unwrap().policy_digest,
        after.inputs.as_ref().unwrap().policy_digest
    );
    assert_eq!((relaxed.counts.critical, relaxed.counts.high), (1, 1));
    assert_eq!(job_count().await, 1);

    // An advisory about a package the image does not carry: the feed snapshot moves, the
    // delta names only nginx, so the Scan pins the new snapshot without being evaluated.
    let advisories = stella_store::AdvisoryDb::connect_postgres(&db.url)
        .await
        .unwrap();
    let digest = relaxed.image_digest.clone().unwrap();
    let catalog = stella_store::Catalog::connect_postgres(&db.url)
        .await
        .unwrap();
    let latest_before = catalog.latest_result(&digest).await.unwrap();
    std::fs::write(
        feeds.path().join("nginx.json"),
        serde_json::json!({"id": "OSV-2099-9", "modified": "2099-01-03T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "nginx"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]})
        .to_string(),
    )
    .unwrap();
    import_feeds();
    let moved = advisories.feed_snapshot().await.unwrap();
    let started = Instant::now();
    let advanced = loop {
        let scan = scans.get("shell").await.unwrap();
        let pinned = scan
            .status
            .as_ref()
            .and_then(|st| st.inputs.as_ref())
            .and_then(|i| i.feed_snapshot.clone());
        if pinned.as_deref() == Some(moved.as_str()) {
            break scan;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not pinned to the new feed snapshot {moved}: {pinned:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let advanced = advanced.status.unwrap();
    assert_eq!(advanced.last_delta, relaxed.last_delta, "no new delta");
    assert_eq!(advanced.verdict, relaxed.verdict);
    assert_eq!(
        catalog.latest_result(&digest).await.unwrap(),
        latest_before,
        "nothing evaluated, nothing recorded"
    );

    // A Schedule (cron in Sofia's time, analysis-only, this namespace), run now by annotation:
    // the Scan is judged again from its stored inventory — no Job — and answers the request;
    // the run's stats, its record in the catalog and the REST API agree.
    let schedules = Api::<Schedule>::all(client.clone());
    let schedule_status = |name: String, what: &'static str, check: fn(&ScheduleStatus) -> bool| {
        let schedules = schedules.clone();
        async move {
            let started = Instant::now();
            loop {
                let status = schedules
                    .get(&name)
                    .await
                    .unwrap()
                    .status
                    .unwrap_or_default();
                if check(&status) {
                    return status;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "timed out waiting for Schedule {name}: {what}; last {status:?}\noperator log:\n{}",
                    operator_log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let create_schedule = |name: String, spec: serde_json::Value| {
        let schedules = schedules.clone();
        async move {
            let schedule: Schedule = serde_json::from_value(serde_json::json!({
                "apiVersion": "stella-ops.org/v1alpha1", "kind": "Schedule",
                "metadata": {"name": name}, "spec": spec,
            }))
            .unwrap();
            schedules
                .create(&PostParams::default(), &schedule)
                .await
                .unwrap();
        }
    };
    let run_now = |name: String, value: &'static str| {
        let schedules = schedules.clone();
        async move {
            schedules
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(
                        &serde_json::json!({"metadata": {"annotations": {RUN_NOW: value}}}),
                    ),
                )
                .await
                .unwrap();
        }
    };
    let nightly = format!("{ns}-nightly");
    create_schedule(
        nightly.clone(),
        serde_json::json!({"cron": "30 3 * * *", "timeZone": "Europe/Sofia", "mode": "analysis-only",
            "selection": {"scope": "namespaces", "namespaces": [ns]},
            "notify": {"onNewFindings": true, "minSeverity": "High"}}),
    )
    .await;
    let scheduled = schedule_status(nightly.clone(), "a next run time", |s| {
        s.next_run_time.is_some()
    })
    .await;
    let ready = scheduled
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Scheduled")
    );
    if lua {
        let schedule = schedules.get(&nightly).await.unwrap();
        assert_eq!(argo(&schedule).0, "Healthy", "{:?}", argo(&schedule));
    }
    let before = scans.get("shell").await.unwrap().status.unwrap();
    run_now(nightly.clone(), "1").await;
    let finished = schedule_status(nightly.clone(), "a completed run", |s| {
        s.last_run
            .as_ref()
            .is_some_and(|r| r.state == RunState::Completed)
    })
    .await;
    let run = finished.last_run.clone().unwrap();
    assert_eq!(run.trigger, RunTrigger::Manual);
    assert_eq!(
        (
            run.stats.candidates,
            run.stats.deduped,
            run.stats.queued,
            run.stats.completed
        ),
        (1, 1, 1, 1),
        "{run:?}"
    );
    assert_eq!(run.stats.deltas, 0, "same inputs: nothing new");
    assert_eq!(finished.run_request.as_deref(), Some("1"));
    assert!(finished.last_successful_run_time.is_some());
    assert_eq!(finished.history.len(), 1);
    let answered = scans.get("shell").await.unwrap().status.unwrap();
    assert_eq!(
        answered.schedule_request.as_deref(),
        Some(format!("analysis-only/{}", run.run_id).as_str())
    );
    assert_ne!(
        answered.completion_time, before.completion_time,
        "judged again"
    );
    assert_eq!(job_count().await, 1, "analysis-only: no Job");
    // The report that run stored (checked against a fresh `stella report` at the end).
    let reevaluated_report = catalog
        .latest_result(&digest)
        .await
        .unwrap()
        .and_then(|r| r.report_key)
        .expect("the run's re-evaluation stored a report");
    // The same annotation value again starts nothing.
    run_now(nightly.clone(), "1").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let same = schedules.get(&nightly).await.unwrap().status.unwrap();
    assert_eq!(same.history.len(), 1);

    // The run through the REST API, with the cursor and the feeds.
    let token = cluster.token("admin").unwrap();
    let get = |path: String, token: Option<String>| {
        let http = http.clone();
        async move {
            let mut request = http.get(format!("http://127.0.0.1:{port}{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (code, body) = get(
        format!("/api/v1/scheduler/runs/{}", run.run_id),
        Some(token.to_string()),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "Completed");
    assert_eq!(body["counts"]["completed"], 1);
    assert_eq!(body["scheduleId"], nightly.as_str());
    assert_eq!(body["mode"], "analysis-only");
    assert_eq!(
        body["links"]["schedule"],
        format!("/apis/stella-ops.org/v1alpha1/schedules/{nightly}")
    );
    let (code, listed) = get(
        format!("/api/v1/scheduler/runs?schedule={nightly}"),
        Some(token.to_string()),
    )
    .await;
    assert_eq!(code, 200, "{listed}");
    assert_eq!(listed["runs"][0]["id"], run.run_id.as_str());
    assert_eq!(
        get(format!("/api/v1/scheduler/runs/{}", run.run_id), None)
            .await
            .0,
        401
    );
    assert_eq!(
        get(
            "/api/v1/scheduler/runs/..%2F..%2Fetc".into(),
            Some(token.to_string())
        )
        .await
        .0,
        400
    );
    for bad in [
        "/api/v1/scheduler/runs".to_string(),
        "/api/v1/scheduler/runs?schedule=..%2Fetc".to_string(),
        format!("/api/v1/scheduler/runs?schedule={nightly}&limit=100000"),
        format!("/api/v1/scheduler/runs?schedule={nightly}&limit=-1"),
        format!("/api/v1/scheduler/runs?schedule={nightly}&bogus=1"),
        format!("/api/v1/scheduler/runs?schedule={nightly}&schedule=other"),
    ] {
        let (code, body) = get(bad.clone(), Some(token.to_string())).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{bad}");
    }
    assert_eq!(get("/api/v1/scheduler/cursor".into(), None).await.0, 401);
    assert_eq!(get("/api/v1/feeds".into(), None).await.0, 401);
    assert_eq!(
        get(
            "/api/v1/scheduler/runs/nope-1".into(),
            Some(token.to_string())
        )
        .await
        .0,
        404
    );
    let (code, cursor) = get("/api/v1/scheduler/cursor".into(), Some(token.to_string())).await;
    assert_eq!(code, 200, "{cursor}");
    assert_eq!(cursor["lastConcelierExportId"], moved.as_str());
    assert!(
        cursor["lastFeedDelta"]["seq"].as_i64().is_some(),
        "{cursor}"
    );
    let (code, feeds_now) = get("/api/v1/feeds".into(), Some(token.to_string())).await;
    assert_eq!(code, 200, "{feeds_now}");
    assert_eq!(feeds_now["snapshot"], moved.as_str());

    // content-refresh: the run asks for a rescan — a worker Job — and waits for its answer.
    let weekly = format!("{ns}-weekly");
    create_schedule(
        weekly.clone(),
        serde_json::json!({"cron": "@weekly", "mode": "content-refresh",
            "selection": {"scope": "repositories", "repositories": [format!("{}/shop/*", registry.host)]},
            "limits": {"parallelism": 1}}),
    )
    .await;
    run_now(weekly.clone(), "first").await;
    let rescanning = wait("Scanning for the content-refresh run", |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.phase == Some(ScanPhase::Scanning))
    })
    .await;
    assert_eq!(job_count().await, 2, "a rescan: a new Job");
    let running = schedules.get(&weekly).await.unwrap().status.unwrap();
    let reconciling = running
        .conditions
        .iter()
        .find(|c| c.type_ == "Reconciling")
        .unwrap();
    assert_eq!(reconciling.status, "True", "{running:?}");
    run_worker_job(
        &client,
        &ns,
        &rescanning.status.unwrap().job_name.unwrap(),
        &storage,
        &digest,
    )
    .await;
    let refreshed = schedule_status(weekly.clone(), "a completed content-refresh run", |s| {
        s.last_run
            .as_ref()
            .is_some_and(|r| r.state == RunState::Completed)
    })
    .await;
    assert_eq!(refreshed.last_run.unwrap().stats.completed, 1);

    // A cron that cannot be: Stalled, with the reason, nothing run.
    let broken = format!("{ns}-broken");
    create_schedule(
        broken.clone(),
        serde_json::json!({"cron": "61 * * * *", "mode": "analysis-only", "selection": {"scope": "all-images"}}),
    )
    .await;
    let stalled = schedule_status(broken.clone(), "Stalled", |s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
    })
    .await;
    let reason = &stalled
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap()
        .reason;
    assert_eq!(reason, "InvalidCron");
    assert!(stalled.last_run.is_none());
    for name in [&nightly, &weekly, &broken] {
        schedules.delete(name, &Default::default()).await.unwrap();
    }

    // Metrics: the reconciles and the phase gauge.
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("stella_scans{phase=\"Completed\"} 1\n"),
        "{metrics}"
    );
    // Every operator metric the shipped alerts and dashboard query is served, and the
    // result gauges carry this Scan.
    let missing = stella_e2e::monitoring::missing(&metrics, false);
    assert!(
        missing.is_empty(),
        "monitored, not served: {missing:?}\n{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "stella_scan_findings{{namespace=\"{ns}\",severity=\"critical\"}}"
        )),
        "{metrics}"
    );
    // At least once: a reconcile that runs again before the new pin reaches the watch cache
    // checks the same delta again (and leaves the Scan alone again).
    let unaffected = metrics
        .lines()
        .find_map(|l| l.strip_prefix("stella_feed_impact_total{outcome=\"unaffected\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(unaffected.is_some_and(|n| n >= 1), "{metrics}");
    assert!(
        metrics.contains("stella_reconcile_runs_total{controller=\"scan\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stella_schedule_runs_total{trigger=\"manual\",state=\"Completed\"} 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stella_schedule_requests_total{mode=\"analysis-only\"} 1\n"),
        "{metrics}"
    );

    // Determinism: the report the analysis-only run stored is byte for byte what a fresh
    // `stella report` of the same image computes from the same feeds, policy, namespace and
    // instant (its printed report, in the stored canonical form).
    let objects = stella_store::Store::open(&stella_store::StoreConfig {
        data_dir: scratch.path().join("verify"),
        catalog_url: Some(db.url.clone()),
        object_store_url: None,
    })
    .await
    .unwrap()
    .with_s3_credentials(&s3.url("stella", "artifacts"), "test", "test")
    .unwrap();
    let stored = objects.get(&reevaluated_report).await.unwrap().unwrap();
    let stored_report: stella_policy::Report = serde_json::from_slice(&stored).unwrap();
    let policy_file = scratch.path().join("policy.json");
    std::fs::write(
        &policy_file,
        serde_json::to_vec(&policies.get(&policy_name).await.unwrap()).unwrap(),
    )
    .unwrap();
    let fresh = Command::new(workspace_binary("stella"))
        .args([
            "report",
            // The reference the operator pins (`repository@digest`) is part of the report.
            &format!("{}/shop/shell@{digest}", registry.host),
            "--insecure-registry",
        ])
        .arg("--policy")
        .arg(&policy_file)
        .args([
            "--namespace",
            &ns,
            "--evaluated-at",
            &stored_report.evaluated_at,
        ])
        .args(["--catalog-url", &db.url, "--data-dir"])
        .arg(scratch.path().join("fresh"))
        .output()
        .unwrap();
    assert!(
        fresh.status.success() || fresh.status.code() == Some(7),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    let fresh: stella_policy::Report = serde_json::from_slice(&fresh.stdout).unwrap();
    assert_eq!(
        fresh.to_canonical_json(),
        String::from_utf8(stored.to_vec()).unwrap(),
        "a re-evaluated report is byte-identical to a fresh one"
    );

    // A vendor publishes VEX through a FeedSource: dash is not affected by the critical
    // advisory. The sync moves the feed snapshot with a delta naming dash, and the Scan is
    // judged again — no Job — with the finding suppressed.
    let before_vex = scans.get("shell").await.unwrap();
    assert_eq!(before_vex.status.as_ref().unwrap().counts.critical, 1);
    let jobs_before_vex = job_count().await;
    let vex = serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://shop.example/vex/dash",
        "author": "Shop Vendor", "timestamp": "2099-02-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "OSV-2099-7"},
            "products": [{"@id": "pkg:deb/debian/dash"}],
            "status": "not_affected", "justification": "vulnerable_code_not_present"}]
    });
    let server = stella_e2e::services::FeedServer::start(stella_e2e::services::Answer::Body(
        vex.to_string().into_bytes(),
    ));
    let feed_sources = Api::<stella_crds::feed_source::v1alpha1::FeedSource>::all(client.clone());
    let vex_feed = format!("{ns}-vendor-vex");
    let source: stella_crds::feed_source::v1alpha1::FeedSource =
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "FeedSource",
            "metadata": {"name": vex_feed},
            "spec": {"format": "openvex", "url": format!("{}/vex.json", server.base),
                     "trust": {"tier": "vendor", "weight": 0.9}},
        }))
        .unwrap();
    feed_sources
        .create(&PostParams::default(), &source)
        .await
        .unwrap();
    let suppressed = wait("Reevaluated under the vendor's VEX", |s| {
        s.status.as_ref().is_some_and(|st| st.counts.critical == 0)
    })
    .await;
    assert_eq!(ready_reason(&suppressed).as_deref(), Some("Reevaluated"));
    let suppressed_before = before_vex.status.as_ref().unwrap().suppressed;
    assert_eq!(
        suppressed.status.as_ref().unwrap().suppressed,
        suppressed_before + 1
    );
    assert_eq!(job_count().await, jobs_before_vex, "VEX: no Job");
    let synced = feed_sources.get(&vex_feed).await.unwrap();
    if lua {
        assert_eq!(argo(&synced).0, "Healthy", "{:?}", argo(&synced));
    }
    let synced = synced.status.unwrap();
    assert_eq!(
        synced.last_delta.as_ref().map(|d| d.vex_products),
        Some(1),
        "{synced:?}"
    );
    // The feed muted (trust weight 0): its statement no longer counts; the finding is back.
    feed_sources
        .patch(
            &vex_feed,
            &PatchParams::default(),
            &Patch::Merge(
                &serde_json::json!({"spec": {"trust": {"tier": "vendor", "weight": 0.0}}}),
            ),
        )
        .await
        .unwrap();
    let muted = wait("Reevaluated with the VEX feed muted", |s| {
        s.status.as_ref().is_some_and(|st| st.counts.critical == 1)
    })
    .await;
    assert_eq!(muted.status.as_ref().unwrap().suppressed, suppressed_before);
    assert_eq!(ready_reason(&muted).as_deref(), Some("Reevaluated"));
    assert_eq!(job_count().await, jobs_before_vex);
    feed_sources
        .delete(&vex_feed, &Default::default())
        .await
        .unwrap();
}

/// The kubelet's part: run the Job's container — the real worker, its args, its env (literal
/// values plus the storage Secret through envFrom), scratch space for /tmp; then the Job
/// controller's part: mark the Job complete.
async fn run_worker_job(
    client: &kube::Client,
    ns: &str,
    job_name: &str,
    storage: &BTreeMap<String, String>,
    digest: &str,
) {
    let job: Job = Api::namespaced(client.clone(), ns)
        .get(job_name)
        .await
        .unwrap();
    let container = &job
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let env_from = container.env_from.as_ref().unwrap();
    assert_eq!(
        env_from[0].secret_ref.as_ref().unwrap().name,
        "stella-storage"
    );
    let work = tempfile::tempdir().unwrap();
    let termination = work.path().join("termination-log");
    let mut worker = Command::new(workspace_binary("stella-worker"));
    worker
        .args(container.args.clone().unwrap())
        .arg("--termination-log")
        .arg(&termination)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(storage);
    for var in container.env.clone().unwrap() {
        let value = var.value.unwrap_or_default();
        let value = if var.name == "STELLA_DATA_DIR" {
            work.path().join("stella").display().to_string()
        } else {
            value
        };
        worker.env(&var.name, value);
    }
    let out = worker.output().unwrap();
    assert!(
        out.status.success(),
        "worker failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&termination).unwrap().trim()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["imageDigest"], digest);
    Api::<Job>::namespaced(client.clone(), ns)
        .patch_status(
            job_name,
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}})),
        )
        .await
        .unwrap();
}

/// Objects of any kind as JSON, for the Argo CD health script.
mod erased {
    pub(crate) trait Serialize {
        fn to_json(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Serialize for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}
