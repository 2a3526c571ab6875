//! Proof bundles (seed §4A.5): a zip holding the scan manifest, the proof ledger, the report,
//! a meta record and every pinned input, so anyone can recompute the verdict offline and prove
//! the same root — or swap one input (another feed snapshot, other VEX, another policy) and see
//! exactly which decisions change.
//!
//! Layout (fixed timestamps and order: the same evaluation gives the same bytes):
//! `manifest.json`, `score_proof.json`, `report.json`, `meta.json`, `inputs/inventory.json`,
//! `inputs/advisories.jsonl` (the canonical advisory export), `inputs/vex.json`,
//! `inputs/vex-trust.json`, `inputs/policy.json` (the canonical policy), `inputs/exploits.json`
//! (KEV / EPSS signals). Reading checks every
//! input against the hash the manifest pins, every node against its recorded hash, and the
//! root against the meta record; members are size-capped and unknown members refused.

use crate::evaluate::{Evaluation, Inputs, ProofNode, ScanManifest, evaluate, input_hashes};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The bundle's schema name.
pub const SCHEMA: &str = "stella-ops.org/proof-bundle@1";

/// Largest member read, and largest bundle.
const MAX_MEMBER: u64 = 512 << 20;
const MAX_TOTAL: u64 = 1 << 30;

const MEMBERS: [&str; 10] = [
    "manifest.json",
    "score_proof.json",
    "report.json",
    "meta.json",
    "inputs/inventory.json",
    "inputs/advisories.jsonl",
    "inputs/vex.json",
    "inputs/vex-trust.json",
    "inputs/policy.json",
    "inputs/exploits.json",
];

/// Errors reading or replaying a bundle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not a proof bundle: {0}")]
    Zip(String),
    #[error("{member}: {reason}")]
    Member { member: String, reason: String },
    #[error(
        "the {input} input does not match the manifest: pinned {pinned}, contents hash to {actual}"
    )]
    Tampered {
        input: String,
        pinned: String,
        actual: String,
    },
    #[error("the proof ledger is broken: {0}")]
    Ledger(#[source] LedgerError),
}

/// How a bundle's proof ledger is broken.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A node is out of order or its recorded hash is not its content's.
    #[error(transparent)]
    Node(#[from] crate::evaluate::Error),
    #[error("the nodes give root {computed}, meta.json records {recorded}")]
    Root { computed: String, recorded: String },
}

/// `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub schema: String,
    pub stella_version: String,
    pub created_at_utc: String,
    pub root_hash: String,
    pub verdict: String,
}

/// Writes the bundle of an evaluation of `inputs`.
pub fn write(inputs: &Inputs, evaluation: &Evaluation) -> Vec<u8> {
    let verdict = serde_json::to_value(evaluation.report.verdict).unwrap_or_default();
    let meta = Meta {
        schema: SCHEMA.into(),
        stella_version: stella_sbom::TOOL_VERSION.into(),
        created_at_utc: evaluation.manifest.created_at_utc.clone(),
        root_hash: evaluation.root.clone(),
        verdict: verdict.as_str().unwrap_or_default().into(),
    };
    let members: [(&str, Vec<u8>); 10] = [
        ("manifest.json", pretty(&evaluation.manifest)),
        ("score_proof.json", pretty(&evaluation.nodes)),
        (
            "report.json",
            evaluation.report.to_canonical_json().into_bytes(),
        ),
        ("meta.json", pretty(&meta)),
        (
            "inputs/inventory.json",
            serde_json::to_vec(&inputs.inventory).expect("an inventory serialises"),
        ),
        (
            "inputs/advisories.jsonl",
            stella_advisories::snapshot::export(&inputs.advisories).into_bytes(),
        ),
        (
            "inputs/vex.json",
            serde_json::to_vec(&inputs.statements).expect("statements serialise"),
        ),
        (
            "inputs/vex-trust.json",
            serde_json::to_vec(&inputs.trust).expect("a trust config serialises"),
        ),
        (
            "inputs/policy.json",
            stella_policy::canonical_json(
                &serde_json::to_value(&inputs.policy).expect("a policy serialises"),
            )
            .into_bytes(),
        ),
        (
            "inputs/exploits.json",
            serde_json::to_vec(&inputs.exploits).expect("signals serialise"),
        ),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (name, bytes) in members {
        zip.start_file(name, options).expect("in-memory zip");
        zip.write_all(&bytes).expect("in-memory zip");
    }
    zip.finish().expect("in-memory zip").into_inner()
}

/// Canonical pretty JSON of anything serialisable.
fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
    stella_sbom::canonical::to_string_pretty(&serde_json::to_value(value).expect("serialises"))
        .into_bytes()
}

