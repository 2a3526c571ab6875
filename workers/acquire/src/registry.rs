//! The OCI distribution API: anonymous, bearer-token and basic auth, credentials from Docker
//! config files and Kubernetes `dockerconfigjson` Secrets, retries with backoff and jitter on
//! 429/5xx, HTTPS unless plain HTTP is asked for. Blobs land in a content-addressed directory
//! only after their digest verifies; layers are fetched lazily, so a scan whose layers are
//! cached downloads none.

use crate::image::{BlobSource, Image, Platform, parse_config};
use crate::manifest::{self, MAX_JSON_BLOB, Parsed};
use crate::reference::Reference;
use crate::{Digest, Error, Result, io_error};
use base64::Engine;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Registry credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Auth::IdentityToken(_) => write!(f, "IdentityToken(***)"),
        }
    }
}

/// Credentials by registry host.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    by_host: BTreeMap<String, Auth>,
}

impl Credentials {
    /// Loads `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`) and then `extra` files
    /// (Kubernetes `.dockerconfigjson` or legacy `.dockercfg`); later files win. Credential
    /// helpers are never executed.
    pub fn load(extra: &[PathBuf]) -> Result<Credentials> {
        let mut credentials = Credentials::default();
        let docker = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .map(|d| d.join("config.json"));
        if let Some(path) = docker.filter(|p| p.is_file()) {
            credentials.merge(
                &std::fs::read(&path).map_err(io_error(&path))?,
                &path.display().to_string(),
            )?;
        }
        for path in extra {
            credentials.merge(
                &std::fs::read(path).map_err(io_error(path))?,
                &path.display().to_string(),
            )?;
        }
        Ok(credentials)
    }

    /// Adds the entries of one config file.
    pub fn merge(&mut self, bytes: &[u8], origin: &str) -> Result<()> {
        let invalid = |reason: String| Error::Invalid {
            what: "credentials file",
            reason: format!("{origin}: {reason}"),
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        // `{"auths": {...}}` (config.json, .dockerconfigjson) or the legacy `{host: {...}}`.
        let auths = value
            .get("auths")
            .unwrap_or(&value)
            .as_object()
            .ok_or_else(|| invalid("not an object".into()))?;
        for (host, entry) in auths {
            let host = normalise_host(host);
            let text = |k: &str| {
                entry
                    .get(k)
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let auth = if let Some(token) = text("identitytoken") {
                Auth::IdentityToken(token)
            } else if let (Some(username), Some(password)) = (text("username"), text("password")) {
                Auth::Basic { username, password }
            } else if let Some(encoded) = text("auth") {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| invalid(format!("{host}: auth is not base64: {e}")))?;
                let decoded = String::from_utf8(decoded)
                    .map_err(|_| invalid(format!("{host}: auth is not UTF-8")))?;
                let (username, password) = decoded
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("{host}: auth is not user:password")))?;
                Auth::Basic {
                    username: username.into(),
                    password: password.into(),
                }
            } else {
                continue;
            };
            self.by_host.insert(host, auth);
        }
        Ok(())
    }

    /// Credentials for a registry host, if any.
    pub fn for_registry(&self, registry: &str) -> Option<&Auth> {
        self.by_host.get(&normalise_host(registry))
    }
}

/// `https://index.docker.io/v1/` → `registry-1.docker.io`; `https://host:5000/x` → `host:5000`.
fn normalise_host(host: &str) -> String {
    let host = host
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry.hub.docker.com" => {
            "registry-1.docker.io".into()
        }
        _ => host,
    }
}

/// Retry policy.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

/// A registry client.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    credentials: Credentials,
    plain_http: bool,
    retry: RetryPolicy,
    /// Bearer tokens by (registry, scope).
    tokens: Mutex<BTreeMap<(String, String), String>>,
    /// Registries that asked for Basic auth.
    basic: Mutex<std::collections::BTreeSet<String>>,
}

enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_string());
        rest = remaining.trim_start_matches(',').trim();
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

