//! This is the Scan controller driver: it runs the dereference → validate → build → apply →
//! update_status pipeline for every Scan, and cleans up behind deleted ones (finalizer).
//! The decisions are in [`plan`], the Job shape in [`job`]; this module does the I/O.

pub mod job;
pub mod plan;

use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use plan::{Inputs, JobState, Limits, Observed, Outcome, Plan};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stella_crds::policy::v1alpha1::Policy;
use stella_crds::scan::v1alpha1::{Scan, ScanPhase};
use stella_store::Store;

/// The finalizer the controller puts on every Scan.
pub const FINALIZER: &str = "stella-ops.org/cleanup";
/// Field manager of status writes.
pub const MANAGER: &str = "stella-operator";
/// On Scans workload discovery created: pull secrets of the pods that run the image, as
/// `namespace/name` pairs (honoured only on discovery's own Scans in the operator namespace).
pub const ANNOTATION_PULL_SECRETS: &str = "stella-ops.org/pull-secrets";
/// Label of Scans workload discovery manages.
pub const LABEL_DISCOVERED: &str = "stella-ops.org/discovered";

/// Errors that stop a reconcile (retried with backoff); problems of the Scan itself are
/// written to its status instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action}: {source}")]
    Kube {
        action: &'static str,
        source: kube::Error,
    },
    #[error("catalog: {0}")]
    Store(#[from] stella_store::Error),
}

impl Error {
    /// The variant name: the metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "Kube",
            Error::Store(_) => "Store",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { action, source }
}

/// What to do with a deleted Scan's artifacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Keep catalog rows and objects (other Scans, the API and the CLI may still use them).
    Keep,
    /// Forget the image (rows and objects) when no other Scan refers to its digest.
    DeleteUnreferenced,
}

/// Shared state of the controller.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub store: Store,
    pub worker: job::WorkerSettings,
    pub limits: Limits,
    pub retention: Retention,
    /// Reconcile only the Scans of this namespace (all namespaces when `None`).
    pub watch_namespace: Option<String>,
    pub metrics: Arc<Metrics>,
    pub reporter: Reporter,
    /// Registry retry policy for digest resolution (tests shorten it).
    pub registry_retry: stella_acquire::registry::RetryPolicy,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("worker", &self.worker)
            .field("limits", &self.limits)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// Runs the Scan controller until `shutdown` resolves.
pub async fn run(
    ctx: Context,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // Guarded: one Scan our types cannot read (an older schema, a hand-edited object) is
    // reported and skipped instead of breaking the watch for every other Scan.
    let scans: Api<DeserializeGuard<Scan>> = match &ctx.watch_namespace {
        Some(namespace) => Api::namespaced(ctx.client.clone(), namespace),
        None => Api::all(ctx.client.clone()),
    };
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
    Controller::new(scans, watcher::Config::default())
        .watches(
            jobs,
            watcher::Config::default().labels(job::WORKER_SELECTOR),
            |job: Job| {
                let labels = job.metadata.labels.as_ref()?;
                let name = labels.get(job::LABEL_SCAN_NAME)?;
                let namespace = labels.get(job::LABEL_SCAN_NAMESPACE)?;
                Some(ObjectRef::new(name).within(namespace))
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::new(ctx))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "scan reconcile ended with an error");
            }
        })
        .await;
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn key(scan: &Scan) -> String {
    format!(
        "{}/{}",
        scan.namespace().unwrap_or_default(),
        scan.name_any()
    )
}

fn phase_name(phase: Option<ScanPhase>) -> Option<&'static str> {
    phase.map(|p| match p {
        ScanPhase::Pending => "Pending",
        ScanPhase::Resolving => "Resolving",
        ScanPhase::Scanning => "Scanning",
        ScanPhase::Completed => "Completed",
        ScanPhase::Failed => "Failed",
    })
}

/// One reconcile: cleanup for deleted Scans, otherwise the pipeline. A Scan that does not
/// deserialize is logged, counted (`error="InvalidObject"`) and left until it changes.
pub async fn reconcile(guard: Arc<DeserializeGuard<Scan>>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let scan = match &guard.0 {
        Ok(scan) => scan,
        Err(invalid) => {
            tracing::warn!(
                scan = %format!("{}/{}", invalid.metadata.namespace.as_deref().unwrap_or_default(), invalid.metadata.name.as_deref().unwrap_or_default()),
                error = %invalid.error,
                "skipping a Scan that does not deserialize"
            );
            ctx.metrics.reconciled("scan", started.elapsed());
            ctx.metrics.failed("scan", "InvalidObject");
            return Ok(Action::await_change());
        }
    };
    let result = reconcile_inner(scan, &ctx).await;
    ctx.metrics.reconciled("scan", started.elapsed());
    if let Err(error) = &result {
        ctx.metrics.failed("scan", error.kind());
    }
    result
}

