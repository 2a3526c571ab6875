//! `stella-webhook serve`: flags (each with an environment variable), then the process — the
//! Policy, Namespace and Scan watches, the catalog, the serving certificate (mounted or
//! self-provisioned), the TLS admission server and the plain-HTTP probes and metrics.

use crate::events::{Events, Sink, SinkArg};
use crate::metrics::Metrics;
use crate::policy::PolicySet;
use crate::registry::Registries;
use crate::server::{self, Namespaces, Settings, State};
use crate::tls::{self, CertStore, Provision};
use crate::verdicts::Verdicts;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::DeserializeGuard;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use stella_crds::policy::v1alpha1::Policy;
use stella_crds::scan::v1alpha1::Scan;

#[derive(Debug, clap::Parser)]
#[command(
    name = "stella-webhook",
    version,
    about = "Zastava: the Stella Ops admission webhook"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve AdmissionReviews over TLS.
    Serve(ServeArgs),
}

/// The webhook's ceiling on Policies' modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// No Policy denies: would-be denials are warnings (a safe first rollout).
    DryRun,
    /// Policies in `enforce` mode deny.
    Enforce,
}

/// Why a duration flag was refused (clap shows the message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The flag's value, trimmed.
    #[error("{0:?}: expected a number with ms, s or m")]
    NotANumber(String),
    #[error("{input:?}: unknown unit {unit:?} (ms, s or m)")]
    UnknownUnit { input: String, unit: String },
    #[error("the deadline must be above 0 and below the API server's 30 s webhook limit")]
    DeadlineOutOfRange,
}

/// `3s`, `250ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| DurationError::NotANumber(s.to_string()))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(DurationError::UnknownUnit {
            input: s.to_string(),
            unit: unit.to_string(),
        }),
    }
}

fn deadline(s: &str) -> Result<Duration, DurationError> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > Duration::from_secs(29) {
        return Err(DurationError::DeadlineOutOfRange);
    }
    Ok(d)
}

#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// HTTPS address of the admission endpoint (`POST /validate`).
    #[arg(long, env = "STELLA_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Plain-HTTP address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "STELLA_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,
    /// `dry-run` turns every Policy's denials into warnings; `enforce` lets Policies deny.
    #[arg(
        long,
        env = "STELLA_ADMISSION_MODE",
        value_enum,
        default_value = "dry-run"
    )]
    pub mode: Mode,
    /// With `--mode=enforce`: enforce only in namespaces whose labels match this selector
    /// (`key=value,key!=value,key,!key`); the others stay in dry-run.
    #[arg(long, env = "STELLA_ENFORCE_NAMESPACE_SELECTOR", value_parser = crate::policy::parse_selector)]
    pub enforce_namespace_selector: Option<stella_model::selector::LabelSelector>,
    /// Directory of the mounted TLS Secret (`tls.crt`, `tls.key`), re-read on change. Without
    /// those files the webhook provisions its own CA and certificate.
    #[arg(long, env = "STELLA_TLS_DIR", default_value = "/tls")]
    pub tls_dir: PathBuf,
    /// How often the TLS directory is re-read.
    #[arg(long, env = "STELLA_TLS_RELOAD", value_parser = parse_duration, default_value = "10s")]
    pub tls_reload: Duration,
    /// Secret (in `--namespace`) holding the self-provisioned CA and certificate.
    #[arg(long, env = "STELLA_TLS_SECRET", default_value = "stella-webhook-tls")]
    pub tls_secret: String,
    /// The webhook's Service name (the certificate's DNS names).
    #[arg(long, env = "STELLA_WEBHOOK_SERVICE", default_value = "stella-webhook")]
    pub service: String,
    /// ValidatingWebhookConfiguration whose caBundle a self-provisioned CA is written to
    /// (empty: none).
    #[arg(
        long,
        env = "STELLA_WEBHOOK_CONFIGURATION",
        default_value = "stella-zastava"
    )]
    pub webhook_configuration: String,
    /// Answer by this deadline (below the configuration's timeoutSeconds) with the Policy's
    /// onError choice when lookups are still pending.
    #[arg(long, env = "STELLA_ADMISSION_DEADLINE", value_parser = deadline, default_value = "3s")]
    pub deadline: Duration,
    /// The webhook's namespace: certificate Secret, signature key Secrets.
    #[arg(long, env = "POD_NAMESPACE", default_value = "stella-system")]
    pub namespace: String,
    /// Namespace of the operator's Scans (read for verdicts, created by scan-and-deny).
    /// Defaults to `--namespace`.
    #[arg(long, env = "STELLA_SCAN_NAMESPACE")]
    pub scan_namespace: Option<String>,
    /// The operator's catalog and object store (its policy reports), from its
    /// `stella-storage` Secret; a `--data-dir` when the webhook shares the operator's volume.
    /// Without a catalog URL and without a data directory, verdicts come from Scan statuses
    /// only.
    #[command(flatten)]
    pub storage: stella_store::StorageArgs,
    /// Registries (`host[:port]`) reached over plain HTTP; comma-separated or repeated.
    #[arg(
        long = "insecure-registry",
        env = "STELLA_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// Platform whose manifest a multi-platform tag resolves to.
    #[arg(long, env = "STELLA_PLATFORM", default_value = "linux/amd64")]
    pub platform: String,
    /// Entries per cache (digests, verdicts, signatures).
    #[arg(long, env = "STELLA_WEBHOOK_CACHE_SIZE", default_value_t = 10_000)]
    pub cache_size: usize,
    /// How long a verdict (or its absence) is reused.
    #[arg(long, env = "STELLA_VERDICT_CACHE_TTL", value_parser = parse_duration, default_value = "10s")]
    pub verdict_cache_ttl: Duration,
    /// How long the signatures found for a digest are reused.
    #[arg(long, env = "STELLA_SIGNATURE_CACHE_TTL", value_parser = parse_duration, default_value = "5m")]
    pub signature_cache_ttl: Duration,
    /// Scratch directory for signature payloads (an emptyDir).
    #[arg(
        long,
        env = "STELLA_BLOB_DIR",
        default_value = "/var/cache/stella-webhook"
    )]
    pub blob_dir: PathBuf,
    /// Where `zastava.admission` events go: `outbox` (the catalog's Notify outbox, in
    /// batches, where NotifyRules match them), `-` (JSON lines on stdout), a file path (JSON
    /// lines), `none`, or `auto`: the outbox when a catalog is configured, stdout otherwise.
    #[arg(long, env = "STELLA_EVENTS", default_value = "auto")]
    pub events: String,
    /// How often Policies' signature keys are re-read from their Secrets.
    #[arg(long, env = "STELLA_KEY_REFRESH", value_parser = parse_duration, default_value = "60s")]
    pub key_refresh: Duration,
    /// Log lines as JSON objects.
    #[arg(long, env = "STELLA_LOG_JSON")]
    pub log_json: bool,
}

