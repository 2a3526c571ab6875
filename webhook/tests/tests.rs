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
use sha2::{Digest, Sha256};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn required() -> bool {
    std::env::var_os("CI").is_some()
}

fn skip(why: &str) -> Option<()> {
    assert!(!required(), "{why} (required under CI)");
    eprintln!("SKIPPED: {why}");
    None
}

/// The shared API server, or a skip.
fn cluster() -> Option<&'static stella_e2e::TestCluster> {
    match stella_e2e::TestCluster::shared() {
        Ok(c) => Some(c),
        Err(e) => {
            skip(&format!("no API server: {e}"));
            None
        }
    }
}

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

pub(crate) fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Debian's docker-registry on a free loopback port.
pub(crate) struct Registry {
    child: std::process::Child,
    pub(crate) host: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    pub(crate) fn start() -> Option<Registry> {
        let found = Command::new("sh")
            .args(["-c", "command -v docker-registry"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            skip("docker-registry is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.path().join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            _dir: dir,
        })
    }

    async fn blob(&self, http: &reqwest::Client, repository: &str, blob: &[u8]) {
        let base = format!("http://{}/v2/{repository}", self.host);
        let started = http
            .post(format!("{base}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202, "upload start");
        let location = started.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("http://{}{location}", self.host)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = http
            .put(format!("{location}{separator}digest={}", sha(blob)))
            .body(blob.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "blob upload");
    }

    async fn manifest(
        &self,
        http: &reqwest::Client,
        repository: &str,
        tag: &str,
        manifest: &serde_json::Value,
    ) -> String {
        let bytes = serde_json::to_vec(manifest).unwrap();
        let put = http
            .put(format!(
                "http://{}/v2/{repository}/manifests/{tag}",
                self.host
            ))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "manifest upload");
        sha(&bytes)
    }

    /// Pushes a one-layer image whose only file holds `content` as `repository:tag`; returns
    /// its manifest digest.
    pub(crate) async fn push(&self, repository: &str, tag: &str, content: &str) -> String {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, "etc/motd", content.as_bytes())
            .unwrap();
        let tar = tar.into_inner().unwrap();
        let diff_id = sha(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let layer = gz.finish().unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
        let http = reqwest::Client::new();
        self.blob(&http, repository, &layer).await;
        self.blob(&http, repository, &config).await;
        self.manifest(&http, repository, tag, &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&layer), "size": layer.len()}],
        }))
        .await
    }

    /// Pushes a cosign signature of `repository@digest` made with `key`, as `cosign sign`
    /// does: the simple-signing payload as the layer of `repository:sha256-<hex>.sig`.
    pub(crate) async fn sign(
        &self,
        repository: &str,
        digest: &str,
        key: &ring::signature::EcdsaKeyPair,
    ) {
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
