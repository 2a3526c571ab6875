//! `Schedule`: recurring re-evaluation or rescans of a selection of images.

pub mod v1alpha1 {
    use crate::common::{Conditions, Severity, conditions_schema};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// Run scans on a cron schedule: `analysis-only` re-matches stored SBOMs against the
    /// current advisories and VEX (no pull), `content-refresh` rescans the images.
    #[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[kube(
        group = "stella-ops.org",
        version = "v1alpha1",
        kind = "Schedule",
        doc = "Recurring re-evaluation (analysis-only) or rescans (content-refresh) of a selection of images.",
        status = "ScheduleStatus",
        shortname = "stsched",
        category = "stella",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Cron","type":"string","jsonPath":".spec.cron"}"#,
        printcolumn = r#"{"name":"Timezone","type":"string","jsonPath":".spec.timeZone"}"#,
        printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
        printcolumn = r#"{"name":"Suspend","type":"boolean","jsonPath":".spec.suspend"}"#,
        printcolumn = r#"{"name":"Last Run","type":"date","jsonPath":".status.lastRunTime"}"#,
        printcolumn = r#"{"name":"Next Run","type":"date","jsonPath":".status.nextRunTime"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Scope","type":"string","priority":1,"jsonPath":".spec.selection.scope"}"#,
        printcolumn = r#"{"name":"Last Result","type":"string","priority":1,"jsonPath":".status.lastRun.state"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ScheduleSpec {
        /// Five-field cron expression (minute hour day-of-month month day-of-week),
        /// e.g. `0 2 * * *`, or a macro such as `@daily`.
        #[schemars(
            length(min = 1, max = 128),
            regex(
                pattern = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"
            )
        )]
        pub cron: String,

        /// IANA time zone the cron expression is read in, e.g. `Europe/Sofia`. Defaults to UTC.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(
            length(min = 1, max = 64),
            regex(pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
        )]
        pub time_zone: Option<String>,

        /// `analysis-only` (re-match stored SBOMs, no pull) or `content-refresh` (rescan).
        pub mode: ScheduleMode,

        /// Which images a run covers.
        pub selection: Selection,

        /// Preconditions an image must meet to be included in a run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub only_if: Option<OnlyIf>,

        /// Which findings of a run are notable: a run that found new ones at or above
        /// `minSeverity` (or new KEV hits with `includeKev`) says so in a `NewFindings` Event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub notify: Option<ScheduleNotify>,

        /// Bounds on the work one run may start.
        #[serde(default)]
        pub limits: Limits,

        /// Skip future runs without deleting the schedule (a run in progress finishes).
        #[serde(default)]
        pub suspend: bool,

        /// A run missed (the operator was down at its time) starts late only within this many
        /// seconds of its scheduled time, as a CronJob's `startingDeadlineSeconds`; unset: the
        /// latest missed run starts however late. Several missed runs start once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 31_536_000))]
        pub starting_deadline_seconds: Option<u32>,
    }

    /// Annotation on a Schedule that starts a run now, once per value:
    /// `kubectl annotate schedule nightly stella-ops.org/run-now=$(date +%s) --overwrite`.
    pub const RUN_NOW: &str = "stella-ops.org/run-now";

    /// Annotation a Schedule run puts on each Scan it covers: `<mode>/<run id>`
    /// (`analysis-only/nightly-1764640800`). The Scan controller answers it once — a
    /// re-evaluation of the stored inventory, or a rescan for `content-refresh` — and records
    /// the value it answered in `status.scheduleRequest`.
    pub const SCHEDULE_RUN: &str = "stella-ops.org/schedule-run";

    /// A parsed [`SCHEDULE_RUN`] value.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct RunRequest {
        pub mode: ScheduleMode,
        pub run_id: String,
    }

    impl RunRequest {
        /// The annotation value.
        pub fn value(&self) -> String {
            let mode = match self.mode {
                ScheduleMode::AnalysisOnly => "analysis-only",
                ScheduleMode::ContentRefresh => "content-refresh",
            };
            format!("{mode}/{}", self.run_id)
        }

        /// Reads an annotation value; `None` for anything else (a hand-written value is
        /// ignored, never guessed at).
        pub fn parse(value: &str) -> Option<RunRequest> {
            let (mode, run_id) = value.split_once('/')?;
            let mode = match mode {
                "analysis-only" => ScheduleMode::AnalysisOnly,
                "content-refresh" => ScheduleMode::ContentRefresh,
                _ => return None,
            };
            let valid = !run_id.is_empty()
                && run_id.len() <= 128
                && run_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            valid.then(|| RunRequest {
                mode,
                run_id: run_id.to_string(),
            })
        }
    }

    /// Schedule modes.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum ScheduleMode {
        AnalysisOnly,
        ContentRefresh,
    }

    /// Image selection for a run.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.scope != 'namespaces' || size(self.namespaces) > 0",
         "message": "scope 'namespaces' needs at least one entry in namespaces", "fieldPath": ".namespaces"},
        {"rule": "self.scope != 'repositories' || size(self.repositories) > 0",
         "message": "scope 'repositories' needs at least one entry in repositories", "fieldPath": ".repositories"},
        {"rule": "self.scope != 'labels' || has(self.labelSelector)",
         "message": "scope 'labels' needs labelSelector", "fieldPath": ".labelSelector"},
        {"rule": "self.scope != 'digests' || size(self.digests) > 0",
         "message": "scope 'digests' needs at least one entry in digests", "fieldPath": ".digests"},
    ]))]
    pub struct Selection {
        /// `all-images`, or select by `namespaces`, `repositories`, workload `labels` or `digests`.
        pub scope: SelectionScope,
        /// Namespace globs (`prod-*`), for scope `namespaces`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
        pub namespaces: Vec<String>,
        /// Repository globs (`registry.example/team/*`), for scope `repositories`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 64), inner(length(min = 1, max = 512)))]
        pub repositories: Vec<String>,
        /// Workload label selector, for scope `labels`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub label_selector: Option<LabelSelector>,
        /// Image digests, for scope `digests`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 1000), inner(regex(pattern = r"^sha256:[a-f0-9]{64}$")))]
        pub digests: Vec<String>,
    }

    /// Selection scopes.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum SelectionScope {
        AllImages,
        Namespaces,
        Repositories,
        Labels,
        Digests,
    }

    /// Preconditions for including an image.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct OnlyIf {
        /// Only images whose last report is older than this many days.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 0, max = 3650))]
        pub last_report_older_than_days: Option<u32>,
        /// Only images whose last report used a different policy digest.
        #[serde(default)]
        pub policy_changed: bool,
    }

    /// Notification behaviour of a run.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct ScheduleNotify {
        /// Raise a `NewFindings` Event when a run finds new findings.
        #[serde(default)]
        pub on_new_findings: bool,
        /// Lowest severity that counts (default: low).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_severity: Option<Severity>,
        /// Also count new findings CISA lists as known exploited, whatever their severity.
        #[serde(default)]
        pub include_kev: bool,
    }

    /// Work limits of a run.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct Limits {
        /// Most Scans one run covers (the rest are left for the next run, and the run says so).
        #[serde(default = "default_max_jobs")]
        #[schemars(range(min = 1, max = 1_000_000))]
        pub max_jobs: u32,
        /// Most Scans a run asks for work per second.
        #[serde(default = "default_rate")]
        #[schemars(range(min = 1, max = 10_000))]
        pub rate_per_second: u32,
        /// Most Scans of a run being re-evaluated or rescanned at once.
        #[serde(default = "default_parallelism")]
        #[schemars(range(min = 1, max = 1024))]
        pub parallelism: u32,
    }

    impl Default for Limits {
        fn default() -> Self {
            Limits {
                max_jobs: default_max_jobs(),
                rate_per_second: default_rate(),
                parallelism: default_parallelism(),
            }
        }
    }

    fn default_max_jobs() -> u32 {
        5000
    }
    fn default_rate() -> u32 {
        50
    }
    fn default_parallelism() -> u32 {
        4
    }

    /// Observed state of a `Schedule`.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct ScheduleStatus {
        /// When the last run started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_run_time: Option<Time>,
        /// The cron time the last cron run was for (missed runs are counted from it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_schedule_time: Option<Time>,
        /// The last `stella-ops.org/run-now` value a run was started for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 64))]
        pub run_request: Option<String>,
        /// When the next run is due (absent while suspended).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub next_run_time: Option<Time>,
        /// When a run last completed without errors.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_successful_run_time: Option<Time>,
        /// The last run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_run: Option<RunSummary>,
        /// The most recent runs, newest first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 10))]
        pub history: Vec<RunSummary>,
        /// `Ready`, `Reconciling` (while a run is in progress), `Stalled` (an invalid spec).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(schema_with = "conditions_schema")]
        pub conditions: Conditions,
        /// The `.metadata.generation` this status describes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
    }

    /// One run of a schedule.
    #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct RunSummary {
        /// Run identifier.
        #[schemars(length(min = 1, max = 128))]
        pub run_id: String,
        /// What started the run.
        pub trigger: RunTrigger,
        /// Run state.
        pub state: RunState,
        /// When it started.
        pub started_at: Time,
        /// When it finished.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub finished_at: Option<Time>,
        /// Run statistics.
        #[serde(default)]
        pub stats: RunStats,
        /// Why a run failed or was cancelled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 1024))]
        pub message: Option<String>,
    }

    /// Run triggers.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    #[serde(rename_all = "kebab-case")]
    pub enum RunTrigger {
        Cron,
        Manual,
    }

    /// Run states.
    #[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
    pub enum RunState {
        Running,
        Completed,
        Failed,
        Cancelled,
    }

    /// Counters of one run.
    #[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct RunStats {
        /// Images the selection matched.
        pub candidates: u32,
        /// Distinct digests after de-duplication.
        pub deduped: u32,
        /// Evaluations queued.
        pub queued: u32,
        /// Evaluations completed.
        pub completed: u32,
        /// Images whose findings changed.
        pub deltas: u32,
        /// New critical findings across the run.
        pub new_criticals: u32,
        /// New high findings across the run.
        pub new_high: u32,
        /// New medium findings across the run.
        #[serde(default)]
        pub new_medium: u32,
        /// New low findings across the run.
        #[serde(default)]
        pub new_low: u32,
    }
}
