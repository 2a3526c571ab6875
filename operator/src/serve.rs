//! `stella-operator run`: the long-running process. It campaigns for leadership on a Lease
//! (only the leader reconciles; followers stand by), serves `/healthz`, `/readyz` and
//! Prometheus `/metrics`, logs as text or JSON, and on SIGTERM / Ctrl-C stops campaigning and
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
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, env = "STELLA_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log lines as JSON objects (for log shippers) instead of text.
    #[arg(long, env = "STELLA_LOG_JSON")]
    pub log_json: bool,
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

/// Runs until SIGTERM / Ctrl-C.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let subscriber = tracing_subscriber::fmt().with_env_filter(
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    );
    if args.log_json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: RunArgs) -> anyhow::Result<()> {
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
    let metrics = warp::path!("metrics").map(move || {
        warp::reply::with_header(
            metrics_state.metrics(&metrics_identity),
            "content-type",
            "text/plain; version=0.0.4",
        )
    });
    let routes = warp::get().and(healthz.or(readyz).or(metrics));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, identity, "serving /healthz /readyz /metrics");
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
        while leading_rx.changed().await.is_ok() {
            let leading = *leading_rx.borrow();
            watcher_state.leading.store(leading, Ordering::Relaxed);
            watcher_state.transitions.fetch_add(1, Ordering::Relaxed);
            if leading {
                tracing::info!("became the leader");
            } else {
                tracing::info!("no longer the leader");
            }
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
    watcher.abort();
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
