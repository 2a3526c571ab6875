//! Stella Ops custom resources: the `stella-ops.org/v1alpha1` kinds as Rust types.
//!
//! Types only: no client and no I/O. The OpenAPI v3 schemas in `config/crd/bases/` are
//! generated from these types (`///` doc comments become field descriptions), and a test
//! fails when the committed YAML drifts from what the types generate.

pub mod common;
pub mod discovered;
pub mod feed_source;
pub mod notify;
pub mod policy;
pub mod scan;
pub mod schedule;
pub mod symbol_source;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every Stella Ops kind.
pub const GROUP: &str = "stella-ops.org";
/// The served (and stored) version.
pub const VERSION: &str = "v1alpha1";
/// The `kubectl get` category shared by every kind: `kubectl get stella -A`.
pub const CATEGORY: &str = "stella";

/// Every CustomResourceDefinition, ordered by kind name.
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        scan::v1alpha1::Scan::crd(),
        schedule::v1alpha1::Schedule::crd(),
        policy::v1alpha1::Policy::crd(),
        notify::v1alpha1::NotifyRule::crd(),
        notify::v1alpha1::NotifyChannel::crd(),
        symbol_source::v1alpha1::SymbolSource::crd(),
        feed_source::v1alpha1::FeedSource::crd(),
    ];
    crds.sort_by(|a, b| a.spec.names.kind.cmp(&b.spec.names.kind));
    crds.into_iter().map(without_null_enum_values).collect()
}

/// Drops `null` from `enum` lists. schemars lists it for `Option<Enum>` fields, but our types
/// never serialise `None` (the field is omitted), and API servers before 1.22 fail to convert
/// a CRD whose enum holds `null` (its `JSON` value decodes to empty bytes), rejecting it with
/// "per-version schemas may not all be set to identical values".
fn without_null_enum_values(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                    values.retain(|v| !v.is_null());
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(&crd).expect("a CRD serialises");
    walk(&mut value);
    serde_json::from_value(value).expect("a CRD without null enum values deserialises")
}

/// The file name a CRD is written to under `config/crd/bases/`: `<group>_<plural>.yaml`,
/// as controller-gen names them.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// Renders one CRD as a YAML document. Deterministic: the same types give the same bytes.
pub fn render_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::ser::Error> {
    let body = serde_saphyr::to_string(crd)?;
    Ok(format!(
        "# Generated from the Rust types in crds/ by `stella-operator crd`; do not edit.\n---\n{body}"
    ))
}
