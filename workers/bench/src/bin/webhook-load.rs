//! `stella-webhook-load`: POSTs one AdmissionReview to a webhook at a fixed rate over TLS and
//! prints p50 / p90 / p99 / max. Loopback use only; bounded by `--duration`.

use clap::Parser;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "stella-webhook-load",
    about = "Loopback load client for the admission webhook"
)]
struct Args {
    /// The webhook's HTTPS address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: std::net::SocketAddr,
    /// CA certificate (PEM) that signed the webhook's certificate.
    #[arg(long)]
    ca: PathBuf,
    /// Server name to verify.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// The AdmissionReview JSON to send.
    #[arg(long)]
    review: PathBuf,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long to send, in seconds.
    #[arg(long, value_parser = seconds, default_value = "10")]
    duration: std::time::Duration,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let report = stella_bench::webhook_load::run(stella_bench::webhook_load::Plan {
        addr: args.addr,
        ca_pem: std::fs::read_to_string(&args.ca)?,
        server_name: args.server_name,
        body: std::fs::read(&args.review)?,
        rate: args.rate,
        duration: args.duration,
        connections: args.connections,
    })
    .await?;
    println!("{}", report.summary());
    Ok(())
}

fn seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0 {
        Ok(std::time::Duration::from_secs_f64(seconds))
    } else {
        Err(format!("{text:?}: between 0 and 3600 seconds"))
    }
}
