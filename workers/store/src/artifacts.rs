//! What a scan stores of an image: the inventory view in CycloneDX JSON and protobuf and SPDX,
//! the usage view in CycloneDX JSON and protobuf, the BOM-Index and the canonical inventory
//! itself (what the REST API's diffs and reports are computed from) — one list, written the
//! same way by `stella scan`, the worker and the tests.

use crate::{ArtifactRow, Result, Store, keys};
use sha2::{Digest, Sha256};

/// One artifact to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub key: String,
    pub kind: &'static str,
    pub format: &'static str,
    pub view: Option<&'static str>,
    pub bytes: Vec<u8>,
}

/// The SBOMs, the BOM-Index (with the advisory `match_keys` of the packages) and the canonical
/// inventory of `inventory`, keyed under its image digest: rendered one at a time as the
/// iterator is driven, so a caller that stores each before taking the next holds one
/// rendering at a time, not all seven (what bounds memory on images of 100,000 packages).
pub fn image_artifacts<'a>(
    inventory: &'a stella_sbom::Inventory,
    match_keys: &'a [String],
) -> impl Iterator<Item = Artifact> + 'a {
    let digest = &inventory.image.digest;
    let usage = inventory.usage_view();
    let sbom =
        move |view: &'static str, extension: &str, format: &'static str, bytes: Vec<u8>| Artifact {
            key: keys::image_artifact(digest, view, extension),
            kind: "sbom",
            format,
            view: Some(view),
            bytes,
        };
    (0..7).map(move |i| match i {
        0 => sbom(
            "inventory",
            "cdx.json",
            "cyclonedx-json",
            stella_sbom::cyclonedx::to_json(inventory).into_bytes(),
        ),
        1 => sbom(
            "inventory",
            "cdx.pb",
            "cyclonedx-protobuf",
            stella_sbom::cyclonedx_pb::to_protobuf(inventory),
        ),
        2 => sbom(
            "inventory",
            "spdx.json",
            "spdx-json",
            stella_sbom::spdx::to_json(inventory).into_bytes(),
        ),
        3 => sbom(
            "usage",
            "cdx.json",
            "cyclonedx-json",
            stella_sbom::cyclonedx::to_json(&usage).into_bytes(),
        ),
        4 => sbom(
            "usage",
            "cdx.pb",
            "cyclonedx-protobuf",
            stella_sbom::cyclonedx_pb::to_protobuf(&usage),
        ),
        5 => Artifact {
            key: keys::bom_index(digest),
            kind: crate::BOM_INDEX_KIND,
            format: "stella-bomindex",
            view: None,
            bytes: stella_sbom::bomindex::BomIndex::build(inventory)
                .with_match_keys(match_keys.iter().cloned())
                .to_bytes(),
        },
        _ => Artifact {
            key: keys::inventory(digest),
            kind: crate::INVENTORY_KIND,
            format: "json",
            view: Some("inventory"),
            bytes: serde_json::to_vec(inventory).expect("an inventory serialises"),
        },
    })
}

impl Store {
    /// Writes `artifact` to the object store and records it in the catalog with the SHA-256
    /// and size of its bytes.
    pub async fn store_artifact(
        &self,
        image_digest: &str,
        artifact: Artifact,
    ) -> Result<ArtifactRow> {
        let row = ArtifactRow {
            key: artifact.key,
            image_digest: image_digest.to_string(),
            kind: artifact.kind.into(),
            format: artifact.format.into(),
            view: artifact.view.map(Into::into),
            digest: format!("sha256:{}", hex::encode(Sha256::digest(&artifact.bytes))),
            size: artifact.bytes.len() as i64,
        };
        self.put(&row.key, artifact.bytes).await?;
        self.catalog.record_artifact(&row).await?;
        Ok(row)
    }
}
