//! Image acquisition: resolves an image to its manifest, config and layer list, and opens each
//! layer as a digest-verified, decompressed, size-capped byte stream.
//!
//! Sources: an OCI image layout directory, a `docker save` / skopeo `docker-archive` tar (both
//! the legacy `manifest.json` form and the OCI form newer Docker writes), and registries.
//! Every blob is verified against its digest as it is read; a mismatch is an error, never a
//! silently different image.

pub mod archive;
pub mod blob;
pub mod digest;
pub mod image;
pub mod layout;
pub mod manifest;
pub mod reference;
pub mod registry;

pub use blob::{LayerReader, Limits};
pub use digest::Digest;
pub use image::{BlobSource, Image, ImageConfig, Layer, Platform, RuntimeConfig};
pub use reference::Reference;
pub use registry::{Credentials, RegistryClient};

use std::path::Path;

/// Errors of acquisition.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    #[error("digest mismatch for {expected}: content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {0} is missing from the image")]
    MissingBlob(Digest),
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("no manifest for platform {wanted} (the index offers: {available})")]
    NoMatchingPlatform { wanted: String, available: String },
    #[error("{path} is neither an OCI layout directory nor a docker-archive tar")]
    UnknownSource { path: String },
    #[error("layer {digest} expands beyond the limit: {reason}")]
    Bomb { digest: Digest, reason: String },
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error("authentication to {registry} failed: {reason}")]
    Auth { registry: String, reason: String },
    #[error("{url}: HTTP {status}: {message}")]
    Registry {
        url: String,
        status: u16,
        message: String,
    },
    #[error("layer {digest} is corrupt: {reason}")]
    CorruptLayer { digest: Digest, reason: String },
    #[error("layer {digest} is declared as {declared} bytes but holds {actual}")]
    SizeMismatch {
        digest: Digest,
        declared: u64,
        actual: u64,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_error(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.as_ref().display().to_string();
    move |source| Error::Io { path, source }
}

/// Opens a local image: an OCI layout directory or a docker-archive tar, chosen by what `path`
/// is. `tag` selects a manifest of a layout by its `org.opencontainers.image.ref.name`.
pub fn open_local(path: &Path, platform: &Platform) -> Result<Image> {
    let meta = std::fs::metadata(path).map_err(io_error(path))?;
    if meta.is_dir() {
        layout::open(path, None, platform)
    } else if meta.is_file() {
        archive::open(path, platform)
    } else {
        Err(Error::UnknownSource {
            path: path.display().to_string(),
        })
    }
}
