//! `zastava.admission` event records: one per answered review, handed to a background writer
//! behind a bounded queue, so a slow sink drops events (counted) instead of slowing admission.
//! The writer appends them in batches to the catalog's Notify outbox as CloudEvents (where
//! NotifyRules match them), or writes them as JSON lines to a file or standard output.

use crate::metrics::Metrics;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Events waiting for the writer.
const QUEUE: usize = 8192;
/// Most events appended to the outbox in one transaction.
const BATCH: usize = 500;
/// The `source` of the webhook's CloudEvents.
pub const EVENT_SOURCE: &str = "/stella-ops/webhook";

/// One image of an event.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub container: String,
    /// `init`, `container`, `ephemeral`.
    pub container_kind: &'static str,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// The policy whose decision this is (the strictest of those governing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub decision: &'static str,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// A `zastava.admission` event.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Always `zastava.admission`.
    pub kind: &'static str,
    pub event_id: String,
    /// RFC 3339, UTC.
    pub ts: String,
    pub uid: String,
    pub namespace: String,
    pub operation: String,
    pub object_kind: String,
    pub object_name: String,
    /// The request was a server-side dry run (nothing was persisted).
    pub dry_run: bool,
    pub decision: &'static str,
    pub reason: &'static str,
    pub policies: Vec<String>,
    pub images: Vec<ImageRecord>,
    pub latency_ms: f64,
}

/// A random (version 4) UUID.
pub fn event_id() -> String {
    let mut b = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Where events go.
#[derive(Clone, Debug)]
pub enum Sink {
    Stdout,
    File(PathBuf),
    /// The catalog's Notify outbox, once the store is open (`None` until then).
    Outbox(tokio::sync::watch::Receiver<Option<stella_store::Store>>),
    /// Dropped (tests, or `--events=none`).
    Discard,
}

/// What `--events` names: `outbox`, `-`/`stdout`, `none`, `auto` (the outbox when a catalog
/// is configured, standard output otherwise) or a file path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkArg {
    Auto,
    Outbox,
    Stdout,
    Discard,
    File(PathBuf),
}

impl std::str::FromStr for SinkArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => SinkArg::Auto,
            "outbox" => SinkArg::Outbox,
            "-" | "stdout" => SinkArg::Stdout,
            "none" | "" => SinkArg::Discard,
            path => SinkArg::File(PathBuf::from(path)),
        })
    }
}

/// The CloudEvent of an admission record: subject the review's uid (a review the API server
/// sends again with the same answer is one event), the strictest image's verdict, and the
/// decision, reason, operation, policies and images as attributes.
pub fn envelope(e: &Event) -> stella_notify::Event {
    use serde_json::json;
    let strictest = e
        .images
        .iter()
        .find(|i| i.decision == "deny")
        .or_else(|| e.images.iter().find(|i| i.decision == "warn"))
        .or(e.images.first());
    let name = e.object_name.rsplit('/').next().unwrap_or(&e.object_name);
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("decision".to_string(), json!(e.decision));
    attributes.insert("reason".to_string(), json!(e.reason));
    attributes.insert("operation".to_string(), json!(e.operation));
    attributes.insert("dryRun".to_string(), json!(e.dry_run));
    attributes.insert("policies".to_string(), json!(e.policies));
    attributes.insert("images".to_string(), json!(e.images));
    let image = strictest.map(|i| i.image.clone()).unwrap_or_default();
    let time = chrono::DateTime::parse_from_rfc3339(&e.ts)
        .map(|t| t.to_utc())
        .unwrap_or_else(|_| chrono::Utc::now());
    stella_notify::Event::new(
        stella_notify::event::ADMISSION,
        EVENT_SOURCE,
        &e.uid,
        &e.namespace,
        time,
        stella_notify::Data {
            scope: stella_notify::Scope {
                namespace: e.namespace.clone(),
                repository: stella_notify::event::repository_of(&image),
                image,
                digest: strictest.and_then(|i| i.digest.clone()).unwrap_or_default(),
                workloads: vec![format!("{}/{name}", e.object_kind)],
                object: format!("{}/{}", e.object_kind, e.object_name),
                ..Default::default()
            },
            payload: stella_notify::Payload {
                summary: format!(
                    "{} {} {}/{}: {}",
                    e.decision, e.operation, e.object_kind, e.object_name, e.reason
                ),
                verdict: strictest.and_then(|i| i.verdict.clone()),
                attributes,
                ..Default::default()
            },
        },
    )
}

/// Appends queued events to the outbox in batches of at most [`BATCH`], waiting for the store
/// to open and retrying a failed append (with backoff) while the queue holds the rest.
async fn write_outbox(
    mut rx: mpsc::Receiver<Event>,
    mut store: tokio::sync::watch::Receiver<Option<stella_store::Store>>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        // An event the outbox refuses as such (larger than its limit) is logged and left out;
        // it would fail every retry.
        let rows: Vec<stella_store::OutboxEvent> = batch
            .iter()
            .map(|e| envelope(e).to_outbox())
            .filter(|row| match stella_store::check_event(row) {
                Ok(()) => true,
                Err(error) => {
                    tracing::error!(%error, id = %row.event_id, "admission event not recorded");
                    false
                }
            })
            .collect();
        let mut wait = std::time::Duration::from_millis(200);
        loop {
            let open = store.borrow().clone();
            let Some(open) = open else {
                if store.changed().await.is_err() {
                    return;
                }
                continue;
            };
            match open.notify.append(&rows).await {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, events = rows.len(), retry_in = ?wait, "failed to append admission events to the outbox");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
    }
}

/// The sending side.
#[derive(Clone, Debug)]
pub struct Events {
    tx: Option<mpsc::Sender<Event>>,
    metrics: Arc<Metrics>,
}

