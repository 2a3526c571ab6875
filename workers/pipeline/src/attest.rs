//! Step 5 (when asked): the in-toto statements of an evaluation's outputs — the SBOM, the
//! vulnerability findings, the verdict report and the proof root — signed into DSSE envelopes
//! and stored at `attest/<artifact sha256>.dsse.json` (seed 001 §7.2–7.3, §4A.5).
//!
//! Every statement's first subject is the image (its repository name and digest); an
//! artifact's statement adds the artifact's own key and SHA-256, which binds the bytes stored
//! next to it. The same evaluation and instant give the same statements, byte for byte.

use crate::{Error, Evaluation, Result};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stella_attest::statement::{self, Kind, Statement, Subject};

/// A serialised SBOM to attest.
#[derive(Clone, Copy, Debug)]
pub struct SbomArtifact<'a> {
    /// `statement::CYCLONEDX` or `statement::SPDX`.
    pub predicate_type: &'static str,
    /// Its object-store key (the subject name).
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// One signed output.
#[derive(Clone, Debug)]
pub struct Attestation {
    pub kind: Kind,
    pub predicate_type: String,
    /// `sha256:` of what is attested: the artifact's bytes, or (vulns) the statement's.
    pub artifact_digest: String,
    /// `attest/<hex>.dsse.json`.
    pub key: String,
    /// The envelope's JSON.
    pub envelope: Vec<u8>,
    /// `sha256:` of [`Attestation::envelope`].
    pub envelope_digest: String,
}

/// The object-store kind of stored envelopes.
pub const ATTESTATION_KIND: &str = "attestation";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The image subject: its repository (the reference without tag or digest) and digest.
fn image_subject(evaluation: &Evaluation) -> Subject {
    let image = &evaluation.inventory.image;
    Subject::sha256(repository(&image.name), &image.digest)
}

/// `registry/repo` of `registry/repo:tag@sha256:…` (a port's colon kept).
pub fn repository(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => name[..colon].to_string(),
        _ => name.to_string(),
    }
}

/// The SBOM's statement: the document itself is the predicate.
pub fn sbom_statement(evaluation: &Evaluation, sbom: SbomArtifact) -> Result<Statement> {
    let predicate: Value = serde_json::from_slice(sbom.bytes).map_err(|e| {
        Error::Internal(format!(
            "the SBOM to attest is not JSON ({e}); attest a JSON serialisation"
        ))
    })?;
    Ok(Statement::new(
        vec![
            image_subject(evaluation),
            Subject::sha256(sbom.name, &sha256(sbom.bytes)),
        ],
        sbom.predicate_type,
        predicate,
    ))
}

/// The vulnerability scan's statement (`https://in-toto.io/attestation/vulns/v0.1`): every
/// finding with its severity and, as annotations, the package, versions, fix state and the
/// VEX status decided for it. `at` is the evaluation instant.
pub fn vulns_statement(evaluation: &Evaluation, at: chrono::DateTime<chrono::Utc>) -> Statement {
    let time = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let result: Vec<Value> = evaluation
        .findings
        .iter()
        .zip(&evaluation.vex)
        .map(|(f, vex)| {
            let mut severity = vec![json!({
                "method": f.severity_origin.as_deref().unwrap_or("stella-ops"),
                "score": f.severity.to_string().to_lowercase(),
            })];
            if let Some(score) = f.cvss_score {
                severity.push(json!({"method": "cvss_score", "score": format!("{score:.1}")}));
            }
            let mut annotations = vec![json!({
                "purl": f.purl,
                "installed": f.installed,
                "fixed": f.fixed,
                "status": f.status,
            })];
            if let Some(status) = vex.as_ref().and_then(|c| c.status) {
                annotations.push(json!({"vex": serde_json::to_value(status).unwrap_or_default()}));
            }
            json!({"id": f.id, "severity": severity, "annotations": annotations})
        })
        .collect();
    Statement::new(
        vec![image_subject(evaluation)],
        statement::VULNS,
        json!({
            "scanner": {
                "uri": "https://stella-ops.org/operator",
                "version": format!("{} (analyzers {})", stella_sbom::TOOL_VERSION, evaluation.inventory.analyzer_version),
                "db": {
                    "uri": "https://stella-ops.org/feeds",
                    "version": evaluation.feed_snapshot,
                },
                "result": result,
            },
            "metadata": {"scanStartedOn": time, "scanFinishedOn": time},
        }),
    )
}

