//! The Scan controller's pure middle: from what was observed (the Scan, its Job, the catalog's
//! rows, the running-Job count) to what to do next and the status to write. No I/O here, so
//! every path of the state machine is a unit test.

use super::events::{ScanEvent, Transition};
use crate::conditions::{self, Desired, FAILED, READY, SCANNED, Status};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;
use stella_crds::common::Verdict;
use stella_crds::scan::v1alpha1::{
    ArtifactKind, ArtifactRef, SbomView, Scan, ScanInputs, ScanPhase, ScanStatus, SeverityCounts,
};
use stella_crds::schedule::v1alpha1::{RunRequest, SCHEDULE_RUN, ScheduleMode};
use stella_store::{ArtifactRow, ResultRow, RunRow};

/// The state of the worker Job named in `status.jobName`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Not finished (pods pending, running, or retried by the Job's own backoff).
    Running,
    /// `Complete=True`.
    Succeeded,
    /// `Failed=True`, with the Job condition's reason (`BackoffLimitExceeded`,
    /// `DeadlineExceeded`) and message.
    Failed { reason: String, message: String },
    /// The status names a Job that no longer exists (deleted, or collected by its TTL).
    Missing,
}

/// The inputs a result is pinned to; a result is reused only when all three match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    pub analyzer_version: String,
    pub feed_snapshot: String,
    pub policy_digest: Option<String>,
}

/// Everything the decision needs, read by `dereference`.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The resolved image digest.
    pub digest: String,
    pub inputs: Inputs,
    /// The Job of `status.jobName`, when one is named.
    pub job: Option<JobState>,
    /// The worker's own report for that Job (`RunRow` keyed by the Job name).
    pub run: Option<RunRow>,
    /// The newest result for the digest (what a finished Job produced).
    pub latest: Option<ResultRow>,
    /// The catalog's result for `digest` under exactly `inputs`.
    pub cached: Option<ResultRow>,
    /// The digest's artifacts in the catalog.
    pub artifacts: Vec<ArtifactRow>,
    /// Worker Jobs running cluster-wide (finished Jobs do not count).
    pub running_jobs: u32,
    /// The feeds changed since the status's pinned snapshot, and the logged deltas name none
    /// of the image's packages (its BOM-Index's match keys): its findings cannot have changed.
    pub feed_untouched: bool,
    /// The delta stored beside `cached`'s report, when `cached` came from a re-evaluation
    /// that changed something (read only while the status is behind `cached`).
    pub cached_delta: Option<stella_pipeline::delta::Delta>,
}

/// Limits the decision applies.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_concurrent: u32,
    /// First retry delay; doubled per failed attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often a completed Scan is looked at again (new feeds or policy → rescan).
    pub resync: Duration,
}

/// What to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// A Job is running: wait for it.
    Wait,
    /// Create the worker Job for attempt `attempt`.
    Create { attempt: u32 },
    /// All slots are taken by running Jobs: stay Pending and look again later.
    Queue,
    /// The last attempt failed; retry after `remaining`.
    Backoff { remaining: Duration },
    /// Nothing to do: the status already describes the current digest and inputs.
    UpToDate,
    /// The digest and the analyzer are what the status says, only the feeds or the policy
    /// changed, and the inventory is stored: judge it again in the operator (no pull, no
    /// analysis, no Job), then [`Plan::Complete`] with [`Completion::Reevaluated`].
    Reevaluate,
    /// Only the feed snapshot changed and none of its deltas names the image's packages: the
    /// verdict stands; the status pins the new snapshot (no evaluation, no Job).
    Advance,
    /// Write a result (from a finished Job, reused from the catalog, or re-evaluated).
    Complete {
        result: Box<ResultRow>,
        how: Completion,
    },
    /// The attempt failed: write why.
    Fail {
        reason: &'static str,
        message: String,
    },
}

/// Where a written result came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// A worker Job scanned the image.
    Scanned,
    /// The catalog held a result for exactly these inputs.
    Reused,
    /// The stored inventory was evaluated again under the current inputs.
    Reevaluated,
}

/// The status to write and when to look again.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: ScanStatus,
    pub requeue: Option<Duration>,
    /// A transition worth a Kubernetes Event.
    pub event: Option<ScanEvent>,
}

/// Decides the next step for `scan` given `observed` at `now`.
pub fn decide(scan: &Scan, observed: &Observed, limits: &Limits, now: &Time) -> Plan {
    let status = scan.status.clone().unwrap_or_default();
    let same_generation = status.observed_generation == scan.metadata.generation;
    let in_flight = status.phase == Some(ScanPhase::Scanning) && status.job_name.is_some();
    if in_flight {
        return match &observed.job {
            Some(JobState::Running) | None => Plan::Wait,
            Some(finished) => finish(finished, observed),
        };
    }
    let current_inputs = status.inputs.as_ref().map(inputs_of_status);
    // A Schedule run's request not answered yet: `analysis-only` judges the stored inventory
    // again even when nothing changed (waivers expire, reports age), `content-refresh` rescans.
    let request = pending_request(scan);
    let analysis_request = request
        .as_ref()
        .is_some_and(|r| r.mode == ScheduleMode::AnalysisOnly);
    let force = scan.spec.force
        || request
            .as_ref()
            .is_some_and(|r| r.mode == ScheduleMode::ContentRefresh);
    if status.phase == Some(ScanPhase::Completed)
        && same_generation
        && status.image_digest.as_deref() == Some(observed.digest.as_str())
        && current_inputs.as_ref() == Some(&observed.inputs)
        && request.is_none()
    {
        return Plan::UpToDate;
    }
    if status.phase == Some(ScanPhase::Failed)
        && same_generation
        && status.image_digest.as_deref() == Some(observed.digest.as_str())
        && let Some(failed_at) = &status.completion_time
    {
        let wait = backoff(status.attempts, limits);
        let elapsed = elapsed(failed_at, now);
        if elapsed < wait {
            return Plan::Backoff {
                remaining: wait - elapsed,
            };
        }
    }
    // New feeds or a new policy for the same content: a content rescan happens only when the
    // analyzer changed, the spec changed (`force` among it), a `content-refresh` run asks, or
    // no inventory is stored.
    let reevaluable = status.phase == Some(ScanPhase::Completed)
        && same_generation
        && status.image_digest.as_deref() == Some(observed.digest.as_str())
        && current_inputs
            .as_ref()
            .is_some_and(|c| c.analyzer_version == observed.inputs.analyzer_version)
        && observed
            .artifacts
            .iter()
            .any(|a| a.kind == stella_store::INVENTORY_KIND);
    let judge_again = force || (analysis_request && reevaluable);
    if !judge_again && let Some(cached) = &observed.cached {
        // For a Scan whose stored inventory could be judged again, the result under these
        // inputs is a re-evaluation's (its own, when its status write failed after recording).
        return Plan::Complete {
            result: Box::new(cached.clone()),
            how: if reevaluable {
                Completion::Reevaluated
            } else {
                Completion::Reused
            },
        };
    }
    if !force && reevaluable {
        let only_feeds = current_inputs.as_ref().is_some_and(|c| {
            c.policy_digest == observed.inputs.policy_digest
                && c.feed_snapshot != observed.inputs.feed_snapshot
        });
        if only_feeds && observed.feed_untouched && !analysis_request {
            return Plan::Advance;
        }
        return Plan::Reevaluate;
    }
    if observed.running_jobs >= limits.max_concurrent {
        return Plan::Queue;
    }
    let retrying = status.phase == Some(ScanPhase::Failed)
        && status.image_digest.as_deref() == Some(observed.digest.as_str());
    Plan::Create {
        attempt: if retrying {
            status.attempts.saturating_add(1)
        } else {
            1
        },
    }
}

