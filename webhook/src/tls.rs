//! The serving certificate: from a mounted `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`,
//! as cert-manager writes them), re-read when its content changes; or self-provisioned — a CA
//! and a serving certificate generated once and kept in a Secret all replicas share, with the
//! CA written into our ValidatingWebhookConfiguration's `caBundle`. TLS is rustls on ring.

use crate::metrics::Metrics;
use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Errors loading or provisioning certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no certificate in {0}")]
    NoCertificate(String),
    #[error("failed to parse the certificate chain: {0}")]
    Certificate(String),
    #[error("failed to parse the private key: {0}")]
    Key(String),
    #[error("failed to generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("failed to {what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("secret {0} lacks ca.crt, tls.crt or tls.key")]
    IncompleteSecret(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A certificate chain and key (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// Builds a rustls certified key from PEM.
pub fn certified_key(pem: &Pem) -> Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(Error::NoCertificate("tls.crt".into()));
    }
    let key =
        PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).map_err(|e| Error::Key(e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| Error::Key(e.to_string()))?;
    Ok(CertifiedKey::new(certs, signing))
}

/// The certificate being served; swapped atomically on reload.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
    fingerprint: RwLock<[u8; 32]>,
}

fn fingerprint(pem: &Pem) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(pem.cert.as_bytes());
    h.update([0]);
    h.update(pem.key.as_bytes());
    h.finalize().into()
}

impl CertStore {
    pub fn new(pem: &Pem) -> Result<Arc<CertStore>> {
        Ok(Arc::new(CertStore {
            current: RwLock::new(Arc::new(certified_key(pem)?)),
            fingerprint: RwLock::new(fingerprint(pem)),
        }))
    }

    /// Serves `pem` from now on if it differs and parses; `Ok(true)` when it changed.
    pub fn update(&self, pem: &Pem) -> Result<bool> {
        let print = fingerprint(pem);
        if *self.fingerprint.read().unwrap_or_else(|e| e.into_inner()) == print {
            return Ok(false);
        }
        let key = certified_key(pem)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        *self.fingerprint.write().unwrap_or_else(|e| e.into_inner()) = print;
        Ok(true)
    }

    /// A rustls server configuration (HTTP/2 and HTTP/1.1) serving this store's certificate.
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| rustls::ServerConfig::builder())
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// `tls.crt` and `tls.key` of a mounted Secret directory, if both exist.
pub fn read_dir(dir: &Path) -> Result<Option<Pem>> {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    if !cert.is_file() || !key.is_file() {
        return Ok(None);
    }
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|source| Error::Read {
            path: p.display().to_string(),
            source,
        })
    };
    Ok(Some(Pem {
        cert: read(&cert)?,
        key: read(&key)?,
    }))
}

/// Re-reads the directory every `interval` and swaps the certificate when it changed
/// (Secret volume updates, cert-manager renewals). A broken update keeps the old one.
pub async fn watch_dir(
    store: Arc<CertStore>,
    dir: PathBuf,
    interval: Duration,
    metrics: Arc<Metrics>,
) {
    loop {
        tokio::time::sleep(interval).await;
        match read_dir(&dir).and_then(|p| p.map(|p| store.update(&p)).transpose()) {
            Ok(Some(true)) => {
                metrics.cert_reload(true);
                tracing::info!(dir = %dir.display(), "serving certificate reloaded");
            }
            Ok(_) => {}
            Err(error) => {
                metrics.cert_reload(false);
                tracing::warn!(%error, dir = %dir.display(), "serving certificate not reloaded; keeping the current one");
            }
        }
    }
}

/// A new CA and a serving certificate signed by it for the Service's names and loopback.
/// Returns (CA PEM, serving chain and key).
pub fn generate(service: &str, namespace: &str) -> Result<(String, Pem)> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, format!("{service}-ca"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = rcgen::date_time_ymd(2025, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let key = KeyPair::generate()?;
    let names = vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        "localhost".to_string(),
    ];
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{service}.{namespace}.svc"));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let issuer = Issuer::from_params(&ca, &ca_key);
    let cert = params.signed_by(&key, &issuer)?;
    Ok((
        ca_pem,
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        },
    ))
}

/// What self-provisioning needs.
#[derive(Clone, Debug)]
pub struct Provision {
    pub namespace: String,
    pub secret: String,
    pub service: String,
    /// The ValidatingWebhookConfiguration whose `caBundle` to keep current.
    pub webhook_configuration: Option<String>,
}

