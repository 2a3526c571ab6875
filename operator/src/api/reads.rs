//! The read endpoints: a Scan's result, an image's SBOM, an artifact's catalog entry, and the
//! stored inventory diff and reports start from.

use super::auth::Access;
use super::input::{self, quoted};
use super::{ApiState, Error, api_server_failure, json_response, respond, store_failure};
use serde::Serialize;
use stella_crds::scan::v1alpha1::{
    ArtifactRef, SbomFormat, SbomView, Scan, ScanPhase, SeverityCounts,
};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

/// `GET scans/{namespace}/{name}`: the Scan's result as its status records it.
pub(crate) async fn scan(
    namespace: String,
    name: String,
    authorization: Option<String>,
    state: ApiState,
) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            let namespace = input::namespace(&namespace)?;
            let name = input::object_name(&name)?;
            state
                .reviews
                .authorize(&caller, Access::read_scan(&namespace, &name))
                .await?;
            let scan = kube::Api::<Scan>::namespaced(state.client.clone(), &namespace)
                .get_opt(&name)
                .await
                .map_err(|e| api_server_failure("get Scan", e))?
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "no Scan \"{name}\" in the namespace \"{namespace}\""
                    ))
                })?;
            let result = ScanResult::of(&namespace, &name, scan);
            Ok(json_response(
                StatusCode::OK,
                serde_json::to_string(&result).map_err(|e| Error::Internal(e.to_string()))?,
            ))
        }
        .await,
    )
}

/// A Scan's result (seeds: `{ status, imageDigest, artifacts[], rekor? }`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ScanResult {
    /// `{namespace}/{name}`.
    scan_id: String,
    image: String,
    /// The phase; `Pending` until the controller has seen the Scan.
    status: ScanPhase,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<stella_crds::common::Verdict>,
    counts: SeverityCounts,
    suppressed: u32,
    components: u32,
    artifacts: Vec<ArtifactRef>,
    conditions: stella_crds::common::Conditions,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed_generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rekor: Option<Rekor>,
}

/// Where the result's envelopes are in the transparency log (Rekor v2 has indices, no UUIDs):
/// the SBOM's index, and every logged envelope's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Rekor {
    log_index: i64,
    entries: Vec<RekorEntry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RekorEntry {
    kind: String,
    log_index: i64,
}

impl ScanResult {
    fn of(namespace: &str, name: &str, scan: Scan) -> ScanResult {
        let status = scan.status.unwrap_or_default();
        ScanResult {
            scan_id: format!("{namespace}/{name}"),
            image: scan.spec.image,
            status: status.phase.unwrap_or(ScanPhase::Pending),
            image_digest: status.image_digest,
            verdict: status.verdict,
            counts: status.counts,
            suppressed: status.suppressed,
            components: status.components,
            artifacts: status.artifacts,
            conditions: status.conditions,
            observed_generation: status.observed_generation,
            rekor: status.attestation.and_then(|a| {
                let entries: Vec<RekorEntry> = a
                    .envelopes
                    .iter()
                    .filter_map(|e| {
                        Some(RekorEntry {
                            kind: e.kind.clone(),
                            log_index: e.log_index?,
                        })
                    })
                    .collect();
                let sbom = entries
                    .iter()
                    .find(|e| e.kind == "sbom")
                    .or(entries.first());
                Some(Rekor {
                    log_index: sbom?.log_index,
                    entries,
                })
            }),
        }
    }
}

/// `GET sboms/{digest}?format=&view=`: the stored SBOM's bytes with its media type.
pub(crate) async fn sbom(
    digest: String,
    query: Option<Vec<(String, String)>>,
    authorization: Option<String>,
    state: ApiState,
) -> Response {
    respond(
        async {
            let caller = state
                .reviews
                .authenticate(authorization.as_deref())
                .await?;
            let digest = input::digest(&digest)?;
            let params = input::params(query, &["format", "view"])?;
            let format = sbom_format(params.get("format").unwrap_or("cyclonedx-json"))?;
            let view = sbom_view(params.get("view").unwrap_or("inventory"))?;
            state
                .reviews
                .authorize(&caller, Access::read_all_scans())
                .await?;
            let artifacts = image_artifacts(&state, &digest).await?;
            let (format_name, view_name) = (label(&format), label(&view));
            let artifact = artifacts
                .iter()
                .find(|a| {
                    a.kind == "sbom"
                        && a.format == format_name
                        && a.view.as_deref() == Some(view_name.as_str())
                })
                .ok_or_else(|| {
                    let stored: Vec<String> = artifacts
                        .iter()
                        .filter(|a| a.kind == "sbom")
                        .map(|a| format!("{}/{}", a.format, a.view.as_deref().unwrap_or("-")))
                        .collect();
                    Error::NotFound(format!(
                        "no {format_name} SBOM of the {view_name} view is stored for {digest} (stored: {})",
                        if stored.is_empty() { "none".to_string() } else { stored.join(", ") }
                    ))
                })?;
            let bytes = object(&state, &artifact.key).await?;
            let mut response = Response::new(bytes.into());
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(media_type(format)),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", artifact.digest)) {
                headers.insert(header::ETAG, etag);
            }
            Ok(response)
        }
        .await,
    )
}