async fn reconcile_inner(scan: &Scan, ctx: &Context) -> Result<Action> {
    let api: Api<Scan> = Api::namespaced(ctx.client.clone(), &scan.namespace().unwrap_or_default());
    if scan.metadata.deletion_timestamp.is_some() {
        if scan.finalizers().iter().any(|f| f == FINALIZER) {
            cleanup(scan, ctx).await?;
            remove_finalizer(&api, scan).await?;
        }
        ctx.metrics.scan_phase(&key(scan), None);
        return Ok(Action::await_change());
    }
    if !scan.finalizers().iter().any(|f| f == FINALIZER) {
        add_finalizer(&api, scan).await?;
    }
    let now = now();
    let outcome = match dereference(scan, ctx).await? {
        Dereferenced::Invalid {
            reason,
            message,
            retry,
        } => plan::invalid(scan, reason, &message, retry, &now),
        Dereferenced::Ok(deref) => {
            let plan = plan::decide(scan, &deref.observed, &ctx.limits, &now);
            let job_name = apply(scan, ctx, &deref, &plan).await?;
            plan::status(
                scan,
                &deref.observed,
                &plan,
                job_name.as_deref(),
                &ctx.limits,
                &now,
            )
        }
    };
    update_status(&api, scan, ctx, &outcome).await?;
    Ok(match outcome.requeue {
        Some(after) => Action::requeue(after.max(Duration::from_secs(1))),
        None => Action::await_change(),
    })
}

