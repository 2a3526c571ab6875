//! The events a recorded evaluation reports: `scanner.report.ready` for every result with a
//! report, and `scheduler.rescan.delta` when a re-evaluation changed the findings or the
//! verdict. They are built here, from what the evaluation already holds, and committed with
//! the result row in one transaction ([`crate::record_result`]).

use crate::Evaluation;
use crate::delta::Delta;
use stella_notify::event::{self, Data, Event, Finding, Payload, Scope};
use stella_store::ResultRow;

/// Who reports, and where: the emitter's source and the Kubernetes scope of the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventContext {
    /// `/stella-ops/operator`, `/stella-ops/worker`, …
    pub source: String,
    /// The namespace of the Scan (`""`: cluster-wide).
    pub namespace: String,
    /// `Scan/<name>`.
    pub object: String,
    /// Workloads running the image, sorted.
    pub workloads: Vec<String>,
    /// A link to the image's report in the REST API, when the emitter knows its address.
    pub link: String,
}

impl EventContext {
    /// One context per namespace the image reports to: per namespace among `workloads`
    /// (`<namespace>/<Kind>/<name>`, as discovered Scans list them), each naming its own
    /// workloads (`<Kind>/<name>`), so a team's rules see their namespace's workloads; or
    /// the Scan's own namespace when no workload is listed.
    pub fn per_namespace(
        source: &str,
        namespace: &str,
        object: &str,
        workloads: &[String],
    ) -> Vec<EventContext> {
        let mut by_namespace: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for w in workloads {
            if let Some((ns, rest)) = w.split_once('/')
                && !ns.is_empty()
                && rest.contains('/')
            {
                by_namespace.entry(ns).or_default().push(rest.to_string());
            }
        }
        let context = |namespace: &str, workloads: Vec<String>| EventContext {
            source: source.to_string(),
            namespace: namespace.to_string(),
            object: object.to_string(),
            workloads,
            link: String::new(),
        };
        if by_namespace.is_empty() {
            return vec![context(namespace, Vec::new())];
        }
        by_namespace
            .into_iter()
            .map(|(ns, mut w)| {
                w.sort();
                w.dedup();
                context(ns, w)
            })
            .collect()
    }
}

fn scope(ctx: &EventContext, row: &ResultRow) -> Scope {
    Scope {
        namespace: ctx.namespace.clone(),
        image: row.image_ref.clone(),
        repository: event::repository_of(&row.image_ref),
        digest: row.image_digest.clone(),
        workloads: ctx.workloads.clone(),
        object: ctx.object.clone(),
        labels: Default::default(),
    }
}

fn counts(row: &ResultRow) -> std::collections::BTreeMap<String, i64> {
    [
        ("Critical", row.critical),
        ("High", row.high),
        ("Medium", row.medium),
        ("Low", row.low),
        ("None", row.none),
        ("Unknown", row.unknown),
        ("Suppressed", row.suppressed),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The evaluation's findings as events carry them (with their VEX status and KEV flag).
pub fn findings(evaluation: &Evaluation) -> Vec<Finding> {
    evaluation
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let vex = evaluation.vex.get(i).and_then(Option::as_ref);
            Finding {
                id: f.id.clone(),
                severity: f.severity.as_str().to_string(),
                package: f.purl.clone(),
                installed: f.installed.clone(),
                fixed: f.fixed.first().cloned().unwrap_or_default(),
                kev: std::iter::once(&f.id)
                    .chain(&f.aliases)
                    .any(|id| evaluation.exploits.get(id).is_some_and(|e| e.kev)),
                vex_status: vex
                    .and_then(|c| c.status.as_ref())
                    .map(name_of)
                    .unwrap_or_default(),
                vex_justification: vex
                    .and_then(|c| c.justification.as_ref())
                    .map(name_of)
                    .unwrap_or_default(),
                link: advisory_link(&f.id),
            }
        })
        .collect()
}

/// A public page for an advisory id.
pub fn advisory_link(id: &str) -> String {
    if id.starts_with("CVE-")
        || id.starts_with("GHSA-")
        || id.starts_with("GO-")
        || id.starts_with("PYSEC-")
    {
        format!("https://osv.dev/vulnerability/{id}")
    } else {
        String::new()
    }
}