/// The Schedule run request on `scan` (annotation [`SCHEDULE_RUN`]) that its status has not
/// answered yet. A value that does not parse is ignored (and answered with the next status).
pub fn pending_request(scan: &Scan) -> Option<RunRequest> {
    let value = scan.metadata.annotations.as_ref()?.get(SCHEDULE_RUN)?;
    let answered = scan
        .status
        .as_ref()
        .and_then(|s| s.schedule_request.as_deref());
    if answered == Some(value.as_str()) {
        return None;
    }
    RunRequest::parse(value)
}

/// A re-evaluation's delta as the Scan status counts it (the whole delta is the artifact
/// `key` names).
pub fn scan_delta(
    delta: &stella_pipeline::delta::Delta,
    key: Option<String>,
) -> stella_crds::scan::v1alpha1::ScanDelta {
    stella_crds::scan::v1alpha1::ScanDelta {
        new_findings: delta.new_findings,
        new_criticals: delta.new_criticals,
        new_high: delta.new_high,
        new_medium: delta.new_medium,
        new_low: delta.new_low,
        removed_findings: delta.removed_findings,
        kev_hits: delta.kev_hits.iter().take(10).cloned().collect(),
        detected_at: delta.detected_at.clone(),
        key,
    }
}

/// Whether the status written after `plan` answers a Schedule run's request: it does once the
/// Scan is done with it — a result written, a failure, nothing to do, or a retry backing off
/// (the run does not wait for a failing image).
fn answers(plan: &Plan) -> bool {
    !matches!(
        plan,
        Plan::Wait | Plan::Create { .. } | Plan::Queue | Plan::Reevaluate
    )
}

/// The request value a status answering `scan`'s annotation records.
fn answered_request(scan: &Scan) -> Option<String> {
    scan.metadata
        .annotations
        .as_ref()?
        .get(SCHEDULE_RUN)
        .map(|v| v.chars().take(160).collect())
}

/// A finished (or vanished) Job: the worker's report decides, the Job's state explains when
/// the worker could not report.
fn finish(job: &JobState, observed: &Observed) -> Plan {
    if let Some(run) = &observed.run {
        if run.outcome == "succeeded" {
            return match &observed.latest {
                Some(result)
                    if run.image_digest.as_deref() == Some(result.image_digest.as_str()) =>
                {
                    Plan::Complete {
                        result: Box::new(result.clone()),
                        how: Completion::Scanned,
                    }
                }
                _ => Plan::Fail {
                    reason: "NoResult",
                    message:
                        "the worker reported success but the catalog holds no result for the image"
                            .into(),
                },
            };
        }
        if !matches!(job, JobState::Running) {
            return Plan::Fail {
                reason: worker_reason(&run.reason),
                message: run.message.clone(),
            };
        }
    }
    match job {
        JobState::Running => Plan::Wait,
        JobState::Succeeded => Plan::Fail {
            reason: "NoResult",
            message: "the worker Job completed without reporting to the catalog".into(),
        },
        JobState::Failed { reason, message } => Plan::Fail {
            reason: job_reason(reason),
            message: if message.is_empty() {
                format!("the worker Job failed ({reason}) without reporting to the catalog")
            } else {
                message.clone()
            },
        },
        JobState::Missing => Plan::Fail {
            reason: "JobDeleted",
            message: "the worker Job disappeared before it reported a result".into(),
        },
    }
}

/// The worker's report from its pod when it could not reach the catalog: the JSON line it
/// writes to the termination log (`{"outcome":"failed","reason":"…","message":"…"}`), or the
/// container's own termination reason (`OOMKilled`, `Error`) when there is none. The newest
/// pod of the Job decides.
pub fn termination_report(
    run_id: &str,
    pods: &[k8s_openapi::api::core::v1::Pod],
) -> Option<RunRow> {
    let mut terminated: Vec<(&Time, &k8s_openapi::api::core::v1::ContainerStateTerminated)> = pods
        .iter()
        .flat_map(|pod| {
            pod.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .filter(|c| c.name == "worker")
        .filter_map(|c| {
            let state = c.state.as_ref()?.terminated.as_ref()?;
            Some((state.finished_at.as_ref()?, state))
        })
        .collect();
    terminated.sort_by_key(|(at, _)| at.0);
    let (finished_at, state) = terminated.last()?;
    let parsed = state
        .message
        .as_deref()
        .and_then(|m| m.lines().rev().find(|l| l.trim_start().starts_with('{')))
        .and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v.get("outcome").and_then(|o| o.as_str()).is_some());
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(|x| x.as_str())
            .map(|x| x.chars().take(1024).collect::<String>())
    };
    let (outcome, reason, message, digest) = match &parsed {
        Some(v) => (
            text(v, "outcome")?,
            text(v, "reason").unwrap_or_else(|| "Internal".into()),
            text(v, "message").unwrap_or_default(),
            text(v, "imageDigest"),
        ),
        None => (
            if state.exit_code == 0 {
                "succeeded"
            } else {
                "failed"
            }
            .to_string(),
            state.reason.clone().unwrap_or_else(|| "Error".into()),
            format!("the worker exited with code {}", state.exit_code),
            None,
        ),
    };
    Some(RunRow {
        run_id: run_id.to_string(),
        image_digest: digest,
        outcome,
        reason,
        message,
        finished_at: finished_at.0.to_string(),
    })
}

