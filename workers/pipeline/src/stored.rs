//! What analysis-only work starts from: an image's stored inventory (the [`INVENTORY_KIND`]
//! artifact every analysis writes), read back instead of pulling and analysing the image
//! again. The REST API's reports and the Scan controller's re-evaluations read it.
//!
//! [`INVENTORY_KIND`]: stella_store::INVENTORY_KIND

use crate::{Error, Result};
use stella_sbom::Inventory;
use stella_store::{ArtifactRow, Store};

/// The inventory among an image's catalog `artifacts` (as listed already), read from the
/// object store: `None` when none is listed (an image stored by a version that kept none).
/// A listed object that is gone is a storage failure; one that does not parse,
/// [`Error::CorruptInventory`].
pub async fn stored_inventory(
    store: &Store,
    artifacts: &[ArtifactRow],
) -> Result<Option<Inventory>> {
    let Some(artifact) = artifacts
        .iter()
        .find(|a| a.kind == stella_store::INVENTORY_KIND)
    else {
        return Ok(None);
    };
    let key = artifact.key.clone();
    let bytes = store
        .get(&key)
        .await
        .map_err(Error::storage("failed to read the stored inventory"))?
        .ok_or_else(|| Error::Storage {
            what: "failed to read the stored inventory".into(),
            source: stella_store::Error::MissingObject { key: key.clone() },
        })?;
    let parsed = tokio::task::spawn_blocking(move || serde_json::from_slice::<Inventory>(&bytes))
        .await
        .map_err(|e| Error::Internal(format!("reading the stored inventory: {e}")))?;
    parsed
        .map(Some)
        .map_err(|source| Error::CorruptInventory { key, source })
}
