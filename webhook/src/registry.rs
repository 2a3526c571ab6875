//! The registry side of a decision: tag → digest (with the pod's pull secrets) and the cosign
//! signatures of a digest, both behind bounded caches. An image pinned by digest, or found in
//! the cache, never reaches the registry.

use crate::cache::Cache;
use crate::metrics::Metrics;
use crate::signature::{self, Signed};
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stella_acquire::registry::RetryPolicy;
use stella_acquire::{Credentials, Digest, Platform, Reference, RegistryClient};

/// Why a digest or the signatures of an image could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad reference or digest, or a failed registry call.
    #[error(transparent)]
    Acquire(#[from] stella_acquire::Error),
    #[error("signature manifest: {0}")]
    SignatureManifest(#[source] serde_json::Error),
    #[error("{}: {source}", path.display())]
    ReadPayload {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The pull secrets of the reviewed object, read from the API server only when a registry
/// call is actually made (once per request).
pub struct PullSecrets {
    pub client: Option<kube::Client>,
    pub namespace: String,
    pub names: Vec<String>,
    loaded: tokio::sync::OnceCell<Credentials>,
}

impl std::fmt::Debug for PullSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullSecrets")
            .field("namespace", &self.namespace)
            .field("names", &self.names)
            .finish()
    }
}

impl PullSecrets {
    pub fn new(client: Option<kube::Client>, namespace: String, names: Vec<String>) -> Self {
        PullSecrets {
            client,
            namespace,
            names,
            loaded: tokio::sync::OnceCell::new(),
        }
    }

    /// The merged `.dockerconfigjson` of every readable secret; unreadable ones are skipped
    /// (the kubelet would fail the pull, and the registry call says so).
    async fn credentials(&self) -> &Credentials {
        self.loaded
            .get_or_init(|| async {
                let mut credentials = Credentials::default();
                let Some(client) = &self.client else {
                    return credentials;
                };
                let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), &self.namespace);
                for name in self.names.iter().take(16) {
                    match api.get_opt(name).await {
                        Ok(Some(secret)) => {
                            let data = secret.data.unwrap_or_default();
                            let bytes = data
                                .get(".dockerconfigjson")
                                .or_else(|| data.get(".dockercfg"));
                            if let Some(bytes) = bytes
                                && let Err(error) = credentials
                                    .merge(&bytes.0, &format!("secret {}/{name}", self.namespace))
                            {
                                tracing::warn!(%error, secret = %name, "unusable pull secret");
                            }
                        }
                        Ok(None) => tracing::debug!(secret = %name, "pull secret not found"),
                        Err(error) => {
                            tracing::warn!(%error, secret = %name, "failed to read pull secret")
                        }
                    }
                }
                credentials
            })
            .await
    }
}

/// Registry access with caches.
#[derive(Debug)]
pub struct Registries {
    /// Registries (`host[:port]`) reached over plain HTTP.
    insecure: Vec<String>,
    platform: Platform,
    digests: Cache<String, String>,
    signatures: Cache<String, Vec<Signed>>,
    signature_ttl: Duration,
    /// Clients by registry and pull secrets: building one loads the TLS roots, and a kept
    /// client keeps its connections and bearer tokens.
    clients: Cache<String, Arc<RegistryClient>>,
    blob_dir: PathBuf,
    metrics: Arc<Metrics>,
}

/// How long a client (and the credentials it was built with) is reused.
const CLIENT_TTL: Duration = Duration::from_secs(300);

impl Registries {
    pub fn new(
        insecure: Vec<String>,
        platform: Platform,
        capacity: usize,
        signature_ttl: Duration,
        blob_dir: PathBuf,
        metrics: Arc<Metrics>,
    ) -> Self {
        Registries {
            insecure,
            platform,
            digests: Cache::new(capacity),
            signatures: Cache::new(capacity),
            signature_ttl,
            clients: Cache::new(256),
            blob_dir,
            metrics,
        }
    }

