//! The pipeline on synthetic images built here: docker-archive and OCI-layout forms,
//! layer attribution across layers, hostile entries, corrupt databases, tampered blobs, and
//! byte-identical output.

use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use stella_acquire::Platform;

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A layer tar from (path, contents) files; `None` contents = a whiteout marker entry.
fn layer(files: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let data = content.unwrap_or("").as_bytes();
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        let name = header.as_old_mut().name.as_mut();
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

const OS_RELEASE: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";

fn stanza(name: &str, version: &str, status: &str) -> String {
    format!(
        "Package: {name}\nStatus: {status}\nArchitecture: amd64\nVersion: {version}\nMaintainer: Someone <s@example.org>\n\n"
    )
}

/// Three layers: base with a and b; c added; b purged.
fn layers() -> Vec<Vec<u8>> {
    let installed = "install ok installed";
    let l0 = layer(&[
        ("etc/os-release", Some(OS_RELEASE)),
        (
            "var/lib/dpkg/status",
            Some(&(stanza("a", "1.0-1", installed) + &stanza("b", "2.0-1", installed))),
        ),
        ("../../escape", Some("x")),
    ]);
    let l1 = layer(&[(
        "var/lib/dpkg/status",
        Some(
            &(stanza("a", "1.0-1", installed)
                + &stanza("b", "2.0-1", installed)
                + &stanza("c", "3.0+dfsg-1", installed)),
        ),
    )]);
    let l2 = layer(&[
        (
            "var/lib/dpkg/status",
            Some(
                &(stanza("a", "1.0-1", installed)
                    + &stanza("b", "2.0-1", "purge ok not-installed")
                    + &stanza("c", "3.0+dfsg-1", installed)),
            ),
        ),
        ("usr/bin/.wh.b", None),
    ]);
    vec![l0, l1, l2]
}

fn config(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Entrypoint": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .unwrap()
}

/// `docker save` form: manifest.json + <config>.json + <n>/layer.tar (uncompressed).
fn docker_archive(dir: &Path, layers: &[Vec<u8>]) -> PathBuf {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let config = config(&diff_ids);
    let config_name = format!("{}.json", &sha(&config)[7..]);
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_path(name).unwrap();
        header.set_cksum();
        builder.append(&header, data).unwrap();
    };
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("{i}/layer.tar"))
        .collect();
    add(&config_name, &config);
    for (name, data) in names.iter().zip(layers) {
        add(name, data);
    }
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["example/app:1"], "Layers": names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let path = dir.join("image.tar");
    std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
    path
}

/// OCI layout with gzip layers.
fn oci_layout(dir: &Path, layers: &[Vec<u8>]) -> PathBuf {
    let root = dir.join("oci");
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = sha(bytes);
        std::fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        digest
    };
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let config = config(&diff_ids);
    let config_digest = put(&config);
    let layer_descriptors: Vec<_> = layers.iter().map(|l| {
        let gz = gzip(l);
        serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(&gz), "size": gz.len()})
    }).collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layer_descriptors
    })).unwrap();
    let manifest_digest = put(&manifest);
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(root.join("index.json"), serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "1"}}]
    })).unwrap()).unwrap();
    root
}

fn scan(path: &Path) -> stella_scan::Outcome {
    let image = stella_acquire::open_local(path, &Platform::default()).unwrap();
    stella_scan::scan(&image, &stella_scan::Options::default()).unwrap()
}

#[test]
fn packages_are_attributed_to_the_layer_that_introduced_them() {
    let dir = tempfile::tempdir().unwrap();
    let layers = layers();
    for path in [
        docker_archive(dir.path(), &layers),
        oci_layout(dir.path(), &layers),
    ] {
        let outcome = scan(&path);
        let inventory = &outcome.inventory;
        let image_layers = &inventory.image.layers;
        let found: Vec<(String, Option<usize>)> = inventory
            .components
            .iter()
            .map(|c| {
                (
                    c.package.purl.clone(),
                    c.layer_digest
                        .as_ref()
                        .map(|d| image_layers.iter().position(|l| l == d).unwrap()),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (
                    "pkg:deb/debian/a@1.0-1?arch=amd64&distro=debian-12".to_string(),
                    Some(0)
                ),
                (
                    "pkg:deb/debian/c@3.0%2Bdfsg-1?arch=amd64&distro=debian-12".to_string(),
                    Some(1)
                ),
            ],
            "{}",
            path.display()
        );
        assert_eq!(inventory.distro.as_ref().unwrap().qualifier(), "debian-12");
        assert!(
            inventory
                .errors
                .iter()
                .any(|e| e.contains("../../escape") && e.contains("escapes")),
            "{:?}",
            inventory.errors
        );
        assert_eq!(outcome.stats.layers, 3);
    }
}

#[test]
fn the_same_image_gives_byte_identical_sboms_in_both_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = oci_layout(dir.path(), &layers());
    let a = scan(&path).inventory;
    let b = scan(&path).inventory;
    assert_eq!(
        stella_sbom::cyclonedx::to_json(&a),
        stella_sbom::cyclonedx::to_json(&b)
    );
    assert_eq!(
        stella_sbom::spdx::to_json(&a),
        stella_sbom::spdx::to_json(&b)
    );
}

