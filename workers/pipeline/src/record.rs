//! Step 4: what an evaluation leaves in the store. Every scan records its unknowns
//! ([`record`]); a scan the cluster runs also records its policy report and its result under
//! pinned inputs ([`record_result`]), which the Scan controller, the webhook and the REST API
//! read.

use crate::{Error, Evaluation, Result};
use stella_store::{ResultRow, Store};

/// Records the evaluation's unknowns in the unknowns registry (replacing the image's earlier
/// ones).
pub async fn record(store: &Store, evaluation: &Evaluation) -> Result<()> {
    let rows: Vec<stella_store::UnknownRow> = evaluation
        .unknowns
        .iter()
        .map(|u| stella_store::UnknownRow {
            id: u.id.clone(),
            image_digest: u.image_digest.clone(),
            subject: u.subject.clone(),
            score: u.score,
            band: u.band.as_str().into(),
            body: serde_json::to_string(u).unwrap_or_default(),
        })
        .collect();
    store
        .unknowns
        .record(&evaluation.inventory.image.digest, &rows, &timestamp())
        .await
        .map_err(Error::storage("failed to record the unknowns"))
}

/// Stores the policy report (when a policy was evaluated) and records the result of
/// `image_ref` under its pinned inputs: analyzer version, feed snapshot, VEX snapshot, policy
/// digest, verdict and counts after VEX.
pub async fn record_result(
    store: &Store,
    evaluation: &Evaluation,
    image_ref: &str,
) -> Result<ResultRow> {
    let inventory = &evaluation.inventory;
    let digest = &inventory.image.digest;
    let counts = evaluation.counts();
    let mut row = ResultRow {
        image_digest: digest.clone(),
        image_ref: image_ref.to_string(),
        analyzer_version: inventory.analyzer_version.clone(),
        feed_snapshot: evaluation.feed_snapshot.clone(),
        vex_snapshot: evaluation.vex_snapshot.clone(),
        policy_digest: evaluation.policy.as_ref().map(|p| p.digest.clone()),
        verdict: None,
        critical: counts.critical,
        high: counts.high,
        medium: counts.medium,
        low: counts.low,
        none: counts.none,
        unknown: counts.unknown,
        suppressed: counts.suppressed,
        components: inventory.components.len() as i64,
        report_key: None,
        finished_at: String::new(),
    };
    if let Some(report) = evaluation.report() {
        let key = stella_store::keys::report(digest);
        store
            .store_artifact(
                digest,
                stella_store::Artifact {
                    key: key.clone(),
                    kind: stella_store::REPORT_KIND,
                    format: "policy-report-json",
                    view: None,
                    bytes: report.to_canonical_json().into_bytes(),
                },
            )
            .await
            .map_err(Error::storage("failed to store the policy report"))?;
        row.verdict = Some(report.verdict.as_str().to_string());
        row.report_key = Some(key);
    }
    row.finished_at = timestamp();
    store
        .catalog
        .record_result(&row)
        .await
        .map_err(Error::storage("failed to record the result"))?;
    Ok(row)
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
