//! The Schedule controller's pure middle: validating a spec (cron, time zone, selection), when
//! a run is due (cron in an IANA time zone, missed runs, the starting deadline), which Scans a
//! run covers and how far it got (from the Scans' annotations and statuses alone), and the
//! status to write. No I/O here.
//!
//! Time zones: the cron fields are read in the zone's wall-clock time, with croner's
//! (Open Cron Pattern Specification) rules at DST switches — a fixed-time job whose time does
//! not exist that day (spring forward) runs at the first instant after the gap; a wall-clock
//! time that exists twice (fall back) runs once, at its first occurrence (an hourly schedule
//! does not run the repeated hour again). Runs are found by walking forward from the last
//! scheduled time, so a repeated hour never starts the same run twice.

use crate::conditions::{self, Desired, Status};
use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use stella_crds::scan::v1alpha1::{Scan, ScanDelta};
use stella_crds::schedule::v1alpha1::{
    Limits, OnlyIf, RunRequest, RunState, RunStats, RunSummary, RunTrigger, SCHEDULE_RUN,
    ScheduleMode, ScheduleNotify, ScheduleSpec, ScheduleStatus, SelectionScope,
};
use stella_model::glob;

/// `Reconciling`: a run is in progress.
pub const RECONCILING: &str = "Reconciling";
/// `Stalled`: the spec cannot be scheduled as written.
pub const STALLED: &str = "Stalled";
/// Runs kept in `status.history` (the CRD's bound).
pub const HISTORY: usize = 10;
/// Missed cron times counted after a downtime (beyond this the count says "at least").
pub const MAX_MISSED: u32 = 10_000;
/// A run whose outstanding Scans answer nothing for this long fails.
pub const STALL_AFTER: Duration = Duration::from_secs(30 * 60);

/// A Schedule as a run uses it.
#[derive(Clone, Debug)]
pub struct Validated {
    pub cron: croner::Cron,
    pub time_zone: chrono_tz::Tz,
    pub mode: ScheduleMode,
    pub selector: Selector,
    pub only_if: OnlyIf,
    pub limits: Limits,
    pub starting_deadline: Option<Duration>,
    pub notify: Option<ScheduleNotify>,
}

/// Why a Schedule cannot run as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

fn problem(reason: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        reason,
        message: message.into(),
    }
}

/// Validates a spec: what the API server's schema cannot check (the cron fields, the zone
/// name) and what Kubernetes before 1.25 does not (the CEL rules of the selection).
pub fn validate(spec: &ScheduleSpec) -> Result<Validated, Problem> {
    let cron = parse_cron(&spec.cron)?;
    let zone = spec.time_zone.as_deref().unwrap_or("UTC");
    let time_zone: chrono_tz::Tz = zone.parse().map_err(|_| {
        problem(
            "InvalidTimeZone",
            format!("spec.timeZone {zone:?} is not an IANA time zone (e.g. Europe/Sofia, UTC)"),
        )
    })?;
    let selector = Selector::new(&spec.selection)?;
    let limits = spec.limits.clone();
    if limits.max_jobs == 0 || limits.rate_per_second == 0 || limits.parallelism == 0 {
        return Err(problem(
            "InvalidLimits",
            "spec.limits: maxJobs, ratePerSecond and parallelism are at least 1",
        ));
    }
    Ok(Validated {
        cron,
        time_zone,
        mode: spec.mode,
        selector,
        only_if: spec.only_if.clone().unwrap_or_default(),
        limits,
        starting_deadline: spec
            .starting_deadline_seconds
            .map(|s| Duration::from_secs(u64::from(s))),
        notify: spec.notify.clone(),
    })
}

