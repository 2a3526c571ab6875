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

/// `statements` signed by `signer`.
pub fn sign(
    statements: &[Statement],
    signer: &dyn stella_attest::Signer,
) -> Result<Vec<Attestation>> {
    statements
        .iter()
        .map(|statement| {
            let envelope = stella_attest::sign(statement, signer)
                .map_err(|e| Error::Internal(format!("signing failed: {e}")))?
                .to_json();
            // The artifact a statement binds is its second subject; the vulnerability scan
            // binds nothing but the image, so its own payload names it.
            let artifact_digest = statement
                .subject
                .get(1)
                .and_then(Subject::sha256_digest)
                .unwrap_or_else(|| sha256(&statement.to_payload()));
            Ok(Attestation {
                kind: statement.kind().unwrap_or(Kind::Sbom),
                predicate_type: statement.predicate_type.clone(),
                key: stella_attest::storage_key(&artifact_digest),
                artifact_digest,
                envelope_digest: sha256(&envelope),
                envelope,
            })
        })
        .collect()
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
