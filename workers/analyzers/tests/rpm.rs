use crate::{fixtures, json};
use stella_analyzers::rpm::{Rpm, header::Header, parse_mariner_manifest, read_database};

fn find<'a>(rpms: &'a [Rpm], name: &str) -> &'a Rpm {
    rpms.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

fn check_lookup(rpms: &[Rpm], expected: &serde_json::Value) {
    let e = &expected["expected_package"];
    let r = find(rpms, e["Name"].as_str().unwrap());
    assert_eq!(r.version, e["Version"].as_str().unwrap());
    assert_eq!(r.release, e["Release"].as_str().unwrap());
    assert_eq!(r.arch.as_deref(), e["Arch"].as_str());
    assert_eq!(r.size, e["Size"].as_i64());
    assert_eq!(r.source_rpm.as_deref(), e["SourceRpm"].as_str());
    assert_eq!(r.license.as_deref(), e["License"].as_str());
    assert_eq!(r.vendor.as_deref(), e["Vendor"].as_str());
    assert_eq!(r.summary.as_deref(), e["Summary"].as_str());
    if let Some(requires) = e["Requires"].as_array() {
        let theirs: Vec<&str> = requires.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(r.requires, theirs);
    }
    let files: Vec<&str> = expected["expected_installed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Path"].as_str().unwrap())
        .collect();
    assert_eq!(r.files, files);
}

#[test]
fn sqlite_rpmdb_cbl_mariner() {
    let Some(dir) = fixtures("rpmdb/go-rpmdb/master/cbl-mariner-2.0") else {
        return;
    };
    let rpms = read_database(&std::fs::read(dir.join("rpmdb.sqlite")).unwrap()).unwrap();
    assert_eq!(rpms.len(), 129);
    check_lookup(&rpms, &json(&dir.join("expected-package-curl.json")));
}

#[test]
fn berkeley_db_rpmdb_rhel8() {
    let Some(dir) = fixtures("rpmdb/go-rpmdb/master/libuuid") else {
        return;
    };
    let rpms = read_database(&std::fs::read(dir.join("Packages")).unwrap()).unwrap();
    check_lookup(&rpms, &json(&dir.join("expected-package-libuuid.json")));
}

#[test]
fn ndb_rpmdb_sle15_every_package_in_order() {
    let Some(dir) = fixtures("rpmdb/go-rpmdb/master/sle15-bci") else {
        return;
    };
    let rpms = read_database(&std::fs::read(dir.join("Packages.db")).unwrap()).unwrap();
    let expected = json(&dir.join("expected-packages.json"));
    let wanted = expected["packages"].as_array().unwrap();
    assert_eq!(rpms.len(), wanted.len());
    for (r, e) in rpms.iter().zip(wanted) {
        assert_eq!(r.name, e["name"].as_str().unwrap());
        assert_eq!(r.epoch, e["epoch"].as_i64(), "{}", r.name);
        assert_eq!(r.version, e["version"].as_str().unwrap(), "{}", r.name);
        assert_eq!(r.release, e["release"].as_str().unwrap(), "{}", r.name);
        assert_eq!(r.arch.as_deref(), e["arch"].as_str(), "{}", r.name);
        assert_eq!(
            r.source_rpm.as_deref(),
            e["sourceRpm"].as_str(),
            "{}",
            r.name
        );
        assert_eq!(r.size, e["size"].as_i64(), "{}", r.name);
        assert_eq!(r.license.as_deref(), e["license"].as_str(), "{}", r.name);
        assert_eq!(r.vendor.as_deref(), e["vendor"].as_str(), "{}", r.name);
        assert_eq!(r.summary.as_deref(), e["summary"].as_str(), "{}", r.name);
        assert_eq!(
            r.modularity_label.as_deref().unwrap_or(""),
            e["modularitylabel"].as_str().unwrap_or(""),
            "{}",
            r.name
        );
    }
}

#[test]
fn syft_bdb_and_mariner_manifest_with_purls() {
    let Some(dir) = fixtures("rpmdb/syft-grype") else {
        return;
    };
    for (file, expected) in [
        ("Packages", "expected-Packages.json"),
        ("container-manifest-2", "expected-container-manifest-2.json"),
    ] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let rpms = if file == "Packages" {
            read_database(&bytes).unwrap()
        } else {
            parse_mariner_manifest(&String::from_utf8_lossy(&bytes)).unwrap()
        };
        let expected = json(&dir.join(expected));
        let wanted = expected["packages"].as_array().unwrap();
        assert_eq!(rpms.len(), wanted.len(), "{file}");
        for (r, e) in rpms.iter().zip(wanted) {
            assert_eq!(r.name, e["name"].as_str().unwrap());
            assert_eq!(r.epoch, e["epoch"].as_i64());
            assert_eq!(
                (r.version.as_str(), r.release.as_str()),
                (
                    e["version"].as_str().unwrap(),
                    e["release"].as_str().unwrap()
                )
            );
            let version = format!("{}-{}", r.version, r.release);
            let epoch = r.epoch.map(|e| e.to_string());
            let purl = stella_analyzers::purl::build(
                "rpm",
                None,
                &r.name,
                Some(&version),
                &[
                    ("arch", r.arch.as_deref()),
                    ("epoch", epoch.as_deref()),
                    ("upstream", r.source_rpm.as_deref()),
                ],
            );
            assert_eq!(purl, e["purl"].as_str().unwrap(), "{file}");
        }
    }
}

#[test]
fn a_raw_header_blob_decodes_and_its_file_list_is_refused() {
    let Some(dir) = fixtures("rpmdb/go-rpmdb/master") else {
        return;
    };
    let header = Header::parse(&std::fs::read(dir.join("blob.bin")).unwrap()).unwrap();
    assert!(header.string(stella_analyzers::rpm::header::NAME).is_some());
    assert!(
        header
            .string(stella_analyzers::rpm::header::VERSION)
            .is_some()
    );
    assert!(
        header.files().is_err(),
        "go-rpmdb expects InstalledFiles() to fail on this blob"
    );
}

#[test]
fn truncated_and_garbage_databases_are_errors_never_panics() {
    let Some(dir) = fixtures("rpmdb/go-rpmdb/master") else {
        return;
    };
    for file in [
        "cbl-mariner-2.0/rpmdb.sqlite",
        "libuuid/Packages",
        "sle15-bci/Packages.db",
    ] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        // Cut at many points, and flip bytes: always a clean Err or a (shorter) Ok.
        for cut in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
            let _ = read_database(&bytes[..cut]);
        }
        let mut flipped = bytes.clone();
        for i in (0..flipped.len()).step_by(1013) {
            flipped[i] ^= 0xa5;
        }
        let _ = read_database(&flipped);
        assert!(
            read_database(&bytes[..bytes.len() / 3]).is_err(),
            "{file} truncated to a third must not read as complete"
        );
    }
    assert!(
        read_database(b"garbage")
            .unwrap_err()
            .to_string()
            .contains("not an rpm database")
    );
    assert!(Header::parse(&[0, 0, 0, 5, 0, 0, 0, 100]).is_err());
    assert!(Header::parse(&[0xff; 8]).is_err());
}