    async fn client(
        &self,
        reference: &Reference,
        secrets: &PullSecrets,
    ) -> Result<Arc<RegistryClient>> {
        let key = format!(
            "{}|{}|{}",
            reference.registry,
            secrets.namespace,
            secrets.names.join(",")
        );
        if let Some(client) = self.clients.get(&key, CLIENT_TTL) {
            return Ok(client);
        }
        let plain = self.insecure.iter().any(|r| r == &reference.registry);
        let client = Arc::new(
            RegistryClient::new(secrets.credentials().await.clone(), plain)?.with_retry(
                RetryPolicy {
                    attempts: 2,
                    base: Duration::from_millis(50),
                    max: Duration::from_millis(250),
                },
            ),
        );
        self.clients.insert(key, client.clone());
        Ok(client)
    }

    /// `sha256:…` of `image`: from the reference itself, the cache (younger than `max_age`),
    /// or the registry.
    pub async fn resolve(
        &self,
        image: &str,
        max_age: Duration,
        secrets: &PullSecrets,
    ) -> Result<String> {
        let reference = Reference::parse(image)?;
        if let Some(digest) = &reference.digest {
            return Ok(digest.to_string());
        }
        if let Some(digest) = self.digests.get(&image.to_string(), max_age) {
            self.metrics.cache("digest", true);
            return Ok(digest);
        }
        self.metrics.cache("digest", false);
        self.metrics.registry_call("resolve");
        let client = self.client(&reference, secrets).await?;
        let digest = client
            .resolve(&reference, &self.platform)
            .await?
            .to_string();
        self.digests.insert(image.to_string(), digest.clone());
        Ok(digest)
    }

    /// The cosign signatures of `image`'s `digest` (empty when there are none).
    pub async fn signatures(
        &self,
        image: &str,
        digest: &str,
        secrets: &PullSecrets,
    ) -> Result<Vec<Signed>> {
        let key = format!("{image}@{digest}");
        if let Some(found) = self.signatures.get(&key, self.signature_ttl) {
            self.metrics.cache("signature", true);
            return Ok(found);
        }
        self.metrics.cache("signature", false);
        self.metrics.registry_call("signatures");
        let mut reference = Reference::parse(image)?;
        let digest = Digest::parse(digest)?;
        let tag = format!("sha256-{}.sig", digest.hex());
        reference.tag = Some(tag.clone());
        reference.digest = None;
        let client = self.client(&reference, secrets).await?;
        let manifest = match client.manifest(&reference, &tag).await {
            Ok((bytes, _, _)) => bytes,
            Err(stella_acquire::Error::Registry { status: 404, .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut found = Vec::new();
        if !manifest.is_empty() {
            let parsed: serde_json::Value =
                serde_json::from_slice(&manifest).map_err(Error::SignatureManifest)?;
            let layers = parsed
                .get("layers")
                .and_then(|l| l.as_array())
                .cloned()
                .unwrap_or_default();
            for layer in layers.iter().take(signature::MAX_SIGNATURES) {
                let media = layer
                    .get("mediaType")
                    .and_then(|m| m.as_str())
                    .unwrap_or("");
                let sig = layer
                    .pointer(&format!(
                        "/annotations/{}",
                        signature::SIGNATURE_ANNOTATION.replace('/', "~1")
                    ))
                    .and_then(|s| s.as_str());
                let blob = layer
                    .get("digest")
                    .and_then(|d| d.as_str())
                    .and_then(|d| Digest::parse(d).ok());
                let (Some(sig), Some(blob)) = (sig, blob) else {
                    continue;
                };
                if media != signature::PAYLOAD_MEDIA_TYPE {
                    continue;
                }
                let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(sig.trim())
                else {
                    continue;
                };
                let path = client
                    .download(&reference, &blob, signature::MAX_PAYLOAD, &self.blob_dir)
                    .await?;
                let payload =
                    tokio::fs::read(&path)
                        .await
                        .map_err(|source| Error::ReadPayload {
                            path: path.clone(),
                            source,
                        })?;
                found.push(Signed { payload, signature });
            }
        }
        self.signatures.insert(key, found.clone());
        Ok(found)
    }
}