/// A five-field cron expression or a macro (`@daily`).
pub fn parse_cron(text: &str) -> Result<croner::Cron, Problem> {
    if text.len() > 128 || text.contains(['\n', '\r']) {
        return Err(problem(
            "InvalidCron",
            "spec.cron is one line of at most 128 characters",
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| {
            problem(
                "InvalidCron",
                format!(
                    "spec.cron {text:?}: {e} (five fields: minute hour day-of-month month day-of-week, or @hourly/@daily/@weekly/@monthly/@yearly)"
                ),
            )
        })
}

/// Which Scans a Schedule selects.
#[derive(Clone, Debug)]
pub struct Selector {
    scope: SelectionScope,
    namespaces: Vec<String>,
    repositories: Vec<String>,
    labels: Option<stella_model::selector::LabelSelector>,
    digests: BTreeSet<String>,
}

impl Selector {
    fn new(selection: &stella_crds::schedule::v1alpha1::Selection) -> Result<Selector, Problem> {
        let need = |empty: bool, field: &str| {
            if empty {
                Err(problem(
                    "InvalidSelection",
                    format!("selection scope needs at least one entry in selection.{field}"),
                ))
            } else {
                Ok(())
            }
        };
        match selection.scope {
            SelectionScope::Namespaces => need(selection.namespaces.is_empty(), "namespaces")?,
            SelectionScope::Repositories => {
                need(selection.repositories.is_empty(), "repositories")?
            }
            SelectionScope::Labels => need(selection.label_selector.is_none(), "labelSelector")?,
            SelectionScope::Digests => need(selection.digests.is_empty(), "digests")?,
            SelectionScope::AllImages => {}
        }
        for digest in &selection.digests {
            let hex = digest.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(problem(
                    "InvalidSelection",
                    format!("selection.digests: {digest:?} is not sha256:<64 hex>"),
                ));
            }
        }
        let labels = match (&selection.scope, &selection.label_selector) {
            (SelectionScope::Labels, Some(selector)) => Some(label_selector(selector)?),
            _ => None,
        };
        Ok(Selector {
            scope: selection.scope,
            namespaces: selection.namespaces.clone(),
            repositories: selection.repositories.clone(),
            labels,
            digests: selection.digests.iter().cloned().collect(),
        })
    }

    /// Whether the selection covers `scan`.
    pub fn matches(&self, scan: &Scan) -> bool {
        match self.scope {
            SelectionScope::AllImages => true,
            SelectionScope::Namespaces => {
                let namespace = scan.metadata.namespace.as_deref().unwrap_or_default();
                self.namespaces.iter().any(|g| glob(g, namespace))
            }
            SelectionScope::Repositories => {
                let repository = repository_of(&scan.spec.image);
                self.repositories.iter().any(|g| glob(g, repository))
            }
            SelectionScope::Labels => {
                let empty = BTreeMap::new();
                let labels = scan.metadata.labels.as_ref().unwrap_or(&empty);
                self.labels.as_ref().is_some_and(|m| m.matches(labels))
            }
            SelectionScope::Digests => scan
                .status
                .as_ref()
                .and_then(|s| s.image_digest.as_ref())
                .is_some_and(|d| self.digests.contains(d)),
        }
    }
}

/// The repository of an image reference as written: without its `@digest` and `:tag`.
pub fn repository_of(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => &image[..colon],
        _ => image,
    }
}

/// A label selector, checked: every operator known and the values each operator takes
/// (matching is [`stella_model::selector::LabelSelector`]'s, the webhook's too).
fn label_selector(
    selector: &LabelSelector,
) -> Result<stella_model::selector::LabelSelector, Problem> {
    for e in selector.match_expressions.iter().flatten() {
        let needs_values = match e.operator.as_str() {
            "In" | "NotIn" => true,
            "Exists" | "DoesNotExist" => false,
            other => {
                return Err(problem(
                    "InvalidSelection",
                    format!(
                        "selection.labelSelector: operator {other:?} of key {:?} is not In, NotIn, Exists or DoesNotExist",
                        e.key
                    ),
                ));
            }
        };
        let has_values = e.values.as_ref().is_some_and(|v| !v.is_empty());
        if needs_values != has_values {
            return Err(problem(
                "InvalidSelection",
                format!(
                    "selection.labelSelector: key {:?}: {} takes {}",
                    e.key,
                    e.operator,
                    if needs_values {
                        "at least one value"
                    } else {
                        "no values"
                    }
                ),
            ));
        }
    }
    Ok(stella_model::selector::LabelSelector {
        match_labels: selector.match_labels.clone(),
        match_expressions: selector.match_expressions.as_ref().map(|list| {
            list.iter()
                .map(|e| stella_model::selector::LabelSelectorRequirement {
                    key: e.key.clone(),
                    operator: e.operator.clone(),
                    values: e.values.clone(),
                })
                .collect()
        }),
    })
}

/// Whether a run is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing before `next`.
    Wait { next: DateTime<Utc> },
    /// Start the run of cron time `scheduled`; `missed` earlier times passed without a run
    /// (the operator was down) and are not run separately.
    Run {
        scheduled: DateTime<Utc>,
        missed: u32,
        next: DateTime<Utc>,
    },
    /// The latest cron time passed longer ago than `startingDeadlineSeconds`: not run.
    TooLate {
        scheduled: DateTime<Utc>,
        missed: u32,
        next: DateTime<Utc>,
    },
}

