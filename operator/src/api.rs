//! The REST API under `/api/v1/scanner` (seeds §4): the read/act surface that does not fit the
//! CRDs. `GET scans/{namespace}/{name}`, `GET sboms/{digest}?format=&view=`,
//! `GET diff?old=&new=&view=`, `POST reports`, `GET catalog/artifacts/{key}`; beside it the
//! scheduler's `GET /api/v1/scheduler/runs/{id}`, `runs?schedule=`, `cursor` and the feeds'
//! `GET /api/v1/feeds` ([`scheduler`]); Notify's `GET /api/v1/notify/deliveries` and `POST
//! /api/v1/notify/test` ([`notify`]).
//!
//! Every request is authenticated and authorised the Kubernetes way ([`auth`]): the bearer
//! token goes to a `TokenReview`, the user it names to a `SubjectAccessReview` on our own
//! resources (group `stella-ops.org`). Digest-addressed reads need `get scans` at the cluster
//! scope (an image's results are not confined to a namespace), a Scan needs `get scans` in
//! its namespace, a report needs `create scans` at the cluster scope (and `get policies` on
//! the policy it names). Failures are JSON `{"error":{"code":"…","message":"…"}}` with the
//! stable codes of [`Error::code`].
//!
//! The handlers are thin: validate the input ([`input`]), authorise, read the catalog and the
//! object store, and hand the domain work to the libraries (`stella-sbom`'s diff, the
//! pipeline's evaluation) exactly as the `stella` CLI does.

mod auth;
mod diff;
mod input;
mod notify;
mod reads;
mod reports;
mod scheduler;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use warp::Filter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

/// Where the API is mounted.
pub const PREFIX: &str = "/api/v1/scanner";
/// Largest request body accepted (`POST reports`).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Catalog kind of an image's canonical inventory: `stella-sbom`'s `Inventory` as JSON (what
/// `stella diff` and the policy evaluation read). Diff and reports need it; an image whose
/// artifacts lack it answers 404.
pub use stella_store::INVENTORY_KIND;
/// How long a token review or an access decision is reused.
pub const REVIEW_TTL: Duration = Duration::from_secs(10);
/// Most tokens (and, separately, access decisions) remembered at once.
pub const REVIEW_CACHE_ENTRIES: usize = 4096;

/// What the handlers share: the API server client (reviews, Scans, Policies), the store and
/// the review caches.
#[derive(Clone)]
pub struct ApiState {
    client: kube::Client,
    store: stella_store::Store,
    reviews: Arc<auth::Reviews>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store)
            .field("reviews", &self.reviews)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// Serves results from `store`, reviewing callers' tokens with `client` (which needs
    /// `create` on `tokenreviews` and `subjectaccessreviews`, and `get` on `scans` and
    /// `policies`).
    pub fn new(client: kube::Client, store: stella_store::Store) -> ApiState {
        ApiState {
            reviews: Arc::new(auth::Reviews::new(
                client.clone(),
                REVIEW_TTL,
                REVIEW_CACHE_ENTRIES,
            )),
            client,
            store,
        }
    }

    /// Reuses review results for `ttl`, remembering at most `entries` tokens (and as many
    /// decisions). Defaults: [`REVIEW_TTL`], [`REVIEW_CACHE_ENTRIES`].
    pub fn with_review_cache(mut self, ttl: Duration, entries: usize) -> ApiState {
        self.reviews = Arc::new(auth::Reviews::new(self.client.clone(), ttl, entries));
        self
    }
}

