//! What a verdict rests on but could not be proven: the unknowns registry (seed §4C).
//!
//! An unknown is an item a scan could not fully classify, with the reasons why:
//! `missing_vex` (an affected finding no VEX statement speaks of), `conflicting_evidence` (VEX
//! statements that disagree), `missing_advisory` (a VEX statement about a vulnerability no
//! advisory feed knows), `incomplete_sbom` (a package database that could not be read, an
//! entrypoint hop EntryTrace could not resolve, a library no directory of the image holds).
//! `ambiguous_indirect_call` needs call graphs, which the scanner does not build; it is never
//! emitted.
//!
//! Unknowns are ranked by the seed's 2-factor model,
//! `score = 0.60 × blast + 0.30 × scarcity + 0.30 × pressure − 0.20 × containment` (clamped to
//! 0..1), and banded HOT (≥ 0.70, 24 h), WARM (≥ 0.40, 7 days) and COLD (30 days). Every factor
//! is in 0..1 and comes with its inputs, so a rank can be explained:
//! - blast radius = 0.5 × dependents (packages that depend on or link to the subject, 10 or
//!   more count fully) + 0.3 × exposure (1 when the entrypoint uses it, else 0.3) + 0.2 ×
//!   privilege (1 when the image runs as root, else 0.5);
//! - evidence scarcity: how much is missing — `incomplete_sbom` 0.8, `missing_advisory` 0.7,
//!   `conflicting_evidence` 0.6, `missing_vex` 0.5 (the largest of the reasons);
//! - exploit pressure: the largest of KEV (1.0), EPSS, and the severity (Critical 0.9, High
//!   0.7, Unknown 0.5, Medium 0.4, Low 0.2); 0 for what is not a vulnerability;
//! - containment: 0.5 for a read-only root filesystem plus 0.5 for a seccomp profile, as the
//!   runtime reports them (0 when unknown, as for a CLI scan).

pub mod bundle;
pub mod evaluate;
pub mod matching;
pub mod present;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use stella_advisories::matching::Finding;
use stella_model::Severity;
use stella_sbom::Inventory;

/// Why an item is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    MissingVex,
    AmbiguousIndirectCall,
    IncompleteSbom,
    MissingAdvisory,
    ConflictingEvidence,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingVex => "missing_vex",
            Reason::AmbiguousIndirectCall => "ambiguous_indirect_call",
            Reason::IncompleteSbom => "incomplete_sbom",
            Reason::MissingAdvisory => "missing_advisory",
            Reason::ConflictingEvidence => "conflicting_evidence",
        }
    }

    /// Evidence scarcity of the reason (0..1).
    fn scarcity(self) -> f64 {
        match self {
            Reason::IncompleteSbom => 0.8,
            Reason::MissingAdvisory => 0.7,
            Reason::AmbiguousIndirectCall => 0.6,
            Reason::ConflictingEvidence => 0.6,
            Reason::MissingVex => 0.5,
        }
    }

    pub fn parse(text: &str) -> Option<Reason> {
        [
            Reason::MissingVex,
            Reason::AmbiguousIndirectCall,
            Reason::IncompleteSbom,
            Reason::MissingAdvisory,
            Reason::ConflictingEvidence,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// Triage band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Band {
    Hot,
    Warm,
    Cold,
}

impl Band {
    /// The band of a score.
    pub fn of(score: f64) -> Band {
        if score >= 0.70 {
            Band::Hot
        } else if score >= 0.40 {
            Band::Warm
        } else {
            Band::Cold
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Band::Hot => "HOT",
            Band::Warm => "WARM",
            Band::Cold => "COLD",
        }
    }

    /// Hours within which an unknown of this band should be triaged.
    pub fn sla_hours(self) -> u32 {
        match self {
            Band::Hot => 24,
            Band::Warm => 7 * 24,
            Band::Cold => 30 * 24,
        }
    }

    pub fn parse(text: &str) -> Option<Band> {
        [Band::Hot, Band::Warm, Band::Cold]
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(text))
    }
}

/// What VEX says of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VexState {
    /// No statement at all.
    Missing,
    /// A consensus without dissent.
    Decided,
    /// Statements that disagree.
    Conflicting,
}

