//! `stella diff` on the real Debian image: the stage before `dpkg --purge curl` against the
//! final image. The expected changes are the difference of `dpkg-query`'s listings.

use super::{stella, test_image};
use sha2::{Digest, Sha256};

/// Adds a tag to an OCI layout for the image made of the first `layers` layers of `tag`.
fn tag_prefix(layout: &std::path::Path, tag: &str, layers: usize, new_tag: &str) {
    let read = |digest: &str| -> serde_json::Value {
        let hex = digest.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let write = |value: &serde_json::Value| -> (String, usize) {
        let bytes = serde_json::to_vec(value).unwrap();
        let hex = hex::encode(Sha256::digest(&bytes));
        std::fs::write(layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()
        .clone();
    let mut manifest = read(entry["digest"].as_str().unwrap());
    let mut config = read(manifest["config"]["digest"].as_str().unwrap());
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .truncate(layers);
    config.as_object_mut().unwrap().remove("history");
    let (config_digest, config_size) = write(&config);
    manifest["config"]["digest"] = config_digest.into();
    manifest["config"]["size"] = config_size.into();
    manifest["layers"].as_array_mut().unwrap().truncate(layers);
    let (digest, size) = write(&manifest);
    let mut new_entry = entry.clone();
    new_entry["digest"] = digest.into();
    new_entry["size"] = size.into();
    new_entry["annotations"]["org.opencontainers.image.ref.name"] = new_tag.into();
    index["manifests"].as_array_mut().unwrap().push(new_entry);
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn diff_of_a_purge_names_exactly_what_dpkg_removed() {
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let listing = |n: u32| -> std::collections::BTreeSet<String> {
        std::fs::read_to_string(dir.join(format!("expected-{n}.txt")))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (before, after) = (listing(2), listing(3));
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("oci");
    let copy = std::process::Command::new("cp")
        .arg("-a")
        .arg(dir.join("oci"))
        .arg(&layout)
        .status()
        .unwrap();
    assert!(copy.success());
    tag_prefix(&layout, "bookworm", 2, "with-curl");
    let data = work.path().join("data");
    let out = stella()
        .args(["diff", "--quiet", "--format", "json"])
        .arg(format!("{}:with-curl", layout.display()))
        .arg(format!("{}:bookworm", layout.display()))
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(diff["sharedLayers"], 2);
    let line = |c: &serde_json::Value, version: &str| {
        format!(
            "{} {} {}",
            c["name"].as_str().unwrap(),
            c[version].as_str().unwrap(),
            c["arch"].as_str().unwrap()
        )
    };
    let removed: std::collections::BTreeSet<String> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "removed")
        .map(|c| line(c, "oldVersion"))
        .collect();
    let added: std::collections::BTreeSet<String> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "added")
        .map(|c| line(c, "newVersion"))
        .collect();
    assert_eq!(
        removed,
        before.difference(&after).cloned().collect(),
        "{diff}"
    );
    assert_eq!(added, after.difference(&before).cloned().collect());
    assert!(removed.iter().any(|l| l.starts_with("curl ")));
    assert_eq!(diff["summary"]["version_changed"], 0);
    // Deterministic, and the reverse direction swaps added and removed.
    let again = stella()
        .args(["diff", "--quiet", "--format", "json"])
        .arg(format!("{}:with-curl", layout.display()))
        .arg(format!("{}:bookworm", layout.display()))
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(again.stdout, out.stdout);
    let reverse = stella()
        .args(["diff", "--quiet"])
        .arg(format!("{}:bookworm", layout.display()))
        .arg(format!("{}:with-curl", layout.display()))
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&reverse.stdout);
    assert!(
        table.contains(&format!("{} added, 0 removed", removed.len())),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("added") && l.contains(" curl ")),
        "{table}"
    );
    // A missing image is a usage error.
    let out = stella()
        .args([
            "diff",
            "--quiet",
            "/nonexistent-a",
            "/nonexistent-b",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