/// Transient failures back off; the status already says what is wrong with the Scan itself.
/// Reconcile failures also become Warning events on the Scan (reason from the error kind,
/// never from its text).
pub fn error_policy(
    guard: Arc<DeserializeGuard<Scan>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let name = format!(
        "{}/{}",
        guard.meta().namespace.as_deref().unwrap_or_default(),
        guard.meta().name.as_deref().unwrap_or_default()
    );
    tracing::warn!(%error, scan = %name, "reconcile failed");
    let event = Event {
        type_: EventType::Warning,
        reason: format!("ReconcileFailed{}", error.kind()),
        note: Some(error.to_string().chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference = guard.object_ref(&());
    tokio::spawn(async move {
        if let Err(error) = recorder.publish(&event, &reference).await {
            tracing::debug!(%error, "failed to record a reconcile failure event");
        }
    });
    Action::requeue(Duration::from_secs(15))
}

/// What dereference read.
struct Deref {
    observed: Observed,
    /// `repository@digest`, what the worker is told to scan.
    pinned_image: String,
    policy_json: Option<String>,
    /// Merged pull credentials, when the Scan has any.
    credentials: Option<Vec<u8>>,
}

enum Dereferenced {
    Ok(Box<Deref>),
    /// The Scan cannot be scanned as written (or a reference is missing): no Job; `retry` for
    /// references that may appear later.
    Invalid {
        reason: &'static str,
        message: String,
        retry: Option<Duration>,
    },
}

fn invalid(
    reason: &'static str,
    message: impl Into<String>,
    retry: Option<Duration>,
) -> Result<Dereferenced> {
    Ok(Dereferenced::Invalid {
        reason,
        message: message.into(),
        retry,
    })
}

/// Reads everything the decision needs: references (pull secrets, policy), the digest, the
/// Job of the current attempt, the catalog's rows and the running-Job count — and validates
/// the references on the way.
async fn dereference(scan: &Scan, ctx: &Context) -> Result<Dereferenced> {
    let namespace = scan.namespace().unwrap_or_default();
    let reference = match stella_acquire::Reference::parse(&scan.spec.image) {
        Ok(r) => r,
        Err(e) => return invalid("InvalidImage", e.to_string(), None),
    };
    let platform: stella_acquire::Platform = match scan
        .spec
        .platform
        .as_deref()
        .unwrap_or("linux/amd64")
        .parse()
    {
        Ok(p) => p,
        Err(e) => return invalid("InvalidSpec", format!("spec.platform: {e}"), None),
    };

    // Pull secrets: the Scan's own (its namespace), and for discovery's Scans those of the
    // pods that run the image.
    let mut secret_refs: Vec<(String, String)> = scan
        .spec
        .image_pull_secrets
        .iter()
        .map(|s| (namespace.clone(), s.name.clone()))
        .collect();
    let discovered = namespace == ctx.worker.namespace
        && scan.labels().get(LABEL_DISCOVERED).map(String::as_str) == Some("true");
    if discovered && let Some(list) = scan.annotations().get(ANNOTATION_PULL_SECRETS) {
        secret_refs.extend(list.split(',').filter_map(|pair| {
            let (ns, name) = pair.trim().split_once('/')?;
            Some((ns.to_string(), name.to_string()))
        }));
    }
    let mut payloads = Vec::new();
    for (ns, name) in &secret_refs {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
        let Some(secret) = secrets
            .get_opt(name)
            .await
            .map_err(kube("read a pull secret"))?
        else {
            return invalid(
                "SecretNotFound",
                format!("pull secret {ns}/{name} does not exist"),
                Some(Duration::from_secs(60)),
            );
        };
        let data = secret.data.unwrap_or_default();
        let Some(bytes) = data
            .get(".dockerconfigjson")
            .or_else(|| data.get(".dockercfg"))
        else {
            return invalid(
                "InvalidSecret",
                format!("pull secret {ns}/{name} holds no .dockerconfigjson"),
                Some(Duration::from_secs(60)),
            );
        };
        payloads.push((format!("{ns}/{name}"), bytes.0.clone()));
    }
    let credentials = if payloads.is_empty() {
        None
    } else {
        let borrowed: Vec<(&str, &[u8])> = payloads
            .iter()
            .map(|(o, b)| (o.as_str(), b.as_slice()))
            .collect();
        match job::merge_docker_configs(&borrowed) {
            Ok(merged) => Some(merged),
            Err(e) => return invalid("InvalidSecret", e, Some(Duration::from_secs(60))),
        }
    };

    // The policy, validated and digested as the worker will.
    let (policy_json, policy_digest) = match &scan.spec.policy_ref {
        None => (None, None),
        Some(name) => {
            let policies: Api<Policy> = Api::all(ctx.client.clone());
            let Some(policy) = policies
                .get_opt(name)
                .await
                .map_err(kube("read the policy"))?
            else {
                return invalid(
                    "PolicyNotFound",
                    format!("policy {name:?} does not exist"),
                    Some(Duration::from_secs(60)),
                );
            };
            let text = serde_json::to_string(&policy.spec).unwrap_or_default();
            match stella_policy::load_str(&text) {
                Ok(loaded) => (Some(text), Some(loaded.digest)),
                Err(issues) => {
                    return invalid(
                        "InvalidPolicy",
                        format!("policy {name:?}: {issues}"),
                        Some(Duration::from_secs(300)),
                    );
                }
            }
        }
    };

    // The Job of the current attempt.
    let status = scan.status.clone().unwrap_or_default();
    let (job, run) = match &status.job_name {
        Some(name) => {
            let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
            let job = jobs
                .get_opt(name)
                .await
                .map_err(kube("read the worker Job"))?;
            let state = job_state(job.as_ref());
            let mut run = ctx.store.catalog.run(name).await?;
            // The worker could not reach the catalog: its pod's termination message says why.
            if run.is_none() && matches!(state, JobState::Failed { .. } | JobState::Succeeded) {
                let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
                let list = pods
                    .list(&ListParams::default().labels(&format!("job-name={name}")))
                    .await
                    .map_err(kube("list the worker's pods"))?;
                run = plan::termination_report(name, &list.items);
            }
            (Some(state), run)
        }
        None => (None, None),
    };

    // The digest: while a Job runs, the one it scans; otherwise resolved now (tags move).
    let in_flight = status.phase == Some(ScanPhase::Scanning) && status.job_name.is_some();
    let digest = match (&status.image_digest, in_flight) {
        (Some(digest), true) => digest.clone(),
        _ => match resolve(
            ctx,
            &reference,
            &platform,
            credentials.as_deref(),
            scan.spec.insecure_registry,
        )
        .await
        {
            Ok(digest) => digest,
            Err((reason, message)) => {
                let attempts = status.attempts.max(1);
                return invalid(reason, message, Some(plan::backoff(attempts, &ctx.limits)));
            }
        },
    };
    let pinned_image = format!("{}@{digest}", reference.repository_url());

    let feed_snapshot = ctx.store.advisories.feed_snapshot().await?;
    let inputs = Inputs {
        analyzer_version: stella_analyzers::ANALYZER_VERSION.to_string(),
        feed_snapshot,
        policy_digest,
    };
    let catalog = &ctx.store.catalog;
    let cached = catalog
        .result(
            &digest,
            &inputs.analyzer_version,
            &inputs.feed_snapshot,
            inputs.policy_digest.as_deref(),
        )
        .await?;
    let latest = catalog.latest_result(&digest).await?;
    let artifacts = catalog.artifacts(&digest).await?;
    let running_jobs = running_jobs(ctx).await?;
    Ok(Dereferenced::Ok(Box::new(Deref {
        observed: Observed {
            digest,
            inputs,
            job,
            run,
            latest,
            cached,
            artifacts,
            running_jobs,
        },
        pinned_image,
        policy_json,
        credentials,
    })))
}

/// Resolves the image to its platform manifest digest at the registry. Failures are the
/// Scan's condition reasons.
async fn resolve(
    ctx: &Context,
    reference: &stella_acquire::Reference,
    platform: &stella_acquire::Platform,
    credentials: Option<&[u8]>,
    plain_http: bool,
) -> Result<String, (&'static str, String)> {
    use stella_acquire::Error as E;
    let mut creds = stella_acquire::Credentials::default();
    if let Some(bytes) = credentials {
        creds
            .merge(bytes, "imagePullSecrets")
            .map_err(|e| ("InvalidSecret", e.to_string()))?;
    }
    let client = stella_acquire::RegistryClient::new(creds, plain_http)
        .map_err(|e| ("Unreachable", e.to_string()))?
        .with_retry(ctx.registry_retry.clone());
    client
        .resolve(reference, platform)
        .await
        .map(|d| d.to_string())
        .map_err(|e| {
            let reason = match &e {
                E::Unreachable { .. } => "Unreachable",
                E::Auth { .. } => "Unauthorized",
                E::Registry { status: 404, .. } => "ImageNotFound",
                E::NoMatchingPlatform { .. } => "NoMatchingPlatform",
                E::Registry { .. } => "RegistryError",
                _ => "ResolveFailed",
            };
            (reason, format!("failed to resolve {}: {e}", reference))
        })
}

fn job_state(job: Option<&Job>) -> JobState {
    // A Job being deleted (kept only by finalizers, e.g. `orphan`) is as good as gone.
    let Some(job) = job.filter(|j| j.metadata.deletion_timestamp.is_none()) else {
        return JobState::Missing;
    };
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .cloned()
        .unwrap_or_default();
    for condition in &conditions {
        if condition.status != "True" {
            continue;
        }
        match condition.type_.as_str() {
            "Complete" => return JobState::Succeeded,
            "Failed" => {
                return JobState::Failed {
                    reason: condition.reason.clone().unwrap_or_default(),
                    message: condition.message.clone().unwrap_or_default(),
                };
            }
            _ => {}
        }
    }
    JobState::Running
}

/// Worker Jobs that are not finished: the only ones that hold a slot.
async fn running_jobs(ctx: &Context) -> Result<u32> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
    let list = jobs
        .list(&ListParams::default().labels(job::WORKER_SELECTOR))
        .await
        .map_err(kube("list worker Jobs"))?;
    let running = list
        .items
        .iter()
        .filter(|j| {
            j.metadata.deletion_timestamp.is_none() && job_state(Some(j)) == JobState::Running
        })
        .count();
    Ok(u32::try_from(running).unwrap_or(u32::MAX))
}

/// Creates the Job (and its credentials Secret) a `Create` plan asks for; returns its name.
async fn apply(scan: &Scan, ctx: &Context, deref: &Deref, plan: &Plan) -> Result<Option<String>> {
    let Plan::Create { attempt } = plan else {
        return Ok(None);
    };
    let attempt = job::Attempt {
        scan,
        pinned_image: deref.pinned_image.clone(),
        attempt: *attempt,
        policy: deref.policy_json.clone(),
        credentials: deref.credentials.is_some(),
    };
    let wanted = job::build(&attempt, &ctx.worker);
    let name = wanted.metadata.name.clone().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
    let created = match jobs.create(&PostParams::default(), &wanted).await {
        Ok(job) => job,
        // A previous reconcile created it and crashed before writing the status.
        Err(kube::Error::Api(status)) if status.code == 409 => jobs
            .get(&name)
            .await
            .map_err(kube("read the existing worker Job"))?,
        Err(e) => return Err(kube("create the worker Job")(e)),
    };
    if let Some(merged) = &deref.credentials {
        let secret = job::credentials_secret(&created, merged.clone());
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => return Err(kube("create the worker's credentials Secret")(e)),
        }
    }
    tracing::info!(scan = %key(scan), job = %name, image = %deref.pinned_image, "created worker Job");
    Ok(Some(name))
}

