//! Scoring (policy-scoring-schema@1): `baseScore = severityWeight × trustWeight ×
//! reachabilityWeight`, minus the penalty of the decision (quiet, warn, ignore), never below
//! zero; plus the unknown-confidence state of findings whose severity is unknown.

use crate::evaluate::{Outcome, ScoreBreakdown, UnknownState};
use crate::validate::REACHABILITY_BUCKETS;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use stella_model::Severity;
use stella_model::policy::{
    ConfidenceBand, PolicyVersion, ScoringConfig, SeverityWeights, UnknownConfidence, Weight,
};

/// The built-in scoring configuration, the seed's `policy-scoring-default.json`: severity
/// weights Critical 90, High 75, Medium 50, Low 25, None 0, Unknown 60; penalties quiet 45,
/// warn 15, ignore 35; trust vendor 1.0, distro 0.85; reachability entrypoint 1.0, direct
/// 0.85, runtime 0.45, unknown 0.5; unknown confidence 0.8 decaying 0.05 a day to 0.2, bands
/// high ≥ 0.65, medium ≥ 0.35, low ≥ 0.
pub fn default_scoring() -> ScoringConfig {
    ScoringConfig {
        version: PolicyVersion::V1_0,
        severity_weights: SeverityWeights {
            critical: 90.0,
            high: 75.0,
            medium: 50.0,
            low: 25.0,
            none: 0.0,
            unknown: 60.0,
        },
        quiet_penalty: 45.0,
        warn_penalty: 15.0,
        ignore_penalty: 35.0,
        trust_overrides: BTreeMap::from([
            ("vendor".to_string(), Weight(1.0)),
            ("distro".to_string(), Weight(0.85)),
        ]),
        reachability_buckets: BTreeMap::from([
            ("entrypoint".to_string(), Weight(1.0)),
            ("direct".to_string(), Weight(0.85)),
            ("runtime".to_string(), Weight(0.45)),
            ("unknown".to_string(), Weight(0.5)),
        ]),
        unknown_confidence: UnknownConfidence {
            initial: 0.8,
            decay_per_day: 0.05,
            floor: 0.2,
            bands: vec![
                ConfidenceBand {
                    name: "high".into(),
                    min: 0.65,
                },
                ConfidenceBand {
                    name: "medium".into(),
                    min: 0.35,
                },
                ConfidenceBand {
                    name: "low".into(),
                    min: 0.0,
                },
            ],
        },
    }
}

/// Rounds to 4 decimals, so reports show `63.75`, not `63.74999999999999`.
pub(crate) fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

pub(crate) fn severity_weight(config: &ScoringConfig, severity: Severity) -> f64 {
    let w = &config.severity_weights;
    match severity {
        Severity::Critical => w.critical,
        Severity::High => w.high,
        Severity::Medium => w.medium,
        Severity::Low => w.low,
        Severity::None => w.none,
        Severity::Unknown => w.unknown,
    }
}

fn lookup<'a>(map: &'a BTreeMap<String, Weight>, key: &str) -> Option<(&'a str, f64)> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(k, w)| (k.as_str(), w.0))
}

/// What scoring needs of a finding.
pub(crate) struct ScoreInput<'a> {
    pub(crate) severity: Severity,
    pub(crate) tags: &'a [String],
    pub(crate) sources: &'a [String],
    pub(crate) vendor: Option<&'a str>,
    pub(crate) used_by_entrypoint: bool,
}

fn tag<'a>(tags: &'a [String], prefix: &str) -> Option<&'a str> {
    tags.iter()
        .find_map(|t| t.strip_prefix(prefix))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The score of a finding decided `outcome`, evaluated at `now`.
pub(crate) fn score(
    config: &ScoringConfig,
    input: &ScoreInput<'_>,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> ScoreBreakdown {
    let severity_weight = severity_weight(config, input.severity);

    // Trust: the `trust:<key>` tag first, then the sources, then the vendor; missing → 1.0.
    let candidates = tag(input.tags, "trust:")
        .into_iter()
        .chain(input.sources.iter().map(String::as_str))
        .chain(input.vendor);
    let (trust_key, trust_weight) = candidates
        .filter_map(|key| lookup(&config.trust_overrides, key))
        .map(|(k, w)| (Some(k.to_string()), w))
        .next()
        .unwrap_or((None, 1.0));

    // Reachability: `reachability:<bucket>`, then `usage:<bucket>`, then the entrypoint's use.
    let bucket = tag(input.tags, "reachability:")
        .or_else(|| tag(input.tags, "usage:"))
        .map(str::to_ascii_lowercase)
        .filter(|b| REACHABILITY_BUCKETS.contains(&b.as_str()))
        .unwrap_or_else(|| {
            if input.used_by_entrypoint {
                "entrypoint".into()
            } else {
                "unknown".into()
            }
        });
    let reachability_weight = lookup(&config.reachability_buckets, &bucket)
        .or_else(|| lookup(&config.reachability_buckets, "unknown"))
        .map_or(1.0, |(_, w)| w);

    let base_score = round(severity_weight * trust_weight * reachability_weight);
    let (penalty_kind, penalty) = match outcome {
        Outcome::Warn => (Some("warn"), config.warn_penalty),
        Outcome::Ignored => (Some("ignore"), config.ignore_penalty),
        Outcome::VexSuppressed => (Some("quiet"), config.quiet_penalty),
        Outcome::Pass | Outcome::Fail | Outcome::Deferred => (None, 0.0),
    };
    let unknown =
        (input.severity == Severity::Unknown).then(|| unknown_state(config, input.tags, now));
    ScoreBreakdown {
        severity_weight,
        trust_key,
        trust_weight,
        reachability_bucket: bucket,
        reachability_weight,
        base_score,
        penalty_kind: penalty_kind.map(str::to_string),
        penalty,
        score: round((base_score - penalty).max(0.0)),
        unknown,
    }
}

/// Confidence of an unknown: `initial` decayed by `decayPerDay` per day of age down to
/// `floor`, then the first band (by `min`, descending) it reaches. The age comes from an
/// `unknown-age-days:<n>` tag, else `unknown-since:<time>` to `observed-at:<time>` (or the
/// evaluation time); with neither the confidence stays `initial`.
fn unknown_state(config: &ScoringConfig, tags: &[String], now: DateTime<Utc>) -> UnknownState {
    let c = &config.unknown_confidence;
    let time = |v: &str| {
        DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let age_days = tag(tags, "unknown-age-days:")
        .and_then(|v| v.parse::<u32>().ok())
        .or_else(|| {
            let since = time(tag(tags, "unknown-since:")?)?;
            let observed = tag(tags, "observed-at:").and_then(time).unwrap_or(now);
            Some(u32::try_from((observed - since).num_days().max(0)).unwrap_or(u32::MAX))
        });
    let confidence = round(match age_days {
        Some(days) => (c.initial - c.decay_per_day * f64::from(days)).max(c.floor),
        None => c.initial,
    });
    let mut bands: Vec<&ConfidenceBand> = c.bands.iter().collect();
    bands.sort_by(|a, b| b.min.total_cmp(&a.min));
    let band = bands
        .into_iter()
        .find(|b| confidence >= b.min)
        .map(|b| b.name.clone());
    UnknownState {
        confidence,
        age_days,
        band,
    }
}
