//! The Schedule controller (leader only): starts runs on each Schedule's cron in its IANA time
//! zone (or on `stella-ops.org/run-now`), and drives each run to its end by asking the Scans
//! it selects — through the annotation `stella-ops.org/schedule-run` — to be re-evaluated
//! from their stored inventories (`analysis-only`) or rescanned (`content-refresh`). The Scan
//! controller does the work and answers in each Scan's status; a run's progress is read off
//! the Scans alone, so an operator restart resumes a run where it was.
//!
//! dereference (the Scans, from a watch cache; the Policies' digests) → validate (pure) →
//! decide and plan the step ([`plan`], pure) → apply (annotate the Scans asked now) →
//! update_status (server-side apply) → record the run in the catalog when it starts and
//! ends, with its deltas. Limits: `maxJobs` Scans per run, `ratePerSecond` asks per second,
//! `parallelism` Scans in progress at once.

pub mod plan;

use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::reflector::{self, Store as Cache};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use plan::{Due, Progress, Validated};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stella_crds::policy::v1alpha1::Policy;
use stella_crds::scan::v1alpha1::Scan;
use stella_crds::schedule::v1alpha1::{
    RUN_NOW, RunRequest, RunState, RunSummary, RunTrigger, SCHEDULE_RUN, Schedule, ScheduleMode,
    ScheduleStatus,
};
use stella_store::{SchedulerRunRow, Store};

/// Field manager of status writes and Scan annotations.
pub const MANAGER: &str = "stella-operator";
/// How often a run in progress is looked at.
pub const TICK: Duration = Duration::from_secs(1);
/// Deltas listed in a stored run (the counts cover all).
pub const MAX_RUN_DELTAS: usize = 1000;

/// What the Schedule controller needs.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub reporter: Reporter,
    /// Select only the Scans of this namespace (all namespaces when `None`).
    pub watch_namespace: Option<String>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("watch_namespace", &self.watch_namespace)
            .finish_non_exhaustive()
    }
}

/// Errors that stop a reconcile (a Schedule's own problems are its status, not errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write the Schedule status: {0}")]
    UpdateStatus(#[source] kube::Error),
    #[error("failed to ask Scan {scan} for a run: {source}")]
    Ask {
        scan: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to list Policies: {0}")]
    Policies(#[source] kube::Error),
    #[error("failed to record the run: {0}")]
    Store(#[source] stella_store::Error),
}

/// What reconciles share: the context, the Scans' watch cache, and per run when its answers
/// last moved (stall detection) and when it last asked (the rate limit).
pub struct Shared {
    pub ctx: Context,
    scans: Cache<DeserializeGuard<Scan>>,
    runs: Mutex<HashMap<String, RunClock>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
struct RunClock {
    completed: u32,
    moved: Instant,
    asked: Option<Instant>,
}

/// Runs the Schedule controller until `shutdown` resolves.
pub async fn run(
    ctx: Context,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let scans: Api<DeserializeGuard<Scan>> = match &ctx.watch_namespace {
        Some(namespace) => Api::namespaced(ctx.client.clone(), namespace),
        None => Api::all(ctx.client.clone()),
    };
    let (cache, writer) = reflector::store();
    let reflect = tokio::spawn(
        reflector::reflector(writer, watcher(scans, watcher::Config::default()))
            .default_backoff()
            .for_each(|_| futures::future::ready(())),
    );
    let schedules: Api<DeserializeGuard<Schedule>> = Api::all(ctx.client.clone());
    let shared = Arc::new(Shared {
        ctx,
        scans: cache,
        runs: Mutex::default(),
    });
    Controller::new(schedules, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, shared)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "schedule reconcile ended with an error");
            }
        })
        .await;
    reflect.abort();
}

