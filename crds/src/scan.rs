//! `Scan`: one image to scan, and where its results are.

pub mod v1alpha1 {
    use crate::common::{
        Conditions, SecretKeyRef, SecretRef, Severity, Verdict, conditions_schema,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// Scan one container image: resolve its digest, analyse it into SBOMs, match advisories,
    /// apply VEX and policy, and record the verdict. Results live in the object store; the
    /// status carries only counts and references, so it stays small whatever the image holds.
    #[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[kube(
        group = "stella-ops.org",
        version = "v1alpha1",
        kind = "Scan",
        doc = "A container image to scan; its status holds the verdict, finding counts and artifact references.",
        namespaced,
        status = "ScanStatus",
        shortname = "stscan",
        category = "stella",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
        printcolumn = r#"{"name":"Digest","type":"string","jsonPath":".status.imageDigest"}"#,
        printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
        printcolumn = r#"{"name":"Verdict","type":"string","jsonPath":".status.verdict"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Critical","type":"integer","jsonPath":".status.counts.critical"}"#,
        printcolumn = r#"{"name":"High","type":"integer","jsonPath":".status.counts.high"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Medium","type":"integer","priority":1,"jsonPath":".status.counts.medium"}"#,
        printcolumn = r#"{"name":"Low","type":"integer","priority":1,"jsonPath":".status.counts.low"}"#,
        printcolumn = r#"{"name":"Components","type":"integer","priority":1,"jsonPath":".status.components"}"#,
        printcolumn = r#"{"name":"Policy","type":"string","priority":1,"jsonPath":".spec.policyRef"}"#,
        printcolumn = r#"{"name":"Attestation","type":"string","priority":1,"jsonPath":".status.attestation.state"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ScanSpec {
        /// Image reference: `registry/repository:tag`, `registry/repository@sha256:…`, or both.
        /// A tag is resolved to a digest; the digest is the identity of the result.
        #[schemars(
            length(min = 1, max = 1024),
            regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*[a-zA-Z0-9]$")
        )]
        pub image: String,

        /// Pull secrets (`kubernetes.io/dockerconfigjson`) in this namespace used to resolve and
        /// pull the image. Mounted into the worker Job, never copied into the Scan.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 16))]
        pub image_pull_secrets: Vec<SecretRef>,

        /// Platform to select from a multi-platform index, as `os/arch[/variant]`.
        /// Defaults to `linux/amd64`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$"))]
        pub platform: Option<String>,

        /// Rescan even when a result for this digest with the same analyzer, feed snapshot and
        /// policy already exists.
        #[serde(default)]
        pub force: bool,

        /// Pull over plain HTTP. Only for registries on a trusted network.
        #[serde(default)]
        pub insecure_registry: bool,

        /// SBOM views to produce: `inventory` (everything present) and/or `usage`
        /// (the entrypoint closure and the libraries it loads). Defaults to `[inventory]`.
        #[serde(default = "default_views")]
        #[schemars(length(min = 1, max = 2))]
        #[schemars(extend("x-kubernetes-list-type" = "set"))]
        pub views: Vec<SbomView>,

        /// SBOM formats to store. Defaults to `[cyclonedx-json]`.
        #[serde(default = "default_formats")]
        #[schemars(length(min = 1, max = 3))]
        #[schemars(extend("x-kubernetes-list-type" = "set"))]
        pub formats: Vec<SbomFormat>,

        /// Name of the cluster-scoped `Policy` that decides the verdict. Without one the scan
        /// reports findings and no verdict.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(
            length(min = 1, max = 253),
            regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
        )]
        pub policy_ref: Option<String>,

        /// Sign the report and SBOMs as a DSSE in-toto statement.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub attest: Option<AttestSpec>,

        /// Trust build-time SBOMs: when the image carries, as an OCI referrer in its registry,
        /// an SBOM attestation about its digest signed by one of these keys (as `stella sbom`
        /// and `stella attest sign` / `attach` make it in CI), the worker reads the inventory
        /// from that SBOM instead of pulling and analysing the layers; the result records it
        /// as its origin.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub trust_build_time_sboms: Option<TrustBuildTimeSboms>,
    }

    /// The keys whose build-time SBOMs are trusted.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct TrustBuildTimeSboms {
        /// Public keys (PEM `PUBLIC KEY`, ECDSA P-256 or Ed25519), several at once for
        /// rotation.
        #[schemars(length(min = 1, max = 8), inner(length(min = 1, max = 4096)))]
        pub public_keys: Vec<String>,
    }

    fn default_views() -> Vec<SbomView> {
        vec![SbomView::Inventory]
    }

    fn default_formats() -> Vec<SbomFormat> {
        vec![SbomFormat::CyclonedxJson]
    }

    /// An SBOM view.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum SbomView {
        Inventory,
        Usage,
    }

    /// An SBOM serialisation.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum SbomFormat {
        CyclonedxJson,
        CyclonedxProtobuf,
        SpdxJson,
    }

    /// Attestation of the scan's outputs.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct AttestSpec {
        /// Sign the result: DSSE envelopes of in-toto statements for the SBOM, the
        /// vulnerabilities, the verdict report and the proof root. The worker only writes the
        /// statements; the operator re-hashes what they bind and signs them.
        pub enabled: bool,
        /// The Secret (in the Scan's namespace) and key holding the private key: PKCS#8 or
        /// SEC1 PEM (ECDSA P-256 or Ed25519) or a cosign key file, whose password is the
        /// Secret's `cosign.password` (or `password`) entry. Only the operator reads it.
        /// Without it the operator signs with its own key (`--signing-key-uri`, a PKCS#11
        /// token), or, having none, says `SigningKeyMissing`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub signing_key_secret_ref: Option<SecretKeyRef>,
        /// Also push the envelopes to the image's registry as OCI referrers (the referrers tag
        /// schema where the registry has no Referrers API, and cosign's `.att` tag), with the
        /// Scan's `imagePullSecrets` (which then need push rights).
        #[serde(default)]
        pub attach: bool,
        /// Also log the envelopes to this Rekor v2 transparency log (`https://…`): each
        /// answer's inclusion proof is checked, its Sigstore bundle stored beside the envelope
        /// (`attest/<sha256>.sigstore.json`), and the state becomes `Logged`. Off by default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
        pub rekor_url: Option<String>,
        /// The log's public key (PEM), which its checkpoints must be signed with; without it
        /// the proofs are checked and the status says the checkpoints were not verified.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 4096))]
        pub rekor_public_key: Option<String>,
    }

    /// Observed state of a `Scan`: counts and object-store references, never SBOMs or finding lists.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct ScanStatus {
        /// Where the scan is in its life.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phase: Option<ScanPhase>,
        /// The resolved image digest: the identity of every artifact below.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub image_digest: Option<String>,
        /// PASS / WARN / FAIL when a policy applies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub verdict: Option<Verdict>,
        /// Findings by severity, after VEX.
        #[serde(default)]
        pub counts: SeverityCounts,
        /// Findings that VEX statements or policy `ignore` rules suppressed.
        #[serde(default)]
        pub suppressed: u32,
        /// Number of components in the inventory SBOM.
        #[serde(default)]
        pub components: u32,
        /// Stored outputs, one per kind/format/view.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 16))]
        pub artifacts: Vec<ArtifactRef>,
        /// Inputs the result was computed from; a cached result is reused only when all match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub inputs: Option<ScanInputs>,
        /// What the last re-evaluation changed against the report before it (new findings by
        /// severity, KEV hits); absent until a re-evaluation changed something.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_delta: Option<ScanDelta>,
        /// The last Schedule run request (annotation `stella-ops.org/schedule-run`) this status
        /// answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 160))]
        pub schedule_request: Option<String>,
        /// Attestation state of the outputs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub attestation: Option<AttestationStatus>,
        /// The worker Job of the current or last attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub job_name: Option<String>,
        /// Attempts made for the current generation; retries back off exponentially.
        #[serde(default)]
        pub attempts: u32,
        /// When the current attempt started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub start_time: Option<Time>,
        /// When the last attempt finished (successfully or not).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub completion_time: Option<Time>,
        /// `Ready`, `Scanned`, `Failed`, and kstatus' `Reconciling` (a Job scanning, waiting for
        /// a slot) and `Stalled` (an invalid spec, a missing reference, a failed last attempt),
        /// each with a machine-readable reason and `observedGeneration`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(schema_with = "conditions_schema")]
        pub conditions: Conditions,
        /// The `.metadata.generation` this status describes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
    }

    /// The counts of a re-evaluation delta (the whole delta, with the top findings, is the
    /// `rescan-delta` artifact).
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct ScanDelta {
        pub new_findings: u64,
        pub new_criticals: u64,
        pub new_high: u64,
        pub new_medium: u64,
        pub new_low: u64,
        pub removed_findings: u64,
        /// New findings CISA lists as known exploited (at most 10).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 10), inner(length(max = 128)))]
        pub kev_hits: Vec<String>,
        /// RFC 3339, UTC.
        #[schemars(length(max = 64))]
        pub detected_at: String,
        /// The `rescan-delta` artifact: the whole delta, with the top findings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 512))]
        pub key: Option<String>,
    }

    /// Scan life cycle.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    pub enum ScanPhase {
        Pending,
        Resolving,
        Scanning,
        Completed,
        Failed,
    }

    /// Finding counts by severity.
    #[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct SeverityCounts {
        pub critical: u32,
        pub high: u32,
        pub medium: u32,
        pub low: u32,
        pub none: u32,
        pub unknown: u32,
    }

    impl SeverityCounts {
        /// Counts a stream of finding severities.
        pub fn tally(severities: impl IntoIterator<Item = Severity>) -> Self {
            let mut counts = SeverityCounts::default();
            for severity in severities {
                let slot = match severity {
                    Severity::Critical => &mut counts.critical,
                    Severity::High => &mut counts.high,
                    Severity::Medium => &mut counts.medium,
                    Severity::Low => &mut counts.low,
                    Severity::None => &mut counts.none,
                    Severity::Unknown => &mut counts.unknown,
                };
                *slot = slot.saturating_add(1);
            }
            counts
        }

        /// Total findings.
        pub fn total(&self) -> u64 {
            [
                self.critical,
                self.high,
                self.medium,
                self.low,
                self.none,
                self.unknown,
            ]
            .iter()
            .map(|&n| u64::from(n))
            .sum()
        }
    }

    /// A stored output of a scan.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct ArtifactRef {
        /// What the artifact is.
        pub kind: ArtifactKind,
        /// Serialisation, e.g. `cyclonedx-json`, `spdx-json`, `bom-index`, `json`, `dsse`, `zip`.
        #[schemars(length(min = 1, max = 32), regex(pattern = r"^[a-z0-9-]+$"))]
        pub format: String,
        /// SBOM view, for SBOMs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub view: Option<SbomView>,
        /// Object-store key, e.g. `images/sha256:…/inventory.cdx.json`.
        #[schemars(length(min = 1, max = 512))]
        pub key: String,
        /// Digest of the stored bytes.
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub digest: String,
        /// Size of the stored bytes.
        pub size: u64,
    }

    /// Kinds of stored outputs.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum ArtifactKind {
        Sbom,
        BomIndex,
        Report,
        Attestation,
        ProofBundle,
    }

    /// The pinned inputs of a result.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct ScanInputs {
        /// Analyzer set version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 64))]
        pub analyzer_version: Option<String>,
        /// Hash of the advisory feed snapshot the findings were matched against.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub feed_snapshot: Option<String>,
        /// Hash of the VEX snapshot applied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub vex_snapshot: Option<String>,
        /// Digest of the policy that decided the verdict.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub policy_digest: Option<String>,
    }

    /// Attestation state.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct AttestationStatus {
        /// `NotRequested`, `Signed`, `Logged` (signed and in Rekor) or `Failed`.
        pub state: AttestationState,
        /// Why it failed (`SigningKeyMissing`, `SigningKeyInvalid`, `ArtifactTampered`,
        /// `NotAttestable`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 64))]
        pub reason: Option<String>,
        /// What failed, for people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 1024))]
        pub message: Option<String>,
        /// The signing key's id (hex SHA-256 of its SubjectPublicKeyInfo).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[a-f0-9]{64}$"))]
        pub key_id: Option<String>,
        /// The DSSE envelopes of the current result, one per kind.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 8))]
        pub envelopes: Vec<AttestedEnvelope>,
    }

    /// One stored DSSE envelope.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct AttestedEnvelope {
        /// `sbom`, `vulns`, `report` or `proof`.
        #[schemars(length(max = 16))]
        pub kind: String,
        /// Its object-store key, `attest/<artifact sha256>.dsse.json`.
        #[schemars(length(max = 128))]
        pub key: String,
        /// SHA-256 of the envelope.
        #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
        pub digest: String,
        /// Its index in the transparency log, when logged (`spec.attest.rekorUrl`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub log_index: Option<i64>,
    }

    /// Attestation states.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    pub enum AttestationState {
        NotRequested,
        Signed,
        Logged,
        Failed,
    }
}