/// Logs to standard error (standard output carries the events).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: in a Pod, kubectl logs and log shippers get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Loads the signature and attestation keys of one Policy from Secrets in `namespace`.
async fn load_keys(client: &Client, namespace: &str, policy: &Policy) -> crate::policy::Keys {
    let admission = policy.spec.admission.as_ref();
    let signatures = admission
        .and_then(|a| a.signatures.as_ref())
        .map(|c| c.keys.as_slice())
        .unwrap_or_default();
    let attestations = admission
        .and_then(|a| a.require_attestation.as_ref())
        .map(|c| c.keys.as_slice())
        .unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut keys = crate::policy::Keys::default();
    let pem_of = async |key: &stella_crds::policy::v1alpha1::SignatureKey,
                        errors: &mut Vec<String>| {
        let pem = match api.get_opt(&key.secret_ref.name).await {
            Ok(Some(s)) => s
                .data
                .unwrap_or_default()
                .get(&key.secret_ref.key)
                .map(|b| String::from_utf8_lossy(&b.0).into_owned()),
            Ok(None) => None,
            Err(error) => {
                errors.push(format!("{}: {error}", key.name));
                return None;
            }
        };
        if pem.is_none() {
            errors.push(format!(
                "{}: secret {}/{} key {} not found",
                key.name, namespace, key.secret_ref.name, key.secret_ref.key
            ));
        }
        pem
    };
    for key in signatures {
        if let Some(pem) = pem_of(key, &mut keys.errors).await {
            match crate::signature::parse_public_key(&key.name, &pem) {
                Ok(k) => keys.signatures.push(k),
                Err(error) => keys.errors.push(format!("{}: {error}", key.name)),
            }
        }
    }
    for key in attestations {
        if let Some(pem) = pem_of(key, &mut keys.errors).await {
            match stella_attest::PublicKey::from_pem(&pem) {
                Ok(k) => keys.attestations.push(k),
                Err(error) => keys.errors.push(format!("{}: {error}", key.name)),
            }
        }
    }
    keys
}

/// Compiles the listed Policies with their keys.
async fn compile(client: &Client, namespace: &str, policies: &[Arc<Policy>]) -> PolicySet {
    let mut keys = BTreeMap::new();
    for p in policies {
        keys.insert(
            p.metadata.name.clone().unwrap_or_default(),
            load_keys(client, namespace, p).await,
        );
    }
    let owned: Vec<Policy> = policies.iter().map(|p| (**p).clone()).collect();
    PolicySet::compile(&owned, |p| {
        keys.remove(&p.metadata.name.clone().unwrap_or_default())
            .unwrap_or_default()
    })
}

