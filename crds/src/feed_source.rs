//! `FeedSource`: an advisory or VEX feed and its snapshot.

pub mod v1alpha1 {
    use crate::common::{Conditions, SecretKeyRef, conditions_schema};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// An advisory or VEX feed (OSV, Debian / Alpine trackers, NVD, GHSA, OpenVEX, CSAF,
    /// CycloneDX VEX), synced on a cadence from a URL or imported once from an offline kit.
    /// A changed snapshot hash triggers impact selection and re-evaluation.
    #[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[kube(
        group = "stella-ops.org",
        version = "v1alpha1",
        kind = "FeedSource",
        doc = "An advisory or VEX feed synced on a cadence or imported from an offline kit.",
        status = "FeedSourceStatus",
        shortname = "stfeed",
        category = "stella",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Format","type":"string","jsonPath":".spec.format"}"#,
        printcolumn = r#"{"name":"Cadence","type":"string","jsonPath":".spec.cadence"}"#,
        printcolumn = r#"{"name":"Records","type":"integer","jsonPath":".status.records"}"#,
        printcolumn = r#"{"name":"Snapshot","type":"string","jsonPath":".status.snapshotHash"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Last Sync","type":"date","priority":1,"jsonPath":".status.lastSuccessfulSyncTime"}"#,
        printcolumn = r#"{"name":"URL","type":"string","priority":1,"jsonPath":".spec.url"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "has(self.url) != has(self.offlineKit)",
         "message": "exactly one of url and offlineKit is required"},
        {"rule": "!has(self.offlineKit) || !has(self.cadence)",
         "message": "an offline kit is imported once; cadence applies to url feeds", "fieldPath": ".cadence"},
        {"rule": "!has(self.trust) || self.format in ['openvex', 'csaf', 'cyclonedx-vex']",
         "message": "trust weighs VEX statements: it applies to openvex, csaf and cyclonedx-vex feeds", "fieldPath": ".trust"},
    ]))]
    pub struct FeedSourceSpec {
        /// Record format: which store a sync writes (advisories, KEV, EPSS or VEX). Advisory
        /// documents (OSV, GHSA in OSV form, Debian tracker, Alpine secdb, NVD) are recognised by
        /// their content, as `stella feeds import` does.
        pub format: FeedFormat,
        /// Where to fetch from: `https://…` (a file, an OSV `all.zip`, an API base URL).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
        pub url: Option<String>,
        /// An offline kit: an archive plus a manifest of digests, verified on import.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub offline_kit: Option<OfflineKit>,
        /// How often to sync a `url` feed (`6h`, `PT6H`). Defaults to 6h.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(
            length(max = 32),
            regex(
                pattern = r"^(([0-9]+(ms|s|m|h|d))+|P([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?)$"
            )
        )]
        pub cadence: Option<String>,
        /// OSV ecosystems to keep (`Debian:12`, `npm`, `PyPI`); empty keeps all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 64), inner(length(min = 1, max = 64)))]
        pub ecosystems: Vec<String>,
        /// VEX feeds only: the weight the VEX consensus gives every statement this feed
        /// brings, whoever its author (it replaces the provider's weight for them). A change
        /// re-evaluates the images those statements speak of.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub trust: Option<ProviderTrust>,
        /// Credentials (API key or bearer token), e.g. for NVD's API.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auth_secret_ref: Option<SecretKeyRef>,
        /// Stop syncing without deleting the feed's records.
        #[serde(default)]
        pub suspend: bool,
    }

    /// Feed record formats.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum FeedFormat {
        Osv,
        DebianTracker,
        AlpineSecdb,
        Nvd,
        Ghsa,
        Openvex,
        Csaf,
        CyclonedxVex,
        /// CISA's Known Exploited Vulnerabilities catalog (JSON).
        Kev,
        /// FIRST EPSS scores (`.csv` or `.csv.gz`).
        Epss,
    }

    /// An offline kit location.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct OfflineKit {
        /// Where the kit is: an `https://` URL; an OCI artifact in a registry pinned by its
        /// manifest digest, `oci://registry.example/feeds/kit@sha256:…` (one layer: the kit
        /// zip; the artifact's manifest and layer digests are verified, then the kit's own);
        /// or a file the operator's pod mounts, `file:///var/lib/stella/kits/kit.zip` (inside
        /// the operator's `--offline-kit-dir`).
        #[schemars(
            length(min = 8, max = 2048),
            regex(pattern = r"^(https?|oci|file)://[^\s]+$")
        )]
        pub url: String,
        /// Expected digest of the kit's manifest; the import fails on mismatch.
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub manifest_digest: String,
        /// Fetch an `oci://` kit over plain HTTP (a registry on loopback or a trusted network).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub insecure_registry: bool,
    }

    /// The trust a VEX feed's statements get.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct ProviderTrust {
        /// Trust tier: `vendor`, `distro`, `platform`, `hub` or `attestation`. Without a
        /// `weight` it gives the weight: vendor 1.0, distro 0.85, the others 0.5 (the
        /// consensus's category weights).
        pub tier: TrustTier,
        /// Weight in `[0, 1]` of this feed's statements; 0 mutes them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 0.0, max = 1.0))]
        pub weight: Option<f64>,
    }

    /// Trust tiers.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum TrustTier {
        Vendor,
        Distro,
        Platform,
        Hub,
        Attestation,
    }

    fn is_zero(n: &u32) -> bool {
        *n == 0
    }

    /// The counts of one delta (the log entry is served by the REST API under `seq`).
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct FeedDeltaSummary {
        /// Position in the catalog's delta log.
        pub seq: i64,
        pub added: u64,
        pub removed: u64,
        pub changed: u64,
        /// `ecosystem/package` keys touched: what impact selection looks up.
        pub keys: u64,
        /// VEX products (with their subcomponents) whose statements came, went or were
        /// reweighted: impact selection matches them against each image's purls.
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub vex_products: u64,
    }

    fn is_zero_u64(n: &u64) -> bool {
        *n == 0
    }

    /// Observed state of a `FeedSource`.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct FeedSourceStatus {
        /// Last sync attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_sync_time: Option<Time>,
        /// Last successful sync.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_successful_sync_time: Option<Time>,
        /// Hash of this feed's records after the last successful sync.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub snapshot_hash: Option<String>,
        /// When the next sync is due.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub next_sync_time: Option<Time>,
        /// The catalog's feed snapshot (all feeds together) after the last successful sync:
        /// what a Scan's `status.inputs.feedSnapshot` pins.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub combined_snapshot: Option<String>,
        /// Records accepted.
        #[serde(default)]
        pub records: u64,
        /// Records rejected (schema-invalid); the first reasons are in `rejections`.
        #[serde(default)]
        pub rejected: u64,
        /// The first rejections (`origin: reason`), at most 10.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 10), inner(length(max = 1024)))]
        pub rejections: Vec<String>,
        /// What the last sync that changed anything changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_delta: Option<FeedDeltaSummary>,
        /// The last `stella-ops.org/sync-now` annotation value honoured.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 64))]
        pub sync_request: Option<String>,
        /// Failed syncs since the last successful one (the retry backoff grows with it).
        #[serde(default, skip_serializing_if = "is_zero")]
        pub failures: u32,
        /// `Ready`, `Synced`, `Reconciling`, `Stalled`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(schema_with = "conditions_schema")]
        pub conditions: Conditions,
        /// The `.metadata.generation` this status describes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
    }
}
