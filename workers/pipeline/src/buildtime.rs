//! Trusting build-time SBOMs (seed 001 §3.4, seed 002 §7: `trustBuildTimeSboms`): when the
//! image carries, as an OCI referrer in its registry, an SBOM attestation signed by a trusted
//! key and about this image's digest, its SBOM is the inventory — no layer is pulled or
//! analysed — and the inventory says so ([`stella_sbom::Origin`]: the format, the envelope's
//! digest, the signer's key id), in every SBOM stored from it.

use crate::imported::{ImportedSbom, import_sbom};
use crate::{Error, Result};
use stella_acquire::Image;
use stella_attest::{Expect, Kind, PublicKey};
use stella_sbom::{Inventory, Origin};
use stella_store::Store;

/// A trusted build-time SBOM, read.
#[derive(Clone, Debug)]
pub struct TrustedSbom {
    pub imported: ImportedSbom,
    pub envelope_digest: String,
    pub key_id: String,
}

/// What the search found besides a trusted SBOM: the referrers that were not (their reason),
/// for the log.
#[derive(Clone, Debug, Default)]
pub struct Search {
    pub trusted: Option<TrustedSbom>,
    pub rejected: Vec<String>,
}

/// Looks among the referrers of `reference@image.digest()` for an SBOM attestation that one of
/// `keys` signed about this digest, and reads the first (in manifest-digest order) that
/// verifies and parses. Referrers that do not are listed with why; a registry that cannot list
/// them is an error the caller may treat as "none".
pub async fn find_trusted(
    client: &stella_acquire::RegistryClient,
    reference: &stella_acquire::Reference,
    image: &Image,
    keys: &[PublicKey],
) -> Result<Search> {
    let digest = image.digest().clone();
    let mut referrers = crate::referrers::list(client, reference, &digest).await?;
    referrers.retain(|r| {
        r.predicate_type == stella_attest::statement::CYCLONEDX
            || r.predicate_type == stella_attest::statement::SPDX
    });
    referrers.sort_by(|a, b| a.manifest.cmp(&b.manifest));
    let mut search = Search::default();
    for referrer in referrers {
        let bytes = match crate::referrers::fetch(client, reference, &referrer).await {
            Ok(bytes) => bytes,
            Err(e) => {
                search.rejected.push(format!("{}: {e}", referrer.manifest));
                continue;
            }
        };
        let expect = Expect {
            kind: Some(Kind::Sbom),
            subject: Some(digest.to_string()),
            max_age: None,
        };
        let verified = match stella_attest::verify(&bytes, keys, &expect, chrono::Utc::now()) {
            Ok(v) => v,
            Err(e) => {
                search.rejected.push(format!("{}: {e}", referrer.manifest));
                continue;
            }
        };
        let predicate = serde_json::to_vec(&verified.statement.predicate)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let name = format!("referrer {}", referrer.manifest);
        match import_sbom(&predicate, &name, stella_scan::image_info(image)) {
            Ok(imported) => {
                search.trusted = Some(TrustedSbom {
                    imported,
                    envelope_digest: format!(
                        "sha256:{}",
                        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
                    ),
                    key_id: verified.key_id,
                });
                break;
            }
            Err(e) => search.rejected.push(e),
        }
    }
    Ok(search)
}

/// Adopts a trusted build-time SBOM as the image's inventory: its origin recorded, and what a
/// scan stores (SBOMs, BOM-Index, inventory, the image's catalog row) written as `analyze`
/// writes it.
pub async fn adopt(store: &Store, image: &Image, trusted: TrustedSbom) -> Result<Inventory> {
    let mut inventory = trusted.imported.inventory;
    inventory.origin = Some(Origin {
        kind: "build-time-sbom".into(),
        format: trusted.imported.format,
        envelope_digest: Some(trusted.envelope_digest),
        key_id: Some(trusted.key_id),
    });
    crate::analyze::store_image(store, image, &inventory)
        .await
        .map_err(Error::storage("failed to store the results"))?;
    Ok(inventory)
}