/// Which cron run is due at `now`, counting from `since` (the last scheduled time, or when
/// the Schedule was created).
pub fn due(v: &Validated, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Due, Problem> {
    let zoned = |t: DateTime<Utc>| t.with_timezone(&v.time_zone);
    let never = |e: croner::errors::CronError| {
        problem(
            "InvalidCron",
            format!("spec.cron never matches a time: {e}"),
        )
    };
    let next = v
        .cron
        .find_next_occurrence(&zoned(now), false)
        .map_err(never)?
        .with_timezone(&Utc);
    // Walk forward from `since`: croner's forward rules decide each DST switch once.
    let mut latest = None;
    let mut count = 0u32;
    for at in v.cron.iter_after(zoned(since)) {
        let at = at.with_timezone(&Utc);
        if at > now {
            break;
        }
        latest = Some(at);
        count += 1;
        if count >= MAX_MISSED {
            // Far behind: the latest time is the last one at or before now.
            latest = v
                .cron
                .find_previous_occurrence(&zoned(now), true)
                .ok()
                .map(|t| t.with_timezone(&Utc))
                .filter(|t| *t > since);
            break;
        }
    }
    let Some(scheduled) = latest else {
        return Ok(Due::Wait { next });
    };
    let missed = count.saturating_sub(1);
    let late = (now - scheduled).to_std().unwrap_or_default();
    Ok(match v.starting_deadline {
        Some(deadline) if late > deadline => Due::TooLate {
            scheduled,
            missed,
            next,
        },
        _ => Due::Run {
            scheduled,
            missed,
            next,
        },
    })
}

/// The run id of a run for `schedule` at `at` (cron: the scheduled time; manual: now),
/// within the annotation's bound and made of what [`RunRequest::parse`] accepts.
pub fn run_id(schedule: &str, trigger: RunTrigger, at: DateTime<Utc>) -> String {
    let name: String = schedule.chars().take(96).collect();
    let kind = match trigger {
        RunTrigger::Manual => "manual-",
        RunTrigger::Cron => "",
    };
    format!("{name}-{kind}{}", at.timestamp())
}

/// How far a run got, read off the Scans: each one it asked carries its request annotation,
/// and each one that answered records the request in its status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub stats: RunStats,
    /// Scans to ask now, `(namespace, name)`, in order.
    pub ask: Vec<(String, String)>,
    /// Asked and not answered yet.
    pub outstanding: u32,
    /// Selected and eligible but beyond `maxJobs`: left for the next run.
    pub left_out: u32,
    /// Nothing left to ask (or `maxJobs` reached) and nothing outstanding.
    pub done: bool,
    /// Answered Scans whose findings this run changed, with their delta, sorted by the most
    /// severe news first (new criticals, high, …), then namespace/name.
    pub changed: Vec<Changed>,
}

/// One Scan whose re-evaluation in this run changed its findings.
#[derive(Clone, Debug, PartialEq)]
pub struct Changed {
    pub namespace: String,
    pub name: String,
    pub image_digest: String,
    pub delta: ScanDelta,
}

/// What the Scans say about run `request` started at `started_at`; `budget` is how many more
/// Scans may be asked in this step (the rate limit's share), before `parallelism` and
/// `maxJobs` bound it further. `policies` maps Policy names to their current digests (for
/// `onlyIf.policyChanged`).
pub fn progress(
    v: &Validated,
    request: &RunRequest,
    started_at: &Time,
    scans: &[&Scan],
    policies: &BTreeMap<String, String>,
    now: &Time,
    budget: u32,
) -> Progress {
    let value = request.value();
    let mut ordered: Vec<&Scan> = scans
        .iter()
        .copied()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect();
    ordered.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    let mut progress = Progress::default();
    let mut digests = BTreeSet::new();
    let mut eligible = Vec::new();
    for scan in ordered {
        let key = || {
            (
                scan.metadata.namespace.clone().unwrap_or_default(),
                scan.metadata.name.clone().unwrap_or_default(),
            )
        };
        let status = scan.status.as_ref();
        let asked = scan
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SCHEDULE_RUN))
            == Some(&value);
        let selected = v.selector.matches(scan) && only_if(&v.only_if, scan, policies, now);
        if !(asked || selected) {
            continue;
        }
        digests.insert(
            status
                .and_then(|s| s.image_digest.clone())
                .unwrap_or_else(|| format!("{}/{}", key().0, key().1)),
        );
        progress.stats.candidates += 1;
        if !asked {
            eligible.push(key());
            continue;
        }
        progress.stats.queued += 1;
        if status.and_then(|s| s.schedule_request.as_deref()) != Some(value.as_str()) {
            progress.outstanding += 1;
            continue;
        }
        progress.stats.completed += 1;
        let delta = status.and_then(|s| s.last_delta.as_ref()).filter(|d| {
            (d.new_findings > 0 || d.removed_findings > 0) && since(&d.detected_at, started_at)
        });
        if let (Some(delta), Some(digest)) = (delta, status.and_then(|s| s.image_digest.clone())) {
            let (namespace, name) = key();
            progress.changed.push(Changed {
                namespace,
                name,
                image_digest: digest,
                delta: delta.clone(),
            });
        }
    }
    progress.stats.deduped = count(digests.len());
    progress.stats.deltas = count(progress.changed.len());
    for changed in &progress.changed {
        let d = &changed.delta;
        let add =
            |n: &mut u32, by: u64| *n = n.saturating_add(u32::try_from(by).unwrap_or(u32::MAX));
        add(&mut progress.stats.new_criticals, d.new_criticals);
        add(&mut progress.stats.new_high, d.new_high);
        add(&mut progress.stats.new_medium, d.new_medium);
        add(&mut progress.stats.new_low, d.new_low);
    }
    progress.changed.sort_by(|a, b| {
        let rank = |d: &ScanDelta| {
            std::cmp::Reverse((d.new_criticals, d.new_high, d.new_medium, d.new_low))
        };
        (rank(&a.delta), &a.namespace, &a.name).cmp(&(rank(&b.delta), &b.namespace, &b.name))
    });
    let room = v.limits.max_jobs.saturating_sub(progress.stats.queued);
    let slots = v.limits.parallelism.saturating_sub(progress.outstanding);
    let take = budget.min(room).min(slots) as usize;
    progress.left_out = count(eligible.len().saturating_sub(room as usize));
    progress.done = progress.outstanding == 0 && (eligible.is_empty() || room == 0);
    progress.ask = eligible.into_iter().take(take).collect();
    progress
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Whether an RFC 3339 time is at or after `started_at` (an unreadable one is not).
fn since(rfc3339: &str, started_at: &Time) -> bool {
    rfc3339
        .parse::<k8s_openapi::jiff::Timestamp>()
        .is_ok_and(|t| t >= started_at.0)
}

