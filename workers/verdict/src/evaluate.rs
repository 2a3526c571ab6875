//! One image's verdict from its pinned inputs — inventory, advisories, VEX statements with the
//! trust configuration, policy, evaluation time — and the proof of how it was reached: the
//! scan manifest (seed §4A.2) with every input pinned by hash, and the proof ledger (§4A.3), a
//! DAG of [`ProofNode`]s whose root hash changes when any input or any decision does.
//!
//! Nothing here reads a clock, a network or a database: the same [`Inputs`] always give the
//! same findings, report, nodes and root, which is what [`crate::bundle`] replays.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stella_advisories::Advisory;
use stella_advisories::matching::Finding;
use stella_policy::{Context, Image, Input, PolicySpec, Report, VexConsensus, VexStatus};
use stella_sbom::Inventory;
use stella_vex::{Statement, TrustConfig};

/// Everything a verdict depends on.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub inventory: Inventory,
    /// The advisories that could speak of the inventory's packages.
    pub advisories: Vec<Advisory>,
    pub statements: Vec<Statement>,
    pub trust: TrustConfig,
    /// Exploit signals (CISA KEV, FIRST EPSS) by vulnerability id, for the ids the findings
    /// carry.
    pub exploits: std::collections::BTreeMap<String, Exploit>,
    pub policy: PolicySpec,
    pub evaluated_at: DateTime<Utc>,
    pub namespace: Option<String>,
    pub environment: Option<String>,
}

/// What is known of a vulnerability's exploitation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Exploit {
    /// Listed in CISA's Known Exploited Vulnerabilities catalog.
    pub kev: bool,
    /// FIRST EPSS probability (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epss: Option<f64>,
}

impl Inputs {
    /// The exploit signals of a finding.
    pub fn exploit(&self, f: &Finding) -> Exploit {
        exploit_of(&self.exploits, f)
    }
}

/// The exploit signals of a finding: KEV when any of its ids is listed, the highest EPSS.
pub fn exploit_of(exploits: &std::collections::BTreeMap<String, Exploit>, f: &Finding) -> Exploit {
    std::iter::once(&f.id)
        .chain(&f.aliases)
        .filter_map(|id| exploits.get(id))
        .fold(Exploit::default(), |a, b| Exploit {
            kev: a.kev || b.kev,
            epss: match (a.epss, b.epss) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            },
        })
}

/// The scan manifest: every input pinned by its hash (seed §4A.2, camelCase as there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanManifest {
    /// Derived from the pinned inputs: the same inputs, the same id.
    pub scan_id: String,
    /// The evaluation time (RFC 3339, UTC): waivers expire against it.
    pub created_at_utc: String,
    pub artifact_digest: String,
    pub artifact_purl: String,
    pub scanner_version: String,
    /// The analyzer set the inventory came from.
    pub worker_version: String,
    /// SHA-256 of the canonical inventory.
    pub sbom_hash: String,
    /// SHA-256 of the advisories' canonical export.
    pub concelier_snapshot_hash: String,
    /// The VEX statements' snapshot hash.
    pub excititor_snapshot_hash: String,
    /// SHA-256 of the canonical trust configuration.
    pub vex_trust_hash: String,
    /// SHA-256 of the exploit signals (KEV, EPSS) used.
    pub exploit_snapshot_hash: String,
    /// The policy digest.
    pub lattice_policy_hash: String,
    pub deterministic: bool,
    /// Base64 of the first 4 bytes of the scan id's hash: no randomness is used, so the seed
    /// only records that none was.
    pub seed: String,
    pub knobs: std::collections::BTreeMap<String, String>,
}

/// Node kinds of the proof ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    Input,
    Transform,
    Delta,
    Score,
}

/// One step of the computation (seed §4A.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofNode {
    pub id: String,
    pub kind: NodeKind,
    /// The policy rule that produced it (`default`, `vex`, a rule name; the verdict for the
    /// score node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    pub parent_ids: Vec<String>,
    pub evidence_refs: Vec<String>,
    /// Score contribution at this step.
    pub delta: f64,
    /// Cumulative score.
    pub total: f64,
    /// SHA-256 of the node's content with its parents' hashes (so the hash covers everything
    /// the node rests on).
    pub node_hash: String,
}

/// The outcome of an evaluation.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub report: Report,
    pub manifest: ScanManifest,
    pub nodes: Vec<ProofNode>,
    /// SHA-256 over the leaf nodes' hashes in sorted order.
    pub root: String,
}

