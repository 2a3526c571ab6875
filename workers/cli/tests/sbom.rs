//! `stella sbom`: a build-time SBOM of a root filesystem (`--rootfs DIR`) and the BuildKit SBOM
//! generator protocol (`--buildkit`). The real Debian image's root filesystem, unpacked by
//! umoci, must give the packages `dpkg-query` listed and the same packages as scanning the
//! image; spdx-tools (the SPDX project's library) reads and validates what we wrote.

use super::{have_tools, stella, test_image};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (name, version, architecture) of installed packages.
type Packages = BTreeSet<(String, String, String)>;

/// The Debian test image's layout and its last layer's expected packages.
fn debian() -> Option<(PathBuf, Packages)> {
    let dir = test_image("build-debian.sh", "debian-bookworm")?;
    let expected = std::fs::read_to_string(dir.join("expected-3.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            let mut next = || parts.next().unwrap().to_string();
            (next(), next(), next())
        })
        .collect();
    Some((dir, expected))
}

/// Unpacks the image into `<into>/rootfs` with umoci (as a build's output directory would be).
fn unpack(layout: &Path, into: &Path) -> PathBuf {
    let out = std::process::Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:bookworm", layout.join("oci").display()))
        .arg(into)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    into.join("rootfs")
}

/// (name, version, arch) of the deb packages of an SPDX 2.3 document.
fn debs(document: &serde_json::Value) -> Packages {
    document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let purl = p["externalRefs"][0]["referenceLocator"].as_str()?;
            purl.starts_with("pkg:deb/").then(|| {
                let arch = purl
                    .split(['?', '&'])
                    .find_map(|q| q.strip_prefix("arch="))
                    .unwrap()
                    .to_string();
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["versionInfo"].as_str().unwrap().to_string(),
                    arch,
                )
            })
        })
        .collect()
}

fn purls(document: &serde_json::Value) -> BTreeSet<String> {
    document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .map(str::to_string)
        .collect()
}

/// spdx-tools' reading of a file: its errors and its packages, or `None` where not installed.
fn read_with_spdx_tools(path: &Path) -> Option<serde_json::Value> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import spdx_tools.spdx.parser.parse_anything"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        stella_e2e::services::skip("spdx-tools is not installed (pip install spdx-tools)");
        return None;
    }
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_spdx.py"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spdx-tools could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn a_rootfs_sbom_lists_what_dpkg_lists_and_what_the_image_scan_finds() {
    if !have_tools(&["umoci"]) {
        return;
    }
    let Some((dir, expected)) = debian() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let rootfs = unpack(&dir, &work.path().join("bundle"));
    let sbom = |out: &Path| {
        let run = stella()
            .args(["sbom", "--rootfs"])
            .arg(&rootfs)
            .arg("-o")
            .arg(out)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::fs::read(out).unwrap()
    };
    let first = sbom(&work.path().join("a.spdx.json"));
    let second = sbom(&work.path().join("b.spdx.json"));
    assert_eq!(first, second, "the same tree gives byte-identical SBOMs");
    let document: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    assert_eq!(document["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(document["name"], "rootfs");
    assert_eq!(debs(&document), expected, "packages differ from dpkg-query");

    // The image itself, scanned, has the same packages (the same analyzers, one layer less).
    let data = tempfile::tempdir().unwrap();
    let scanned = stella()
        .args(["scan", "--quiet", "--format", "spdx-json@2.3", "--data-dir"])
        .arg(data.path())
        .arg(format!("{}:bookworm", dir.join("oci").display()))
        .output()
        .unwrap();
    assert!(
        scanned.status.success(),
        "{}",
        String::from_utf8_lossy(&scanned.stderr)
    );
    let image: serde_json::Value = serde_json::from_slice(&scanned.stdout).unwrap();
    assert_eq!(purls(&image), purls(&document));
    assert_eq!(image["packages"][0]["primaryPackagePurpose"], "CONTAINER");

    // Another tree is another identity: a new file, an emptied package database.
    std::fs::write(rootfs.join("etc/stella-test"), "changed\n").unwrap();
    let changed: serde_json::Value =
        serde_json::from_slice(&sbom(&work.path().join("c.spdx.json"))).unwrap();
    let digest = |d: &serde_json::Value| d["packages"][0]["versionInfo"].clone();
    assert_ne!(digest(&changed), digest(&document));
    assert_eq!(debs(&changed), expected);
    std::fs::write(rootfs.join("var/lib/dpkg/status"), b"").unwrap();
    let emptied: serde_json::Value =
        serde_json::from_slice(&sbom(&work.path().join("d.spdx.json"))).unwrap();
    assert_ne!(digest(&emptied), digest(&document));
    assert!(debs(&emptied).is_empty());

    // Another implementation reads both documents, finds them valid, and lists our packages.
    for (path, ours) in [
        (work.path().join("a.spdx.json"), &document),
        (data.path().join("image.spdx.json"), &image),
    ] {
        if path.ends_with("image.spdx.json") {
            std::fs::write(&path, &scanned.stdout).unwrap();
        }
        let Some(read) = read_with_spdx_tools(&path) else {
            return;
        };
        assert_eq!(read["version"], "SPDX-2.3");
        assert_eq!(read["errors"], serde_json::json!([]), "{}", path.display());
        let theirs: BTreeSet<(String, String)> = read["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().into(),
                    p[1].as_str().unwrap_or("").into(),
                )
            })
            .collect();
        let written: BTreeSet<(String, String)> = ours["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().into(),
                    p["versionInfo"].as_str().unwrap_or("").into(),
                )
            })
            .collect();
        assert_eq!(theirs, written);
        assert_eq!(
            read["relationships"].as_u64().unwrap() as usize,
            ours["relationships"].as_array().unwrap().len()
        );
    }
}

