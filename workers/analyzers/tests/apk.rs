use crate::{fixtures, json};
use stella_analyzers::apk::parse;

#[test]
fn installed_databases_parse_as_syft_expects() {
    let Some(dir) = fixtures("apk/syft") else {
        return;
    };
    for name in ["single", "base", "empty-deps-and-provides", "multiple-1"] {
        let expected = json(&dir.join(format!("{name}.expected.json")));
        let fixture = expected["fixture"].as_str().unwrap();
        let path = if dir.join(fixture).is_dir() {
            dir.join(fixture).join("lib/apk/db/installed")
        } else {
            dir.join(fixture)
        };
        let path = if path.is_file() {
            path
        } else {
            dir.join(fixture)
        };
        let records = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let wanted = expected["expected_packages"].as_array().unwrap();
        assert_eq!(records.len(), wanted.len(), "{name}");
        for (ours, theirs) in records.iter().zip(wanted) {
            let meta = &theirs["Metadata"];
            assert_eq!(ours.name, theirs["Name"].as_str().unwrap(), "{name}");
            assert_eq!(ours.version, theirs["Version"].as_str().unwrap(), "{name}");
            assert_eq!(
                ours.origin.as_deref(),
                meta["OriginPackage"].as_str(),
                "{name}"
            );
            assert_eq!(
                ours.arch.as_deref(),
                meta["Architecture"].as_str(),
                "{name}"
            );
            assert_eq!(
                ours.installed_size,
                meta["InstalledSize"].as_u64(),
                "{name}"
            );
            let deps: Vec<String> =
                serde_json::from_value(meta["Dependencies"].clone()).unwrap_or_default();
            assert_eq!(ours.depends, deps, "{name}");
            let provides: Vec<String> =
                serde_json::from_value(meta["Provides"].clone()).unwrap_or_default();
            assert_eq!(ours.provides, provides, "{name}");
            if let Some(files) = meta["Files"].as_array() {
                // syft lists directories (F: lines) beside files (R: lines); we keep files.
                let db = std::fs::read_to_string(&path).unwrap();
                let dirs: Vec<String> = db
                    .lines()
                    .filter_map(|l| l.strip_prefix("F:"))
                    .map(|d| format!("/{d}"))
                    .collect();
                let theirs: Vec<&str> = files.iter().map(|f| f["Path"].as_str().unwrap()).collect();
                for file in &ours.files {
                    assert!(
                        theirs.contains(&file.as_str()),
                        "{name}: {file} not in syft's list"
                    );
                }
                for path in theirs
                    .iter()
                    .filter(|p| !ours.files.iter().any(|f| f == *p))
                {
                    assert!(dirs.iter().any(|d| d == path), "{name}: {path} missing");
                }
            }
        }
    }
}

#[test]
fn a_corrupt_database_is_an_error() {
    let Some(dir) = fixtures("apk/syft") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("corrupt/lib/apk/db/installed")).unwrap();
    assert!(parse(&text).unwrap_err().to_string().contains("line 1"));
}

#[test]
fn dependencies_resolve_through_names_and_provides_as_syft_expects() {
    let Some(dir) = fixtures("apk/syft") else {
        return;
    };
    let expected = json(&dir.join("multiple-2.expected.json"));
    let text = std::fs::read_to_string(dir.join("multiple-2/lib/apk/db/installed")).unwrap();
    let mut packages: Vec<stella_analyzers::Package> = parse(&text)
        .unwrap()
        .into_iter()
        .map(|r| stella_analyzers::Package {
            ecosystem: stella_analyzers::Ecosystem::Apk,
            purl: format!("pkg:apk/alpine/{}", r.name),
            name: r.name,
            version: r.version,
            arch: r.arch,
            source_name: r.origin,
            source_version: None,
            licenses: vec![],
            supplier: None,
            installed_size: None,
            depends: r.depends,
            provides: r.provides,
            depends_on: vec![],
            files: r.files,
            evidence: stella_analyzers::Evidence {
                source: "apk-installed".into(),
                path: "lib/apk/db/installed".into(),
                method: "package-database".into(),
            },
        })
        .collect();
    stella_analyzers::resolve_dependencies(&mut packages);
    for (name, deps) in expected["expected_dependencies"].as_object().unwrap() {
        let ours = &packages
            .iter()
            .find(|p| &p.name == name)
            .unwrap()
            .depends_on;
        let mut theirs: Vec<String> = deps
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("pkg:apk/alpine/{}", d.as_str().unwrap()))
            .collect();
        theirs.sort();
        assert_eq!(ours, &theirs, "{name}");
    }
    for p in &packages {
        if !expected["expected_dependencies"]
            .as_object()
            .unwrap()
            .contains_key(&p.name)
        {
            assert!(
                p.depends_on.is_empty(),
                "{} has unexpected dependencies {:?}",
                p.name,
                p.depends_on
            );
        }
    }
}
