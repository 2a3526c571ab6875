//! `docker save` / skopeo `docker-archive` tars: the legacy `manifest.json` form and the OCI
//! layout form newer Docker writes. The tar is indexed once and blobs are read in place.

use crate::image::{BlobSource, Image, Platform, parse_config};
use crate::layout::resolve_index;
use crate::manifest::MAX_JSON_BLOB;
use crate::{Digest, Error, Result, io_error};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Regular files of the tar: normalised name → (data offset, size).
#[derive(Debug, Default)]
struct TarIndex {
    files: BTreeMap<String, (u64, u64)>,
}

impl TarIndex {
    fn build(path: &Path) -> Result<TarIndex> {
        let file = File::open(path).map_err(io_error(path))?;
        let mut archive = tar::Archive::new(file);
        let mut index = TarIndex::default();
        let entries = archive.entries().map_err(io_error(path))?;
        for entry in entries {
            let entry = entry.map_err(io_error(path))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .map_err(io_error(path))?
                .to_string_lossy()
                .into_owned();
            let name = name.trim_start_matches("./").to_string();
            index
                .files
                .insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(index)
    }

    fn read_small(&self, tar: &Path, name: &str) -> Result<Vec<u8>> {
        let (offset, size) = *self.files.get(name).ok_or_else(|| Error::Invalid {
            what: "docker archive",
            reason: format!("{name} is missing"),
        })?;
        if size > MAX_JSON_BLOB {
            return Err(Error::Invalid {
                what: "docker archive",
                reason: format!("{name} is {size} bytes"),
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        open_range(tar, offset, size)?
            .read_to_end(&mut bytes)
            .map_err(io_error(tar))?;
        Ok(bytes)
    }
}

fn open_range(tar: &Path, offset: u64, size: u64) -> Result<std::io::Take<File>> {
    let mut file = File::open(tar).map_err(io_error(tar))?;
    file.seek(SeekFrom::Start(offset)).map_err(io_error(tar))?;
    Ok(file.take(size))
}

/// Blobs inside a tar, by digest.
#[derive(Debug)]
struct TarBlobs {
    tar: PathBuf,
    index: Arc<TarIndex>,
    by_digest: BTreeMap<Digest, String>,
}

impl BlobSource for TarBlobs {
    fn open(&self, digest: &Digest) -> Result<(Box<dyn Read + Send>, u64)> {
        let name = self
            .by_digest
            .get(digest)
            .cloned()
            .unwrap_or_else(|| format!("blobs/sha256/{}", digest.hex()));
        let &(offset, size) = self
            .index
            .files
            .get(&name)
            .ok_or_else(|| Error::MissingBlob(digest.clone()))?;
        Ok((Box::new(open_range(&self.tar, offset, size)?), size))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Opens the first image of a docker-archive tar.
pub fn open(path: &Path, platform: &Platform) -> Result<Image> {
    let index = Arc::new(TarIndex::build(path).map_err(|_| Error::UnknownSource {
        path: path.display().to_string(),
    })?);
    let source = path.display().to_string();
    if index.files.contains_key("oci-layout") && index.files.contains_key("index.json") {
        let index_bytes = index.read_small(path, "index.json")?;
        let blobs = TarBlobs {
            tar: path.to_path_buf(),
            index: index.clone(),
            by_digest: BTreeMap::new(),
        };
        // Docker's OCI archives carry a manifest.json too; prefer the OCI index.
        return resolve_index(Box::new(blobs), &index_bytes, None, platform, source);
    }
    // A tar without manifest.json is not an image; one whose manifest.json is oversized or
    // unreadable is a corrupt image, and says so.
    if !index.files.contains_key("manifest.json") {
        return Err(Error::UnknownSource {
            path: source.clone(),
        });
    }
    let manifest = index.read_small(path, "manifest.json")?;
    let entries: Vec<LegacyEntry> =
        serde_json::from_slice(&manifest).map_err(|e| Error::Invalid {
            what: "docker archive manifest.json",
            reason: e.to_string(),
        })?;
    let entry = entries.into_iter().next().ok_or_else(|| Error::Invalid {
        what: "docker archive",
        reason: "manifest.json lists no image".into(),
    })?;
    let config_bytes = index.read_small(path, &entry.config)?;
    let config_digest = Digest::of(&config_bytes);
    let config = parse_config(&config_bytes)?;
    if entry.layers.len() != config.rootfs.diff_ids.len() {
        return Err(Error::Invalid {
            what: "docker archive",
            reason: format!(
                "{} layers but {} diff_ids",
                entry.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    // Layers are usually stored uncompressed, so their digest is the diff_id the (hashed)
    // config pins. A compressed one is hashed up front.
    let mut by_digest = BTreeMap::new();
    let mut descriptors = Vec::new();
    for (name, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
        let name = name.trim_start_matches("./").to_string();
        let &(offset, size) = index.files.get(&name).ok_or_else(|| Error::Invalid {
            what: "docker archive",
            reason: format!("layer {name} is missing"),
        })?;
        let mut head = [0u8; 4];
        let n = open_range(path, offset, size)?
            .read(&mut head)
            .map_err(io_error(path))?;
        let compressed = matches!(&head[..n], [0x1f, 0x8b, ..] | [0x28, 0xb5, 0x2f, 0xfd]);
        let digest = if compressed {
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            std::io::copy(&mut open_range(path, offset, size)?, &mut hasher)
                .map_err(io_error(path))?;
            Digest::from_hasher(hasher)
        } else {
            diff_id.clone()
        };
        by_digest.insert(digest.clone(), name);
        descriptors.push((digest, String::new(), size));
    }
    let layers = Image::layers_from(descriptors.into_iter(), &config)?;
    let mut tags = entry.repo_tags.unwrap_or_default();
    tags.sort();
    Ok(Image {
        source,
        manifest_digest: None,
        config_digest,
        config,
        config_bytes,
        layers,
        tags,
        blobs: Box::new(TarBlobs {
            tar: path.to_path_buf(),
            index,
            by_digest,
        }),
    })
}