/// `onlyIf`: the image's last report is old enough, and (when asked) its policy changed.
pub fn only_if(
    only_if: &OnlyIf,
    scan: &Scan,
    policies: &BTreeMap<String, String>,
    now: &Time,
) -> bool {
    let status = scan.status.as_ref();
    if let Some(days) = only_if.last_report_older_than_days {
        let fresh = status
            .and_then(|s| s.completion_time.as_ref())
            .is_some_and(|t| now.0.duration_since(t.0).as_secs() < i64::from(days) * 86_400);
        if fresh {
            return false;
        }
    }
    if only_if.policy_changed {
        let current = scan
            .spec
            .policy_ref
            .as_ref()
            .and_then(|name| policies.get(name));
        let pinned = status
            .and_then(|s| s.inputs.as_ref())
            .and_then(|i| i.policy_digest.as_ref());
        if current.is_none() || current == pinned {
            return false;
        }
    }
    true
}

/// The summary of run `request` as `progress` leaves it.
pub fn summary(
    request: &RunRequest,
    trigger: RunTrigger,
    started_at: &Time,
    progress: &Progress,
    finished: Option<(RunState, &Time, Option<String>)>,
) -> RunSummary {
    let (state, finished_at, message) = match finished {
        Some((state, at, message)) => (state, Some(at.clone()), message),
        None => (RunState::Running, None, None),
    };
    let message = message.or_else(|| {
        (progress.left_out > 0).then(|| {
            format!(
                "{} selected Scans left for the next run (limits.maxJobs)",
                progress.left_out
            )
        })
    });
    RunSummary {
        run_id: request.run_id.clone(),
        trigger,
        state,
        started_at: started_at.clone(),
        finished_at,
        stats: progress.stats,
        message: message.map(|m| crate::events::truncate(&m, 1024)),
    }
}

/// `status.history` with `run` in front (the same run replaced), at most [`HISTORY`].
pub fn with_history(history: &[RunSummary], run: &RunSummary) -> Vec<RunSummary> {
    std::iter::once(run.clone())
        .chain(history.iter().filter(|r| r.run_id != run.run_id).cloned())
        .take(HISTORY)
        .collect()
}

/// The conditions of a valid Schedule: `Reconciling` while a run is in progress.
pub fn conditions_for(
    running: Option<&RunSummary>,
    suspended: bool,
    next: Option<&Time>,
) -> Vec<Desired> {
    let (ready_reason, ready_message) = match (running, suspended) {
        (Some(run), _) => (
            "Running",
            format!(
                "run {} in progress: {} of {} Scans done",
                run.run_id, run.stats.completed, run.stats.queued
            ),
        ),
        (None, true) => ("Suspended", "spec.suspend: no new runs".to_string()),
        (None, false) => (
            "Scheduled",
            match next {
                Some(next) => format!("next run at {}", next.0),
                None => "no next run".to_string(),
            },
        ),
    };
    vec![
        conditions::ready(ready_reason, ready_message.clone()),
        conditions::condition(
            RECONCILING,
            if running.is_some() {
                Status::True
            } else {
                Status::False
            },
            ready_reason,
            ready_message,
        ),
        conditions::condition(STALLED, Status::False, ready_reason, "the spec is valid"),
    ]
}

/// The conditions of a Schedule that cannot run: `Ready=False`, `Stalled=True`.
pub fn stalled(problem: &Problem) -> Vec<Desired> {
    vec![
        conditions::not_ready(problem.reason, problem.message.clone()),
        conditions::condition(
            RECONCILING,
            Status::False,
            problem.reason,
            problem.message.clone(),
        ),
        conditions::condition(
            STALLED,
            Status::True,
            problem.reason,
            problem.message.clone(),
        ),
    ]
}

/// Applies `wanted` to `current`'s conditions and sets `observedGeneration`.
pub fn with_conditions(
    mut status: ScheduleStatus,
    wanted: &[Desired],
    generation: Option<i64>,
    now: &Time,
) -> ScheduleStatus {
    status.conditions = conditions::merge(&status.conditions, wanted, generation, now);
    status.observed_generation = generation;
    status
}