/// Matches, applies VEX and the policy, and proves it.
pub fn evaluate(inputs: &Inputs) -> Evaluation {
    let inventory = &inputs.inventory;
    let findings = crate::matching::match_inventory(inventory, &inputs.advisories);
    let image_digest = inventory.image.digest.as_str();
    let by_purl: std::collections::BTreeMap<&str, &stella_sbom::Component> = inventory
        .components
        .iter()
        .map(|c| (c.package.purl.as_str(), c))
        .collect();
    let mut vex_decisions = Vec::with_capacity(findings.len());
    let policy_inputs: Vec<Input> = findings
        .iter()
        .map(|f| {
            let consensus = vex_for(inputs, f, image_digest);
            let mut input = Input::from_finding(f);
            if let Some(component) = by_purl.get(f.purl.as_str()) {
                input = input.with_component(component);
            }
            input.vex = consensus.as_ref().and_then(to_policy_vex);
            let exploit = inputs.exploit(f);
            input.kev = Some(exploit.kev);
            input.epss = exploit.epss;
            vex_decisions.push(consensus);
            input
        })
        .collect();
    let context = Context {
        image: Image {
            digest: inventory.image.digest.clone(),
            name: inventory.image.name.clone(),
            repository: inventory.image.repository.clone(),
        },
        namespace: inputs.namespace.clone(),
        environment: inputs.environment.clone(),
        evaluated_at: inputs.evaluated_at,
    };
    let report = stella_policy::evaluate(&inputs.policy, &context, &policy_inputs);
    let manifest = manifest(inputs);
    let nodes = ledger(&manifest, &findings, &vex_decisions, &report);
    let root = root(&nodes);
    Evaluation {
        findings,
        report,
        manifest,
        nodes,
        root,
    }
}

/// The VEX consensus of a finding: under its id or any alias, for this image and package.
fn vex_for(inputs: &Inputs, f: &Finding, image: &str) -> Option<stella_vex::Consensus> {
    std::iter::once(&f.id).chain(&f.aliases).find_map(|id| {
        stella_vex::consensus::consensus_for(
            &inputs.statements,
            id,
            Some(image),
            &f.purl,
            &inputs.trust,
        )
    })
}

fn to_policy_vex(c: &stella_vex::Consensus) -> Option<VexConsensus> {
    let status = match c.status? {
        stella_vex::Status::NotAffected => VexStatus::NotAffected,
        stella_vex::Status::Affected => VexStatus::Affected,
        stella_vex::Status::Fixed => VexStatus::Fixed,
        stella_vex::Status::UnderInvestigation => VexStatus::UnderInvestigation,
    };
    Some(VexConsensus {
        status,
        justification: c.justification.map(|j| j.as_str().to_string()),
        provider: c
            .support
            .first()
            .map(|claim| claim.statement.provider.name.clone())
            .unwrap_or_default(),
    })
}

/// Whether a finding's VEX is missing, decided or disputed (for the unknowns registry).
pub fn vex_state(c: Option<&stella_vex::Consensus>) -> crate::VexState {
    match c {
        None => crate::VexState::Missing,
        Some(c) if !c.conflicts.is_empty() => crate::VexState::Conflicting,
        Some(_) => crate::VexState::Decided,
    }
}

