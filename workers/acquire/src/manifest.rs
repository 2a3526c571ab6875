//! OCI and Docker v2 manifests, indexes (manifest lists) and platform selection.

use crate::image::Platform;
use crate::{Digest, Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Layer media types we read. Compression is detected from the bytes, not trusted from here.
pub const LAYER_TYPES: [&str; 7] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Largest manifest, index or config we read (real ones are kilobytes).
pub const MAX_JSON_BLOB: u64 = 8 * 1024 * 1024;

/// A content descriptor.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default)]
    pub platform: Option<DescriptorPlatform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The platform of an index entry.
#[derive(Clone, Debug, Deserialize)]
pub struct DescriptorPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub schema_version: i64,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index or Docker manifest list.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// What a manifest-ish blob turned out to be.
#[derive(Debug)]
pub enum Parsed {
    Manifest(Manifest),
    Index(Index),
}

/// Parses a manifest or index, by its media type when given, else by its shape.
pub fn parse(bytes: &[u8], media_type: Option<&str>) -> Result<Parsed> {
    let invalid = |e: serde_json::Error| Error::Invalid {
        what: "manifest",
        reason: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
    let declared = media_type.map(str::to_string).or_else(|| {
        value
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string)
    });
    let is_index = match declared.as_deref() {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) if other.contains("schema1") || other.contains("v1+prettyjws") => {
            return Err(Error::Invalid {
                what: "manifest",
                reason: format!("{other} (Docker schema 1) is not supported"),
            });
        }
        _ => value.get("manifests").is_some(),
    };
    if is_index {
        let index: Index = serde_json::from_value(value).map_err(invalid)?;
        Ok(Parsed::Index(index))
    } else {
        let manifest: Manifest = serde_json::from_value(value).map_err(invalid)?;
        for layer in &manifest.layers {
            if !layer.media_type.is_empty() && !LAYER_TYPES.contains(&layer.media_type.as_str()) {
                return Err(Error::Invalid {
                    what: "manifest",
                    reason: format!(
                        "layer {} has unsupported media type {}",
                        layer.digest, layer.media_type
                    ),
                });
            }
            if layer.size < 0 {
                return Err(Error::Invalid {
                    what: "manifest",
                    reason: format!("layer {} has a negative size", layer.digest),
                });
            }
        }
        Ok(Parsed::Manifest(manifest))
    }
}

/// The index entry for `wanted`: exact os/architecture, and variant when both sides give one
/// (arm64 entries usually say `v8`; a request for `linux/arm64` takes any variant).
pub fn select<'a>(index: &'a Index, wanted: &Platform) -> Result<&'a Descriptor> {
    let matches = |p: &DescriptorPlatform| {
        p.os == wanted.os
            && p.architecture == wanted.architecture
            && match (&wanted.variant, &p.variant) {
                (Some(w), Some(v)) => w == v,
                _ => true,
            }
    };
    // Attestation manifests (buildkit) carry platform unknown/unknown; they never match.
    let mut candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(matches))
        .collect();
    candidates.sort_by(|a, b| a.digest.cmp(&b.digest));
    // Prefer an exact variant match when several entries match.
    if let Some(variant) = &wanted.variant
        && let Some(exact) = candidates
            .iter()
            .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_ref()) == Some(variant))
    {
        return Ok(exact);
    }
    candidates.into_iter().next().ok_or_else(|| {
        let available: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| match &p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            })
            .collect();
        Error::NoMatchingPlatform {
            wanted: wanted.to_string(),
            available: available.join(", "),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn selects_the_platform_and_explains_a_miss() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#,
            d(1),
            d(2),
            d(3)
        );
        let Parsed::Index(index) = parse(index.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert_eq!(
            select(&index, &"linux/amd64".parse().unwrap())
                .unwrap()
                .digest
                .as_str(),
            d(1)
        );
        assert_eq!(
            select(&index, &"linux/arm64".parse().unwrap())
                .unwrap()
                .digest
                .as_str(),
            d(2)
        );
        assert_eq!(
            select(&index, &"linux/arm64/v8".parse().unwrap())
                .unwrap()
                .digest
                .as_str(),
            d(2)
        );
        let miss = select(&index, &"linux/s390x".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(miss.contains("linux/amd64, linux/arm64/v8"), "{miss}");
    }

    #[test]
    fn rejects_garbage_schema1_and_foreign_layers() {
        assert!(parse(b"{", None).is_err());
        assert!(parse(b"[]", None).is_err());
        let s1 = br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert!(
            parse(s1, None)
                .unwrap_err()
                .to_string()
                .contains("schema 1")
        );
        let bad_layer = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":2}},
            "layers":[{{"mediaType":"text/html","digest":"{}","size":2}}]}}"#,
            d(1),
            d(2)
        );
        assert!(
            parse(bad_layer.as_bytes(), None)
                .unwrap_err()
                .to_string()
                .contains("text/html")
        );
        let bad_digest = r#"{"config":{"digest":"sha256:../../etc/passwd","size":2},"layers":[]}"#;
        assert!(parse(bad_digest.as_bytes(), None).is_err());
    }
}
