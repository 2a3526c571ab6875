//! `zastava.admission` event records: one JSON object per answered review, written as JSON
//! lines to a file (or standard output) by a background writer behind a bounded queue, so a
//! slow sink drops events (counted) instead of slowing admission. The Notify issue consumes
//! these lines.

use crate::metrics::Metrics;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Events waiting for the writer.
const QUEUE: usize = 8192;

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
    /// Dropped (tests, or `--events=none`).
    Discard,
}

impl std::str::FromStr for Sink {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "-" | "stdout" => Sink::Stdout,
            "none" | "" => Sink::Discard,
            path => Sink::File(PathBuf::from(path)),
        })
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
}
