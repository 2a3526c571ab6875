//! `stella-operator run`: the long-running process. It campaigns for leadership on a Lease
//! (only the leader runs the Scan controller and workload discovery; followers stand by),
//! serves `/healthz`, `/readyz`, Prometheus `/metrics` and the REST API on every replica, logs
//! as text or JSON, and on SIGTERM / Ctrl-C stops the controllers, stops campaigning and
//! releases the lease so a standby takes over at once.

use crate::leader::{Config, Elector};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use warp::Filter;

/// Settings of the running operator (flags, or the environment the Deployment sets).
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Namespace of the leader-election Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "stella-system")]
    pub namespace: String,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Name of the Lease.
    #[arg(long, default_value = "stella-operator")]
    pub lease_name: String,
    /// Seconds a lease holds without renewal; followers take over after it.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=600))]
    pub lease_duration: u64,
    /// Address for /healthz, /readyz, /metrics and the REST API (/api/v1/scanner).
    #[arg(long, env = "STELLA_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log lines as JSON objects (for log shippers) instead of text.
    #[arg(long, env = "STELLA_LOG_JSON")]
    pub log_json: bool,
    /// Reconcile only the Scans of this namespace (default: all namespaces).
    #[arg(long, env = "STELLA_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    /// The operator's own signing key on a PKCS#11 token (an HSM, a KMS's PKCS#11 library):
    /// `pkcs11:token=…;object=…?module-path=…&pin-source=/path` (RFC 7512; the PIN also from
    /// `STELLA_PKCS11_PIN`). Scans with `spec.attest.enabled` and no `signingKeySecretRef` are
    /// signed with it; the private key never leaves the token.
    #[arg(long, env = "STELLA_SIGNING_KEY_URI", value_name = "URI")]
    pub signing_key_uri: Option<String>,
}

/// Where results live (the operator reads what workers write): the shared storage flags
/// (the embedded SQLite under `--data-dir`, default `/tmp/stella`, is a single-node trial
/// only: workers cannot reach it), and how worker Jobs get theirs.
#[derive(Clone, Debug, clap::Args)]
pub struct StorageArgs {
    #[command(flatten)]
    pub store: stella_store::StorageArgs,
    /// Secret (in the operator's namespace) with the storage settings, passed to worker Jobs as
    /// environment (`STELLA_CATALOG_URL`, `STELLA_OBJECT_STORE`, `AWS_ACCESS_KEY_ID`, …).
    #[arg(long, env = "STELLA_STORAGE_SECRET", default_value = "stella-storage")]
    pub storage_secret: String,
    /// What to do with a deleted Scan's results: keep them, or forget the image (catalog rows
    /// and objects) when no other Scan refers to its digest.
    #[arg(long, env = "STELLA_RETENTION", value_enum, default_value = "keep")]
    pub retention: RetentionArg,
}

/// Retention of a deleted Scan's results.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RetentionArg {
    Keep,
    DeleteUnreferenced,
}

