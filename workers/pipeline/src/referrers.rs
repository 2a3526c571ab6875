//! Attestations attached to the image they are about, in its registry: one OCI 1.1 artifact
//! manifest per DSSE envelope (artifact type `application/vnd.in-toto+json`, the envelope as
//! its one layer annotated with its predicate type, `subject` = the image manifest). Where the
//! registry has no Referrers API (it does not answer `OCI-Subject`), the referrers tag schema:
//! the index at tag `sha256-<hex>` lists them. And cosign's convention, the image
//! `sha256-<hex>.att` whose layers are the envelopes, so `cosign download attestation` finds
//! them too.

use crate::{Error, Result};
use stella_acquire::Digest;
use stella_acquire::reference::Reference;
use stella_acquire::registry::RegistryClient;

/// The artifact type of our attestation manifests.
pub const ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";
/// The media type of a DSSE envelope layer.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The layer annotation naming the predicate type.
pub const PREDICATE_ANNOTATION: &str = "in-toto.io/predicate-type";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// At most this many referrers are listed.
const MAX_REFERRERS: usize = 256;

fn registry(e: stella_acquire::Error, what: &str) -> Error {
    Error::InvalidOptions(format!("{what}: {e}"))
}

fn descriptor(media_type: &str, digest: &Digest, size: usize) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
}

/// What [`attach`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The artifact manifests pushed, one per envelope.
    pub manifests: Vec<String>,
    /// Whether the registry's Referrers API took them (else the `sha256-<hex>` index does).
    pub referrers_api: bool,
    /// cosign's `.att` tag.
    pub cosign_tag: String,
}

/// Pushes `envelopes` (predicate type, envelope JSON) as referrers of `image` (whose digest
/// is `digest`).
pub async fn attach(
    client: &RegistryClient,
    image: &Reference,
    digest: &Digest,
    envelopes: &[(String, Vec<u8>)],
) -> Result<Attached> {
    let (subject_bytes, subject_type, _) = client
        .manifest(image, digest.as_str())
        .await
        .map_err(|e| registry(e, "reading the image manifest"))?;
    let subject = descriptor(
        subject_type.as_deref().unwrap_or(MANIFEST),
        digest,
        subject_bytes.len(),
    );
    let empty = client
        .push_blob(image, bytes::Bytes::from_static(b"{}"))
        .await
        .map_err(|e| registry(e, "pushing the empty config"))?;
    let mut layers = Vec::new();
    let mut manifests = Vec::new();
    let mut referrers_api = true;
    let mut pushed = Vec::new();
    for (predicate_type, envelope) in envelopes {
        let blob = client
            .push_blob(image, bytes::Bytes::from(envelope.clone()))
            .await
            .map_err(|e| registry(e, "pushing an envelope"))?;
        let mut layer = descriptor(DSSE_MEDIA_TYPE, &blob, envelope.len());
        layer["annotations"] = serde_json::json!({ PREDICATE_ANNOTATION: predicate_type, "predicateType": predicate_type });
        layers.push(layer.clone());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": EMPTY, "digest": empty.to_string(), "size": 2, "data": "e30="},
            "layers": [layer],
            "subject": subject,
            "annotations": {PREDICATE_ANNOTATION: predicate_type},
        });
        let bytes = stella_sbom::canonical::to_string(&manifest).into_bytes();
        let size = bytes.len();
        let computed = Digest::of(&bytes);
        let (manifest_digest, took_subject) = client
            .push_manifest(image, computed.as_str(), bytes.into(), MANIFEST)
            .await
            .map_err(|e| registry(e, "pushing an attestation manifest"))?;
        referrers_api &= took_subject;
        let mut listed = descriptor(MANIFEST, &manifest_digest, size);
        listed["artifactType"] = ARTIFACT_TYPE.into();
        listed["annotations"] = serde_json::json!({ PREDICATE_ANNOTATION: predicate_type });
        pushed.push(listed);
        manifests.push(manifest_digest.to_string());
    }
    let tag = format!("sha256-{}", digest.hex());
    if !referrers_api {
        // The referrers tag schema: merge into the index at `sha256-<hex>`.
        let existing = client
            .manifest_opt(image, &tag)
            .await
            .map_err(|e| registry(e, "reading the referrers index"))?;
        let mut index: serde_json::Value = match existing {
            Some((bytes, _, _)) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::InvalidOptions(format!("the referrers index at {tag} is not JSON: {e}"))
            })?,
            None => serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": []}),
        };
        let list = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| Error::InvalidOptions(format!("{tag} is not an index")))?;
        for p in pushed {
            if !list.iter().any(|m| m["digest"] == p["digest"]) {
                list.push(p);
            }
        }
        let bytes = stella_sbom::canonical::to_string(&index).into_bytes();
        client
            .push_manifest(image, &tag, bytes.into(), INDEX)
            .await
            .map_err(|e| registry(e, "pushing the referrers index"))?;
    }
    // cosign's `.att` image: every envelope a layer.
    let cosign_tag = format!("{tag}.att");
    let att = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": layers,
    });
    let bytes = stella_sbom::canonical::to_string(&att).into_bytes();
    client
        .push_manifest(image, &cosign_tag, bytes.into(), MANIFEST)
        .await
        .map_err(|e| registry(e, "pushing the cosign .att image"))?;
    Ok(Attached {
        manifests,
        referrers_api,
        cosign_tag,
    })
}

