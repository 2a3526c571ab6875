//! Emitted documents validate against the official schemas in `../shared/fixtures/schemas/`
//! and are byte-identical for the same inventory.

use serde_json::Value;
use std::path::PathBuf;
use stella_analyzers::{Distro, Ecosystem, Evidence, Package};
use stella_sbom::{Component, ImageInfo, Inventory};

fn schemas() -> Option<PathBuf> {
    stella_e2e::services::fixtures("schemas")
}

fn load(path: PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Resolves the CycloneDX schema's references to the sibling files; never the network.
struct LocalSchemas(PathBuf);

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .path()
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(serde_json::from_slice(&std::fs::read(self.0.join(name))?)?)
    }
}

pub fn sample_inventory() -> Inventory {
    let package = |name: &str, version: &str, layer: usize| Component {
        package: Package {
            ecosystem: Ecosystem::Deb,
            name: name.into(),
            version: version.into(),
            arch: Some("amd64".into()),
            source_name: Some(format!("{name}-src")),
            source_version: None,
            licenses: vec!["GPL-2+".into(), "MIT".into()],
            supplier: Some("Debian Maintainers <debian@lists.debian.org>".into()),
            installed_size: Some(1024),
            depends: vec!["libc6 (>= 2.34)".into()],
            provides: vec![],
            depends_on: if name == "curl" {
                vec!["pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12".into()]
            } else {
                vec![]
            },
            files: vec![format!("/usr/bin/{name}")],
            purl: format!(
                "pkg:deb/debian/{name}@{}?arch=amd64&distro=debian-12",
                version.replace('+', "%2B")
            ),
            evidence: Evidence {
                source: "dpkg-status".into(),
                path: "var/lib/dpkg/status".into(),
                method: "package-database".into(),
            },
        },
        layer_digest: Some(format!("sha256:{}", format!("{layer:02x}").repeat(32))),
        used_by_entrypoint: false,
        properties: vec![],
    };
    Inventory {
        image: ImageInfo {
            digest: format!("sha256:{}", "ab".repeat(32)),
            config_digest: format!("sha256:{}", "cd".repeat(32)),
            name: "registry.example.com/team/app:1.0".into(),
            repository: Some("registry.example.com/team/app".into()),
            tags: vec!["1.0".into()],
            created: Some("2024-05-01T10:20:30.123456789Z".into()),
            os: "linux".into(),
            architecture: "amd64".into(),
            user: None,
            layers: vec![
                format!("sha256:{}", "01".repeat(32)),
                format!("sha256:{}", "02".repeat(32)),
            ],
        },
        distro: Some(Distro {
            id: "debian".into(),
            version_id: Some("12".into()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
            ..Default::default()
        }),
        components: vec![
            package("bash", "5.2.15-2+b2", 1),
            package("coreutils", "9.1-1", 1),
            package("curl", "7.88.1-10+deb12u5", 2),
        ],
        analyzer_version: stella_analyzers::ANALYZER_VERSION.into(),
        errors: vec![],
        relationships: vec![],
        entry_trace: None,
        view: Default::default(),
        origin: None,
    }
}

#[test]
fn cyclonedx_validates_against_the_1_6_schema() {
    let Some(dir) = schemas() else { return };
    let schema = load(dir.join("cyclonedx/bom-1.6.schema.json"));
    let validator = jsonschema::options()
        .with_retriever(LocalSchemas(dir.join("cyclonedx")))
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let document: Value =
        serde_json::from_str(&stella_sbom::cyclonedx::to_json(&sample_inventory())).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn cyclonedx_1_5_validates_against_the_1_5_schema_and_not_as_1_6() {
    let Some(dir) = schemas() else { return };
    let build = |name: &str| {
        jsonschema::options()
            .with_retriever(LocalSchemas(dir.join("cyclonedx")))
            .should_validate_formats(true)
            .build(&load(dir.join("cyclonedx").join(name)))
            .unwrap()
    };
    let (v15, v16) = (build("bom-1.5.schema.json"), build("bom-1.6.schema.json"));
    let text = stella_sbom::cyclonedx::to_json_1_5(&sample_inventory());
    assert_eq!(
        text,
        stella_sbom::cyclonedx::to_json_1_5(&sample_inventory())
    );
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["specVersion"], "1.5");
    let errors: Vec<String> = v15
        .iter_errors(&document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The 1.6 document is another one: another serial number, the same components.
    let six: Value =
        serde_json::from_str(&stella_sbom::cyclonedx::to_json(&sample_inventory())).unwrap();
    assert_ne!(six["serialNumber"], document["serialNumber"]);
    assert_eq!(six["components"], document["components"]);
    // The 1.5 schema is not vacuous: a component field new in 1.6 is refused by it alone.
    let mut newer = document.clone();
    newer["components"][0]["tags"] = serde_json::json!(["new-in-1.6"]);
    assert!(!v15.is_valid(&newer));
    assert!(v16.is_valid(&newer));
}

#[test]
fn spdx_validates_against_the_3_0_1_schema() {
    let Some(dir) = schemas() else { return };
    let schema = load(dir.join("spdx-3.0.1/spdx-json-schema.json"));
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let document: Value =
        serde_json::from_str(&stella_sbom::spdx::to_json(&sample_inventory())).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The official example validates with the same validator (the validator is not vacuous).
    let example = load(dir.join("spdx-3.0.1/examples/spdx-spec-package_sbom.json"));
    assert!(validator.is_valid(&example));
    assert!(!validator.is_valid(&serde_json::json!({"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": [{"type": "software_Package"}]})));
}

#[test]
fn spdx_2_3_validates_against_its_schema() {
    let Some(dir) = schemas() else { return };
    let schema = load(dir.join("spdx-2.3/spdx-schema.json"));
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let mut inventory = sample_inventory();
    inventory.relationships.push(stella_sbom::Relationship {
        from: inventory.components[2].package.purl.clone(),
        to: inventory.components[0].package.purl.clone(),
        kind: "links_to".into(),
    });
    let text = stella_sbom::spdx2::to_json(&inventory);
    let document: Value = serde_json::from_str(&text).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    // The image, then one package per component, each with its purl and contained by the
    // image; every relationship names elements the document defines.
    let packages = document["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1 + inventory.components.len());
    assert_eq!(packages[0]["primaryPackagePurpose"], "CONTAINER");
    let ids: std::collections::BTreeSet<&str> = packages
        .iter()
        .map(|p| p["SPDXID"].as_str().unwrap())
        .chain(["SPDXRef-DOCUMENT"])
        .collect();
    assert_eq!(ids.len(), packages.len() + 1, "SPDXIDs are unique");
    for r in document["relationships"].as_array().unwrap() {
        assert!(ids.contains(r["spdxElementId"].as_str().unwrap()), "{r}");
        assert!(
            ids.contains(r["relatedSpdxElement"].as_str().unwrap()),
            "{r}"
        );
    }
    let kinds: Vec<&str> = document["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["relationshipType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "CONTAINS").count(), 3);
    assert!(kinds.contains(&"DEPENDS_ON") && kinds.contains(&"DYNAMIC_LINK"));
    assert!(
        packages[3]["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .starts_with("pkg:deb/debian/curl@")
    );
    assert!(
        !text.contains("license"),
        "no licensing fields but dataLicense"
    );
    assert_eq!(document["creationInfo"]["created"], "2024-05-01T10:20:30Z");
    // Byte-identical for the same inventory, and another image gives another namespace.
    assert_eq!(text, stella_sbom::spdx2::to_json(&inventory.clone()));
    let mut other = inventory.clone();
    other.image.digest = format!("sha256:{}", "ef".repeat(32));
    assert_ne!(
        document["documentNamespace"],
        stella_sbom::spdx2::document(&other)["documentNamespace"]
    );
    // The validator is not vacuous: a package without its download location is refused.
    let mut broken = document.clone();
    broken["packages"][1]
        .as_object_mut()
        .unwrap()
        .remove("downloadLocation");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn output_is_byte_identical_and_content_derived() {
    let inventory = sample_inventory();
    assert_eq!(
        stella_sbom::cyclonedx::to_json(&inventory),
        stella_sbom::cyclonedx::to_json(&inventory.clone())
    );
    assert_eq!(
        stella_sbom::spdx::to_json(&inventory),
        stella_sbom::spdx::to_json(&inventory.clone())
    );
    let mut other = inventory.clone();
    other.image.digest = format!("sha256:{}", "ef".repeat(32));
    let serial = |i: &Inventory| stella_sbom::cyclonedx::document(i)["serialNumber"].clone();
    assert_ne!(serial(&inventory), serial(&other));
    let text = stella_sbom::cyclonedx::to_json(&inventory);
    assert!(text.contains("\"stellaops:layerDigest\""));
    assert!(text.contains("2024-05-01T10:20:30.123456789Z"));
}

/// Upgrades and downgrades are decided by the ecosystem's own order (dpkg: `~` sorts before
/// anything, so `9.1-1~bpo` → `9.1-1` is an upgrade even though it is shorter), metadata
/// changes name their fields, and an unchanged package is not mentioned.
#[test]
fn diff_classifies_changes_by_the_ecosystems_order() {
    let old = sample_inventory();
    let mut new = sample_inventory();
    new.image.layers[1] = format!("sha256:{}", "03".repeat(32));
    let by_name = |inv: &mut Inventory, name: &str| -> usize {
        inv.components
            .iter()
            .position(|c| c.package.name == name)
            .unwrap()
    };
    let mut old = old;
    let i = by_name(&mut old, "coreutils");
    old.components[i].package.version = "9.1-1~bpo12+1".into();
    let i = by_name(&mut new, "curl");
    new.components[i].package.version = "7.88.1-10+deb12u4".into();
    let i = by_name(&mut new, "bash");
    new.components[i].package.licenses = vec!["GPL-3+".into()];
    let mut extra = new.components[0].clone();
    extra.package.name = "zlib1g".into();
    new.components.push(extra);
    let diff = stella_sbom::diff::diff(&old, &new, &stella_advisories::matching::compare);
    let got: Vec<(String, String, Option<String>, Vec<String>)> = diff
        .changes
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.kind.clone(),
                c.direction.clone(),
                c.fields.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "bash".into(),
                "metadata_changed".into(),
                None,
                vec!["licenses".into()]
            ),
            (
                "coreutils".into(),
                "version_changed".into(),
                Some("upgraded".into()),
                vec![]
            ),
            (
                "curl".into(),
                "version_changed".into(),
                Some("downgraded".into()),
                vec![]
            ),
            ("zlib1g".into(), "added".into(), None, vec![]),
        ]
    );
    assert_eq!(diff.shared_layers, 1);
    assert_eq!(diff.summary["removed"], 0);
    assert!(
        stella_sbom::diff::diff(&old, &old, &stella_advisories::matching::compare)
            .changes
            .is_empty()
    );
}
mod bomindex;
mod protobuf;