/// The consensus per finding, in `findings` order (for callers that need it beside the report,
/// or without a policy).
pub fn vex_decisions(
    statements: &[Statement],
    trust: &TrustConfig,
    image_digest: &str,
    findings: &[Finding],
) -> Vec<Option<stella_vex::Consensus>> {
    findings
        .iter()
        .map(|f| {
            std::iter::once(&f.id).chain(&f.aliases).find_map(|id| {
                stella_vex::consensus::consensus_for(
                    statements,
                    id,
                    Some(image_digest),
                    &f.purl,
                    trust,
                )
            })
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hashes that pin each input.
pub fn input_hashes(inputs: &Inputs) -> [(&'static str, String); 6] {
    [
        (
            "sbom",
            sha256_hex(&serde_json::to_vec(&inputs.inventory).expect("an inventory serialises")),
        ),
        (
            "advisories",
            sha256_hex(stella_advisories::snapshot::export(&inputs.advisories).as_bytes()),
        ),
        ("vex", stella_vex::snapshot_hash(&inputs.statements)),
        (
            "vexTrust",
            sha256_hex(&serde_json::to_vec(&inputs.trust).expect("a trust config serialises")),
        ),
        ("policy", stella_policy::digest(&inputs.policy)),
        (
            "exploits",
            sha256_hex(&serde_json::to_vec(&inputs.exploits).expect("signals serialise")),
        ),
    ]
}

fn manifest(inputs: &Inputs) -> ScanManifest {
    let [sbom, advisories, vex, trust, policy, exploits] = input_hashes(inputs).map(|(_, h)| h);
    let image = &inputs.inventory.image;
    let created = inputs
        .evaluated_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let scan_id = stella_sbom::derived_uuid(&[
        "scan",
        &image.digest,
        &sbom,
        &advisories,
        &vex,
        &trust,
        &policy,
        &exploits,
        &created,
    ]);
    let seed_hash = Sha256::digest(scan_id.as_bytes());
    ScanManifest {
        artifact_purl: stella_sbom::cyclonedx::oci_purl(&inputs.inventory),
        artifact_digest: image.digest.clone(),
        scanner_version: stella_sbom::TOOL_VERSION.to_string(),
        worker_version: inputs.inventory.analyzer_version.clone(),
        sbom_hash: sbom,
        concelier_snapshot_hash: advisories,
        excititor_snapshot_hash: vex,
        vex_trust_hash: trust,
        exploit_snapshot_hash: exploits,
        lattice_policy_hash: policy,
        deterministic: true,
        seed: base64_4(&seed_hash[..4]),
        knobs: Default::default(),
        created_at_utc: created,
        scan_id,
    }
}

fn base64_4(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let n = u32::from_be_bytes(bytes.try_into().expect("4 bytes"));
    // 4 bytes = 32 bits: 5 full sextets, then 2 bits padded, then "==".
    let mut out = String::new();
    for i in 0..5 {
        out.push(ALPHABET[((n >> (26 - 6 * i)) & 63) as usize] as char);
    }
    out.push(ALPHABET[((n & 3) << 4) as usize] as char);
    out.push_str("==");
    out
}

/// Builds the ledger: input nodes, per finding a match transform, a VEX transform (when VEX
/// spoke), a policy delta, and the verdict score node over every delta.
fn ledger(
    manifest: &ScanManifest,
    findings: &[Finding],
    vex: &[Option<stella_vex::Consensus>],
    report: &Report,
) -> Vec<ProofNode> {
    let mut nodes: Vec<ProofNode> = Vec::new();
    let mut hashes: std::collections::BTreeMap<String, String> = Default::default();
    let mut push = |mut node: ProofNode, nodes: &mut Vec<ProofNode>| {
        node.node_hash = node_hash(&node, &hashes);
        hashes.insert(node.id.clone(), node.node_hash.clone());
        nodes.push(node);
    };
    let input = |id: &str, evidence: &str| ProofNode {
        id: format!("input:{id}"),
        kind: NodeKind::Input,
        rule_id: None,
        parent_ids: vec![],
        evidence_refs: vec![evidence.to_string()],
        delta: 0.0,
        total: 0.0,
        node_hash: String::new(),
    };
    push(input("sbom", &manifest.sbom_hash), &mut nodes);
    let mut advisories_input = input("advisories", &manifest.concelier_snapshot_hash);
    advisories_input
        .evidence_refs
        .push(manifest.exploit_snapshot_hash.clone());
    push(advisories_input, &mut nodes);
    let mut vex_input = input("vex", &manifest.excititor_snapshot_hash);
    vex_input
        .evidence_refs
        .push(manifest.vex_trust_hash.clone());
    push(vex_input, &mut nodes);
    // The evaluation time decides which waivers still apply: it is pinned with the policy.
    let mut policy_input = input("policy", &manifest.lattice_policy_hash);
    policy_input
        .evidence_refs
        .push(format!("evaluatedAt:{}", manifest.created_at_utc));
    push(policy_input, &mut nodes);

    let consensus: std::collections::BTreeMap<(&str, &str), Option<&stella_vex::Consensus>> =
        findings
            .iter()
            .zip(vex)
            .map(|(f, c)| ((f.id.as_str(), f.purl.as_str()), c.as_ref()))
            .collect();
    let matched: std::collections::BTreeMap<(&str, &str), &Finding> = findings
        .iter()
        .map(|f| ((f.id.as_str(), f.purl.as_str()), f))
        .collect();
    let mut total = 0.0;
    let mut deltas = Vec::new();
    for decision in &report.findings {
        let key = (decision.id.as_str(), decision.purl.as_str());
        let subject = format!("{}@{}", decision.id, decision.purl);
        let mut evidence = Vec::new();
        if let Some(f) = matched.get(&key) {
            evidence.push(format!(
                "advisory:{}:{}",
                f.evidence.source, f.evidence.advisory
            ));
            evidence.push(format!(
                "range:{} ({})",
                f.evidence.matched, f.evidence.comparator
            ));
        }
        let match_id = format!("match:{subject}");
        push(
            ProofNode {
                id: match_id.clone(),
                kind: NodeKind::Transform,
                rule_id: None,
                parent_ids: vec!["input:sbom".into(), "input:advisories".into()],
                evidence_refs: evidence,
                delta: 0.0,
                total,
                node_hash: String::new(),
            },
            &mut nodes,
        );
        let mut last = match_id;
        if let Some(Some(c)) = consensus.get(&key) {
            let vex_id = format!("vex:{subject}");
            let mut refs: Vec<String> = c
                .support
                .iter()
                .map(|claim| {
                    format!(
                        "statement:{}#{}",
                        claim.statement.source.document_digest, claim.statement.source.index
                    )
                })
                .collect();
            refs.push(format!(
                "status:{}",
                c.status.map(|s| s.as_str()).unwrap_or("undecided")
            ));
            push(
                ProofNode {
                    id: vex_id.clone(),
                    kind: NodeKind::Transform,
                    rule_id: None,
                    parent_ids: vec![last, "input:vex".into()],
                    evidence_refs: refs,
                    delta: 0.0,
                    total,
                    node_hash: String::new(),
                },
                &mut nodes,
            );
            last = vex_id;
        }
        let delta = decision.score.score;
        total += delta;
        let decision_id = format!("decision:{subject}");
        let outcome = serde_json::to_value(decision.outcome).unwrap_or_default();
        push(
            ProofNode {
                id: decision_id.clone(),
                kind: NodeKind::Delta,
                rule_id: Some(
                    decision
                        .rule
                        .clone()
                        .unwrap_or_else(|| format!("{:?}", decision.decided_by).to_lowercase()),
                ),
                parent_ids: vec![last, "input:policy".into()],
                evidence_refs: vec![format!("outcome:{}", outcome.as_str().unwrap_or_default())],
                delta,
                total,
                node_hash: String::new(),
            },
            &mut nodes,
        );
        deltas.push(decision_id);
    }
    let verdict = serde_json::to_value(report.verdict).unwrap_or_default();
    let parents = if deltas.is_empty() {
        [
            "input:sbom",
            "input:advisories",
            "input:vex",
            "input:policy",
        ]
        .map(String::from)
        .to_vec()
    } else {
        deltas
    };
    push(
        ProofNode {
            id: "score:verdict".into(),
            kind: NodeKind::Score,
            rule_id: Some(verdict.as_str().unwrap_or_default().to_string()),
            parent_ids: parents,
            evidence_refs: vec![format!("policy-report:{}", report.policy_digest)],
            delta: 0.0,
            total,
            node_hash: String::new(),
        },
        &mut nodes,
    );
    nodes
}

/// The hash of a node: its content with the hashes of its parents.
fn node_hash(node: &ProofNode, hashes: &std::collections::BTreeMap<String, String>) -> String {
    let parents: Vec<&str> = node
        .parent_ids
        .iter()
        .map(|p| hashes.get(p).map(String::as_str).unwrap_or(""))
        .collect();
    let content = serde_json::json!({
        "id": node.id,
        "kind": node.kind,
        "ruleId": node.rule_id,
        "parentIds": node.parent_ids,
        "parentHashes": parents,
        "evidenceRefs": node.evidence_refs,
        "delta": node.delta,
        "total": node.total,
    });
    sha256_hex(stella_policy::canonical_json(&content).as_bytes())
}

/// The first inconsistency [`verify`] finds in a proof ledger.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{node}: parent {parent} is not before it")]
    ParentNotBefore { node: String, parent: String },
    #[error("{node}: recorded hash {recorded} but its content hashes to {computed}")]
    HashMismatch {
        node: String,
        recorded: String,
        computed: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Recomputes every node's hash from its content and its parents, in order; the first node
/// whose recorded hash differs, if any.
pub fn verify(nodes: &[ProofNode]) -> Result<()> {
    let mut hashes = std::collections::BTreeMap::new();
    for node in nodes {
        for parent in &node.parent_ids {
            if !hashes.contains_key(parent) {
                return Err(Error::ParentNotBefore {
                    node: node.id.clone(),
                    parent: parent.clone(),
                });
            }
        }
        let expected = node_hash(node, &hashes);
        if expected != node.node_hash {
            return Err(Error::HashMismatch {
                node: node.id.clone(),
                recorded: node.node_hash.clone(),
                computed: expected,
            });
        }
        hashes.insert(node.id.clone(), expected);
    }
    Ok(())
}

/// SHA-256 over the leaf nodes' hashes (nodes no other node rests on), sorted.
pub fn root(nodes: &[ProofNode]) -> String {
    let parents: std::collections::BTreeSet<&str> = nodes
        .iter()
        .flat_map(|n| n.parent_ids.iter().map(String::as_str))
        .collect();
    let mut leaves: Vec<&str> = nodes
        .iter()
        .filter(|n| !parents.contains(n.id.as_str()))
        .map(|n| n.node_hash.as_str())
        .collect();
    leaves.sort();
    sha256_hex(leaves.join("\n").as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_seed_is_base64_of_four_bytes() {
        assert_eq!(super::base64_4(&[1, 2, 3, 4]), "AQIDBA==");
        assert_eq!(super::base64_4(&[255, 255, 255, 255]), "/////w==");
    }
}