/// One attestation attached to an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrer {
    /// The artifact manifest.
    pub manifest: String,
    pub predicate_type: String,
    /// The envelope blob.
    pub envelope: Digest,
    pub size: u64,
}

/// The attestations attached to `image@digest`: from the Referrers API, else the
/// `sha256-<hex>` index. Only manifests whose `subject` really is `digest` count.
pub async fn list(
    client: &RegistryClient,
    image: &Reference,
    digest: &Digest,
) -> Result<Vec<Referrer>> {
    let index = match client
        .referrers(image, digest)
        .await
        .map_err(|e| registry(e, "asking for the referrers"))?
    {
        Some(index) => Some(index),
        None => client
            .manifest_opt(image, &format!("sha256-{}", digest.hex()))
            .await
            .map_err(|e| registry(e, "reading the referrers index"))?
            .map(|(bytes, _, _)| bytes),
    };
    let Some(index) = index else {
        return Ok(Vec::new());
    };
    let index: serde_json::Value = serde_json::from_slice(&index)
        .map_err(|e| Error::InvalidOptions(format!("the referrers index is not JSON: {e}")))?;
    let mut out = Vec::new();
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    for entry in entries.iter().take(MAX_REFERRERS) {
        if entry["artifactType"] != ARTIFACT_TYPE {
            continue;
        }
        let Some(manifest_digest) = entry["digest"].as_str() else {
            continue;
        };
        let (bytes, _, _) = client
            .manifest(image, manifest_digest)
            .await
            .map_err(|e| registry(e, "reading an attestation manifest"))?;
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::InvalidOptions(format!("attestation manifest {manifest_digest}: {e}"))
        })?;
        // A referrer pointing at another image is not this image's.
        if manifest["subject"]["digest"] != digest.as_str() {
            continue;
        }
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            if layer["mediaType"] != DSSE_MEDIA_TYPE {
                continue;
            }
            let (Some(blob), Some(size)) = (
                layer["digest"].as_str().and_then(|d| Digest::parse(d).ok()),
                layer["size"].as_u64(),
            ) else {
                continue;
            };
            out.push(Referrer {
                manifest: manifest_digest.to_string(),
                predicate_type: layer["annotations"][PREDICATE_ANNOTATION]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                envelope: blob,
                size,
            });
        }
    }
    Ok(out)
}

/// The envelope of `referrer`, verified against its digest and capped at the envelope limit.
pub async fn fetch(
    client: &RegistryClient,
    image: &Reference,
    referrer: &Referrer,
) -> Result<Vec<u8>> {
    let cap = stella_attest::dsse::MAX_ENVELOPE as u64;
    if referrer.size > cap {
        return Err(Error::InvalidOptions(format!(
            "envelope {} is {} bytes, more than the {cap} accepted",
            referrer.envelope, referrer.size
        )));
    }
    client
        .blob(image, &referrer.envelope, cap)
        .await
        .map_err(|e| registry(e, "fetching an envelope"))
}
