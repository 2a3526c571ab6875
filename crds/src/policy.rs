//! `Policy`: the YAML DSL v1.0 rules, the scoring config and the admission settings.

pub mod v1alpha1 {
    use crate::common::{Conditions, conditions_schema};
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    pub use stella_model::policy::{
        AdmissionConfig, AdmissionMode, AttestationRequirement, AttestedPredicate, ConfidenceBand,
        Exemption, FailureMode, PolicyAction, PolicyRule, PolicyVersion, RequireVex, ScoringConfig,
        SeverityWeights, SignatureConfig, SignatureKey, UnknownConfidence, UnscannedAction,
        VexJustification, Weight,
    };

    /// A policy: rules that turn findings (after VEX) into decisions and a PASS / WARN / FAIL
    /// verdict, the scoring configuration, and how the admission webhook enforces verdicts.
    /// The controller validates it and publishes its digest in the status.
    // The spec is the domain's policy document (`stella_model::policy::PolicySpec`) as it is:
    // same fields, same JSON, same schema (the doc above is the schema's description).
    #[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[kube(
        group = "stella-ops.org",
        version = "v1alpha1",
        kind = "Policy",
        doc = "Policy DSL v1.0 rules, scoring configuration and admission settings; its digest pins every verdict.",
        plural = "policies",
        status = "PolicyStatus",
        shortname = "stpol",
        category = "stella",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Rules","type":"integer","jsonPath":".status.ruleCount"}"#,
        printcolumn = r#"{"name":"Admission","type":"string","jsonPath":".spec.admission.mode"}"#,
        printcolumn = r#"{"name":"Digest","type":"string","jsonPath":".status.digest"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )]
    #[serde(transparent)]
    pub struct PolicySpec(pub stella_model::policy::PolicySpec);

    impl std::ops::Deref for PolicySpec {
        type Target = stella_model::policy::PolicySpec;
        fn deref(&self) -> &Self::Target {
            &self.0
        }
    }

    impl std::ops::DerefMut for PolicySpec {
        fn deref_mut(&mut self) -> &mut Self::Target {
            &mut self.0
        }
    }

    impl From<stella_model::policy::PolicySpec> for PolicySpec {
        fn from(spec: stella_model::policy::PolicySpec) -> Self {
            PolicySpec(spec)
        }
    }

    /// Observed state of a `Policy`.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct PolicyStatus {
        /// SHA-256 of the canonicalised policy: the `policyDigest` of every verdict it decides.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub digest: Option<String>,
        /// Number of rules.
        #[serde(default)]
        pub rule_count: u32,
        /// Validation errors with their locations (`rules[3].expires: …`), when invalid.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 32), inner(length(max = 1024)))]
        pub errors: Vec<String>,
        /// `Ready`, `Valid` and `Stalled` (kstatus: `True` while the Policy cannot be used).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(schema_with = "conditions_schema")]
        pub conditions: Conditions,
        /// The `.metadata.generation` this status describes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
    }
}
