//! The admission server: `POST /validate` over TLS answers AdmissionReviews. A request is
//! parsed (malformed → HTTP 400), the Policies governing its namespace are found, and every
//! new image is decided — exemptions first (no I/O), then digest, verdict, signatures, and a
//! requested Scan, gathered concurrently — all under a hard deadline, past which the answer is
//! each policy's `onError` choice while the lookups finish in the background to warm the
//! caches. Every answer is counted and recorded as a `zastava.admission` event.

use crate::decide::{self, Decision, Facts, Outcome, Reason};
use crate::events::{self, Event, Events, ImageRecord};
use crate::metrics::Metrics;
use crate::policy::{Governing, PolicySet};
use crate::registry::{PullSecrets, Registries};
use crate::review::{self, Request, Response};
use crate::verdicts::Verdicts;
use crate::workload::{ContainerImage, ContainerKind};
use bytes::Bytes;
use k8s_openapi::api::core::v1::Namespace;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use stella_crds::policy::v1alpha1::UnscannedAction;
use warp::Filter;
use warp::http::StatusCode;

/// At most this many warnings per answer.
const MAX_WARNINGS: usize = 8;
/// At most this many distinct images decided per request.
const MAX_IMAGES: usize = 64;

/// Settings of the decision.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Answer by then, whatever is still pending.
    pub deadline: Duration,
    /// `false` (`--mode=dry-run`): no Policy can deny; its denials become warnings.
    pub cap_enforce: bool,
    /// With `--mode=enforce`, only namespaces matching this selector are enforced; the others
    /// stay in dry-run.
    pub enforce_selector: Option<stella_model::selector::LabelSelector>,
    /// Where requested Scans go (the operator's namespace).
    pub scan_namespace: String,
    /// Registries reached over plain HTTP (requested Scans say so too).
    pub insecure_registries: Vec<String>,
}

/// Namespace labels, for Policies' namespace selectors.
#[derive(Clone)]
pub enum Namespaces {
    Watched(kube::runtime::reflector::Store<Namespace>),
    Fixed(BTreeMap<String, BTreeMap<String, String>>),
}

impl std::fmt::Debug for Namespaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Namespaces::Watched(_) => "Namespaces::Watched",
            Namespaces::Fixed(_) => "Namespaces::Fixed",
        })
    }
}

/// Everything a request needs.
pub struct State {
    pub settings: Settings,
    pub policies: RwLock<Arc<PolicySet>>,
    pub namespaces: Namespaces,
    pub kube: Option<kube::Client>,
    pub verdicts: Verdicts,
    pub registries: Registries,
    pub metrics: Arc<Metrics>,
    pub events: Events,
    /// Policies listed and a certificate loaded.
    pub ready: AtomicBool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("settings", &self.settings)
            .field("namespaces", &self.namespaces)
            .finish()
    }
}

