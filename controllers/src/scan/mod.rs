//! This is the Scan controller driver: it runs the dereference → validate → observe → build →
//! apply → update_status pipeline for every Scan, inside kube-runtime's `finalizer()` (whose
//! `Cleanup` arm cleans up behind deleted Scans), and `error_policy` backs off failed ones.
//! One file per step; the decisions are in [`plan`], the Job shape in [`job`].

pub mod apply;
pub mod attest;
pub mod build;
pub mod cleanup;
pub mod dereference;
pub mod error;
pub mod events;
#[cfg(test)]
mod fixtures;
pub mod job;
pub mod observe;
pub mod plan;
pub mod reevaluate;
pub mod status;
pub mod validate;

pub use error::{Error, Result};

use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use observe::Observation;
use plan::Limits;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stella_crds::policy::v1alpha1::Policy;
use stella_crds::scan::v1alpha1::Scan;
use stella_store::Store;

/// The finalizer the controller puts on every Scan.
pub const FINALIZER: &str = "stella-ops.org/cleanup";
/// Field manager of status writes.
pub const MANAGER: &str = "stella-operator";
/// The discovered-Scan label and pull-secret annotation (`stella_crds::discovered`).
pub use stella_crds::discovered::{ANNOTATION_PULL_SECRETS, LABEL_DISCOVERED};

/// What to do with a deleted Scan's artifacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Keep catalog rows and objects (other Scans, the API and the CLI may still use them).
    Keep,
    /// Forget the image (rows and objects) when no other Scan refers to its digest.
    DeleteUnreferenced,
}

/// Settings and clients of the controller.
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
    /// How often the catalog's feed snapshot is read; when it changed, every Scan is looked
    /// at again (the Completed ones re-evaluated from their stored inventories). `None`: only
    /// at the resync.
    pub feed_poll: Option<Duration>,
    /// What re-evaluations under one feed snapshot share (advisories per package, VEX, KEV /
    /// EPSS), read once per snapshot.
    pub evaluations: Arc<stella_pipeline::EvaluationCache>,
    /// The operator's own signing key (a PKCS#11 token's), for Scans with `spec.attest` and
    /// no `signingKeySecretRef`.
    pub signer: Option<Arc<dyn stella_attest::Signer>>,
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

/// What `reconcile` and `error_policy` share while the controller runs: the [`Context`], and
/// per Scan the failures in a row that `error_policy` backs off by (reset on a success).
#[derive(Debug)]
pub struct Shared {
    pub ctx: Context,
    failures: Mutex<HashMap<ObjectRef<DeserializeGuard<Scan>>, u32>>,
}

impl Shared {
    pub fn new(ctx: Context) -> Shared {
        Shared {
            ctx,
            failures: Mutex::default(),
        }
    }

    /// Counts a failure of `scan`; returns how many in a row.
    fn failed(&self, scan: ObjectRef<DeserializeGuard<Scan>>) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(scan).or_default();
        *count = count.saturating_add(1);
        *count
    }

    fn succeeded(&self, scan: &ObjectRef<DeserializeGuard<Scan>>) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(scan);
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
    let policies: Api<DeserializeGuard<Policy>> = Api::all(ctx.client.clone());
    let feeds = feed_changes(ctx.store.clone(), ctx.feed_poll);
    let controller = Controller::new(scans, watcher::Config::default());
    let cache = controller.store();
    controller
        .reconcile_all_on(feeds)
        // A Policy edit wakes the Scans that name it: each is judged again under the new
        // digest (from its stored inventory when it can be).
        .watches(
            policies,
            watcher::Config::default(),
            move |policy: DeserializeGuard<Policy>| {
                let name = policy.name_any();
                cache
                    .state()
                    .iter()
                    .filter(|scan| {
                        scan.0
                            .as_ref()
                            .ok()
                            .and_then(|s| s.spec.policy_ref.as_deref())
                            == Some(name.as_str())
                    })
                    .map(|scan| ObjectRef::from_obj(&**scan))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            jobs,
            watcher::Config::default().labels(job::WORKER_SELECTOR),
            |job: Job| {
                let (namespace, name) = job::scan_of(&job)?;
                Some(ObjectRef::new(&name).within(&namespace))
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::new(Shared::new(ctx)))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "scan reconcile ended with an error");
            }
        })
        .await;
}

