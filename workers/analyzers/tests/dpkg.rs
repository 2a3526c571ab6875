use crate::{filesystem, fixtures, json};
use stella_analyzers::dpkg::{copyright_licenses, installed_size, parse_stanzas, split_depends};
use stella_analyzers::model::Distro;

#[test]
fn status_files_parse_as_syft_expects() {
    let Some(dir) = fixtures("dpkg/syft") else {
        return;
    };
    let expected = json(&dir.join("status-parse.expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        let fixture = case["fixture"].as_str().unwrap();
        let text = std::fs::read_to_string(dir.join(fixture)).unwrap();
        let stanzas: Vec<_> = parse_stanzas(&text)
            .unwrap()
            .into_iter()
            .filter(|s| s.get("Package").is_some_and(|p| !p.is_empty()))
            .filter(|s| {
                stella_analyzers::dpkg::is_installed(s.get("Status").map(String::as_str))
                    || !s.contains_key("Status")
            })
            .collect();
        let entries = case["expected_entries"].as_array().unwrap();
        assert_eq!(stanzas.len(), entries.len(), "{fixture}");
        for (stanza, entry) in stanzas.iter().zip(entries) {
            let field = |k: &str| stanza.get(k).cloned();
            assert_eq!(
                field("Package").as_deref(),
                entry["Package"].as_str(),
                "{fixture}"
            );
            assert_eq!(
                field("Version").as_deref(),
                entry["Version"].as_str(),
                "{fixture}"
            );
            assert_eq!(
                field("Architecture").as_deref(),
                entry["Architecture"].as_str(),
                "{fixture}"
            );
            assert_eq!(
                field("Maintainer").as_deref(),
                entry["Maintainer"].as_str(),
                "{fixture}"
            );
            let source = field("Source").map(|s| stella_analyzers::dpkg::source(&s).0);
            assert_eq!(source.as_deref(), entry["Source"].as_str(), "{fixture}");
            if let Some(size) = entry["InstalledSize"].as_u64() {
                assert_eq!(
                    field("Installed-Size").and_then(|s| installed_size(&s)),
                    Some(size),
                    "{fixture}"
                );
            }
            if let Some(depends) = entry["Depends"].as_array() {
                let ours = split_depends(&field("Depends").unwrap_or_default());
                let theirs: Vec<String> = depends
                    .iter()
                    .map(|d| d.as_str().unwrap().to_string())
                    .collect();
                assert_eq!(ours, theirs, "{fixture}");
            }
            if let Some(description) = entry["Description"].as_str() {
                let ours = field("Description").unwrap();
                assert_eq!(ours.lines().next(), description.lines().next(), "{fixture}");
            }
        }
    }
    for case in expected["error_cases"].as_array().unwrap() {
        let text = std::fs::read_to_string(dir.join(case["fixture"].as_str().unwrap())).unwrap();
        assert!(parse_stanzas(&text).is_err(), "{case}");
    }
    assert!(
        parse_stanzas("Package: apt\nPackage: apt-get\n\n")
            .unwrap_err()
            .to_string()
            .contains("duplicate field Package")
    );
    assert!(
        parse_stanzas("  Package: apt\n\n")
            .unwrap_err()
            .to_string()
            .contains("continuation")
    );
    assert_eq!(installed_size("10kib"), Some(10240));
}

#[test]
fn copyright_licenses_come_only_from_machine_readable_files() {
    let Some(dir) = fixtures("dpkg/syft") else {
        return;
    };
    let expected = json(&dir.join("info-and-copyright.expected.json"));
    for case in expected["copyright_licenses"]["cases"].as_array().unwrap() {
        let text = std::fs::read_to_string(dir.join(case["fixture"].as_str().unwrap())).unwrap();
        let ours = copyright_licenses(&text);
        let theirs: Option<Vec<String>> = serde_json::from_value(case["expected"].clone()).unwrap();
        assert_eq!(ours, theirs, "{}", case["fixture"]);
    }
}

#[test]
fn image_directories_yield_packages_purls_files_and_licences() {
    let Some(dir) = fixtures("dpkg/syft") else {
        return;
    };
    let expected = json(&dir.join("image-catalog.expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        let fixture = case["fixture_dir"].as_str().unwrap();
        let fs = filesystem(&dir.join(fixture));
        let distro = stella_analyzers::osrelease::detect(&fs).or(Some(Distro {
            id: "debian".into(),
            version_id: Some("12".into()),
            ..Default::default()
        }));
        let packages = stella_analyzers::dpkg::analyze(&fs, distro.as_ref()).unwrap();
        let wanted = case["expected_packages"].as_array().unwrap();
        assert_eq!(packages.len(), wanted.len(), "{fixture}");
        for (ours, theirs) in packages.iter().zip(wanted) {
            assert_eq!(ours.name, theirs["Name"].as_str().unwrap());
            assert_eq!(ours.version, theirs["Version"].as_str().unwrap());
            if let Some(purl) = theirs["PURL"].as_str() {
                assert_eq!(ours.purl, purl, "{fixture}");
            }
            let mut licences: Vec<String> =
                serde_json::from_value(theirs["Licenses"].clone()).unwrap();
            licences.sort();
            assert_eq!(ours.licenses, licences, "{fixture}");
            let files: std::collections::BTreeSet<String> = theirs["Metadata"]["Files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["Path"].as_str().unwrap().to_string())
                .collect();
            for file in &files {
                assert!(ours.files.contains(file), "{fixture}: {file} not owned");
            }
        }
    }
}

#[test]
fn deinstalled_entries_are_dropped_and_versionless_ones_kept() {
    let Some(dir) = fixtures("dpkg/syft/var/lib/dpkg/status.d") else {
        return;
    };
    let mut fragment = stella_layerfs::Fragment::default();
    for name in ["deinstall", "multiple"] {
        let path = format!("var/lib/dpkg/status.d/{name}");
        fragment.entries.push(stella_layerfs::FragmentEntry {
            path: path.clone(),
            kind: stella_layerfs::EntryKind::File {
                size: 0,
                mode: 0o644,
            },
        });
        fragment.files.insert(
            path,
            serde_bytes_buf(std::fs::read(dir.join(name)).unwrap()),
        );
    }
    let fs = stella_layerfs::Filesystem::build([&fragment]);
    let names: Vec<String> = stella_analyzers::dpkg::analyze(&fs, None)
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        [
            "linux-image-6.14.0-1012-aws",
            "no-version",
            "tzdata",
            "util-linux"
        ]
    );
}

fn serde_bytes_buf(bytes: Vec<u8>) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(bytes)
}

#[test]
fn os_release_fixtures() {
    let Some(dir) = fixtures("os-release") else {
        return;
    };
    let centos = stella_analyzers::osrelease::parse(
        &std::fs::read_to_string(dir.join("centos8-grype")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (centos.id.as_str(), centos.version_id.as_deref()),
        ("centos", Some("8"))
    );
    assert!(centos.id_like.contains(&"rhel".to_string()));
    let sles = stella_analyzers::osrelease::parse(
        &std::fs::read_to_string(dir.join("sles12sp5-grype")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (sles.id.as_str(), sles.version_id.as_deref()),
        ("sles", Some("12.5"))
    );
}

#[test]
fn dependencies_resolve_through_alternatives_and_provides_as_syft_expects() {
    let Some(dir) = fixtures("dpkg/syft") else {
        return;
    };
    let expected = json(&dir.join("relationships.expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        let fixture = case["fixture"].as_str().unwrap();
        let mut fragment = stella_layerfs::Fragment::default();
        let path = "var/lib/dpkg/status";
        fragment.entries.push(stella_layerfs::FragmentEntry {
            path: path.into(),
            kind: stella_layerfs::EntryKind::File {
                size: 0,
                mode: 0o644,
            },
        });
        fragment.files.insert(
            path.into(),
            serde_bytes_buf(std::fs::read(dir.join(fixture)).unwrap()),
        );
        let fs = stella_layerfs::Filesystem::build([&fragment]);
        let mut packages = stella_analyzers::dpkg::analyze(&fs, None).unwrap();
        stella_analyzers::resolve_dependencies(&mut packages);
        let name_of = |purl: &str| {
            packages
                .iter()
                .find(|p| p.purl == purl)
                .unwrap()
                .name
                .clone()
        };
        for (name, deps) in case["expected_dependencies"].as_object().unwrap() {
            let package = packages
                .iter()
                .find(|p| &p.name == name)
                .unwrap_or_else(|| panic!("{fixture}: {name} missing"));
            let mut ours: Vec<String> = package.depends_on.iter().map(|d| name_of(d)).collect();
            ours.sort();
            let theirs: Vec<String> = serde_json::from_value(deps.clone()).unwrap();
            assert_eq!(ours, theirs, "{fixture}: {name}");
        }
    }
}

/// A status file with one 100 MB `Package:` line (the hostile corpus's case) and one with a
/// long version: both stanzas are left out and said so, the real package is kept, and no
/// oversized value reaches a package.
#[test]
fn oversized_fields_are_left_out_and_reported() {
    let mut status = String::from(
        "Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n\n",
    );
    status.push_str("Package: ");
    status.push_str(&"a".repeat(100 << 20));
    status.push_str("\nStatus: install ok installed\nVersion: 1\n\n");
    status.push_str(&format!(
        "Package: long-version\nStatus: install ok installed\nVersion: {}\n\n",
        "9".repeat(1000)
    ));
    let mut fragment = stella_layerfs::Fragment::default();
    fragment.entries.push(stella_layerfs::FragmentEntry {
        path: "var/lib/dpkg/status".into(),
        kind: stella_layerfs::EntryKind::File {
            size: status.len() as u64,
            mode: 0o644,
        },
    });
    fragment.files.insert(
        "var/lib/dpkg/status".into(),
        serde_bytes_buf(status.into_bytes()),
    );
    let fs = stella_layerfs::Filesystem::build([&fragment]);
    let (packages, left_out) = stella_analyzers::dpkg::analyze_within(&fs, None).unwrap();
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["base-files"]);
    assert_eq!(left_out.len(), 2, "{left_out:?}");
    assert!(left_out[0].contains("field Package") && left_out[0].contains("left out"));
    assert!(left_out[1].contains("long-version") && left_out[1].contains("Version"));
    assert!(
        left_out.iter().all(|r| r.len() < 400),
        "reasons are bounded"
    );
    // The whole analysis reports them as degraded.
    let analysis = stella_analyzers::analyze(&fs);
    assert_eq!(analysis.errors.len(), 2, "{:?}", analysis.errors);
}

/// `var/lib/dpkg → /opt/dpkg` whose database the layer walk did not capture (the scan reads
/// the layers again for it, see stella-scan's tests): said so rather than reported as an
/// image without packages.
#[test]
fn a_database_behind_a_directory_symlink_is_reported_unread() {
    use stella_layerfs::{EntryKind, FragmentEntry};
    let mut fragment = stella_layerfs::Fragment::default();
    for (path, kind) in [
        ("opt/dpkg", EntryKind::Dir),
        (
            "opt/dpkg/status",
            EntryKind::File {
                size: 10,
                mode: 0o644,
            },
        ),
        ("var/lib", EntryKind::Dir),
        (
            "var/lib/dpkg",
            EntryKind::Symlink {
                target: "/opt/dpkg".into(),
            },
        ),
    ] {
        fragment.entries.push(FragmentEntry {
            path: path.into(),
            kind,
        });
    }
    let fs = stella_layerfs::Filesystem::build([&fragment]);
    let analysis = stella_analyzers::analyze(&fs);
    assert!(analysis.packages.is_empty());
    assert_eq!(
        analysis.errors,
        ["/var/lib/dpkg is a symlink to /opt/dpkg: no package database was found behind it"]
    );
    // No symlink, no database: nothing to say.
    let empty = stella_layerfs::Filesystem::build([&stella_layerfs::Fragment::default()]);
    assert!(stella_analyzers::analyze(&empty).errors.is_empty());
}
