//! Consensus: one decision per (vulnerability, product) from all the statements about it.
//!
//! 1. Each statement gets its provider's trust weight ([`TrustConfig::weight`]).
//! 2. Gates: a statement whose provider weighs 0 does not count; a `not_affected` statement
//!    counts only with a justification from the accepted set.
//! 3. A provider speaks once: of its qualified statements only the latest (by `last_updated`,
//!    else `issued`) counts; the older ones are superseded.
//! 4. `under_investigation` never outweighs a decided status: when any decided statement
//!    (affected, fixed, not_affected) counts, under_investigation ones are set aside.
//! 5. The status with the highest total weight wins; a tie goes to the more conservative
//!    status: affected > under_investigation > fixed > not_affected.
//!
//! Weights are summed in thousandths, so ties are exact and the result does not depend on the
//! order of the statements.

use crate::model::{Justification, Provider, Statement, Status};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The kind of provider a trust weight is assigned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustCategory {
    /// The vendor of the image or product.
    Vendor,
    /// The distribution the packages come from.
    Distribution,
    /// Anyone else: scanners, researchers, internal teams.
    ThirdParty,
}

/// A provider's trust: matched on its name (or CSAF publisher namespace), with a category, an
/// explicit weight, or both (the explicit weight wins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTrust {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<TrustCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// Trust weights and justification gates. Read from YAML or JSON:
///
/// ```yaml
/// defaultWeight: 1.0
/// categories: {vendor: 1.0, distribution: 0.85, third_party: 0.5}
/// providers:
///   - {name: Red Hat Product Security, category: distribution}
///   - {name: Example Scanner, weight: 0.2}
/// acceptedJustifications: [component_not_present, vulnerable_code_not_present]
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TrustConfig {
    /// Weight of a provider not listed (1.0).
    pub default_weight: f64,
    /// Weight per category (vendor 1.0, distribution 0.85, third_party 0.5).
    pub categories: BTreeMap<TrustCategory, f64>,
    pub providers: Vec<ProviderTrust>,
    /// The justifications a not_affected claim may carry to count (all five by default).
    pub accepted_justifications: BTreeSet<Justification>,
    /// Weights of whole documents by their `sha256:` digest, over their provider's: what a
    /// FeedSource's `trust` gives the statements it synced.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub documents: BTreeMap<String, f64>,
}

impl Default for TrustConfig {
    fn default() -> TrustConfig {
        TrustConfig {
            default_weight: 1.0,
            categories: BTreeMap::from([
                (TrustCategory::Vendor, 1.0),
                (TrustCategory::Distribution, 0.85),
                (TrustCategory::ThirdParty, 0.5),
            ]),
            providers: vec![],
            accepted_justifications: Justification::ALL.into_iter().collect(),
            documents: BTreeMap::new(),
        }
    }
}

/// Largest weight accepted.
const MAX_WEIGHT: f64 = 1000.0;

