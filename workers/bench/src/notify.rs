//! `stella-bench --notify SECONDS`: Notify's two performance targets (issue 16, seed 001 §9),
//! each beside a baseline measured in the same run:
//!
//! 1. **Event → delivered at 100 events/s sustained**: a producer appends one
//!    `scheduler.rescan.delta` event every 10 ms to the catalog's outbox for `SECONDS`; the
//!    dispatcher (as the operator runs it: 500 ms idle poll, leases, the plan and cursor
//!    transaction, the SSRF guard, a signed Standard Webhooks POST) delivers each to a
//!    loopback HTTP receiver. Latency is event time → the receiver's 2xx, from the
//!    dispatcher's own measurement; p50 / p95 / p99 against the seed's 2 s. Baseline: the same
//!    bodies POSTed straight to the receiver at the same rate (no catalog, no dispatcher).
//! 2. **A 10,000-event digest rendered**: the events read back from the outbox as the
//!    dispatcher reads a digest's members, parsed, folded into one message and rendered as
//!    Slack Block Kit, a Teams card, text and HTML; against ≤ 100 ms. Baseline: parsing the
//!    same 10,000 CloudEvents from their JSON (what any renderer must at least do).

use anyhow::{Context, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stella_notify::event::{Data, Event, Finding, Payload, RESCAN_DELTA, Scope};
use stella_notify::{Action, Channel, Directory, Dispatcher, Kind, Rule, SystemClock, Template};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Events per second the producer sustains.
const RATE: u64 = 100;
/// Events in the digest.
const DIGEST_EVENTS: usize = 10_000;

/// A loopback HTTP/1.1 receiver answering 200 to every POST (keep-alive), counting them.
async fn receiver() -> Result<(String, Arc<Mutex<u64>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
    let count = Arc::new(Mutex::new(0u64));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16384];
                loop {
                    // One request: the head, then content-length bytes.
                    let (head_end, length) = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (i + 4, length);
                        }
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    while buf.len() < head_end + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + length);
                    *seen.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if socket.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((url, count))
}

fn event(i: usize, at: chrono::DateTime<chrono::Utc>, findings: usize) -> Event {
    let image = format!("registry.example/fleet/app-{}:1", i % 500);
    Event::new(
        RESCAN_DELTA,
        "/stella-ops/operator",
        &format!("sha256:{:064x}", i),
        "fleet",
        at,
        Data {
            scope: Scope {
                namespace: "fleet".into(),
                repository: stella_notify::event::repository_of(&image),
                image,
                digest: format!("sha256:{:064x}", i),
                workloads: vec![format!("Deployment/app-{}", i % 500)],
                ..Scope::default()
            },
            payload: Payload {
                previous_verdict: Some("PASS".into()),
                verdict: Some("FAIL".into()),
                findings: Some(
                    (0..findings)
                        .map(|f| Finding {
                            id: format!("CVE-2026-{:05}", (i * 7 + f) % 20_000),
                            severity: ["Critical", "High", "Medium"][f % 3].into(),
                            package: format!("pkg:deb/debian/lib{}@1.0", (i + f) % 300),
                            fixed: "1.1".into(),
                            link: "https://osv.dev/vulnerability/CVE-2026-00001".into(),
                            ..Finding::default()
                        })
                        .collect(),
                ),
                ..Payload::default()
            },
        },
    )
}

struct Fleet {
    rule: Rule,
    channel: Channel,
}

