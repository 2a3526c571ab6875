//! The scheduler's and feeds' read endpoints (seed 001 §7.6): `GET /api/v1/scheduler/runs/{id}`
//! (a run with its stats and deltas), `GET /api/v1/scheduler/runs?schedule=NAME` (a Schedule's
//! runs, newest first), `GET /api/v1/scheduler/cursor` (where the feeds and VEX stand), and
//! `GET /api/v1/feeds` (each feed's sync state and the combined snapshot).
//!
//! A run needs `get schedules` on its Schedule; the cursor `list schedules`; the feeds
//! `list feedsources` — all cluster-scoped, as the kinds are.

use super::auth::Access;
use super::input::{self, quoted};
use super::{ApiState, Error, json_response, respond, store_failure};
use stella_crds::schedule::v1alpha1::RunRequest;
use warp::http::StatusCode;
use warp::reply::Response;

/// Most runs listed at once.
pub(super) const MAX_RUNS: u32 = 100;

/// `GET scheduler/runs/{id}`: the run as the catalog keeps it, with `status`, `counts` and
/// `links` (seed: `{ status, counts, links }`).
pub(crate) async fn run(id: String, authorization: Option<String>, state: ApiState) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            let id = input::percent_decode(&id)?;
            // The run ids the controller writes: what a Scan's request annotation carries.
            if RunRequest::parse(&format!("analysis-only/{id}")).is_none() {
                return Err(Error::BadRequest(format!(
                    "{} is not a run id (letters, digits, '-' and '.', at most 128)",
                    quoted(&id)
                )));
            }
            let row = state
                .store
                .scheduler
                .run(&id)
                .await
                .map_err(store_failure)?
                .ok_or_else(|| Error::NotFound(format!("no run {}", quoted(&id))))?;
            state
                .reviews
                .authorize(&caller, Access::read_schedule(&row.schedule))
                .await?;
            let body = with_links(&row)?;
            Ok(json_response(StatusCode::OK, body.to_string()))
        }
        .await,
    )
}

/// `GET scheduler/runs?schedule=NAME[&limit=N]`: the Schedule's runs, newest first.
pub(crate) async fn runs(
    query: Option<Vec<(String, String)>>,
    authorization: Option<String>,
    state: ApiState,
) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            let params = input::params(query, &["schedule", "limit"])?;
            let schedule = input::object_name(params.required("schedule")?)?;
            let limit = params.limit(20, MAX_RUNS)?;
            state
                .reviews
                .authorize(&caller, Access::read_schedule(&schedule))
                .await?;
            let rows = state
                .store
                .scheduler
                .runs(&schedule, limit)
                .await
                .map_err(store_failure)?;
            let runs = rows.iter().map(with_links).collect::<Result<Vec<_>, _>>()?;
            let body = serde_json::json!({"schedule": schedule, "runs": runs});
            Ok(json_response(StatusCode::OK, body.to_string()))
        }
        .await,
    )
}

/// A stored run with the seed's `status`, `counts` and `links`.
fn with_links(row: &stella_store::SchedulerRunRow) -> Result<serde_json::Value, Error> {
    let mut body: serde_json::Value = serde_json::from_str(&row.body)
        .map_err(|e| Error::Internal(format!("run {} is stored unreadable: {e}", row.run_id)))?;
    let counts = body.get("stats").cloned().unwrap_or_default();
    let scans: Vec<serde_json::Value> = body
        .get("deltas")
        .and_then(|d| d.as_array())
        .map(|deltas| {
            deltas
                .iter()
                .filter_map(|d| d.get("scan").and_then(|s| s.as_str()))
                .filter_map(|scan| scan.split_once('/'))
                .map(|(namespace, name)| {
                    serde_json::json!(format!("{}/scans/{namespace}/{name}", super::PREFIX))
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert("status".into(), serde_json::json!(row.state));
        object.insert("counts".into(), counts);
        object.insert(
            "links".into(),
            serde_json::json!({
                "self": format!("/api/v1/scheduler/runs/{}", row.run_id),
                "schedule": format!("/apis/stella-ops.org/v1alpha1/schedules/{}", row.schedule),
                "scans": scans,
            }),
        );
    }
    Ok(body)
}

/// `GET scheduler/cursor`: the combined feed snapshot (the seed's `lastConcelierExportId`),
/// the VEX snapshot (`lastExcititorExportId`) and the newest feed delta.
pub(crate) async fn cursor(authorization: Option<String>, state: ApiState) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            state
                .reviews
                .authorize(&caller, Access::list("schedules"))
                .await?;
            let store = &state.store;
            let feeds = store
                .advisories
                .feed_snapshot()
                .await
                .map_err(store_failure)?;
            let statements = store.vex.vex_statements().await.map_err(store_failure)?;
            let vex = (!statements.is_empty()).then(|| stella_vex::snapshot_hash(&statements));
            let last = store
                .advisories
                .last_feed_delta()
                .await
                .map_err(store_failure)?;
            let body = serde_json::json!({
                "lastConcelierExportId": feeds,
                "lastExcititorExportId": vex,
                "lastFeedDelta": last.map(|d| serde_json::json!({
                    "seq": d.seq, "feed": d.feed, "at": d.at,
                    "fromSnapshot": d.from_snapshot, "toSnapshot": d.to_snapshot,
                })),
            });
            Ok(json_response(StatusCode::OK, body.to_string()))
        }
        .await,
    )
}

/// `GET feeds`: each feed's sync state (FeedSources as `feedsource/<name>`, `stella feeds
/// import` as `import`) and the combined snapshot.
pub(crate) async fn feeds(authorization: Option<String>, state: ApiState) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            state
                .reviews
                .authorize(&caller, Access::list("feedsources"))
                .await?;
            let store = &state.store;
            let snapshot = store
                .advisories
                .feed_snapshot()
                .await
                .map_err(store_failure)?;
            let states = store
                .advisories
                .feed_states()
                .await
                .map_err(store_failure)?;
            let feeds: Vec<serde_json::Value> = states
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "feed": s.feed, "snapshot": s.snapshot, "records": s.records,
                        "rejected": s.rejected, "syncedAt": s.synced_at,
                        "etag": s.etag, "lastModified": s.last_modified,
                    })
                })
                .collect();
            let body = serde_json::json!({"snapshot": snapshot, "feeds": feeds});
            Ok(json_response(StatusCode::OK, body.to_string()))
        }
        .await,
    )
}
