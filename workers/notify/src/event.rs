//! The one event envelope: CloudEvents 1.0 in its JSON form, carrying the seed's fields —
//! `id`, the kind as `type`, the Kubernetes namespace (an extension attribute, in place of the
//! seed's tenant), `time`, and in `data` the `scope` (namespace, image, digest, workloads) and
//! the kind's `payload`.
//!
//! The id is derived from what the event reports (kind, source, subject, namespace, data),
//! never from the time it was emitted: the same change reported twice — a retried reconcile,
//! a restart, a replay — is one event, stored once by the outbox and delivered once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use stella_model::Severity;

/// `scanner.report.ready`: a policy report was recorded for an image.
pub const REPORT_READY: &str = "scanner.report.ready";
/// `scanner.scan.completed`: a Scan finished (its worker Job, or a reuse).
pub const SCAN_COMPLETED: &str = "scanner.scan.completed";
/// `scheduler.rescan.delta`: a re-evaluation changed an image's findings or verdict.
pub const RESCAN_DELTA: &str = "scheduler.rescan.delta";
/// `zastava.admission`: the admission webhook decided on a workload.
pub const ADMISSION: &str = "zastava.admission";
/// `feeds.snapshot.changed`: a feed sync moved the combined snapshot.
pub const FEEDS_CHANGED: &str = "feeds.snapshot.changed";
/// `policy.changed`: a Policy's compiled digest changed.
pub const POLICY_CHANGED: &str = "policy.changed";

/// `notify.test`: a test message sent through a channel on demand (`POST
/// /api/v1/notify/test`); never in the outbox, so no rule matches it.
pub const NOTIFY_TEST: &str = "notify.test";

/// Every kind this release emits (a rule's `eventKinds`).
pub const KINDS: [&str; 6] = [
    REPORT_READY,
    SCAN_COMPLETED,
    RESCAN_DELTA,
    ADMISSION,
    FEEDS_CHANGED,
    POLICY_CHANGED,
];

/// An event, as stored in the outbox and sent to webhooks (`application/cloudevents+json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub specversion: String,
    pub id: String,
    /// The component that emitted it: `/stella-ops/operator`, `/stella-ops/webhook`, …
    pub source: String,
    /// The kind: `scanner.report.ready`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// What it is about: an image digest, a feed, a policy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub datacontenttype: String,
    /// The Kubernetes namespace it belongs to (`""`: cluster-wide).
    #[serde(default)]
    pub namespace: String,
    pub data: Data,
}

/// The envelope's `data`: where it happened, and what.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Data {
    pub scope: Scope,
    pub payload: Payload,
}

/// Where: the seed's scope.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The image reference as the workload names it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// The repository part of `image` (registry host and path, no tag or digest).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub repository: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Workloads running the image (`Deployment/web`, …), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<String>,
    /// The object the event is about (`Scan/web`, `FeedSource/osv`, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub object: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What: the kind's fields. Image events carry the verdict and the findings that matter
/// (new ones for a delta); the rest carry a summary and their own attributes.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// One line saying what happened.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// `PASS`, `WARN`, `FAIL` (image events with a policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// The verdict before this change, when it is a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_verdict: Option<String>,
    /// The findings the event reports (most severe first), bounded by the emitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<Finding>>,
    /// Findings left out of `findings` by the bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_findings: u64,
    /// Counts per severity after VEX (`Critical` → n).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, i64>,
    /// A link to the full report (the REST API's URL), when one is known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link: String,
    /// Kind-specific attributes (admission decision, feed counts, …), for templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A finding as events carry it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `CVE-…`, `GHSA-…`.
    pub id: String,
    /// `Critical`, `High`, …
    pub severity: String,
    /// The package's purl.
    pub package: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub installed: String,
    /// The version that fixes it (`""`: no fix known).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fixed: String,
    #[serde(default)]
    pub kev: bool,
    /// The VEX status that applied (`not_affected`, …), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vex_status: String,
    /// Its justification, for `not_affected`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vex_justification: String,
    /// An advisory link.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link: String,
}

impl Finding {
    pub fn severity(&self) -> Severity {
        Severity::parse(&self.severity)
    }

    /// Suppressed by a VEX `not_affected` statement with a justification: the statement an
    /// operator accepted as the reason it does not apply.
    pub fn accepted_by_vex(&self) -> bool {
        self.vex_status == "not_affected" && !self.vex_justification.is_empty()
    }
}

/// Most findings an event carries; the rest are counted in `moreFindings`.
pub const MAX_FINDINGS: usize = 200;