/// A finding with what the ranking needs beside it.
#[derive(Clone, Debug)]
pub struct FindingInput<'a> {
    pub finding: &'a Finding,
    pub vex: VexState,
    /// Whether the finding is still open after VEX and policy (a suppressed or fixed-by-VEX
    /// finding has nothing missing).
    pub open: bool,
    pub kev: bool,
    pub epss: Option<f64>,
}

/// How the workload runs, as the runtime reports it (all false for a CLI scan).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Containment {
    pub read_only_root_fs: bool,
    pub seccomp: bool,
}

/// The inputs of one image's unknowns.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub inventory: &'a Inventory,
    /// Whether the image runs as root (config `User` empty, `root` or `0`).
    pub runs_as_root: bool,
    pub containment: Containment,
    /// (vulnerability, product) of VEX statements about vulnerabilities no advisory knows.
    pub orphan_vex: &'a [(String, String)],
}

/// The blast radius's inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlastRadius {
    pub dependents: u32,
    pub used_by_entrypoint: bool,
    pub runs_as_root: bool,
}

/// The score and its factors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub blast: f64,
    pub scarcity: f64,
    pub pressure: f64,
    pub containment: f64,
    /// `−0.20 × containment`.
    pub containment_deduction: f64,
}

/// One unknown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unknown {
    /// `unk-` and 16 hex digits of SHA-256 over the image digest and the subject: stable
    /// across rescans of the same image.
    pub id: String,
    pub image_digest: String,
    /// What is unknown: `CVE-… pkg:…`, a package database path, an entrypoint location, …
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// Sorted, distinct.
    pub reasons: Vec<Reason>,
    /// Human-readable evidence, one line per fact.
    pub details: Vec<String>,
    pub blast_radius: BlastRadius,
    pub score: f64,
    pub score_breakdown: Breakdown,
    pub band: Band,
}

#[derive(Default)]
struct Pending {
    vulnerability: Option<String>,
    purl: Option<String>,
    reasons: BTreeSet<Reason>,
    details: BTreeSet<String>,
    pressure: f64,
}

/// The unknowns of one scan, sorted by score (highest first), then id.
pub fn derive(context: &Context, findings: &[FindingInput]) -> Vec<Unknown> {
    let inventory = context.inventory;
    let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
    for input in findings.iter().filter(|f| f.open) {
        let f = input.finding;
        let reason = match input.vex {
            VexState::Missing => Reason::MissingVex,
            VexState::Conflicting => Reason::ConflictingEvidence,
            VexState::Decided => continue,
        };
        let entry = pending.entry(format!("{} {}", f.id, f.purl)).or_default();
        entry.vulnerability = Some(f.id.clone());
        entry.purl = Some(f.purl.clone());
        entry.reasons.insert(reason);
        entry.details.insert(match reason {
            Reason::MissingVex => format!("no VEX statement for {} in {}", f.id, f.purl),
            _ => format!("VEX statements disagree on {} in {}", f.id, f.purl),
        });
        let pressure = [
            if input.kev { 1.0 } else { 0.0 },
            input.epss.unwrap_or(0.0).clamp(0.0, 1.0),
            severity_pressure(f.severity),
        ]
        .into_iter()
        .fold(0.0, f64::max);
        entry.pressure = entry.pressure.max(pressure);
    }
    for (vulnerability, product) in context.orphan_vex {
        let entry = pending
            .entry(format!("{vulnerability} {product}"))
            .or_default();
        entry.vulnerability = Some(vulnerability.clone());
        entry.purl = Some(product.clone());
        entry.reasons.insert(Reason::MissingAdvisory);
        entry.details.insert(format!(
            "a VEX statement speaks of {vulnerability}, which no imported advisory knows"
        ));
    }
    for error in &inventory.errors {
        let entry = pending.entry(format!("sbom {error}")).or_default();
        entry.reasons.insert(Reason::IncompleteSbom);
        entry.details.insert(error.clone());
    }
    if let Some(trace) = &inventory.entry_trace {
        for u in &trace.unknowns {
            let entry = pending.entry(format!("entrypoint {}", u.from)).or_default();
            entry.reasons.insert(Reason::IncompleteSbom);
            entry.details.insert(format!(
                "EntryTrace {} at {}: {}",
                u.reason.as_str(),
                u.from,
                u.detail
            ));
        }
    }
    for c in &inventory.components {
        for (name, value) in &c.properties {
            if name == "stellaops:elf.unresolvedNeeded" {
                let subject = format!("/{}", c.package.evidence.path);
                let entry = pending.entry(format!("library {subject}")).or_default();
                entry.purl = Some(c.package.purl.clone());
                entry.reasons.insert(Reason::IncompleteSbom);
                entry.details.insert(format!(
                    "{subject} needs {value}, which no directory of the image holds"
                ));
            }
        }
    }

    let dependents = dependents(inventory);
    let used: BTreeSet<&str> = inventory
        .components
        .iter()
        .filter(|c| c.used_by_entrypoint)
        .map(|c| c.package.purl.as_str())
        .collect();
    let mut unknowns: Vec<Unknown> = pending
        .into_iter()
        .map(|(subject, p)| {
            let blast_radius = BlastRadius {
                dependents: p
                    .purl
                    .as_deref()
                    .and_then(|purl| dependents.get(purl))
                    .copied()
                    .unwrap_or(0),
                used_by_entrypoint: p.purl.as_deref().is_some_and(|purl| used.contains(purl)),
                runs_as_root: context.runs_as_root,
            };
            let breakdown = breakdown(&blast_radius, &p.reasons, p.pressure, context);
            let score = score(&breakdown);
            Unknown {
                id: id(&inventory.image.digest, &subject),
                image_digest: inventory.image.digest.clone(),
                subject,
                vulnerability: p.vulnerability,
                purl: p.purl,
                reasons: p.reasons.into_iter().collect(),
                details: p.details.into_iter().collect(),
                blast_radius,
                band: Band::of(score),
                score,
                score_breakdown: breakdown,
            }
        })
        .collect();
    unknowns.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    unknowns
}

