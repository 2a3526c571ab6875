//! Verdict lookups: the catalog's latest result for a digest, with the top findings and their
//! deciding rules from its stored policy report; else the `Scan` status discovery keeps for
//! the digest (verdict and counts, no findings). Answers are cached briefly and in bounds.

use crate::cache::Cache;
use crate::decide::{TOP_FINDINGS, TopFinding, Verdict};
use crate::metrics::Metrics;
use serde::Deserialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use stella_crds::policy::v1alpha1::AttestedPredicate;
use stella_crds::scan::v1alpha1::Scan;
use stella_store::Store;

/// Why a verdict could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the catalog is not open yet")]
    CatalogNotOpen,
    #[error(transparent)]
    Catalog(#[from] stella_store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The part of a `stella-ops.org/policy-report@1` the messages use.
#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct Finding {
    id: String,
    #[serde(default)]
    purl: String,
    outcome: String,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    severity: String,
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        "low" => 3,
        _ => 4,
    }
}

/// The failing findings first (then warnings), worst severity first, then by id.
fn top_findings(report: &[u8]) -> Option<(Vec<TopFinding>, usize)> {
    let report: Report = serde_json::from_slice(report).ok()?;
    let mut flagged: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.outcome == "fail" || f.outcome == "warn")
        .collect();
    flagged.sort_by(|a, b| {
        (a.outcome != "fail", severity_rank(&a.severity), &a.id).cmp(&(
            b.outcome != "fail",
            severity_rank(&b.severity),
            &b.id,
        ))
    });
    let total = flagged.len();
    let top = flagged
        .into_iter()
        .take(TOP_FINDINGS)
        .map(|f| TopFinding {
            id: f.id.clone(),
            purl: f.purl.clone(),
            severity: f.severity.clone(),
            rule: f.rule.clone(),
        })
        .collect();
    Some((top, total))
}

/// Where verdicts come from.
#[derive(Clone)]
pub struct Verdicts {
    /// Set once the catalog opened (it may come up after the webhook).
    store: Arc<RwLock<Option<Arc<Store>>>>,
    /// Whether a catalog was configured at all.
    catalog_configured: bool,
    scans: Option<kube::runtime::reflector::Store<Scan>>,
    scan_namespace: String,
    cache: Arc<Cache<String, Option<Verdict>>>,
    /// `(digest, predicate)` → the envelope of the current result, when there is one.
    envelopes: Arc<Cache<(String, AttestedPredicate), Option<bytes::Bytes>>>,
    ttl: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Verdicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verdicts")
            .field("catalog_configured", &self.catalog_configured)
            .field("scan_namespace", &self.scan_namespace)
            .finish()
    }
}

impl Verdicts {
    pub fn new(
        catalog_configured: bool,
        scans: Option<kube::runtime::reflector::Store<Scan>>,
        scan_namespace: String,
        capacity: usize,
        ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Verdicts {
            store: Arc::new(RwLock::new(None)),
            catalog_configured,
            scans,
            scan_namespace,
            cache: Arc::new(Cache::new(capacity)),
            envelopes: Arc::new(Cache::new(capacity)),
            ttl,
            metrics,
        }
    }