/// How worker Jobs are made (the `stella-worker` ConfigMap sets these as environment).
#[derive(Clone, Debug, clap::Args)]
pub struct WorkerArgs {
    #[arg(
        long,
        env = "STELLA_WORKER_IMAGE",
        default_value = "stella-ops/worker:0.1.0"
    )]
    pub worker_image: String,
    #[arg(
        long,
        env = "STELLA_WORKER_SERVICE_ACCOUNT",
        default_value = "stella-worker"
    )]
    pub worker_service_account: String,
    /// Worker Jobs running at once, cluster-wide; finished Jobs never hold a slot.
    #[arg(long, env = "STELLA_MAX_CONCURRENT_SCANS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_concurrent_scans: u32,
    #[arg(long, env = "STELLA_WORKER_BACKOFF_LIMIT", default_value_t = 2, value_parser = clap::value_parser!(i32).range(0..=20))]
    pub worker_backoff_limit: i32,
    #[arg(long, env = "STELLA_WORKER_ACTIVE_DEADLINE_SECONDS", default_value_t = 1800, value_parser = clap::value_parser!(i64).range(30..=86400))]
    pub worker_active_deadline_seconds: i64,
    #[arg(long, env = "STELLA_WORKER_TTL_SECONDS_AFTER_FINISHED", default_value_t = 600, value_parser = clap::value_parser!(i32).range(0..=604800))]
    pub worker_ttl_seconds_after_finished: i32,
    #[arg(long, env = "STELLA_WORKER_CPU_REQUEST", default_value = "500m")]
    pub worker_cpu_request: String,
    #[arg(long, env = "STELLA_WORKER_CPU_LIMIT", default_value = "2")]
    pub worker_cpu_limit: String,
    #[arg(long, env = "STELLA_WORKER_MEMORY_REQUEST", default_value = "256Mi")]
    pub worker_memory_request: String,
    #[arg(long, env = "STELLA_WORKER_MEMORY_LIMIT", default_value = "1Gi")]
    pub worker_memory_limit: String,
    /// First retry delay after a failed attempt, doubled per attempt.
    #[arg(long, env = "STELLA_RETRY_BASE_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub retry_base_seconds: u64,
    /// Longest retry delay.
    #[arg(long, env = "STELLA_RETRY_MAX_SECONDS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub retry_max_seconds: u64,
    /// How often a completed Scan is looked at again (new feeds or policy → re-evaluation of
    /// its stored inventory).
    #[arg(long, env = "STELLA_RESYNC_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(5..=86400))]
    pub resync_seconds: u64,
    /// How often the catalog's feed snapshot is read; a change (a `stella feeds import`, say)
    /// has every Scan looked at again, the Completed ones re-evaluated from their stored
    /// inventories without a Job. 0: only at the resync.
    #[arg(long, env = "STELLA_FEED_POLL_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=86400))]
    pub feed_poll_seconds: u64,
    /// Where FeedSources may read `file://` offline kits: a directory the operator's pod
    /// mounts (a volume, Secret or ConfigMap). A kit path must resolve inside it.
    #[arg(
        long,
        env = "STELLA_OFFLINE_KIT_DIR",
        default_value = "/var/lib/stella/kits"
    )]
    pub offline_kit_dir: std::path::PathBuf,
}

/// Workload discovery: a Scan per image digest running in the selected namespaces.
#[derive(Clone, Debug, clap::Args)]
pub struct DiscoveryArgs {
    /// Turn workload discovery off (Scans are then only what users write).
    #[arg(long, env = "STELLA_DISCOVERY_DISABLED")]
    pub no_discovery: bool,
    /// Namespace globs to watch (comma-separated); empty: all.
    #[arg(
        long,
        env = "STELLA_DISCOVERY_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub discovery_namespaces: Vec<String>,
    /// Namespace globs to leave out (comma-separated).
    #[arg(
        long,
        env = "STELLA_DISCOVERY_EXCLUDE",
        value_delimiter = ',',
        default_value = "kube-system,kube-public,kube-node-lease"
    )]
    pub discovery_exclude: Vec<String>,
    /// Delete a discovered Scan this long after its image stopped running.
    #[arg(long, env = "STELLA_DISCOVERY_GC_TTL_SECONDS", default_value_t = 86400)]
    pub discovery_gc_ttl_seconds: u64,
    /// How often unused discovered Scans are looked for.
    #[arg(long, env = "STELLA_DISCOVERY_GC_INTERVAL_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub discovery_gc_interval_seconds: u64,
    /// Policy for discovered Scans.
    #[arg(long, env = "STELLA_DISCOVERY_POLICY")]
    pub discovery_policy: Option<String>,
    /// Registries (host[:port], comma-separated) that discovered Scans reach over plain HTTP.
    #[arg(
        long,
        env = "STELLA_INSECURE_REGISTRIES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub insecure_registries: Vec<String>,
}

/// What `/metrics` and `/readyz` report.
#[derive(Debug, Default)]
struct State {
    leading: AtomicBool,
    /// Whether the last Lease attempt reached the API server.
    api_reachable: AtomicBool,
    transitions: AtomicU64,
    attempts: AtomicU64,
    attempt_errors: AtomicU64,
}

