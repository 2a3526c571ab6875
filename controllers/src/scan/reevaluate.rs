//! Reevaluate: the analysis-only path. When only the feeds or the policy changed, the image's
//! stored inventory is judged again with the pipeline's [`stella_pipeline::evaluate`] — the
//! same evaluation a worker runs after its analysis — and recorded as a worker records it
//! (unknowns, the policy report, the result under the new pinned inputs). No pull, no
//! analyzer, no Job.
//!
//! It runs here, in the leader operator, not in a batched Job: the work is matching a few
//! hundred stored components against the advisory index (`stella-bench --matching 200000`
//! matches 5,000 components in about 65 ms on 2 cores), less than a Job costs to schedule.

use super::Context;
use super::build::Reevaluation;
use super::error::{Error, Result};
use super::plan::Observed;
use stella_store::ResultRow;

/// The CloudEvents `source` of what the operator reports.
pub const EVENT_SOURCE: &str = "/stella-ops/operator";

/// Evaluates the stored inventory among `observed`'s artifacts under the current inputs and
/// records the result (a new report version; the previous one stays as history), with what
/// changed against the previous report.
pub async fn reevaluate(
    ctx: &Context,
    observed: &Observed,
    wanted: &Reevaluation,
) -> Result<(ResultRow, Option<stella_pipeline::delta::Delta>)> {
    let store = &ctx.store;
    let inventory = stella_pipeline::stored_inventory(store, &observed.artifacts)
        .await
        .map_err(Error::Reevaluate)?
        .ok_or_else(|| {
            Error::Reevaluate(stella_pipeline::Error::Storage {
                what: "the catalog no longer lists the inventory".into(),
                source: stella_store::Error::MissingObject {
                    key: stella_store::keys::inventory(&observed.digest),
                },
            })
        })?;
    let policy = wanted
        .policy
        .as_deref()
        .map(|json| stella_pipeline::load_policy_text("the Scan's Policy", json))
        .transpose()
        .map_err(Error::Reevaluate)?;
    let inputs = stella_pipeline::EvaluateInputs {
        namespace: wanted.namespace.clone(),
        ..stella_pipeline::EvaluateInputs::now(policy)
    };
    let at = inputs.evaluated_at;
    let evaluation = stella_pipeline::evaluate_with(store, &ctx.evaluations, inventory, inputs)
        .await
        .map_err(Error::Reevaluate)?;
    // Written before the result, so the signer finds them when it sees the result.
    if wanted.attest {
        let statements = stella_pipeline::attest::prepare(store, &evaluation, at)
            .await
            .map_err(Error::Reevaluate)?;
        stella_pipeline::attest::store_unsigned(store, &observed.digest, &statements)
            .await
            .map_err(Error::Reevaluate)?;
    }
    // The unknowns and the report are independent writes: both at once.
    let (_, recorded) = futures::future::try_join(
        stella_pipeline::record(store, &evaluation),
        stella_pipeline::record_reevaluation(
            store,
            &evaluation,
            &wanted.pinned_image,
            observed.latest.as_ref(),
            &stella_pipeline::EventContext::per_namespace(
                EVENT_SOURCE,
                wanted.namespace.as_deref().unwrap_or_default(),
                &format!("Scan/{}", wanted.scan),
                &wanted.workloads,
            ),
        ),
    )
    .await
    .map_err(Error::Reevaluate)?;
    Ok(recorded)
}
