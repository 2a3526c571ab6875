//! The scheduler's impact selection: every catalogued image's BOM-Index (stored at
//! `indexes/<digest>/bom-index.bin`) read back and joined into one [`ImpactIndex`].

use crate::{Error, Result, Store};
use stella_sbom::bomindex::{BomIndex, ImpactIndex};

/// The catalog's artifact kind of a BOM-Index.
pub const BOM_INDEX_KIND: &str = "bom-index";

impl Store {
    /// The stored BOM-Index of `image_digest`, when there is one (its `match_keys` are the
    /// advisory keys, `ecosystem/package`, impact selection reads).
    pub async fn bom_index(&self, image_digest: &str) -> Result<Option<BomIndex>> {
        let key = crate::keys::bom_index(image_digest);
        let Some(bytes) = self.get(&key).await? else {
            return Ok(None);
        };
        BomIndex::from_bytes(&bytes)
            .map(Some)
            .map_err(|source| Error::BomIndex { key, source })
    }

    /// The BOM-Indexes of all images in the catalog that have one, joined. An index the catalog
    /// lists but the object store lacks, one that does not parse, or one describing another
    /// image is an error naming its key (never silently left out).
    pub async fn impact_index(&self) -> Result<ImpactIndex> {
        let rows = self.catalog.artifacts_of_kind(BOM_INDEX_KIND).await?;
        let mut indexes = Vec::with_capacity(rows.len());
        for row in rows {
            let bytes = self
                .get(&row.key)
                .await?
                .ok_or_else(|| Error::MissingObject {
                    key: row.key.clone(),
                })?;
            let index = BomIndex::from_bytes(&bytes).map_err(|source| Error::BomIndex {
                key: row.key.clone(),
                source,
            })?;
            if index.header.image_digest != row.image_digest {
                return Err(Error::BomIndexImage {
                    key: row.key,
                    found: index.header.image_digest,
                });
            }
            indexes.push((row.image_digest, index));
        }
        Ok(ImpactIndex::build(
            indexes
                .iter()
                .map(|(digest, index)| (digest.as_str(), index)),
        ))
    }
}