/// One reconcile, counted and timed.
pub async fn reconcile(
    guard: Arc<DeserializeGuard<Schedule>>,
    shared: Arc<Shared>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&guard, &shared).await;
    shared.ctx.metrics.reconciled("schedule", started.elapsed());
    if let Err(error) = &result {
        shared.ctx.metrics.failed(
            "schedule",
            match error {
                Error::UpdateStatus(_) => "UpdateStatus",
                Error::Ask { .. } => "Ask",
                Error::Policies(_) => "Policies",
                Error::Store(_) => "Store",
            },
        );
    }
    result
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

async fn reconcile_inner(
    guard: &DeserializeGuard<Schedule>,
    shared: &Shared,
) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let now = now();
    let schedule = match &guard.0 {
        Ok(schedule) => schedule,
        Err(invalid) => {
            let name = invalid.metadata.name.clone().unwrap_or_default();
            let problem = plan::Problem {
                reason: "InvalidObject",
                message: crate::events::truncate(&invalid.error, 1024),
            };
            let status = plan::with_conditions(
                ScheduleStatus::default(),
                &plan::stalled(&problem),
                invalid.metadata.generation,
                &now,
            );
            write_status(ctx, &name, None, &status).await?;
            return Ok(Action::await_change());
        }
    };
    let name = schedule.name_any();
    let generation = schedule.metadata.generation;
    let current = schedule.status.clone().unwrap_or_default();
    let validated = match plan::validate(&schedule.spec) {
        Ok(v) => v,
        Err(problem) => {
            let was = current
                .conditions
                .iter()
                .find(|c| c.type_ == plan::STALLED && c.status == "True")
                .map(|c| c.reason.clone());
            let mut status =
                plan::with_conditions(current.clone(), &plan::stalled(&problem), generation, &now);
            status.next_run_time = None;
            write_status(ctx, &name, Some(&current), &status).await?;
            if was.as_deref() != Some(problem.reason) {
                tracing::warn!(schedule = %name, reason = problem.reason, message = %problem.message, "schedule cannot run");
                publish(
                    ctx,
                    guard,
                    EventType::Warning,
                    problem.reason,
                    &problem.message,
                )
                .await;
            }
            return Ok(Action::await_change());
        }
    };
    let turn = Turn {
        shared,
        guard,
        schedule,
        validated: &validated,
        current: &current,
        now: &now,
    };

    // A run in progress: one step.
    if let Some(run) = current
        .last_run
        .as_ref()
        .filter(|r| r.state == RunState::Running)
    {
        return step(turn, run).await;
    }

    // Manual: a new run-now value starts a run (even while suspended).
    let request = schedule
        .annotations()
        .get(RUN_NOW)
        .map(|v| crate::events::truncate(v, 64));
    if request.is_some() && request != current.run_request {
        let mut status = current.clone();
        status.run_request = request;
        let at = plan::chrono_of(&now);
        return start(turn, status, RunTrigger::Manual, at, 0).await;
    }

    if schedule.spec.suspend {
        let mut status = plan::with_conditions(
            current.clone(),
            &plan::conditions_for(None, true, None),
            generation,
            &now,
        );
        status.next_run_time = None;
        write_status(ctx, &name, Some(&current), &status).await?;
        return Ok(Action::await_change());
    }

    let since = current
        .last_schedule_time
        .as_ref()
        .or(schedule.metadata.creation_timestamp.as_ref())
        .map(plan::chrono_of)
        .unwrap_or_else(|| plan::chrono_of(&now));
    let due = plan::due(&validated, since, plan::chrono_of(&now));
    match due {
        Err(problem) => {
            let status =
                plan::with_conditions(current.clone(), &plan::stalled(&problem), generation, &now);
            write_status(ctx, &name, Some(&current), &status).await?;
            publish(
                ctx,
                guard,
                EventType::Warning,
                problem.reason,
                &problem.message,
            )
            .await;
            Ok(Action::await_change())
        }
        Ok(Due::Wait { next }) => {
            let next_time = plan::time_of(next);
            let mut status = plan::with_conditions(
                current.clone(),
                &plan::conditions_for(None, false, Some(&next_time)),
                generation,
                &now,
            );
            status.next_run_time = Some(next_time);
            write_status(ctx, &name, Some(&current), &status).await?;
            let wait = (next - plan::chrono_of(&now)).to_std().unwrap_or_default();
            // Looked at again at the time, and at least hourly (clock steps, lost wakeups).
            Ok(Action::requeue(wait.clamp(
                Duration::from_millis(200),
                Duration::from_secs(3600),
            )))
        }
        Ok(Due::TooLate {
            scheduled,
            missed,
            next,
        }) => {
            let next_time = plan::time_of(next);
            let mut status = plan::with_conditions(
                current.clone(),
                &plan::conditions_for(None, false, Some(&next_time)),
                generation,
                &now,
            );
            status.last_schedule_time = Some(plan::time_of(scheduled));
            status.next_run_time = Some(next_time);
            write_status(ctx, &name, Some(&current), &status).await?;
            ctx.metrics.schedule_run("cron", "TooLate");
            let note = format!(
                "the run due at {scheduled} was missed (the operator was not running) and is past startingDeadlineSeconds; {} earlier times missed too; next run at {next}",
                missed
            );
            tracing::warn!(schedule = %name, %note, "missed run");
            publish(ctx, guard, EventType::Warning, "MissedRun", &note).await;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Ok(Due::Run {
            scheduled, missed, ..
        }) => {
            let mut status = current.clone();
            status.last_schedule_time = Some(plan::time_of(scheduled));
            start(turn, status, RunTrigger::Cron, scheduled, missed).await
        }
    }
}