/// Why a trust configuration was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// `what` names the setting: `defaultWeight`, `categories.Vendor`, `provider <name>`.
    #[error("{what}: weight {weight} is not a number in 0..={max}", max = MAX_WEIGHT)]
    InvalidWeight { what: String, weight: f64 },
    #[error("provider {0} is listed twice")]
    DuplicateProvider(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl TrustConfig {
    /// Checks every weight is a finite number in 0..=1000 and provider names are unique.
    pub fn validate(&self) -> Result<()> {
        let check = |what: &str, w: f64| {
            if w.is_finite() && (0.0..=MAX_WEIGHT).contains(&w) {
                Ok(())
            } else {
                Err(Error::InvalidWeight {
                    what: what.to_string(),
                    weight: w,
                })
            }
        };
        check("defaultWeight", self.default_weight)?;
        for (c, w) in &self.categories {
            check(&format!("categories.{c:?}"), *w)?;
        }
        for (digest, w) in &self.documents {
            check(&format!("document {digest}"), *w)?;
        }
        let mut names = BTreeSet::new();
        for p in &self.providers {
            if let Some(w) = p.weight {
                check(&format!("provider {}", p.name), w)?;
            }
            if !names.insert(p.name.as_str()) {
                return Err(Error::DuplicateProvider(p.name.clone()));
            }
        }
        Ok(())
    }

    /// The weight of a provider in thousandths: its explicit weight, else its category's, else
    /// the default. A provider is matched on its name or its namespace.
    pub fn weight(&self, provider: &Provider) -> u64 {
        let rule = self.providers.iter().find(|p| {
            p.name == provider.name || provider.namespace.as_deref() == Some(p.name.as_str())
        });
        let w = rule
            .and_then(|r| {
                r.weight
                    .or_else(|| r.category.and_then(|c| self.categories.get(&c).copied()))
            })
            .unwrap_or(self.default_weight);
        milli(w)
    }

    /// The weight of a statement in thousandths: its document's when [`TrustConfig::documents`]
    /// lists it, else its provider's ([`TrustConfig::weight`]).
    pub fn statement_weight(&self, statement: &Statement) -> u64 {
        match self.documents.get(&statement.source.document_digest) {
            Some(w) => milli(*w),
            None => self.weight(&statement.provider),
        }
    }
}

fn milli(w: f64) -> u64 {
    if w.is_finite() && w > 0.0 {
        (w.min(MAX_WEIGHT) * 1000.0).round() as u64
    } else {
        0
    }
}

/// A statement as it took part in a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub statement: Statement,
    /// The provider's trust weight.
    pub weight: f64,
    /// Why it did not count, or was set aside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The decision for one (vulnerability, product).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Consensus {
    pub vulnerability: String,
    pub product: String,
    /// The winning status; `None` when no statement qualified.
    pub status: Option<Status>,
    /// For a not_affected decision, the justification of the weightiest supporting statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<Justification>,
    /// Total weight per status among the counted statements.
    pub weights: BTreeMap<Status, f64>,
    /// Counted statements with the winning status, weightiest first.
    pub support: Vec<Claim>,
    /// Counted statements with another status, and under_investigation ones set aside.
    pub conflicts: Vec<Claim>,
    /// Statements that did not count: failed a gate, or superseded by the same provider.
    pub disqualified: Vec<Claim>,
    pub reason: String,
}

/// One decision per (vulnerability id, product) over `statements`, sorted by vulnerability and
/// product.
pub fn consensus(statements: &[Statement], trust: &TrustConfig) -> Vec<Consensus> {
    let mut groups: BTreeMap<(&str, &str), Vec<&Statement>> = BTreeMap::new();
    for s in statements {
        groups
            .entry((s.vulnerability.id.as_str(), s.product.as_str()))
            .or_default()
            .push(s);
    }
    groups
        .into_iter()
        .map(|((v, p), list)| decide(v, p, &list, trust))
        .collect()
}

/// The decision for the statements about `vulnerability` in `component_purl` of the image
/// `image_digest` (every statement that [applies](crate::applies), whatever form its product
/// takes: the image, the package with or without version, a subcomponent). `None` when no
/// statement applies.
pub fn consensus_for(
    statements: &[Statement],
    vulnerability: &str,
    image_digest: Option<&str>,
    component_purl: &str,
    trust: &TrustConfig,
) -> Option<Consensus> {
    let list: Vec<&Statement> = statements
        .iter()
        .filter(|s| {
            (s.vulnerability.id == vulnerability
                || s.vulnerability.aliases.iter().any(|a| a == vulnerability))
                && s.applies(image_digest, component_purl)
        })
        .collect();
    (!list.is_empty()).then(|| decide(vulnerability, component_purl, &list, trust))
}