impl Directory for Fleet {
    fn rules(&self) -> Vec<Rule> {
        vec![self.rule.clone()]
    }
    fn channel(&self, id: &str) -> Option<Channel> {
        (id == self.channel.id).then(|| self.channel.clone())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(name: &str, mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let (p50, p95, p99) = (
        percentile(&samples, 0.50),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
    );
    println!(
        "{name:<44} {:>6} deliveries   p50 {:>8.1} ms   p95 {:>8.1} ms   p99 {:>8.1} ms",
        samples.len(),
        p50 * 1000.0,
        p95 * 1000.0,
        p99 * 1000.0
    );
    (p50, p95, p99)
}

pub(crate) async fn run(seconds: u64, catalog_url: Option<String>) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir()?;
    let store = match &catalog_url {
        Some(url) => {
            stella_store::Store::open(&stella_store::StoreConfig {
                data_dir: data.path().to_path_buf(),
                catalog_url: Some(url.clone()),
                object_store_url: None,
            })
            .await?
        }
        None => stella_store::Store::open_embedded(data.path()).await?,
    };
    let (url, received) = receiver().await?;
    let channel = Channel {
        id: "fleet/hook".into(),
        kind: Kind::Webhook,
        url: url.clone(),
        target: None,
        email: None,
        signing_secret: Some(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_vec()),
        timeout: Duration::from_secs(10),
        per_minute: 1_000_000,
        max_attempts: 5,
        allow_hosts: vec!["127.0.0.1".into()],
        enabled: true,
    };
    let rule = Rule {
        id: "fleet/all".into(),
        namespace: "fleet".into(),
        cluster_wide: false,
        kinds: vec![RESCAN_DELTA.into()],
        min_severity: None,
        namespaces: vec![],
        repositories: vec![],
        verdicts: vec![],
        kev_only: false,
        include_accepted_justifications: false,
        actions: vec![Action {
            channel: channel.id.clone(),
            target: None,
            template: Template::Concise,
            custom: None,
            throttle: None,
            digest: None,
        }],
        enabled: true,
    };
    let backend = if catalog_url.is_some() {
        "PostgreSQL"
    } else {
        "embedded SQLite"
    };
    let total = (seconds * RATE) as usize;
    println!(
        "notify: {total} events at {RATE}/s for {seconds} s, outbox in {backend}, a loopback webhook receiver"
    );

    // Baseline: the same bodies straight to the receiver, at the same rate.
    let mut baseline = Vec::with_capacity(total);
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / RATE));
    for i in 0..total {
        ticker.tick().await;
        let e = event(i, chrono::Utc::now(), 3);
        let started = Instant::now();
        let body = serde_json::to_vec(&e)?;
        let sent = stella_notify::send::post(
            &channel,
            &e.id,
            "application/cloudevents+json",
            body,
            chrono::Utc::now().timestamp(),
        )
        .await;
        anyhow::ensure!(
            sent == stella_notify::send::Sent::Ok,
            "baseline send: {sent:?}"
        );
        baseline.push(started.elapsed().as_secs_f64());
    }
    let (_, base95, _) = summary("baseline: direct POST, no outbox", baseline);

    // The dispatcher as the operator runs it, fed at 100/s.
    let latencies = Arc::new(Mutex::new(Vec::<f64>::with_capacity(total)));
    let collected = latencies.clone();
    let dispatcher = Dispatcher::new(
        store.notify.clone(),
        Arc::new(Fleet { rule, channel }),
        Arc::new(SystemClock),
        "bench",
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatching = tokio::spawn(async move {
        dispatcher
            .run(
                Duration::from_millis(500),
                |tick| {
                    collected
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(&tick.latencies)
                },
                async {
                    let _ = stopped.await;
                },
            )
            .await
    });
    let before = *received.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / RATE));
    for i in 0..total {
        ticker.tick().await;
        let e = event(total + i, chrono::Utc::now(), 3);
        store.notify.append(&[e.to_outbox()]).await?;
    }
    let produced = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while latencies.lock().unwrap_or_else(|e| e.into_inner()).len() < total {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {total} delivered within 60 s of the last event",
            latencies.lock().unwrap_or_else(|e| e.into_inner()).len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    dispatching.await?;
    let delivered = *received.lock().unwrap_or_else(|e| e.into_inner()) - before;
    anyhow::ensure!(
        delivered == total as u64,
        "the receiver got {delivered} of {total}"
    );
    println!(
        "produced at {:.1} events/s",
        total as f64 / produced.as_secs_f64()
    );
    let samples = latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (_, p95, _) = summary("dispatcher: outbox → plan → lease → POST", samples);
    println!(
        "event → delivered p95 {:.0} ms (target ≤ 2000 ms): {:.1}× the direct POST's p95",
        p95 * 1000.0,
        p95 / base95.max(1e-9)
    );

    // The digest: 10,000 events from the outbox into one message.
    let at = chrono::Utc::now();
    let events: Vec<Event> = (0..DIGEST_EVENTS)
        .map(|i| event(1_000_000 + i, at, 2))
        .collect();
    let rows: Vec<_> = events.iter().map(Event::to_outbox).collect();
    for chunk in rows.chunks(1000) {
        store.notify.append(chunk).await?;
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let bodies: Vec<String> = rows.iter().map(|r| r.body.clone()).collect();
    let mut base = Vec::new();
    let mut read = Vec::new();
    let mut render = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let parsed: Vec<Event> = bodies
            .iter()
            .map(|b| serde_json::from_str(b))
            .collect::<Result<_, _>>()?;
        base.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(parsed.len() == DIGEST_EVENTS);

        let t = Instant::now();
        let fetched = store.notify.events(&ids).await?;
        read.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(fetched.len() == DIGEST_EVENTS, "{} read", fetched.len());

        let t = Instant::now();
        let parsed: Vec<Event> = fetched
            .iter()
            .map(Event::from_outbox)
            .collect::<Result<_, _>>()
            .context("parse")?;
        let pairs: Vec<(Event, Vec<Finding>)> = parsed
            .into_iter()
            .map(|e| {
                let f = e.data.payload.findings.clone().unwrap_or_default();
                (e, f)
            })
            .collect();
        let message = stella_notify::render::Message::of_digest(
            &pairs,
            "fleet/all",
            "hourly",
            Template::Detailed,
        );
        let slack = serde_json::to_vec(&message.slack())?;
        let teams = serde_json::to_vec(&message.teams())?;
        let text = message.text();
        let html = message.html();
        render.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            message.title.contains("10000 event(s)") && !slack.is_empty() && !teams.is_empty(),
            "{}",
            message.title
        );
        std::hint::black_box((text, html));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (base, read, render) = (median(base), median(read), median(render));
    println!(
        "digest of {DIGEST_EVENTS} events: parse + fold + render (Slack, Teams, text, HTML) {:.1} ms (target ≤ 100 ms); reading them from the outbox {:.1} ms; baseline (parsing the JSON alone) {:.1} ms: {:.2}×",
        render * 1000.0,
        read * 1000.0,
        base * 1000.0,
        render / base.max(1e-9)
    );
    Ok(())
}
