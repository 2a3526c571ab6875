//! Types shared by several kinds: severities, verdicts and Secret key references (the
//! domain's, from `stella-model`), Secret references, condition lists.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use stella_model::{
    DNS_LABEL_PATTERN, DURATION_PATTERN, SHA256_DIGEST_PATTERN, SecretKeyRef, Severity, Verdict,
};

/// A reference to a Secret by name (for example a `kubernetes.io/dockerconfigjson` pull secret).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret in the same namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// Standard `status.conditions` list, a map keyed by `type` (`Ready` plus kind-specific types).
pub type Conditions = Vec<Condition>;

/// Schema hook for a `conditions` field: a list-map keyed by `type`, at most 16 entries.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = <Vec<Condition>>::json_schema(generator);
    let obj = schema.ensure_object();
    obj.insert("maxItems".into(), 16.into());
    obj.insert("x-kubernetes-list-type".into(), "map".into());
    obj.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}