/// The decision over `statements`, all taken to be about (`vulnerability`, `product`).
pub fn decide(
    vulnerability: &str,
    product: &str,
    statements: &[&Statement],
    trust: &TrustConfig,
) -> Consensus {
    let mut sorted: Vec<&Statement> = statements.to_vec();
    sorted.sort();
    sorted.dedup();
    let claim = |s: &Statement, w: u64, note: Option<String>| Claim {
        statement: s.clone(),
        weight: w as f64 / 1000.0,
        note,
    };
    let mut disqualified = Vec::new();
    // Gates, then the latest qualified statement of each provider.
    let mut latest: BTreeMap<&Provider, (&Statement, u64)> = BTreeMap::new();
    let mut superseded = Vec::new();
    for s in sorted {
        let w = trust.statement_weight(s);
        if w == 0 {
            disqualified.push(claim(s, w, Some("its trust weight is 0".into())));
            continue;
        }
        if s.status == Status::NotAffected {
            let accepted = s
                .justification
                .is_some_and(|j| trust.accepted_justifications.contains(&j));
            if !accepted {
                let why = match s.justification {
                    Some(j) => {
                        format!("not_affected with justification {j}, which is not accepted")
                    }
                    None => "not_affected without a justification".to_string(),
                };
                disqualified.push(claim(s, w, Some(why)));
                continue;
            }
        }
        match latest.get(&s.provider) {
            Some((held, _)) if !newer(s, held) => superseded.push((s, w)),
            Some((held, hw)) => {
                superseded.push((*held, *hw));
                latest.insert(&s.provider, (s, w));
            }
            None => {
                latest.insert(&s.provider, (s, w));
            }
        }
    }
    for (s, w) in superseded {
        disqualified.push(claim(
            s,
            w,
            Some("superseded by a later statement of the same provider".into()),
        ));
    }
    let decided = latest
        .values()
        .any(|(s, _)| s.status != Status::UnderInvestigation);
    let mut counted: Vec<(&Statement, u64)> = Vec::new();
    let mut set_aside: Vec<(&Statement, u64)> = Vec::new();
    for (s, w) in latest.into_values() {
        if decided && s.status == Status::UnderInvestigation {
            set_aside.push((s, w));
        } else {
            counted.push((s, w));
        }
    }
    let mut totals: BTreeMap<Status, u64> = BTreeMap::new();
    for (s, w) in &counted {
        *totals.entry(s.status).or_default() += w;
    }
    let winner = totals
        .iter()
        .max_by_key(|(st, w)| (**w, st.precedence()))
        .map(|(st, w)| (*st, *w));
    let by_weight = |a: &Claim, b: &Claim| {
        b.weight
            .total_cmp(&a.weight)
            .then_with(|| a.statement.cmp(&b.statement))
    };
    let mut support = Vec::new();
    let mut conflicts = Vec::new();
    for (s, w) in &counted {
        if Some(s.status) == winner.map(|(st, _)| st) {
            support.push(claim(s, *w, None));
        } else {
            conflicts.push(claim(s, *w, None));
        }
    }
    for (s, w) in set_aside {
        conflicts.push(claim(
            s,
            w,
            Some("under_investigation does not outweigh a decided status".into()),
        ));
    }
    support.sort_by(by_weight);
    conflicts.sort_by(by_weight);
    disqualified.sort_by(by_weight);
    let reason = match winner {
        None if disqualified.is_empty() => "no statements".to_string(),
        None => format!(
            "no statement qualified ({} disqualified)",
            disqualified.len()
        ),
        Some((st, w)) => {
            let tied: Vec<Status> = totals
                .iter()
                .filter(|(other, ow)| **ow == w && **other != st)
                .map(|(other, _)| *other)
                .collect();
            let others: Vec<String> = totals
                .iter()
                .filter(|(other, _)| **other != st)
                .map(|(other, ow)| format!("{other} {}", fmt_weight(*ow)))
                .collect();
            let mut r = format!(
                "{st} carries weight {} from {} statement(s)",
                fmt_weight(w),
                support.len()
            );
            if !others.is_empty() {
                r.push_str(&format!(" against {}", others.join(", ")));
            }
            if !tied.is_empty() {
                let tied: Vec<&str> = tied.iter().map(|t| t.as_str()).collect();
                r.push_str(&format!(
                    "; tie with {} resolved by precedence affected > under_investigation > fixed > not_affected",
                    tied.join(", ")
                ));
            }
            r
        }
    };
    let justification = match winner {
        Some((Status::NotAffected, _)) => support.first().and_then(|c| c.statement.justification),
        _ => None,
    };
    Consensus {
        vulnerability: vulnerability.to_string(),
        product: product.to_string(),
        status: winner.map(|(st, _)| st),
        justification,
        weights: totals
            .into_iter()
            .map(|(st, w)| (st, w as f64 / 1000.0))
            .collect(),
        support,
        conflicts,
        disqualified,
        reason,
    }
}