impl Event {
    /// An event of `kind` from `source` about `subject` in `namespace`, emitted at `time`,
    /// its id derived from everything but the time.
    pub fn new(
        kind: &str,
        source: &str,
        subject: &str,
        namespace: &str,
        time: chrono::DateTime<chrono::Utc>,
        mut data: Data,
    ) -> Event {
        if let Some(findings) = data.payload.findings.as_mut() {
            findings.sort_by(|a, b| {
                b.severity()
                    .rank()
                    .cmp(&a.severity().rank())
                    .then_with(|| b.kev.cmp(&a.kev))
                    .then_with(|| a.id.cmp(&b.id))
                    .then_with(|| a.package.cmp(&b.package))
            });
            if findings.len() > MAX_FINDINGS {
                data.payload.more_findings += (findings.len() - MAX_FINDINGS) as u64;
                findings.truncate(MAX_FINDINGS);
            }
        }
        let mut hash = Sha256::new();
        for part in [kind, source, subject, namespace] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update(serde_json::to_vec(&data).unwrap_or_default());
        Event {
            specversion: "1.0".into(),
            id: hex::encode(&hash.finalize()[..16]),
            source: source.into(),
            kind: kind.into(),
            subject: subject.into(),
            time: time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            datacontenttype: "application/json".into(),
            namespace: namespace.into(),
            data,
        }
    }

    /// The row the outbox stores.
    pub fn to_outbox(&self) -> stella_store::OutboxEvent {
        stella_store::OutboxEvent {
            event_id: self.id.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            time: self.time.clone(),
            body: serde_json::to_string(self).unwrap_or_default(),
        }
    }

    /// The event an outbox row holds.
    pub fn from_outbox(row: &stella_store::OutboxEvent) -> Result<Event, serde_json::Error> {
        serde_json::from_str(&row.body)
    }

    /// The highest severity among its findings (`None`: it carries none).
    pub fn max_severity(&self) -> Option<Severity> {
        self.data
            .payload
            .findings
            .as_ref()?
            .iter()
            .map(Finding::severity)
            .max_by_key(|s| s.rank())
    }
}

/// The repository of an image reference: without its tag or digest.
pub fn repository_of(image: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(colon) => name[..slash + colon].to_string(),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_id_is_the_content_not_the_time() {
        let data = Data {
            payload: Payload {
                verdict: Some("FAIL".into()),
                ..Payload::default()
            },
            ..Data::default()
        };
        let a = Event::new(
            REPORT_READY,
            "/stella-ops/operator",
            "sha256:x",
            "prod",
            at("2026-12-01T00:00:00Z"),
            data.clone(),
        );
        let b = Event::new(
            REPORT_READY,
            "/stella-ops/operator",
            "sha256:x",
            "prod",
            at("2026-12-02T00:00:00Z"),
            data.clone(),
        );
        assert_eq!(a.id, b.id);
        let c = Event::new(
            REPORT_READY,
            "/stella-ops/operator",
            "sha256:x",
            "dev",
            at("2026-12-01T00:00:00Z"),
            data,
        );
        assert_ne!(a.id, c.id);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], REPORT_READY);
        assert_eq!(json["namespace"], "prod");
        assert_eq!(json["time"], "2026-12-01T00:00:00.000Z");
        assert_eq!(Event::from_outbox(&a.to_outbox()).unwrap(), a);
    }

    #[test]
    fn findings_are_ordered_and_bounded() {
        let findings: Vec<Finding> = (0..MAX_FINDINGS + 5)
            .map(|i| Finding {
                id: format!("CVE-2026-{i:05}"),
                severity: if i == 7 { "Critical" } else { "Low" }.into(),
                package: "pkg:deb/debian/x".into(),
                ..Finding::default()
            })
            .collect();
        let event = Event::new(
            RESCAN_DELTA,
            "/s",
            "sha256:x",
            "prod",
            at("2026-12-01T00:00:00Z"),
            Data {
                payload: Payload {
                    findings: Some(findings),
                    ..Payload::default()
                },
                ..Data::default()
            },
        );
        let kept = event.data.payload.findings.as_ref().unwrap();
        assert_eq!(kept.len(), MAX_FINDINGS);
        assert_eq!(kept[0].id, "CVE-2026-00007");
        assert_eq!(event.data.payload.more_findings, 5);
        assert_eq!(event.max_severity(), Some(Severity::Critical));
    }

    #[test]
    fn repositories() {
        assert_eq!(
            repository_of("registry.example:5000/team/app:1.2"),
            "registry.example:5000/team/app"
        );
        assert_eq!(repository_of("app@sha256:abc"), "app");
        assert_eq!(repository_of("localhost:5000/app"), "localhost:5000/app");
    }
}