#[test]
fn a_tampered_layer_fails_the_scan_with_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let root = oci_layout(dir.path(), &layers());
    // Rewrite a layer blob with different content under the same name.
    let blobs = root.join("blobs/sha256");
    let mut gzipped: Vec<_> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read(p).unwrap().starts_with(&[0x1f, 0x8b]))
        .collect();
    gzipped.sort();
    let victim = &gzipped[0];
    std::fs::write(victim, gzip(&layer(&[("evil", Some("payload"))]))).unwrap();
    let image = stella_acquire::open_local(&root, &Platform::default()).unwrap();
    let error = stella_scan::scan(&image, &stella_scan::Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("digest mismatch") || error.contains("declared as"),
        "{error}"
    );
}

#[test]
fn a_corrupt_database_is_a_degraded_result_not_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let l0 = layer(&[
        ("etc/os-release", Some(OS_RELEASE)),
        (
            "var/lib/dpkg/status",
            Some(" continuation first\nPackage: x\n"),
        ),
    ]);
    let path = docker_archive(dir.path(), &[l0]);
    let inventory = scan(&path).inventory;
    assert!(inventory.components.is_empty());
    assert!(
        inventory
            .errors
            .iter()
            .any(|e| e.contains("var/lib/dpkg/status") && e.contains("continuation")),
        "{:?}",
        inventory.errors
    );
}

#[test]
fn references_split_into_repository_and_tag() {
    use stella_scan::split_reference as s;
    assert_eq!(
        s("registry.example.com:5000/team/app:1.2"),
        (
            Some("registry.example.com:5000/team/app".into()),
            Some("1.2".into())
        )
    );
    assert_eq!(s("nginx"), (Some("nginx".into()), None));
    assert_eq!(
        s("ghcr.io/a/b@sha256:00"),
        (Some("ghcr.io/a/b".into()), Some("sha256:00".into()))
    );
}

/// Rewrites the layout's manifest (and the index entry that pins it).
fn rewrite_manifest(root: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let index_path = root.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let old = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blobs = root.join("blobs/sha256");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blobs.join(&old[7..])).unwrap()).unwrap();
    edit(&mut manifest);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha(&bytes);
    std::fs::write(blobs.join(&digest[7..]), &bytes).unwrap();
    index["manifests"][0]["digest"] = serde_json::Value::String(digest);
    index["manifests"][0]["size"] = serde_json::json!(bytes.len());
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn a_layer_whose_declared_size_lies_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = oci_layout(dir.path(), &layers());
    rewrite_manifest(&root, |m| m["layers"][1]["size"] = serde_json::json!(12));
    let image = stella_acquire::open_local(&root, &Platform::default()).unwrap();
    let error = stella_scan::scan(&image, &stella_scan::Options::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("declared as 12 bytes"), "{error}");
}

#[test]
fn a_manifest_naming_a_missing_blob_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = oci_layout(dir.path(), &layers());
    let missing = format!("sha256:{}", "e".repeat(64));
    rewrite_manifest(&root, |m| {
        m["layers"][2]["digest"] = serde_json::Value::String(missing.clone())
    });
    let image = stella_acquire::open_local(&root, &Platform::default()).unwrap();
    let error = stella_scan::scan(&image, &stella_scan::Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("blob {missing} is missing")),
        "{error}"
    );
    // A manifest whose layer count disagrees with the config's diff_ids never opens.
    rewrite_manifest(&root, |m| {
        m["layers"].as_array_mut().unwrap().pop();
    });
    let error = stella_acquire::open_local(&root, &Platform::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("2 layers but 3 diff_ids"), "{error}");
}

