//! Update status: writes a Scan's status by server-side apply under [`MANAGER`] (only when it
//! changed), raises the transition's Event, and keeps the `stella_scans{phase}` gauge.

use super::error::{Error, Result};
use super::plan::Outcome;
use super::{Context, MANAGER};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::Recorder;
use kube::{Api, Resource, ResourceExt};
use stella_crds::scan::v1alpha1::{Scan, ScanPhase, ScanStatus};

/// Writes `outcome`'s status and Event. A Scan that has just completed or failed reports it
/// (`scanner.scan.completed`) to the outbox first: a failed status write retries the
/// reconcile, which emits the same event (the same id), stored once.
pub async fn update_status(ctx: &Context, scan: &Scan, outcome: &Outcome) -> Result<()> {
    ctx.metrics
        .scan_phase(&key(scan), phase_name(outcome.status.phase));
    ctx.metrics
        .scan_result(&key(scan), result_of(scan, &outcome.status));
    let finished = completion_events(scan, &outcome.status);
    if !finished.is_empty() {
        let rows: Vec<_> = finished.iter().map(|e| e.to_outbox()).collect();
        ctx.store
            .notify
            .append(&rows)
            .await
            .map_err(|source| Error::Store {
                action: "record the scan.completed event",
                source,
            })?;
    }
    if scan.status.as_ref() != Some(&outcome.status) {
        let api: Api<Scan> =
            Api::namespaced(ctx.client.clone(), &scan.namespace().unwrap_or_default());
        let patch = serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1",
            "kind": "Scan",
            "status": outcome.status,
        });
        api.patch_status(
            &scan.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::UpdateStatus)?;
    }
    if let Some(event) = &outcome.event {
        let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
        if let Err(error) = recorder
            .publish(&event.to_event(), &scan.object_ref(&()))
            .await
        {
            tracing::warn!(%error, scan = %key(scan), "failed to record an event");
        }
    }
    Ok(())
}

/// `scanner.scan.completed`, one per namespace the Scan reports to, when `new` moves the Scan
/// into `Completed` or `Failed` (a new completion: another phase before it, or another
/// completion time). Its id is derived from the completion (digest, attempt, time, verdict),
/// so a retried reconcile repeats it rather than adding one.
pub fn completion_events(scan: &Scan, new: &ScanStatus) -> Vec<stella_notify::Event> {
    use serde_json::json;
    let old = scan.status.as_ref();
    let done = matches!(new.phase, Some(ScanPhase::Completed | ScanPhase::Failed));
    let changed = old.map(|o| o.phase) != Some(new.phase)
        || old.and_then(|o| o.completion_time.as_ref()) != new.completion_time.as_ref();
    if !done || !changed {
        return Vec::new();
    }
    let failed = new.phase == Some(ScanPhase::Failed);
    let verdict = new.verdict.map(|v| v.to_string());
    let reason = new
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default();
    let counts = &new.counts;
    let summary = if failed {
        format!("scan failed ({}): {}", reason.0, reason.1)
    } else {
        format!(
            "{} components; {} critical, {} high after VEX ({} suppressed){}",
            new.components,
            counts.critical,
            counts.high,
            new.suppressed,
            verdict
                .as_deref()
                .map(|v| format!("; verdict {v}"))
                .unwrap_or_default()
        )
    };
    let time = new
        .completion_time
        .as_ref()
        .map(|t| t.0.to_string())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map_or_else(chrono::Utc::now, |t| t.to_utc());
    let digest = new.image_digest.clone().unwrap_or_default();
    let subject = if digest.is_empty() {
        format!("Scan/{}", key(scan))
    } else {
        digest.clone()
    };
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert(
        "phase".to_string(),
        json!(if failed { "Failed" } else { "Completed" }),
    );
    attributes.insert("attempts".to_string(), json!(new.attempts));
    attributes.insert("components".to_string(), json!(new.components));
    attributes.insert("jobName".to_string(), json!(new.job_name));
    attributes.insert("completionTime".to_string(), json!(time.to_rfc3339()));
    if failed {
        attributes.insert("reason".to_string(), json!(reason.0));
    }
    let severity_counts: std::collections::BTreeMap<String, i64> = [
        ("Critical", counts.critical),
        ("High", counts.high),
        ("Medium", counts.medium),
        ("Low", counts.low),
        ("None", counts.none),
        ("Unknown", counts.unknown),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), i64::from(v)))
    .collect();
    let contexts = stella_pipeline::EventContext::per_namespace(
        super::reevaluate::EVENT_SOURCE,
        &scan.namespace().unwrap_or_default(),
        &format!("Scan/{}", scan.name_any()),
        &super::job::workloads(scan),
    );
    contexts
        .iter()
        .map(|ctx| {
            stella_notify::Event::new(
                stella_notify::event::SCAN_COMPLETED,
                &ctx.source,
                &subject,
                &ctx.namespace,
                time,
                stella_notify::Data {
                    scope: stella_notify::Scope {
                        namespace: ctx.namespace.clone(),
                        image: scan.spec.image.clone(),
                        repository: stella_notify::event::repository_of(&scan.spec.image),
                        digest: digest.clone(),
                        workloads: ctx.workloads.clone(),
                        object: ctx.object.clone(),
                        ..Default::default()
                    },
                    payload: stella_notify::Payload {
                        summary: summary.clone(),
                        verdict: verdict.clone(),
                        counts: if failed {
                            Default::default()
                        } else {
                            severity_counts.clone()
                        },
                        attributes: attributes.clone(),
                        ..Default::default()
                    },
                },
            )
        })
        .collect()
}