/// A `()` each time the catalog's combined feed snapshot differs from the one read before.
/// The first read, at once, sets the baseline (the controller looks at every Scan when it
/// starts anyway); then one read every `every`. Nothing when `every` is `None`. A failed read
/// is logged and tried again at the next tick.
fn feed_changes(
    store: stella_store::Store,
    every: Option<Duration>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(
        (store, None::<String>, true),
        move |(store, mut last, mut first)| async move {
            let every = every?;
            loop {
                if !first {
                    tokio::time::sleep(every).await;
                }
                first = false;
                match store.advisories.feed_snapshot().await {
                    Ok(snapshot) if last.as_ref() == Some(&snapshot) => {}
                    Ok(snapshot) => {
                        let changed = last.is_some();
                        last = Some(snapshot.clone());
                        if changed {
                            tracing::info!(%snapshot, "the feed snapshot changed: looking at every Scan again");
                            return Some(((), (store, last, first)));
                        }
                    }
                    Err(error) => tracing::warn!(%error, "reading the feed snapshot failed"),
                }
            }
        },
    )
}

/// One reconcile, counted and timed: a Scan that does not deserialize is logged, counted
/// (`error="InvalidObject"`) and left until it changes; any other goes through the finalizer.
pub async fn reconcile(guard: Arc<DeserializeGuard<Scan>>, shared: Arc<Shared>) -> Result<Action> {
    let started = Instant::now();
    let ctx = &shared.ctx;
    let result = match &guard.0 {
        Ok(scan) => finalized(scan, ctx).await,
        Err(invalid) => {
            tracing::warn!(
                scan = %format!("{}/{}", invalid.metadata.namespace.as_deref().unwrap_or_default(), invalid.metadata.name.as_deref().unwrap_or_default()),
                error = %invalid.error,
                "skipping a Scan that does not deserialize"
            );
            ctx.metrics.failed("scan", "InvalidObject");
            Ok(Action::await_change())
        }
    };
    ctx.metrics.reconciled("scan", started.elapsed());
    match &result {
        Ok(_) => shared.succeeded(&ObjectRef::from_obj(&*guard)),
        Err(error) => ctx.metrics.failed("scan", error.kind()),
    }
    result
}

/// The pipeline in kube-runtime's finalizer: it adds [`FINALIZER`] first (the patch brings
/// the next reconcile), runs `Apply` while the Scan lives and `Cleanup` once it is deleted,
/// then removes the finalizer.
async fn finalized(scan: &Scan, ctx: &Context) -> Result<Action> {
    let api: Api<Scan> = Api::namespaced(ctx.client.clone(), &scan.namespace().unwrap_or_default());
    let result = finalizer(
        &api,
        FINALIZER,
        Arc::new(scan.clone()),
        |event| async move {
            match event {
                finalizer::Event::Apply(scan) => reconcile_scan(&scan, ctx).await,
                finalizer::Event::Cleanup(scan) => cleanup::cleanup(ctx, &scan).await,
            }
        },
    )
    .await;
    let action = match result {
        Ok(action) => action,
        // Gone while the finalizer was being removed: nothing left to clean up.
        Err(finalizer::Error::RemoveFinalizer(kube::Error::Api(status))) if status.code == 404 => {
            Action::await_change()
        }
        Err(error) => return Err(error.into()),
    };
    if scan.meta().deletion_timestamp.is_some() {
        ctx.metrics.scan_phase(&status::key(scan), None);
        ctx.metrics.scan_result(&status::key(scan), None);
    }
    Ok(action)
}

/// The `Apply` arm: dereference → validate → observe → build → apply → update_status. A Scan
/// that cannot be scanned as written gets its condition and waits as its problem says.
async fn reconcile_scan(scan: &Scan, ctx: &Context) -> Result<Action> {
    let now = now();
    let references = dereference::dereference(&ctx.client, scan, &ctx.worker.namespace).await?;
    let validation = validate::validate(scan, &references);
    let mut outcome = match &validation {
        Err(invalid) => build::invalid(scan, invalid, &ctx.limits, &now),
        Ok(validated) => match observe::observe(ctx, scan, validated).await? {
            Observation::Unresolved(invalid) => build::invalid(scan, &invalid, &ctx.limits, &now),
            Observation::Observed(observed) => {
                let resources =
                    build::build(scan, validated, &observed, &ctx.limits, &ctx.worker, &now);
                match &resources.reevaluation {
                    Some(wanted) => {
                        let (result, delta) =
                            reevaluate::reevaluate(ctx, &observed, wanted).await?;
                        tracing::info!(scan = %status::key(scan), digest = %observed.digest, verdict = ?result.verdict, new_findings = delta.as_ref().map_or(0, |d| d.new_findings), "re-evaluated the stored inventory");
                        build::reevaluated(
                            scan,
                            &observed,
                            result,
                            delta.as_ref(),
                            &ctx.limits,
                            &now,
                        )
                    }
                    None => apply::apply(ctx, scan, resources).await?,
                }
            }
        },
    };
    attest::attest(
        ctx,
        scan,
        &references,
        validation.as_ref().ok(),
        &mut outcome,
        &now,
    )
    .await?;
    status::update_status(ctx, scan, &outcome).await?;
    Ok(match outcome.requeue {
        Some(after) => Action::requeue(after.max(Duration::from_secs(1))),
        None => Action::await_change(),
    })
}