/// The verdict report's statement; `report_name` is the stored report's key.
pub fn report_statement(
    evaluation: &Evaluation,
    report_name: &str,
    report_bytes: &[u8],
) -> Option<Statement> {
    let policy = evaluation.policy.as_ref()?;
    let report = &policy.evaluation.report;
    let report_digest = sha256(report_bytes);
    let mut predicate = json!({
        "imageDigest": evaluation.inventory.image.digest,
        "imageName": evaluation.inventory.image.name,
        "stellaVersion": stella_sbom::TOOL_VERSION,
        "analyzerVersion": evaluation.inventory.analyzer_version,
        "policyDigest": policy.digest,
        "feedSnapshot": evaluation.feed_snapshot,
        "proofRoot": policy.evaluation.root,
        "evaluatedAt": report.evaluated_at,
        "verdict": report.verdict,
        "counts": report.counts,
        "report": {
            "name": report_name,
            "digest": {"sha256": &report_digest[7..]},
            "mediaType": "application/json",
        },
    });
    let extra = [
        ("vexSnapshot", evaluation.vex_snapshot.as_deref()),
        ("namespace", report.namespace.as_deref()),
        ("environment", report.environment.as_deref()),
    ];
    for (field, value) in extra {
        if let Some(value) = value {
            predicate[field] = json!(value);
        }
    }
    Some(Statement::new(
        vec![
            image_subject(evaluation),
            Subject::sha256(report_name, &report_digest),
        ],
        statement::REPORT,
        predicate,
    ))
}

/// The proof's statement: the scan manifest and the ledger's root; the bundle (the zip
/// `stella replay` reads) is the second subject.
pub fn proof_statement(
    evaluation: &Evaluation,
    bundle_name: &str,
    bundle_bytes: &[u8],
) -> Option<Statement> {
    let policy = evaluation.policy.as_ref()?;
    let proof = &policy.evaluation;
    let bundle_digest = sha256(bundle_bytes);
    Some(Statement::new(
        vec![
            image_subject(evaluation),
            Subject::sha256(bundle_name, &bundle_digest),
        ],
        statement::PROOF,
        json!({
            "imageDigest": evaluation.inventory.image.digest,
            "manifest": proof.manifest,
            "rootHash": proof.root,
            "verdict": proof.report.verdict,
            "createdAt": proof.manifest.created_at_utc,
            "bundle": {
                "name": bundle_name,
                "digest": {"sha256": &bundle_digest[7..]},
                "mediaType": "application/zip",
            },
        }),
    ))
}

/// The outputs of one evaluation to attest: the SBOM, and (with a policy) the stored report
/// and the proof bundle.
#[derive(Clone, Copy, Debug)]
pub struct Outputs<'a> {
    pub sbom: SbomArtifact<'a>,
    /// The report's key and canonical bytes.
    pub report: Option<(&'a str, &'a [u8])>,
    /// The proof bundle's name and bytes.
    pub bundle: Option<(&'a str, &'a [u8])>,
    /// The evaluation instant.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Every statement of `outputs`, in kind order.
pub fn statements(evaluation: &Evaluation, outputs: &Outputs) -> Result<Vec<Statement>> {
    let mut out = vec![
        sbom_statement(evaluation, outputs.sbom)?,
        vulns_statement(evaluation, outputs.at),
    ];
    if let Some((name, bytes)) = outputs.report {
        out.extend(report_statement(evaluation, name, bytes));
    }
    if let Some((name, bytes)) = outputs.bundle {
        out.extend(proof_statement(evaluation, name, bytes));
    }
    Ok(out)
}

/// The artifact a statement binds: its second subject; the vulnerability scan binds nothing
/// but the image, so its own payload names it.
pub fn artifact_digest(statement: &Statement) -> String {
    statement
        .subject
        .get(1)
        .and_then(Subject::sha256_digest)
        .unwrap_or_else(|| sha256(&statement.to_payload()))
}

/// `statement` signed by `signer`.
pub fn sign_one(statement: &Statement, signer: &dyn stella_attest::Signer) -> Result<Attestation> {
    let envelope = stella_attest::sign(statement, signer)
        .map_err(|e| Error::Internal(format!("signing failed: {e}")))?
        .to_json();
    let artifact_digest = artifact_digest(statement);
    Ok(Attestation {
        kind: statement.kind().unwrap_or(Kind::Sbom),
        predicate_type: statement.predicate_type.clone(),
        key: stella_attest::storage_key(&artifact_digest),
        artifact_digest,
        envelope_digest: sha256(&envelope),
        envelope,
    })
}