fn severity_pressure(severity: Severity) -> f64 {
    match severity {
        Severity::Critical => 0.9,
        Severity::High => 0.7,
        Severity::Medium => 0.4,
        Severity::Low => 0.2,
        Severity::None => 0.0,
        Severity::Unknown => 0.5,
    }
}

/// Per purl, how many other components depend on it or link to it.
fn dependents(inventory: &Inventory) -> BTreeMap<&str, u32> {
    let mut edges: BTreeSet<(&str, &str)> = BTreeSet::new();
    for c in &inventory.components {
        for d in &c.package.depends_on {
            edges.insert((c.package.purl.as_str(), d.as_str()));
        }
    }
    for r in &inventory.relationships {
        edges.insert((r.from.as_str(), r.to.as_str()));
    }
    let mut counts = BTreeMap::new();
    for (from, to) in edges {
        if from != to {
            *counts.entry(to).or_insert(0) += 1;
        }
    }
    counts
}

fn breakdown(
    blast: &BlastRadius,
    reasons: &BTreeSet<Reason>,
    pressure: f64,
    context: &Context,
) -> Breakdown {
    let dependents = (f64::from(blast.dependents) / 10.0).min(1.0);
    let exposure = if blast.used_by_entrypoint { 1.0 } else { 0.3 };
    let privilege = if blast.runs_as_root { 1.0 } else { 0.5 };
    let containment = if context.containment.read_only_root_fs {
        0.5
    } else {
        0.0
    } + if context.containment.seccomp {
        0.5
    } else {
        0.0
    };
    Breakdown {
        blast: round(0.5 * dependents + 0.3 * exposure + 0.2 * privilege),
        scarcity: reasons.iter().map(|r| r.scarcity()).fold(0.0, f64::max),
        pressure: round(pressure),
        containment,
        // (`+ 0.0` turns the −0 of no containment into 0.)
        containment_deduction: round(-0.20 * containment) + 0.0,
    }
}

/// `0.60 × blast + 0.30 × scarcity + 0.30 × pressure + deduction`, clamped to 0..1, to four
/// decimals (so the same inputs always print the same score).
pub fn score(b: &Breakdown) -> f64 {
    round(
        (0.60 * b.blast + 0.30 * b.scarcity + 0.30 * b.pressure + b.containment_deduction)
            .clamp(0.0, 1.0),
    )
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn id(image_digest: &str, subject: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(image_digest.as_bytes());
    hasher.update([0]);
    hasher.update(subject.as_bytes());
    format!("unk-{}", &hex::encode(hasher.finalize())[..16])
}

/// Whether an image config's `User` means root.
pub fn runs_as_root(user: Option<&str>) -> bool {
    match user.map(str::trim) {
        None | Some("") => true,
        Some(user) => {
            let name = user.split(':').next().unwrap_or_default();
            name == "root" || name == "0"
        }
    }
}