    /// Hands in the opened catalog.
    pub fn set_store(&self, store: Store) {
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(store));
    }

    fn store(&self) -> Option<Arc<Store>> {
        self.store.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The latest verdict of `digest`; `Ok(None)` when it has none anywhere.
    pub async fn lookup(&self, digest: &str) -> Result<Option<Verdict>> {
        if let Some(found) = self.cache.get(&digest.to_string(), self.ttl) {
            self.metrics.cache("verdict", true);
            return Ok(found);
        }
        self.metrics.cache("verdict", false);
        let mut found = None;
        if self.catalog_configured {
            let Some(store) = self.store() else {
                return Err(Error::CatalogNotOpen);
            };
            self.metrics.catalog_call();
            let row = store.catalog.latest_result(digest).await?;
            if let Some(row) = row {
                let (top, flagged) = match &row.report_key {
                    Some(key) => match store.get(key).await {
                        Ok(Some(bytes)) => top_findings(&bytes).unwrap_or_default(),
                        Ok(None) => Default::default(),
                        Err(error) => {
                            tracing::warn!(%error, key = %key, "failed to read the policy report");
                            Default::default()
                        }
                    },
                    None => Default::default(),
                };
                found = Some(Verdict {
                    verdict: row.verdict.clone(),
                    critical: row.critical,
                    high: row.high,
                    medium: row.medium,
                    low: row.low,
                    policy_digest: row.policy_digest.clone(),
                    top,
                    flagged,
                    source: "catalog",
                });
            }
        }
        if found.is_none() {
            found = self.scan_verdict(digest);
        }
        self.cache.insert(digest.to_string(), found.clone());
        Ok(found)
    }

    /// The DSSE envelope the operator signed for `digest`'s current result: of its report
    /// (the latest result's), or of its inventory SBOM. `Ok(None)`: none is stored.
    pub async fn envelope(
        &self,
        digest: &str,
        predicate: AttestedPredicate,
    ) -> Result<Option<bytes::Bytes>> {
        let key = (digest.to_string(), predicate);
        if let Some(found) = self.envelopes.get(&key, self.ttl) {
            self.metrics.cache("attestation", true);
            return Ok(found);
        }
        self.metrics.cache("attestation", false);
        let Some(store) = self.store() else {
            return Err(Error::CatalogNotOpen);
        };
        self.metrics.catalog_call();
        let bound = match predicate {
            AttestedPredicate::Report => store
                .catalog
                .latest_result(digest)
                .await?
                .and_then(|r| r.report_key),
            AttestedPredicate::Sbom => Some(stella_store::keys::image_artifact(
                digest,
                "inventory",
                "cdx.json",
            )),
        };
        let mut found = None;
        if let Some(bound) = bound {
            let artifacts = store.catalog.artifacts(digest).await?;
            let envelope_key = artifacts
                .iter()
                .find(|a| a.key == bound)
                .map(|a| stella_attest::storage_key(&a.digest));
            let stored = envelope_key.and_then(|k| {
                artifacts
                    .iter()
                    .find(|a| a.key == k && a.kind == "attestation")
            });
            if let Some(row) = stored {
                found = store.get(&row.key).await?;
            }
        }
        self.envelopes.insert(key, found.clone());
        Ok(found)
    }

    fn scan_verdict(&self, digest: &str) -> Option<Verdict> {
        let scans = self.scans.as_ref()?;
        let name = crate::scans::scan_name(digest)?;
        let key =
            kube::runtime::reflector::ObjectRef::<Scan>::new(&name).within(&self.scan_namespace);
        let scan = scans.get(&key)?;
        let status = scan.status.as_ref()?;
        if status.image_digest.as_deref() != Some(digest) {
            return None;
        }
        let verdict = status.verdict.map(|v| {
            match v {
                stella_crds::common::Verdict::Pass => "PASS",
                stella_crds::common::Verdict::Warn => "WARN",
                stella_crds::common::Verdict::Fail => "FAIL",
            }
            .to_string()
        });
        verdict.as_ref()?;
        Some(Verdict {
            verdict,
            critical: status.counts.critical.into(),
            high: status.counts.high.into(),
            medium: status.counts.medium.into(),
            low: status.counts.low.into(),
            policy_digest: status.inputs.as_ref().and_then(|i| i.policy_digest.clone()),
            top: vec![],
            flagged: 0,
            source: "scan",
        })
    }

    /// Forgets a cached answer (after requesting a Scan, so the next try looks again).
    pub fn forget(&self, digest: &str) {
        self.cache.remove(&digest.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_findings_fail_first_then_severity() {
        let report = json!({"schema": "stella-ops.org/policy-report@1", "findings": [
            {"id": "CVE-3", "purl": "pkg:a", "outcome": "warn", "severity": "critical", "rule": "w"},
            {"id": "CVE-2", "purl": "pkg:b", "outcome": "fail", "severity": "high", "rule": "block"},
            {"id": "CVE-1", "purl": "pkg:c", "outcome": "fail", "severity": "critical"},
            {"id": "CVE-0", "purl": "pkg:d", "outcome": "pass", "severity": "critical"},
            {"id": "CVE-4", "purl": "pkg:e", "outcome": "fail", "severity": "low", "rule": "block"}
        ]});
        let (top, total) = top_findings(&serde_json::to_vec(&report).unwrap()).unwrap();
        assert_eq!(total, 4);
        assert_eq!(
            top.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["CVE-1", "CVE-2", "CVE-4"]
        );
        assert_eq!(top[1].rule.as_deref(), Some("block"));
        assert!(top_findings(b"not json").is_none());
    }
}
