//! Every sample under `config/samples/` against the generated OpenAPI schema, with a real
//! JSON-schema validator (structural schemas are draft-4 shaped: `exclusiveMinimum` is a
//! boolean) and the CRDs' CEL rules evaluated by kube-cel. Valid samples pass; each invalid
//! sample fails, naming the field its `stella-ops.org/expect-invalid` annotation names.

use crate::repo_root;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const EXPECT_INVALID: &str = "stella-ops.org/expect-invalid";
const EXPECT_INVALID_BY: &str = "stella-ops.org/expect-invalid-by";

/// Root schemas of the generated CRDs by kind.
fn schemas() -> BTreeMap<String, Value> {
    stella_crds::all()
        .into_iter()
        .map(|crd| {
            let version = crd.spec.versions.into_iter().next().unwrap();
            let schema = serde_json::to_value(version.schema.unwrap().open_api_v3_schema).unwrap();
            (crd.spec.names.kind, schema)
        })
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `/spec/rules/1/action` → `spec.rules[1].action`, the way the API server names fields.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

/// Schema (non-CEL) errors of an object, as `(field, message)`.
fn schema_errors(schema: &Value, object: &Value) -> Vec<(String, String)> {
    let validator = jsonschema::draft4::new(schema).expect("generated schema compiles");
    validator
        .iter_errors(object)
        .map(|error| {
            let mut field = field_path(error.instance_path().as_str());
            if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
                let property = property.as_str().unwrap_or_default();
                field = if field.is_empty() {
                    property.to_string()
                } else {
                    format!("{field}.{property}")
                };
            }
            (field, error.to_string())
        })
        .collect()
}

/// CEL (`x-kubernetes-validations`) errors of an object, as `(field, message)`.
fn cel_errors(schema: &Value, object: &Value) -> Vec<(String, String)> {
    match kube_cel::validate(schema, object, None) {
        Ok(()) => vec![],
        Err(errors) => errors
            .iter()
            .map(|e| (e.field_path.clone(), e.message.clone()))
            .collect(),
    }
}

/// Deserialises a sample into its Rust type: the types and the schema must agree.
fn deserialize_typed(kind: &str, object: &Value) -> Result<(), serde_json::Error> {
    use stella_crds::*;
    let o = object.clone();
    match kind {
        "Scan" => serde_json::from_value::<scan::v1alpha1::Scan>(o).map(drop),
        "Schedule" => serde_json::from_value::<schedule::v1alpha1::Schedule>(o).map(drop),
        "Policy" => serde_json::from_value::<policy::v1alpha1::Policy>(o).map(drop),
        "NotifyRule" => serde_json::from_value::<notify::v1alpha1::NotifyRule>(o).map(drop),
        "NotifyChannel" => serde_json::from_value::<notify::v1alpha1::NotifyChannel>(o).map(drop),
        "SymbolSource" => {
            serde_json::from_value::<symbol_source::v1alpha1::SymbolSource>(o).map(drop)
        }
        "FeedSource" => serde_json::from_value::<feed_source::v1alpha1::FeedSource>(o).map(drop),
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn valid_samples_pass_schema_and_cel_and_cover_every_kind() {
    let schemas = schemas();
    let mut kinds = std::collections::BTreeSet::new();
    for path in yaml_files(&repo_root().join("config/samples")) {
        let object = load(&path);
        let kind = object["kind"].as_str().unwrap().to_string();
        let schema = &schemas[&kind];
        let errors = schema_errors(schema, &object);
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        let errors = cel_errors(schema, &object);
        assert!(errors.is_empty(), "{}: CEL {errors:?}", path.display());
        deserialize_typed(&kind, &object).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        kinds.insert(kind);
    }
    let all: std::collections::BTreeSet<_> = schemas.keys().cloned().collect();
    assert_eq!(kinds, all, "every kind needs a sample in config/samples");
}

#[test]
fn invalid_samples_fail_naming_the_field() {
    let schemas = schemas();
    let files = yaml_files(&repo_root().join("config/samples/invalid"));
    assert!(
        files.len() >= 14,
        "expected the invalid sample set, found {}",
        files.len()
    );
    let mut cel_only = 0;
    for path in files {
        let object = load(&path);
        let kind = object["kind"].as_str().unwrap();
        let annotations = &object["metadata"]["annotations"];
        let expected = annotations[EXPECT_INVALID]
            .as_str()
            .unwrap_or_else(|| panic!("{} lacks {EXPECT_INVALID}", path.display()));
        let schema = &schemas[kind];
        let schema_errs = schema_errors(schema, &object);
        if annotations[EXPECT_INVALID_BY] == "cel" {
            cel_only += 1;
            // The sample isolates one CEL rule: structurally it is valid.
            assert!(
                schema_errs.is_empty(),
                "{}: {schema_errs:?}",
                path.display()
            );
            let errors = cel_errors(schema, &object);
            assert!(
                errors.iter().any(|(field, _)| field == expected),
                "{}: expected a CEL error at {expected}, got {errors:?}",
                path.display()
            );
        } else {
            assert!(
                schema_errs.iter().any(|(field, _)| field == expected),
                "{}: expected a schema error at {expected}, got {schema_errs:?}",
                path.display()
            );
        }
    }
    assert!(
        cel_only >= 4,
        "every CEL rule family needs an invalid sample"
    );
}

#[test]
fn field_paths_read_like_the_api_server() {
    assert_eq!(field_path("/spec/rules/3/action"), "spec.rules[3].action");
    assert_eq!(
        field_path("/spec/match/eventKinds/0"),
        "spec.match.eventKinds[0]"
    );
    assert_eq!(field_path(""), "");
}
