//! Offline verification of transparency-log entries as Sigstore bundles carry them
//! (`verificationMaterial.tlogEntries[]`, Rekor v1 and v2): the entry's canonicalized body is a
//! leaf whose RFC 9162 inclusion proof must give the proof's root hash; the proof's checkpoint
//! (a C2SP signed note) must name that tree size and root; and the note must carry a signature
//! by the log that produced the entry (its `logId`), with that log's key from a
//! `trusted_root.json`. Witness cosignatures with unknown keys are ignored.
//!
//! Logging is Rekor v2's: [`entry_request`] is the body of `POST /api/v2/log/entries` for an
//! envelope, in the "hashedrekord over DSSE" encoding Rekor v2 clients use (the entry stores
//! SHA-256 of the envelope's PAE and its signature, rekor-v2-spec §6.1.4); [`check_logged`]
//! checks what the log answered, and [`bundle`] keeps envelope and entry together as a Sigstore
//! bundle v0.3. The HTTP exchange itself is the caller's (`stella-pipeline`).

use crate::keys::PublicKey;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Why a log entry does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RekorError {
    #[error("malformed {0}")]
    Malformed(String),
    #[error("the entry has no inclusion proof")]
    NoProof,
    #[error("the inclusion proof does not lead to the root hash")]
    Inclusion,
    #[error("the checkpoint is for another tree ({0})")]
    CheckpointMismatch(String),
    #[error("the entry's log {0} is not in the trusted root")]
    UnknownLog(String),
    #[error("no valid checkpoint signature by the entry's log")]
    CheckpointSignature,
    #[error("the entry is not about this envelope ({0})")]
    NotThisEnvelope(String),
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, RekorError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| RekorError::Malformed(format!("{what} (not base64)")))
}

/// The transparency logs of a Sigstore `trusted_root.json`, or one pinned log key.
#[derive(Clone, Debug, Default)]
pub struct TrustedLogs {
    logs: Vec<(Vec<u8>, PublicKey)>,
    /// A key trusted whatever log id an entry names (`--rekor-public-key`, Kyverno's
    /// `rekor.pubkey`): its checkpoint signature must still verify under it.
    pinned: Option<PublicKey>,
}

impl TrustedLogs {
    /// The `tlogs` of a trusted root (keys of types this verifies: P-256, Ed25519).
    pub fn from_trusted_root(json: &[u8]) -> Result<TrustedLogs, RekorError> {
        let root: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| RekorError::Malformed(format!("trusted root: {e}")))?;
        let mut logs = Vec::new();
        for log in root["tlogs"].as_array().into_iter().flatten() {
            let (Some(id), Some(raw)) = (
                log["logId"]["keyId"].as_str(),
                log["publicKey"]["rawBytes"].as_str(),
            ) else {
                continue;
            };
            if let Ok(key) = PublicKey::from_spki_der(&b64(raw, "log key")?) {
                logs.push((b64(id, "log id")?, key));
            }
        }
        Ok(TrustedLogs { logs, pinned: None })
    }

    /// One log's public key, trusted for any entry.
    pub fn pinned(key: PublicKey) -> TrustedLogs {
        TrustedLogs {
            logs: Vec::new(),
            pinned: Some(key),
        }
    }

    /// Whether no log is trusted (nothing a checkpoint signature could be verified with).
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.pinned.is_none()
    }

    fn key(&self, log_id: &[u8]) -> Option<&PublicKey> {
        self.logs
            .iter()
            .find(|(id, _)| id == log_id)
            .map(|(_, k)| k)
            .or(self.pinned.as_ref())
    }
}

/// RFC 9162 §2.1.3.2: the root an inclusion proof gives for `leaf` at `index` of `size`.
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let node = |left: &[u8], right: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(left);
        h.update(right);
        h.finalize().into()
    };
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in proof {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

/// The RFC 9162 leaf hash of `body`.
pub fn leaf_hash(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(body);
    h.finalize().into()
}

/// What a verified entry says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The entry's index (Rekor v1: across all its shards).
    pub log_index: u64,
    /// Its index in the tree the proof is about.
    pub tree_index: u64,
    pub tree_size: u64,
    /// The checkpoint's origin line (the log's name).
    pub origin: String,
}

fn number(value: &serde_json::Value, what: &str) -> Result<u64, RekorError> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_u64())
        .ok_or_else(|| RekorError::Malformed(what.into()))
}