fn fmt_weight(w: u64) -> String {
    format!("{}.{:03}", w / 1000, w % 1000)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// Whether `a` speaks for a later time than `b`: RFC 3339 times compared as instants (an
/// unreadable or missing time is the oldest); equal times fall back to the statement order so
/// that the choice never depends on input order.
fn newer(a: &Statement, b: &Statement) -> bool {
    let time = |s: &Statement| {
        s.effective_time()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    match (time(a), time(b)) {
        (Some(x), Some(y)) if x != y => x > y,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        _ => a > b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Format, Product, Source, Vulnerability};

    fn st(
        provider: &str,
        status: Status,
        justification: Option<Justification>,
        time: &str,
    ) -> Statement {
        Statement {
            vulnerability: Vulnerability {
                id: "CVE-1".into(),
                aliases: vec![],
            },
            product: Product::parse("pkg:deb/debian/openssl@3").unwrap(),
            subcomponents: vec![],
            status,
            justification,
            original_justification: None,
            impact_statement: None,
            action_statement: None,
            provider: Provider {
                name: provider.into(),
                namespace: None,
            },
            issued: Some(time.into()),
            last_updated: None,
            source: Source {
                format: Format::OpenVex,
                document_digest: format!("sha256:{provider}{time}"),
                document_id: None,
                index: 0,
            },
        }
    }

    fn trust() -> TrustConfig {
        TrustConfig {
            providers: vec![
                ProviderTrust {
                    name: "Vendor".into(),
                    category: Some(TrustCategory::Vendor),
                    weight: None,
                },
                ProviderTrust {
                    name: "Debian".into(),
                    category: Some(TrustCategory::Distribution),
                    weight: None,
                },
                ProviderTrust {
                    name: "Scanner".into(),
                    category: Some(TrustCategory::ThirdParty),
                    weight: None,
                },
                ProviderTrust {
                    name: "Muted".into(),
                    category: None,
                    weight: Some(0.0),
                },
            ],
            ..TrustConfig::default()
        }
    }

    const T1: &str = "2024-01-01T00:00:00Z";
    const T2: &str = "2024-01-02T00:00:00+05:00";

    #[test]
    fn vendor_outweighs_third_parties_and_the_decision_is_order_free() {
        let np = Some(Justification::VulnerableCodeNotInExecutePath);
        let list = vec![
            st("Vendor", Status::NotAffected, np, T1),
            st("Scanner", Status::Affected, None, T1),
            st("Muted", Status::Affected, None, T1),
        ];
        let c = consensus(&list, &trust());
        assert_eq!(c.len(), 1);
        let c = &c[0];
        assert_eq!((c.status, c.justification), (Some(Status::NotAffected), np));
        assert_eq!(c.support[0].statement.provider.name, "Vendor");
        assert_eq!(c.conflicts[0].statement.provider.name, "Scanner");
        assert_eq!(
            c.disqualified[0].note.as_deref(),
            Some("its trust weight is 0")
        );
        assert_eq!(
            c.reason,
            "not_affected carries weight 1 from 1 statement(s) against affected 0.5"
        );
        // Two third parties together outweigh the distribution.
        let list = vec![
            st("Debian", Status::Fixed, None, T1),
            st("Scanner", Status::Affected, None, T1),
            st("Other", Status::Affected, None, T1),
        ];
        let mut t = trust();
        t.providers.push(ProviderTrust {
            name: "Other".into(),
            category: Some(TrustCategory::ThirdParty),
            weight: None,
        });
        let forward = consensus(&list, &t);
        let mut reversed = list.clone();
        reversed.reverse();
        assert_eq!(forward, consensus(&reversed, &t));
        assert_eq!(forward[0].status, Some(Status::Affected));
        assert_eq!(
            forward[0].weights,
            BTreeMap::from([(Status::Affected, 1.0), (Status::Fixed, 0.85)])
        );
    }

    #[test]
    fn gates_precedence_and_supersession() {
        // not_affected without an accepted justification does not count.
        let list = vec![st("Vendor", Status::NotAffected, None, T1)];
        let c = &consensus(&list, &trust())[0];
        assert_eq!(c.status, None);
        assert_eq!(
            c.disqualified[0].note.as_deref(),
            Some("not_affected without a justification")
        );
        let mut t = trust();
        t.accepted_justifications = BTreeSet::from([Justification::ComponentNotPresent]);
        let list = vec![st(
            "Vendor",
            Status::NotAffected,
            Some(Justification::InlineMitigationsAlreadyExist),
            T1,
        )];
        assert_eq!(consensus(&list, &t)[0].status, None);
        // A tie goes to the conservative status.
        let list = vec![
            st(
                "A",
                Status::NotAffected,
                Some(Justification::ComponentNotPresent),
                T1,
            ),
            st("B", Status::Fixed, None, T1),
        ];
        let c = &consensus(&list, &trust())[0];
        assert_eq!(c.status, Some(Status::Fixed));
        assert!(
            c.reason
                .contains("tie with not_affected resolved by precedence"),
            "{}",
            c.reason
        );
        let list = vec![
            st("A", Status::Affected, None, T1),
            st("B", Status::UnderInvestigation, None, T1),
        ];
        let c = &consensus(&list, &trust())[0];
        assert_eq!(c.status, Some(Status::Affected));
        // under_investigation never outweighs a decided status, however many say it.
        let list = vec![
            st("Scanner", Status::Fixed, None, T1),
            st("A", Status::UnderInvestigation, None, T1),
            st("B", Status::UnderInvestigation, None, T1),
        ];
        let c = &consensus(&list, &trust())[0];
        assert_eq!(c.status, Some(Status::Fixed));
        assert_eq!(c.conflicts.len(), 2);
        // Alone, it decides.
        let list = vec![st("A", Status::UnderInvestigation, None, T1)];
        assert_eq!(
            consensus(&list, &trust())[0].status,
            Some(Status::UnderInvestigation)
        );
        // A provider's later statement supersedes its earlier one (instants, not strings:
        // T2 is 2024-01-01T19:00Z).
        let list = vec![
            st("A", Status::Fixed, None, T2),
            st("A", Status::UnderInvestigation, None, T1),
        ];
        let c = &consensus(&list, &trust())[0];
        assert_eq!(c.status, Some(Status::Fixed));
        assert_eq!(c.disqualified.len(), 1);
        assert_eq!(c.weights, BTreeMap::from([(Status::Fixed, 1.0)]));
    }

    #[test]
    fn consensus_for_a_component_gathers_every_form_of_its_product() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let mut by_image = st(
            "Vendor",
            Status::NotAffected,
            Some(Justification::ComponentNotPresent),
            T1,
        );
        by_image.product = Product::Image(digest.clone());
        let mut unversioned = st("Scanner", Status::Affected, None, T1);
        unversioned.product = Product::parse("pkg:deb/debian/openssl").unwrap();
        unversioned.vulnerability = Vulnerability {
            id: "GHSA-1".into(),
            aliases: vec!["CVE-1".into()],
        };
        let elsewhere = {
            let mut s = st("Debian", Status::Fixed, None, T1);
            s.product = Product::parse("pkg:deb/debian/curl").unwrap();
            s
        };
        let list = vec![by_image, unversioned, elsewhere];
        let c = consensus_for(
            &list,
            "CVE-1",
            Some(&digest),
            "pkg:deb/debian/openssl@3?arch=amd64",
            &trust(),
        )
        .unwrap();
        assert_eq!(c.status, Some(Status::NotAffected));
        assert_eq!((c.support.len(), c.conflicts.len()), (1, 1));
        assert!(
            consensus_for(
                &list,
                "CVE-9",
                Some(&digest),
                "pkg:deb/debian/openssl@3",
                &trust()
            )
            .is_none()
        );
    }

    #[test]
    fn a_document_weight_overrides_its_providers() {
        let np = Some(Justification::ComponentNotPresent);
        let list = vec![
            st("Scanner", Status::NotAffected, np, T1),
            st("Debian", Status::Affected, None, T1),
        ];
        // Scanner (third party, 0.5) loses to Debian (0.85)…
        let c = &consensus(&list, &trust())[0];
        assert_eq!(c.status, Some(Status::Affected));
        // …unless the feed that brought its document is trusted at 0.9.
        let mut t = trust();
        t.documents
            .insert(list[0].source.document_digest.clone(), 0.9);
        let c = &consensus(&list, &t)[0];
        assert_eq!(c.status, Some(Status::NotAffected));
        assert_eq!(c.support[0].weight, 0.9);
        // A muted feed's statements do not count, whoever wrote them.
        t.documents
            .insert(list[1].source.document_digest.clone(), 0.0);
        let c = &consensus(&list, &t)[0];
        assert_eq!(c.disqualified[0].statement.provider.name, "Debian");
        t.documents.insert("sha256:x".into(), -1.0);
        assert!(t.validate().is_err());
        // Serialised only when set, so earlier pinned trust hashes the same.
        let json = serde_json::to_value(TrustConfig::default()).unwrap();
        assert!(json.get("documents").is_none());
    }

    #[test]
    fn trust_config_reads_yaml_shaped_json_and_validates() {
        let t: TrustConfig = serde_json::from_value(serde_json::json!({
            "defaultWeight": 0.5,
            "providers": [{"name": "https://psirt.example.com", "category": "vendor"}],
            "acceptedJustifications": ["component_not_present"]
        }))
        .unwrap();
        t.validate().unwrap();
        let p = Provider {
            name: "Example".into(),
            namespace: Some("https://psirt.example.com".into()),
        };
        assert_eq!(t.weight(&p), 1000);
        assert_eq!(
            t.weight(&Provider {
                name: "x".into(),
                namespace: None
            }),
            500
        );
        let bad = TrustConfig {
            default_weight: f64::NAN,
            ..TrustConfig::default()
        };
        assert!(bad.validate().is_err());
        assert!(serde_json::from_str::<TrustConfig>(r#"{"defaultWeigth": 1}"#).is_err());
    }
}
