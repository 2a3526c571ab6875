//! The controllers against the real API server harness (kube-apiserver 1.20 + etcd on
//! loopback) and a real registry (Debian's `docker-registry`). There is no controller-manager:
//! the tests play the worker (catalog rows) and the Job controller (Job status).

mod discovery;
mod feed_source;
mod policy;
mod scan;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stella_controllers::metrics::Metrics;
use stella_controllers::scan::{Context, Retention, job::WorkerSettings, plan::Limits};
use stella_crds::scan::v1alpha1::Scan;

use stella_e2e::services::Registry;

/// The shared API server, or a skip.
use stella_e2e::cluster;

/// A fresh namespace.
async fn namespace(client: &Client, prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000);
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    name
}

pub(crate) fn sha(bytes: &[u8]) -> String {
    stella_e2e::services::sha256(bytes)
}

/// One controller under test, reconciling only `namespace`, with its Jobs there too, a
/// store in a temporary directory, and short retry delays.
pub(crate) struct Harness {
    pub(crate) client: Client,
    pub(crate) namespace: String,
    pub(crate) ctx: Context,
    pub(crate) registry: Registry,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub(crate) async fn start(prefix: &str, max_concurrent: u32) -> Option<Harness> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "stella_controllers=debug",
            ))
            .with_test_writer()
            .try_init();
        let cluster = cluster()?;
        let registry = Registry::start()?;
        let client = cluster.client().await.unwrap();
        stella_e2e::install_crds(&client).await;
        let namespace = namespace(&client, prefix).await;
        let dir = tempfile::tempdir().unwrap();
        let store = stella_store::Store::open_embedded(dir.path())
            .await
            .unwrap();
        let ctx = Context {
            client: client.clone(),
            store,
            worker: WorkerSettings {
                namespace: namespace.clone(),
                image: "stella-ops/worker:test".into(),
                service_account: "stella-worker".into(),
                backoff_limit: 2,
                active_deadline_seconds: 1800,
                ttl_seconds_after_finished: 600,
                cpu_request: "500m".into(),
                cpu_limit: "2".into(),
                memory_request: "256Mi".into(),
                memory_limit: "1Gi".into(),
                storage_secret: Some("stella-storage".into()),
            },
            limits: Limits {
                max_concurrent,
                retry_base: Duration::from_secs(2),
                retry_max: Duration::from_secs(4),
                resync: Duration::from_secs(600),
            },
            retention: Retention::DeleteUnreferenced,
            watch_namespace: Some(namespace.clone()),
            metrics: Arc::new(Metrics::default()),
            reporter: kube::runtime::events::Reporter {
                controller: "stella-operator".into(),
                instance: Some("test".into()),
            },
            registry_retry: stella_acquire::registry::RetryPolicy {
                attempts: 1,
                base: Duration::from_millis(10),
                max: Duration::from_millis(10),
            },
            feed_poll: None,
            signer: None,
            evaluations: Default::default(),
        };
        let mut harness = Harness {
            client,
            namespace,
            ctx,
            registry,
            stop: None,
            task: None,
            _dir: dir,
        };
        harness.run();
        Some(harness)
    }

    /// Starts (or restarts) the controller.
    pub(crate) fn run(&mut self) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = stopped.map(|_| ()).shared();
        self.task = Some(tokio::spawn(stella_controllers::scan::run(
            self.ctx.clone(),
            shutdown,
        )));
        self.stop = Some(stop);
    }

    pub(crate) fn scans(&self) -> Api<Scan> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub(crate) fn jobs(&self) -> Api<k8s_openapi::api::batch::v1::Job> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates a Scan of `image`.
    pub(crate) async fn scan(&self, name: &str, spec: serde_json::Value) -> Scan {
        let scan: Scan = serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }))
        .unwrap();
        self.scans()
            .create(&PostParams::default(), &scan)
            .await
            .unwrap()
    }

    /// Polls the Scan until `check` holds (20 s).
    pub(crate) async fn wait(&self, name: &str, what: &str, check: impl Fn(&Scan) -> bool) -> Scan {
        let started = Instant::now();
        loop {
            if let Some(scan) = self.scans().get_opt(name).await.unwrap()
                && check(&scan)
            {
                return scan;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting for {name}: {what}; last: {:?}",
                self.scans()
                    .get_opt(name)
                    .await
                    .unwrap()
                    .and_then(|s| s.status)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Worker Jobs of the namespace, by name.
    pub(crate) async fn job_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .jobs()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|j| j.name_any())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