#[test]
fn device_nodes_and_hostile_links_never_reach_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, link) in [
        ("dev/sda", tar::EntryType::Block, None),
        ("dev/null", tar::EntryType::Char, None),
        ("etc/passwd", tar::EntryType::Symlink, Some("/etc/shadow")),
        (
            "var/lib/dpkg/status",
            tar::EntryType::Symlink,
            Some("../../../../../../etc/shadow"),
        ),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_path(path).unwrap();
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        builder.append(&header, &[][..]).unwrap();
    }
    let path = docker_archive(dir.path(), &[builder.into_inner().unwrap()]);
    let outcome = scan(&path);
    // The status symlink resolves inside the image root (to etc/shadow there, absent): no
    // package, and the host's /etc/shadow is never read.
    assert!(outcome.inventory.components.is_empty());
}

/// A layer with a symlink entry `path → target`.
fn with_symlink(mut tar: Vec<u8>, path: &str, target: &str) -> Vec<u8> {
    // Append a symlink header before the two zero blocks that end the archive.
    tar.truncate(tar.len() - 1024);
    let mut builder = tar::Builder::new(tar);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder.append_link(&mut header, path, target).unwrap();
    builder.into_inner().unwrap()
}

/// `var/lib/dpkg → /opt/dpkg` (absolute, in a later layer than the database) and Fedora's
/// relative `var/lib/rpm → ../../usr/lib/sysimage/rpm` shape: the database behind a
/// directory symlink is found where it lands, attributed to the layer that wrote it, and the
/// same in a root filesystem on disk.
#[test]
fn a_database_behind_a_directory_symlink_is_read() {
    let installed = "install ok installed";
    let l0 = layer(&[
        ("etc/os-release", Some(OS_RELEASE)),
        (
            "opt/dpkg/status",
            Some(&(stanza("a", "1.0-1", installed) + &stanza("b", "2.0-1", installed))),
        ),
        ("opt/dpkg/info/a.list", Some("/usr/bin/a\n")),
    ]);
    let l1 = with_symlink(
        layer(&[("etc/motd", Some("hi\n"))]),
        "var/lib/dpkg",
        "/opt/dpkg",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = docker_archive(dir.path(), &[l0.clone(), l1.clone()]);
    let outcome = scan(&archive);
    let names: Vec<&str> = outcome
        .inventory
        .components
        .iter()
        .map(|c| c.package.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"], "{:?}", outcome.inventory.errors);
    assert!(
        outcome.inventory.errors.is_empty(),
        "{:?}",
        outcome.inventory.errors
    );
    let a = &outcome.inventory.components[0];
    assert_eq!(
        a.package.files,
        ["/usr/bin/a"],
        "its info/*.list was read too"
    );
    let layer0 = sha(&l0);
    assert_eq!(a.layer_digest.as_deref(), Some(layer0.as_str()));
    // The same tree on disk.
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("opt/dpkg/info")).unwrap();
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), OS_RELEASE).unwrap();
    std::fs::write(
        root.join("opt/dpkg/status"),
        stanza("a", "1.0-1", installed) + &stanza("b", "2.0-1", installed),
    )
    .unwrap();
    std::os::unix::fs::symlink("../../opt/dpkg", root.join("var/lib/dpkg")).unwrap();
    let rootfs = stella_scan::Rootfs {
        path: &root,
        name: "rootfs".into(),
        architecture: "amd64".into(),
        created: None,
    };
    let outcome = stella_scan::scan_rootfs(&rootfs, &stella_scan::Options::default()).unwrap();
    assert_eq!(
        outcome.inventory.components.len(),
        2,
        "{:?}",
        outcome.inventory.errors
    );
    // A link to a directory without a database still says so.
    let l2 = with_symlink(
        layer(&[("opt/empty/x", Some("x"))]),
        "var/lib/dpkg",
        "/opt/empty",
    );
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let archive = docker_archive(&dir.path().join("empty"), &[l2]);
    let outcome = scan(&archive);
    assert!(outcome.inventory.components.is_empty());
    assert_eq!(
        outcome.inventory.errors,
        ["/var/lib/dpkg is a symlink to /opt/empty: no package database was found behind it"]
    );
}