impl Events {
    /// Starts the writer for `sink`.
    pub fn start(sink: Sink, metrics: Arc<Metrics>) -> Events {
        let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
        let tx = match sink {
            Sink::Discard => None,
            Sink::Outbox(store) => {
                tokio::spawn(write_outbox(rx, store));
                Some(tx)
            }
            sink => {
                tokio::spawn(async move {
                    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &sink {
                        Sink::File(path) => match tokio::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)
                            .await
                        {
                            Ok(f) => Box::new(f),
                            Err(error) => {
                                tracing::error!(%error, path = %path.display(), "failed to open the event sink; events go to stdout");
                                Box::new(tokio::io::stdout())
                            }
                        },
                        _ => Box::new(tokio::io::stdout()),
                    };
                    while let Some(event) = rx.recv().await {
                        let mut line = serde_json::to_vec(&event).unwrap_or_default();
                        line.push(b'\n');
                        if let Err(error) = out.write_all(&line).await {
                            tracing::warn!(%error, "failed to write an event");
                        }
                        if rx.is_empty() {
                            let _ = out.flush().await;
                        }
                    }
                });
                Some(tx)
            }
        };
        Events { tx, metrics }
    }

    /// Queues an event; drops it (counted) when the writer is behind.
    pub fn record(&self, event: Event) {
        if let Some(tx) = &self.tx
            && tx.try_send(event).is_err()
        {
            self.metrics.event_dropped();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let id = event_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, event_id());
    }

    #[tokio::test]
    async fn events_are_json_lines_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let events = Events::start(Sink::File(path.clone()), Arc::new(Metrics::default()));
        for i in 0..3 {
            events.record(Event {
                kind: "zastava.admission",
                event_id: event_id(),
                ts: "2026-01-01T00:00:00Z".into(),
                uid: format!("u{i}"),
                namespace: "shop".into(),
                operation: "CREATE".into(),
                object_kind: "Pod".into(),
                object_name: "shop/web".into(),
                dry_run: false,
                decision: "deny",
                reason: "verdict-fail",
                policies: vec!["prod".into()],
                images: vec![],
                latency_ms: 1.5,
            });
        }
        let started = std::time::Instant::now();
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() == 3 {
                let first: serde_json::Value =
                    serde_json::from_str(text.lines().next().unwrap()).unwrap();
                assert_eq!(first["kind"], "zastava.admission");
                assert_eq!(first["uid"], "u0");
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "events not written: {text}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    fn admission(uid: &str, decision: &'static str) -> Event {
        Event {
            kind: "zastava.admission",
            event_id: event_id(),
            ts: "2026-01-01T00:00:00.000Z".into(),
            uid: uid.into(),
            namespace: "shop".into(),
            operation: "CREATE".into(),
            object_kind: "Pod".into(),
            object_name: "shop/web".into(),
            dry_run: false,
            decision,
            reason: "verdict-fail",
            policies: vec!["prod".into()],
            images: vec![
                ImageRecord {
                    container: "sidecar".into(),
                    container_kind: "container",
                    image: "registry.example/proxy:1".into(),
                    digest: Some("sha256:aa".into()),
                    verdict: Some("PASS".into()),
                    policy: Some("prod".into()),
                    decision: "allow",
                    reason: "verdict-pass",
                    message: String::new(),
                },
                ImageRecord {
                    container: "web".into(),
                    container_kind: "container",
                    image: "registry.example/shop/web:2".into(),
                    digest: Some("sha256:bb".into()),
                    verdict: Some("FAIL".into()),
                    policy: Some("prod".into()),
                    decision,
                    reason: "verdict-fail",
                    message: "FAIL".into(),
                },
            ],
            latency_ms: 1.5,
        }
    }

    #[test]
    fn the_envelope_names_the_strictest_image_and_is_stable_per_review() {
        let e = envelope(&admission("u1", "deny"));
        assert_eq!(e.kind, "zastava.admission");
        assert_eq!((e.subject.as_str(), e.namespace.as_str()), ("u1", "shop"));
        assert_eq!(e.data.scope.image, "registry.example/shop/web:2");
        assert_eq!(e.data.scope.repository, "registry.example/shop/web");
        assert_eq!(e.data.scope.digest, "sha256:bb");
        assert_eq!(e.data.scope.workloads, vec!["Pod/web".to_string()]);
        assert_eq!(e.data.payload.verdict.as_deref(), Some("FAIL"));
        assert_eq!(e.data.payload.attributes["decision"], "deny");
        // The same review answered again (another latency, another record id): one event.
        let mut again = admission("u1", "deny");
        again.latency_ms = 9.0;
        assert_eq!(envelope(&again).id, e.id);
        assert_ne!(envelope(&admission("u2", "deny")).id, e.id);
    }

    #[tokio::test]
    async fn the_outbox_writer_waits_for_the_store_and_appends_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (opened, rx) = tokio::sync::watch::channel(None);
        let metrics = Arc::new(Metrics::default());
        let events = Events::start(Sink::Outbox(rx), metrics);
        for i in 0..700 {
            events.record(admission(&format!("u{i}"), "deny"));
        }
        // Queued while the catalog is not open yet; written once it is.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let store = stella_store::Store::open_embedded(dir.path())
            .await
            .unwrap();
        opened.send_replace(Some(store.clone()));
        let started = std::time::Instant::now();
        while store.notify.outbox_len().await.unwrap() < 700 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "events not appended"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let rows = store.notify.events_after(0, 10).await.unwrap();
        let first = stella_notify::Event::from_outbox(&rows[0].1).unwrap();
        assert_eq!(first.kind, "zastava.admission");
        assert_eq!(first.source, EVENT_SOURCE);
        assert_eq!(first.subject, "u0");
    }
}