/// `statements` signed by `signer`.
pub fn sign(
    statements: &[Statement],
    signer: &dyn stella_attest::Signer,
) -> Result<Vec<Attestation>> {
    statements.iter().map(|s| sign_one(s, signer)).collect()
}

/// The object-store kind of statements waiting for the signer.
pub const STATEMENT_KIND: &str = "statement";
/// The object-store kind of stored proof bundles.
pub const PROOF_BUNDLE_KIND: &str = "proof-bundle";

/// Where the unsigned statement about the artifact `artifact_digest` waits for the signer.
pub fn statement_key(artifact_digest: &str) -> String {
    let hex = artifact_digest
        .strip_prefix("sha256:")
        .unwrap_or(artifact_digest);
    format!("attest/{hex}.statement.json")
}

/// What a scan in the cluster attests, from its evaluation: the inventory's CycloneDX SBOM
/// (the bytes [`crate::analyze`] stored), the canonical report (the bytes
/// [`crate::record_result`] stores) and the proof bundle, which this stores.
pub async fn prepare(
    store: &stella_store::Store,
    evaluation: &Evaluation,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Statement>> {
    let digest = &evaluation.inventory.image.digest;
    let sbom = stella_sbom::cyclonedx::to_json(&evaluation.inventory).into_bytes();
    let sbom_name = stella_store::keys::image_artifact(digest, "inventory", "cdx.json");
    let report = evaluation
        .report()
        .map(|r| r.to_canonical_json().into_bytes());
    let report_name = report.as_ref().map(|bytes| {
        stella_store::keys::report_version(digest, &hex::encode(Sha256::digest(bytes)))
    });
    let bundle = evaluation.policy.as_ref().map(|p| {
        let bytes = stella_verdict::bundle::write(&p.inputs, &p.evaluation);
        let root = p
            .evaluation
            .root
            .strip_prefix("sha256:")
            .unwrap_or(&p.evaluation.root);
        (format!("images/{digest}/proofs/{root}.zip"), bytes)
    });
    if let Some((key, bytes)) = &bundle {
        store
            .store_artifact(
                digest,
                stella_store::Artifact {
                    key: key.clone(),
                    kind: PROOF_BUNDLE_KIND,
                    format: "zip",
                    view: None,
                    bytes: bytes.clone(),
                },
            )
            .await
            .map_err(Error::storage("failed to store the proof bundle"))?;
    }
    let outputs = Outputs {
        sbom: SbomArtifact {
            predicate_type: statement::CYCLONEDX,
            name: &sbom_name,
            bytes: &sbom,
        },
        report: report_name.as_deref().zip(report.as_deref()),
        bundle: bundle.as_ref().map(|(k, b)| (k.as_str(), b.as_slice())),
        at,
    };
    statements(evaluation, &outputs)
}

/// Stores `statements` unsigned, for the signer: the worker holds no key.
pub async fn store_unsigned(
    store: &stella_store::Store,
    image_digest: &str,
    statements: &[Statement],
) -> Result<()> {
    let puts = statements.iter().map(|s| {
        store.store_artifact(
            image_digest,
            stella_store::Artifact {
                key: statement_key(&artifact_digest(s)),
                kind: STATEMENT_KIND,
                format: "in-toto-json",
                view: s.kind().map(Kind::as_str),
                bytes: s.to_payload(),
            },
        )
    });
    futures::future::try_join_all(puts)
        .await
        .map_err(Error::storage("failed to store the statements to sign"))?;
    Ok(())
}

/// Why the signer refused a stored statement.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{key}: {source}")]
    Invalid {
        key: String,
        source: stella_attest::StatementError,
    },
    #[error("{key}: the statement is about {found}, not the image {wanted}")]
    OtherImage {
        key: String,
        found: String,
        wanted: String,
    },
    #[error("{key}: it attests {name}, which is not an artifact of the image")]
    UnknownArtifact { key: String, name: String },
    #[error("{name}: the stored bytes hash to {actual}, the statement says {attested}")]
    Tampered {
        name: String,
        attested: String,
        actual: String,
    },
    #[error("{0}")]
    Failed(#[from] Error),
}

impl Refusal {
    /// A machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Invalid { .. } => "InvalidStatement",
            Refusal::OtherImage { .. } => "OtherImage",
            Refusal::UnknownArtifact { .. } => "UnknownArtifact",
            Refusal::Tampered { .. } => "ArtifactTampered",
            Refusal::Failed(_) => "SigningFailed",
        }
    }
}