/// What one reconcile of a valid Schedule works with.
#[derive(Clone, Copy)]
struct Turn<'a> {
    shared: &'a Shared,
    guard: &'a DeserializeGuard<Schedule>,
    schedule: &'a Schedule,
    validated: &'a Validated,
    /// The status as read.
    current: &'a ScheduleStatus,
    now: &'a Time,
}

/// Starts a run: its summary in the status, its record in the catalog, an Event. The next
/// step asks the first Scans.
async fn start(
    turn: Turn<'_>,
    mut status: ScheduleStatus,
    trigger: RunTrigger,
    at: chrono::DateTime<chrono::Utc>,
    missed: u32,
) -> Result<Action, Error> {
    let Turn {
        shared,
        guard,
        schedule,
        validated,
        current,
        now,
    } = turn;
    let ctx = &shared.ctx;
    let name = schedule.name_any();
    let request = RunRequest {
        mode: validated.mode,
        run_id: plan::run_id(&name, trigger, at),
    };
    let message = (missed > 0).then(|| {
        format!("{missed} earlier cron times passed while the operator was not running; they ran once, as this run")
    });
    let mut summary = plan::summary(&request, trigger, now, &Progress::default(), None);
    summary.message = message;
    status.last_run_time = Some(now.clone());
    status.history = plan::with_history(&status.history, &summary);
    status.last_run = Some(summary.clone());
    status.next_run_time = None;
    let status = plan::with_conditions(
        status,
        &plan::conditions_for(Some(&summary), schedule.spec.suspend, None),
        schedule.metadata.generation,
        now,
    );
    record(ctx, &name, &summary, validated.mode, &[]).await?;
    write_status(ctx, &name, Some(current), &status).await?;
    let note = format!(
        "run {} started ({}, {})",
        request.run_id,
        trigger_name(trigger),
        mode_name(validated.mode)
    );
    tracing::info!(schedule = %name, run = %request.run_id, trigger = trigger_name(trigger), missed, "schedule run started");
    publish(ctx, guard, EventType::Normal, "RunStarted", &note).await;
    Ok(Action::requeue(Duration::from_millis(50)))
}

