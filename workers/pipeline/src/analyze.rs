//! Step 2: the image's layers read (cached fragments reused) and analysed into its inventory,
//! and what a scan stores of it written: the SBOMs, the BOM-Index and the inventory
//! ([`stella_store::image_artifacts`]) and the image's catalog row with its layers.

use crate::{Error, Result};
use stella_acquire::Image;
use stella_sbom::Inventory;
use stella_scan::Event;
use stella_store::Store;

/// How to read the layers.
#[derive(Clone, Copy, Default)]
pub struct AnalyzeOptions<'a> {
    /// Layers read at once; `None`: one per CPU.
    pub parallelism: Option<usize>,
    /// Read every layer even when its analysis is cached.
    pub no_cache: bool,
    /// Progress events (layer started / done, analyzing), for bars on a terminal.
    pub progress: Option<&'a (dyn Fn(Event) + Sync)>,
}

impl std::fmt::Debug for AnalyzeOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyzeOptions")
            .field("parallelism", &self.parallelism)
            .field("no_cache", &self.no_cache)
            .finish_non_exhaustive()
    }
}

/// Scans `image` (`name` is how messages call it) and stores what a scan stores; returns the
/// inventory. Blocking: layers are read on threads and the fragment cache and the store are
/// driven on `runtime`, so call this outside the runtime's own threads.
pub fn analyze(
    store: &Store,
    image: &Image,
    name: &str,
    options: &AnalyzeOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<Inventory> {
    let cache = stella_store::ObjectFragmentCache::new(store.clone(), runtime.clone());
    let mut scan = stella_scan::Options {
        progress: options.progress,
        ..stella_scan::Options::default()
    };
    if !options.no_cache {
        scan.cache = Some(&cache);
    }
    if let Some(p) = options.parallelism {
        scan.parallelism = p.max(1);
    }
    // The scan blocks (it reads layers on threads and the cache blocks on the runtime), so it
    // runs on a thread of its own.
    let outcome =
        std::thread::scope(|scope| scope.spawn(|| stella_scan::scan(image, &scan)).join())
            .map_err(|_| Error::Internal("the scan panicked".into()))?
            .map_err(|source| Error::Scan {
                image: name.to_string(),
                source,
            })?;
    let inventory = outcome.inventory;
    runtime
        .block_on(store_image(store, image, &inventory))
        .map_err(|source| {
            let place = if store.catalog.is_postgres() {
                "the catalog"
            } else {
                "the data directory"
            };
            Error::Storage {
                what: format!("failed to store the results in {place}"),
                source,
            }
        })?;
    Ok(inventory)
}

/// Stores the image's artifacts and records the image and its layers in the catalog.
pub(crate) async fn store_image(
    store: &Store,
    image: &Image,
    inventory: &Inventory,
) -> stella_store::Result<()> {
    let layers = image
        .layers
        .iter()
        .map(|l| (l.digest.to_string(), l.size as i64, l.media_type.clone()))
        .collect();
    store_inventory(store, inventory, layers).await
}

/// Stores an inventory's artifacts and records its image (with `layers`: digest, size, media
/// type) in the catalog.
pub(crate) async fn store_inventory(
    store: &Store,
    inventory: &Inventory,
    layers: Vec<(String, i64, String)>,
) -> stella_store::Result<()> {
    let digest = &inventory.image.digest;
    let match_keys = stella_verdict::matching::match_keys(inventory);
    for artifact in stella_store::image_artifacts(inventory, &match_keys) {
        store.store_artifact(digest, artifact).await?;
    }
    store
        .catalog
        .record_image(&stella_store::ImageRow {
            digest: digest.clone(),
            config_digest: inventory.image.config_digest.clone(),
            name: inventory.image.name.clone(),
            os: inventory.image.os.clone(),
            architecture: inventory.image.architecture.clone(),
            created: inventory.image.created.clone(),
            analyzer_version: inventory.analyzer_version.clone(),
            components: inventory.components.len() as i64,
            layers,
        })
        .await
}

/// Analyses a root filesystem directory (a build stage's output, BuildKit's
/// `BUILDKIT_SCAN_SOURCE`) into its inventory: the same analyzers as an image of one layer,
/// nothing stored and nothing executed. Blocking.
pub fn analyze_rootfs(rootfs: &stella_scan::Rootfs) -> Result<Inventory> {
    stella_scan::scan_rootfs(rootfs, &stella_scan::Options::default())
        .map(|outcome| outcome.inventory)
        .map_err(|source| Error::Scan {
            image: rootfs.name.clone(),
            source,
        })
}
