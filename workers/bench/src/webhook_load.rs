//! A loopback load client for the admission endpoint: an open-loop schedule at a fixed rate
//! (latency is measured from each request's scheduled time, so a stalled server shows up as
//! queueing rather than hiding it), HTTP/1.1 keep-alive over rustls on a few connections,
//! and percentiles of the answers. Bounded in time and count; it stops by itself.

use rustls::pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What to send.
#[derive(Clone, Debug)]
pub struct Plan {
    pub addr: SocketAddr,
    /// PEM of the CA that signed the webhook's certificate.
    pub ca_pem: String,
    /// TLS server name to verify (`localhost` for the test certificates).
    pub server_name: String,
    /// The AdmissionReview to POST.
    pub body: Vec<u8>,
    pub rate: u32,
    pub duration: Duration,
    pub connections: usize,
}

/// What came back.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub sent: usize,
    pub ok: usize,
    pub allowed: usize,
    pub denied: usize,
    pub failed: usize,
    /// Sorted latencies of the answered requests.
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Report {
    /// The `q`-quantile (0..=1) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let at = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[at.min(self.latencies.len() - 1)]
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }

    /// One line: rate achieved, p50 / p90 / p99 / max, outcomes.
    pub fn summary(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "{} requests in {:.1} s ({:.0}/s): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} allowed, {} denied, {} failed",
            self.sent,
            self.elapsed.as_secs_f64(),
            self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9),
            ms(self.quantile(0.5)),
            ms(self.quantile(0.9)),
            ms(self.quantile(0.99)),
            ms(self.max()),
            self.allowed,
            self.denied,
            self.failed
        )
    }
}

/// Why the load cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the CA certificate does not parse: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("the CA certificate is not usable: {0}")]
    Tls(#[from] rustls::Error),
    #[error("a connection task failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

fn connector(ca_pem: &str) -> Result<tokio_rustls::TlsConnector, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

type Stream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(plan: &Plan, tls: &tokio_rustls::TlsConnector) -> std::io::Result<Stream> {
    let tcp = tokio::net::TcpStream::connect(plan.addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from(plan.server_name.clone())
        .map_err(std::io::Error::other)?;
    tls.connect(name, tcp).await
}

/// One request/response on a kept-alive connection: the response body.
async fn exchange(
    stream: &mut Stream,
    head: &[u8],
    body: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    stream.write_all(head).await?;
    stream.write_all(body).await?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let (header_end, length) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(std::io::Error::other(
                    head.lines().next().unwrap_or("").to_string(),
                ));
            }
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| std::io::Error::other("no content-length"))?;
            break (end + 4, length);
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("response head too large"));
        }
    };
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf[header_end..header_end + length].to_vec())
}

/// Runs the plan.
pub async fn run(plan: Plan) -> Result<Report, Error> {
    let tls = connector(&plan.ca_pem)?;
    let total = (plan.rate as f64 * plan.duration.as_secs_f64()).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(plan.rate.max(1)));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let rx = Receiver(Arc::new(tokio::sync::Mutex::new(rx)));
    let head = format!(
        "POST /validate HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        plan.server_name,
        plan.body.len()
    )
    .into_bytes();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..plan.connections.max(1) {
        let (rx, tls, plan, head) = (rx.clone(), tls.clone(), plan.clone(), head.clone());
        workers.push(tokio::spawn(async move {
            let mut report = Report::default();
            let mut stream: Option<Stream> = None;
            let mut buf = Vec::new();
            while let Some(scheduled) = rx.recv().await {
                report.sent += 1;
                if stream.is_none() {
                    stream = connect(&plan, &tls).await.ok();
                }
                let Some(s) = stream.as_mut() else {
                    report.failed += 1;
                    continue;
                };
                match exchange(s, &head, &plan.body, &mut buf).await {
                    Ok(body) => {
                        report.latencies.push(scheduled.elapsed());
                        report.ok += 1;
                        let value: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        match value.pointer("/response/allowed").and_then(|a| a.as_bool()) {
                            Some(true) => report.allowed += 1,
                            Some(false) => report.denied += 1,
                            None => report.failed += 1,
                        }
                    }
                    Err(_) => {
                        report.failed += 1;
                        stream = None;
                    }
                }
            }
            report
        }));
    }
    drop(rx);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..total {
        let tick = ticker.tick().await;
        if tx.send(tick.into_std()).is_err() {
            break;
        }
    }
    drop(tx);
    let mut report = Report::default();
    for worker in workers {
        let r = worker.await?;
        report.sent += r.sent;
        report.ok += r.ok;
        report.allowed += r.allowed;
        report.denied += r.denied;
        report.failed += r.failed;
        report.latencies.extend(r.latencies);
    }
    report.elapsed = started.elapsed();
    report.latencies.sort();
    Ok(report)
}

/// A multi-consumer queue of scheduled send times.
#[derive(Clone)]
struct Receiver(Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Instant>>>);

impl Receiver {
    async fn recv(&self) -> Option<Instant> {
        self.0.lock().await.recv().await
    }
}
