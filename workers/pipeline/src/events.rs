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
