//! Emitted documents validate against the official schemas in `../shared/fixtures/schemas/`
//! and are byte-identical for the same inventory.

use serde_json::Value;
use std::path::PathBuf;
use stella_analyzers::{Distro, Ecosystem, Evidence, Package};
use stella_sbom::{Component, ImageInfo, Inventory};

fn schemas() -> Option<PathBuf> {
    let base = std::env::var_os("STELLA_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    let dir = base.join("schemas");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: no schemas at {}", dir.display());
        None
    }
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