/// Writes the status (server-side apply under [`MANAGER`]) and the transition's Event.
async fn update_status(
    api: &Api<Scan>,
    scan: &Scan,
    ctx: &Context,
    outcome: &Outcome,
) -> Result<()> {
    ctx.metrics
        .scan_phase(&key(scan), phase_name(outcome.status.phase));
    if scan.status.as_ref() != Some(&outcome.status) {
        let patch = serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1",
            "kind": "Scan",
            "status": outcome.status,
        });
        api.patch_status(
            &scan.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(kube("write the Scan status"))?;
    }
    if let Some((warning, reason, note)) = &outcome.event {
        let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
        let event = Event {
            type_: if *warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: (*reason).to_string(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, &scan.object_ref(&())).await {
            tracing::warn!(%error, scan = %key(scan), "failed to record an event");
        }
    }
    Ok(())
}

async fn add_finalizer(api: &Api<Scan>, scan: &Scan) -> Result<()> {
    let mut finalizers = scan.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch = serde_json::json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": scan.resource_version()},
    });
    api.patch(
        &scan.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(kube("add the finalizer"))?;
    Ok(())
}

async fn remove_finalizer(api: &Api<Scan>, scan: &Scan) -> Result<()> {
    let finalizers: Vec<&String> = scan
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    let patch = serde_json::json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": scan.resource_version()},
    });
    match api
        .patch(
            &scan.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(kube("remove the finalizer")(e)),
    }
}

