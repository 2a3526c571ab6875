//! Observe: for a validated Scan, reads the state the decision needs — the Job of the current
//! attempt and the worker's report, the image digest at the registry, the catalog's rows for
//! it, the running-Job count — into [`Observed`]. Reads only.

use super::Context;
use super::error::{self, Result};
use super::job;
use super::plan::{self, Inputs, JobState, Observed};
use super::validate::{Invalid, ValidatedScan};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use stella_crds::scan::v1alpha1::{Scan, ScanPhase};

/// What observe found.
#[derive(Debug)]
pub enum Observation {
    /// Everything the decision needs.
    Observed(Box<Observed>),
    /// The registry could not resolve the image: the Scan's condition, no decision.
    Unresolved(Invalid),
}

/// Reads the Scan's state. The digest is the running attempt's while a Job scans it,
/// otherwise resolved now (tags move).
pub async fn observe(ctx: &Context, scan: &Scan, validated: &ValidatedScan) -> Result<Observation> {
    // The Job of the current attempt.
    let status = scan.status.clone().unwrap_or_default();
    let (job, run) = match &status.job_name {
        Some(name) => {
            let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
            let job = jobs
                .get_opt(name)
                .await
                .map_err(error::observe("read the worker Job"))?;
            let state = job_state(job.as_ref());
            let mut run = ctx
                .store
                .catalog
                .run(name)
                .await
                .map_err(error::store("read the worker's report"))?;
            // The worker could not reach the catalog: its pod's termination message says why.
            if run.is_none() && matches!(state, JobState::Failed { .. } | JobState::Succeeded) {
                let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
                let list = pods
                    .list(&ListParams::default().labels(&format!("job-name={name}")))
                    .await
                    .map_err(error::observe("list the worker's pods"))?;
                run = plan::termination_report(name, &list.items);
            }
            (Some(state), run)
        }
        None => (None, None),
    };

    let in_flight = status.phase == Some(ScanPhase::Scanning) && status.job_name.is_some();
    let digest = match (&status.image_digest, in_flight) {
        (Some(digest), true) => digest.clone(),
        _ => match resolve(ctx, validated).await {
            Ok(digest) => digest,
            Err(unresolved) => return Ok(Observation::Unresolved(unresolved)),
        },
    };

    let catalog = &ctx.store.catalog;
    let feed_snapshot = ctx
        .store
        .advisories
        .feed_snapshot()
        .await
        .map_err(error::store("read the feed snapshot"))?;
    let inputs = Inputs {
        analyzer_version: stella_analyzers::ANALYZER_VERSION.to_string(),
        feed_snapshot,
        policy_digest: validated.policy.as_ref().map(|p| p.digest.clone()),
    };
    let cached = catalog
        .result(
            &digest,
            &inputs.analyzer_version,
            &inputs.feed_snapshot,
            inputs.policy_digest.as_deref(),
        )
        .await
        .map_err(error::store("read the catalog's result"))?;
    let latest = catalog
        .latest_result(&digest)
        .await
        .map_err(error::store("read the catalog's latest result"))?;
    let artifacts = catalog
        .artifacts(&digest)
        .await
        .map_err(error::store("read the catalog's artifacts"))?;
    // Behind a result under these inputs: its delta, when a re-evaluation stored one (the
    // status write after a re-evaluation failed, or another Scan of the image re-evaluated).
    let behind = status.inputs.as_ref().map(plan::inputs_of_status).as_ref() != Some(&inputs);
    let cached_delta = match cached.as_ref().and_then(stella_pipeline::delta_key) {
        Some(key) if behind => match ctx.store.get(&key).await {
            Ok(bytes) => bytes.and_then(|b| serde_json::from_slice(&b).ok()),
            Err(e) => {
                tracing::debug!(error = %e, key, "the cached result's delta is unreadable");
                None
            }
        },
        _ => None,
    };
    let running_jobs = running_jobs(ctx).await?;
    let feed_untouched = feed_untouched(ctx, &status, &digest, &inputs).await?;
    Ok(Observation::Observed(Box::new(Observed {
        digest,
        inputs,
        job,
        run,
        latest,
        cached,
        artifacts,
        running_jobs,
        feed_untouched,
        cached_delta,
    })))
}