/// The worker's machine-readable reasons, bounded to a known set (they become condition
/// reasons and metric labels).
pub fn worker_reason(reason: &str) -> &'static str {
    match reason {
        "Unreachable" => "Unreachable",
        "Unauthorized" => "Unauthorized",
        "ImageNotFound" => "ImageNotFound",
        "CorruptImage" => "CorruptImage",
        "InvalidPolicy" => "InvalidPolicy",
        "StorageUnavailable" => "StorageUnavailable",
        "RegistryError" => "RegistryError",
        "InvalidArguments" => "InvalidArguments",
        "OOMKilled" => "OOMKilled",
        _ => "WorkerFailed",
    }
}

fn job_reason(reason: &str) -> &'static str {
    match reason {
        "DeadlineExceeded" => "DeadlineExceeded",
        "BackoffLimitExceeded" => "BackoffLimitExceeded",
        _ => "JobFailed",
    }
}

/// Retry delay after `attempts` failed attempts: `base × 2^(attempts−1)`, capped.
pub fn backoff(attempts: u32, limits: &Limits) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    limits
        .retry_base
        .saturating_mul(1u32 << exponent)
        .min(limits.retry_max)
}

fn elapsed(since: &Time, now: &Time) -> Duration {
    let seconds = now.0.as_second() - since.0.as_second();
    Duration::from_secs(seconds.max(0) as u64)
}

pub(crate) fn inputs_of_status(inputs: &ScanInputs) -> Inputs {
    Inputs {
        analyzer_version: inputs.analyzer_version.clone().unwrap_or_default(),
        feed_snapshot: inputs.feed_snapshot.clone().unwrap_or_default(),
        policy_digest: inputs.policy_digest.clone(),
    }
}

/// The status after `plan` (`job_name` is the Job created for a `Create` plan).
pub fn status(
    scan: &Scan,
    observed: &Observed,
    plan: &Plan,
    job_name: Option<&str>,
    limits: &Limits,
    now: &Time,
) -> Outcome {
    let old = scan.status.clone().unwrap_or_default();
    let generation = scan.metadata.generation;
    let mut new = ScanStatus {
        observed_generation: generation,
        image_digest: Some(observed.digest.clone()),
        ..old.clone()
    };
    if answers(plan)
        && let Some(value) = answered_request(scan)
    {
        new.schedule_request = Some(value);
    }
    let set = |new: &mut ScanStatus, wanted: &[Desired]| {
        new.conditions = conditions::merge(&old.conditions, wanted, generation, now);
    };
    let (requeue, event) = match plan {
        Plan::Wait => {
            new.phase = Some(ScanPhase::Scanning);
            (Some(limits.resync.min(Duration::from_secs(300))), None)
        }
        Plan::Create { attempt } => {
            new.phase = Some(ScanPhase::Scanning);
            new.job_name = job_name.map(str::to_string);
            new.attempts = *attempt;
            new.start_time = Some(now.clone());
            new.completion_time = None;
            let message = format!(
                "worker Job {} scanning {} (attempt {attempt})",
                job_name.unwrap_or_default(),
                observed.digest
            );
            let [reconciling, stalled] = conditions::in_progress("Scanning", message.clone());
            set(
                &mut new,
                &[
                    conditions::not_ready("Scanning", message.clone()),
                    reconciling,
                    stalled,
                ],
            );
            (
                Some(Duration::from_secs(300)),
                Some(ScanEvent::new(Transition::ScanStarted, message)),
            )
        }
        Plan::Queue => {
            new.phase = Some(ScanPhase::Pending);
            let message = format!(
                "waiting for a worker slot: {} of {} running",
                observed.running_jobs, limits.max_concurrent
            );
            let [reconciling, stalled] = conditions::in_progress("WaitingForSlot", message.clone());
            set(
                &mut new,
                &[
                    conditions::not_ready("WaitingForSlot", message),
                    reconciling,
                    stalled,
                ],
            );
            (Some(Duration::from_secs(10)), None)
        }
        Plan::Backoff { remaining } => (Some(*remaining), None),
        Plan::UpToDate => (Some(limits.resync), None),
        // The status while the operator re-evaluates: as it was (the reconcile writes the
        // `Complete` status of the re-evaluation instead).
        Plan::Reevaluate => (Some(Duration::from_secs(1)), None),
        Plan::Advance => {
            let inputs = new.inputs.get_or_insert_with(Default::default);
            inputs.feed_snapshot = Some(observed.inputs.feed_snapshot.clone());
            (Some(limits.resync), None)
        }
        Plan::Complete { result, how } => {
            complete(&mut new, result, &observed.artifacts);
            if *how == Completion::Reevaluated
                && let Some(delta) = &observed.cached_delta
            {
                new.last_delta = Some(scan_delta(delta, stella_pipeline::delta_key(result)));
            }
            new.completion_time = Some(now.clone());
            if *how != Completion::Scanned {
                new.job_name = None;
                new.attempts = 0;
            }
            let verdict = result.verdict.as_deref().unwrap_or("none");
            let summary = format!(
                "{} components; {} critical, {} high, {} medium, {} low; verdict {verdict}",
                result.components, result.critical, result.high, result.medium, result.low
            );
            let (transition, message) = match how {
                Completion::Reused => (
                    Transition::ResultReused,
                    format!("reused the catalog's result for these inputs: {summary}"),
                ),
                Completion::Reevaluated => (
                    Transition::Reevaluated,
                    format!(
                        "re-evaluated the stored inventory under new feeds or policy (no pull, no Job): {summary}"
                    ),
                ),
                Completion::Scanned => (Transition::ScanSucceeded, format!("scanned: {summary}")),
            };
            let reason = transition.reason();
            let [reconciling, stalled] = conditions::settled(reason);
            set(
                &mut new,
                &[
                    reconciling,
                    stalled,
                    conditions::ready(reason, message.clone()),
                    conditions::condition(SCANNED, Status::True, reason, message.clone()),
                    conditions::condition(
                        FAILED,
                        Status::False,
                        reason,
                        "the last attempt succeeded",
                    ),
                ],
            );
            let transition = if result.verdict.as_deref() == Some("FAIL") {
                Transition::PolicyFailed
            } else {
                transition
            };
            (
                Some(limits.resync),
                Some(ScanEvent::new(transition, message)),
            )
        }
        Plan::Fail { reason, message } => {
            new.phase = Some(ScanPhase::Failed);
            new.completion_time = Some(now.clone());
            let retry = backoff(new.attempts.max(1), limits);
            let message = format!(
                "attempt {} failed: {message}; retrying in {}s",
                new.attempts.max(1),
                retry.as_secs()
            );
            // Stalled until the retry starts: the last attempt failed, and the reason says
            // why (a GitOps tool shows it degraded, not "progressing" forever).
            let [reconciling, stalled] = conditions::stalled(reason, message.clone());
            set(
                &mut new,
                &[
                    reconciling,
                    stalled,
                    conditions::not_ready(reason, message.clone()),
                    conditions::condition(SCANNED, Status::False, reason, message.clone()),
                    conditions::condition(FAILED, Status::True, reason, message.clone()),
                ],
            );
            (
                Some(retry),
                Some(ScanEvent::new(Transition::Failed(reason), message)),
            )
        }
    };
    Outcome {
        status: new,
        requeue,
        event,
    }
}

