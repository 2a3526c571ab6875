//! The committed `config/crd/bases/*.yaml` must be exactly what the types generate.

use crate::repo_root;
use std::collections::BTreeSet;

#[test]
fn committed_crds_match_the_types() {
    let dir = repo_root().join("config/crd/bases");
    let mut expected = BTreeSet::new();
    let mut stale = Vec::new();
    for crd in stella_crds::all() {
        let name = stella_crds::file_name(&crd);
        let generated = stella_crds::render_yaml(&crd).unwrap();
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        if generated != committed {
            stale.push(name.clone());
        }
        expected.insert(name);
    }
    assert!(
        stale.is_empty(),
        "config/crd/bases is stale for {stale:?}: run `make generate` \
         (cargo run -p stella-operator -- crd --out config/crd/bases) and commit the result"
    );

    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert_eq!(
        present, expected,
        "config/crd/bases holds files no type generates"
    );
}

#[test]
fn rendering_is_deterministic() {
    for crd in stella_crds::all() {
        let a = stella_crds::render_yaml(&crd).unwrap();
        let b = stella_crds::render_yaml(
            &stella_crds::all()
                .into_iter()
                .find(|c| c.spec.names.kind == crd.spec.names.kind)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn every_kind_is_in_the_stella_category_with_a_short_name_and_conditions() {
    let crds = stella_crds::all();
    let kinds: Vec<_> = crds.iter().map(|c| c.spec.names.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "FeedSource",
            "NotifyChannel",
            "NotifyRule",
            "Policy",
            "Scan",
            "Schedule",
            "SymbolSource"
        ]
    );
    for crd in &crds {
        let kind = &crd.spec.names.kind;
        assert_eq!(crd.spec.group, stella_crds::GROUP);
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["stella".to_string()][..]),
            "{kind}"
        );
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{kind}"
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, stella_crds::VERSION);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind}"
        );
        let schema = serde_json::to_value(version.schema.as_ref().unwrap()).unwrap();
        let status = &schema["openAPIV3Schema"]["properties"]["status"]["properties"];
        assert_eq!(
            status["conditions"]["x-kubernetes-list-type"], "map",
            "{kind}"
        );
        assert_eq!(status["observedGeneration"]["type"], "integer", "{kind}");
        let columns = version.additional_printer_columns.as_ref().unwrap();
        assert!(
            columns.iter().any(|c| c.name == "Age"),
            "{kind} has no Age column"
        );
        // Every kind a controller reconciles shows its Ready condition (SymbolSource has none
        // yet: a column would read empty forever).
        if kind != "SymbolSource" {
            assert!(
                columns.iter().any(|c| c.name == "Ready"
                    && c.json_path == ".status.conditions[?(@.type==\"Ready\")].status"),
                "{kind} has no Ready column"
            );
        }
    }
}

#[test]
fn scan_columns_are_what_kubectl_get_scans_shows() {
    let crd = stella_crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "Scan")
        .unwrap();
    let columns = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap();
    let default: Vec<_> = columns
        .iter()
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        default,
        [
            "Image", "Digest", "Phase", "Verdict", "Ready", "Critical", "High", "Age"
        ]
    );
    assert!(
        columns
            .iter()
            .any(|c| c.name == "Medium" && c.priority == Some(1))
    );
}
