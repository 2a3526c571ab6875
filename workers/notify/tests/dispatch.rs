//! The dispatcher against a real HTTP receiver on loopback and the embedded catalog, driven
//! by a test clock: one message per event × rule × action however often the event is emitted
//! or the dispatcher restarts; 500 and 429 (`Retry-After`) are retried, then dead-lettered
//! with the reason; a throttle window sends the first and records the rest; an hourly digest
//! folds its events into one message; two dispatchers send each delivery once; a loopback
//! URL without an allow-list entry is refused; and the generic webhook's signature verifies
//! with the `standardwebhooks` Python package — an independent implementation.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use stella_notify::event::{Data, Event, Finding, Payload, RESCAN_DELTA, Scope};
use stella_notify::{Action, Channel, Clock, Directory, Dispatcher, Kind, Period, Rule, Template};
use stella_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the receiver got: method line, headers, body.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A loopback HTTP/1.1 receiver answering each request with the next scripted status
/// (then 200), recording what it received.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receiver(script: Vec<(u16, Option<&'static str>)>) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let got = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script.into_iter()));
    let sink = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.lines();
                let path = lines
                    .next()
                    .unwrap_or("")
                    .split(' ')
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                sink.lock().unwrap().push(Received {
                    path,
                    headers,
                    body: buf[head_end..].to_vec(),
                });
                let (status, retry_after) = script.lock().unwrap().next().unwrap_or((200, None));
                let extra = retry_after
                    .map(|r| format!("retry-after: {r}\r\n"))
                    .unwrap_or_default();
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra}connection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    Receiver { url, got }
}

struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

struct Dir {
    rules: Vec<Rule>,
    channels: Vec<Channel>,
}

impl Directory for Dir {
    fn rules(&self) -> Vec<Rule> {
        self.rules.clone()
    }
    fn channel(&self, id: &str) -> Option<Channel> {
        self.channels.iter().find(|c| c.id == id).cloned()
    }
}

fn channel(id: &str, kind: Kind, url: &str) -> Channel {
    Channel {
        id: id.into(),
        kind,
        url: url.into(),
        target: None,
        email: None,
        signing_secret: None,
        timeout: std::time::Duration::from_secs(5),
        per_minute: 1000,
        max_attempts: 3,
        allow_hosts: vec!["127.0.0.1".into()],
        enabled: true,
    }
}

fn rule(id: &str, channel: &str, throttle: Option<u64>, digest: Option<Period>) -> Rule {
    Rule {
        id: id.into(),
        namespace: "prod".into(),
        cluster_wide: false,
        kinds: vec![RESCAN_DELTA.into()],
        min_severity: Some(stella_model::Severity::High),
        namespaces: vec![],
        repositories: vec![],
        verdicts: vec![],
        kev_only: false,
        include_accepted_justifications: false,
        actions: vec![Action {
            channel: channel.into(),
            target: None,
            template: Template::Concise,
            custom: None,
            throttle: throttle.map(std::time::Duration::from_secs),
            digest,
        }],
        enabled: true,
    }
}

fn event(image: &str, cve: &str, at: DateTime<Utc>) -> Event {
    Event::new(
        RESCAN_DELTA,
        "/stella-ops/operator",
        &format!("sha256:{image}"),
        "prod",
        at,
        Data {
            scope: Scope {
                namespace: "prod".into(),
                image: format!("registry.example/{image}:1"),
                repository: format!("registry.example/{image}"),
                digest: format!("sha256:{image}"),
                workloads: vec![format!("Deployment/{image}")],
                ..Scope::default()
            },
            payload: Payload {
                previous_verdict: Some("PASS".into()),
                verdict: Some("FAIL".into()),
                findings: Some(vec![Finding {
                    id: cve.into(),
                    severity: "Critical".into(),
                    package: "pkg:deb/debian/openssl@3.0.1".into(),
                    fixed: "3.0.2".into(),
                    ..Finding::default()
                }]),
                ..Payload::default()
            },
        },
    )
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .to_utc()
}

async fn setup(dir: Dir) -> (tempfile::TempDir, Store, Arc<TestClock>, Arc<Dir>) {
    let data = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(data.path()).await.unwrap();
    (
        data,
        store,
        Arc::new(TestClock(Mutex::new(t0()))),
        Arc::new(dir),
    )
}

