//! `SymbolSource`: a debug-symbol provider (debuginfod or a symbol server) and its trust.

pub mod v1alpha1 {
    use crate::common::{Conditions, SecretKeyRef, conditions_schema};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// A debug-symbol provider. The symbols controller syncs its catalog, tracks freshness
    /// against the SLA (healthy → warning → stale → unavailable) and scores its trust on four
    /// dimensions: freshness 0.30, signature 0.30, coverage 0.20, SLA compliance 0.20.
    #[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[kube(
        group = "stella-ops.org",
        version = "v1alpha1",
        kind = "SymbolSource",
        doc = "A debug-symbol provider (debuginfod or symbol server) with freshness state and trust score.",
        status = "SymbolSourceStatus",
        shortname = "stsym",
        category = "stella",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Key","type":"string","jsonPath":".spec.key"}"#,
        printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
        printcolumn = r#"{"name":"Priority","type":"integer","jsonPath":".spec.priority"}"#,
        printcolumn = r#"{"name":"Freshness","type":"string","jsonPath":".status.freshness"}"#,
        printcolumn = r#"{"name":"Trust","type":"number","jsonPath":".status.trust.overall"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"URL","type":"string","priority":1,"jsonPath":".spec.url"}"#,
        printcolumn = r#"{"name":"Last Sync","type":"date","priority":1,"jsonPath":".status.lastSuccessfulSyncTime"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct SymbolSourceSpec {
        /// Machine-readable key, unique across sources (`debian-debuginfod`). Immutable.
        #[schemars(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )]
        #[schemars(extend("x-kubernetes-validations" = [
            {"rule": "self == oldSelf", "message": "key is immutable"},
        ]))]
        pub key: String,
        /// Display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 128))]
        pub display_name: Option<String>,
        /// Who publishes it: `vendor`, `distro`, `community` or `partner`.
        #[serde(rename = "type")]
        pub type_: SourceType,
        /// Protocol: `debuginfod` or a Microsoft-style `symbol-server`.
        #[serde(default = "default_protocol")]
        pub protocol: SymbolProtocol,
        /// Base URL (`https://debuginfod.debian.net`).
        #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
        pub url: String,
        /// Resolution precedence: lower is tried first.
        #[serde(default = "default_priority")]
        #[schemars(range(min = 0, max = 10_000))]
        pub priority: i32,
        /// Target sync interval in seconds (default 6 hours).
        #[serde(default = "default_sla")]
        #[schemars(range(min = 60, max = 2_592_000))]
        pub freshness_sla_seconds: u32,
        /// Fraction of the SLA after which the source turns `Warning` (0 < ratio < 1).
        #[serde(default = "default_warning_ratio")]
        #[schemars(range(min = 0.0, max = 1.0), extend("exclusiveMinimum" = true, "exclusiveMaximum" = true))]
        pub warning_ratio: f64,
        /// Credentials, when the provider needs them (bearer token).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auth_secret_ref: Option<SecretKeyRef>,
        /// Disabled sources are neither synced nor used.
        #[serde(default = "enabled")]
        pub enabled: bool,
    }

    fn default_protocol() -> SymbolProtocol {
        SymbolProtocol::Debuginfod
    }
    fn default_priority() -> i32 {
        100
    }
    fn default_sla() -> u32 {
        21_600
    }
    fn default_warning_ratio() -> f64 {
        0.8
    }
    fn enabled() -> bool {
        true
    }

    /// Publisher types.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum SourceType {
        Vendor,
        Distro,
        Community,
        Partner,
    }

    /// Symbol protocols.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum SymbolProtocol {
        Debuginfod,
        SymbolServer,
    }

    /// Observed state of a `SymbolSource`.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct SymbolSourceStatus {
        /// Freshness state: `Healthy`, `Warning`, `Stale` or `Unavailable`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub freshness: Option<FreshnessState>,
        /// Last sync attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_sync_time: Option<Time>,
        /// Last successful sync.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_successful_sync_time: Option<Time>,
        /// Sync counters.
        #[serde(default)]
        pub syncs: SyncCounters,
        /// Catalog and signature coverage.
        #[serde(default)]
        pub catalog: CatalogStats,
        /// Trust score by dimension.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub trust: Option<TrustScore>,
        /// `Ready`, `Synced`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(schema_with = "conditions_schema")]
        pub conditions: Conditions,
        /// The `.metadata.generation` this status describes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
    }

    /// Freshness states.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    pub enum FreshnessState {
        Healthy,
        Warning,
        Stale,
        Unavailable,
    }

    /// Sync counters.
    #[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct SyncCounters {
        pub total: u64,
        pub failed: u64,
        /// Consecutive failures since the last success.
        pub consecutive_failures: u32,
    }

    /// Catalog statistics.
    #[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct CatalogStats {
        /// Packs in the catalog.
        pub packs: u64,
        /// Packs with a verified DSSE signature.
        pub signed: u64,
        /// Packs without a signature.
        pub unsigned: u64,
        /// Packs whose signature failed verification.
        pub signature_failures: u64,
    }

    /// Four-dimension trust score, each in `[0, 1]`.
    #[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct TrustScore {
        /// Weight 0.30.
        pub freshness: f64,
        /// Weight 0.30.
        pub signature: f64,
        /// Weight 0.20.
        pub coverage: f64,
        /// Weight 0.20.
        pub sla_compliance: f64,
        /// Weighted average, clamped to `[0, 1]`.
        pub overall: f64,
    }
}
