//! Update status: writes a Scan's status by server-side apply under [`MANAGER`] (only when it
//! changed), raises the transition's Event, and keeps the `stella_scans{phase}` gauge.

use super::error::{Error, Result};
use super::plan::Outcome;
use super::{Context, MANAGER};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::Recorder;
use kube::{Api, Resource, ResourceExt};
use stella_crds::scan::v1alpha1::{Scan, ScanPhase};

/// Writes `outcome`'s status and Event.
pub async fn update_status(ctx: &Context, scan: &Scan, outcome: &Outcome) -> Result<()> {
    ctx.metrics
        .scan_phase(&key(scan), phase_name(outcome.status.phase));
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