/// A small hand-made root filesystem: one Python distribution, an escaping symlink, a FIFO.
fn stage(root: &Path) {
    let dist = root.join("usr/lib/python3/dist-packages/requests-2.31.0.dist-info");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(
        dist.join("METADATA"),
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    // Climbs out of the tree: resolved inside it (to nothing), never to the host's file.
    std::os::unix::fs::symlink(
        "../../../../../../etc/os-release",
        root.join("etc/os-release"),
    )
    .unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(root.join("etc/pipe"))
        .status()
        .unwrap();
    assert!(fifo.success());
}

#[test]
fn the_buildkit_generator_protocol_writes_one_statement_per_target() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("rootfs");
    let extras = work.path().join("extras");
    let destination = work.path().join("out");
    stage(&source);
    stage(&extras.join("build-stage"));
    std::fs::create_dir_all(&destination).unwrap();
    // Not a directory: the protocol says only directories are targets.
    std::fs::write(extras.join("notes.txt"), "x").unwrap();
    let run = stella()
        .args(["sbom", "--buildkit"])
        .env("BUILDKIT_SCAN_SOURCE", &source)
        .env("BUILDKIT_SCAN_SOURCE_EXTRAS", &extras)
        .env("BUILDKIT_SCAN_DESTINATION", &destination)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut written: Vec<String> = std::fs::read_dir(&destination)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["build-stage.spdx.json", "rootfs.spdx.json"]);
    for name in &written {
        let statement: serde_json::Value =
            serde_json::from_slice(&std::fs::read(destination.join(name)).unwrap()).unwrap();
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(statement["predicateType"], "https://spdx.dev/Document");
        assert!(
            statement.get("subject").is_none(),
            "BuildKit adds the subject"
        );
        let document = &statement["predicate"];
        assert_eq!(document["spdxVersion"], "SPDX-2.3");
        assert_eq!(document["name"], name.trim_end_matches(".spdx.json"));
        assert_eq!(
            purls(document),
            BTreeSet::from(["pkg:pypi/requests@2.31.0".to_string()])
        );
        assert!(
            !std::str::from_utf8(&std::fs::read(destination.join(name)).unwrap())
                .unwrap()
                .contains("PRETTY_NAME"),
            "the host's os-release was not read through the escaping symlink"
        );
    }

    // CI signs a generator's output as it is: the SBOM inside the statement is what is signed.
    let keys = work.path().join("k");
    let key_out = stella()
        .args(["attest", "keygen", "--out"])
        .arg(&keys)
        .env_remove("COSIGN_PASSWORD")
        .output()
        .unwrap();
    assert!(key_out.status.success());
    let signed = stella()
        .args(["attest", "sign"])
        .arg(destination.join("rootfs.spdx.json"))
        .args([
            "--image",
            &format!("registry.example/app@sha256:{}", "ab".repeat(32)),
        ])
        .arg("--key")
        .arg(work.path().join("k.key"))
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let envelope: serde_json::Value = serde_json::from_slice(&signed.stdout).unwrap();
    use base64::Engine;
    let statement: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(statement["predicateType"], "https://spdx.dev/Document");
    assert_eq!(statement["predicate"]["spdxVersion"], "SPDX-2.3");
    assert_eq!(statement["subject"].as_array().unwrap().len(), 2);

    // Optional extras that are unset or missing are no extras; required ones are required.
    let run = stella()
        .args(["sbom", "--buildkit"])
        .env("BUILDKIT_SCAN_SOURCE", &source)
        .env("BUILDKIT_SCAN_SOURCE_EXTRAS", work.path().join("missing"))
        .env("BUILDKIT_SCAN_DESTINATION", &destination)
        .output()
        .unwrap();
    assert!(run.status.success());
    let run = stella()
        .args(["sbom", "--buildkit"])
        .env_remove("BUILDKIT_SCAN_SOURCE")
        .env("BUILDKIT_SCAN_DESTINATION", &destination)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("BUILDKIT_SCAN_SOURCE"), "{stderr}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let work = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["sbom", "--rootfs", "/no/such/dir"], "no such directory"),
        (&["sbom"], "--rootfs"),
        (
            &["sbom", "--rootfs", ".", "--buildkit"],
            "cannot be used with",
        ),
    ];
    for (args, message) in cases {
        let run = stella().args(args).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let run = stella()
        .args(["sbom", "--rootfs"])
        .arg(work.path())
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("SOURCE_DATE_EPOCH"));
}

