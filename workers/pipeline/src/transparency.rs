//! Transparency logging, optional and off by default: each signed envelope posted to a Rekor
//! v2 log (`POST /api/v2/log/entries`, the "hashedrekord over DSSE" entry of
//! [`stella_attest::rekor::entry_request`]), the answer checked — the entry binds this
//! envelope, its inclusion proof leads to its checkpoint, and with a trusted log key the
//! checkpoint's signature — and kept as a Sigstore bundle v0.3 beside the envelope
//! (`attest/<hex>.sigstore.json`), which `stella attest verify-log` verifies offline.

use crate::attest::ATTESTATION_KIND;
use stella_attest::rekor::{RekorError, TrustedLogs};
use stella_attest::{Envelope, PublicKey};

/// The object-store kind of stored bundles.
pub const BUNDLE_KIND: &str = "tlog-bundle";

/// Most bytes of a log's answer read.
const MAX_ANSWER: usize = 4 << 20;

/// Why an envelope is not logged.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} refused the entry: HTTP {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url} answered with an entry that does not verify: {source}")]
    Invalid { url: String, source: RekorError },
    #[error("the envelope has no signature by key {0}")]
    NotSigned(String),
    #[error(transparent)]
    Storage(#[from] crate::Error),
}

impl LogError {
    /// The CamelCase reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            LogError::Unreachable { .. } => "RekorUnreachable",
            LogError::Refused { .. } => "RekorRefused",
            LogError::Invalid { .. } | LogError::NotSigned(_) => "RekorInvalid",
            LogError::Storage(_) => "StorageUnavailable",
        }
    }
}

/// A Rekor v2 log and what its answers are checked against.
#[derive(Clone, Debug)]
pub struct Log {
    url: String,
    http: reqwest::Client,
    trusted: TrustedLogs,
}

/// One logged envelope.
#[derive(Clone, Debug)]
pub struct Logged {
    pub log_index: u64,
    /// The checkpoint's origin (the log's name).
    pub origin: String,
    /// Whether the checkpoint's signature was verified with a trusted log key (without one,
    /// only the binding and the inclusion proof are).
    pub checkpoint_verified: bool,
    /// The Sigstore bundle (JSON).
    pub bundle: Vec<u8>,
}