#[tokio::test]
async fn once_per_event_rule_and_action_across_replays_and_restarts() {
    let hook = receiver(vec![]).await;
    let dir = Dir {
        rules: vec![rule("prod/crit", "prod/slack", None, None)],
        channels: vec![channel(
            "prod/slack",
            Kind::Slack,
            &format!("{}/slack", hook.url),
        )],
    };
    let (_data, store, clock, dir) = setup(dir).await;
    let e = event("web", "CVE-2026-1", t0());
    store.notify.append(&[e.to_outbox()]).await.unwrap();
    let first = Dispatcher::new(store.notify.clone(), dir.clone(), clock.clone(), "a");
    let tick = first.tick().await.unwrap();
    assert_eq!((tick.events, tick.planned, tick.sent), (1, 1, 1));
    // Emitted again, and a new dispatcher (a restart) reading from the start: nothing new.
    store.notify.append(&[e.to_outbox()]).await.unwrap();
    let restarted = Dispatcher::new(store.notify.clone(), dir.clone(), clock.clone(), "b");
    assert_eq!(restarted.tick().await.unwrap().sent, 0);
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    let text = body.to_string();
    assert!(
        text.contains("CVE-2026-1")
            && text.contains("PASS → FAIL")
            && text.contains("Deployment/web"),
        "{text}"
    );
    assert!(text.contains("fixed in 3.0.2") && text.contains("prod/crit"));
    let rows = store
        .notify
        .deliveries(None, Some("prod/crit"), None, 10)
        .await
        .unwrap();
    assert_eq!(
        (rows.len(), rows[0].status.as_str(), rows[0].attempts),
        (1, "sent", 1)
    );
}