/// The events of a recorded result: `scanner.report.ready` when it has a verdict, and
/// `scheduler.rescan.delta` for a non-empty `delta` (its findings: the new ones).
pub fn result_events(
    ctx: &EventContext,
    evaluation: &Evaluation,
    row: &ResultRow,
    delta: Option<&Delta>,
) -> Vec<Event> {
    let now = chrono::DateTime::parse_from_rfc3339(&row.finished_at)
        .map(|t| t.to_utc())
        .unwrap_or_else(|_| chrono::Utc::now());
    let all = findings(evaluation);
    let mut out = Vec::new();
    if let Some(verdict) = &row.verdict {
        let payload = Payload {
            summary: format!(
                "{} components; {} critical, {} high after VEX ({} suppressed)",
                row.components, row.critical, row.high, row.suppressed
            ),
            verdict: Some(verdict.clone()),
            previous_verdict: delta.and_then(|d| d.previous_verdict.clone()),
            findings: Some(all.clone()),
            counts: counts(row),
            link: ctx.link.clone(),
            attributes: [
                ("feedSnapshot".to_string(), row.feed_snapshot.clone().into()),
                (
                    "reportKey".to_string(),
                    row.report_key.clone().unwrap_or_default().into(),
                ),
            ]
            .into_iter()
            .collect(),
            ..Payload::default()
        };
        out.push(Event::new(
            event::REPORT_READY,
            &ctx.source,
            &row.image_digest,
            &ctx.namespace,
            now,
            Data {
                scope: scope(ctx, row),
                payload,
            },
        ));
    }
    if let Some(delta) = delta.filter(|d| !d.is_empty()) {
        let new: std::collections::BTreeSet<(&str, &str)> = delta
            .top_findings
            .iter()
            .map(|t| (t.vulnerability_id.as_str(), t.purl.as_str()))
            .collect();
        let new_findings: Vec<Finding> = all
            .into_iter()
            .filter(|f| new.contains(&(f.id.as_str(), f.package.as_str())))
            .collect();
        let shown = new_findings.len() as u64;
        let payload = Payload {
            summary: format!(
                "{} new finding(s) ({} critical, {} high), {} removed",
                delta.new_findings, delta.new_criticals, delta.new_high, delta.removed_findings
            ),
            verdict: Some(delta.verdict.clone()),
            previous_verdict: delta.previous_verdict.clone(),
            findings: Some(new_findings),
            more_findings: delta.new_findings.saturating_sub(shown),
            counts: counts(row),
            link: ctx.link.clone(),
            attributes: [
                ("newFindings".to_string(), delta.new_findings.into()),
                ("removedFindings".to_string(), delta.removed_findings.into()),
                ("kevHits".to_string(), delta.kev_hits.clone().into()),
                (
                    "previousFeedSnapshot".to_string(),
                    delta
                        .previous_feed_snapshot
                        .clone()
                        .unwrap_or_default()
                        .into(),
                ),
                (
                    "feedSnapshot".to_string(),
                    delta.feed_snapshot.clone().into(),
                ),
            ]
            .into_iter()
            .collect(),
        };
        out.push(Event::new(
            event::RESCAN_DELTA,
            &ctx.source,
            &row.image_digest,
            &ctx.namespace,
            now,
            Data {
                scope: scope(ctx, row),
                payload,
            },
        ));
    }
    out
}

/// Most advisory ids of each list (added, removed, changed) a feed event names.
pub const MAX_FEED_IDS: usize = 100;

/// `feeds.snapshot.changed` for a logged feed delta: cluster-wide (every rule sees it), the
/// new combined snapshot as its subject, what was added, removed and changed (the first
/// [`MAX_FEED_IDS`] ids of each, with their counts) and how many packages it touches.
pub fn feed_delta_event(source: &str, delta: &stella_store::FeedDelta) -> Event {
    use serde_json::json;
    let body = &delta.body;
    let first = |ids: &[String]| ids.iter().take(MAX_FEED_IDS).cloned().collect::<Vec<_>>();
    let attributes = [
        ("feed", json!(delta.feed)),
        ("seq", json!(delta.seq)),
        ("fromSnapshot", json!(delta.from_snapshot)),
        ("toSnapshot", json!(delta.to_snapshot)),
        ("added", json!(first(&body.added))),
        ("removed", json!(first(&body.removed))),
        ("changed", json!(first(&body.changed))),
        ("addedCount", json!(body.added.len())),
        ("removedCount", json!(body.removed.len())),
        ("changedCount", json!(body.changed.len())),
        ("packagesTouched", json!(body.keys.len())),
        ("vexProducts", json!(body.vex.len())),
        ("signals", json!(body.signals)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let time = chrono::DateTime::parse_from_rfc3339(&delta.at)
        .map(|t| t.to_utc())
        .unwrap_or_else(|_| chrono::Utc::now());
    Event::new(
        event::FEEDS_CHANGED,
        source,
        &delta.to_snapshot,
        "",
        time,
        Data {
            scope: Scope {
                object: format!("FeedSource/{}", delta.feed),
                ..Scope::default()
            },
            payload: Payload {
                summary: format!(
                    "{}: {} added, {} removed, {} changed; {} package(s) touched",
                    delta.feed,
                    body.added.len(),
                    body.removed.len(),
                    body.changed.len(),
                    body.keys.len()
                ),
                attributes,
                ..Payload::default()
            },
        },
    )
}

/// The reporter the operator installs on the advisory store
/// ([`stella_store::AdvisoryDb::report_deltas`]): each logged feed delta's event is committed
/// with it.
pub fn feed_delta_reporter(source: &'static str) -> stella_store::DeltaReporter {
    std::sync::Arc::new(move |delta| vec![feed_delta_event(source, delta).to_outbox()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_context_per_workload_namespace() {
        let workloads = [
            "shop/Deployment/web".to_string(),
            "batch/CronJob/nightly".to_string(),
            "shop/StatefulSet/db".to_string(),
            "garbage".to_string(),
        ];
        let got = EventContext::per_namespace("/s", "stella-system", "Scan/x", &workloads);
        let flat: Vec<(&str, Vec<&str>)> = got
            .iter()
            .map(|c| {
                (
                    c.namespace.as_str(),
                    c.workloads.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            flat,
            vec![
                ("batch", vec!["CronJob/nightly"]),
                ("shop", vec!["Deployment/web", "StatefulSet/db"]),
            ]
        );
        let own = EventContext::per_namespace("/s", "team", "Scan/x", &[]);
        assert_eq!((own.len(), own[0].namespace.as_str()), (1, "team"));
    }
}
