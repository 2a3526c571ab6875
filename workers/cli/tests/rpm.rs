//! A real rpm root built with Debian's rpm/rpmbuild (e2e/images/build-rpm.sh): rpm 4.18's SQLite
//! database, two layers. Expected packages come from `rpm -qa`.

use super::{stella, test_image};

#[test]
fn real_rpm_image_matches_rpm_qa_with_epochs_and_layers() {
    let Some(dir) = test_image("build-rpm.sh", "rpm-sqlite") else {
        return;
    };
    let lines = |n: u32| -> Vec<String> {
        std::fs::read_to_string(dir.join(format!("expected-{n}.txt")))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (first, all) = (lines(1), lines(2));
    let data = tempfile::tempdir().unwrap();
    for target in [
        format!("{}:rpm", dir.join("oci").display()),
        dir.join("image.tar").display().to_string(),
    ] {
        let out = stella()
            .args(["scan", &target, "--quiet", "--data-dir"])
            .arg(data.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let layers: Vec<&str> = bom["metadata"]["properties"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"].as_str().unwrap().starts_with("stellaops:layer."))
            .map(|p| p["value"].as_str().unwrap())
            .collect();
        let mut found = Vec::new();
        for c in bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "library")
        {
            let prop = |n: &str| {
                c["properties"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == n)
                    .map(|p| p["value"].as_str().unwrap().to_string())
            };
            let line = format!(
                "{} {} {}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap(),
                prop("stellaops:package.arch").unwrap()
            );
            let layer = layers
                .iter()
                .position(|l| Some(l.to_string()) == prop("stellaops:layerDigest"))
                .unwrap();
            assert_eq!(layer, if first.contains(&line) { 0 } else { 1 }, "{line}");
            found.push(line);
        }
        found.sort();
        assert_eq!(found, all, "{target}");
        let purls: Vec<&str> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["purl"].as_str())
            .collect();
        assert!(purls.contains(&"pkg:rpm/stellatest/stella-hello@1.2.3-4?arch=noarch&distro=stellatest-1&epoch=2&upstream=stella-hello-1.2.3-4.src.rpm"), "{purls:?}");
    }
}

#[test]
fn a_corrupt_image_exits_with_code_5() {
    let Some(dir) = test_image("build-rpm.sh", "rpm-sqlite") else {
        return;
    };
    let copy = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(dir.join("oci"))
            .arg(copy.path())
            .status()
            .unwrap()
            .success()
    );
    let blobs = copy.path().join("oci/blobs/sha256");
    // Replace every gzip layer's bytes: the digests no longer match.
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut tampered = bytes.clone();
            let last = tampered.len() - 9;
            tampered[last] ^= 0xff;
            std::fs::write(&path, tampered).unwrap();
        }
    }
    let data = tempfile::tempdir().unwrap();
    let target = format!("{}:rpm", copy.path().join("oci").display());
    let out = stella()
        .args(["scan", &target, "--quiet", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("digest mismatch") || stderr.contains("layer"),
        "{stderr}"
    );
}
