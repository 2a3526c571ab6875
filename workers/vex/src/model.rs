//! The normalised VEX model every format is read into: one [`Statement`] per (vulnerability,
//! product) claim, with the provider who made it and the document it came from.

use crate::purl::{self, Purl};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a product identifier was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Purl(#[from] purl::Error),
    /// The identifier, clipped to 80 characters.
    #[error("product {0:?} is neither a purl nor a sha256: image digest")]
    NotAProduct(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The four VEX statuses (OpenVEX names; CSAF and CycloneDX are mapped onto them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl Status {
    /// All statuses, in declaration order.
    pub const ALL: [Status; 4] = [
        Status::NotAffected,
        Status::Affected,
        Status::Fixed,
        Status::UnderInvestigation,
    ];

    /// The OpenVEX spelling: `not_affected`, `affected`, `fixed`, `under_investigation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotAffected => "not_affected",
            Status::Affected => "affected",
            Status::Fixed => "fixed",
            Status::UnderInvestigation => "under_investigation",
        }
    }

    /// Parses the OpenVEX spelling.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Tie-break rank of the consensus, higher wins: affected > under_investigation > fixed >
    /// not_affected (the conservative order: when trust is equal, assume the worst).
    pub fn precedence(self) -> u8 {
        match self {
            Status::Affected => 3,
            Status::UnderInvestigation => 2,
            Status::Fixed => 1,
            Status::NotAffected => 0,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a product is not affected, in the OpenVEX vocabulary (identical to the CSAF flag labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Justification {
    ComponentNotPresent,
    VulnerableCodeNotPresent,
    VulnerableCodeNotInExecutePath,
    VulnerableCodeCannotBeControlledByAdversary,
    InlineMitigationsAlreadyExist,
}

impl Justification {
    /// All five justifications.
    pub const ALL: [Justification; 5] = [
        Justification::ComponentNotPresent,
        Justification::VulnerableCodeNotPresent,
        Justification::VulnerableCodeNotInExecutePath,
        Justification::VulnerableCodeCannotBeControlledByAdversary,
        Justification::InlineMitigationsAlreadyExist,
    ];

    /// The OpenVEX / CSAF spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Justification::ComponentNotPresent => "component_not_present",
            Justification::VulnerableCodeNotPresent => "vulnerable_code_not_present",
            Justification::VulnerableCodeNotInExecutePath => "vulnerable_code_not_in_execute_path",
            Justification::VulnerableCodeCannotBeControlledByAdversary => {
                "vulnerable_code_cannot_be_controlled_by_adversary"
            }
            Justification::InlineMitigationsAlreadyExist => "inline_mitigations_already_exist",
        }
    }

    /// Parses the OpenVEX / CSAF spelling.
    pub fn parse(s: &str) -> Option<Justification> {
        Justification::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A CycloneDX `analysis.justification` mapped onto the OpenVEX vocabulary:
    /// `code_not_present` → vulnerable_code_not_present, `code_not_reachable` →
    /// vulnerable_code_not_in_execute_path, `requires_configuration` / `requires_dependency` /
    /// `requires_environment` → vulnerable_code_cannot_be_controlled_by_adversary (exploitation
    /// needs a condition the adversary does not control), `protected_by_compiler` /
    /// `protected_at_runtime` / `protected_at_perimeter` / `protected_by_mitigating_control` →
    /// inline_mitigations_already_exist.
    pub fn from_cyclonedx(s: &str) -> Option<Justification> {
        Some(match s {
            "code_not_present" => Justification::VulnerableCodeNotPresent,
            "code_not_reachable" => Justification::VulnerableCodeNotInExecutePath,
            "requires_configuration" | "requires_dependency" | "requires_environment" => {
                Justification::VulnerableCodeCannotBeControlledByAdversary
            }
            "protected_by_compiler"
            | "protected_at_runtime"
            | "protected_at_perimeter"
            | "protected_by_mitigating_control" => Justification::InlineMitigationsAlreadyExist,
            _ => return None,
        })
    }
}

impl fmt::Display for Justification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a statement is about: a package (purl, canonical form), a container image (`sha256:`
/// digest), or a CycloneDX BOM-Link (`urn:cdx:…`) into another BOM, kept as written but never
/// matched (the BOM it points into is not at hand).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Product {
    Purl(String),
    Image(String),
    BomLink(String),
}

impl Product {
    /// Reads a product identifier: a purl (normalised to its canonical form), a `sha256:<64 hex>`
    /// digest (lowercased), or a BOM-Link.
    pub fn parse(s: &str) -> Result<Product> {
        let s = s.trim();
        if s.starts_with("pkg:") {
            return Ok(Product::Purl(Purl::parse(s)?.to_string()));
        }
        if let Some(digest) = image_digest(s) {
            return Ok(Product::Image(digest));
        }
        if s.starts_with("urn:cdx:") {
            return Ok(Product::BomLink(s.to_string()));
        }
        Err(Error::NotAProduct(crate::clip(s)))
    }

    /// The identifier as stored and shown.
    pub fn as_str(&self) -> &str {
        match self {
            Product::Purl(s) | Product::Image(s) | Product::BomLink(s) => s,
        }
    }

    /// The image digest this product names: an image product, or a `pkg:oci` purl whose version
    /// is a `sha256:` digest.
    pub fn image_digest(&self) -> Option<String> {
        match self {
            Product::Image(d) => Some(d.clone()),
            Product::Purl(p) => Purl::parse(p)
                .ok()
                .filter(|p| p.ty == "oci")
                .and_then(|p| p.version.as_deref().and_then(image_digest)),
            Product::BomLink(_) => None,
        }
    }
}

/// `sha256:<64 hex>` in lowercase, or `None`.
pub fn image_digest(s: &str) -> Option<String> {
    let hex = s
        .strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("SHA256:"))?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

impl From<Product> for String {
    fn from(p: Product) -> String {
        match p {
            Product::Purl(s) | Product::Image(s) | Product::BomLink(s) => s,
        }
    }
}

impl TryFrom<String> for Product {
    type Error = Error;
    fn try_from(s: String) -> Result<Product> {
        Product::parse(&s)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The vulnerability a statement is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Vulnerability {
    /// The primary identifier as written (`CVE-2021-44228`, `GHSA-…`, a vendor id).
    pub id: String,
    /// Other identifiers of the same vulnerability, sorted, without `id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// Who made a statement.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Provider {
    /// OpenVEX `author`; CSAF `document.publisher.name`; CycloneDX metadata manufacturer /
    /// supplier / first author, or the configured name.
    pub name: String,
    /// CSAF `document.publisher.namespace` (a URL identifying the publisher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} <{ns}>", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The document formats read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// OpenVEX 0.2.0 and the older `https://openvex.dev/ns` (v0.0.x) context.
    OpenVex,
    /// CSAF 2.0, VEX profile (`document.category: csaf_vex`).
    Csaf,
    /// CycloneDX 1.4–1.6 `vulnerabilities[].analysis`.
    CycloneDx,
}

impl Format {
    /// `openvex`, `csaf`, `cyclonedx`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OpenVex => "openvex",
            Format::Csaf => "csaf",
            Format::CycloneDx => "cyclonedx",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a statement was read from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Source {
    pub format: Format,
    /// `sha256:` of the document's bytes.
    pub document_digest: String,
    /// The document's own identifier: OpenVEX `@id`, CSAF `tracking.id`, CycloneDX
    /// `serialNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// Position among the document's accepted statements (0-based): with the digest, the
    /// statement's identity.
    pub index: u32,
}

/// One normalised VEX claim: `provider` says `vulnerability` has `status` in `product`
/// (narrowed to `subcomponents` when there are any).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Statement {
    pub vulnerability: Vulnerability,
    pub product: Product,
    /// Components of `product` the claim is about (canonical purls, sorted); empty means the
    /// whole product.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcomponents: Vec<String>,
    pub status: Status,
    /// The justification in the OpenVEX vocabulary (CycloneDX's mapped onto it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<Justification>,
    /// The justification exactly as the document wrote it (CSAF flag label, CycloneDX
    /// `analysis.justification`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_justification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact_statement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_statement: Option<String>,
    pub provider: Provider,
    /// When the claim was issued, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<String>,
    /// When it was last updated, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    pub source: Source,
}

impl Statement {
    /// Whether this statement is about `component_purl` found in the image `image_digest`; see
    /// [`crate::applies`].
    pub fn applies(&self, image_digest: Option<&str>, component_purl: &str) -> bool {
        crate::purl::applies(
            &self.product,
            &self.subcomponents,
            image_digest,
            component_purl,
        )
    }

    /// The content that identifies the claim regardless of where it was read from: everything
    /// but [`Source`], as canonical JSON. Two files carrying the same claim yield the same key.
    pub fn content_key(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.remove("source");
        }
        value.to_string()
    }

    /// The time the claim speaks for: `last_updated`, else `issued`.
    pub fn effective_time(&self) -> Option<&str> {
        self.last_updated.as_deref().or(self.issued.as_deref())
    }
}

/// A statement (or a whole part of a document) that was not accepted, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Where in the document: `statements[2]`, `vulnerabilities[0].product_status.fixed[1]`, …
    pub location: String,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

/// One parsed document: the statements accepted from it and the parts rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub format: Format,
    /// `sha256:` of the bytes parsed.
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub provider: Provider,
    pub statements: Vec<Statement>,
    pub rejected: Vec<Rejection>,
}
