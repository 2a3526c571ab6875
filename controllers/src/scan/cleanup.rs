//! Cleanup: the finalizer's `Cleanup` arm for a deleted Scan — deletes its worker Jobs and
//! their credentials Secrets, and forgets its image when retention says so and no other Scan
//! refers to the digest. Idempotent, and fine for a Scan that never got a Job.

use super::error::{self, Result};
use super::status::key;
use super::{Context, Retention, job};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use stella_crds::scan::v1alpha1::Scan;

/// Deletes the Scan's worker Jobs (their credentials Secrets go with them: owner reference;
/// deleted explicitly too, as a cluster without a garbage collector would keep them), and
/// what retention says to forget.
pub async fn cleanup(ctx: &Context, scan: &Scan) -> Result<Action> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
    let uid = scan.uid().unwrap_or_default();
    let selector = format!("{},{}={uid}", job::WORKER_SELECTOR, job::LABEL_SCAN_UID);
    let list = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(error::cleanup("list the Scan's Jobs"))?;
    for job in list.items {
        let name = job.name_any();
        for result in [
            jobs.delete(&name, &DeleteParams::background())
                .await
                .map(|_| ()),
            secrets
                .delete(&job::secret_name(&name), &DeleteParams::default())
                .await
                .map(|_| ()),
        ] {
            match result {
                Ok(()) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(error::cleanup("delete a worker Job")(e)),
            }
        }
    }
    if ctx.retention == Retention::DeleteUnreferenced
        && let Some(digest) = scan.status.as_ref().and_then(|s| s.image_digest.clone())
    {
        let all: Api<Scan> = Api::all(ctx.client.clone());
        let others = all
            .list(&ListParams::default())
            .await
            .map_err(error::cleanup("list Scans"))?;
        let referenced = others.items.iter().any(|other| {
            other.uid() != scan.uid()
                && other
                    .status
                    .as_ref()
                    .and_then(|s| s.image_digest.as_deref())
                    == Some(digest.as_str())
        });
        if !referenced {
            let removed = ctx
                .store
                .forget_image(&digest)
                .await
                .map_err(error::store("forget the image"))?;
            tracing::info!(scan = %key(scan), %digest, objects = removed, "forgot the image (retention)");
        }
    }
    tracing::info!(scan = %key(scan), "cleaned up");
    Ok(Action::await_change())
}