/// Whether the feeds changed since the snapshot a Completed status pins for the same digest,
/// and no logged delta since names the image's packages (its BOM-Index's match keys) or a
/// VEX product that applies to the image or its purls. Any
/// doubt — no log back to that snapshot, KEV / EPSS changed, no keys stored — is `false`:
/// the image is re-evaluated.
async fn feed_untouched(
    ctx: &Context,
    status: &stella_crds::scan::v1alpha1::ScanStatus,
    digest: &str,
    inputs: &Inputs,
) -> Result<bool> {
    let pinned = status
        .inputs
        .as_ref()
        .and_then(|i| i.feed_snapshot.as_deref());
    let Some(pinned) = pinned else {
        return Ok(false);
    };
    if status.phase != Some(ScanPhase::Completed)
        || status.image_digest.as_deref() != Some(digest)
        || pinned == inputs.feed_snapshot
    {
        return Ok(false);
    }
    let Some(changes) = ctx
        .store
        .advisories
        .changes_since(pinned)
        .await
        .map_err(error::store("read the feed deltas"))?
    else {
        return Ok(false);
    };
    let index = match ctx.store.bom_index(digest).await {
        Ok(index) => index,
        Err(e) => {
            tracing::debug!(error = %e, digest, "no readable BOM-Index: re-evaluating");
            None
        }
    };
    let touched = changes.touches(digest, index.as_ref());
    ctx.metrics
        .feed_impact(if touched { "reevaluated" } else { "unaffected" });
    Ok(!touched)
}

/// Resolves the image to its platform manifest digest at the registry. Failures are the
/// Scan's condition reasons.
async fn resolve(ctx: &Context, validated: &ValidatedScan) -> Result<String, Invalid> {
    use stella_acquire::Error as E;
    let reference = &validated.reference;
    let client = validated
        .registry_client()?
        .with_retry(ctx.registry_retry.clone());
    client
        .resolve(reference, &validated.platform)
        .await
        .map(|d| d.to_string())
        .map_err(|e| {
            let reason = match &e {
                E::Unreachable { .. } => "Unreachable",
                E::Auth { .. } => "Unauthorized",
                E::Registry { status: 404, .. } => "ImageNotFound",
                E::NoMatchingPlatform { .. } => "NoMatchingPlatform",
                E::Registry { .. } => "RegistryError",
                _ => "ResolveFailed",
            };
            Invalid::unresolved(reason, format!("failed to resolve {reference}: {e}"))
        })
}

/// The state of a worker Job from its conditions.
pub fn job_state(job: Option<&Job>) -> JobState {
    // A Job being deleted (kept only by finalizers, e.g. `orphan`) is as good as gone.
    let Some(job) = job.filter(|j| j.metadata.deletion_timestamp.is_none()) else {
        return JobState::Missing;
    };
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .cloned()
        .unwrap_or_default();
    for condition in &conditions {
        if condition.status != "True" {
            continue;
        }
        match condition.type_.as_str() {
            "Complete" => return JobState::Succeeded,
            "Failed" => {
                return JobState::Failed {
                    reason: condition.reason.clone().unwrap_or_default(),
                    message: condition.message.clone().unwrap_or_default(),
                };
            }
            _ => {}
        }
    }
    JobState::Running
}

/// Worker Jobs that are not finished: the only ones that hold a slot.
async fn running_jobs(ctx: &Context) -> Result<u32> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
    let list = jobs
        .list(&ListParams::default().labels(job::WORKER_SELECTOR))
        .await
        .map_err(error::observe("list worker Jobs"))?;
    let running = list
        .items
        .iter()
        .filter(|j| {
            j.metadata.deletion_timestamp.is_none() && job_state(Some(j)) == JobState::Running
        })
        .count();
    Ok(u32::try_from(running).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: serde_json::Value, deleting: bool) -> Job {
        let mut metadata = serde_json::json!({"name": "stella-scan-1"});
        if deleting {
            metadata["deletionTimestamp"] = "2026-11-28T08:00:00Z".into();
        }
        serde_json::from_value(serde_json::json!({"metadata": metadata, "status": status})).unwrap()
    }

    #[test]
    fn a_jobs_state_comes_from_its_true_conditions() {
        let cond = |type_: &str, status: &str| serde_json::json!({"conditions": [{"type": type_, "status": status, "reason": "R", "message": "m"}]});
        assert_eq!(job_state(None), JobState::Missing);
        assert_eq!(
            job_state(Some(&job(serde_json::json!({}), false))),
            JobState::Running
        );
        assert_eq!(
            job_state(Some(&job(cond("Complete", "True"), false))),
            JobState::Succeeded
        );
        assert_eq!(
            job_state(Some(&job(cond("Failed", "True"), false))),
            JobState::Failed {
                reason: "R".into(),
                message: "m".into()
            }
        );
        assert_eq!(
            job_state(Some(&job(cond("Failed", "False"), false))),
            JobState::Running
        );
        assert_eq!(
            job_state(Some(&job(cond("Complete", "True"), true))),
            JobState::Missing,
            "a Job being deleted is as good as gone"
        );
    }
}