impl Log {
    /// A log at `url` (`https://…`; `http://` for one on a trusted network), its answers
    /// checked against `trusted` (a trusted root's logs or a pinned key; empty: unverified
    /// checkpoints).
    pub fn new(url: &str, trusted: TrustedLogs) -> Result<Log, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!("{url}: not an http(s) URL"));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("stella/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("failed to set up the HTTP client: {e}"))?;
        Ok(Log {
            url: url.trim_end_matches('/').to_string(),
            http,
            trusted,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Logs `envelope`'s signature by `key` and checks the answer. Retries twice (after 1 s
    /// and 2 s) when the log cannot be reached or answers 429 / 5xx.
    pub async fn log(&self, envelope: &Envelope, key: &PublicKey) -> Result<Logged, LogError> {
        let request = stella_attest::rekor::entry_request(envelope, key)
            .ok_or_else(|| LogError::NotSigned(key.key_id().to_string()))?;
        let endpoint = format!("{}/api/v2/log/entries", self.url);
        let mut attempt = 0;
        let answer = loop {
            attempt += 1;
            let retry = attempt < 3;
            match self.post(&endpoint, &request).await {
                Err(e @ LogError::Unreachable { .. }) if retry => tracing::debug!("{e}; retrying"),
                Err(LogError::Refused { status, .. })
                    if retry && (status == 429 || status >= 500) => {}
                other => break other?,
            }
            tokio::time::sleep(std::time::Duration::from_secs(attempt)).await;
        };
        let invalid = |source| LogError::Invalid {
            url: self.url.clone(),
            source,
        };
        stella_attest::rekor::check_binds(&answer, envelope).map_err(invalid)?;
        let (log_index, origin, checkpoint_verified) = if self.trusted.is_empty() {
            stella_attest::rekor::check_inclusion(&answer).map_err(invalid)?;
            let index = answer["logIndex"]
                .as_str()
                .and_then(|i| i.parse().ok())
                .or_else(|| answer["logIndex"].as_u64())
                .ok_or_else(|| invalid(RekorError::Malformed("logIndex".into())))?;
            let note = answer["inclusionProof"]["checkpoint"]["envelope"]
                .as_str()
                .unwrap_or_default();
            (
                index,
                note.lines().next().unwrap_or_default().to_string(),
                false,
            )
        } else {
            let logged =
                stella_attest::rekor::verify_entry(&answer, &self.trusted).map_err(invalid)?;
            (logged.log_index, logged.origin, true)
        };
        let bundle = stella_attest::rekor::bundle(envelope, key, &answer);
        Ok(Logged {
            log_index,
            origin,
            checkpoint_verified,
            bundle: stella_sbom::canonical::to_string_pretty(&bundle).into_bytes(),
        })
    }

    async fn post(
        &self,
        endpoint: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, LogError> {
        let unreachable = |e: reqwest::Error| LogError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        };
        let response = self
            .http
            .post(endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(request).unwrap_or_default())
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(LogError::Refused {
                    url: self.url.clone(),
                    status,
                    message: format!("an answer larger than {MAX_ANSWER} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(LogError::Refused {
                url: self.url.clone(),
                status,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| LogError::Invalid {
            url: self.url.clone(),
            source: RekorError::Malformed(format!("answer: {e}")),
        })
    }
}

/// The bundle key of an envelope key: `attest/<hex>.dsse.json` → `attest/<hex>.sigstore.json`.
pub fn bundle_key(envelope_key: &str) -> String {
    match envelope_key.strip_suffix(".dsse.json") {
        Some(stem) => format!("{stem}.sigstore.json"),
        None => format!("{envelope_key}.sigstore.json"),
    }
}

/// An envelope of the image logged before or now.
#[derive(Clone, Debug)]
pub struct LoggedEnvelope {
    /// `attest/<hex>.dsse.json`.
    pub envelope_key: String,
    /// `attest/<hex>.sigstore.json`.
    pub bundle_key: String,
    /// What the envelope attests (`sbom`, `vulns`, `report`, `proof`).
    pub kind: Option<String>,
    /// Its log index (read from the bundle for envelopes logged before).
    pub log_index: Option<u64>,
    /// Whether this run logged it.
    pub logged_now: bool,
    pub checkpoint_verified: bool,
    /// The Sigstore bundle (JSON).
    pub bundle: Vec<u8>,
}

/// Logs every stored envelope of the image signed by `key` that has no bundle yet
/// (`artifacts`: the image's catalog rows), and stores each bundle as a `tlog-bundle` artifact
/// at [`bundle_key`]. Returns the logged envelopes, before and now. Stops at the first
/// failure: what was logged before it stays logged.
pub async fn log_stored(
    store: &stella_store::Store,
    image_digest: &str,
    artifacts: &[stella_store::ArtifactRow],
    log: &Log,
    key: &PublicKey,
) -> Result<Vec<LoggedEnvelope>, LogError> {
    let mut out = Vec::new();
    for row in artifacts.iter().filter(|a| a.kind == ATTESTATION_KIND) {
        let bundle_key = bundle_key(&row.key);
        if let Some(existing) = artifacts.iter().find(|a| a.key == bundle_key) {
            let bundle = store
                .get(&existing.key)
                .await
                .map_err(crate::Error::storage("failed to read a stored bundle"))?
                .map(|b| b.to_vec())
                .unwrap_or_default();
            let index = serde_json::from_slice::<serde_json::Value>(&bundle)
                .ok()
                .and_then(|b| {
                    let index = &b["verificationMaterial"]["tlogEntries"][0]["logIndex"];
                    index.as_str().and_then(|i| i.parse().ok())
                });
            out.push(LoggedEnvelope {
                envelope_key: row.key.clone(),
                bundle_key,
                kind: row.view.clone(),
                log_index: index,
                logged_now: false,
                checkpoint_verified: !log.trusted.is_empty(),
                bundle,
            });
            continue;
        }
        let bytes = store
            .get(&row.key)
            .await
            .map_err(crate::Error::storage("failed to read a stored envelope"))?
            .ok_or_else(|| {
                crate::Error::Internal(format!("{} is recorded but not stored", row.key))
            })?;
        let envelope = Envelope::from_json(&bytes).map_err(|e| {
            crate::Error::Internal(format!(
                "{}: a stored envelope that does not parse: {e}",
                row.key
            ))
        })?;
        // Signed by another key (before a rotation): that key's to log.
        if stella_attest::rekor::entry_request(&envelope, key).is_none() {
            continue;
        }
        let logged = log.log(&envelope, key).await?;
        store
            .store_artifact(
                image_digest,
                stella_store::Artifact {
                    key: bundle_key.clone(),
                    kind: BUNDLE_KIND,
                    format: "sigstore-bundle-json",
                    view: None,
                    bytes: logged.bundle.clone(),
                },
            )
            .await
            .map_err(crate::Error::storage(
                "failed to store a transparency-log bundle",
            ))?;
        out.push(LoggedEnvelope {
            envelope_key: row.key.clone(),
            bundle_key,
            kind: row.view.clone(),
            log_index: Some(logged.log_index),
            logged_now: true,
            checkpoint_verified: logged.checkpoint_verified,
            bundle: logged.bundle,
        });
    }
    Ok(out)
}