/// Whether `changed` holds news `notify` asks to be told about: a new finding at or above
/// `minSeverity` (low by default), or a new KEV hit with `includeKev`.
pub fn notable(notify: &ScheduleNotify, changed: &[Changed]) -> bool {
    use stella_crds::common::Severity;
    let min = notify.min_severity.unwrap_or(Severity::Low);
    changed.iter().any(|c| {
        let d = &c.delta;
        let by_severity = match min {
            Severity::Critical => d.new_criticals,
            Severity::High => d.new_criticals + d.new_high,
            Severity::Medium => d.new_criticals + d.new_high + d.new_medium,
            _ => d.new_criticals + d.new_high + d.new_medium + d.new_low,
        };
        by_severity > 0 || (notify.include_kev && !d.kev_hits.is_empty())
    })
}

/// A chrono instant as the API's time.
pub fn time_of(at: DateTime<Utc>) -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::new(
            at.timestamp(),
            i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
        )
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// The API's time as a chrono instant.
pub fn chrono_of(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(
        t.0.as_second(),
        u32::try_from(t.0.subsec_nanosecond()).unwrap_or(0),
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::sync::Arc;
    use stella_model::glob;

    fn spec(value: serde_json::Value) -> ScheduleSpec {
        serde_json::from_value(value).unwrap()
    }

    fn validated(cron: &str, zone: &str) -> Validated {
        validate(&spec(serde_json::json!({
            "cron": cron, "timeZone": zone, "mode": "analysis-only",
            "selection": {"scope": "all-images"},
        })))
        .unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// The runs the controller starts between `from` and `until`, stepping as it does: wait
    /// for the next time, run, remember the scheduled time.
    fn runs(v: &Validated, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let (mut since, mut now, mut out) = (from, from, Vec::new());
        while now <= until {
            match due(v, since, now).unwrap() {
                Due::Wait { next } => now = next,
                Due::Run {
                    scheduled, missed, ..
                } => {
                    assert_eq!(missed, 0, "the controller never falls behind here");
                    out.push(scheduled);
                    since = scheduled;
                }
                Due::TooLate { .. } => unreachable!("no deadline"),
            }
        }
        out.into_iter().filter(|t| *t <= until).collect()
    }

    #[test]
    fn a_daily_run_in_europe_sofia_happens_once_a_day_across_both_dst_switches() {
        // Spring forward: 2026-03-29 03:00 EET → 04:00 EEST (03:30 does not exist).
        let v = validated("30 3 * * *", "Europe/Sofia");
        let spring = runs(&v, utc(2026, 3, 27, 12, 0), utc(2026, 3, 31, 0, 0));
        assert_eq!(
            spring,
            vec![
                utc(2026, 3, 28, 1, 30), // 03:30 EET
                utc(2026, 3, 29, 1, 0),  // the gap: the first instant after it, 04:00 EEST
                utc(2026, 3, 30, 0, 30), // 03:30 EEST
            ],
        );
        // Fall back: 2026-10-25 04:00 EEST → 03:00 EET (03:30 happens twice): once, the first.
        let fall = runs(&v, utc(2026, 10, 23, 12, 0), utc(2026, 10, 27, 0, 0));
        assert_eq!(
            fall,
            vec![
                utc(2026, 10, 24, 0, 30), // 03:30 EEST
                utc(2026, 10, 25, 0, 30), // the first 03:30 (EEST), not the second (01:30Z)
                utc(2026, 10, 26, 1, 30), // 03:30 EET
            ],
        );
        // The same cron in UTC ignores Sofia's clocks.
        let plain = runs(
            &validated("30 3 * * *", "UTC"),
            utc(2026, 3, 28, 12, 0),
            utc(2026, 3, 30, 12, 0),
        );
        assert_eq!(
            plain,
            vec![utc(2026, 3, 29, 3, 30), utc(2026, 3, 30, 3, 30)]
        );
    }

    #[test]
    fn an_hourly_run_in_europe_sofia_runs_once_per_wall_clock_hour() {
        let v = validated("0 * * * *", "Europe/Sofia");
        // Spring: 03:00 local does not exist; every run is one real hour after the last.
        let spring = runs(&v, utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 4, 0));
        assert_eq!(
            spring,
            (23..=28)
                .map(|h| utc(2026, 3, 28, 0, 0) + chrono::Duration::hours(h))
                .collect::<Vec<_>>()
        );
        // Fall: the repeated 03:00 (EET, 01:00Z) does not run again.
        let fall = runs(&v, utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 4, 0));
        assert_eq!(
            fall,
            vec![
                utc(2026, 10, 24, 23, 0), // 02:00 EEST
                utc(2026, 10, 25, 0, 0),  // 03:00 EEST
                utc(2026, 10, 25, 2, 0),  // 04:00 EET
                utc(2026, 10, 25, 3, 0),
                utc(2026, 10, 25, 4, 0),
            ]
        );
    }

    #[test]
    fn missed_runs_start_once_and_the_starting_deadline_skips_a_late_one() {
        let mut v = validated("0 2 * * *", "UTC");
        // Down from Monday to Thursday 10:00: Tuesday, Wednesday and Thursday 02:00 passed.
        let since = utc(2026, 11, 30, 2, 0);
        let now = utc(2026, 12, 3, 10, 0);
        assert_eq!(
            due(&v, since, now).unwrap(),
            Due::Run {
                scheduled: utc(2026, 12, 3, 2, 0),
                missed: 2,
                next: utc(2026, 12, 4, 2, 0)
            }
        );
        v.starting_deadline = Some(Duration::from_secs(3600));
        assert!(matches!(
            due(&v, since, now).unwrap(),
            Due::TooLate { missed: 2, .. }
        ));
        v.starting_deadline = Some(Duration::from_secs(9 * 3600));
        assert!(matches!(due(&v, since, now).unwrap(), Due::Run { .. }));
        // A minutely cron down for a month: counted up to the cap, the latest time found.
        let minutely = validated("* * * * *", "UTC");
        match due(&minutely, utc(2026, 11, 1, 0, 0), utc(2026, 12, 1, 0, 0)).unwrap() {
            Due::Run {
                scheduled, missed, ..
            } => {
                assert_eq!(scheduled, utc(2026, 12, 1, 0, 0));
                assert_eq!(missed, MAX_MISSED - 1);
            }
            other => panic!("{other:?}"),
        }
        // Created after today's time: nothing is due until tomorrow.
        assert_eq!(
            due(&v, utc(2026, 12, 3, 3, 0), utc(2026, 12, 3, 10, 0)).unwrap(),
            Due::Wait {
                next: utc(2026, 12, 4, 2, 0)
            }
        );
    }

    #[test]
    fn invalid_cron_zone_selection_and_limits_are_stalled_with_the_reason() {
        let reason = |value: serde_json::Value| validate(&spec(value)).unwrap_err().reason;
        let base = |cron: &str| serde_json::json!({"cron": cron, "mode": "analysis-only", "selection": {"scope": "all-images"}});
        for cron in [
            "61 * * * *",
            "* * * *",
            "0 0 * * * * *",
            "@every 5m",
            "* * * * mon-",
            "0 0 32 * *",
            "",
        ] {
            assert_eq!(reason(base(cron)), "InvalidCron", "{cron:?}");
        }
        assert_eq!(reason(base("0 2 * * *\n0 3 * * *")), "InvalidCron");
        assert_eq!(reason(base(&"1,".repeat(100))), "InvalidCron");
        let mut zone = base("0 2 * * *");
        zone["timeZone"] = "Mars/Olympus_Mons".into();
        assert_eq!(reason(zone), "InvalidTimeZone");
        let mut empty = base("0 2 * * *");
        empty["selection"] = serde_json::json!({"scope": "namespaces"});
        assert_eq!(reason(empty), "InvalidSelection");
        let mut digests = base("0 2 * * *");
        digests["selection"] =
            serde_json::json!({"scope": "digests", "digests": ["sha256:../../etc"]});
        assert_eq!(reason(digests), "InvalidSelection");
        let mut labels = base("0 2 * * *");
        labels["selection"] = serde_json::json!({"scope": "labels", "labelSelector": {"matchExpressions": [{"key": "env", "operator": "Near"}]}});
        assert_eq!(reason(labels), "InvalidSelection");
        let mut limits = base("0 2 * * *");
        limits["limits"] = serde_json::json!({"maxJobs": 0});
        assert_eq!(reason(limits), "InvalidLimits");
        // Macros, names and steps are cron.
        for cron in [
            "@daily",
            "@hourly",
            "0 2 * * MON-FRI",
            "*/15 1-5 * JAN,JUL *",
        ] {
            assert!(validate(&spec(base(cron))).is_ok(), "{cron:?}");
        }
        // February 30th parses but never comes: the first look at the time says so.
        let never = validate(&spec(base("0 0 30 2 *"))).unwrap();
        assert_eq!(
            due(&never, utc(2026, 1, 1, 0, 0), utc(2026, 6, 1, 0, 0))
                .unwrap_err()
                .reason,
            "InvalidCron"
        );
    }

    fn scan(namespace: &str, name: &str, image: &str) -> Scan {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": name, "namespace": namespace, "labels": {"env": if namespace.starts_with("prod") {"prod"} else {"dev"}}},
            "spec": {"image": image},
            "status": {"phase": "Completed", "imageDigest": format!("sha256:{:064x}", name.len() as u64 + namespace.len() as u64 * 100)},
        }))
        .unwrap()
    }

    #[test]
    fn selection_by_namespace_repository_labels_and_digest() {
        let select = |selection: serde_json::Value| {
            let v = validate(&spec(serde_json::json!({"cron": "@daily", "mode": "analysis-only", "selection": selection}))).unwrap();
            let scans = [
                scan("prod-eu", "web", "registry.example/shop/web:1.0"),
                scan("prod-us", "api", "registry.example:5000/shop/api@sha256:00"),
                scan("dev", "web", "registry.example/team/web"),
            ];
            scans
                .iter()
                .filter(|s| v.selector.matches(s))
                .map(|s| {
                    format!(
                        "{}/{}",
                        s.metadata.namespace.as_deref().unwrap(),
                        s.metadata.name.as_deref().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(select(serde_json::json!({"scope": "all-images"})).len(), 3);
        assert_eq!(
            select(serde_json::json!({"scope": "namespaces", "namespaces": ["prod-*"]})),
            ["prod-eu/web", "prod-us/api"]
        );
        assert_eq!(
            select(
                serde_json::json!({"scope": "repositories", "repositories": ["registry.example*/shop/*"]})
            ),
            ["prod-eu/web", "prod-us/api"]
        );
        assert_eq!(
            select(serde_json::json!({"scope": "repositories", "repositories": ["*/team/web"]})),
            ["dev/web"]
        );
        assert_eq!(
            select(
                serde_json::json!({"scope": "labels", "labelSelector": {"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}})
            ),
            ["prod-eu/web", "prod-us/api"]
        );
        assert_eq!(
            select(serde_json::json!({"scope": "labels", "labelSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}})).len(),
            3
        );
        let digest = format!("sha256:{:064x}", 3u64 + 300);
        assert_eq!(
            select(serde_json::json!({"scope": "digests", "digests": [digest]})),
            ["dev/web"]
        );
        assert_eq!(
            repository_of("localhost:5000/a/b:1@sha256:ab"),
            "localhost:5000/a/b"
        );
        assert_eq!(repository_of("localhost:5000/a/b"), "localhost:5000/a/b");
        assert!(glob("a*b?d", "aXYZbcd") && !glob("a*b?d", "abd") && glob("*", ""));
        // A hostile pattern against a long name ends (one backtrack point).
        assert!(!glob(&format!("{}b", "*a".repeat(60)), &"a".repeat(20_000)));
    }

    fn refs(scans: &[Arc<Scan>]) -> Vec<&Scan> {
        scans.iter().map(|s| &**s).collect()
    }

    /// `n` Completed Scans of `ns`, named `s0000`….
    fn fleet(n: usize) -> Vec<Arc<Scan>> {
        (0..n)
            .map(|i| Arc::new(scan("prod", &format!("s{i:06}"), "registry.example/app:1")))
            .collect()
    }

    fn ask_and_answer(
        scans: &mut [Arc<Scan>],
        progress: &Progress,
        value: &str,
        delta: Option<ScanDelta>,
    ) {
        for s in scans.iter_mut() {
            let key = (
                s.metadata.namespace.clone().unwrap(),
                s.metadata.name.clone().unwrap(),
            );
            let scan = Arc::make_mut(s);
            if progress.ask.contains(&key) {
                scan.metadata.annotations =
                    Some([(SCHEDULE_RUN.to_string(), value.to_string())].into());
            } else if scan
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SCHEDULE_RUN))
                .map(String::as_str)
                == Some(value)
            {
                let status = scan.status.get_or_insert_with(Default::default);
                status.schedule_request = Some(value.to_string());
                status.last_delta = delta.clone();
            }
        }
    }

    #[test]
    fn a_run_asks_within_its_limits_and_ends_when_every_asked_scan_answered() {
        let mut v = validated("@daily", "UTC");
        v.limits = Limits {
            max_jobs: 5,
            rate_per_second: 2,
            parallelism: 3,
        };
        let request = RunRequest {
            mode: ScheduleMode::AnalysisOnly,
            run_id: "nightly-1".into(),
        };
        let started = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap());
        let delta = ScanDelta {
            new_findings: 2,
            new_criticals: 1,
            new_high: 1,
            new_medium: 0,
            new_low: 0,
            removed_findings: 0,
            kev_hits: vec!["CVE-2099-1".into()],
            detected_at: "1970-01-01T00:25:00Z".into(),
            key: None,
        };
        let mut scans = fleet(8);
        let policies = BTreeMap::new();
        let mut steps = Vec::new();
        loop {
            let p = progress(
                &v,
                &request,
                &started,
                &refs(&scans),
                &policies,
                &now,
                v.limits.rate_per_second,
            );
            assert!(
                p.outstanding + p.ask.len() as u32 <= v.limits.parallelism,
                "parallelism"
            );
            assert!(p.ask.len() as u32 <= v.limits.rate_per_second, "rate");
            assert!(
                p.stats.queued + p.ask.len() as u32 <= v.limits.max_jobs,
                "maxJobs"
            );
            steps.push((p.ask.len(), p.stats.completed, p.outstanding));
            if p.done {
                assert_eq!(p.stats.candidates, 8);
                assert_eq!(p.stats.queued, 5);
                assert_eq!(p.stats.completed, 5);
                assert_eq!(p.left_out, 3, "beyond maxJobs: left for the next run");
                assert_eq!(p.stats.deltas, 5);
                assert_eq!((p.stats.new_criticals, p.stats.new_high), (5, 5));
                assert_eq!(p.changed.len(), 5);
                assert_eq!(
                    p.changed[0].name, "s000000",
                    "sorted: most severe, then by name"
                );
                let s = summary(
                    &request,
                    RunTrigger::Cron,
                    &started,
                    &p,
                    Some((RunState::Completed, &now, None)),
                );
                assert!(
                    s.message
                        .unwrap()
                        .contains("3 selected Scans left for the next run")
                );
                assert!(notable(
                    &ScheduleNotify {
                        on_new_findings: true,
                        min_severity: Some(stella_crds::common::Severity::Critical),
                        include_kev: false
                    },
                    &p.changed
                ));
                break;
            }
            ask_and_answer(&mut scans, &p, &request.value(), Some(delta.clone()));
            assert!(steps.len() < 20, "{steps:?}");
        }
        assert_eq!(steps[0], (2, 0, 0), "the first step asks at the rate");
        // A delta from before the run started is not this run's.
        let mut old = delta.clone();
        old.detected_at = "1970-01-01T00:01:00Z".into();
        let mut again = fleet(1);
        let p = progress(&v, &request, &started, &refs(&again), &policies, &now, 2);
        ask_and_answer(&mut again, &p, &request.value(), Some(old));
        let p = progress(&v, &request, &started, &refs(&again), &policies, &now, 2);
        ask_and_answer(&mut again, &p, &request.value(), None);
        let p = progress(&v, &request, &started, &refs(&again), &policies, &now, 2);
        assert!(p.done);
        assert_eq!(p.stats.deltas, 0);
    }

    #[test]
    fn only_if_old_reports_or_a_changed_policy() {
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(30 * 86_400).unwrap());
        let mut s = scan("prod", "web", "r/app:1");
        s.spec.policy_ref = Some("baseline".into());
        let status = s.status.get_or_insert_with(Default::default);
        status.completion_time = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(25 * 86_400).unwrap(),
        ));
        status.inputs = Some(stella_crds::scan::v1alpha1::ScanInputs {
            policy_digest: Some("sha256:old".into()),
            ..Default::default()
        });
        let older = |days| OnlyIf {
            last_report_older_than_days: Some(days),
            policy_changed: false,
        };
        let policies = BTreeMap::from([("baseline".to_string(), "sha256:new".to_string())]);
        assert!(only_if(&older(5), &s, &policies, &now));
        assert!(!only_if(&older(6), &s, &policies, &now));
        let changed = OnlyIf {
            last_report_older_than_days: None,
            policy_changed: true,
        };
        assert!(only_if(&changed, &s, &policies, &now));
        let same = BTreeMap::from([("baseline".to_string(), "sha256:old".to_string())]);
        assert!(!only_if(&changed, &s, &same, &now));
        assert!(
            !only_if(&changed, &s, &BTreeMap::new(), &now),
            "a Policy without a digest yet"
        );
    }

    #[test]
    fn a_schedule_selecting_a_hundred_thousand_scans_covers_max_jobs_and_says_what_it_left() {
        let v = validated("@daily", "UTC");
        let scans = fleet(100_000);
        let request = RunRequest {
            mode: ScheduleMode::ContentRefresh,
            run_id: "big-1".into(),
        };
        let t = Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap());
        let p = progress(
            &v,
            &request,
            &t,
            &refs(&scans),
            &BTreeMap::new(),
            &t,
            v.limits.rate_per_second,
        );
        assert_eq!(p.stats.candidates, 100_000);
        assert_eq!(p.left_out, 100_000 - v.limits.max_jobs);
        assert_eq!(
            p.ask.len() as u32,
            v.limits.rate_per_second.min(v.limits.parallelism)
        );
        assert!(!p.done);
        let s = summary(&request, RunTrigger::Manual, &t, &p, None);
        assert_eq!(s.state, RunState::Running);
        assert!(s.message.unwrap().starts_with("95000 selected Scans left"));
    }

    #[test]
    fn run_ids_are_what_a_scans_request_annotation_accepts() {
        let long = "a".repeat(253);
        for (name, trigger) in [
            ("nightly", RunTrigger::Cron),
            (long.as_str(), RunTrigger::Manual),
            ("a.b-c", RunTrigger::Cron),
        ] {
            let id = run_id(name, trigger, utc(2026, 12, 2, 2, 0));
            let request = RunRequest {
                mode: ScheduleMode::AnalysisOnly,
                run_id: id.clone(),
            };
            assert_eq!(RunRequest::parse(&request.value()), Some(request), "{id}");
        }
        assert_eq!(
            run_id("nightly", RunTrigger::Cron, utc(2026, 12, 2, 2, 0)),
            "nightly-1796176800"
        );
        assert_eq!(RunRequest::parse("analysis-only/"), None);
        assert_eq!(RunRequest::parse("rescan/x"), None);
        assert_eq!(RunRequest::parse("analysis-only/a b"), None);
        let history: Vec<RunSummary> = (0..12)
            .map(|i| {
                summary(
                    &RunRequest {
                        mode: ScheduleMode::AnalysisOnly,
                        run_id: format!("r-{i}"),
                    },
                    RunTrigger::Cron,
                    &time_of(utc(2026, 1, 1, 0, 0)),
                    &Progress::default(),
                    None,
                )
            })
            .collect();
        let mut kept = Vec::new();
        for run in &history {
            kept = with_history(&kept, run);
        }
        assert_eq!(kept.len(), HISTORY);
        assert_eq!(kept[0].run_id, "r-11", "newest first");
        assert_eq!(
            with_history(&kept, &kept[3].clone()).len(),
            HISTORY,
            "the same run replaced"
        );
    }
}
