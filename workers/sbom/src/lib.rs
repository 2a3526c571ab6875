//! SBOM emission. The same [`Inventory`] always serialises to the same bytes: keys sorted,
//! components sorted, no wall-clock time (the only timestamp is the image's own `created`),
//! and identifiers derived from content, never random.

pub mod bomindex;
pub mod canonical;
pub mod cyclonedx;
pub mod cyclonedx_pb;
pub mod diff;
pub mod spdx;
pub mod spdx2;

use serde::{Deserialize, Serialize};
use stella_analyzers::{Distro, Package};

/// The image an SBOM describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Identity: manifest digest, else config digest (`sha256:…`).
    pub digest: String,
    pub config_digest: String,
    /// Name as the user gave it (`registry/repo:tag`, a path, …).
    pub name: String,
    /// Repository without tag or digest, when known (for the `pkg:oci` purl).
    pub repository: Option<String>,
    pub tags: Vec<String>,
    /// `created` from the image config (RFC 3339), if it has one.
    pub created: Option<String>,
    pub os: String,
    pub architecture: String,
    /// Layer blob digests, bottom first.
    pub layers: Vec<String>,
    /// `config.User`: who the entrypoint runs as (empty or absent: root).
    #[serde(default)]
    pub user: Option<String>,
}

/// One component with where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub package: Package,
    /// Digest of the layer that introduced it (as present continuously to the top layer).
    pub layer_digest: Option<String>,
    /// Whether what the entrypoint runs uses it (EntryTrace closure, linked libraries, modules
    /// its interpreter loads).
    #[serde(default)]
    pub used_by_entrypoint: bool,
    /// Further facts as `stellaops:` properties (name, value), sorted: `stellaops:buildId`, …
    #[serde(default)]
    pub properties: Vec<(String, String)>,
}

/// A typed edge between two components (by purl, or `bin:{sha256}`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Relationship {
    pub from: String,
    pub to: String,
    /// `links_to`: an executable or library needs the other at load time (ELF `DT_NEEDED`).
    pub kind: String,
}

/// Everything an SBOM is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub image: ImageInfo,
    pub distro: Option<Distro>,
    /// Sorted by purl.
    pub components: Vec<Component>,
    /// The analyzer set that produced it.
    pub analyzer_version: String,
    /// Databases found but unreadable (a degraded, not a fabricated, result).
    pub errors: Vec<String>,
    /// Edges beyond package dependencies (`links_to`), sorted.
    #[serde(default)]
    pub relationships: Vec<Relationship>,
    /// What the image's ENTRYPOINT / CMD runs, when it has one.
    #[serde(default)]
    pub entry_trace: Option<stella_entrytrace::Trace>,
    /// Which view of the image this is.
    #[serde(default)]
    pub view: View,
    /// Where the inventory came from when not from our analyzers: a build-time SBOM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// An inventory read from an SBOM instead of analysing layers: a signed build-time SBOM
/// (`trustBuildTimeSboms`: which, and who signed it) or an SBOM file (`stella scan sbom:FILE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// `build-time-sbom` or `sbom-file`.
    pub kind: String,
    /// `CycloneDX 1.6`, `SPDX 2.3`, …
    pub format: String,
    /// `sha256:` of the DSSE envelope that carried it, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_digest: Option<String>,
    /// The signer's key id (hex SHA-256 of its SubjectPublicKeyInfo), when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl Origin {
    /// The `stellaops:` properties that record it in SBOMs.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut properties = vec![
            ("stellaops:origin", self.kind.clone()),
            ("stellaops:origin.format", self.format.clone()),
        ];
        if let Some(digest) = &self.envelope_digest {
            properties.push(("stellaops:origin.envelopeDigest", digest.clone()));
        }
        if let Some(key) = &self.key_id {
            properties.push(("stellaops:origin.keyId", key.clone()));
        }
        properties
    }
}

/// The two views of an image (seed §5.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// Everything installed.
    #[default]
    Inventory,
    /// Only what the entrypoint uses.
    Usage,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Inventory => "inventory",
            View::Usage => "usage",
        }
    }
}

impl Inventory {
    /// The usage view: the components the entrypoint uses (`used_by_entrypoint`) and the
    /// relationships among them; everything else as in the inventory view.
    pub fn usage_view(&self) -> Inventory {
        let components: Vec<Component> = self
            .components
            .iter()
            .filter(|c| c.used_by_entrypoint)
            .cloned()
            .collect();
        let kept: std::collections::BTreeSet<&str> =
            components.iter().map(|c| c.package.purl.as_str()).collect();
        let relationships = self
            .relationships
            .iter()
            .filter(|r| kept.contains(r.from.as_str()) && kept.contains(r.to.as_str()))
            .cloned()
            .collect();
        Inventory {
            components,
            relationships,
            view: View::Usage,
            ..self.clone()
        }
    }

    /// The `stellaops:` properties that describe the view, the origin (a build-time SBOM) and
    /// the entrypoint's trace: the view (usage only), the outcome, each terminal, hop (with
    /// file:line) and unresolved reason.
    pub fn trace_properties(&self) -> Vec<(&'static str, String)> {
        let mut properties = Vec::new();
        if self.view == View::Usage {
            properties.push(("stellaops:view", self.view.as_str().to_string()));
        }
        if let Some(origin) = &self.origin {
            properties.extend(origin.properties());
        }
        let Some(trace) = &self.entry_trace else {
            return properties;
        };
        properties.push((
            "stellaops:entrytrace.outcome",
            trace.outcome.as_str().into(),
        ));
        for t in &trace.terminals {
            let kind = serde_json::to_value(t.kind).ok();
            let kind = kind.as_ref().and_then(|k| k.as_str()).unwrap_or_default();
            properties.push((
                "stellaops:entrytrace.terminal",
                format!("{kind} {}", t.path),
            ));
        }
        for h in &trace.hops {
            let kind = serde_json::to_value(h.kind).ok();
            let kind = kind.as_ref().and_then(|k| k.as_str()).unwrap_or_default();
            properties.push((
                "stellaops:entrytrace.hop",
                format!("{} {kind} {}", h.from, h.path),
            ));
        }
        for u in &trace.unknowns {
            properties.push((
                "stellaops:entrytrace.unknown",
                format!("{} at {}: {}", u.reason.as_str(), u.from, u.detail),
            ));
        }
        properties
    }
}

/// `links_to` targets by source.
pub(crate) fn links_from(inventory: &Inventory) -> std::collections::BTreeMap<&str, Vec<&str>> {
    let mut links: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for l in inventory
        .relationships
        .iter()
        .filter(|l| l.kind == "links_to")
    {
        links.entry(&l.from).or_default().push(&l.to);
    }
    links
}

/// The stella version recorded as the producing tool.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A UUID (RFC 4122 form, version 5 bits) derived from `parts`: the same inputs give the same
/// serial number, different inputs a different one.
pub fn derived_uuid(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let mut b: [u8; 16] = hasher.finalize()[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
