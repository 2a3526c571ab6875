//! in-toto Statement v1: subjects (name + digest set), a predicate type and the predicate.
//! Serialised as canonical JSON (keys sorted, no whitespace), so the same inputs give the same
//! statement bytes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `_type` of a v1 statement.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// CycloneDX SBOM predicate.
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
/// SPDX SBOM predicate.
pub const SPDX: &str = "https://spdx.dev/Document";
/// Stella Ops' verdict report predicate (schema: `schemas/report-v1.json`).
pub const REPORT: &str = "https://stella-ops.org/attestations/report/v1";
/// in-toto's vulnerability scan predicate.
pub const VULNS: &str = "https://in-toto.io/attestation/vulns/v0.1";
/// Stella Ops' proof predicate: the scan manifest and the proof root of a verdict.
pub const PROOF: &str = "https://stella-ops.org/attestations/proof/v1";
/// The JSON schema of [`REPORT`]'s predicate.
pub const REPORT_SCHEMA: &str = include_str!("../schemas/report-v1.json");
/// The JSON schema of [`PROOF`]'s predicate.
pub const PROOF_SCHEMA: &str = include_str!("../schemas/proof-v1.json");

/// What a statement attests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An SBOM (CycloneDX or SPDX).
    Sbom,
    /// The policy verdict report.
    Report,
    /// The vulnerability findings.
    Vulns,
    /// The proof bundle's manifest and root.
    Proof,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Sbom, Kind::Report, Kind::Vulns, Kind::Proof];

    /// `sbom`, `report`, `vulns`, `proof`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sbom => "sbom",
            Kind::Report => "report",
            Kind::Vulns => "vulns",
            Kind::Proof => "proof",
        }
    }

    /// The kind of a predicate type.
    pub fn of_predicate(predicate_type: &str) -> Option<Kind> {
        match predicate_type {
            CYCLONEDX | SPDX => Some(Kind::Sbom),
            REPORT => Some(Kind::Report),
            VULNS => Some(Kind::Vulns),
            PROOF => Some(Kind::Proof),
            _ => None,
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not one of sbom, report, vulns, proof"))
    }
}

/// A subject: a name and its digests (`sha256` → lowercase hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject named `name` with SHA-256 `hex` (a `sha256:` prefix is dropped).
    pub fn sha256(name: impl Into<String>, hex: &str) -> Subject {
        let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
        Subject {
            name: name.into(),
            digest: BTreeMap::from([("sha256".to_string(), hex.to_string())]),
        }
    }

    /// The subject's `sha256` digest, as `sha256:<hex>`.
    pub fn sha256_digest(&self) -> Option<String> {
        self.digest.get("sha256").map(|h| format!("sha256:{h}"))
    }
}

/// An in-toto v1 statement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    pub predicate_type: String,
    pub predicate: Value,
}

/// Why bytes are not a valid statement.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error("the payload is not statement JSON: {0}")]
    Json(String),
    #[error("_type is {0:?}, not {STATEMENT_TYPE:?}")]
    Type(String),
    #[error("the statement has no subject")]
    NoSubject,
    #[error("subject {0} has no digest")]
    NoDigest(usize),
    #[error(
        "subject {index} digest {algorithm}: {value:?} is not lowercase hex of the right length"
    )]
    BadDigest {
        index: usize,
        algorithm: String,
        value: String,
    },
    #[error("the statement has no predicate type")]
    NoPredicateType,
    #[error("the predicate is not a non-empty object")]
    NoPredicate,
}

impl Statement {
    /// A statement about `subject`.
    pub fn new(subject: Vec<Subject>, predicate_type: &str, predicate: Value) -> Statement {
        Statement {
            type_: STATEMENT_TYPE.into(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// Canonical JSON bytes: the DSSE payload.
    pub fn to_payload(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("a statement serialises");
        stella_sbom::canonical::to_string(&value).into_bytes()
    }

    /// A statement from a DSSE payload, checked as the in-toto v1 validator checks it.
    pub fn from_payload(bytes: &[u8]) -> Result<Statement, StatementError> {
        let statement: Statement =
            serde_json::from_slice(bytes).map_err(|e| StatementError::Json(e.to_string()))?;
        statement.validate()?;
        Ok(statement)
    }

    /// The in-toto v1 rules: the type, at least one subject each with a digest, a predicate
    /// type and a non-empty predicate object; and well-formed hex for the digests known here.
    pub fn validate(&self) -> Result<(), StatementError> {
        if self.type_ != STATEMENT_TYPE {
            return Err(StatementError::Type(self.type_.clone()));
        }
        if self.subject.is_empty() {
            return Err(StatementError::NoSubject);
        }
        for (index, subject) in self.subject.iter().enumerate() {
            if subject.digest.is_empty() {
                return Err(StatementError::NoDigest(index));
            }
            for (algorithm, value) in &subject.digest {
                let length = match algorithm.as_str() {
                    "sha256" => 64,
                    "sha512" => 128,
                    _ => continue,
                };
                let hex = value.len() == length
                    && value
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if !hex {
                    return Err(StatementError::BadDigest {
                        index,
                        algorithm: algorithm.clone(),
                        value: value.chars().take(80).collect(),
                    });
                }
            }
        }
        if self.predicate_type.is_empty() {
            return Err(StatementError::NoPredicateType);
        }
        match &self.predicate {
            Value::Object(map) if !map.is_empty() => Ok(()),
            _ => Err(StatementError::NoPredicate),
        }
    }

    /// What the statement attests, when it is one of ours.
    pub fn kind(&self) -> Option<Kind> {
        Kind::of_predicate(&self.predicate_type)
    }

    /// The instant the predicate says it describes: a CycloneDX BOM's `metadata.timestamp`,
    /// an SPDX document's creation, a report's `evaluatedAt`, a vulnerability scan's
    /// `scanFinishedOn`, a proof's `createdAt`.
    pub fn time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let p = &self.predicate;
        let text = match self.predicate_type.as_str() {
            CYCLONEDX => p.pointer("/metadata/timestamp").and_then(Value::as_str),
            SPDX => p
                .get("@graph")
                .and_then(Value::as_array)
                .and_then(|g| {
                    g.iter()
                        .find(|e| e.get("type").and_then(Value::as_str) == Some("CreationInfo"))
                })
                .and_then(|e| e.get("created"))
                .and_then(Value::as_str)
                .or_else(|| p.pointer("/creationInfo/created").and_then(Value::as_str)),
            REPORT => p.get("evaluatedAt").and_then(Value::as_str),
            VULNS => p
                .pointer("/metadata/scanFinishedOn")
                .and_then(Value::as_str),
            PROOF => p.get("createdAt").and_then(Value::as_str),
            _ => None,
        }?;
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// The image digest the statement is about: the first subject's `sha256`, or the
    /// predicate's `imageDigest` for our predicates.
    pub fn image_digest(&self) -> Option<String> {
        self.predicate
            .get("imageDigest")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| self.subject.first().and_then(Subject::sha256_digest))
    }
}