/// Deletes the Scan's worker Jobs (their credentials Secrets go with them: owner reference;
/// deleted explicitly too, as a cluster without a garbage collector would keep them), and
/// what retention says to forget.
async fn cleanup(scan: &Scan, ctx: &Context) -> Result<()> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.worker.namespace);
    let uid = scan.uid().unwrap_or_default();
    let selector = format!("{},{}={uid}", job::WORKER_SELECTOR, job::LABEL_SCAN_UID);
    let list = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube("list the Scan's Jobs"))?;
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
                Err(e) => return Err(kube("delete a worker Job")(e)),
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
            .map_err(kube("list Scans"))?;
        let referenced = others.items.iter().any(|other| {
            other.uid() != scan.uid()
                && other
                    .status
                    .as_ref()
                    .and_then(|s| s.image_digest.as_deref())
                    == Some(digest.as_str())
        });
        if !referenced {
            let removed = ctx.store.forget_image(&digest).await?;
            tracing::info!(scan = %key(scan), %digest, objects = removed, "forgot the image (retention)");
        }
    }
    tracing::info!(scan = %key(scan), "cleaned up");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scan_that_does_not_deserialize_is_skipped_without_touching_the_cluster() {
        let dir = tempfile::tempdir().unwrap();
        // A client for an address where nothing listens: any request would fail the test.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let ctx = Context {
            client: Client::try_from(config).unwrap(),
            store: Store::open_embedded(dir.path()).await.unwrap(),
            worker: job::WorkerSettings {
                namespace: "stella-system".into(),
                image: "w".into(),
                service_account: "stella-worker".into(),
                backoff_limit: 2,
                active_deadline_seconds: 60,
                ttl_seconds_after_finished: 60,
                cpu_request: "1".into(),
                cpu_limit: "1".into(),
                memory_request: "1Gi".into(),
                memory_limit: "1Gi".into(),
                storage_secret: None,
            },
            limits: Limits {
                max_concurrent: 1,
                retry_base: Duration::from_secs(1),
                retry_max: Duration::from_secs(1),
                resync: Duration::from_secs(1),
            },
            retention: Retention::Keep,
            watch_namespace: None,
            metrics: Arc::new(Metrics::default()),
            reporter: Reporter {
                controller: "test".into(),
                instance: None,
            },
            registry_retry: Default::default(),
        };
        let guard: DeserializeGuard<Scan> = serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": "broken", "namespace": "shop"},
            "spec": {"image": 42, "views": "not-a-list"},
        }))
        .unwrap();
        assert!(guard.0.is_err());
        let action = reconcile(Arc::new(guard), Arc::new(ctx.clone()))
            .await
            .unwrap();
        assert_eq!(action, Action::await_change());
        assert!(ctx.metrics.render().contains(
            "stella_reconcile_failures_total{controller=\"scan\",error=\"InvalidObject\"} 1\n"
        ));
    }
}