/// The status of an invalid spec or a missing reference: Failed, no Job, and no retry until
/// something changes (`retry` for references that may appear later).
pub fn invalid(
    scan: &Scan,
    reason: &'static str,
    message: &str,
    retry: Option<Duration>,
    now: &Time,
) -> Outcome {
    let old = scan.status.clone().unwrap_or_default();
    let generation = scan.metadata.generation;
    let status = ScanStatus {
        phase: Some(ScanPhase::Failed),
        observed_generation: generation,
        conditions: conditions::merge(
            &old.conditions,
            &{
                let [reconciling, stalled] = conditions::stalled(reason, message);
                [
                    reconciling,
                    stalled,
                    conditions::not_ready(reason, message),
                    conditions::condition(FAILED, Status::True, reason, message),
                ]
            },
            generation,
            now,
        ),
        schedule_request: answered_request(scan).or(old.schedule_request.clone()),
        ..old.clone()
    };
    let flipped = !conditions::is_true(&old.conditions, FAILED)
        || old
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .is_none_or(|c| c.reason != reason);
    Outcome {
        status,
        requeue: retry,
        event: flipped.then(|| ScanEvent::new(Transition::Failed(reason), message)),
    }
}

fn complete(status: &mut ScanStatus, result: &ResultRow, artifacts: &[ArtifactRow]) {
    let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    status.phase = Some(ScanPhase::Completed);
    status.image_digest = Some(result.image_digest.clone());
    status.verdict = result.verdict.as_deref().and_then(verdict);
    status.counts = SeverityCounts {
        critical: count(result.critical),
        high: count(result.high),
        medium: count(result.medium),
        low: count(result.low),
        none: count(result.none),
        unknown: count(result.unknown),
    };
    status.suppressed = count(result.suppressed);
    status.components = count(result.components);
    status.inputs = Some(ScanInputs {
        analyzer_version: Some(result.analyzer_version.clone()),
        feed_snapshot: Some(result.feed_snapshot.clone()),
        vex_snapshot: result.vex_snapshot.clone(),
        policy_digest: result.policy_digest.clone(),
    });
    let mut refs: Vec<ArtifactRef> = artifacts.iter().filter_map(artifact_ref).collect();
    if let Some(key) = &result.report_key
        && let Some(row) = artifacts.iter().find(|a| &a.key == key)
        && !refs.iter().any(|r| &r.key == key)
    {
        refs.push(ArtifactRef {
            kind: ArtifactKind::Report,
            format: "json".into(),
            view: None,
            key: row.key.clone(),
            digest: row.digest.clone(),
            size: u64::try_from(row.size.max(0)).unwrap_or(0),
        });
    }
    refs.sort_by(|a, b| a.key.cmp(&b.key));
    // The CRD's bound: a status the API server refuses would stop every later write.
    refs.truncate(MAX_STATUS_ARTIFACTS);
    status.artifacts = refs;
}

fn verdict(name: &str) -> Option<Verdict> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// At most this many artifacts in `status.artifacts` (the CRD's `maxItems`).
const MAX_STATUS_ARTIFACTS: usize = 16;