/// What a bundle recorded.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub manifest: ScanManifest,
    pub nodes: Vec<ProofNode>,
    pub meta: Meta,
    pub report: stella_policy::Report,
}

/// Reads and checks a bundle: members, input hashes, ledger hashes, root.
pub fn read(bytes: &[u8]) -> Result<(Inputs, Recorded), Error> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| Error::Zip(e.to_string()))?;
    let mut members: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| Error::Zip(e.to_string()))?;
        let name = file
            .name()
            .map_err(|e| Error::Zip(e.to_string()))?
            .to_string();
        if !MEMBERS.contains(&name.as_str()) {
            return Err(Error::Member {
                member: name,
                reason: "not a member of a proof bundle".into(),
            });
        }
        if file.size() > MAX_MEMBER {
            return Err(Error::Member {
                member: name,
                reason: format!("larger than {MAX_MEMBER} bytes"),
            });
        }
        let mut data = Vec::new();
        (&mut file)
            .take(MAX_MEMBER + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::Member {
                member: name.clone(),
                reason: e.to_string(),
            })?;
        total += data.len() as u64;
        if data.len() as u64 > MAX_MEMBER || total > MAX_TOTAL {
            return Err(Error::Member {
                member: name,
                reason: "expands beyond the size limit".into(),
            });
        }
        members.insert(name, data);
    }
    let member = |name: &str| -> Result<&[u8], Error> {
        members
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::Member {
                member: name.into(),
                reason: "missing".into(),
            })
    };
    fn json<T: serde::de::DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Member {
            member: name.into(),
            reason: e.to_string(),
        })
    }
    let manifest: ScanManifest = json("manifest.json", member("manifest.json")?)?;
    let nodes: Vec<ProofNode> = json("score_proof.json", member("score_proof.json")?)?;
    let meta: Meta = json("meta.json", member("meta.json")?)?;
    let report: stella_policy::Report = json("report.json", member("report.json")?)?;
    let advisories_text =
        std::str::from_utf8(member("inputs/advisories.jsonl")?).map_err(|e| Error::Member {
            member: "inputs/advisories.jsonl".into(),
            reason: e.to_string(),
        })?;
    let advisories =
        stella_advisories::snapshot::import(advisories_text).map_err(|e| Error::Member {
            member: "inputs/advisories.jsonl".into(),
            reason: e.to_string(),
        })?;
    let evaluated_at = chrono::DateTime::parse_from_rfc3339(&manifest.created_at_utc)
        .map_err(|e| Error::Member {
            member: "manifest.json".into(),
            reason: format!("createdAtUtc: {e}"),
        })?
        .with_timezone(&chrono::Utc);
    let inputs = Inputs {
        inventory: json("inputs/inventory.json", member("inputs/inventory.json")?)?,
        advisories,
        statements: json("inputs/vex.json", member("inputs/vex.json")?)?,
        trust: json("inputs/vex-trust.json", member("inputs/vex-trust.json")?)?,
        policy: json("inputs/policy.json", member("inputs/policy.json")?)?,
        exploits: json("inputs/exploits.json", member("inputs/exploits.json")?)?,
        evaluated_at,
        namespace: report.namespace.clone(),
        environment: report.environment.clone(),
    };
    let pinned = [
        &manifest.sbom_hash,
        &manifest.concelier_snapshot_hash,
        &manifest.excititor_snapshot_hash,
        &manifest.vex_trust_hash,
        &manifest.lattice_policy_hash,
        &manifest.exploit_snapshot_hash,
    ];
    for ((input, actual), pinned) in input_hashes(&inputs).into_iter().zip(pinned) {
        if &actual != pinned {
            return Err(Error::Tampered {
                input: input.into(),
                pinned: pinned.clone(),
                actual,
            });
        }
    }
    crate::evaluate::verify(&nodes).map_err(|e| Error::Ledger(e.into()))?;
    let root = crate::evaluate::root(&nodes);
    if root != meta.root_hash {
        return Err(Error::Ledger(LedgerError::Root {
            computed: root,
            recorded: meta.root_hash,
        }));
    }
    Ok((
        inputs,
        Recorded {
            manifest,
            nodes,
            meta,
            report,
        },
    ))
}