/// `GET catalog/artifacts/{key}`: the catalog's record of one artifact.
pub(crate) async fn artifact(
    key: warp::path::Tail,
    authorization: Option<String>,
    state: ApiState,
) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            let (key, image) = input::artifact_key(key.as_str())?;
            state
                .reviews
                .authorize(&caller, Access::read_all_scans())
                .await?;
            let artifact = state
                .store
                .catalog
                .artifacts(&image)
                .await
                .map_err(store_failure)?
                .into_iter()
                .find(|a| a.key == key)
                .ok_or_else(|| {
                    Error::NotFound(format!("no artifact {} in the catalog", quoted(&key)))
                })?;
            let body = serde_json::json!({
                "id": artifact.key,
                "imageDigest": artifact.image_digest,
                "kind": artifact.kind,
                "format": artifact.format,
                "view": artifact.view,
                "digest": artifact.digest,
                "size": artifact.size,
            });
            Ok(json_response(StatusCode::OK, body.to_string()))
        }
        .await,
    )
}

/// The stored inventory of an image (the `inventory` artifact).
pub(crate) async fn inventory(
    state: &ApiState,
    digest: &str,
) -> Result<stella_sbom::Inventory, Error> {
    let artifacts = image_artifacts(state, digest).await?;
    match stella_pipeline::stored_inventory(&state.store, &artifacts).await {
        Ok(Some(inventory)) => Ok(inventory),
        Ok(None) => Err(Error::NotFound(format!(
            "no inventory is stored for {digest} (scanned by a worker that does not store one: rescan it)"
        ))),
        Err(stella_pipeline::Error::Storage { source, .. }) => Err(store_failure(source)),
        Err(error) => {
            tracing::warn!(%error, "a stored inventory does not parse");
            Err(Error::Internal(format!(
                "the stored inventory of {digest} is corrupt"
            )))
        }
    }
}

/// The catalog's artifacts of an image; 404 when the image has none.
async fn image_artifacts(
    state: &ApiState,
    digest: &str,
) -> Result<Vec<stella_store::ArtifactRow>, Error> {
    let artifacts = state
        .store
        .catalog
        .artifacts(digest)
        .await
        .map_err(store_failure)?;
    if artifacts.is_empty() {
        return Err(Error::NotFound(format!("no scan of {digest} is stored")));
    }
    Ok(artifacts)
}

/// The bytes under a key the catalog lists; its absence is a store failure.
async fn object(state: &ApiState, key: &str) -> Result<warp::hyper::body::Bytes, Error> {
    state
        .store
        .get(key)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| {
            store_failure(stella_store::Error::MissingObject {
                key: key.to_string(),
            })
        })
}

/// A format by its catalog name or the seeds' short name.
fn sbom_format(text: &str) -> Result<SbomFormat, Error> {
    Ok(match text {
        "cyclonedx-json" | "cdx-json" => SbomFormat::CyclonedxJson,
        "cyclonedx-protobuf" | "cdx-pb" => SbomFormat::CyclonedxProtobuf,
        "spdx-json" => SbomFormat::SpdxJson,
        other => {
            return Err(Error::BadRequest(format!(
                "unsupported format {} (cyclonedx-json, cyclonedx-protobuf, spdx-json; or cdx-json, cdx-pb)",
                quoted(other)
            )));
        }
    })
}

pub(crate) fn sbom_view(text: &str) -> Result<SbomView, Error> {
    Ok(match text {
        "inventory" => SbomView::Inventory,
        "usage" => SbomView::Usage,
        other => {
            return Err(Error::BadRequest(format!(
                "unsupported view {} (inventory, usage)",
                quoted(other)
            )));
        }
    })
}

/// The catalog's name of a format or view (their kebab-case serde names).
fn label<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What the bytes are, for `content-type`.
fn media_type(format: SbomFormat) -> &'static str {
    match format {
        SbomFormat::CyclonedxJson => "application/vnd.cyclonedx+json; version=1.6",
        SbomFormat::CyclonedxProtobuf => "application/x.vnd.cyclonedx+protobuf; version=1.6",
        SbomFormat::SpdxJson => "application/spdx+json",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_views_use_the_catalog_names() {
        assert_eq!(label(&sbom_format("cdx-json").unwrap()), "cyclonedx-json");
        assert_eq!(label(&sbom_format("cdx-pb").unwrap()), "cyclonedx-protobuf");
        assert_eq!(label(&sbom_format("spdx-json").unwrap()), "spdx-json");
        assert_eq!(label(&sbom_view("usage").unwrap()), "usage");
        assert!(sbom_format("xml").is_err());
        assert!(sbom_view("all").is_err());
    }
}
