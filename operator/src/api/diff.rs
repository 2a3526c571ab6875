//! `GET diff?old=<digest>&new=<digest>&view=inventory|usage`: what changed between two stored
//! inventories, as `stella diff --format json` prints it (`stella-sbom`'s diff with the
//! ecosystems' own version order, canonical JSON).

use super::auth::Access;
use super::reads::{inventory, sbom_view};
use super::{ApiState, Error, input, json_response, respond};
use stella_crds::scan::v1alpha1::SbomView;
use warp::http::StatusCode;
use warp::reply::Response;

pub(crate) async fn diff(
    query: Option<Vec<(String, String)>>,
    authorization: Option<String>,
    state: ApiState,
) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            let params = input::params(query, &["old", "new", "view"])?;
            let old = input::digest(params.required("old")?)?;
            let new = input::digest(params.required("new")?)?;
            let view = sbom_view(params.get("view").unwrap_or("inventory"))?;
            state
                .reviews
                .authorize(&caller, Access::read_all_scans())
                .await?;
            let old = inventory(&state, &old).await?;
            let new = inventory(&state, &new).await?;
            let body = tokio::task::spawn_blocking(move || render(&old, &new, view))
                .await
                .map_err(|e| Error::Internal(format!("the diff failed: {e}")))??;
            Ok(json_response(StatusCode::OK, body))
        }
        .await,
    )
}

/// The diff of the two inventories (or of their usage views) as canonical JSON.
fn render(
    old: &stella_sbom::Inventory,
    new: &stella_sbom::Inventory,
    view: SbomView,
) -> Result<String, Error> {
    let diff = match view {
        SbomView::Inventory => {
            stella_sbom::diff::diff(old, new, &stella_advisories::matching::compare)
        }
        SbomView::Usage => stella_sbom::diff::diff(
            &old.usage_view(),
            &new.usage_view(),
            &stella_advisories::matching::compare,
        ),
    };
    let value = serde_json::to_value(&diff).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(stella_sbom::canonical::to_string_pretty(&value))
}
