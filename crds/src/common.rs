//! Types shared by several kinds: severities, verdicts, secret references, condition lists.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duration as Kubernetes users write it (`30s`, `5m`, `1h30m`, `7d`) or as ISO 8601
/// (`PT5M`, `P1D`), the form the notify seed serialises.
pub const DURATION_PATTERN: &str =
    r"^(([0-9]+(ms|s|m|h|d))+|P([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?)$";

/// A `sha256:` digest in lowercase hex.
pub const SHA256_DIGEST_PATTERN: &str = r"^sha256:[a-f0-9]{64}$";

/// A DNS-1123 label, the shape of Kubernetes object names used as references.
pub const DNS_LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Vulnerability severity, from the advisory (CVSS-derived where the source gives a score).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    Deserialize,
    Serialize,
    JsonSchema,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    None,
    #[default]
    Unknown,
}

impl Severity {
    /// All severities, most severe first.
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::None,
        Severity::Unknown,
    ];
}

/// The outcome of policy evaluation for an image.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// A key in a Secret. Credentials are only ever referenced, never inlined in a spec.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret. Namespaced kinds read it from their own namespace; cluster-scoped
    /// kinds read it from the operator's namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key within the Secret's `data`.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

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