/// One step of the run in progress: read how far it got, ask the next Scans (within the
/// limits), and finish it when nothing is left.
async fn step(turn: Turn<'_>, run: &RunSummary) -> Result<Action, Error> {
    let Turn {
        shared,
        schedule,
        validated,
        current,
        now,
        ..
    } = turn;
    let ctx = &shared.ctx;
    let name = schedule.name_any();
    let generation = schedule.metadata.generation;
    let request = RunRequest {
        mode: validated.mode,
        run_id: run.run_id.clone(),
    };
    // Edited during the run (the selection or the mode may be other): the run ends here.
    if current.observed_generation.is_some() && current.observed_generation != generation {
        let progress = Progress {
            stats: run.stats,
            ..Progress::default()
        };
        let message = "the Schedule was edited during the run; the next run follows the new spec";
        return finish(
            turn,
            run,
            &request,
            progress,
            RunState::Cancelled,
            Some(message.into()),
        )
        .await;
    }
    // Only `onlyIf.policyChanged` needs the Policies' digests.
    let policies = if validated.only_if.policy_changed {
        policy_digests(ctx).await?
    } else {
        BTreeMap::new()
    };
    // The watch cache's Scans, borrowed (a run over 100,000 Scans copies none of them).
    let cached = shared.scans.state();
    let scans: Vec<&Scan> = cached.iter().filter_map(|g| g.0.as_ref().ok()).collect();
    let clock = {
        let runs = shared.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.get(&run.run_id).copied()
    };
    // The rate limit: `ratePerSecond` asks per second of steps.
    let budget = match clock.and_then(|c| c.asked) {
        Some(asked) if asked.elapsed() < TICK => 0,
        _ => validated.limits.rate_per_second,
    };
    let selecting = Instant::now();
    let mut progress = plan::progress(
        validated,
        &request,
        &run.started_at,
        &scans,
        &policies,
        now,
        budget,
    );
    ctx.metrics.schedule_selection(selecting.elapsed());

    let value = request.value();
    let scans_api =
        |namespace: &str| -> Api<Scan> { Api::namespaced(ctx.client.clone(), namespace) };
    let mut asked = 0u32;
    for (namespace, scan) in &progress.ask {
        let patch = serde_json::json!({"metadata": {"annotations": {SCHEDULE_RUN: value}}});
        match scans_api(namespace)
            .patch(scan, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => asked += 1,
            // Deleted since the cache saw it: nothing to ask.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::Ask {
                    scan: format!("{namespace}/{scan}"),
                    source,
                });
            }
        }
    }
    if asked > 0 {
        ctx.metrics
            .schedule_requests(mode_name(validated.mode), u64::from(asked));
    }
    progress.stats.queued += asked;
    progress.outstanding += asked;
    progress.done = progress.done && progress.ask.is_empty();

    let moved = {
        let mut runs = shared.runs.lock().unwrap_or_else(|e| e.into_inner());
        let entry = runs.entry(run.run_id.clone()).or_insert(RunClock {
            completed: progress.stats.completed,
            moved: Instant::now(),
            asked: None,
        });
        if entry.completed != progress.stats.completed || asked > 0 {
            entry.completed = progress.stats.completed;
            entry.moved = Instant::now();
        }
        if asked > 0 {
            entry.asked = Some(Instant::now());
        }
        entry.moved
    };
    if progress.done {
        return finish(turn, run, &request, progress, RunState::Completed, None).await;
    }
    if moved.elapsed() >= plan::STALL_AFTER {
        let message = format!(
            "{} Scans asked did not answer within {} minutes",
            progress.outstanding,
            plan::STALL_AFTER.as_secs() / 60
        );
        return finish(
            turn,
            run,
            &request,
            progress,
            RunState::Failed,
            Some(message),
        )
        .await;
    }
    let mut summary = plan::summary(&request, run.trigger, &run.started_at, &progress, None);
    summary.message = summary.message.or_else(|| run.message.clone());
    let mut status = current.clone();
    status.history = plan::with_history(&status.history, &summary);
    status.last_run = Some(summary.clone());
    let status = plan::with_conditions(
        status,
        &plan::conditions_for(Some(&summary), schedule.spec.suspend, None),
        generation,
        now,
    );
    write_status(ctx, &name, Some(current), &status).await?;
    Ok(Action::requeue(TICK))
}