/// Gets (or creates, racing other replicas: the first create wins, the others read it) the
/// shared certificate Secret, then writes its CA into the webhook configuration's `caBundle`.
pub async fn provision(client: &kube::Client, p: &Provision) -> Result<Pem> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &p.namespace);
    let kube_err = |what: &str| {
        let what = what.to_string();
        move |source| Error::Kube { what, source }
    };
    let existing = secrets
        .get_opt(&p.secret)
        .await
        .map_err(kube_err("read the certificate secret"))?;
    let secret = match existing {
        Some(s) => s,
        None => {
            let (ca, pem) = generate(&p.service, &p.namespace)?;
            let data = BTreeMap::from([
                (
                    "ca.crt".to_string(),
                    k8s_openapi::ByteString(ca.into_bytes()),
                ),
                (
                    "tls.crt".to_string(),
                    k8s_openapi::ByteString(pem.cert.into_bytes()),
                ),
                (
                    "tls.key".to_string(),
                    k8s_openapi::ByteString(pem.key.into_bytes()),
                ),
            ]);
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(p.secret.clone()),
                    namespace: Some(p.namespace.clone()),
                    labels: Some(BTreeMap::from([(
                        "app.kubernetes.io/component".into(),
                        "webhook".into(),
                    )])),
                    ..Default::default()
                },
                type_: Some("kubernetes.io/tls".into()),
                data: Some(data),
                ..Default::default()
            };
            match secrets.create(&PostParams::default(), &secret).await {
                Ok(created) => created,
                Err(kube::Error::Api(e)) if e.code == 409 => secrets
                    .get(&p.secret)
                    .await
                    .map_err(kube_err("read the certificate secret"))?,
                Err(source) => {
                    return Err(Error::Kube {
                        what: "create the certificate secret".into(),
                        source,
                    });
                }
            }
        }
    };
    let data = secret.data.unwrap_or_default();
    let field = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    let (Some(ca), Some(cert), Some(key)) = (field("ca.crt"), field("tls.crt"), field("tls.key"))
    else {
        return Err(Error::IncompleteSecret(format!(
            "{}/{}",
            p.namespace, p.secret
        )));
    };
    if let Some(name) = &p.webhook_configuration {
        patch_ca_bundle(client, name, &ca).await?;
    }
    Ok(Pem { cert, key })
}

/// Sets `caBundle` on every webhook of the configuration (replace with the read
/// resourceVersion: a concurrent writer makes this fail rather than be overwritten).
pub async fn patch_ca_bundle(client: &kube::Client, name: &str, ca_pem: &str) -> Result<()> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let bundle = k8s_openapi::ByteString(ca_pem.as_bytes().to_vec());
    for attempt in 0..5 {
        let mut config = api.get(name).await.map_err(|source| Error::Kube {
            what: format!("read validatingwebhookconfiguration {name}"),
            source,
        })?;
        let mut changed = false;
        for webhook in config.webhooks.iter_mut().flatten() {
            if webhook.client_config.ca_bundle.as_ref() != Some(&bundle) {
                webhook.client_config.ca_bundle = Some(bundle.clone());
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        match api.replace(name, &PostParams::default(), &config).await {
            Ok(_) => {
                tracing::info!(configuration = %name, ca = %base64::engine::general_purpose::STANDARD.encode(&Sha256::digest(ca_pem.as_bytes())[..8]), "caBundle updated");
                return Ok(());
            }
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 4 => continue,
            Err(source) => {
                return Err(Error::Kube {
                    what: format!("update validatingwebhookconfiguration {name}"),
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_load_and_reload_only_on_change() {
        let (ca, pem) = generate("stella-webhook", "stella-system").unwrap();
        assert!(ca.contains("BEGIN CERTIFICATE"));
        let store = CertStore::new(&pem).unwrap();
        assert!(!store.update(&pem).unwrap());
        let (_, other) = generate("stella-webhook", "stella-system").unwrap();
        assert!(store.update(&other).unwrap());
        let broken = Pem {
            cert: "garbage".into(),
            key: other.key.clone(),
        };
        assert!(store.update(&broken).is_err());
        assert!(
            !store.update(&other).unwrap(),
            "a failed update keeps the last good one"
        );
    }

    #[test]
    fn a_directory_without_both_files_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_dir(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join("tls.crt"), "x").unwrap();
        assert!(read_dir(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join("tls.key"), "y").unwrap();
        assert_eq!(read_dir(dir.path()).unwrap().unwrap().cert, "x");
    }
}
