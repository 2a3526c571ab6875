//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).

use crate::image::{BlobSource, Image, Platform, parse_config};
use crate::manifest::{self, MAX_JSON_BLOB, Parsed};
use crate::{Digest, Error, Result, io_error};
use std::io::Read;
use std::path::{Path, PathBuf};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Blobs of a layout directory. Only regular files are opened: a symlink, FIFO or device in
/// `blobs/` is refused rather than followed or blocked on.
#[derive(Debug)]
pub struct LayoutBlobs {
    root: PathBuf,
}

impl LayoutBlobs {
    pub fn new(root: &Path) -> LayoutBlobs {
        LayoutBlobs {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        // A validated digest is `sha256:<hex>`: no separators, no `..`.
        self.root.join("blobs").join("sha256").join(digest.hex())
    }
}

impl BlobSource for LayoutBlobs {
    fn open(&self, digest: &Digest) -> Result<(Box<dyn Read + Send>, u64)> {
        let path = self.path(digest);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingBlob(digest.clone()));
            }
            Err(e) => return Err(io_error(&path)(e)),
        };
        if !meta.file_type().is_file() {
            return Err(Error::Invalid {
                what: "OCI layout",
                reason: format!("{} is not a regular file", path.display()),
            });
        }
        let file = std::fs::File::open(&path).map_err(io_error(&path))?;
        Ok((Box::new(file), meta.len()))
    }
}

/// Reads a small JSON blob whole, verified against its digest.
pub(crate) fn read_json_blob(blobs: &dyn BlobSource, digest: &Digest) -> Result<Vec<u8>> {
    let (reader, size) = blobs.open(digest)?;
    if size > MAX_JSON_BLOB {
        return Err(Error::Invalid {
            what: "image",
            reason: format!("blob {digest} is {size} bytes; too large for a manifest or config"),
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    reader
        .take(MAX_JSON_BLOB + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            path: digest.to_string(),
            source,
        })?;
    digest.verify(&bytes)?;
    Ok(bytes)
}

/// Opens the image in a layout directory: the manifest tagged `tag`, or the only image.
pub fn open(root: &Path, tag: Option<&str>, platform: &Platform) -> Result<Image> {
    let marker = root.join("oci-layout");
    let marker = std::fs::read_to_string(&marker).map_err(|_| Error::UnknownSource {
        path: root.display().to_string(),
    })?;
    if !marker.contains("imageLayoutVersion") {
        return Err(Error::Invalid {
            what: "OCI layout",
            reason: "oci-layout has no imageLayoutVersion".into(),
        });
    }
    let index_path = root.join("index.json");
    let index_bytes = read_small_file(&index_path)?;
    let blobs = LayoutBlobs::new(root);
    resolve_index(
        Box::new(blobs),
        &index_bytes,
        tag,
        platform,
        root.display().to_string(),
    )
}

/// Resolves a layout's `index.json` to one image (shared with OCI archives).
pub(crate) fn resolve_index(
    blobs: Box<dyn BlobSource>,
    index_bytes: &[u8],
    tag: Option<&str>,
    platform: &Platform,
    source: String,
) -> Result<Image> {
    let Parsed::Index(index) = manifest::parse(index_bytes, Some(manifest::OCI_INDEX))? else {
        return Err(Error::Invalid {
            what: "OCI layout",
            reason: "index.json is not an index".into(),
        });
    };
    let entries: Vec<_> = match tag {
        Some(tag) => index
            .manifests
            .iter()
            .filter(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
            .collect(),
        None => index.manifests.iter().collect(),
    };
    let descriptor = match entries.as_slice() {
        [] => {
            return Err(Error::Invalid {
                what: "OCI layout",
                reason: match tag {
                    Some(tag) => format!("no manifest tagged {tag:?}"),
                    None => "index.json lists no manifests".into(),
                },
            });
        }
        [one] => (*one).clone(),
        many if many.iter().all(|d| d.platform.is_some()) => {
            let sub = manifest::Index {
                media_type: None,
                manifests: many.iter().map(|d| (*d).clone()).collect(),
            };
            manifest::select(&sub, platform)?.clone()
        }
        many => {
            let tags: Vec<&str> = many
                .iter()
                .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
                .collect();
            return Err(Error::Invalid {
                what: "OCI layout",
                reason: format!(
                    "it holds {} images; name one with :<tag> ({})",
                    many.len(),
                    tags.join(", ")
                ),
            });
        }
    };
    let mut tags: Vec<String> = descriptor
        .annotations
        .get(REF_NAME)
        .cloned()
        .into_iter()
        .collect();
    let mut digest = descriptor.digest.clone();
    let mut media_type = Some(descriptor.media_type.clone()).filter(|m| !m.is_empty());
    // Follow nested indexes down to an image manifest (bounded).
    for _ in 0..4 {
        let bytes = read_json_blob(blobs.as_ref(), &digest)?;
        match manifest::parse(&bytes, media_type.as_deref())? {
            Parsed::Index(nested) => {
                let chosen = manifest::select(&nested, platform)?;
                digest = chosen.digest.clone();
                media_type = Some(chosen.media_type.clone()).filter(|m| !m.is_empty());
            }
            Parsed::Manifest(m) => {
                let config_bytes = read_json_blob(blobs.as_ref(), &m.config.digest)?;
                let config = parse_config(&config_bytes)?;
                let layers = Image::layers_from(
                    m.layers
                        .iter()
                        .map(|l| (l.digest.clone(), l.media_type.clone(), l.size as u64)),
                    &config,
                )?;
                tags.sort();
                return Ok(Image {
                    source,
                    manifest_digest: Some(digest),
                    config_digest: m.config.digest.clone(),
                    config,
                    config_bytes,
                    layers,
                    tags,
                    blobs,
                });
            }
        }
    }
    Err(Error::Invalid {
        what: "OCI layout",
        reason: "indexes nested more than 4 deep".into(),
    })
}

fn read_small_file(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).map_err(io_error(path))?;
    if !meta.file_type().is_file() || meta.len() > MAX_JSON_BLOB {
        return Err(Error::Invalid {
            what: "OCI layout",
            reason: format!("{} is not a regular file of sane size", path.display()),
        });
    }
    std::fs::read(path).map_err(io_error(path))
}
