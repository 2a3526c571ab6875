//! Serving certificates: a mounted Secret directory is re-read when it changes (clients see
//! the new certificate without a restart), and self-provisioning shares one CA through a
//! Secret and writes it into the webhook configuration's caBundle.

use crate::{cluster, namespace, unique};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stella_webhook::metrics::Metrics;
use stella_webhook::tls::{self, CertStore, Provision};

/// The leaf certificate a TLS client is served by `addr`, trusting `ca_pem`; `None` when the
/// handshake fails (an untrusted certificate).
async fn served_certificate(addr: std::net::SocketAddr, ca_pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.ok()?;
    tls.get_ref().1.peer_certificates().map(|c| c[0].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mounted_certificate_is_reloaded_when_its_files_change() {
    let ca = stella_e2e::pki::TestCa::new("reload-ca").unwrap();
    let first = ca.serving_cert("stella-webhook", &["localhost"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), &first.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &first.key_pem).unwrap();
    let pem = tls::read_dir(dir.path()).unwrap().unwrap();
    let store = CertStore::new(&pem).unwrap();
    let metrics = Arc::new(Metrics::default());
    let watcher = tokio::spawn(tls::watch_dir(
        store.clone(),
        dir.path().to_path_buf(),
        Duration::from_millis(50),
        metrics.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = warp::Filter::boxed(warp::Filter::map(warp::any(), || {
        warp::reply::Response::new("ok".into())
    }));
    let server = tokio::spawn(stella_webhook::server::serve_tls(
        listener,
        store.server_config(),
        routes,
        std::future::pending(),
    ));

    let before = served_certificate(addr, ca.cert_pem())
        .await
        .expect("trusted");
    // A renewal by another CA (as after a cert-manager issuer change): written in place.
    let other_ca = stella_e2e::pki::TestCa::new("renewed-ca").unwrap();
    let second = other_ca
        .serving_cert("stella-webhook", &["localhost"])
        .unwrap();
    std::fs::write(dir.path().join("tls.key"), &second.key_pem).unwrap();
    std::fs::write(dir.path().join("tls.crt"), &second.cert_pem).unwrap();
    let started = Instant::now();
    let after = loop {
        if let Some(cert) = served_certificate(addr, other_ca.cert_pem()).await {
            break cert;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(before, after);
    assert!(
        served_certificate(addr, ca.cert_pem()).await.is_none(),
        "the old CA no longer verifies"
    );
    // A broken write keeps the last good certificate.
    std::fs::write(dir.path().join("tls.crt"), "garbage").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        served_certificate(addr, other_ca.cert_pem()).await,
        Some(after)
    );
    assert!(
        metrics
            .render()
            .contains("stella_webhook_certificate_reloads_total{result=\"error\"}")
    );
    watcher.abort();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_provisioning_shares_one_ca_and_patches_the_ca_bundle() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client().await.unwrap();
    let id = unique();
    let ns = namespace(&client, &format!("zastava-tls-{id}"), json!({})).await;
    let name = format!("zastava-tls-{id}");
    let vwc: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": name},
        "webhooks": [{"name": "workloads.zastava.stella-ops.org", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore", "clientConfig": {"service": {"name": "stella-webhook", "namespace": ns, "path": "/validate"}},
            "namespaceSelector": {"matchLabels": {"never": name}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]}]
    }))
    .unwrap();
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    vwcs.create(&PostParams::default(), &vwc).await.unwrap();
    let provision = Provision {
        namespace: ns.clone(),
        secret: "stella-webhook-tls".into(),
        service: "stella-webhook".into(),
        webhook_configuration: Some(name.clone()),
    };
    // Two replicas starting together agree on one certificate.
    let (a, b) = tokio::join!(
        tls::provision(&client, &provision),
        tls::provision(&client, &provision)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &ns)
        .get("stella-webhook-tls")
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let ca = String::from_utf8(secret.data.unwrap()["ca.crt"].0.clone()).unwrap();
    let patched = vwcs.get(&name).await.unwrap();
    let bundle = patched.webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap();
    assert_eq!(String::from_utf8(bundle.0).unwrap(), ca);
    // The certificate serves and verifies under that CA for the Service's name.
    let store = CertStore::new(&a).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = warp::Filter::boxed(warp::Filter::map(warp::any(), || {
        warp::reply::Response::new("ok".into())
    }));
    let server = tokio::spawn(stella_webhook::server::serve_tls(
        listener,
        store.server_config(),
        routes,
        std::future::pending(),
    ));
    assert!(served_certificate(addr, &ca).await.is_some());
    server.abort();
    vwcs.delete(&name, &DeleteParams::default()).await.unwrap();
}