fn hash32(text: &str, what: &str) -> Result<[u8; 32], RekorError> {
    b64(text, what)?
        .try_into()
        .map_err(|_| RekorError::Malformed(format!("{what} (not 32 bytes)")))
}

/// The inclusion check alone: whether the entry's body and proof give the proof's root.
pub fn check_inclusion(entry: &serde_json::Value) -> Result<(), RekorError> {
    let proof = entry
        .get("inclusionProof")
        .filter(|p| p.is_object())
        .ok_or(RekorError::NoProof)?;
    let body = b64(
        entry["canonicalizedBody"].as_str().unwrap_or_default(),
        "canonicalizedBody",
    )?;
    let hashes: Vec<[u8; 32]> = proof["hashes"]
        .as_array()
        .ok_or_else(|| RekorError::Malformed("inclusion proof hashes".into()))?
        .iter()
        .map(|h| hash32(h.as_str().unwrap_or_default(), "inclusion proof hash"))
        .collect::<Result<_, _>>()?;
    let root = hash32(proof["rootHash"].as_str().unwrap_or_default(), "rootHash")?;
    let computed = root_from_inclusion(
        number(&proof["logIndex"], "proof logIndex")?,
        number(&proof["treeSize"], "treeSize")?,
        leaf_hash(&body),
        &hashes,
    );
    if computed == Some(root) {
        Ok(())
    } else {
        Err(RekorError::Inclusion)
    }
}

/// Verifies one `tlogEntries[]` element against the trusted logs.
pub fn verify_entry(entry: &serde_json::Value, logs: &TrustedLogs) -> Result<Logged, RekorError> {
    check_inclusion(entry)?;
    let proof = &entry["inclusionProof"];
    let tree_size = number(&proof["treeSize"], "treeSize")?;
    let root = proof["rootHash"].as_str().unwrap_or_default();
    let note = proof["checkpoint"]["envelope"]
        .as_str()
        .ok_or_else(|| RekorError::Malformed("checkpoint".into()))?;
    let (text, signatures) = note
        .split_once("\n\n")
        .ok_or_else(|| RekorError::Malformed("checkpoint (no signature block)".into()))?;
    let mut lines = text.lines();
    let origin = lines.next().unwrap_or_default().to_string();
    let size = lines.next().and_then(|l| l.parse::<u64>().ok());
    let note_root = lines.next().unwrap_or_default();
    if size != Some(tree_size) || note_root != root {
        return Err(RekorError::CheckpointMismatch(format!(
            "checkpoint {size:?} {note_root}, proof {tree_size} {root}"
        )));
    }
    let log_id = b64(
        entry["logId"]["keyId"].as_str().unwrap_or_default(),
        "logId",
    )?;
    let key = logs
        .key(&log_id)
        .ok_or_else(|| RekorError::UnknownLog(entry["logId"]["keyId"].to_string()))?;
    let signed = format!("{text}\n");
    let by_the_log = signatures.lines().any(|line| {
        let Some(rest) = line.strip_prefix("— ") else {
            return false;
        };
        let Some((name, sig)) = rest.split_once(' ') else {
            return false;
        };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else {
            return false;
        };
        // Rekor v1 signs as its host name, its origin being "<host> - <tree id>".
        (name == origin || origin.starts_with(&format!("{name} ")))
            && sig.len() > 4
            && log_id.starts_with(&sig[..4])
            && key.verify(signed.as_bytes(), &sig[4..])
    });
    if !by_the_log {
        return Err(RekorError::CheckpointSignature);
    }
    Ok(Logged {
        log_index: number(&entry["logIndex"], "logIndex")?,
        tree_index: number(&proof["logIndex"], "proof logIndex")?,
        tree_size,
        origin,
    })
}

/// Rekor's name for a key's encoding and signature algorithm.
fn key_details(key: &PublicKey) -> &'static str {
    match key.algorithm() {
        crate::Algorithm::EcdsaP256 => "PKIX_ECDSA_P256_SHA_256",
        crate::Algorithm::Ed25519 => "PKIX_ED25519",
    }
}