/// A failed reconcile: logged, raised as a Warning Event on the Scan (reason from the error
/// kind, never from its text), and retried after [`error::backoff`] of the Scan's failures in
/// a row. Every error here is transient — the cluster, the catalog or the finalizer patch
/// failing; a Scan's own problems are its status and never get here.
pub fn error_policy(
    guard: Arc<DeserializeGuard<Scan>>,
    error: &Error,
    shared: Arc<Shared>,
) -> Action {
    let name = format!(
        "{}/{}",
        guard.meta().namespace.as_deref().unwrap_or_default(),
        guard.meta().name.as_deref().unwrap_or_default()
    );
    let failures = shared.failed(ObjectRef::from_obj(&*guard));
    let wait = error::backoff(failures, error::jitter());
    tracing::warn!(%error, scan = %name, kind = error.kind(), failures, retry_in = ?wait, "reconcile failed");
    let recorder = Recorder::new(shared.ctx.client.clone(), shared.ctx.reporter.clone());
    let event = events::reconcile_failed(error);
    let reference = guard.object_ref(&());
    tokio::spawn(async move {
        if let Err(error) = recorder.publish(&event, &reference).await {
            tracing::debug!(%error, "failed to record a reconcile failure event");
        }
    });
    Action::requeue(wait)
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context whose client points where nothing listens.
    async fn context(dir: &std::path::Path) -> Context {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        Context {
            client: Client::try_from(config).unwrap(),
            store: Store::open_embedded(dir).await.unwrap(),
            worker: fixtures::worker_settings("stella-system"),
            limits: fixtures::limits(),
            retention: Retention::Keep,
            watch_namespace: None,
            metrics: Arc::new(Metrics::default()),
            reporter: Reporter {
                controller: "test".into(),
                instance: None,
            },
            registry_retry: Default::default(),
            feed_poll: None,
            signer: None,
            evaluations: Default::default(),
        }
    }

    fn undeserializable(name: &str) -> Arc<DeserializeGuard<Scan>> {
        let guard: DeserializeGuard<Scan> = serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"image": 42, "views": "not-a-list"},
        }))
        .unwrap();
        assert!(guard.0.is_err());
        Arc::new(guard)
    }

    #[tokio::test]
    async fn a_scan_that_does_not_deserialize_is_skipped_without_touching_the_cluster() {
        let dir = tempfile::tempdir().unwrap();
        // Any request to the client's address would fail, and so the reconcile.
        let ctx = context(dir.path()).await;
        let action = reconcile(
            undeserializable("broken"),
            Arc::new(Shared::new(ctx.clone())),
        )
        .await
        .unwrap();
        assert_eq!(action, Action::await_change());
        assert!(ctx.metrics.render().contains(
            "stella_reconcile_failures_total{controller=\"scan\",error=\"InvalidObject\"} 1\n"
        ));
    }

    #[tokio::test]
    async fn failures_in_a_row_are_counted_per_scan_until_a_success() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Arc::new(Shared::new(context(dir.path()).await));
        let (web, api) = (undeserializable("web"), undeserializable("api"));
        let error = || Error::UpdateStatus(kube::Error::LinesCodecMaxLineLengthExceeded);
        let count = |scan: &Arc<DeserializeGuard<Scan>>| {
            let failures = shared.failures.lock().unwrap();
            failures.get(&ObjectRef::from_obj(&**scan)).copied()
        };
        for _ in 0..3 {
            error_policy(web.clone(), &error(), shared.clone());
        }
        error_policy(api.clone(), &error(), shared.clone());
        assert_eq!((count(&web), count(&api)), (Some(3), Some(1)));
        // A reconcile that succeeds (here: skipping the object) resets that Scan only.
        reconcile(web.clone(), shared.clone()).await.unwrap();
        assert_eq!((count(&web), count(&api)), (None, Some(1)));
    }
}