impl State {
    fn metrics(&self, identity: &str) -> String {
        let leading = u8::from(self.leading.load(Ordering::Relaxed));
        format!(
            "# HELP stella_operator_leader Whether this replica holds the leader Lease.\n\
             # TYPE stella_operator_leader gauge\n\
             stella_operator_leader{{identity=\"{identity}\"}} {leading}\n\
             # HELP stella_operator_leader_transitions_total Times this replica gained or lost leadership.\n\
             # TYPE stella_operator_leader_transitions_total counter\n\
             stella_operator_leader_transitions_total {}\n\
             # HELP stella_operator_lease_attempts_total Lease acquire/renew attempts.\n\
             # TYPE stella_operator_lease_attempts_total counter\n\
             stella_operator_lease_attempts_total {}\n\
             # HELP stella_operator_lease_errors_total Lease attempts that failed to reach the API server.\n\
             # TYPE stella_operator_lease_errors_total counter\n\
             stella_operator_lease_errors_total {}\n",
            self.transitions.load(Ordering::Relaxed),
            self.attempts.load(Ordering::Relaxed),
            self.attempt_errors.load(Ordering::Relaxed),
        )
    }
}

/// Why the operator could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("failed to reach the Kubernetes API server: {0}")]
    Client(#[from] kube::Error),
    #[error("failed to open the storage: {0}")]
    Storage(#[from] stella_store::Error),
    #[error("failed to serve on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("--signing-key-uri: {0}")]
    SigningKey(String),
}

/// Runs until SIGTERM / Ctrl-C.
pub fn run(args: RunArgs) -> Result<(), Error> {
    // Colours only on a terminal: in a Pod, kubectl logs and log shippers get plain text.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if args.log_json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(serve(args))
}

/// Opens the store, waiting up to 90 s for a catalog that does not answer yet (the trial
/// PostgreSQL starts beside the operator): an install comes up without a crash-and-restart.
async fn open_store(config: &stella_store::StoreConfig) -> Result<stella_store::Store, Error> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_secs(1);
    loop {
        match stella_store::Store::open(config).await {
            Err(error) if error.is_unreachable() && started.elapsed() < Duration::from_secs(90) => {
                tracing::warn!(%error, retry_in = ?delay, "the catalog does not answer yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            result => return Ok(result?),
        }
    }
}

async fn serve(args: RunArgs) -> Result<(), Error> {
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| format!("stella-operator-{}", std::process::id()))
    });
    let client = kube::Client::try_default().await?;
    let config = Config {
        lease_duration: Duration::from_secs(args.lease_duration),
        renew_deadline: Duration::from_secs(args.lease_duration * 2 / 3),
        retry_period: Duration::from_secs(args.lease_duration.div_ceil(7).max(1)),
        ..Config::new(&args.namespace, &args.lease_name, &identity)
    };
    let state = Arc::new(State::default());
    let controller_metrics = Arc::new(stella_controllers::metrics::Metrics::default());
    let store = open_store(
        &args
            .storage
            .store
            .config(|| std::path::PathBuf::from("/tmp/stella")),
    )
    .await?;
    // Every feed delta is reported (`feeds.snapshot.changed`) in the transaction that logs it.
    if !store
        .advisories
        .report_deltas(stella_pipeline::events::feed_delta_reporter(
            stella_controllers::scan::reevaluate::EVENT_SOURCE,
        ))
    {
        tracing::warn!(
            "the advisories are not in the catalog's database: feed changes are not reported to Notify"
        );
    }
    let signer = match args.signing_key_uri.as_deref().filter(|u| !u.is_empty()) {
        None => None,
        Some(uri) => {
            let signer = stella_attest::pkcs11::Pkcs11Signer::open(uri).map_err(|e| {
                Error::SigningKey(format!("{}: {e}", stella_attest::pkcs11::redact_pin(uri)))
            })?;
            tracing::info!(
                key_id = stella_attest::Signer::public(&signer).key_id(),
                "signing with the PKCS#11 key of --signing-key-uri"
            );
            Some(Arc::new(signer) as Arc<dyn stella_attest::Signer>)
        }
    };
    let mut scan = scan_context(
        &args,
        client.clone(),
        store.clone(),
        controller_metrics.clone(),
        &identity,
    );
    scan.signer = signer;
    let controllers = Controllers {
        notify: Default::default(),
        identity: identity.clone(),
        scan,
        kit_dir: args.worker.offline_kit_dir.clone(),
        discovery: (!args.discovery.no_discovery).then(|| discovery_settings(&args)),
        gc_every: Duration::from_secs(args.discovery.discovery_gc_interval_seconds),
    };

    // Health and metrics.
    let healthz = warp::path!("healthz").map(|| "ok");
    let ready_state = state.clone();
    let readyz = warp::path!("readyz").map(move || {
        if ready_state.api_reachable.load(Ordering::Relaxed) {
            warp::reply::with_status("ready", warp::http::StatusCode::OK)
        } else {
            warp::reply::with_status(
                "the API server has not answered yet",
                warp::http::StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    });
    let metrics_state = state.clone();
    let metrics_identity = identity.clone();
    let metrics_controllers = controller_metrics.clone();
    let metrics = warp::path!("metrics").map(move || {
        warp::reply::with_header(
            metrics_state.metrics(&metrics_identity) + &metrics_controllers.render(),
            "content-type",
            "text/plain; version=0.0.4",
        )
    });
    // Every replica serves the REST API; only the leader reconciles.
    let api = crate::api::routes(crate::api::ApiState::new(client.clone(), store.clone()));
    let routes = warp::get().and(healthz.or(readyz).or(metrics)).or(api);
    let listen = |source| Error::Listen {
        addr: args.metrics_addr,
        source,
    };
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(listen)?;
    tracing::info!(addr = %listener.local_addr().map_err(listen)?, identity, "serving /healthz /readyz /metrics /api/v1/scanner");
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        warp::serve(routes)
            .incoming(listener)
            .graceful(async {
                let _ = http_stopped.await;
            })
            .run(),
    );

    // The campaign, with its state mirrored into the metrics.
    let elector = Elector::new(client, config);
    let (leading_tx, mut leading_rx) = tokio::sync::watch::channel(false);
    let (stop_campaign, campaign_stopped) = tokio::sync::oneshot::channel::<()>();
    let probe = elector.clone();
    let probe_state = state.clone();
    let campaign = tokio::spawn(elector.run(leading_tx, async {
        let _ = campaign_stopped.await;
    }));
    let watcher_state = state.clone();
    let watcher = tokio::spawn(async move {
        // Only the leader reconciles: controllers start on election and stop on loss.
        let mut running: Option<Running> = None;
        while leading_rx.changed().await.is_ok() {
            let leading = *leading_rx.borrow();
            watcher_state.leading.store(leading, Ordering::Relaxed);
            watcher_state.transitions.fetch_add(1, Ordering::Relaxed);
            if leading {
                tracing::info!("became the leader: starting the controllers");
                running = Some(controllers.start());
            } else {
                tracing::info!("no longer the leader: stopping the controllers");
                if let Some(running) = running.take() {
                    running.stop().await;
                }
            }
        }
        if let Some(running) = running.take() {
            running.stop().await;
        }
    });
    // Reachability for /readyz, checked as often as the campaign tries.
    let reachability = tokio::spawn(async move {
        loop {
            let ok = probe.reachable().await;
            probe_state.attempts.fetch_add(1, Ordering::Relaxed);
            if !ok {
                probe_state.attempt_errors.fetch_add(1, Ordering::Relaxed);
            }
            probe_state.api_reachable.store(ok, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });

    shutdown_signal().await;
    tracing::info!("shutting down: releasing the lease");
    reachability.abort();
    let _ = stop_campaign.send(());
    let _ = campaign.await;
    let _ = stop_http.send(());
    let _ = server.await;
    let _ = watcher.await;
    Ok(())
}

/// The controllers a leader runs.
struct Controllers {
    scan: stella_controllers::scan::Context,
    /// The rules and channels the notify dispatcher applies.
    notify: std::sync::Arc<stella_controllers::notify::Registry>,
    /// This replica's identity: the notify dispatcher's lease holder name.
    identity: String,
    kit_dir: std::path::PathBuf,
    discovery: Option<stella_controllers::discovery::Settings>,
    gc_every: Duration,
}

/// Controllers started on election; stopped (gracefully, then aborted) on loss or shutdown.
struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Controllers {
    fn start(&self) -> Running {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let mut tasks = vec![
            tokio::spawn(stella_controllers::scan::run(
                self.scan.clone(),
                until_stopped(),
            )),
            tokio::spawn(stella_controllers::policy::run(
                stella_controllers::policy::Context {
                    client: self.scan.client.clone(),
                    store: self.scan.store.clone(),
                    metrics: self.scan.metrics.clone(),
                    reporter: self.scan.reporter.clone(),
                },
                until_stopped(),
            )),
            tokio::spawn(stella_controllers::feed_source::run(
                stella_controllers::feed_source::Context {
                    client: self.scan.client.clone(),
                    store: self.scan.store.clone(),
                    metrics: self.scan.metrics.clone(),
                    reporter: self.scan.reporter.clone(),
                    namespace: self.scan.worker.namespace.clone(),
                    limits: stella_controllers::feed_source::Limits::default(),
                    kit_dir: Some(self.kit_dir.clone()),
                },
                until_stopped(),
            )),
            tokio::spawn(stella_controllers::schedule::run(
                stella_controllers::schedule::Context {
                    client: self.scan.client.clone(),
                    store: self.scan.store.clone(),
                    metrics: self.scan.metrics.clone(),
                    reporter: self.scan.reporter.clone(),
                    watch_namespace: self.scan.watch_namespace.clone(),
                },
                until_stopped(),
            )),
        ];
        tasks.push(tokio::spawn(stella_controllers::notify::run(
            stella_controllers::notify::Context {
                client: self.scan.client.clone(),
                store: self.scan.store.clone(),
                metrics: self.scan.metrics.clone(),
                registry: self.notify.clone(),
                platform_namespace: self.scan.worker.namespace.clone(),
            },
            self.identity.clone(),
            until_stopped.clone(),
        )));
        if let Some(settings) = &self.discovery {
            tasks.push(tokio::spawn(stella_controllers::discovery::run(
                self.scan.client.clone(),
                settings.clone(),
                self.scan.metrics.clone(),
                self.gc_every,
                until_stopped(),
            )));
        }
        Running { stop, tasks }
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(10), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

fn scan_context(
    args: &RunArgs,
    client: kube::Client,
    store: stella_store::Store,
    metrics: Arc<stella_controllers::metrics::Metrics>,
    identity: &str,
) -> stella_controllers::scan::Context {
    use stella_controllers::scan::{Context, Retention, job::WorkerSettings, plan::Limits};
    let w = &args.worker;
    Context {
        client,
        store,
        worker: WorkerSettings {
            namespace: args.namespace.clone(),
            image: w.worker_image.clone(),
            service_account: w.worker_service_account.clone(),
            backoff_limit: w.worker_backoff_limit,
            active_deadline_seconds: w.worker_active_deadline_seconds,
            ttl_seconds_after_finished: w.worker_ttl_seconds_after_finished,
            cpu_request: w.worker_cpu_request.clone(),
            cpu_limit: w.worker_cpu_limit.clone(),
            memory_request: w.worker_memory_request.clone(),
            memory_limit: w.worker_memory_limit.clone(),
            storage_secret: Some(args.storage.storage_secret.clone()).filter(|s| !s.is_empty()),
        },
        limits: Limits {
            max_concurrent: w.max_concurrent_scans,
            retry_base: Duration::from_secs(w.retry_base_seconds),
            retry_max: Duration::from_secs(w.retry_max_seconds.max(w.retry_base_seconds)),
            resync: Duration::from_secs(w.resync_seconds),
        },
        retention: match args.storage.retention {
            RetentionArg::Keep => Retention::Keep,
            RetentionArg::DeleteUnreferenced => Retention::DeleteUnreferenced,
        },
        watch_namespace: args.watch_namespace.clone().filter(|n| !n.is_empty()),
        metrics,
        reporter: kube::runtime::events::Reporter {
            controller: "stella-operator".into(),
            instance: Some(identity.to_string()),
        },
        registry_retry: Default::default(),
        feed_poll: (w.feed_poll_seconds > 0).then(|| Duration::from_secs(w.feed_poll_seconds)),
        evaluations: Default::default(),
        signer: None,
    }
}

fn discovery_settings(args: &RunArgs) -> stella_controllers::discovery::Settings {
    let list = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let d = &args.discovery;
    stella_controllers::discovery::Settings {
        namespace: args.namespace.clone(),
        include: list(&d.discovery_namespaces),
        exclude: list(&d.discovery_exclude),
        gc_ttl: Duration::from_secs(d.discovery_gc_ttl_seconds),
        policy_ref: d.discovery_policy.clone().filter(|p| !p.is_empty()),
        insecure_registries: list(&d.insecure_registries),
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
