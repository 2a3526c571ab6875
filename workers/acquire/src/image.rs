//! What an acquired image is: identity, config, layers, and where its blobs come from.

use crate::blob::{LayerReader, Limits};
use crate::{Digest, Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::str::FromStr;

/// `os/architecture[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid =
            |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if [os, arch].iter().all(|p| valid(p)) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if [os, arch, variant].iter().all(|p| valid(p)) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(Error::Invalid {
                what: "platform",
                reason: format!("{s:?} is not os/arch[/variant]"),
            }),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variant {
            Some(v) => write!(f, "{}/{}/{v}", self.os, self.architecture),
            None => write!(f, "{}/{}", self.os, self.architecture),
        }
    }
}

/// The parts of the image config a scan uses. The raw bytes are kept for hashing.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    /// Build time as the image records it; the only wall-clock time SBOMs may carry.
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: RuntimeConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
}

/// `config.config`: how the image runs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `config.rootfs`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RootFs {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// One `config.history` entry.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

/// One layer of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Digest of the blob as stored (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar (`rootfs.diff_ids`): the identity of the content.
    pub diff_id: Digest,
    /// Declared media type.
    pub media_type: String,
    /// Declared blob size.
    pub size: u64,
}

/// Reads blobs by digest.
pub trait BlobSource: Send + Sync + fmt::Debug {
    /// Opens the raw (possibly compressed) bytes of a blob, and its stored length.
    fn open(&self, digest: &Digest) -> Result<(Box<dyn Read + Send>, u64)>;
}

/// An acquired image.
#[derive(Debug)]
pub struct Image {
    /// Where it came from, as the user named it.
    pub source: String,
    /// Manifest digest, when the image has a manifest (registries, OCI layouts). Docker
    /// archives in the legacy form have none; their identity is the config digest.
    pub manifest_digest: Option<Digest>,
    /// Config digest (the Docker image ID).
    pub config_digest: Digest,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
    pub layers: Vec<Layer>,
    /// Tags the source records (`RepoTags`, `org.opencontainers.image.ref.name`).
    pub tags: Vec<String>,
    pub blobs: Box<dyn BlobSource>,
}

impl Image {
    /// The identity of results: the manifest digest, else the config digest.
    pub fn digest(&self) -> &Digest {
        self.manifest_digest.as_ref().unwrap_or(&self.config_digest)
    }

    /// Opens layer `index` as a verified, decompressed tar stream.
    pub fn open_layer(&self, index: usize, limits: &Limits) -> Result<LayerReader> {
        let layer = &self.layers[index];
        let (raw, stored) = self.blobs.open(&layer.digest)?;
        if layer.size != 0 && stored != layer.size {
            return Err(Error::SizeMismatch {
                digest: layer.digest.clone(),
                declared: layer.size,
                actual: stored,
            });
        }
        LayerReader::new(raw, layer, limits)
    }

    /// Builds the layer list from manifest descriptors and the config's diff IDs.
    pub(crate) fn layers_from(
        descriptors: impl ExactSizeIterator<Item = (Digest, String, u64)>,
        config: &ImageConfig,
    ) -> Result<Vec<Layer>> {
        if descriptors.len() != config.rootfs.diff_ids.len() {
            return Err(Error::Invalid {
                what: "image",
                reason: format!(
                    "{} layers but {} diff_ids in the config",
                    descriptors.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        Ok(descriptors
            .zip(&config.rootfs.diff_ids)
            .map(|((digest, media_type, size), diff_id)| Layer {
                digest,
                diff_id: diff_id.clone(),
                media_type,
                size,
            })
            .collect())
    }
}

/// Parses and size-checks a config blob.
pub(crate) fn parse_config(bytes: &[u8]) -> Result<ImageConfig> {
    serde_json::from_slice(bytes).map_err(|e| Error::Invalid {
        what: "image config",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_strictly() {
        assert_eq!(
            "linux/amd64".parse::<Platform>().unwrap(),
            Platform::default()
        );
        assert_eq!(
            "linux/arm/v7"
                .parse::<Platform>()
                .unwrap()
                .variant
                .as_deref(),
            Some("v7")
        );
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/../etc",
            "linux/am d64",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?}");
        }
    }
}