impl RegistryClient {
    pub fn new(credentials: Credentials, plain_http: bool) -> Result<RegistryClient> {
        // One process-wide TLS provider: ring (kube's too).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("stella/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Unreachable {
                registry: "-".into(),
                // The cause, such as rustls finding no CA certificates on the system.
                reason: format!("failed to set up the HTTP client: {}", error_chain(&e)),
            })?;
        Ok(RegistryClient {
            http,
            credentials,
            plain_http,
            retry: RetryPolicy::default(),
            tokens: Mutex::new(BTreeMap::new()),
            basic: Mutex::new(Default::default()),
        })
    }

    /// Changes the retry policy (tests use short delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> RegistryClient {
        self.retry = retry;
        self
    }

    fn url(&self, registry: &str, path: &str) -> String {
        format!(
            "{}://{registry}/v2/{path}",
            if self.plain_http { "http" } else { "https" }
        )
    }

    /// GET with auth, retries and backoff.
    async fn get(
        &self,
        reference: &Reference,
        path: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response> {
        let url = self.url(&reference.registry, path);
        self.send(reqwest::Method::GET, reference, &url, accept, None)
            .await
    }

    /// A request to `url` (of `reference`'s registry) with auth, retries and backoff: pull
    /// scope for GET and HEAD, push scope (`pull,push`) with a body.
    async fn send(
        &self,
        method: reqwest::Method,
        reference: &Reference,
        url: &str,
        accept: Option<&str>,
        body: Option<(bytes::Bytes, &str)>,
    ) -> Result<reqwest::Response> {
        let registry = &reference.registry;
        let push = !matches!(method, reqwest::Method::GET | reqwest::Method::HEAD);
        let scope = format!(
            "repository:{}:{}",
            reference.repository,
            if push { "pull,push" } else { "pull" }
        );
        let url = url.to_string();
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(accept) = accept {
                request = request.header(reqwest::header::ACCEPT, accept);
            }
            if let Some((bytes, content_type)) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, *content_type)
                    .body(bytes.clone());
            }
            let token = self
                .tokens
                .lock()
                .ok()
                .and_then(|t| t.get(&(registry.clone(), scope.clone())).cloned());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            } else if self.basic.lock().is_ok_and(|b| b.contains(registry))
                && let Some(Auth::Basic { username, password }) =
                    self.credentials.for_registry(registry)
            {
                request = request.basic_auth(username, Some(password));
            }
            let outcome = request.send().await;
            let response = match outcome {
                Ok(response) => response,
                Err(e) => {
                    attempt += 1;
                    if attempt >= self.retry.attempts {
                        return Err(Error::Unreachable {
                            registry: registry.clone(),
                            reason: error_chain(&e),
                        });
                    }
                    self.backoff(attempt, None).await;
                    continue;
                }
            };
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && !authenticated {
                authenticated = true;
                let challenge = response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok())
                    .and_then(parse_challenge);
                match challenge {
                    Some(Challenge::Basic) => {
                        if self.credentials.for_registry(registry).is_none() {
                            return Err(Error::Auth { registry: registry.clone(), reason: "the registry wants Basic auth and no credentials are configured".into() });
                        }
                        if let Ok(mut basic) = self.basic.lock() {
                            basic.insert(registry.clone());
                        }
                    }
                    Some(Challenge::Bearer {
                        realm,
                        service,
                        scope: challenged,
                    }) => {
                        let token = self
                            .fetch_token(
                                registry,
                                &realm,
                                service.as_deref(),
                                challenged.as_deref().unwrap_or(&scope),
                            )
                            .await?;
                        if let Ok(mut tokens) = self.tokens.lock() {
                            tokens.insert((registry.clone(), scope.clone()), token);
                        }
                    }
                    None => {
                        return Err(Error::Auth {
                            registry: registry.clone(),
                            reason: "401 without a usable WWW-Authenticate challenge".into(),
                        });
                    }
                }
                continue;
            }
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                return Err(Error::Auth {
                    registry: registry.clone(),
                    reason: format!("{status} for {url}"),
                });
            }
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                attempt += 1;
                if attempt >= self.retry.attempts {
                    return Err(Error::Registry {
                        url,
                        status: status.as_u16(),
                        message: body_snippet(response).await,
                    });
                }
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|h| h.to_str().ok())
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(Duration::from_secs);
                self.backoff(attempt, retry_after).await;
                continue;
            }
            if !status.is_success() {
                return Err(Error::Registry {
                    url,
                    status: status.as_u16(),
                    message: body_snippet(response).await,
                });
            }
            return Ok(response);
        }
    }

    async fn backoff(&self, attempt: u32, retry_after: Option<Duration>) {
        let exponential = self.retry.base.saturating_mul(1 << attempt.min(16));
        let wait = retry_after.unwrap_or(exponential).min(self.retry.max);
        // Full jitter from the clock's sub-second noise: spreads retries of concurrent clients.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = wait.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0);
        tokio::time::sleep(jitter).await;
    }

    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String> {
        if !(realm.starts_with("https://") || (self.plain_http && realm.starts_with("http://"))) {
            return Err(Error::Auth {
                registry: registry.into(),
                reason: format!("token realm {realm} is not https"),
            });
        }
        let mut query = vec![("scope", scope.to_string())];
        if let Some(service) = service {
            query.push(("service", service.to_string()));
        }
        let basic = match self.credentials.for_registry(registry) {
            Some(Auth::Basic { username, password }) => Some((username, password)),
            Some(Auth::IdentityToken(token)) => {
                query.push(("refresh_token", token.clone()));
                None
            }
            None => None,
        };
        let url = format!(
            "{realm}{}{}",
            if realm.contains('?') { "&" } else { "?" },
            encode_query(&query)
        );
        let mut request = self.http.get(&url);
        if let Some((username, password)) = basic {
            request = request.basic_auth(username, Some(password));
        }
        let response = request.send().await.map_err(|e| Error::Unreachable {
            registry: registry.into(),
            reason: error_chain(&e),
        })?;
        if !response.status().is_success() {
            return Err(Error::Auth {
                registry: registry.into(),
                reason: format!("token endpoint answered {}", response.status()),
            });
        }
        let bytes = read_capped(response, 1 << 20).await?;
        let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Error::Auth {
            registry: registry.into(),
            reason: format!("token response: {e}"),
        })?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| Error::Auth {
                registry: registry.into(),
                reason: "token response holds no token".into(),
            })
    }

    /// Fetches a manifest or index: (bytes, media type, digest of the bytes).
    pub async fn manifest(
        &self,
        reference: &Reference,
        reference_or_digest: &str,
    ) -> Result<(Vec<u8>, Option<String>, Digest)> {
        let response = self
            .get(
                reference,
                &format!("{}/manifests/{reference_or_digest}", reference.repository),
                Some(ACCEPT),
            )
            .await?;
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let bytes = read_capped(response, MAX_JSON_BLOB).await?;
        let digest = Digest::of(&bytes);
        if let Ok(expected) = Digest::parse(reference_or_digest)
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        Ok((bytes, media_type, digest))
    }

    /// Uploads `bytes` as a blob of `reference`'s repository (nothing when it is there
    /// already): its digest.
    pub async fn push_blob(&self, reference: &Reference, bytes: bytes::Bytes) -> Result<Digest> {
        let digest = Digest::of(&bytes);
        let repository = &reference.repository;
        let blob = self.url(&reference.registry, &format!("{repository}/blobs/{digest}"));
        match self
            .send(reqwest::Method::HEAD, reference, &blob, None, None)
            .await
        {
            Ok(_) => return Ok(digest),
            Err(Error::Registry { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
        let uploads = self.url(&reference.registry, &format!("{repository}/blobs/uploads/"));
        let started = self
            .send(
                reqwest::Method::POST,
                reference,
                &uploads,
                None,
                Some((bytes::Bytes::new(), "application/octet-stream")),
            )
            .await?;
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| Error::Registry {
                url: uploads.clone(),
                status: started.status().as_u16(),
                message: "no Location for the upload".into(),
            })?;
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!(
                "{}://{}{location}",
                if self.plain_http { "http" } else { "https" },
                reference.registry
            )
        };
        let put = format!(
            "{location}{}digest={digest}",
            if location.contains('?') { "&" } else { "?" }
        );
        self.send(
            reqwest::Method::PUT,
            reference,
            &put,
            None,
            Some((bytes, "application/octet-stream")),
        )
        .await?;
        Ok(digest)
    }

    /// Puts a manifest (or index) under `tag_or_digest`: its digest, and whether the
    /// registry processed its `subject` (the `OCI-Subject` header of the Referrers API).
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        tag_or_digest: &str,
        bytes: bytes::Bytes,
        media_type: &str,
    ) -> Result<(Digest, bool)> {
        let digest = Digest::of(&bytes);
        let url = self.url(
            &reference.registry,
            &format!("{}/manifests/{tag_or_digest}", reference.repository),
        );
        let response = self
            .send(
                reqwest::Method::PUT,
                reference,
                &url,
                None,
                Some((bytes, media_type)),
            )
            .await?;
        let subject = response.headers().contains_key("oci-subject");
        Ok((digest, subject))
    }

    /// The Referrers API's index of the manifests whose `subject` is `digest`; `None` when
    /// the registry has no Referrers API (404).
    pub async fn referrers(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>> {
        let path = format!("{}/referrers/{digest}", reference.repository);
        match self
            .get(
                reference,
                &path,
                Some("application/vnd.oci.image.index.v1+json"),
            )
            .await
        {
            Ok(response) => {
                let is_index = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|h| h.to_str().ok())
                    .is_some_and(|t| t.starts_with("application/vnd.oci.image.index.v1+json"));
                let bytes = read_capped(response, MAX_JSON_BLOB).await?;
                Ok(is_index.then_some(bytes))
            }
            Err(Error::Registry { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The manifest at `tag`, `None` when there is none (404).
    pub async fn manifest_opt(
        &self,
        reference: &Reference,
        tag: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>, Digest)>> {
        match self.manifest(reference, tag).await {
            Ok(found) => Ok(Some(found)),
            Err(Error::Registry { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A blob's bytes (at most `max_size`), verified against its digest.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        max_size: u64,
    ) -> Result<Vec<u8>> {
        let response = self
            .get(
                reference,
                &format!("{}/blobs/{digest}", reference.repository),
                None,
            )
            .await?;
        let bytes = read_capped(response, max_size).await?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Downloads a blob into `dir/sha256/<hex>` (if not already there), verifying its digest
    /// and refusing more than `max_size` bytes.
    pub async fn download(
        &self,
        reference: &Reference,
        digest: &Digest,
        max_size: u64,
        dir: &Path,
    ) -> Result<PathBuf> {
        let target = dir.join("sha256").join(digest.hex());
        if target.is_file() {
            return Ok(target);
        }
        let parent = dir.join("sha256");
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(io_error(&parent))?;
        let mut response = self
            .get(
                reference,
                &format!("{}/blobs/{digest}", reference.repository),
                None,
            )
            .await?;
        let partial = parent.join(format!(".{}.partial-{}", digest.hex(), std::process::id()));
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(io_error(&partial))?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let result: Result<()> = async {
            while let Some(chunk) = response.chunk().await.map_err(|e| Error::Unreachable {
                registry: reference.registry.clone(),
                reason: error_chain(&e),
            })? {
                written += chunk.len() as u64;
                if written > max_size {
                    return Err(Error::SizeMismatch {
                        digest: digest.clone(),
                        declared: max_size,
                        actual: written,
                    });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(io_error(&partial))?;
            }
            file.flush().await.map_err(io_error(&partial))?;
            let actual = Digest::from_hasher(hasher);
            if &actual != digest {
                return Err(Error::DigestMismatch {
                    expected: digest.clone(),
                    actual,
                });
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(io_error(&target))?;
        Ok(target)
    }

    /// The digest of the image manifest `reference` names for `platform` (an index is
    /// followed to the platform's manifest): the identity `open` gives the same image, found
    /// without downloading any blob.
    pub async fn resolve(&self, reference: &Reference, platform: &Platform) -> Result<Digest> {
        let (mut bytes, mut media_type, mut digest) =
            self.manifest(reference, &reference.manifest_ref()).await?;
        for _ in 0..4 {
            match manifest::parse(&bytes, media_type.as_deref())? {
                Parsed::Index(index) => {
                    let chosen = manifest::select(&index, platform)?.clone();
                    (bytes, media_type, digest) =
                        self.manifest(reference, chosen.digest.as_str()).await?;
                    if media_type.is_none() && !chosen.media_type.is_empty() {
                        media_type = Some(chosen.media_type);
                    }
                }
                Parsed::Manifest(_) => return Ok(digest),
            }
        }
        Err(Error::Invalid {
            what: "manifest",
            reason: "indexes nested more than 4 deep".into(),
        })
    }

    /// Resolves `reference` to one image for `platform`; layer blobs are fetched on demand
    /// into `blob_dir` from the runtime behind `handle`.
    pub async fn open(
        self: Arc<Self>,
        reference: &Reference,
        platform: &Platform,
        blob_dir: &Path,
        handle: tokio::runtime::Handle,
    ) -> Result<Image> {
        let (mut bytes, mut media_type, mut digest) =
            self.manifest(reference, &reference.manifest_ref()).await?;
        for _ in 0..4 {
            match manifest::parse(&bytes, media_type.as_deref())? {
                Parsed::Index(index) => {
                    let chosen = manifest::select(&index, platform)?.clone();
                    (bytes, media_type, digest) =
                        self.manifest(reference, chosen.digest.as_str()).await?;
                    if media_type.is_none() && !chosen.media_type.is_empty() {
                        media_type = Some(chosen.media_type);
                    }
                }
                Parsed::Manifest(m) => {
                    let config_path = self
                        .download(reference, &m.config.digest, MAX_JSON_BLOB, blob_dir)
                        .await?;
                    let config_bytes =
                        std::fs::read(&config_path).map_err(io_error(&config_path))?;
                    let config = parse_config(&config_bytes)?;
                    let layers = Image::layers_from(
                        m.layers
                            .iter()
                            .map(|l| (l.digest.clone(), l.media_type.clone(), l.size as u64)),
                        &config,
                    )?;
                    let sizes = layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
                    let tags = reference.tag.iter().cloned().collect();
                    return Ok(Image {
                        source: reference.to_string(),
                        manifest_digest: Some(digest),
                        config_digest: m.config.digest.clone(),
                        config,
                        config_bytes,
                        layers,
                        tags,
                        blobs: Box::new(RegistryBlobs {
                            client: self.clone(),
                            reference: reference.clone(),
                            dir: blob_dir.to_path_buf(),
                            sizes,
                            handle,
                        }),
                    });
                }
            }
        }
        Err(Error::Invalid {
            what: "manifest",
            reason: "indexes nested more than 4 deep".into(),
        })
    }
}

/// Layer blobs fetched on first open.
#[derive(Debug)]
struct RegistryBlobs {
    client: Arc<RegistryClient>,
    reference: Reference,
    dir: PathBuf,
    sizes: BTreeMap<Digest, u64>,
    handle: tokio::runtime::Handle,
}

impl BlobSource for RegistryBlobs {
    fn open(&self, digest: &Digest) -> Result<(Box<dyn Read + Send>, u64)> {
        let max = self
            .sizes
            .get(digest)
            .copied()
            .filter(|s| *s > 0)
            .unwrap_or(64 << 30);
        let path =
            self.handle.block_on(
                self.client
                    .download(&self.reference, digest, max, &self.dir),
            )?;
        let file = std::fs::File::open(&path).map_err(io_error(&path))?;
        let size = file.metadata().map_err(io_error(&path))?.len();
        Ok((Box::new(file), size))
    }
}

async fn read_capped(mut response: reqwest::Response, cap: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Error::Unreachable {
        registry: "-".into(),
        reason: error_chain(&e),
    })? {
        if (bytes.len() + chunk.len()) as u64 > cap {
            return Err(Error::Invalid {
                what: "manifest",
                reason: format!("larger than {cap} bytes"),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn body_snippet(response: reqwest::Response) -> String {
    read_capped(response, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
        .unwrap_or_default()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

fn encode_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let encoded: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let Some(Challenge::Bearer {
            realm,
            service,
            scope,
        }) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#,
        )
        else {
            panic!()
        };
        assert_eq!(
            (realm.as_str(), service.as_deref(), scope.as_deref()),
            (
                "https://auth.example.com/token",
                Some("registry.example.com"),
                Some("repository:a/b:pull")
            )
        );
        assert!(matches!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        ));
        assert!(parse_challenge("Negotiate").is_none());
        assert!(parse_challenge(r#"Bearer service="x""#).is_none());
    }

    #[test]
    fn credentials_from_docker_and_kubernetes_files() {
        let mut c = Credentials::default();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with:colons");
        c.merge(format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"username":"bob","password":"pw"}},"ghcr.io":{{"identitytoken":"tok"}}}}}}"#).as_bytes(), "t").unwrap();
        assert_eq!(
            c.for_registry("registry-1.docker.io"),
            Some(&Auth::Basic {
                username: "alice".into(),
                password: "s3cret:with:colons".into()
            })
        );
        assert_eq!(
            c.for_registry("127.0.0.1:5000"),
            Some(&Auth::Basic {
                username: "bob".into(),
                password: "pw".into()
            })
        );
        assert_eq!(
            c.for_registry("GHCR.io"),
            Some(&Auth::IdentityToken("tok".into()))
        );
        // Legacy .dockercfg form.
        c.merge(br#"{"quay.io":{"auth":"dTpw"}}"#, "legacy")
            .unwrap();
        assert_eq!(
            c.for_registry("quay.io"),
            Some(&Auth::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        assert!(c.merge(b"[]", "x").is_err());
        assert!(
            c.merge(br#"{"auths":{"h":{"auth":"!!!"}}}"#, "x")
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
        assert!(
            !format!("{:?}", c).contains("s3cret"),
            "secrets never reach Debug output"
        );
    }

    /// A loopback HTTP server answering with `responses` in turn (the last one repeats),
    /// counting requests.
    fn server(responses: Vec<String>) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let response = &responses[n.min(responses.len() - 1)];
                let mut stream = stream;
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (port, count)
    }

    fn quick_client() -> RegistryClient {
        RegistryClient::new(Credentials::default(), true)
            .unwrap()
            .with_retry(RetryPolicy {
                attempts: 3,
                base: Duration::from_millis(1),
                max: Duration::from_millis(5),
            })
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn server_errors_are_retried_then_reported() {
        let (port, count) = server(vec!["HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy".into()]);
        let reference = Reference::parse(&format!("127.0.0.1:{port}/a/b:1")).unwrap();
        let error = quick_client().manifest(&reference, "1").await.unwrap_err();
        assert!(
            matches!(error, Error::Registry { status: 503, .. }),
            "{error}"
        );
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "three attempts"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rate_limits_are_waited_out_and_digests_checked() {
        let body = r#"{"schemaVersion":2,"manifests":[]}"#;
        let ok = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let limited = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string();
        let (port, count) = server(vec![limited, ok]);
        let reference = Reference::parse(&format!("127.0.0.1:{port}/a/b:1")).unwrap();
        let client = quick_client();
        let (bytes, media_type, digest) = client.manifest(&reference, "1").await.unwrap();
        assert_eq!(bytes, body.as_bytes());
        assert_eq!(
            media_type.as_deref(),
            Some("application/vnd.oci.image.index.v1+json")
        );
        assert_eq!(digest, Digest::of(body.as_bytes()));
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Asked by digest, a body with another digest is refused.
        let wrong = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(
            client.manifest(&reference, &wrong).await,
            Err(Error::DigestMismatch { .. })
        ));
    }
}