/// A running webhook: its addresses and a stop switch.
#[derive(Debug)]
pub struct Running {
    pub admission_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub state: Arc<State>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops serving and every background task.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Starts the webhook with `client`; returns once the listeners are bound.
/// Why the webhook could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--events outbox needs the catalog (--catalog-url or --data-dir)")]
    OutboxWithoutCatalog,
    #[error("--platform: {0}")]
    Platform(stella_acquire::Error),
    #[error("--blob-dir {path}: {source}")]
    BlobDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::Error),
    #[error("failed to bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub async fn start(args: ServeArgs, client: Client) -> Result<Running, StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = Arc::new(Metrics::default());
    let catalog_configured = args.storage.names_a_catalog();
    // The store, for the verdicts and the outbox writer, once it opens.
    let (opened, store_rx) = tokio::sync::watch::channel(None::<stella_store::Store>);
    let sink = match args.events.parse().unwrap_or(SinkArg::Auto) {
        SinkArg::Auto if catalog_configured => Sink::Outbox(store_rx),
        SinkArg::Auto | SinkArg::Stdout => Sink::Stdout,
        SinkArg::Outbox if catalog_configured => Sink::Outbox(store_rx),
        SinkArg::Outbox => return Err(StartError::OutboxWithoutCatalog),
        SinkArg::Discard => Sink::Discard,
        SinkArg::File(path) => Sink::File(path),
    };
    let events = Events::start(sink, metrics.clone());
    let scan_namespace = args
        .scan_namespace
        .clone()
        .unwrap_or_else(|| args.namespace.clone());
    let mut tasks = Vec::new();

    let (ns_reader, ns_writer) = reflector::store::<Namespace>();
    let namespaces = watcher(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(ns_writer)
    .applied_objects()
    .for_each(|_| futures::future::ready(()));
    tasks.push(tokio::spawn(namespaces));

    let (scan_reader, scan_writer) = reflector::store::<Scan>();
    let scans = watcher(
        Api::<Scan>::namespaced(client.clone(), &scan_namespace),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(scan_writer)
    .applied_objects()
    .for_each(|_| futures::future::ready(()));
    tasks.push(tokio::spawn(scans));

    let verdicts = Verdicts::new(
        catalog_configured,
        Some(scan_reader),
        scan_namespace.clone(),
        args.cache_size,
        args.verdict_cache_ttl,
        metrics.clone(),
    );
    if catalog_configured {
        let config = args.storage.config(|| PathBuf::from("/tmp/stella-webhook"));
        let verdicts = verdicts.clone();
        tasks.push(tokio::spawn(async move {
            let mut wait = Duration::from_millis(500);
            loop {
                match stella_store::Store::open(&config).await {
                    Ok(store) => {
                        opened.send_replace(Some(store.clone()));
                        verdicts.set_store(store);
                        tracing::info!("catalog open");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, retry_in = ?wait, "failed to open the catalog; answering with each Policy's onError meanwhile");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }));
    }

    let platform = args.platform.parse().map_err(StartError::Platform)?;
    std::fs::create_dir_all(&args.blob_dir).map_err(|source| StartError::BlobDir {
        path: args.blob_dir.display().to_string(),
        source,
    })?;
    let registries = Registries::new(
        args.insecure_registries.clone(),
        platform,
        args.cache_size,
        args.signature_cache_ttl,
        args.blob_dir.clone(),
        metrics.clone(),
    );
    let state = Arc::new(State {
        settings: Settings {
            deadline: args.deadline,
            cap_enforce: args.mode == Mode::Enforce,
            enforce_selector: args.enforce_namespace_selector.clone(),
            scan_namespace,
            insecure_registries: args.insecure_registries.clone(),
        },
        policies: RwLock::new(Arc::new(PolicySet::default())),
        namespaces: Namespaces::Watched(ns_reader),
        kube: Some(client.clone()),
        verdicts,
        registries,
        metrics: metrics.clone(),
        events,
        ready: Default::default(),
    });

    // Policies: recompile on every change, and on a timer for key Secret changes.
    // Guarded: one Policy our types cannot read is skipped (and said so), not the whole watch.
    let (policy_reader, policy_writer) = reflector::store::<DeserializeGuard<Policy>>();
    let (changed_tx, mut changed_rx) = tokio::sync::mpsc::channel::<()>(1);
    let policy_watch = watcher(
        Api::<DeserializeGuard<Policy>>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(policy_writer)
    .touched_objects()
    .for_each(move |event| {
        if let Err(error) = &event {
            tracing::warn!(%error, "policy watch error");
        }
        let _ = changed_tx.try_send(());
        futures::future::ready(())
    });
    tasks.push(tokio::spawn(policy_watch));
    let policy_state = state.clone();
    let (key_client, key_namespace, key_refresh) =
        (client.clone(), args.namespace.clone(), args.key_refresh);
    tasks.push(tokio::spawn(async move {
        // One waiter only: the reflector store wakes a single task when it becomes ready.
        if policy_reader.wait_until_ready().await.is_err() {
            return;
        }
        loop {
            let readable: Vec<Arc<Policy>> = policy_reader
                .state()
                .iter()
                .filter_map(|guard| match &guard.0 {
                    Ok(policy) => Some(Arc::new(policy.clone())),
                    Err(invalid) => {
                        tracing::warn!(
                            policy = invalid.metadata.name.as_deref().unwrap_or_default(),
                            error = %invalid.error,
                            "skipping a Policy that does not deserialize"
                        );
                        None
                    }
                })
                .collect();
            let set = compile(&key_client, &key_namespace, &readable).await;
            tracing::info!(policies = set.policies.len(), "admission policies loaded");
            policy_state.set_policies(set);
            policy_state.ready.store(true, Ordering::Relaxed);
            let _ = tokio::time::timeout(key_refresh, changed_rx.recv()).await;
            // Coalesce bursts of changes.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while changed_rx.try_recv().is_ok() {}
        }
    }));

    // The serving certificate.
    let pem = match tls::read_dir(&args.tls_dir)? {
        Some(pem) => {
            tracing::info!(dir = %args.tls_dir.display(), "serving the mounted certificate");
            pem
        }
        None => {
            let provision = Provision {
                namespace: args.namespace.clone(),
                secret: args.tls_secret.clone(),
                service: args.service.clone(),
                webhook_configuration: Some(args.webhook_configuration.clone())
                    .filter(|s| !s.is_empty()),
            };
            tracing::info!(secret = %provision.secret, "no mounted certificate: self-provisioning");
            tls::provision(&client, &provision).await?
        }
    };
    let certs = CertStore::new(&pem)?;
    metrics.cert_reload(true);
    tasks.push(tokio::spawn(tls::watch_dir(
        certs.clone(),
        args.tls_dir.clone(),
        args.tls_reload,
        metrics.clone(),
    )));

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let bind = |addr| move |source| StartError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(bind(args.listen))?;
    let admission_addr = listener.local_addr().map_err(bind(args.listen))?;
    tasks.push(tokio::spawn(server::serve_tls(
        listener,
        certs.server_config(),
        server::admission_routes(state.clone()),
        stopped(stop_rx.clone()),
    )));
    let ops = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(bind(args.metrics_addr))?;
    let metrics_addr = ops.local_addr().map_err(bind(args.metrics_addr))?;
    tasks.push(tokio::spawn(
        warp::serve(server::ops_routes(state.clone()))
            .incoming(ops)
            .graceful(stopped(stop_rx))
            .run(),
    ));

    tracing::info!(%admission_addr, %metrics_addr, mode = ?args.mode, deadline_ms = args.deadline.as_millis() as u64, "stella-webhook serving");
    Ok(Running {
        admission_addr,
        metrics_addr,
        state,
        stop,
        tasks,
    })
}

/// Why the process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to reach the Kubernetes API server: {0}")]
    Client(#[from] kube::Error),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("failed to watch for SIGTERM: {0}")]
    Signal(std::io::Error),
}

/// The binary: parse, serve until SIGTERM / Ctrl-C.
pub async fn main() -> Result<(), Error> {
    let cli = <Cli as clap::Parser>::parse();
    let Command::Serve(args) = cli.command;
    init_tracing(args.log_json);
    let client = Client::try_default().await?;
    let running = start(args, client).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Error::Signal)?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_deployment_args_parse() {
        let cli = Cli::try_parse_from([
            "stella-webhook",
            "serve",
            "--mode=dry-run",
            "--tls-dir=/tls",
            "--deadline=3s",
            "--webhook-configuration=stella-zastava",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command;
        assert_eq!(args.deadline, Duration::from_secs(3));
        assert_eq!(args.mode, Mode::DryRun);
        assert!(Cli::try_parse_from(["stella-webhook", "serve", "--deadline=30s"]).is_err());
        // The admission-enforce overlay's flags.
        let cli = Cli::try_parse_from([
            "stella-webhook",
            "serve",
            "--mode=enforce",
            "--enforce-namespace-selector=stella-ops.org/enforce=true",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command;
        assert!(args.enforce_namespace_selector.is_some());
        assert!(Cli::try_parse_from(["stella-webhook", "serve", "--deadline=0ms"]).is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3h").is_err());
    }
}