#[tokio::test]
async fn failures_retry_with_backoff_then_dead_letter() {
    let hook = receiver(vec![(500, None), (429, Some("120")), (500, None)]).await;
    let dir = Dir {
        rules: vec![rule("prod/crit", "prod/hook", None, None)],
        channels: vec![channel(
            "prod/hook",
            Kind::Webhook,
            &format!("{}/hook", hook.url),
        )],
    };
    let (_data, store, clock, dir) = setup(dir).await;
    store
        .notify
        .append(&[event("web", "CVE-2026-1", t0()).to_outbox()])
        .await
        .unwrap();
    let d = Dispatcher::new(store.notify.clone(), dir.clone(), clock.clone(), "a");
    assert_eq!(d.tick().await.unwrap().retried, 1, "500");
    assert_eq!(
        d.tick().await.unwrap().sent + d.tick().await.unwrap().retried,
        0,
        "not due yet"
    );
    clock.advance(Duration::seconds(3));
    assert_eq!(d.tick().await.unwrap().retried, 1, "429");
    let row = &store.notify.deliveries(None, None, None, 1).await.unwrap()[0];
    assert_eq!(row.last_error, "HTTP 429");
    let due = DateTime::parse_from_rfc3339(&row.next_attempt_at)
        .unwrap()
        .to_utc();
    assert!(
        due - clock.now() >= Duration::seconds(120),
        "Retry-After honoured: {due}"
    );
    clock.advance(Duration::seconds(121));
    let tick = d.tick().await.unwrap();
    assert_eq!(tick.dead, 1, "the third failure of three attempts");
    let row = &store
        .notify
        .deliveries(None, None, Some("dead"), 1)
        .await
        .unwrap()[0];
    assert!(
        row.last_error.contains("HTTP 500") && row.last_error.contains("gave up after 3"),
        "{}",
        row.last_error
    );
    assert_eq!(hook.got.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn throttle_sends_the_first_and_records_the_rest() {
    let hook = receiver(vec![]).await;
    let dir = Dir {
        rules: vec![rule("prod/crit", "prod/slack", Some(300), None)],
        channels: vec![channel("prod/slack", Kind::Slack, &hook.url)],
    };
    let (_data, store, clock, dir) = setup(dir).await;
    let d = Dispatcher::new(store.notify.clone(), dir.clone(), clock.clone(), "a");
    for (i, cve) in ["CVE-1", "CVE-2", "CVE-3"].iter().enumerate() {
        store
            .notify
            .append(&[event("web", cve, t0() + Duration::seconds(i as i64)).to_outbox()])
            .await
            .unwrap();
    }
    store
        .notify
        .append(&[event("api", "CVE-1", t0()).to_outbox()])
        .await
        .unwrap();
    let tick = d.tick().await.unwrap();
    assert_eq!(
        (tick.sent, tick.throttled),
        (2, 2),
        "one per image per window"
    );
    clock.advance(Duration::minutes(6));
    store
        .notify
        .append(&[event("web", "CVE-4", clock.now()).to_outbox()])
        .await
        .unwrap();
    assert_eq!(d.tick().await.unwrap().sent, 1, "a new window");
    let throttled = store
        .notify
        .deliveries(None, None, Some("throttled"), 10)
        .await
        .unwrap();
    assert!(throttled.iter().all(|r| r.reason.contains("window open")));
}

#[tokio::test]
async fn an_hourly_digest_is_one_message() {
    let hook = receiver(vec![]).await;
    let dir = Dir {
        rules: vec![rule(
            "prod/digest",
            "prod/slack",
            None,
            Some(Period::Hourly),
        )],
        channels: vec![channel("prod/slack", Kind::Slack, &hook.url)],
    };
    let (_data, store, clock, dir) = setup(dir).await;
    let d = Dispatcher::new(store.notify.clone(), dir.clone(), clock.clone(), "a");
    let events: Vec<_> = (0..30)
        .map(|i| event(&format!("img{i}"), &format!("CVE-{i}"), t0()).to_outbox())
        .collect();
    store.notify.append(&events).await.unwrap();
    assert_eq!(d.tick().await.unwrap().sent, 0, "the window is open");
    clock.advance(Duration::minutes(61));
    let tick = d.tick().await.unwrap();
    assert_eq!((tick.coalesced, tick.sent), (30, 1));
    assert_eq!(d.tick().await.unwrap().sent, 0);
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let text = String::from_utf8_lossy(&got[0].body).to_string();
    assert!(
        text.contains("Hourly digest: 30 event(s) across 30 image(s)"),
        "{text}"
    );
    assert!(text.contains("and 25 more"), "{text}");
}

#[tokio::test]
async fn two_dispatchers_send_each_delivery_once() {
    let hook = receiver(vec![]).await;
    let dir = Dir {
        rules: vec![rule("prod/crit", "prod/hook", None, None)],
        channels: vec![channel("prod/hook", Kind::Webhook, &hook.url)],
    };
    let (_data, store, clock, dir) = setup(dir).await;
    let events: Vec<_> = (0..40)
        .map(|i| event(&format!("img{i}"), "CVE-1", t0()).to_outbox())
        .collect();
    store.notify.append(&events).await.unwrap();
    let a = Dispatcher::new(store.notify.clone(), dir.clone(), clock.clone(), "a");
    let b = Dispatcher::new(store.notify.clone(), dir.clone(), clock.clone(), "b");
    let (ta, tb) = tokio::join!(a.tick(), b.tick());
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert_eq!(ta.sent + tb.sent, 40);
    let got = hook.got.lock().unwrap().clone();
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["id"].to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (40, 40), "each once");
}

#[tokio::test]
async fn loopback_is_refused_without_an_allow_list_entry() {
    let hook = receiver(vec![]).await;
    let mut ch = channel("prod/hook", Kind::Webhook, &hook.url);
    ch.allow_hosts.clear();
    let dir = Dir {
        rules: vec![rule("prod/crit", "prod/hook", None, None)],
        channels: vec![ch],
    };
    let (_data, store, clock, dir) = setup(dir).await;
    store
        .notify
        .append(&[event("web", "CVE-1", t0()).to_outbox()])
        .await
        .unwrap();
    let d = Dispatcher::new(store.notify.clone(), dir.clone(), clock.clone(), "a");
    assert_eq!(d.tick().await.unwrap().dead, 1);
    let row = &store
        .notify
        .deliveries(None, None, Some("dead"), 1)
        .await
        .unwrap()[0];
    assert!(row.last_error.contains("allowHosts"), "{}", row.last_error);
    assert!(hook.got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn webhook_signatures_verify_with_the_standardwebhooks_package() {
    let python = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIP: the Python package standardwebhooks is not installed (pip install standardwebhooks)"
        );
        return;
    }
    let hook = receiver(vec![]).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut ch = channel("prod/hook", Kind::Webhook, &format!("{}/events", hook.url));
    ch.signing_secret = Some(secret.as_bytes().to_vec());
    let dir = Dir {
        rules: vec![rule("prod/crit", "prod/hook", None, None)],
        channels: vec![ch],
    };
    let (_data, store, _clock, dir) = setup(dir).await;
    // The verifier checks the timestamp against the real time.
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let e = event("web", "CVE-2026-1", Utc::now());
    store.notify.append(&[e.to_outbox()]).await.unwrap();
    let d = Dispatcher::new(store.notify.clone(), dir, clock, "a");
    assert_eq!(d.tick().await.unwrap().sent, 1);
    let got = hook.got.lock().unwrap()[0].clone();
    assert_eq!(got.path, "/events");
    assert_eq!(got.headers["content-type"], "application/cloudevents+json");
    let cloud: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(cloud["id"], e.id.as_str());
    assert_eq!(cloud["specversion"], "1.0");
    let verify = |body: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("body"), body).unwrap();
        let script = format!(
            "import sys, standardwebhooks\n\
             w = standardwebhooks.Webhook({secret:?})\n\
             body = open({:?}, 'rb').read()\n\
             w.verify(body, {{'webhook-id': {:?}, 'webhook-timestamp': {:?}, 'webhook-signature': {:?}}})\n",
            dir.path().join("body").display().to_string(),
            got.headers["webhook-id"],
            got.headers["webhook-timestamp"],
            got.headers["webhook-signature"],
        );
        std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap()
    };
    let ok = verify(&got.body);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut tampered = got.body.clone();
    tampered[10] ^= 1;
    assert!(
        !verify(&tampered).status.success(),
        "a changed body fails verification"
    );
}