/// The API under [`PREFIX`]. It answers every request: mount it after the other routes
/// (`healthz.or(readyz).or(metrics).or(api::routes(state))`); paths outside the API get a JSON
/// 404.
pub fn routes(
    state: ApiState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    let state = warp::any().map(move || state.clone());
    let authorization = warp::header::headers_cloned().map(|headers: warp::http::HeaderMap| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    // A query string that does not decode is answered after authentication, as a 400.
    let query = warp::query::<Vec<(String, String)>>()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();

    let scans = warp::path!("scans" / String / String)
        .and(warp::get())
        .and(authorization)
        .and(state.clone())
        .then(reads::scan);
    let sboms = warp::path!("sboms" / String)
        .and(warp::get())
        .and(query)
        .and(authorization)
        .and(state.clone())
        .then(reads::sbom);
    let artifacts = warp::path!("catalog" / "artifacts" / ..)
        .and(warp::path::tail())
        .and(warp::get())
        .and(authorization)
        .and(state.clone())
        .then(reads::artifact);
    let diff = warp::path!("diff")
        .and(warp::get())
        .and(query)
        .and(authorization)
        .and(state.clone())
        .then(diff::diff);
    let reports = warp::path!("reports")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(authorization)
        .and(state.clone())
        .then(reports::report);
    let run = warp::path!("runs" / String)
        .and(warp::get())
        .and(authorization)
        .and(state.clone())
        .then(scheduler::run);
    let runs = warp::path!("runs")
        .and(warp::get())
        .and(query)
        .and(authorization)
        .and(state.clone())
        .then(scheduler::runs);
    let cursor = warp::path!("cursor")
        .and(warp::get())
        .and(authorization)
        .and(state.clone())
        .then(scheduler::cursor);
    let feeds = warp::path!("api" / "v1" / "feeds")
        .and(warp::get())
        .and(authorization)
        .and(state.clone())
        .then(scheduler::feeds);
    let deliveries = warp::path!("deliveries")
        .and(warp::get())
        .and(query)
        .and(authorization)
        .and(state.clone())
        .then(notify::deliveries);
    let notify_test = warp::path!("test")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(authorization)
        .and(state)
        .then(notify::test);

    warp::path!("api" / "v1" / "scanner" / ..)
        .and(
            scans
                .or(sboms)
                .unify()
                .or(artifacts)
                .unify()
                .or(diff)
                .unify()
                .or(reports)
                .unify(),
        )
        .or(warp::path!("api" / "v1" / "scheduler" / ..)
            .and(run.or(runs).unify().or(cursor).unify()))
        .unify()
        .or(feeds)
        .unify()
        .or(warp::path!("api" / "v1" / "notify" / ..).and(deliveries.or(notify_test).unify()))
        .unify()
        .recover(rejection)
        .unify()
}

/// Why a request failed; each variant has a stable [`code`](Error::code) and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 401: no bearer token, or one the API server does not accept.
    Unauthenticated(String),
    /// 403: the SubjectAccessReview denied the request.
    Forbidden(String),
    /// 404: no such endpoint, scan, image, artifact or policy.
    NotFound(String),
    /// 400: malformed input (digest, name, query, body).
    BadRequest(String),
    /// 405: the endpoint exists but not for this method.
    MethodNotAllowed,
    /// 413: the request body exceeds [`MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// 409: the request conflicts with the cluster's state (a policy pinned at another
    /// digest, a policy that does not load).
    Conflict(String),
    /// 502: a channel's receiver did not take a test message (`retryable`: a later attempt
    /// may succeed).
    DeliveryFailed { message: String, retryable: bool },
    /// 503: the API server, the catalog or the object store failed; retry later.
    Unavailable(String),
    /// 500: a bug or corrupt stored data.
    Internal(String),
}

impl Error {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::BadRequest(_) => "bad_request",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::PayloadTooLarge => "payload_too_large",
            Error::Conflict(_) => "conflict",
            Error::DeliveryFailed { .. } => "delivery_failed",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::DeliveryFailed { .. } => StatusCode::BAD_GATEWAY,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "error": {"code": self.code(), "message": self.to_string()}
        });
        if let Error::DeliveryFailed { retryable, .. } = &self {
            body["error"]["retryable"] = (*retryable).into();
        }
        let mut response = json_response(self.status(), body.to_string());
        if let Error::Unauthenticated(_) = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"stella-ops\""),
            );
        }
        response
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unauthenticated(m)
            | Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::BadRequest(m)
            | Error::Conflict(m)
            | Error::Unavailable(m)
            | Error::Internal(m)
            | Error::DeliveryFailed { message: m, .. } => f.write_str(m),
            Error::MethodNotAllowed => f.write_str("method not allowed on this endpoint"),
            Error::PayloadTooLarge => write!(f, "the request body exceeds {MAX_BODY_BYTES} bytes"),
        }
    }
}

impl std::error::Error for Error {}

/// A handler's outcome as a response.
fn respond(result: Result<Response, Error>) -> Response {
    result.unwrap_or_else(Error::into_response)
}

/// `body` with `content-type: application/json`.
fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A catalog or object-store failure: logged with its cause, answered without it.
fn store_failure(error: stella_store::Error) -> Error {
    tracing::warn!(%error, "the catalog or the object store failed");
    Error::Unavailable("the catalog or the object store is unavailable".into())
}

/// An API server failure: logged with its cause, answered without it.
fn api_server_failure(what: &str, error: kube::Error) -> Error {
    tracing::warn!(%error, what, "the Kubernetes API server failed");
    Error::Unavailable(format!("the Kubernetes API server is unavailable ({what})"))
}

/// What warp itself rejected: unknown paths, wrong methods.
async fn rejection(rejection: warp::Rejection) -> Result<Response, Infallible> {
    let error = if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Error::MethodNotAllowed
    } else if rejection.is_not_found() {
        Error::NotFound(format!("no such endpoint (the API is under {PREFIX})"))
    } else {
        tracing::warn!(?rejection, "unexpected rejection");
        Error::Internal("the request could not be routed".into())
    };
    Ok(error.into_response())
}