impl State {
    pub fn set_policies(&self, set: PolicySet) {
        *self.policies.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    fn policy_set(&self) -> Arc<PolicySet> {
        self.policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn labels(&self, namespace: &str) -> BTreeMap<String, String> {
        match &self.namespaces {
            Namespaces::Fixed(map) => map.get(namespace).cloned().unwrap_or_default(),
            Namespaces::Watched(store) => {
                let key = kube::runtime::reflector::ObjectRef::<Namespace>::new(namespace);
                if let Some(ns) = store.get(&key) {
                    return ns.metadata.labels.clone().unwrap_or_default();
                }
                // A namespace created a moment ago may not be in the cache yet.
                let Some(client) = &self.kube else {
                    return BTreeMap::new();
                };
                let api: kube::Api<Namespace> = kube::Api::all(client.clone());
                match tokio::time::timeout(Duration::from_millis(500), api.get_opt(namespace)).await
                {
                    Ok(Ok(Some(ns))) => ns.metadata.labels.unwrap_or_default(),
                    _ => BTreeMap::new(),
                }
            }
        }
    }
}

/// One image's outcome.
#[derive(Clone, Debug)]
struct ImageResult {
    image: ContainerImage,
    digest: Option<String>,
    verdict: Option<String>,
    policy: Option<String>,
    decision: Decision,
}

fn kind_str(kind: ContainerKind) -> &'static str {
    match kind {
        ContainerKind::Init => "init",
        ContainerKind::Container => "container",
        ContainerKind::Ephemeral => "ephemeral",
    }
}

/// The strictest of each policy's decision, and the policy that made it.
fn strictest(decisions: Vec<(String, Decision)>) -> (Option<String>, Decision) {
    let mut best: Option<(String, Decision)> = None;
    for (policy, d) in decisions {
        best = Some(match best {
            None => (policy, d),
            Some((bp, bd)) => {
                let outcome = bd.outcome;
                let merged = decide::stricter(bd, d.clone());
                let who = if d.outcome > outcome { policy } else { bp };
                (who, merged)
            }
        });
    }
    match best {
        Some((p, d)) => (Some(p), d),
        None => (
            None,
            Decision {
                outcome: Outcome::Allow,
                reason: Reason::NotGoverned,
                message: String::new(),
            },
        ),
    }
}

/// Decides one image under every governing policy.
async fn decide_image(
    state: &State,
    policies: &[Arc<Governing>],
    image: ContainerImage,
    namespace: &str,
    secrets: &PullSecrets,
    dry_run: bool,
    cap_enforce: bool,
) -> ImageResult {
    let now = chrono::Utc::now();
    let mut decisions = Vec::new();
    let mut needing = Vec::new();
    for g in policies {
        match decide::exempt(g, namespace, &image.image, now) {
            Some(d) => decisions.push((g.policy.clone(), d)),
            None => needing.push(g.clone()),
        }
    }
    let mut facts = Facts::default();
    let mut verdict_label = None;
    if !needing.is_empty() {
        let ttl = needing
            .iter()
            .map(|g| g.config.digest_cache_ttl_seconds)
            .min()
            .unwrap_or(0);
        let resolved = state
            .registries
            .resolve(&image.image, Duration::from_secs(ttl.into()), secrets)
            .await
            .map_err(|e| e.to_string());
        if let Ok(digest) = &resolved {
            let wants_signatures = needing.iter().any(|g| g.config.signatures.is_some());
            let mut predicates: Vec<_> = needing
                .iter()
                .filter_map(|g| g.config.require_attestation.as_ref().map(|r| r.predicate))
                .collect();
            predicates.dedup();
            let envelopes = futures::future::join_all(predicates.iter().map(|p| async {
                let found = state.verdicts.envelope(digest, *p).await;
                (*p, found.map_err(|e| e.to_string()))
            }));
            let (verdict, signatures, attestations) = tokio::join!(
                state.verdicts.lookup(digest),
                async {
                    if wants_signatures {
                        Some(
                            state
                                .registries
                                .signatures(&image.image, digest, secrets)
                                .await
                                .map_err(|e| e.to_string()),
                        )
                    } else {
                        None
                    }
                },
                envelopes
            );
            facts.attestations = attestations;
            facts.now = Some(now);
            let verdict = verdict.map_err(|e| e.to_string());
            let unscanned =
                matches!(&verdict, Ok(v) if v.as_ref().and_then(|v| v.verdict.as_ref()).is_none());
            if let Ok(Some(v)) = &verdict {
                verdict_label = v.verdict.clone();
            }
            let scanner = needing
                .iter()
                .find(|g| g.config.unscanned == UnscannedAction::ScanAndDeny);
            if unscanned && let Some(g) = scanner {
                facts.scan =
                    Some(request_scan(state, g, &image.image, digest, secrets, dry_run).await);
            }
            facts.verdict = Some(verdict);
            facts.signatures = signatures;
        }
        facts.digest = Some(resolved);
        for g in &needing {
            decisions.push((
                g.policy.clone(),
                decide::decide(g, &image, &facts, cap_enforce),
            ));
        }
    }
    let (policy, decision) = strictest(decisions);
    ImageResult {
        digest: facts.digest.and_then(Result::ok),
        verdict: verdict_label,
        policy,
        image,
        decision,
    }
}

async fn request_scan(
    state: &State,
    g: &Governing,
    image: &str,
    digest: &str,
    secrets: &PullSecrets,
    dry_run: bool,
) -> Result<String, String> {
    let name = crate::scans::scan_name(digest).ok_or("not a sha256 digest")?;
    let shown = format!("{}/{name}", state.settings.scan_namespace);
    if dry_run {
        // A server-side dry run has no side effects (sideEffects: NoneOnDryRun).
        return Ok(shown);
    }
    let Some(client) = &state.kube else {
        return Err("no API server client".into());
    };
    let registry = stella_acquire::Reference::parse(image)
        .map(|r| r.registry)
        .unwrap_or_default();
    let pull: Vec<(String, String)> = secrets
        .names
        .iter()
        .map(|n| (secrets.namespace.clone(), n.clone()))
        .collect();
    let scan = crate::scans::desired_scan(
        &state.settings.scan_namespace,
        image,
        digest,
        &pull,
        Some(&g.policy),
        state.settings.insecure_registries.contains(&registry),
    )
    .ok_or("cannot name a Scan for this image")?;
    let created = crate::scans::request(client, &scan).await;
    state.verdicts.forget(digest);
    created.map_err(|e| e.to_string())
}

/// What evaluation produced.
#[derive(Debug)]
struct Evaluation {
    images: Vec<ImageResult>,
    reason: Reason,
}

async fn evaluate(
    state: Arc<State>,
    request: Arc<Request>,
    policies: Vec<Arc<Governing>>,
    cap_enforce: bool,
) -> Evaluation {
    let namespace = request.namespace.clone().unwrap_or_default();
    let (images, pull_secrets) = match request.workload() {
        Ok(w) => w,
        Err(error) => {
            return failed_whole(
                cap_enforce,
                &policies,
                &request,
                Reason::Undecodable,
                &format!("cannot read its images: {error}"),
            );
        }
    };
    let secrets = PullSecrets::new(state.kube.clone(), namespace.clone(), pull_secrets);
    let mut distinct: Vec<ContainerImage> = Vec::new();
    for image in images {
        if !distinct.iter().any(|d| d.image == image.image) && distinct.len() < MAX_IMAGES {
            distinct.push(image);
        }
    }
    let dry_run = request.dry_run.unwrap_or(false);
    let results = futures::future::join_all(distinct.into_iter().map(|image| {
        decide_image(
            &state,
            &policies,
            image,
            &namespace,
            &secrets,
            dry_run,
            cap_enforce,
        )
    }))
    .await;
    let reason = results
        .iter()
        .map(|r| &r.decision)
        .max_by_key(|d| (d.outcome, d.reason != Reason::Pass))
        .map(|d| d.reason)
        .unwrap_or(Reason::NotGoverned);
    Evaluation {
        images: results,
        reason,
    }
}

/// Answers one review body: the response JSON, or an HTTP error status and message.
pub async fn admit(state: Arc<State>, body: Bytes) -> Result<Vec<u8>, (StatusCode, String)> {
    let started = Instant::now();
    let request = review::parse(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let request = Arc::new(request);
    let namespace = request.namespace.clone().unwrap_or_default();
    let operation_checked = matches!(request.operation.as_str(), "CREATE" | "UPDATE");
    let (policies, cap_enforce) = if operation_checked {
        let labels = state.labels(&namespace).await;
        let cap = state.settings.cap_enforce
            && state
                .settings
                .enforce_selector
                .as_ref()
                .is_none_or(|s| crate::policy::selector_matches(s, &labels));
        (state.policy_set().governing(&labels), cap)
    } else {
        (Vec::new(), false)
    };
    let evaluation = if policies.is_empty() {
        Evaluation {
            images: vec![],
            reason: Reason::NotGoverned,
        }
    } else {
        let task = tokio::spawn(evaluate(
            state.clone(),
            request.clone(),
            policies.clone(),
            cap_enforce,
        ));
        match tokio::time::timeout(state.settings.deadline, task).await {
            Ok(Ok(evaluation)) => evaluation,
            Ok(Err(join)) => {
                tracing::error!(error = %join, uid = %request.uid, "admission evaluation failed");
                failed_whole(
                    cap_enforce,
                    &policies,
                    &request,
                    Reason::Deadline,
                    "the decision failed internally",
                )
            }
            Err(_) => failed_whole(
                cap_enforce,
                &policies,
                &request,
                Reason::Deadline,
                &format!(
                    "no decision within {} ms (registry or catalog slow)",
                    state.settings.deadline.as_millis()
                ),
            ),
        }
    };
    let response = respond(&request, &evaluation);
    let decision = if !response.allowed {
        Outcome::Deny
    } else if response.warnings.is_empty() {
        Outcome::Allow
    } else {
        Outcome::Warn
    };
    let elapsed = started.elapsed();
    state.metrics.decided(
        &namespace,
        decision.as_str(),
        evaluation.reason.as_str(),
        elapsed,
    );
    state.events.record(Event {
        kind: "zastava.admission",
        event_id: events::event_id(),
        ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        uid: request.uid.clone(),
        namespace: namespace.clone(),
        operation: request.operation.clone(),
        object_kind: request.kind.kind.clone(),
        object_name: request.object_name(),
        dry_run: request.dry_run.unwrap_or(false),
        decision: decision.as_str(),
        reason: evaluation.reason.as_str(),
        policies: policies.iter().map(|g| g.policy.clone()).collect(),
        images: evaluation
            .images
            .iter()
            .map(|r| ImageRecord {
                container: r.image.container.clone(),
                container_kind: kind_str(r.image.kind),
                image: r.image.image.clone(),
                digest: r.digest.clone(),
                verdict: r.verdict.clone(),
                policy: r.policy.clone(),
                decision: r.decision.outcome.as_str(),
                reason: r.decision.reason.as_str(),
                message: r.decision.message.clone(),
            })
            .collect(),
        latency_ms: elapsed.as_secs_f64() * 1000.0,
    });
    if decision != Outcome::Allow {
        tracing::info!(uid = %request.uid, object = %request.object_name(), decision = decision.as_str(), reason = evaluation.reason.as_str(), "admission");
    }
    Ok(response.to_json())
}

/// The answer for a request that fails as a whole (its images cannot be read, or the
/// deadline passed): each governing Policy's `onError`, the strictest winning.
fn failed_whole(
    cap_enforce: bool,
    policies: &[Arc<Governing>],
    request: &Request,
    reason: Reason,
    what: &str,
) -> Evaluation {
    let what = format!("{} {}: {what}", request.kind.kind, request.object_name());
    let decisions = policies
        .iter()
        .map(|g| {
            (
                g.policy.clone(),
                decide::on_error(g, cap_enforce, reason, &what),
            )
        })
        .collect();
    let (policy, decision) = strictest(decisions);
    Evaluation {
        reason: decision.reason,
        images: vec![ImageResult {
            image: ContainerImage {
                kind: ContainerKind::Container,
                container: String::new(),
                image: String::new(),
            },
            digest: None,
            verdict: None,
            policy,
            decision,
        }],
    }
}

fn respond(request: &Request, evaluation: &Evaluation) -> Response {
    let denials: Vec<&str> = evaluation
        .images
        .iter()
        .filter(|r| r.decision.outcome == Outcome::Deny)
        .map(|r| r.decision.message.as_str())
        .collect();
    let mut warnings: Vec<String> = evaluation
        .images
        .iter()
        .filter(|r| r.decision.outcome == Outcome::Warn)
        .map(|r| format!("stella-ops: {}", r.decision.message))
        .collect();
    if warnings.len() > MAX_WARNINGS {
        let more = warnings.len() - MAX_WARNINGS + 1;
        warnings.truncate(MAX_WARNINGS - 1);
        warnings.push(format!(
            "stella-ops: {more} more warnings (see the zastava.admission event {})",
            request.uid
        ));
    }
    Response {
        uid: request.uid.clone(),
        allowed: denials.is_empty(),
        message: (!denials.is_empty()).then(|| denials.join("; ")),
        warnings,
    }
}

fn error_reply(status: StatusCode, message: &str) -> warp::reply::Response {
    let body = serde_json::json!({"error": message, "code": status.as_u16()}).to_string();
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap_or_else(|_| warp::reply::Response::new("internal error".into()))
}

/// The admission routes (served over TLS): `POST /validate`.
pub fn admission_routes(state: Arc<State>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let validate = warp::path("validate")
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(review::MAX_BODY))
        .and(warp::body::bytes())
        .and(with_state)
        .then(|body: Bytes, state: Arc<State>| async move {
            match admit(state.clone(), body).await {
                Ok(json) => http::Response::builder()
                    .header("content-type", "application/json")
                    .body(json.into())
                    .unwrap_or_else(|_| error_reply(StatusCode::INTERNAL_SERVER_ERROR, "response")),
                Err((status, message)) => {
                    state.metrics.rejected(status.as_u16());
                    error_reply(status, &message)
                }
            }
        });
    validate
        .recover(move |rejection: warp::Rejection| {
            let state = state.clone();
            async move {
                let (status, message) = if rejection.is_not_found() {
                    (StatusCode::NOT_FOUND, "not found".to_string())
                } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
                    (
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the body exceeds {} bytes", review::MAX_BODY),
                    )
                } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
                    (
                        StatusCode::LENGTH_REQUIRED,
                        "content-length required".to_string(),
                    )
                } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
                    (
                        StatusCode::METHOD_NOT_ALLOWED,
                        "POST an AdmissionReview".to_string(),
                    )
                } else {
                    (StatusCode::BAD_REQUEST, format!("{rejection:?}"))
                };
                state.metrics.rejected(status.as_u16());
                Ok::<_, Infallible>(error_reply(status, &message))
            }
        })
        .unify()
        .boxed()
}

/// The plain-HTTP probe and metrics routes: `/healthz`, `/readyz`, `/metrics`.
pub fn ops_routes(state: Arc<State>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .map(|| warp::reply::Response::new("ok".into()));
    let ready_state = state.clone();
    let readyz = warp::path("readyz").and(warp::path::end()).map(move || {
        if ready_state.ready.load(Ordering::Relaxed) {
            warp::reply::Response::new("ok".into())
        } else {
            error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "policies not listed or no certificate yet",
            )
        }
    });
    let metrics = warp::path("metrics").and(warp::path::end()).map(move || {
        http::Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(state.metrics.render().into())
            .unwrap_or_else(|_| error_reply(StatusCode::INTERNAL_SERVER_ERROR, "metrics"))
    });
    warp::get()
        .and(healthz.or(readyz).unify().or(metrics).unify())
        .boxed()
}

/// Serves `routes` over TLS on `listener` until `shutdown` resolves.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    routes: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(warp::service(routes.clone()));
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, %peer, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(error) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests;
