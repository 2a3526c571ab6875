//! CycloneDX 1.6: the content of the BOM, decided once from the inventory ([`Bom::new`]), and
//! its JSON rendering. [`crate::cyclonedx_pb`] renders the very same [`Bom`] as protobuf, so the
//! two formats cannot drift apart.
//!
//! The JSON is canonical (keys sorted, two-space indentation, newline-ended): the model's fields
//! are declared in key order, so serde writes them sorted without building a `Value` tree; a test
//! checks the output against [`crate::canonical`].

use crate::{Inventory, TOOL_VERSION, derived_uuid};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use stella_analyzers::purl;

/// Renders the inventory as a CycloneDX 1.6 JSON document (pretty, canonical, newline-ended).
pub fn to_json(inventory: &Inventory) -> String {
    let mut out = Vec::with_capacity(1024 + inventory.components.len() * 1024);
    serde_json::to_writer_pretty(&mut out, &Bom::new(inventory)).expect("a BOM serialises");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Renders the inventory as a CycloneDX 1.5 JSON document, for tools that do not read 1.6 yet:
/// the same content (nothing we emit is new in 1.6), `specVersion` 1.5 and its own serial
/// number (another document).
pub fn to_json_1_5(inventory: &Inventory) -> String {
    let mut bom = Bom::new(inventory);
    bom.spec_version = "1.5";
    bom.serial_number = format!(
        "urn:uuid:{}",
        derived_uuid(&[
            "cyclonedx-1.5",
            &inventory.image.digest,
            &inventory.analyzer_version,
            inventory.view.as_str()
        ])
    );
    let mut out = Vec::with_capacity(1024 + inventory.components.len() * 1024);
    serde_json::to_writer_pretty(&mut out, &bom).expect("a BOM serialises");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The document as a JSON value.
pub fn document(inventory: &Inventory) -> Value {
    serde_json::to_value(Bom::new(inventory)).expect("a BOM serialises")
}

/// A CycloneDX 1.6 BOM. Fields are declared in JSON key order (the canonical order).
#[derive(Debug, Serialize)]
pub(crate) struct Bom<'a> {
    #[serde(rename = "bomFormat")]
    pub(crate) bom_format: &'static str,
    /// The operating system first, then the inventory's components in order.
    pub(crate) components: Vec<BomComponent<'a>>,
    /// Sorted by `ref`.
    pub(crate) dependencies: Vec<Dependency<'a>>,
    pub(crate) metadata: Metadata<'a>,
    #[serde(rename = "serialNumber")]
    pub(crate) serial_number: String,
    #[serde(rename = "specVersion")]
    pub(crate) spec_version: &'static str,
    pub(crate) version: u32,
}

#[derive(Debug, Serialize)]
pub(crate) struct Metadata<'a> {
    /// The image.
    pub(crate) component: BomComponent<'a>,
    pub(crate) properties: Vec<Property<'a>>,
    /// The image's own `created` (RFC 3339), never the wall clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timestamp: Option<&'a str>,
    pub(crate) tools: Tools<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Tools<'a> {
    pub(crate) components: Vec<BomComponent<'a>>,
}

/// A component; empty lists and absent values are left out of both encodings.
#[derive(Debug, Serialize)]
pub(crate) struct BomComponent<'a> {
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    pub(crate) bom_ref: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) evidence: Option<ComponentEvidence>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) hashes: Vec<Hash<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) licenses: Vec<LicenseChoice<'a>>,
    pub(crate) name: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) properties: Vec<Property<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) publisher: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) purl: Option<Cow<'a, str>>,
    #[serde(rename = "type")]
    pub(crate) kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<&'a str>,
}

/// The component types we emit (CycloneDX `classification`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    Application,
    Container,
    OperatingSystem,
    Library,
    File,
}

