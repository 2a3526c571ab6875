//! `stella scan` stores the CycloneDX protobuf and the BOM-Index of each image;
//! `stella index query` finds images by purl and purl prefix from those indexes.

use super::{stella, test_image};
use std::path::Path;

fn query(data_dir: &Path, args: &[&str]) -> std::process::Output {
    stella()
        .args(["index", "query"])
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

#[test]
fn querying_without_indexes_or_packages_is_a_usage_error() {
    let data = tempfile::tempdir().unwrap();
    let out = query(data.path(), &["--prefix", "pkg:deb/"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has a BOM-Index"), "{stderr}");
    assert!(stderr.contains("stella scan"), "{stderr}");
    let out = query(data.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = query(data.path(), &["--prefix", "pkg:deb/", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_scanned_debian_image_is_found_by_prefix_and_purl() {
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let target = format!("{}:bookworm", dir.join("oci").display());
    let scan = |format: &str, file: &str| {
        let path = out_dir.path().join(file);
        let out = stella()
            .args(["scan", &target, "--quiet", "--format", format, "--output"])
            .arg(&path)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(path).unwrap()
    };
    let json: serde_json::Value =
        serde_json::from_slice(&scan("cyclonedx-json", "bom.json")).unwrap();
    let protobuf = scan("cyclonedx-protobuf", "bom.pb");
    let digest = json["metadata"]["component"]["bom-ref"]
        .as_str()
        .unwrap()
        .to_string();

    // The protobuf is what `record` stored, and a rescan gives the same bytes.
    let objects = data.path().join("objects").join("images").join(&digest);
    assert_eq!(
        std::fs::read(objects.join("inventory.cdx.pb")).unwrap(),
        protobuf
    );
    assert_eq!(scan("cyclonedx-protobuf", "again.pb"), protobuf);
    let serial = json["serialNumber"].as_str().unwrap();
    assert!(
        protobuf
            .windows(serial.len())
            .any(|w| w == serial.as_bytes())
    );
    let index_path = data
        .path()
        .join("objects/indexes")
        .join(&digest)
        .join("bom-index.bin");
    let index =
        stella_sbom::bomindex::BomIndex::from_bytes(&std::fs::read(&index_path).unwrap()).unwrap();
    assert_eq!(index.header.image_digest, digest);
    let libraries: Vec<&serde_json::Value> = json["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "library")
        .collect();
    assert!(libraries.len() > 50);
    for c in &libraries {
        assert!(index.contains(c["purl"].as_str().unwrap()), "{c}");
    }

    let table = query(data.path(), &["--prefix", "pkg:deb/debian/"]);
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.starts_with("DIGEST"), "{text}");
    assert!(text.contains(&digest), "{text}");
    let name = json["metadata"]["component"]["name"].as_str().unwrap();
    assert!(
        text.contains(name),
        "the name from the catalog ({name}): {text}"
    );

    let bash = libraries.iter().find(|c| c["name"] == "bash").unwrap()["purl"]
        .as_str()
        .unwrap();
    let found = |args: &[&str]| -> Vec<String> {
        let out = query(data.path(), &[args, &["--format", "json"]].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["digest"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(found(&["--purl", bash]), [digest.as_str()]);
    assert_eq!(
        found(&["--purl", "pkg:deb/debian/bash@0"]),
        Vec::<String>::new()
    );
    assert_eq!(found(&["--prefix", "pkg:npm/"]), Vec::<String>::new());
    assert_eq!(
        found(&["--prefix", "pkg:npm/", "--purl", bash]),
        [digest.as_str()]
    );
    let no_match = query(data.path(), &["--prefix", "pkg:npm/"]);
    assert_eq!(no_match.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&no_match.stdout).contains("no match among 1 indexed"));
    // Only images whose entrypoint uses a Debian package: exactly when the SBOM flags one.
    let used = libraries.iter().any(|c| {
        c["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "stellaops:usedByEntrypoint")
    });
    let expected: Vec<String> = if used { vec![digest.clone()] } else { vec![] };
    assert_eq!(
        found(&["--prefix", "pkg:deb/debian/", "--used-by-entrypoint"]),
        expected
    );

    // A damaged index is reported, not skipped.
    std::fs::write(&index_path, b"not an index").unwrap();
    let out = query(data.path(), &["--prefix", "pkg:deb/debian/"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bom-index.bin") && stderr.contains("bad magic"),
        "{stderr}"
    );
}
