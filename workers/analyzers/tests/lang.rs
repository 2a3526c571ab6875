//! Python and Node installed-state analyzers against syft's and Trivy's own test tables.

use super::{filesystem, fixtures, json};
use stella_analyzers::{npm, python};

/// syft's python installed-package cataloger cases: names, versions, purls (with `vcs_url`
/// from `direct_url.json`) and declared licences. The "detect licenses" case concludes
/// licences from licence-file contents, which we do not do (we report declared licences).
#[test]
fn syft_site_packages() {
    let Some(dir) = fixtures("lang/python/syft-site-packages") else {
        return;
    };
    let expected = json(&dir.join("expected.json"));
    let mut checked = 0;
    for case in expected["cases"].as_array().unwrap() {
        if case["name"] == "detect licenses" {
            continue;
        }
        let root = dir.join(case["fixture"].as_str().unwrap());
        // Single-directory fixtures (`partial.dist-info`) are the metadata directory itself.
        let fs = if root.is_dir() && root.extension().is_some() {
            let parent = tempfile::tempdir().unwrap();
            let target = parent.path().join(root.file_name().unwrap());
            std::fs::create_dir(&target).unwrap();
            for entry in std::fs::read_dir(&root).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
            }
            filesystem(parent.path())
        } else {
            filesystem(&root)
        };
        let packages = python::analyze(&fs).unwrap();
        let mut got: Vec<(String, String, String)> = packages
            .iter()
            .map(|p| (p.purl.clone(), p.version.clone(), p.licenses.join(" | ")))
            .collect();
        got.sort();
        let mut want: Vec<(String, String, String)> = case["expectedPackages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["PURL"].as_str().unwrap().to_string(),
                    p["Version"].as_str().unwrap_or("").to_string(),
                    p["Licenses"]
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .map(|x| x.as_str().unwrap().to_string())
                                .collect::<Vec<_>>()
                                .join(" | ")
                        })
                        .unwrap_or_default(),
                )
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "case {}", case["name"]);
        checked += 1;
    }
    assert_eq!(checked, 6);
}