/// Ends a run: the summary (and history) in the status, the run with its deltas in the
/// catalog, Events (`RunCompleted`, `RunFailed`, and `NewFindings` when `spec.notify` asks).
async fn finish(
    turn: Turn<'_>,
    run: &RunSummary,
    request: &RunRequest,
    progress: Progress,
    state: RunState,
    message: Option<String>,
) -> Result<Action, Error> {
    let Turn {
        shared,
        guard,
        schedule,
        validated,
        current,
        now,
    } = turn;
    let ctx = &shared.ctx;
    let name = schedule.name_any();
    let summary = plan::summary(
        request,
        run.trigger,
        &run.started_at,
        &progress,
        Some((state, now, message.or_else(|| run.message.clone()))),
    );
    record(ctx, &name, &summary, validated.mode, &progress.changed).await?;
    let mut status = current.clone();
    status.history = plan::with_history(&status.history, &summary);
    status.last_run = Some(summary.clone());
    if state == RunState::Completed {
        status.last_successful_run_time = Some(now.clone());
    }
    let status = plan::with_conditions(
        status,
        &plan::conditions_for(None, schedule.spec.suspend, None),
        schedule.metadata.generation,
        now,
    );
    write_status(ctx, &name, Some(current), &status).await?;
    shared
        .runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&run.run_id);
    let stats = &summary.stats;
    let note = format!(
        "run {} {}: {} Scans selected ({} images), {} asked, {} done, {} with changed findings ({} new critical, {} new high, {} new medium, {} new low){}",
        run.run_id,
        state_name(state),
        stats.candidates,
        stats.deduped,
        stats.queued,
        stats.completed,
        stats.deltas,
        stats.new_criticals,
        stats.new_high,
        stats.new_medium,
        stats.new_low,
        summary
            .message
            .as_ref()
            .map(|m| format!("; {m}"))
            .unwrap_or_default()
    );
    tracing::info!(schedule = %name, run = %run.run_id, state = state_name(state), candidates = stats.candidates, completed = stats.completed, deltas = stats.deltas, "schedule run ended");
    ctx.metrics
        .schedule_run(trigger_name(run.trigger), state_name(state));
    let (type_, reason) = match state {
        RunState::Completed => (EventType::Normal, "RunCompleted"),
        RunState::Cancelled => (EventType::Normal, "RunCancelled"),
        _ => (EventType::Warning, "RunFailed"),
    };
    publish(ctx, guard, type_, reason, &note).await;
    if let Some(notify) = validated.notify.as_ref().filter(|n| n.on_new_findings)
        && plan::notable(notify, &progress.changed)
    {
        let top: Vec<String> = progress
            .changed
            .iter()
            .take(5)
            .map(|c| {
                format!(
                    "{}/{} ({} new: {} critical, {} high{})",
                    c.namespace,
                    c.name,
                    c.delta.new_findings,
                    c.delta.new_criticals,
                    c.delta.new_high,
                    if c.delta.kev_hits.is_empty() {
                        String::new()
                    } else {
                        format!(", KEV {}", c.delta.kev_hits.join(" "))
                    }
                )
            })
            .collect();
        let note = format!(
            "run {}: {} images gained findings: {}",
            run.run_id,
            progress.changed.len(),
            top.join("; ")
        );
        publish(ctx, guard, EventType::Warning, "NewFindings", &note).await;
    }
    Ok(Action::requeue(Duration::from_millis(200)))
}