/// The `aiosmtpd` server of `tests/smtpd.py` on a free loopback port, stopped on drop.
struct Smtpd {
    port: u16,
    out: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtpd {
    /// None (with a SKIP line) when aiosmtpd is not installed.
    fn start(extra: &[&str]) -> Option<Smtpd> {
        use std::io::BufRead;
        let python = std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output();
        if !python.is_ok_and(|o| o.status.success()) {
            eprintln!("SKIP: the Python package aiosmtpd is not installed (pip install aiosmtpd)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtpd.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(out.path())
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "smtpd.py did not start");
        Some(Smtpd { port, out, child })
    }

    /// The messages received so far: (envelope recipients, raw message).
    fn received(&self) -> Vec<(Vec<String>, String)> {
        let mut files: Vec<_> = std::fs::read_dir(self.out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
                let to = v["to"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect();
                (to, v["data"].as_str().unwrap().to_string())
            })
            .collect()
    }
}

/// A CA and a serving certificate for 127.0.0.1 signed by it: (CA PEM, cert PEM, key PEM).
fn smtp_certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

fn email_channel(port: u16, password: &str, ca: Option<&str>) -> Channel {
    let mut ch = channel(
        "prod/mail",
        Kind::Email,
        &format!("smtp://127.0.0.1:{port}"),
    );
    ch.target = Some("sec@example.org, oncall@example.org".into());
    ch.email = Some(stella_notify::email::Smtp {
        host: "127.0.0.1".into(),
        port,
        from: "stella@example.org".into(),
        username: Some("stella".into()),
        password: Some(password.into()),
        security: stella_notify::email::Security::StartTls,
        extra_roots_pem: ca.map(str::to_string),
    });
    ch
}

#[tokio::test]
async fn email_over_starttls_with_auth_reaches_an_aiosmtpd_server() {
    let (ca, cert, key) = smtp_certificates();
    let certs = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let tls = [
        "--tls",
        cert_path.to_str().unwrap(),
        key_path.to_str().unwrap(),
        "--auth",
        "stella",
        "hunter2",
    ];
    let Some(smtpd) = Smtpd::start(&tls) else {
        return;
    };
    let dir = Dir {
        rules: vec![rule("prod/crit", "prod/mail", None, None)],
        channels: vec![email_channel(smtpd.port, "hunter2", Some(&ca))],
    };
    let (_data, store, clock, dir) = setup(dir).await;
    let e = event("web", "CVE-2026-1", t0());
    store.notify.append(&[e.to_outbox()]).await.unwrap();
    let d = Dispatcher::new(store.notify.clone(), dir, clock, "a");
    let tick = d.tick().await.unwrap();
    assert_eq!((tick.sent, tick.dead), (1, 0), "{tick:?}");
    let got = smtpd.received();
    assert_eq!(got.len(), 1);
    let (to, raw) = &got[0];
    assert_eq!(to, &["sec@example.org", "oncall@example.org"]);
    assert!(raw.contains("From: stella@example.org"), "{raw}");
    assert!(raw.contains("multipart/alternative"));
    assert!(raw.contains("text/plain") && raw.contains("text/html"));
    assert!(raw.contains("CVE-2026-1") && raw.contains("registry.example/web:1"));
    let delivery = store.notify.deliveries(None, None, None, 10).await.unwrap();
    assert!(raw.contains(&format!("Message-ID: <{}@stella-ops.org>", delivery[0].id)));

    // A wrong password, an untrusted certificate, a server without STARTTLS: dead letters
    // with the reason, nothing sent.
    let message = stella_notify::render::Message {
        title: "test".into(),
        facts: vec![],
        findings: vec![],
        more: 0,
        link: String::new(),
        rule: "prod/crit".into(),
        custom: None,
    };
    let message = &message;
    let send = |ch: Channel| async move {
        stella_notify::send::deliver(&ch, "t-1", "", message, &[], false, 0).await
    };
    let dead = |sent: stella_notify::send::Sent| match sent {
        stella_notify::send::Sent::Dead { error } => error,
        other => panic!("expected a dead letter, got {other:?}"),
    };
    let wrong = dead(send(email_channel(smtpd.port, "wrong", Some(&ca))).await);
    assert!(
        wrong.contains("535") || wrong.to_lowercase().contains("auth"),
        "{wrong}"
    );
    let untrusted = dead(send(email_channel(smtpd.port, "hunter2", None)).await);
    assert!(
        untrusted.to_lowercase().contains("certificate") || untrusted.contains("TLS"),
        "{untrusted}"
    );
    let Some(plain) = Smtpd::start(&[]) else {
        return;
    };
    let refused = dead(send(email_channel(plain.port, "hunter2", Some(&ca))).await);
    assert!(refused.to_uppercase().contains("STARTTLS"), "{refused}");
    assert!(plain.received().is_empty());
    assert_eq!(smtpd.received().len(), 1, "nothing more was accepted");
}

#[tokio::test]
async fn a_custom_template_shapes_the_slack_message() {
    let hook = receiver(vec![]).await;
    let mut r = rule("prod/crit", "prod/slack", None, None);
    let custom = stella_notify::template::Custom {
        title: Some("{{ findings | length }} finding(s) in {{ event.data.scope.image }}".into()),
        body: "{% for f in findings %}*{{ f.id }}* fixed in {{ f.fixed }}\n{% endfor %}".into(),
    };
    stella_notify::template::check(&custom).unwrap();
    r.actions[0].custom = Some(Arc::new(custom));
    let dir = Dir {
        rules: vec![r],
        channels: vec![channel(
            "prod/slack",
            Kind::Slack,
            &format!("{}/slack", hook.url),
        )],
    };
    let (_data, store, clock, dir) = setup(dir).await;
    let e = event("web", "CVE-2026-7", t0());
    store.notify.append(&[e.to_outbox()]).await.unwrap();
    let d = Dispatcher::new(store.notify.clone(), dir, clock, "a");
    assert_eq!(d.tick().await.unwrap().sent, 1);
    let got = hook.got.lock().unwrap()[0].clone();
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "1 finding(s) in registry.example/web:1"
    );
    assert_eq!(
        body["blocks"][1]["text"]["text"],
        "*CVE-2026-7* fixed in 3.0.2"
    );
}
