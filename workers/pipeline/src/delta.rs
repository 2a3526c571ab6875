//! What a re-evaluation changed (seed 003 §3.1.2's run delta): the findings of the new report
//! that the previous report of the same image did not have — counted by severity, the KEV
//! hits among them and the top ones, sorted critical → low, then by vulnerability id — and
//! how many findings went away. A finding is its (vulnerability id, purl); only findings that
//! still count (not waived by an `ignore` rule, not quieted by VEX) are compared.

use crate::Evaluation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use stella_model::Severity;
use stella_policy::{FindingDecision, Outcome, Report};

/// How many findings a delta lists by name.
pub const TOP_FINDINGS: usize = 10;

/// The change of one image's findings between two reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delta {
    pub image_digest: String,
    pub new_findings: u64,
    pub new_criticals: u64,
    pub new_high: u64,
    pub new_medium: u64,
    pub new_low: u64,
    /// Findings the previous report had and this one does not.
    pub removed_findings: u64,
    /// Vulnerability ids of new findings CISA lists as known exploited, sorted.
    pub kev_hits: Vec<String>,
    /// The most severe new findings, at most [`TOP_FINDINGS`].
    pub top_findings: Vec<TopFinding>,
    /// The verdict before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_verdict: Option<String>,
    pub verdict: String,
    /// The feed snapshot of the previous report's evaluation, when known, and of this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_feed_snapshot: Option<String>,
    pub feed_snapshot: String,
    /// RFC 3339, UTC.
    pub detected_at: String,
}

/// One new finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopFinding {
    pub purl: String,
    pub vulnerability_id: String,
    /// `critical`, `high`, `medium`, `low`, `none`, `unknown`.
    pub severity: String,
}

impl Delta {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.new_findings == 0
            && self.removed_findings == 0
            && self.previous_verdict.as_deref() == Some(self.verdict.as_str())
    }
}

fn counts(f: &FindingDecision) -> bool {
    !matches!(f.outcome, Outcome::Ignored | Outcome::VexSuppressed)
}

/// The delta from `previous` (the image's last report; `None` for its first) to
/// `evaluation`'s report. `None` when `evaluation` has no report (no policy).
pub fn between(
    previous: Option<&Report>,
    previous_feed_snapshot: Option<&str>,
    evaluation: &Evaluation,
    detected_at: &str,
) -> Option<Delta> {
    let report = evaluation.report()?;
    let key = |f: &FindingDecision| (f.id.clone(), f.purl.clone());
    let before: BTreeSet<(String, String)> = previous
        .iter()
        .flat_map(|r| r.findings.iter())
        .filter(|f| counts(f))
        .map(key)
        .collect();
    let now: BTreeSet<(String, String)> = report
        .findings
        .iter()
        .filter(|f| counts(f))
        .map(key)
        .collect();
    let mut new: Vec<&FindingDecision> = report
        .findings
        .iter()
        .filter(|f| counts(f) && !before.contains(&key(f)))
        .collect();
    new.sort_by(|a, b| {
        b.severity
            .rank()
            .cmp(&a.severity.rank())
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.purl.cmp(&b.purl))
    });
    let of = |severity: Severity| new.iter().filter(|f| f.severity == severity).count() as u64;
    let kev_hits: BTreeSet<String> = new
        .iter()
        .filter(|f| {
            std::iter::once(&f.id)
                .chain(&f.aliases)
                .any(|id| evaluation.exploits.get(id).is_some_and(|e| e.kev))
        })
        .map(|f| f.id.clone())
        .collect();
    Some(Delta {
        image_digest: evaluation.inventory.image.digest.clone(),
        new_findings: new.len() as u64,
        new_criticals: of(Severity::Critical),
        new_high: of(Severity::High),
        new_medium: of(Severity::Medium),
        new_low: of(Severity::Low),
        removed_findings: before.difference(&now).count() as u64,
        kev_hits: kev_hits.into_iter().collect(),
        top_findings: new
            .iter()
            .take(TOP_FINDINGS)
            .map(|f| TopFinding {
                purl: f.purl.clone(),
                vulnerability_id: f.id.clone(),
                severity: f.severity.as_str().to_ascii_lowercase(),
            })
            .collect(),
        previous_verdict: previous.map(|r| r.verdict.as_str().to_string()),
        verdict: report.verdict.as_str().to_string(),
        previous_feed_snapshot: previous_feed_snapshot.map(str::to_string),
        feed_snapshot: evaluation.feed_snapshot.clone(),
        detected_at: detected_at.to_string(),
    })
}
