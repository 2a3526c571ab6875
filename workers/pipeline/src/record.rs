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
    record_result_reporting(store, evaluation, image_ref, &[]).await
}

/// [`record_result`], and for each of `events` (one per namespace the image reports to) its
/// `scanner.report.ready` event committed to the outbox in the same transaction as the row.
pub async fn record_result_reporting(
    store: &Store,
    evaluation: &Evaluation,
    image_ref: &str,
    events: &[crate::events::EventContext],
) -> Result<ResultRow> {
    let row = store_report(store, evaluation, image_ref).await?;
    let outbox: Vec<_> = events
        .iter()
        .flat_map(|ctx| crate::events::result_events(ctx, evaluation, &row, None))
        .map(|e| e.to_outbox())
        .collect();
    commit(store, &row, &outbox).await?;
    Ok(row)
}

/// The result row committed with its events.
async fn commit(
    store: &Store,
    row: &ResultRow,
    outbox: &[stella_store::OutboxEvent],
) -> Result<()> {
    store
        .catalog
        .record_result_with_events(row, outbox)
        .await
        .map_err(Error::storage("failed to record the result"))
}

/// Stores the policy report objects and builds the result row (not yet recorded).
async fn store_report(
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
        // The latest at `report.json`, and the version itself (what the result points at,
        // kept as history).
        let bytes = report.to_canonical_json().into_bytes();
        let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let version = stella_store::keys::report_version(digest, &hex);
        // Both at once: independent objects and rows.
        let put = |key: String| {
            store.store_artifact(
                digest,
                stella_store::Artifact {
                    key,
                    kind: stella_store::REPORT_KIND,
                    format: "policy-report-json",
                    view: None,
                    bytes: bytes.clone(),
                },
            )
        };
        futures::future::try_join(
            put(stella_store::keys::report(digest)),
            put(version.clone()),
        )
        .await
        .map_err(Error::storage("failed to store the policy report"))?;
        row.verdict = Some(report.verdict.as_str().to_string());
        row.report_key = Some(version);
    }
    row.finished_at = timestamp();
    Ok(row)
}

/// [`record_result`] of a re-evaluation, and what it changed against the image's previous
/// report (`previous`: its latest result before this one, as the caller read it), stored
/// beside the new report version at `images/<digest>/deltas/<hex>.json` when anything did.
/// An unreadable previous report is no baseline (every finding is new), never an error.
pub async fn record_reevaluation(
    store: &Store,
    evaluation: &Evaluation,
    image_ref: &str,
    previous: Option<&ResultRow>,
    events: &[crate::events::EventContext],
) -> Result<(ResultRow, Option<crate::delta::Delta>)> {
    let digest = &evaluation.inventory.image.digest;
    // The previous report is a version (never overwritten), so it is read while the new one
    // is recorded.
    let baseline = async {
        let Some(key) = previous.and_then(|p| p.report_key.as_deref()) else {
            return Ok(None);
        };
        match store.get(key).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<stella_policy::Report>(&bytes) {
                Ok(report) => Ok(Some(report)),
                Err(e) => {
                    tracing::warn!(key, error = %e, "the previous report does not parse: no baseline");
                    Ok(None)
                }
            },
            Ok(None) => {
                tracing::warn!(key, "the previous report is gone: no baseline");
                Ok(None)
            }
            Err(e) => Err(Error::storage("failed to read the previous report")(e)),
        }
    };
    // A result recorded before report versions existed points at the latest copy, which
    // this one overwrites: read it first.
    let latest = stella_store::keys::report(digest);
    let (baseline, row) = if previous.and_then(|p| p.report_key.as_deref()) == Some(latest.as_str())
    {
        let baseline = baseline.await?;
        (baseline, store_report(store, evaluation, image_ref).await?)
    } else {
        futures::future::try_join(baseline, store_report(store, evaluation, image_ref)).await?
    };
    let delta = crate::delta::between(
        baseline.as_ref(),
        previous.map(|p| p.feed_snapshot.as_str()),
        evaluation,
        &row.finished_at,
    )
    .filter(|d| !d.is_empty());
    // The result and the events that report it (the report, and what changed) in one
    // transaction.
    let outbox: Vec<_> = events
        .iter()
        .flat_map(|ctx| crate::events::result_events(ctx, evaluation, &row, delta.as_ref()))
        .map(|e| e.to_outbox())
        .collect();
    commit(store, &row, &outbox).await?;
    if let (Some(delta), Some(key)) = (&delta, delta_key(&row)) {
        let bytes = serde_json::to_vec(delta).unwrap_or_default();
        store
            .store_artifact(
                digest,
                stella_store::Artifact {
                    key,
                    kind: DELTA_KIND,
                    format: "rescan-delta-json",
                    view: None,
                    bytes,
                },
            )
            .await
            .map_err(Error::storage("failed to store the delta"))?;
    }
    Ok((row, delta))
}

/// Where the delta of the re-evaluation that wrote `row` is stored (beside its report version:
/// `images/<digest>/deltas/<report sha256>.json`); `None` without a stored report.
pub fn delta_key(row: &ResultRow) -> Option<String> {
    let hex = row
        .report_key
        .as_deref()?
        .rsplit('/')
        .next()?
        .strip_suffix(".json")?;
    Some(stella_store::keys::delta(&row.image_digest, hex))
}

/// The catalog's artifact kind of a re-evaluation delta.
pub const DELTA_KIND: &str = "rescan-delta";

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