/// Inputs to swap in a replay.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub advisories: Option<Vec<stella_advisories::Advisory>>,
    pub statements: Option<Vec<stella_vex::Statement>>,
    pub trust: Option<stella_vex::TrustConfig>,
    pub policy: Option<stella_policy::PolicySpec>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.advisories.is_none()
            && self.statements.is_none()
            && self.trust.is_none()
            && self.policy.is_none()
    }
}

/// A finding whose decision differs between the recorded and the replayed evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub id: String,
    pub purl: String,
    /// Outcome and deciding rule before (`None`: no such finding then).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The result of a replay.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    pub recorded_root: String,
    pub root: String,
    /// Without overrides: whether the recomputation proved the recorded root.
    pub proved: bool,
    pub recorded_verdict: String,
    pub verdict: String,
    /// Inputs whose hash changed (`advisories`, `vex`, `vexTrust`, `policy`).
    pub changed_inputs: Vec<String>,
    pub changes: Vec<Change>,
}

/// Recomputes a bundle's evaluation, with `overrides` swapped in.
pub fn replay(bytes: &[u8], overrides: Overrides) -> Result<(Replay, Evaluation), Error> {
    let (mut inputs, recorded) = read(bytes)?;
    let before = input_hashes(&inputs);
    if let Some(a) = overrides.advisories.clone() {
        inputs.advisories = a;
    }
    if let Some(s) = overrides.statements.clone() {
        inputs.statements = s;
    }
    if let Some(t) = overrides.trust.clone() {
        inputs.trust = t;
    }
    if let Some(p) = overrides.policy.clone() {
        inputs.policy = p;
    }
    let after = input_hashes(&inputs);
    let changed_inputs = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, _)| b.0.to_string())
        .collect();
    let evaluation = evaluate(&inputs);
    let describe = |d: &stella_policy::FindingDecision| {
        let outcome = serde_json::to_value(d.outcome).unwrap_or_default();
        format!(
            "{} ({})",
            outcome.as_str().unwrap_or_default(),
            d.rule
                .clone()
                .unwrap_or_else(|| format!("{:?}", d.decided_by).to_lowercase())
        )
    };
    let index =
        |report: &stella_policy::Report| -> std::collections::BTreeMap<(String, String), String> {
            report
                .findings
                .iter()
                .map(|d| ((d.id.clone(), d.purl.clone()), describe(d)))
                .collect()
        };
    let (old, new) = (index(&recorded.report), index(&evaluation.report));
    let keys: std::collections::BTreeSet<&(String, String)> =
        old.keys().chain(new.keys()).collect();
    let changes = keys
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|(id, purl)| Change {
            id: id.clone(),
            purl: purl.clone(),
            before: old.get(&(id.clone(), purl.clone())).cloned(),
            after: new.get(&(id.clone(), purl.clone())).cloned(),
        })
        .collect();
    let verdict = serde_json::to_value(evaluation.report.verdict).unwrap_or_default();
    Ok((
        Replay {
            proved: overrides.is_empty() && evaluation.root == recorded.meta.root_hash,
            recorded_root: recorded.meta.root_hash,
            root: evaluation.root.clone(),
            recorded_verdict: recorded.meta.verdict,
            verdict: verdict.as_str().unwrap_or_default().into(),
            changed_inputs,
            changes,
        },
        evaluation,
    ))
}