/// Trivy's core-metadata cases: name, version and the licence precedence.
#[test]
fn trivy_metadata() {
    let Some(dir) = fixtures("lang/python/trivy-metadata") else {
        return;
    };
    let expected = json(&dir.join("expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        let bytes = std::fs::read(dir.join(case["input"].as_str().unwrap())).unwrap();
        let result = python::parse_metadata(&bytes);
        if case["wantErr"] == true {
            assert!(result.is_err(), "{}", case["input"]);
            continue;
        }
        let m = result.unwrap();
        let want = &case["want"][0];
        assert_eq!(
            m.name,
            want["Name"].as_str().unwrap().trim(),
            "{}",
            case["input"]
        );
        assert_eq!(m.version, want["Version"].as_str().unwrap());
        let licenses: Vec<&str> = want["Licenses"]
            .as_array()
            .map(|l| l.iter().map(|x| x.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(m.licenses, licenses, "{}", case["input"]);
    }
}

/// Trivy's npm package-name table, and its package.json variants (licence as string, object,
/// legacy array; missing name or version refused).
#[test]
fn trivy_package_json() {
    let Some(dir) = fixtures("lang/npm/trivy-package-json") else {
        return;
    };
    let expected = json(&dir.join("expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        assert_eq!(
            npm::is_valid_name(case["name"].as_str().unwrap()),
            case["want"].as_bool().unwrap(),
            "{}",
            case["name"]
        );
    }
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "expected.json" {
            continue;
        }
        let value: Option<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).ok();
        let result = npm::parse_manifest(&std::fs::read(&path).unwrap());
        // Decide from the file itself what a correct reading is.
        let declared_name = value.as_ref().and_then(|v| v["name"].as_str());
        let declared_version = value.as_ref().and_then(|v| v["version"].as_str());
        match (declared_name, declared_version) {
            (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() && npm::is_valid_name(n) => {
                let (got_name, got_version, licenses, _) =
                    result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!((got_name.as_str(), got_version.as_str()), (n, v), "{name}");
                let value = value.unwrap();
                if let Some(l) = value["license"].as_str() {
                    assert_eq!(licenses[0], l, "{name}");
                }
                if let Some(t) = value["license"]["type"].as_str() {
                    assert_eq!(licenses[0], t, "{name}");
                }
                if let Some(list) = value["licenses"].as_array() {
                    let types: Vec<&str> = list.iter().filter_map(|l| l["type"].as_str()).collect();
                    assert_eq!(licenses, types, "{name}");
                }
                parsed += 1;
            }
            _ => assert!(result.is_err(), "{name} should be refused"),
        }
    }
    assert!(parsed >= 6, "{parsed}");
}

/// A distribution whose metadata an OS package owns is the OS package's (reported once, as
/// the deb); one installed by pip beside it is a language package.
#[test]
fn os_owned_distributions_are_not_reported_twice() {
    let root = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
    write(
        "var/lib/dpkg/status",
        "Package: python3-six\nStatus: install ok installed\nVersion: 1.16.0-4\nArchitecture: all\n\n",
    );
    let owned = "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA";
    write(
        "var/lib/dpkg/info/python3-six.list",
        &format!("/usr/lib/python3/dist-packages/six.py\n{owned}\n"),
    );
    write(&owned[1..], "Name: six\nVersion: 1.16.0\n");
    write(
        "usr/local/lib/python3.11/dist-packages/Requests-2.31.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: Requests\nVersion: 2.31.0\nLicense: Apache 2.0\n",
    );
    let analysis = stella_analyzers::analyze(&super::filesystem(root.path()));
    let purls: Vec<&str> = analysis.packages.iter().map(|p| p.purl.as_str()).collect();
    assert_eq!(
        purls,
        [
            "pkg:deb/debian/python3-six@1.16.0-4?arch=all&distro=debian-12",
            "pkg:pypi/requests@2.31.0",
        ]
    );
}

/// Trivy's jar cases that need no Maven Central lookup: wars with nested libraries, nested
/// jars three deep, fat (shaded) jars, duplicate libraries, the MANIFEST.MF fallback and
/// Jenkins plugin licences. Names, versions and locations must match exactly.
#[test]
fn trivy_jars() {
    let Some(dir) = fixtures("lang/java/trivy-jar") else {
        return;
    };
    let expected = json(&dir.join("expected.json"));
    let mut checked = 0;
    for case in expected["cases"].as_array().unwrap() {
        // These two resolve coordinates by asking Maven Central (a mock upstream): we stay
        // offline and deterministic, and the offline case of the same jar is checked.
        if matches!(
            case["name"].as_str().unwrap(),
            "sha1 search" | "artifactId search"
        ) {
            continue;
        }
        let file = case["file"].as_str().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::copy(dir.join(file), root.path().join(file)).unwrap();
        let fs = super::filesystem(root.path());
        let packages = stella_analyzers::java::analyze(&fs).unwrap();
        let mut got: Vec<(String, String, String)> = packages
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.version.clone(),
                    p.evidence.path.replace("!/", "/"),
                )
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, String, String)> = case["want"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["Name"].as_str().unwrap().to_string(),
                    w["Version"].as_str().unwrap().to_string(),
                    w["FilePath"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "case {}", case["name"]);
        if case["name"] == "jenkins plugin manifest license" {
            assert_eq!(
                packages[0].licenses,
                ["Apache License, Version 2.0", "MIT License"]
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "{checked}");
}

/// A root holding `bytes` as an executable (mode 0755) at `path`.
fn executable(path: &str, bytes: &[u8]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join(path);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, bytes).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// Trivy's Go binary cases: real binaries (Go 1.15's pointer layout and 1.22's inline one),
/// the main module, dependencies, the `stdlib` toolchain component, a `-X main.version` link
/// flag, and a non-binary refused with Trivy's reason.
#[test]
fn trivy_go_binaries() {
    let Some(dir) = fixtures("lang/go/trivy-binary") else {
        return;
    };
    let expected = json(&dir.join("expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        let file = case["inputFile"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        if let Some(reason) = case["wantErr"].as_str() {
            assert!(
                stella_analyzers::golang::read(&bytes)
                    .unwrap_err()
                    .to_string()
                    .contains(reason)
            );
            assert!(stella_analyzers::golang::condense(&bytes).is_none());
            continue;
        }
        // Through the capture path a layer uses: an executable file, condensed.
        let root = executable(&format!("usr/local/bin/{file}"), &bytes);
        let packages = stella_analyzers::golang::analyze(&super::filesystem(root.path())).unwrap();
        let mut got: Vec<(String, String)> = packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = case["wantPkgs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["Name"].as_str().unwrap().to_string(),
                    p["Version"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "case {}", case["name"]);
        assert!(packages.iter().all(|p| p.purl.starts_with("pkg:golang/")));
    }
}

/// Trivy's `.deps.json` table: shipped libraries of the runtime target (projects and packages),
/// compile-only references skipped, every library when the target is missing, a truncated file
/// refused.
#[test]
fn trivy_deps_json() {
    let Some(dir) = fixtures("lang/dotnet/trivy-deps-json") else {
        return;
    };
    let expected = json(&dir.join("expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        let bytes = std::fs::read(dir.join(case["file"].as_str().unwrap())).unwrap();
        let result = stella_analyzers::dotnet::parse(&bytes);
        if let Some(reason) = case["wantErr"].as_str() {
            let error = result.unwrap_err().to_string();
            assert!(
                error.starts_with(reason.split(':').next().unwrap()),
                "{error}"
            );
            continue;
        }
        let got = result.unwrap();
        let mut want: Vec<(String, String)> = case["want"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["Name"].as_str().unwrap().to_string(),
                    p["Version"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "case {}", case["name"]);
    }
}

/// Trivy's cargo-auditable case: the runtime crates of a real binary, with the dependency edge,
/// through the executable capture path; a non-binary refused with Trivy's reason.
#[test]
fn trivy_cargo_auditable() {
    let Some(dir) = fixtures("lang/rust/trivy-binary") else {
        return;
    };
    let expected = json(&dir.join("expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        let file = case["inputFile"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        if let Some(reason) = case["wantErr"].as_str() {
            assert!(
                stella_analyzers::rust::read(&bytes)
                    .unwrap_err()
                    .to_string()
                    .contains(reason)
            );
            continue;
        }
        let root = executable(&format!("usr/bin/{file}"), &bytes);
        let packages = stella_analyzers::rust::analyze(&super::filesystem(root.path())).unwrap();
        let got: Vec<(String, String)> = packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect();
        let want: Vec<(String, String)> = case["want"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["Name"].as_str().unwrap().to_string(),
                    p["Version"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            packages[0].depends_on,
            ["pkg:cargo/library_crate@0.1.0".to_string()]
        );
    }
}
