//! `NotifyRule` and `NotifyChannel`: which events go where.

pub mod v1alpha1 {
    use crate::common::{Conditions, SecretKeyRef, Severity, Verdict, conditions_schema};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// Route matching events (`scanner.report.ready`, `scheduler.rescan.delta`,
    /// `zastava.admission`, …) to `NotifyChannel`s in this namespace, with throttling and digests.
    #[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[kube(
        group = "stella-ops.org",
        version = "v1alpha1",
        kind = "NotifyRule",
        doc = "Routes matching platform events to NotifyChannels, with throttling and digests.",
        namespaced,
        status = "NotifyRuleStatus",
        shortname = "stnr",
        category = "stella",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Events","type":"string","jsonPath":".spec.match.eventKinds"}"#,
        printcolumn = r#"{"name":"Min Severity","type":"string","jsonPath":".spec.match.minSeverity"}"#,
        printcolumn = r#"{"name":"Enabled","type":"boolean","jsonPath":".spec.enabled"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Delivered","type":"integer","priority":1,"jsonPath":".status.delivered"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct NotifyRuleSpec {
        /// Which events the rule matches; every given selector must match.
        #[serde(rename = "match")]
        pub match_: EventMatch,
        /// Deliveries for a matching event.
        #[schemars(length(min = 1, max = 16))]
        pub actions: Vec<NotifyAction>,
        /// Disabled rules match nothing.
        #[serde(default = "enabled")]
        pub enabled: bool,
    }

    fn enabled() -> bool {
        true
    }

    /// Event selectors.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct EventMatch {
        /// Event kinds.
        #[schemars(length(min = 1, max = 16))]
        #[schemars(extend("x-kubernetes-list-type" = "set"))]
        pub event_kinds: Vec<EventKind>,
        /// Lowest finding severity an event must carry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_severity: Option<Severity>,
        /// Namespace globs of the workload or Scan.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
        pub namespaces: Vec<String>,
        /// Repository globs of the image.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 64), inner(length(min = 1, max = 512)))]
        pub repositories: Vec<String>,
        /// Verdicts an event must carry.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 3))]
        pub verdicts: Vec<Verdict>,
        /// Only findings in the KEV catalog.
        #[serde(default)]
        pub kev_only: bool,
        /// VEX gates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub vex: Option<VexGate>,
    }

    /// Event kinds the platform emits.
    #[derive(
        Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash, PartialOrd, Ord,
    )]
    pub enum EventKind {
        #[serde(rename = "scanner.report.ready")]
        ScannerReportReady,
        #[serde(rename = "scanner.scan.completed")]
        ScannerScanCompleted,
        #[serde(rename = "scheduler.rescan.delta")]
        SchedulerRescanDelta,
        #[serde(rename = "zastava.admission")]
        ZastavaAdmission,
        #[serde(rename = "feeds.snapshot.changed")]
        FeedsSnapshotChanged,
        #[serde(rename = "policy.changed")]
        PolicyChanged,
    }

    /// VEX gates.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct VexGate {
        /// Also notify about findings a VEX statement marks not affected with an accepted
        /// justification.
        #[serde(default)]
        pub include_accepted_justifications: bool,
    }

    /// A delivery.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!(has(self.throttle) && has(self.digest))",
         "message": "throttle and digest are exclusive: a digest already coalesces", "fieldPath": ".digest"},
        {"rule": "!(has(self.template) && has(self.customTemplate))",
         "message": "template (built-in) and customTemplate are exclusive", "fieldPath": ".customTemplate"},
    ]))]
    pub struct NotifyAction {
        /// Name of a `NotifyChannel` in this namespace.
        #[schemars(
            length(min = 1, max = 253),
            regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
        )]
        pub channel: String,
        /// Overrides the channel's default target: for e-mail the recipients (comma-separated);
        /// recorded with each delivery. Slack and Teams incoming webhooks post where their URL
        /// was created, so there it is informational.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 512))]
        pub target: Option<String>,
        /// Built-in layout: `concise` (the default: five findings) or `detailed` (forty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9][-a-z0-9]*$"))]
        pub template: Option<String>,
        /// A custom title and body in Jinja syntax (rendered in a sandbox: no file access,
        /// bounded steps and output), checked when the rule is applied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub custom_template: Option<CustomTemplate>,
        /// At most one delivery per this interval for the same event key (`5m`, `PT5M`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(
            length(max = 32),
            regex(
                pattern = r"^(([0-9]+(ms|s|m|h|d))+|P([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?)$"
            )
        )]
        pub throttle: Option<String>,
        /// Coalesce matching events into one message per period.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub digest: Option<DigestPeriod>,
    }

    /// A custom message: Jinja templates over the message's `title`, `facts`, `findings`,
    /// `more`, `link`, `rule` and the `event` (a digest's first) and `events`.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct CustomTemplate {
        /// The title (Slack header, e-mail subject); the built-in one when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 1024))]
        pub title: Option<String>,
        /// The body, in place of the built-in facts and findings.
        #[schemars(length(min = 1, max = 16384))]
        pub body: String,
    }

    /// Digest periods.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum DigestPeriod {
        Hourly,
        Daily,
        Weekly,
    }

    /// Observed state of a `NotifyRule`.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct NotifyRuleStatus {
        /// Events matched since the rule was created.
        #[serde(default)]
        pub matched: u64,
        /// Deliveries made.
        #[serde(default)]
        pub delivered: u64,
        /// Deliveries suppressed by throttling.
        #[serde(default)]
        pub throttled: u64,
        /// Events folded into digests.
        #[serde(default)]
        pub coalesced: u64,
        /// Deliveries dead-lettered (attempts exhausted or refused); see
        /// `GET /api/v1/notify/deliveries` for the reasons.
        #[serde(default)]
        pub failed: u64,
        /// Deliveries waiting (for a retry or a digest window).
        #[serde(default)]
        pub pending: u64,
        /// The last delivery sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_delivery_time: Option<Time>,
        /// Last time the rule matched an event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_matched_time: Option<Time>,
        /// `Ready`, `ChannelsResolved`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(schema_with = "conditions_schema")]
        pub conditions: Conditions,
        /// The `.metadata.generation` this status describes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
    }

    /// A delivery endpoint: Slack, Microsoft Teams, e-mail (SMTP) or a generic webhook.
    /// Credentials and secret URLs are only referenced from Secrets.
    #[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[kube(
        group = "stella-ops.org",
        version = "v1alpha1",
        kind = "NotifyChannel",
        doc = "A notification endpoint (Slack, Teams, e-mail, webhook); credentials only by Secret reference.",
        namespaced,
        status = "NotifyChannelStatus",
        shortname = "stnc",
        category = "stella",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
        printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.target"}"#,
        printcolumn = r#"{"name":"Enabled","type":"boolean","jsonPath":".spec.enabled"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Last Delivery","type":"date","priority":1,"jsonPath":".status.lastDeliveryTime"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.type != 'email' || has(self.email)",
         "message": "type 'email' needs the email block", "fieldPath": ".email"},
        {"rule": "self.type == 'email' || has(self.secretRef) || has(self.endpoint)",
         "message": "slack, teams and webhook channels need secretRef (a secret URL) or endpoint", "fieldPath": ".secretRef"},
    ]))]
    pub struct NotifyChannelSpec {
        /// `slack`, `teams`, `email` or `webhook`.
        #[serde(rename = "type")]
        pub type_: ChannelType,
        /// Default target: for e-mail the recipients (comma-separated, at most 50); recorded with
        /// each delivery (Slack and Teams incoming webhooks post where their URL was created, so
        /// there it is informational).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 512))]
        pub target: Option<String>,
        /// Non-secret endpoint URL (for webhooks that need no secret).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
        pub endpoint: Option<String>,
        /// Secret holding the credential: the Slack / Teams incoming-webhook URL, the webhook's
        /// bearer token or HMAC key, or the SMTP password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret_ref: Option<SecretKeyRef>,
        /// SMTP settings, for `email`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email: Option<EmailConfig>,
        /// Hosts or IP addresses the channel may reach although they resolve to loopback,
        /// private or link-local addresses (refused otherwise: the SSRF guard).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
        pub allow_hosts: Vec<String>,
        /// Delivery limits.
        #[serde(default)]
        pub limits: ChannelLimits,
        /// Disabled channels deliver nothing.
        #[serde(default = "enabled")]
        pub enabled: bool,
    }

    /// Channel types.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum ChannelType {
        Slack,
        Teams,
        Email,
        Webhook,
    }

    /// SMTP settings.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct EmailConfig {
        /// SMTP server host.
        #[schemars(length(min = 1, max = 253))]
        pub smtp_host: String,
        /// SMTP server port.
        #[serde(default = "default_smtp_port")]
        #[schemars(range(min = 1, max = 65535))]
        pub smtp_port: u16,
        /// Sender address.
        #[schemars(length(min = 3, max = 320), regex(pattern = r"^[^@\s]+@[^@\s]+$"))]
        pub from: String,
        /// SMTP user name; the password comes from the channel's `secretRef`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 320))]
        pub username: Option<String>,
        /// Transport security: `none`, `starttls` (required: a server that does not offer it
        /// is refused) or `tls` (implicit TLS, usually port 465).
        #[serde(default = "default_tls")]
        pub security: SmtpSecurity,
        /// PEM certificates trusted for the server's TLS beside the system's roots (a
        /// private CA, a self-signed relay).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 65536))]
        pub ca_certificates: Option<String>,
    }

    fn default_smtp_port() -> u16 {
        587
    }
    fn default_tls() -> SmtpSecurity {
        SmtpSecurity::Starttls
    }

    /// SMTP transport security.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum SmtpSecurity {
        None,
        Starttls,
        Tls,
    }

    /// Delivery limits of a channel.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct ChannelLimits {
        /// Per-delivery timeout (`10s`, `PT10S`).
        #[serde(default = "default_timeout")]
        #[schemars(
            length(max = 32),
            regex(
                pattern = r"^(([0-9]+(ms|s|m|h|d))+|P([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?)$"
            )
        )]
        pub timeout: String,
        /// Most deliveries per minute.
        #[serde(default = "default_rpm")]
        #[schemars(range(min = 1, max = 10_000))]
        pub per_minute: u32,
        /// Delivery attempts before an event is dead-lettered.
        #[serde(default = "default_attempts")]
        #[schemars(range(min = 1, max = 20))]
        pub max_attempts: u32,
    }

    impl Default for ChannelLimits {
        fn default() -> Self {
            ChannelLimits {
                timeout: default_timeout(),
                per_minute: default_rpm(),
                max_attempts: default_attempts(),
            }
        }
    }

    fn default_timeout() -> String {
        "10s".into()
    }
    fn default_rpm() -> u32 {
        60
    }
    fn default_attempts() -> u32 {
        5
    }

    /// Observed state of a `NotifyChannel`.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct NotifyChannelStatus {
        /// Last delivery attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_delivery_time: Option<Time>,
        /// Deliveries that succeeded.
        #[serde(default)]
        pub delivered: u64,
        /// Deliveries that failed after all attempts.
        #[serde(default)]
        pub failed: u64,
        /// `Ready`, `SecretResolved`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(schema_with = "conditions_schema")]
        pub conditions: Conditions,
        /// The `.metadata.generation` this status describes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
    }
}