/// `namespace/name`: the Scan in logs and in the phase gauge.
pub fn key(scan: &Scan) -> String {
    format!(
        "{}/{}",
        scan.namespace().unwrap_or_default(),
        scan.name_any()
    )
}

fn phase_name(phase: Option<ScanPhase>) -> Option<&'static str> {
    phase.map(|p| match p {
        ScanPhase::Pending => "Pending",
        ScanPhase::Resolving => "Resolving",
        ScanPhase::Scanning => "Scanning",
        ScanPhase::Completed => "Completed",
        ScanPhase::Failed => "Failed",
    })
}

/// The result a status reports, for the verdict and findings gauges (none before a result).
pub(crate) fn result_of(scan: &Scan, status: &ScanStatus) -> Option<crate::metrics::ScanResult> {
    status.completion_time.as_ref()?;
    status.inputs.as_ref()?;
    let c = &status.counts;
    Some(crate::metrics::ScanResult {
        namespace: scan.namespace().unwrap_or_default(),
        verdict: match status.verdict {
            Some(stella_model::Verdict::Pass) => "PASS",
            Some(stella_model::Verdict::Warn) => "WARN",
            Some(stella_model::Verdict::Fail) => "FAIL",
            None => "none",
        },
        counts: [c.critical, c.high, c.medium, c.low, c.none, c.unknown].map(u64::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::fixtures::{DIGEST, at, scan};
    use stella_crds::discovered::{ANNOTATION_WORKLOADS, LABEL_DISCOVERED};

    fn completed(second: i64) -> ScanStatus {
        ScanStatus {
            phase: Some(ScanPhase::Completed),
            image_digest: Some(DIGEST.into()),
            verdict: Some(stella_model::Verdict::Fail),
            components: 12,
            completion_time: Some(at(second)),
            ..ScanStatus::default()
        }
    }

    #[test]
    fn a_completion_is_reported_once_per_namespace() {
        let running = ScanStatus {
            phase: Some(ScanPhase::Scanning),
            ..ScanStatus::default()
        };
        let mut s = scan(Some(running));
        let events = completion_events(&s, &completed(100));
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.kind, stella_notify::event::SCAN_COMPLETED);
        assert_eq!(e.subject, DIGEST);
        assert_eq!(e.data.payload.verdict.as_deref(), Some("FAIL"));
        assert_eq!(e.namespace, s.namespace().unwrap_or_default());
        // The same completion again (a retried reconcile): the same event.
        assert_eq!(completion_events(&s, &completed(100))[0].id, e.id);
        // Already completed at that time: nothing new; a later completion: a new event.
        s.status = Some(completed(100));
        assert!(completion_events(&s, &completed(100)).is_empty());
        assert_ne!(completion_events(&s, &completed(200))[0].id, e.id);
        // Not finished: nothing.
        assert!(completion_events(&s, &ScanStatus::default()).is_empty());
        // A discovered Scan reports to the namespaces of its workloads.
        s.status = None;
        s.labels_mut()
            .insert(LABEL_DISCOVERED.into(), "true".into());
        s.annotations_mut().insert(
            ANNOTATION_WORKLOADS.into(),
            "batch/CronJob/nightly,shop/Deployment/web".into(),
        );
        let spread = completion_events(&s, &completed(100));
        let namespaces: Vec<&str> = spread.iter().map(|e| e.namespace.as_str()).collect();
        assert_eq!(namespaces, vec!["batch", "shop"]);
        assert_eq!(
            spread[1].data.scope.workloads,
            vec!["Deployment/web".to_string()]
        );
    }
}