/// The run as the catalog keeps it (seed 003 §3.1.2): id, schedule, trigger, state, stats,
/// times, error, and the deltas of the images whose findings changed — each with its top
/// findings from the stored `rescan-delta` artifact — sorted critical first.
async fn record(
    ctx: &Context,
    schedule: &str,
    summary: &RunSummary,
    mode: ScheduleMode,
    changed: &[plan::Changed],
) -> Result<(), Error> {
    let mut deltas = Vec::new();
    for c in changed.iter().take(MAX_RUN_DELTAS) {
        let stored = match &c.delta.key {
            Some(key) => match ctx.store.get(key).await {
                Ok(Some(bytes)) => serde_json::from_slice::<serde_json::Value>(&bytes).ok(),
                Ok(None) => None,
                Err(error) => {
                    tracing::warn!(%error, key, "reading a run's delta failed");
                    None
                }
            },
            None => None,
        };
        let top = stored
            .as_ref()
            .and_then(|d| d.get("topFindings").cloned())
            .unwrap_or_else(|| serde_json::json!([]));
        deltas.push(serde_json::json!({
            "imageDigest": c.image_digest,
            "scan": format!("{}/{}", c.namespace, c.name),
            "newFindings": c.delta.new_findings,
            "newCriticals": c.delta.new_criticals,
            "newHigh": c.delta.new_high,
            "newMedium": c.delta.new_medium,
            "newLow": c.delta.new_low,
            "removedFindings": c.delta.removed_findings,
            "kevHits": c.delta.kev_hits,
            "topFindings": top,
            "detectedAt": c.delta.detected_at,
        }));
    }
    let body = serde_json::json!({
        "id": summary.run_id,
        "scheduleId": schedule,
        "mode": mode_name(mode),
        "trigger": trigger_name(summary.trigger),
        "state": state_name(summary.state).to_ascii_lowercase(),
        "stats": summary.stats,
        "startedAt": summary.started_at,
        "finishedAt": summary.finished_at,
        "error": if summary.state == RunState::Completed { None } else { summary.message.clone() },
        "message": summary.message,
        "deltas": deltas,
        "deltasTruncated": changed.len() > MAX_RUN_DELTAS,
    });
    ctx.store
        .scheduler
        .put_run(&SchedulerRunRow {
            run_id: summary.run_id.clone(),
            schedule: schedule.to_string(),
            state: state_name(summary.state).to_string(),
            started_at: summary.started_at.0.to_string(),
            body: body.to_string(),
        })
        .await
        .map_err(Error::Store)
}

/// Policy name → the digest its status names (the Policy controller's).
async fn policy_digests(ctx: &Context) -> Result<BTreeMap<String, String>, Error> {
    let policies: Api<DeserializeGuard<Policy>> = Api::all(ctx.client.clone());
    let list = policies
        .list(&Default::default())
        .await
        .map_err(Error::Policies)?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|g| g.0.ok())
        .filter_map(|p| {
            let digest = p.status.as_ref()?.digest.clone()?;
            Some((p.name_any(), digest))
        })
        .collect())
}

pub fn trigger_name(trigger: RunTrigger) -> &'static str {
    match trigger {
        RunTrigger::Cron => "cron",
        RunTrigger::Manual => "manual",
    }
}

pub fn mode_name(mode: ScheduleMode) -> &'static str {
    match mode {
        ScheduleMode::AnalysisOnly => "analysis-only",
        ScheduleMode::ContentRefresh => "content-refresh",
    }
}

pub fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Running => "Running",
        RunState::Completed => "Completed",
        RunState::Failed => "Failed",
        RunState::Cancelled => "Cancelled",
    }
}

async fn write_status(
    ctx: &Context,
    name: &str,
    current: Option<&ScheduleStatus>,
    status: &ScheduleStatus,
) -> Result<(), Error> {
    if current == Some(status) {
        return Ok(());
    }
    crate::events::apply_status::<Schedule>(&ctx.client, MANAGER, name, status)
        .await
        .map_err(Error::UpdateStatus)
}

async fn publish(
    ctx: &Context,
    guard: &DeserializeGuard<Schedule>,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    crate::events::publish_note(
        &ctx.client,
        &ctx.reporter,
        guard.object_ref(&()),
        type_,
        reason,
        "Run",
        note,
    )
    .await;
}

/// A failed reconcile (the API server or the catalog): retried with a jittered backoff.
pub fn error_policy(
    _guard: Arc<DeserializeGuard<Schedule>>,
    error: &Error,
    _shared: Arc<Shared>,
) -> Action {
    tracing::warn!(%error, "schedule reconcile failed");
    crate::events::retry_after_failure()
}