/// A catalog artifact as the status lists it; rows the CRD cannot describe are left out.
fn artifact_ref(row: &ArtifactRow) -> Option<ArtifactRef> {
    let kind = match row.kind.as_str() {
        "sbom" => ArtifactKind::Sbom,
        "bom-index" => ArtifactKind::BomIndex,
        "report" => ArtifactKind::Report,
        // Envelopes, statements and proof bundles accumulate per evaluation: the current
        // result's are in `status.attestation`.
        _ => return None,
    };
    let view = match row.view.as_deref() {
        Some("inventory") => Some(SbomView::Inventory),
        Some("usage") => Some(SbomView::Usage),
        _ => None,
    };
    let digest_ok = row
        .digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !digest_ok || row.key.is_empty() || row.key.len() > 512 {
        return None;
    }
    let format: String = row
        .format
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    (!format.is_empty()).then(|| ArtifactRef {
        kind,
        format,
        view,
        key: row.key.clone(),
        digest: row.digest.clone(),
        size: u64::try_from(row.size.max(0)).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::fixtures::{DIGEST, FEED, at, limits, observed, scan};
    use stella_store::ArtifactRow;

    fn result() -> ResultRow {
        ResultRow {
            image_digest: DIGEST.into(),
            image_ref: format!("registry.example/shop/web@{DIGEST}"),
            analyzer_version: "a1".into(),
            feed_snapshot: FEED.into(),
            vex_snapshot: None,
            policy_digest: Some(FEED.into()),
            verdict: Some("WARN".into()),
            critical: 0,
            high: 3,
            medium: 1,
            low: 7,
            none: 0,
            unknown: 2,
            suppressed: 4,
            components: 120,
            report_key: None,
            finished_at: "2026-11-28T08:00:00Z".into(),
        }
    }

    fn run(outcome: &str, reason: &str) -> RunRow {
        RunRow {
            run_id: "stella-scan-1".into(),
            image_digest: Some(DIGEST.into()),
            outcome: outcome.into(),
            reason: reason.into(),
            message: format!("{reason} happened"),
            finished_at: "2026-11-28T08:00:00Z".into(),
        }
    }

    fn scanning() -> ScanStatus {
        ScanStatus {
            phase: Some(ScanPhase::Scanning),
            image_digest: Some(DIGEST.into()),
            job_name: Some("stella-scan-1".into()),
            attempts: 1,
            observed_generation: Some(1),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_image_gets_a_job_unless_the_catalog_has_the_result_or_slots_are_full() {
        let new = scan(None);
        assert_eq!(
            decide(&new, &observed(), &limits(), &at(0)),
            Plan::Create { attempt: 1 }
        );
        let cached = Observed {
            cached: Some(result()),
            ..observed()
        };
        assert_eq!(
            decide(&new, &cached, &limits(), &at(0)),
            Plan::Complete {
                result: Box::new(result()),
                how: Completion::Reused
            }
        );
        let mut forced = new.clone();
        forced.spec.force = true;
        assert_eq!(
            decide(&forced, &cached, &limits(), &at(0)),
            Plan::Create { attempt: 1 }
        );
        let full = Observed {
            running_jobs: 2,
            ..observed()
        };
        assert_eq!(decide(&new, &full, &limits(), &at(0)), Plan::Queue);
    }

    #[test]
    fn a_finished_job_is_read_from_the_workers_report() {
        let s = scan(Some(scanning()));
        let running = Observed {
            job: Some(JobState::Running),
            ..observed()
        };
        assert_eq!(decide(&s, &running, &limits(), &at(0)), Plan::Wait);
        // The worker failed once but the Job retries its pod: still waiting.
        let retrying = Observed {
            run: Some(run("failed", "Unreachable")),
            ..running.clone()
        };
        assert_eq!(decide(&s, &retrying, &limits(), &at(0)), Plan::Wait);
        let done = Observed {
            job: Some(JobState::Succeeded),
            run: Some(run("succeeded", "Completed")),
            latest: Some(result()),
            ..observed()
        };
        assert_eq!(
            decide(&s, &done, &limits(), &at(0)),
            Plan::Complete {
                result: Box::new(result()),
                how: Completion::Scanned
            }
        );
        // Collected by its TTL after reporting: the report still decides.
        let collected = Observed {
            job: Some(JobState::Missing),
            ..done.clone()
        };
        assert!(matches!(
            decide(&s, &collected, &limits(), &at(0)),
            Plan::Complete {
                how: Completion::Scanned,
                ..
            }
        ));
        let cases = [
            (
                Some(run("failed", "Unauthorized")),
                JobState::Failed {
                    reason: "BackoffLimitExceeded".into(),
                    message: String::new(),
                },
                "Unauthorized",
            ),
            (
                Some(run("failed", "SomethingNew")),
                JobState::Failed {
                    reason: "BackoffLimitExceeded".into(),
                    message: String::new(),
                },
                "WorkerFailed",
            ),
            (
                None,
                JobState::Failed {
                    reason: "DeadlineExceeded".into(),
                    message: String::new(),
                },
                "DeadlineExceeded",
            ),
            (None, JobState::Succeeded, "NoResult"),
            (None, JobState::Missing, "JobDeleted"),
            (
                Some(run("succeeded", "Completed")),
                JobState::Succeeded,
                "NoResult",
            ),
        ];
        for (run, job, reason) in cases {
            let o = Observed {
                job: Some(job.clone()),
                run,
                ..observed()
            };
            match decide(&s, &o, &limits(), &at(0)) {
                Plan::Fail { reason: got, .. } => assert_eq!(got, reason, "{job:?}"),
                other => panic!("{job:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn failures_back_off_exponentially_then_retry() {
        let failed = ScanStatus {
            phase: Some(ScanPhase::Failed),
            completion_time: Some(at(1000)),
            attempts: 2,
            ..scanning()
        };
        let s = scan(Some(failed));
        // Attempt 2 failed: 30 s × 2 = 60 s.
        assert_eq!(
            decide(&s, &observed(), &limits(), &at(1010)),
            Plan::Backoff {
                remaining: Duration::from_secs(50)
            }
        );
        assert_eq!(
            decide(&s, &observed(), &limits(), &at(1060)),
            Plan::Create { attempt: 3 }
        );
        assert_eq!(backoff(1, &limits()), Duration::from_secs(30));
        assert_eq!(backoff(5, &limits()), Duration::from_secs(480));
        assert_eq!(backoff(50, &limits()), Duration::from_secs(600), "capped");
        // A changed spec (new generation) does not wait for the old failure's backoff.
        let mut edited = s.clone();
        edited.metadata.generation = Some(2);
        assert_eq!(
            decide(&edited, &observed(), &limits(), &at(1010)),
            Plan::Create { attempt: 3 }
        );
    }

    /// What observe reads for an image whose canonical inventory is stored (so it can be
    /// judged again without a Job).
    fn observed_with_inventory() -> Observed {
        let mut o = observed();
        o.artifacts.push(ArtifactRow {
            key: format!("images/{DIGEST}/inventory.json"),
            image_digest: DIGEST.into(),
            kind: stella_store::INVENTORY_KIND.into(),
            format: "inventory-json".into(),
            view: None,
            digest: FEED.into(),
            size: 99,
        });
        o
    }

    /// A Scan whose worker Job completed with [`result`], as `observed` saw it.
    fn completed(observed: &Observed) -> Scan {
        let done = status(
            &scan(None),
            observed,
            &Plan::Complete {
                result: Box::new(result()),
                how: Completion::Scanned,
            },
            None,
            &limits(),
            &at(100),
        );
        scan(Some(done.status))
    }

    #[test]
    fn a_completed_scan_is_up_to_date_until_an_input_changes() {
        let limits = limits();
        let completed = completed(&observed());
        assert_eq!(
            decide(&completed, &observed(), &limits, &at(200)),
            Plan::UpToDate
        );
        let new_feeds = Observed {
            inputs: Inputs {
                feed_snapshot:
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
                ..observed().inputs
            },
            ..observed()
        };
        assert_eq!(
            decide(&completed, &new_feeds, &limits, &at(200)),
            Plan::Create { attempt: 1 }
        );
        let moved_tag = Observed {
            digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                .into(),
            ..observed()
        };
        assert_eq!(
            decide(&completed, &moved_tag, &limits, &at(200)),
            Plan::Create { attempt: 1 }
        );
    }

    #[test]
    fn new_feeds_or_policy_reevaluate_a_stored_inventory_and_nothing_else_does() {
        let limits = limits();
        let with_inventory = observed_with_inventory;
        let completed = completed(&with_inventory());
        let feeds = |o: Observed| Observed {
            inputs: Inputs {
                feed_snapshot:
                    "sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
                ..o.inputs.clone()
            },
            ..o
        };
        // New feeds, a new policy digest: judged again in the operator.
        assert_eq!(
            decide(&completed, &feeds(with_inventory()), &limits, &at(200)),
            Plan::Reevaluate
        );
        let policy = Observed {
            inputs: Inputs {
                policy_digest: Some("sha256:p2".into()),
                ..with_inventory().inputs
            },
            ..with_inventory()
        };
        assert_eq!(
            decide(&completed, &policy, &limits, &at(200)),
            Plan::Reevaluate
        );
        // New feeds whose deltas name none of the image's packages: the verdict stands, the
        // status pins the new snapshot, nothing is evaluated.
        let untouched = Observed {
            feed_untouched: true,
            ..feeds(with_inventory())
        };
        assert_eq!(
            decide(&completed, &untouched, &limits, &at(200)),
            Plan::Advance
        );
        let advanced = status(
            &completed,
            &untouched,
            &Plan::Advance,
            None,
            &limits,
            &at(200),
        );
        assert_eq!(advanced.event, None, "quiet");
        let pinned = advanced.status.inputs.clone().unwrap();
        assert_eq!(
            pinned.feed_snapshot.as_deref(),
            Some(untouched.inputs.feed_snapshot.as_str())
        );
        assert_eq!(
            advanced.status.verdict,
            completed.status.as_ref().unwrap().verdict
        );
        assert_eq!(
            advanced.status.conditions,
            completed.status.as_ref().unwrap().conditions
        );
        // Untouched feeds together with a new policy: the policy needs the evaluation.
        let both = Observed {
            feed_untouched: true,
            inputs: Inputs {
                policy_digest: Some("sha256:p2".into()),
                ..untouched.inputs.clone()
            },
            ..untouched.clone()
        };
        assert_eq!(
            decide(&completed, &both, &limits, &at(200)),
            Plan::Reevaluate
        );
        // Nothing changed: up to date, no evaluation at all.
        assert_eq!(
            decide(&completed, &with_inventory(), &limits, &at(200)),
            Plan::UpToDate
        );
        // A content rescan instead: no stored inventory, a new analyzer, a new digest, an
        // edited spec, `force`.
        assert_eq!(
            decide(&completed, &feeds(observed()), &limits, &at(200)),
            Plan::Create { attempt: 1 }
        );
        let analyzer = Observed {
            inputs: Inputs {
                analyzer_version: "a2".into(),
                ..feeds(with_inventory()).inputs
            },
            ..with_inventory()
        };
        assert_eq!(
            decide(&completed, &analyzer, &limits, &at(200)),
            Plan::Create { attempt: 1 }
        );
        let moved = Observed {
            digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                .into(),
            ..feeds(with_inventory())
        };
        assert_eq!(
            decide(&completed, &moved, &limits, &at(200)),
            Plan::Create { attempt: 1 }
        );
        let mut edited = completed.clone();
        edited.metadata.generation = Some(2);
        assert_eq!(
            decide(&edited, &feeds(with_inventory()), &limits, &at(200)),
            Plan::Create { attempt: 1 }
        );
        let mut forced = completed.clone();
        forced.spec.force = true;
        assert_eq!(
            decide(&forced, &feeds(with_inventory()), &limits, &at(200)),
            Plan::Create { attempt: 1 }
        );
        // The catalog already holds a result for exactly the new inputs: not judged again. It
        // is a re-evaluation's (this Scan's own, when the status write after it failed), and
        // the delta stored beside it fills the status.
        let delta = stella_pipeline::delta::Delta {
            image_digest: DIGEST.into(),
            new_findings: 2,
            new_high: 2,
            verdict: "FAIL".into(),
            detected_at: "2026-11-28T08:00:00Z".into(),
            ..Default::default()
        };
        let cached = Observed {
            cached: Some(ResultRow {
                report_key: Some(format!("images/{DIGEST}/reports/{}.json", "0".repeat(64))),
                ..result()
            }),
            cached_delta: Some(delta),
            ..feeds(with_inventory())
        };
        let plan = decide(&completed, &cached, &limits, &at(200));
        assert!(matches!(
            plan,
            Plan::Complete {
                how: Completion::Reevaluated,
                ..
            }
        ));
        let out = status(&completed, &cached, &plan, None, &limits, &at(200));
        let last = out.status.last_delta.unwrap();
        assert_eq!((last.new_findings, last.new_high), (2, 2));
        assert_eq!(
            last.key,
            Some(format!("images/{DIGEST}/deltas/{}.json", "0".repeat(64)))
        );
        // A Scan that cannot be judged again from a stored inventory reuses the result.
        let no_inventory = Observed {
            cached: Some(result()),
            ..feeds(observed())
        };
        assert!(matches!(
            decide(&completed, &no_inventory, &limits, &at(200)),
            Plan::Complete {
                how: Completion::Reused,
                ..
            }
        ));
    }

    #[test]
    fn a_schedule_runs_request_is_answered_once_by_a_reevaluation_or_a_rescan() {
        let limits = limits();
        let with_inventory = || Observed {
            cached: Some(result()),
            ..observed_with_inventory()
        };
        let asked = |value: &str| {
            let mut s = completed(&with_inventory());
            s.metadata.annotations = Some([(SCHEDULE_RUN.to_string(), value.to_string())].into());
            s
        };
        // Up to date, the catalog holding the result for these inputs: an `analysis-only`
        // request still judges the stored inventory again (waivers expire, reports age).
        let analysis = asked("analysis-only/nightly-1764640800");
        assert_eq!(
            decide(&analysis, &with_inventory(), &limits, &at(200)),
            Plan::Reevaluate
        );
        // Untouched feeds are no reason to skip it either.
        let untouched = Observed {
            feed_untouched: true,
            inputs: Inputs {
                feed_snapshot:
                    "sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
                ..with_inventory().inputs
            },
            ..with_inventory()
        };
        assert_eq!(
            decide(&analysis, &untouched, &limits, &at(200)),
            Plan::Reevaluate
        );
        // The re-evaluation's status answers the request; then the Scan is up to date again.
        let done = status(
            &analysis,
            &with_inventory(),
            &Plan::Complete {
                result: Box::new(result()),
                how: Completion::Reevaluated,
            },
            None,
            &limits,
            &at(210),
        );
        assert_eq!(
            done.status.schedule_request.as_deref(),
            Some("analysis-only/nightly-1764640800")
        );
        let mut answered = analysis.clone();
        answered.status = Some(done.status);
        assert_eq!(
            decide(&answered, &with_inventory(), &limits, &at(220)),
            Plan::UpToDate
        );
        // While the request is being worked on, nothing answers it.
        for plan in [
            Plan::Reevaluate,
            Plan::Create { attempt: 1 },
            Plan::Queue,
            Plan::Wait,
        ] {
            let out = status(
                &analysis,
                &with_inventory(),
                &plan,
                Some("stella-scan-2"),
                &limits,
                &at(205),
            );
            assert_eq!(out.status.schedule_request, None, "{plan:?}");
        }
        // `content-refresh` rescans (a Job, within the slots), whatever the catalog holds.
        let refresh = asked("content-refresh/weekly-1764640800");
        assert_eq!(
            decide(&refresh, &with_inventory(), &limits, &at(200)),
            Plan::Create { attempt: 1 }
        );
        let full = Observed {
            running_jobs: 2,
            ..with_inventory()
        };
        assert_eq!(decide(&refresh, &full, &limits, &at(200)), Plan::Queue);
        // Nothing to re-evaluate (no stored inventory): the catalog's result answers.
        let mut bare = completed(&observed());
        bare.metadata.annotations = Some(
            [(
                SCHEDULE_RUN.to_string(),
                "analysis-only/nightly-1".to_string(),
            )]
            .into(),
        );
        let no_inventory = Observed {
            cached: Some(result()),
            ..observed()
        };
        assert!(matches!(
            decide(&bare, &no_inventory, &limits, &at(200)),
            Plan::Complete {
                how: Completion::Reused,
                ..
            }
        ));
        // A value the controller never writes is not obeyed, and is answered at once.
        let garbage = asked("rm -rf/../x");
        assert_eq!(pending_request(&garbage), None);
        assert_eq!(
            decide(&garbage, &with_inventory(), &limits, &at(200)),
            Plan::UpToDate
        );
        let out = status(
            &garbage,
            &with_inventory(),
            &Plan::UpToDate,
            None,
            &limits,
            &at(200),
        );
        assert_eq!(out.status.schedule_request.as_deref(), Some("rm -rf/../x"));
    }

    #[test]
    fn a_reevaluated_status_names_no_job_and_says_so() {
        let mut running = scanning();
        running.phase = Some(ScanPhase::Completed);
        let outcome = status(
            &scan(Some(running)),
            &observed(),
            &Plan::Complete {
                result: Box::new(ResultRow {
                    verdict: Some("FAIL".into()),
                    critical: 1,
                    ..result()
                }),
                how: Completion::Reevaluated,
            },
            None,
            &limits(),
            &at(1_764_316_800),
        );
        let status = &outcome.status;
        assert_eq!(status.phase, Some(ScanPhase::Completed));
        assert_eq!(status.job_name, None);
        assert_eq!(status.attempts, 0);
        assert_eq!(status.counts.critical, 1);
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Reevaluated")
        );
        assert!(
            ready.message.contains("no pull, no Job"),
            "{}",
            ready.message
        );
        // A FAIL is a Warning Event whatever produced it.
        let event = outcome.event.unwrap();
        assert_eq!(event.transition.reason(), "PolicyFailed");
        assert!(
            event.note.starts_with("re-evaluated the stored inventory"),
            "{}",
            event.note
        );
    }

    /// The status of a completed scan, pinned as JSON.
    #[test]
    fn completed_status_snapshot() {
        let outcome = status(
            &scan(Some(scanning())),
            &observed(),
            &Plan::Complete {
                result: Box::new(result()),
                how: Completion::Scanned,
            },
            None,
            &limits(),
            &at(1_764_316_800),
        );
        let expected = serde_json::json!({
            "phase": "Completed",
            "imageDigest": DIGEST,
            "verdict": "WARN",
            "counts": {"critical": 0, "high": 3, "medium": 1, "low": 7, "none": 0, "unknown": 2},
            "suppressed": 4,
            "components": 120,
            "artifacts": [{"kind": "sbom", "format": "cyclonedx-json", "view": "inventory", "key": format!("images/{DIGEST}/inventory.cdx.json"), "digest": FEED, "size": 1234}],
            "inputs": {"analyzerVersion": "a1", "feedSnapshot": FEED, "policyDigest": FEED},
            "jobName": "stella-scan-1",
            "attempts": 1,
            "completionTime": "2025-11-28T08:00:00Z",
            "conditions": [
                {"type": "Failed", "status": "False", "reason": "ScanSucceeded", "message": "the last attempt succeeded", "lastTransitionTime": "2025-11-28T08:00:00Z", "observedGeneration": 1},
                {"type": "Ready", "status": "True", "reason": "ScanSucceeded", "message": "scanned: 120 components; 0 critical, 3 high, 1 medium, 7 low; verdict WARN", "lastTransitionTime": "2025-11-28T08:00:00Z", "observedGeneration": 1},
                {"type": "Reconciling", "status": "False", "reason": "ScanSucceeded", "message": "nothing in progress", "lastTransitionTime": "2025-11-28T08:00:00Z", "observedGeneration": 1},
                {"type": "Scanned", "status": "True", "reason": "ScanSucceeded", "message": "scanned: 120 components; 0 critical, 3 high, 1 medium, 7 low; verdict WARN", "lastTransitionTime": "2025-11-28T08:00:00Z", "observedGeneration": 1},
                {"type": "Stalled", "status": "False", "reason": "ScanSucceeded", "message": "not stalled", "lastTransitionTime": "2025-11-28T08:00:00Z", "observedGeneration": 1},
            ],
            "observedGeneration": 1,
        });
        assert_eq!(serde_json::to_value(&outcome.status).unwrap(), expected);
        assert_eq!(outcome.requeue, Some(Duration::from_secs(600)));
        assert_eq!(
            outcome
                .event
                .as_ref()
                .map(|e| (e.transition.is_warning(), e.transition.reason())),
            Some((false, "ScanSucceeded"))
        );
    }

    #[test]
    fn failed_status_says_why_and_when_it_retries() {
        let outcome = status(
            &scan(Some(scanning())),
            &observed(),
            &Plan::Fail {
                reason: "Unreachable",
                message: "registry down".into(),
            },
            None,
            &limits(),
            &at(50),
        );
        assert_eq!(outcome.status.phase, Some(ScanPhase::Failed));
        let failed = outcome
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == FAILED)
            .unwrap();
        assert_eq!(
            (
                failed.status.as_str(),
                failed.reason.as_str(),
                failed.message.as_str()
            ),
            (
                "True",
                "Unreachable",
                "attempt 1 failed: registry down; retrying in 30s"
            )
        );
        assert_eq!(outcome.requeue, Some(Duration::from_secs(30)));
        // kstatus: stalled with the reason until the retry starts, then reconciling again.
        let kstatus = |status: &ScanStatus| -> Vec<(String, String, String)> {
            status
                .conditions
                .iter()
                .filter(|c| c.type_ == "Reconciling" || c.type_ == "Stalled")
                .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
                .collect()
        };
        let owned = |v: [(&str, &str, &str); 2]| -> Vec<(String, String, String)> {
            v.iter()
                .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
                .collect()
        };
        assert_eq!(
            kstatus(&outcome.status),
            owned([
                ("Reconciling", "False", "Unreachable"),
                ("Stalled", "True", "Unreachable")
            ])
        );
        let mut retrying = scan(Some(outcome.status.clone()));
        retrying.metadata.generation = Some(1);
        let retried = status(
            &retrying,
            &observed(),
            &Plan::Create { attempt: 2 },
            Some("stella-scan-2"),
            &limits(),
            &at(90),
        );
        assert_eq!(
            kstatus(&retried.status),
            owned([
                ("Reconciling", "True", "Scanning"),
                ("Stalled", "False", "Scanning")
            ])
        );
        assert_eq!(
            outcome
                .event
                .as_ref()
                .map(|e| (e.transition.is_warning(), e.transition.reason())),
            Some((true, "Unreachable"))
        );
        // Invalid references: an event on the first report only.
        let first = invalid(
            &scan(None),
            "PolicyNotFound",
            "policy \"x\" does not exist",
            None,
            &at(1),
        );
        assert!(first.event.is_some());
        assert_eq!(first.requeue, None);
        let again = invalid(
            &scan(Some(first.status)),
            "PolicyNotFound",
            "policy \"x\" does not exist",
            None,
            &at(2),
        );
        assert!(again.event.is_none(), "no event storm");
    }

    #[test]
    fn the_pods_termination_message_speaks_when_the_catalog_could_not() {
        let pod = |finished: &str,
                   message: Option<&str>,
                   reason: &str,
                   code: i32|
         -> k8s_openapi::api::core::v1::Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p"},
                "status": {"containerStatuses": [{"name": "worker", "image": "w", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "reason": reason, "message": message, "finishedAt": finished}}}]},
            }))
            .unwrap()
        };
        let older = pod(
            "2026-11-28T08:00:00Z",
            Some("{\"outcome\":\"failed\",\"reason\":\"Unreachable\",\"message\":\"old\"}"),
            "Error",
            3,
        );
        let newer = pod(
            "2026-11-28T08:05:00Z",
            Some(
                "stderr noise\n{\"outcome\":\"failed\",\"reason\":\"StorageUnavailable\",\"message\":\"postgres: connection refused\"}",
            ),
            "Error",
            1,
        );
        let run = termination_report("job-1", &[newer, older]).unwrap();
        assert_eq!(
            (run.outcome.as_str(), run.reason.as_str()),
            ("failed", "StorageUnavailable")
        );
        assert_eq!(run.message, "postgres: connection refused");
        let killed = termination_report(
            "job-1",
            &[pod("2026-11-28T08:00:00Z", None, "OOMKilled", 137)],
        )
        .unwrap();
        assert_eq!(
            (killed.reason.as_str(), worker_reason(&killed.reason)),
            ("OOMKilled", "OOMKilled")
        );
        // Garbage in the message: the container's own reason.
        let garbage = termination_report(
            "job-1",
            &[pod("2026-11-28T08:00:00Z", Some("{not json"), "Error", 2)],
        )
        .unwrap();
        assert_eq!(
            (garbage.outcome.as_str(), garbage.reason.as_str()),
            ("failed", "Error")
        );
        assert!(termination_report("job-1", &[]).is_none());
    }

    #[test]
    fn catalog_rows_the_crd_cannot_describe_are_left_out() {
        let bad = ArtifactRow {
            key: "images/x/inventory.cdx.json".into(),
            image_digest: DIGEST.into(),
            kind: "sbom".into(),
            format: "cyclonedx-json".into(),
            view: None,
            digest: "md5:abc".into(),
            size: 1,
        };
        assert!(artifact_ref(&bad).is_none());
        let unknown_kind = ArtifactRow {
            kind: "telemetry".into(),
            digest: FEED.into(),
            ..bad.clone()
        };
        assert!(artifact_ref(&unknown_kind).is_none());
        let index = ArtifactRow {
            kind: "bom-index".into(),
            format: "stella-bomindex".into(),
            digest: FEED.into(),
            ..bad
        };
        assert_eq!(artifact_ref(&index).unwrap().kind, ArtifactKind::BomIndex);
    }
}