fn b64e(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The SHA-256 of the envelope's PAE: what a hashedrekord entry of it stores.
fn pae_digest(envelope: &crate::Envelope) -> [u8; 32] {
    Sha256::digest(crate::dsse::pae(&envelope.payload_type, &envelope.payload)).into()
}

/// The `POST /api/v2/log/entries` body that logs `envelope`'s signature by `key`: a
/// `hashedRekordRequestV002` over SHA-256 of the envelope's PAE, with the key as verifier.
/// `None` when the envelope has no signature by `key`.
pub fn entry_request(envelope: &crate::Envelope, key: &PublicKey) -> Option<serde_json::Value> {
    let pae = crate::dsse::pae(&envelope.payload_type, &envelope.payload);
    let signature = envelope
        .signatures
        .iter()
        .find(|s| key.verify(&pae, &s.sig))?;
    Some(serde_json::json!({
        "hashedRekordRequestV002": {
            "digest": b64e(&pae_digest(envelope)),
            "signature": {
                "content": b64e(&signature.sig),
                "verifier": {
                    "publicKey": {"rawBytes": b64e(key.spki_der())},
                    "keyDetails": key_details(key),
                },
            },
        }
    }))
}

/// Whether a log entry is about `envelope`: a hashedrekord v0.0.2 body whose digest is the
/// SHA-256 of the envelope's PAE and whose signature is one of the envelope's.
pub fn check_binds(
    entry: &serde_json::Value,
    envelope: &crate::Envelope,
) -> Result<(), RekorError> {
    let kind = &entry["kindVersion"];
    if kind["kind"] != "hashedrekord" || kind["version"] != "0.0.2" {
        return Err(RekorError::NotThisEnvelope(format!(
            "a {} {} entry, not hashedrekord 0.0.2",
            kind["kind"], kind["version"]
        )));
    }
    let body = b64(
        entry["canonicalizedBody"].as_str().unwrap_or_default(),
        "canonicalizedBody",
    )?;
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| RekorError::Malformed(format!("canonicalizedBody: {e}")))?;
    let spec = &body["spec"]["hashedRekordV002"];
    let data = &spec["data"];
    if data["algorithm"] != "SHA2_256"
        || b64(data["digest"].as_str().unwrap_or_default(), "entry digest")? != pae_digest(envelope)
    {
        return Err(RekorError::NotThisEnvelope(
            "its digest is not that of the envelope's PAE".into(),
        ));
    }
    let sig = b64(
        spec["signature"]["content"].as_str().unwrap_or_default(),
        "entry signature",
    )?;
    if !envelope.signatures.iter().any(|s| s.sig == sig) {
        return Err(RekorError::NotThisEnvelope(
            "its signature is none of the envelope's".into(),
        ));
    }
    Ok(())
}

/// What the log answered to [`entry_request`], checked: the entry binds this envelope, its
/// inclusion proof leads to its checkpoint's root, and the checkpoint is signed by a log of
/// `logs`.
pub fn check_logged(
    entry: &serde_json::Value,
    envelope: &crate::Envelope,
    logs: &TrustedLogs,
) -> Result<Logged, RekorError> {
    check_binds(entry, envelope)?;
    verify_entry(entry, logs)
}

/// A Sigstore bundle v0.3 (`application/vnd.dev.sigstore.bundle.v0.3+json`): the envelope,
/// the signer's key as a hint (its key id), and the log entry.
pub fn bundle(
    envelope: &crate::Envelope,
    key: &PublicKey,
    entry: &serde_json::Value,
) -> serde_json::Value {
    let signatures: Vec<serde_json::Value> = envelope
        .signatures
        .iter()
        .map(|s| serde_json::json!({"keyid": s.keyid, "sig": b64e(&s.sig)}))
        .collect();
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "publicKey": {"hint": key.key_id()},
            "tlogEntries": [entry],
        },
        "dsseEnvelope": {
            "payload": envelope.payload_base64(),
            "payloadType": envelope.payload_type,
            "signatures": signatures,
        },
    })
}

/// A bundle's DSSE envelope (`dsseEnvelope`), when it has one.
pub fn bundle_envelope(bundle: &serde_json::Value) -> Option<Result<crate::Envelope, String>> {
    let envelope = bundle.get("dsseEnvelope")?;
    Some(
        serde_json::to_vec(envelope)
            .map_err(|e| e.to_string())
            .and_then(|bytes| crate::Envelope::from_json(&bytes).map_err(|e| e.to_string())),
    )
}