/// `stella scan sbom:FILE`: an SBOM made before (ours, in CycloneDX and SPDX 2.3) is matched
/// without the image and finds what scanning the image finds; what is not an SBOM is a usage
/// error that says why.
#[test]
fn an_existing_sbom_is_matched_like_its_image() {
    let Some((dir, _)) = debian() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name).to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        stella()
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .unwrap()
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    std::fs::create_dir(work.path().join("feeds")).unwrap();
    std::fs::write(
        work.path().join("feeds/CVE-2099-3001.json"),
        serde_json::json!({"id": "CVE-2099-3001", "modified": "2099-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99:1"}]}]}]})
        .to_string(),
    )
    .unwrap();
    ok(run(&["feeds", "import", &w("feeds")]));
    let image = format!("{}:bookworm", dir.join("oci").display());
    let findings = |out: std::process::Output| -> BTreeSet<(String, String)> {
        let value: serde_json::Value = serde_json::from_slice(&ok(out).stdout).unwrap();
        value["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_string(),
                    f["purl"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let from_image = findings(run(&[
        "scan",
        &image,
        "--quiet",
        "--format",
        "findings-json",
    ]));
    assert!(
        from_image.iter().any(|(id, _)| id == "CVE-2099-3001"),
        "{from_image:?}"
    );
    for format in ["cyclonedx-json", "spdx-json@2.3", "spdx-json"] {
        let path = w(&format!("image.{format}"));
        ok(run(&[
            "scan", &image, "--quiet", "--format", format, "-o", &path,
        ]));
        let from_sbom = findings(run(&[
            "scan",
            &format!("sbom:{path}"),
            "--quiet",
            "--format",
            "findings-json",
        ]));
        assert_eq!(from_sbom, from_image, "{format}");
    }
    for (target, why) in [
        ("sbom:/no/such/file.json".to_string(), "No such file"),
        (
            format!("sbom:{}", dir.join("expected-3.txt").display()),
            "not JSON",
        ),
    ] {
        let out = run(&["scan", &target, "--quiet"]);
        assert_eq!(out.status.code(), Some(2), "{target}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{target}: {stderr}");
    }
}
