//! The webhook against the real API server harness (kube-apiserver 1.20 + etcd on loopback)
//! and a real registry (Debian's `docker-registry`): our ValidatingWebhookConfiguration points
//! the API server at the webhook over TLS, and `kubectl create` shows what users see — allowed,
//! `Warning:` lines, and denials with their messages. Skipped with a message when the harness
//! is missing, except under CI (env `CI`), where nothing may skip.

mod admission;
mod bench;
mod certificates;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};
use std::io::Write;
use std::process::Stdio;

/// The shared API server, or a skip.
use stella_e2e::cluster;

/// A unique suffix.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000)
}

/// A fresh namespace with these labels.
async fn namespace(client: &Client, name: &str, labels: serde_json::Value) -> String {
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": labels}}))
            .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    name.to_string()
}

/// `kubectl create -f -` of `object`: (succeeded, stdout, stderr).
fn kubectl_create(
    cluster: &stella_e2e::TestCluster,
    object: &serde_json::Value,
) -> (bool, String, String) {
    let mut child = cluster
        .kubectl()
        .args(["create", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(object.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) use stella_e2e::services::sha256 as sha;

pub(crate) use stella_e2e::services::Registry;

/// Cosign signatures pushed to the test registry.
pub(crate) trait Sign {
    async fn sign(&self, repository: &str, digest: &str, key: &ring::signature::EcdsaKeyPair);
}

impl Sign for Registry {
    /// Pushes a cosign signature of `repository@digest` made with `key`, as `cosign sign`
    /// does: the simple-signing payload as the layer of `repository:sha256-<hex>.sig`.
    async fn sign(&self, repository: &str, digest: &str, key: &ring::signature::EcdsaKeyPair) {
        let payload =
            stella_webhook::signature::payload(&format!("{}/{repository}", self.host), digest);
        let signature = key
            .sign(&ring::rand::SystemRandom::new(), &payload)
            .unwrap();
        let b64 = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            signature.as_ref(),
        );
        let config =
            br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let http = reqwest::Client::new();
        self.blob(&http, repository, &payload).await;
        self.blob(&http, repository, &config).await;
        let tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
        self.manifest(&http, repository, &tag, &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": stella_webhook::signature::PAYLOAD_MEDIA_TYPE, "digest": sha(&payload), "size": payload.len(),
                "annotations": {stella_webhook::signature::SIGNATURE_ANNOTATION: b64}}],
        }))
        .await;
    }
}

/// A cosign-style ECDSA P-256 key pair.
pub(crate) fn key_pair() -> ring::signature::EcdsaKeyPair {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

/// Stores what the operator leaves for an attested image: its canonical report (the latest
/// result's `report_key`, returned) and the report's envelope signed by `key`, as `verdict`.
pub(crate) async fn store_signed_report(
    store: &stella_store::Store,
    digest: &str,
    repository: &str,
    verdict: &str,
    key: &stella_attest::SigningKey,
) -> String {
    let report = serde_json::to_vec(&serde_json::json!({"schema": "stella-ops.org/policy-report@1", "verdict": verdict, "findings": []})).unwrap();
    let report_sha = sha(&report);
    let report_key = format!("images/{digest}/reports/{}.json", &report_sha[7..]);
    let statement = stella_attest::Statement::new(
        vec![
            stella_attest::Subject::sha256(repository, digest),
            stella_attest::Subject::sha256(&report_key, &report_sha),
        ],
        stella_attest::statement::REPORT,
        serde_json::json!({"imageDigest": digest, "verdict": verdict,
            "evaluatedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
    );
    let envelope = stella_attest::sign(&statement, key).unwrap().to_json();
    for (key, kind, format, view, bytes) in [
        (
            report_key.clone(),
            "report",
            "policy-report-json",
            None,
            report,
        ),
        (
            stella_attest::storage_key(&report_sha),
            "attestation",
            "dsse-json",
            Some("report"),
            envelope,
        ),
    ] {
        store
            .store_artifact(
                digest,
                stella_store::Artifact {
                    key,
                    kind,
                    format,
                    view,
                    bytes,
                },
            )
            .await
            .unwrap();
    }
    report_key
}
