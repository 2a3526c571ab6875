//! Layer fragments cached in the object store (postcard, zstd), indexed in the catalog.

use crate::{Store, keys};
use stella_layerfs::Fragment;
use tokio::runtime::Handle;

/// A fragment cache over a [`Store`], for the (synchronous) scan pipeline. Call it from a
/// blocking thread of a Tokio runtime (`spawn_blocking`), never from async code directly.
#[derive(Debug)]
pub struct ObjectFragmentCache {
    store: Store,
    handle: Handle,
}

impl ObjectFragmentCache {
    pub fn new(store: Store, handle: Handle) -> ObjectFragmentCache {
        ObjectFragmentCache { store, handle }
    }

    /// Serialises a fragment the way the cache stores it.
    pub fn encode(fragment: &Fragment) -> Option<Vec<u8>> {
        let raw = postcard::to_stdvec(fragment).ok()?;
        zstd::encode_all(&raw[..], 3).ok()
    }

    /// The inverse of [`ObjectFragmentCache::encode`]; `None` for anything corrupt.
    pub fn decode(bytes: &[u8]) -> Option<Fragment> {
        // Bound the expansion: a corrupt or hostile cache object must not exhaust memory.
        let mut decoder = zstd::stream::read::Decoder::new(bytes).ok()?;
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut decoder, 4 << 30), &mut raw)
            .ok()?;
        postcard::from_bytes(&raw).ok()
    }
}

impl stella_layerfs::FragmentCache for ObjectFragmentCache {
    fn get(&self, layer_digest: &str, analyzer_version: &str) -> Option<Fragment> {
        self.handle.block_on(async {
            let key = self
                .store
                .catalog
                .cache_entry(layer_digest, analyzer_version)
                .await
                .ok()??;
            let bytes = self.store.get(&key).await.ok()??;
            ObjectFragmentCache::decode(&bytes)
        })
    }

    fn put(&self, layer_digest: &str, analyzer_version: &str, fragment: &Fragment) {
        let Some(bytes) = ObjectFragmentCache::encode(fragment) else {
            return;
        };
        let key = keys::layer_fragment(layer_digest, analyzer_version);
        let size = bytes.len() as i64;
        // A cache that cannot be written is a slower next scan, not a failed scan.
        let _ = self.handle.block_on(async {
            self.store.put(&key, bytes).await?;
            self.store
                .catalog
                .record_cache_entry(layer_digest, analyzer_version, &key, size)
                .await
        });
    }
}
