//! Step 1: where the image comes from, and opening it into a verified [`Image`].

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stella_acquire::{Image, Platform, Reference};

/// An image to scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// An OCI layout directory, optionally the manifest tagged `tag`.
    Layout { dir: PathBuf, tag: Option<String> },
    /// A docker-archive (or OCI archive) tar, or another local file `stella-acquire` reads.
    Archive(PathBuf),
    /// A registry reference (`registry/repo:tag`, `…@sha256:…`).
    Registry(Reference),
}

impl ImageSource {
    /// What an image argument names: an existing directory (or `dir:tag` when only `dir`
    /// exists) is a layout, an existing file an archive, anything else a registry reference —
    /// unless it looks like a path (`/…`, `.…`, `….tar`), which is then missing.
    pub fn parse(text: &str) -> Result<ImageSource> {
        let (path, tag) = split_tag(text);
        if path.is_dir() {
            return Ok(ImageSource::Layout { dir: path, tag });
        }
        if path.exists() {
            return Ok(ImageSource::Archive(path));
        }
        ImageSource::reference(text)
    }

    /// A registry reference only (what a worker Job is given): paths are refused.
    pub fn reference(text: &str) -> Result<ImageSource> {
        let looks_local = text.starts_with('/') || text.starts_with('.') || text.ends_with(".tar");
        match Reference::parse(text) {
            Ok(reference) if !looks_local => Ok(ImageSource::Registry(reference)),
            _ => Err(Error::UnknownSource(text.to_string())),
        }
    }
}

/// `dir:tag` → (dir, tag) when `dir` exists and the whole string does not.
fn split_tag(image: &str) -> (PathBuf, Option<String>) {
    if !Path::new(image).exists()
        && let Some((dir, tag)) = image.rsplit_once(':')
        && Path::new(dir).is_dir()
    {
        return (PathBuf::from(dir), Some(tag.to_string()));
    }
    (PathBuf::from(image), None)
}

/// How to reach and select the image.
#[derive(Clone, Debug)]
pub struct AcquireOptions {
    /// The platform to select from a multi-platform image.
    pub platform: Platform,
    /// Extra registry credentials (`.dockerconfigjson` / Docker `config.json` files); the
    /// user's Docker config is always read.
    pub registry_auth_files: Vec<PathBuf>,
    /// Plain HTTP to the registry.
    pub insecure_registry: bool,
    /// Where verified registry blobs are kept (the data directory's `blobs`).
    pub blob_dir: PathBuf,
}

impl AcquireOptions {
    /// The defaults for a data directory: `linux/amd64`, no extra credentials, TLS.
    pub fn new(data_dir: &Path) -> AcquireOptions {
        AcquireOptions {
            platform: Platform::default(),
            registry_auth_files: Vec::new(),
            insecure_registry: false,
            blob_dir: data_dir.join("blobs"),
        }
    }
}

/// Opens `source` (`name` is how messages call it: the argument as the user wrote it).
/// Registry pulls run on `runtime`; call this outside the runtime's own threads.
pub fn acquire(
    source: &ImageSource,
    name: &str,
    options: &AcquireOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<Image> {
    let failed = |source| Error::Acquire {
        image: name.to_string(),
        source,
    };
    match source {
        ImageSource::Layout { dir, tag } => {
            stella_acquire::layout::open(dir, tag.as_deref(), &options.platform).map_err(failed)
        }
        ImageSource::Archive(path) => {
            stella_acquire::open_local(path, &options.platform).map_err(failed)
        }
        ImageSource::Registry(reference) => {
            let credentials = stella_acquire::Credentials::load(&options.registry_auth_files)
                .map_err(|e| Error::InvalidOptions(e.to_string()))?;
            let client =
                stella_acquire::RegistryClient::new(credentials, options.insecure_registry)
                    .map_err(|e| Error::Internal(e.to_string()))?;
            runtime
                .block_on(Arc::new(client).open(
                    reference,
                    &options.platform,
                    &options.blob_dir,
                    runtime.clone(),
                ))
                .map_err(failed)
        }
    }
}
