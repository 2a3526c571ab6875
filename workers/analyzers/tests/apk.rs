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
    assert!(parse(&text).unwrap_err().contains("line 1"));
}