#[derive(Debug, Serialize)]
pub(crate) struct ComponentEvidence {
    pub(crate) occurrences: Vec<Occurrence>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Occurrence {
    /// Absolute path in the image.
    pub(crate) location: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Hash<'a> {
    pub(crate) alg: HashAlg,
    /// Lowercase hex.
    pub(crate) content: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum HashAlg {
    #[serde(rename = "SHA-256")]
    Sha256,
}

/// `{"license": {"name": …}}`: licenses as written by the package, never guessed SPDX ids.
#[derive(Debug, Serialize)]
pub(crate) struct LicenseChoice<'a> {
    pub(crate) license: License<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct License<'a> {
    pub(crate) name: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Property<'a> {
    pub(crate) name: Cow<'a, str>,
    pub(crate) value: Cow<'a, str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Dependency<'a> {
    /// Sorted, unique.
    #[serde(rename = "dependsOn")]
    pub(crate) depends_on: Vec<Cow<'a, str>>,
    #[serde(rename = "ref")]
    pub(crate) reference: Cow<'a, str>,
}

impl<'a> Bom<'a> {
    /// Everything the BOM says about `inventory`, in emission order.
    pub(crate) fn new(inventory: &'a Inventory) -> Bom<'a> {
        let image = &inventory.image;
        let refs = references(inventory);
        let mut components = Vec::with_capacity(inventory.components.len() + 1);
        if let Some(distro) = &inventory.distro {
            components.push(BomComponent {
                description: distro.pretty_name.as_deref(),
                version: distro.version_id.as_deref(),
                bom_ref: Some(Cow::Owned(format!("os:{}", distro.qualifier()))),
                ..BomComponent::new(Kind::OperatingSystem, &distro.id)
            });
        }
        for (c, bom_ref) in inventory.components.iter().zip(&refs) {
            components.push(component(c, bom_ref.clone()));
        }
        Bom {
            bom_format: "CycloneDX",
            components,
            dependencies: dependencies(inventory, &refs),
            metadata: metadata(inventory),
            serial_number: format!(
                "urn:uuid:{}",
                match inventory.view {
                    crate::View::Inventory =>
                        derived_uuid(&["cyclonedx", &image.digest, &inventory.analyzer_version]),
                    view => derived_uuid(&[
                        "cyclonedx",
                        &image.digest,
                        &inventory.analyzer_version,
                        view.as_str()
                    ]),
                }
            ),
            spec_version: "1.6",
            version: 1,
        }
    }
}

impl<'a> BomComponent<'a> {
    fn new(kind: Kind, name: &'a str) -> BomComponent<'a> {
        BomComponent {
            bom_ref: None,
            description: None,
            evidence: None,
            hashes: vec![],
            licenses: vec![],
            name,
            properties: vec![],
            publisher: None,
            purl: None,
            kind,
            version: None,
        }
    }
}

fn prop<'a>(name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Property<'a> {
    Property {
        name: name.into(),
        value: value.into(),
    }
}

/// The bom-ref of each component: its purl, or `purl#path` when the purl occurs more than once.
fn references(inventory: &Inventory) -> Vec<Cow<'_, str>> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &inventory.components {
        *counts.entry(&c.package.purl).or_default() += 1;
    }
    inventory
        .components
        .iter()
        .map(|c| {
            let p = &c.package;
            if counts[p.purl.as_str()] > 1 {
                Cow::Owned(format!("{}#{}", p.purl, p.evidence.path))
            } else {
                Cow::Borrowed(p.purl.as_str())
            }
        })
        .collect()
}

fn metadata(inventory: &Inventory) -> Metadata<'_> {
    let image = &inventory.image;
    let mut properties = vec![
        prop("stellaops:imageDigest", &image.digest),
        prop("stellaops:configDigest", &image.config_digest),
        prop("stellaops:analyzerVersion", &inventory.analyzer_version),
    ];
    for (i, layer) in image.layers.iter().enumerate() {
        properties.push(prop(format!("stellaops:layer.{i:03}"), layer));
    }
    for error in &inventory.errors {
        properties.push(prop("stellaops:degraded", error));
    }
    for (name, value) in inventory.trace_properties() {
        properties.push(prop(name, value));
    }
    let name = image.repository.as_deref().unwrap_or(&image.name);
    let image_component = BomComponent {
        bom_ref: Some(Cow::Borrowed(&image.digest)),
        version: Some(&image.digest),
        hashes: vec![Hash {
            alg: HashAlg::Sha256,
            content: image.digest.trim_start_matches("sha256:"),
        }],
        purl: Some(Cow::Owned(oci_purl(inventory))),
        properties: image
            .tags
            .iter()
            .map(|t| prop("stellaops:tag", t))
            .collect(),
        ..BomComponent::new(Kind::Container, name)
    };
    let tool = BomComponent {
        version: Some(TOOL_VERSION),
        publisher: Some("Stella Ops"),
        ..BomComponent::new(Kind::Application, "stella")
    };
    Metadata {
        component: image_component,
        properties,
        timestamp: image.created.as_deref(),
        tools: Tools {
            components: vec![tool],
        },
    }
}

fn component<'a>(c: &'a crate::Component, bom_ref: Cow<'a, str>) -> BomComponent<'a> {
    let p = &c.package;
    let mut properties = vec![
        prop("stellaops:evidence.source", &p.evidence.source),
        prop("stellaops:evidence.method", &p.evidence.method),
    ];
    if let Some(layer) = &c.layer_digest {
        properties.push(prop("stellaops:layerDigest", layer));
    }
    if let Some(a) = &p.arch {
        properties.push(prop("stellaops:package.arch", a));
    }
    if let Some(s) = &p.source_name {
        properties.push(prop("stellaops:package.sourceName", s));
    }
    if let Some(s) = &p.source_version {
        properties.push(prop("stellaops:package.sourceVersion", s));
    }
    if let Some(size) = p.installed_size {
        properties.push(prop("stellaops:package.installedSize", size.to_string()));
    }
    properties.push(prop("stellaops:package.files", p.files.len().to_string()));
    if c.used_by_entrypoint {
        properties.push(prop("stellaops:usedByEntrypoint", "true"));
    }
    for (name, value) in &c.properties {
        properties.push(prop(name, value));
    }
    // `bin:{sha256}` identifies a file by content: no purl, a file component with its hash.
    let (kind, hashes, purl) = match p.purl.strip_prefix("bin:") {
        Some(sha256) => (
            Kind::File,
            vec![Hash {
                alg: HashAlg::Sha256,
                content: sha256,
            }],
            None,
        ),
        None => (Kind::Library, vec![], Some(Cow::Borrowed(p.purl.as_str()))),
    };
    BomComponent {
        bom_ref: Some(bom_ref),
        evidence: Some(ComponentEvidence {
            occurrences: vec![Occurrence {
                location: format!("/{}", p.evidence.path),
            }],
        }),
        hashes,
        licenses: p
            .licenses
            .iter()
            .map(|l| LicenseChoice {
                license: License { name: l },
            })
            .collect(),
        properties,
        publisher: p.supplier.as_deref(),
        purl,
        version: (!p.version.is_empty()).then_some(p.version.as_str()),
        ..BomComponent::new(kind, &p.name)
    }
}

/// The image depends on every component; each component on what its declarations resolve to
/// and what it links to (`links_to`), by bom-ref. One entry per bom-ref, sorted.
fn dependencies<'a>(inventory: &'a Inventory, refs: &[Cow<'a, str>]) -> Vec<Dependency<'a>> {
    let image_ref = Cow::Borrowed(inventory.image.digest.as_str());
    // A purl installed more than once resolves to its last occurrence.
    let by_purl: BTreeMap<&str, &Cow<'a, str>> = inventory
        .components
        .iter()
        .zip(refs)
        .map(|(c, r)| (c.package.purl.as_str(), r))
        .collect();
    let all: BTreeSet<&Cow<'a, str>> = refs.iter().collect();
    let mut dependencies = Vec::with_capacity(refs.len() + 1);
    dependencies.push(Dependency {
        depends_on: all.into_iter().cloned().collect(),
        reference: image_ref,
    });
    let links_from = crate::links_from(inventory);
    let mut seen = BTreeSet::new();
    for (c, r) in inventory.components.iter().zip(refs) {
        if !seen.insert(r) {
            continue;
        }
        let links = links_from
            .get(c.package.purl.as_str())
            .into_iter()
            .flatten();
        let depends: BTreeSet<&Cow<'a, str>> = c
            .package
            .depends_on
            .iter()
            .map(String::as_str)
            .chain(links.copied())
            .filter_map(|purl| by_purl.get(purl).copied())
            .collect();
        dependencies.push(Dependency {
            depends_on: depends.into_iter().cloned().collect(),
            reference: r.clone(),
        });
    }
    dependencies.sort_by(|a, b| a.reference.cmp(&b.reference));
    dependencies
}

/// `pkg:oci/<name>@<digest>?repository_url=<repo>&arch=<arch>`.
pub fn oci_purl(inventory: &Inventory) -> String {
    let image = &inventory.image;
    let name = image
        .repository
        .as_deref()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or("image")
        .to_ascii_lowercase();
    purl::build(
        "oci",
        None,
        &name,
        Some(&image.digest),
        &[
            ("repository_url", image.repository.as_deref()),
            ("arch", Some(&image.architecture)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serde writes the fields in declaration order: they must be the canonical (sorted) order.
    #[test]
    fn json_is_canonical() {
        let inventory: Inventory = serde_json::from_value(serde_json::json!({
            "image": {"digest": "sha256:00", "config_digest": "sha256:01", "name": "x:1",
                      "repository": null, "tags": ["1"], "created": null, "os": "linux",
                      "architecture": "arm64", "layers": ["sha256:02"]},
            "distro": {"id": "alpine", "version_id": "3.19", "version_codename": null,
                       "pretty_name": "Alpine", "id_like": []},
            "components": [
                {"package": {"ecosystem": "binary", "name": "a", "version": "", "arch": null,
                             "source_name": null, "source_version": null, "licenses": [],
                             "supplier": null, "installed_size": null, "depends": [],
                             "provides": [], "depends_on": [], "files": [], "purl": "bin:ff",
                             "evidence": {"source": "elf", "path": "a", "method": "file"}},
                 "layer_digest": null, "used_by_entrypoint": true,
                 "properties": [["stellaops:buildId", "1"]]},
                {"package": {"ecosystem": "apk", "name": "b\"", "version": "1", "arch": "x",
                             "source_name": "s", "source_version": "2", "licenses": ["MIT"],
                             "supplier": "p", "installed_size": 3, "depends": [],
                             "provides": [], "depends_on": ["bin:ff"], "files": [],
                             "purl": "pkg:apk/alpine/b@1",
                             "evidence": {"source": "apk", "path": "db", "method": "db"}},
                 "layer_digest": "sha256:02"}
            ],
            "analyzer_version": "1", "errors": ["broken"]
        }))
        .unwrap();
        let json = to_json(&inventory);
        assert_eq!(
            json,
            crate::canonical::to_string_pretty(&document(&inventory))
        );
        assert!(json.contains("\"b\\\"\""));
    }
}
