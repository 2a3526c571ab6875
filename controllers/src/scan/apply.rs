//! Apply: creates what build asked for — the worker Job of a new attempt and, beside it, the
//! Secret with its pull credentials (owned by the Job) — and hands on the status to write.

use super::build::Resources;
use super::error::{self, Result};
use super::plan::Outcome;
use super::status::key;
use super::{Context, job};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use stella_crds::scan::v1alpha1::Scan;

/// Creates the Job (and its credentials Secret) of `resources`, if any.
pub async fn apply(ctx: &Context, scan: &Scan, resources: Resources) -> Result<Outcome> {
    let Some(wanted) = resources.job else {
        return Ok(resources.outcome);
    };
    let name = wanted.name().to_string();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
    let created = match jobs.create(&PostParams::default(), &wanted.job).await {
        Ok(job) => job,
        // A previous reconcile created it and crashed before writing the status.
        Err(kube::Error::Api(status)) if status.code == 409 => jobs
            .get(&name)
            .await
            .map_err(error::apply("read the existing worker Job"))?,
        Err(e) => return Err(error::apply("create the worker Job")(e)),
    };
    if let Some(merged) = wanted.credentials {
        let secret = job::credentials_secret(&created, merged);
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => return Err(error::apply("create the worker's credentials Secret")(e)),
        }
    }
    tracing::info!(scan = %key(scan), job = %name, image = %wanted.pinned_image, "created worker Job");
    Ok(resources.outcome)
}