/// The signer: each of the image's stored statements not signed yet (no envelope beside it)
/// is read, validated, checked to be about the image, every artifact it binds read back and
/// re-hashed against the statement and the catalog, then signed and stored. `artifacts` are
/// the image's catalog rows. Returns what was signed.
pub async fn sign_stored(
    store: &stella_store::Store,
    image_digest: &str,
    artifacts: &[stella_store::ArtifactRow],
    signer: &dyn stella_attest::Signer,
) -> std::result::Result<Vec<Attestation>, Refusal> {
    let signed: std::collections::BTreeSet<&str> = artifacts
        .iter()
        .filter(|a| a.kind == ATTESTATION_KIND)
        .map(|a| a.key.as_str())
        .collect();
    let mut out = Vec::new();
    for row in artifacts.iter().filter(|a| a.kind == STATEMENT_KIND) {
        let bytes = read(store, &row.key).await?;
        let statement = Statement::from_payload(&bytes).map_err(|source| Refusal::Invalid {
            key: row.key.clone(),
            source,
        })?;
        let envelope_key = stella_attest::storage_key(&artifact_digest(&statement));
        // Signed before: by this key, nothing to do; by another (a second Scan of the image
        // with its own key, a rotation), this key's signature joins the envelope's.
        let mut cosigned = None;
        if signed.contains(envelope_key.as_str()) {
            let existing = stella_attest::Envelope::from_json(&read(store, &envelope_key).await?)
                .map_err(|e| Error::Internal(format!("{envelope_key}: {e}")))?;
            if existing
                .verify(std::slice::from_ref(signer.public()))
                .is_ok()
            {
                continue;
            }
            cosigned = Some(existing);
        }
        let about = statement.subject[0].sha256_digest().unwrap_or_default();
        if about != image_digest {
            return Err(Refusal::OtherImage {
                key: row.key.clone(),
                found: about,
                wanted: image_digest.to_string(),
            });
        }
        for subject in &statement.subject[1..] {
            let attested = subject.sha256_digest().unwrap_or_default();
            let Some(artifact) = artifacts
                .iter()
                .find(|a| a.key == subject.name && a.kind != STATEMENT_KIND)
            else {
                return Err(Refusal::UnknownArtifact {
                    key: row.key.clone(),
                    name: subject.name.clone(),
                });
            };
            let actual = sha256(&read(store, &artifact.key).await?);
            if actual != attested || artifact.digest != attested {
                return Err(Refusal::Tampered {
                    name: subject.name.clone(),
                    attested,
                    actual,
                });
            }
        }
        let mut attestation = sign_one(&statement, signer)?;
        if let Some(mut existing) = cosigned
            && existing.payload_type == stella_attest::dsse::IN_TOTO_PAYLOAD_TYPE
            && existing.payload == statement.to_payload()
            && existing.signatures.len() < stella_attest::dsse::MAX_SIGNATURES
        {
            let ours = stella_attest::Envelope::from_json(&attestation.envelope)
                .map_err(|e| Error::Internal(e.to_string()))?;
            existing.signatures.extend(ours.signatures);
            attestation.envelope = existing.to_json();
            attestation.envelope_digest = sha256(&attestation.envelope);
        }
        out.push(attestation);
    }
    self::store(store, image_digest, &out).await?;
    Ok(out)
}

async fn read(store: &stella_store::Store, key: &str) -> Result<Vec<u8>> {
    Ok(store
        .get(key)
        .await
        .map_err(Error::storage("failed to read a stored artifact"))?
        .ok_or_else(|| Error::Internal(format!("{key} is recorded but not stored")))?
        .to_vec())
}

/// Stores each envelope at its key, recorded as an `attestation` artifact of the image.
pub async fn store(
    store: &stella_store::Store,
    image_digest: &str,
    attestations: &[Attestation],
) -> Result<()> {
    let puts = attestations.iter().map(|a| {
        store.store_artifact(
            image_digest,
            stella_store::Artifact {
                key: a.key.clone(),
                kind: ATTESTATION_KIND,
                format: "dsse-json",
                view: Some(a.kind.as_str()),
                bytes: a.envelope.clone(),
            },
        )
    });
    futures::future::try_join_all(puts)
        .await
        .map_err(Error::storage("failed to store the attestations"))?;
    Ok(())
}
