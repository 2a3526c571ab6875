//! A real Debian image built from Debian's packages (e2e/images/build-debian.sh): three layers
//! (debootstrap; apt-get install curl; dpkg --purge curl). Expected packages come from
//! `dpkg-query --admindir` after each layer, never from our own output.

use super::{stella, test_image};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn image() -> Option<PathBuf> {
    test_image("build-debian.sh", "debian-bookworm")
}

fn expected(dir: &Path, layer: usize) -> BTreeSet<(String, String, String)> {
    std::fs::read_to_string(dir.join(format!("expected-{layer}.txt")))
        .unwrap()
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            (
                parts.next().unwrap().into(),
                parts.next().unwrap().into(),
                parts.next().unwrap().into(),
            )
        })
        .collect()
}

fn scan(target: &str, data_dir: &Path, format: &str) -> serde_json::Value {
    let out = stella()
        .args(["scan", target, "--quiet", "--format", format, "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn property<'a>(component: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    component["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?["value"]
        .as_str()
}

#[test]
fn real_debian_image_matches_dpkg_and_attributes_layers() {
    let Some(dir) = image() else { return };
    let data = tempfile::tempdir().unwrap();
    let oci = format!("{}:bookworm", dir.join("oci").display());
    let tar = dir.join("image.tar").display().to_string();
    let (layer1, layer2, layer3) = (expected(&dir, 1), expected(&dir, 2), expected(&dir, 3));
    assert!(
        layer2.len() > layer1.len() && layer3.len() < layer2.len(),
        "the image must add then purge packages"
    );

    for target in [&oci, &tar] {
        let bom = scan(target, data.path(), "cyclonedx-json");
        let layers: Vec<String> = bom["metadata"]["properties"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"].as_str().unwrap().starts_with("stellaops:layer."))
            .map(|p| p["value"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(layers.len(), 3);
        let mut found = BTreeMap::new();
        for c in bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "library")
        {
            let key = (
                c["name"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
                property(c, "stellaops:package.arch").unwrap().to_string(),
            );
            let layer = layers
                .iter()
                .position(|l| Some(l.as_str()) == property(c, "stellaops:layerDigest"));
            found.insert(key, layer);
        }
        let ours: BTreeSet<_> = found.keys().cloned().collect();
        assert_eq!(ours, layer3, "{target}: packages differ from dpkg-query");
        for (key, layer) in &found {
            let expected_layer = if layer1.contains(key) { 0 } else { 1 };
            assert_eq!(*layer, Some(expected_layer), "{target}: {key:?}");
        }
        let curl: Vec<_> = found.keys().filter(|(n, _, _)| n == "curl").collect();
        assert!(curl.is_empty(), "curl was purged in layer 3");
        // Dependencies resolve to installed packages: bash pre-depends on libc6.
        let bash = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "bash")
            .unwrap()["bom-ref"]
            .clone();
        let libc = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "libc6")
            .unwrap()["bom-ref"]
            .clone();
        let bash_deps = bom["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ref"] == bash)
            .unwrap();
        assert!(
            bash_deps["dependsOn"].as_array().unwrap().contains(&libc),
            "{bash_deps}"
        );
        assert_eq!(bom["metadata"]["component"]["type"], "container");
        assert!(
            bom["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "operating-system" && c["name"] == "debian")
        );
    }
}

#[test]
fn real_scan_outputs_validate_and_a_warm_rescan_reads_no_layer_blob() {
    let Some(dir) = image() else { return };
    let Some(schemas) = schemas() else { return };
    let data = tempfile::tempdir().unwrap();
    // A private copy of the layout whose layer blobs we can delete.
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(dir.join("oci"))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    let oci = copy.path().join("oci");
    let target = format!("{}:bookworm", oci.display());

    let cdx = scan(&target, data.path(), "cyclonedx-json");
    let spdx = scan(&target, data.path(), "spdx-json");
    assert_valid(
        &schemas.join("cyclonedx/bom-1.6.schema.json"),
        &cdx,
        Some(&schemas.join("cyclonedx")),
    );
    assert_valid(
        &schemas.join("spdx-3.0.1/spdx-json-schema.json"),
        &spdx,
        None,
    );

    // Remove every layer blob: only the manifest, config and index remain.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(oci.join("blobs/sha256").join(&manifest_digest[7..])).unwrap(),
    )
    .unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        std::fs::remove_file(
            oci.join("blobs/sha256")
                .join(&layer["digest"].as_str().unwrap()[7..]),
        )
        .unwrap();
    }
    let again = scan(&target, data.path(), "cyclonedx-json");
    assert_eq!(
        again, cdx,
        "a warm rescan gives the same SBOM without reading any layer"
    );
}

fn schemas() -> Option<PathBuf> {
    stella_e2e::services::fixtures("schemas")
}

struct LocalSchemas(PathBuf);

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
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

fn assert_valid(schema: &Path, document: &serde_json::Value, refs: Option<&Path>) {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(schema).unwrap()).unwrap();
    let mut options = jsonschema::options().should_validate_formats(true);
    if let Some(refs) = refs {
        options = options.with_retriever(LocalSchemas(refs.to_path_buf()));
    }
    let validator = options.build(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(document)
        .take(10)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
