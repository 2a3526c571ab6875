//! Signed results (seed 001 §7.2–7.3, §8; "attest or it didn't happen"): every export is an
//! in-toto Statement v1 ([`statement`]) in a DSSE envelope ([`dsse`]), signed by a key only the
//! signer holds ([`keys`], [`cosign`]), and verified offline against a set of trusted public
//! keys ([`verify`]) — several at once, so keys can rotate.
//!
//! Envelopes are stored at `attest/<artifact sha256>.dsse.json` ([`storage_key`]).

pub mod cosign;
pub mod dsse;
pub mod keys;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod rekor;
pub mod statement;

pub use dsse::{Envelope, EnvelopeError};
pub use keys::{Algorithm, KeyError, PublicKey, Signer, SigningKey};
pub use statement::{Kind, Statement, StatementError, Subject};

/// Where the envelope of the artifact with SHA-256 `hex` is stored.
pub fn storage_key(artifact_sha256: &str) -> String {
    let hex = artifact_sha256
        .strip_prefix("sha256:")
        .unwrap_or(artifact_sha256);
    format!("attest/{hex}.dsse.json")
}

/// `statement` signed by `signer`.
pub fn sign(statement: &Statement, signer: &dyn Signer) -> Result<Envelope, EnvelopeError> {
    Envelope::sign(dsse::IN_TOTO_PAYLOAD_TYPE, statement.to_payload(), signer)
}

/// How far in the future a statement's time may be (clock skew).
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// What a verification requires beyond a trusted signature.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// The statement attests this.
    pub kind: Option<Kind>,
    /// One subject carries this digest (`sha256:<hex>`).
    pub subject: Option<String>,
    /// The statement's time is no older than this (and it must have one).
    pub max_age: Option<chrono::Duration>,
}

/// A verified statement and who signed it.
#[derive(Clone, Debug)]
pub struct Verified {
    pub key_id: String,
    pub algorithm: Algorithm,
    pub statement: Statement,
    /// The instant the predicate describes ([`Statement::time`]).
    pub time: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why an envelope does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("payload type {0:?} is not {in_toto:?}", in_toto = dsse::IN_TOTO_PAYLOAD_TYPE)]
    PayloadType(String),
    #[error("the signed statement is invalid: {0}")]
    Statement(#[from] StatementError),
    #[error("the statement attests {found} ({predicate}), not {wanted}")]
    WrongKind {
        wanted: &'static str,
        found: &'static str,
        predicate: String,
    },
    #[error("predicate type {0:?} is not one Stella Ops attests")]
    UnknownPredicate(String),
    #[error("no subject has digest {wanted} (subjects: {found})")]
    WrongSubject { wanted: String, found: String },
    #[error("the statement carries no time, and a maximum age is required")]
    NoTime,
    #[error("the statement is from {time}, older than the {max_age} accepted")]
    Expired { time: String, max_age: String },
    #[error("the statement is dated {time}, in the future")]
    FutureDated { time: String },
}

/// Verifies envelope JSON `bytes` against `keys` and `expect` at `now`.
pub fn verify(
    bytes: &[u8],
    keys: &[PublicKey],
    expect: &Expect,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Verified, VerifyError> {
    let envelope = Envelope::from_json(bytes)?;
    verify_envelope(&envelope, keys, expect, now)
}

/// [`verify`] of a parsed envelope.
pub fn verify_envelope(
    envelope: &Envelope,
    keys: &[PublicKey],
    expect: &Expect,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Verified, VerifyError> {
    let key = envelope.verify(keys)?;
    if envelope.payload_type != dsse::IN_TOTO_PAYLOAD_TYPE {
        return Err(VerifyError::PayloadType(envelope.payload_type.clone()));
    }
    let statement = Statement::from_payload(&envelope.payload)?;
    if let Some(wanted) = expect.kind {
        match statement.kind() {
            Some(found) if found == wanted => {}
            Some(found) => {
                return Err(VerifyError::WrongKind {
                    wanted: wanted.as_str(),
                    found: found.as_str(),
                    predicate: statement.predicate_type.clone(),
                });
            }
            None => return Err(VerifyError::UnknownPredicate(statement.predicate_type)),
        }
    }
    if let Some(wanted) = &expect.subject
        && !statement
            .subject
            .iter()
            .any(|s| s.sha256_digest().as_deref() == Some(wanted.as_str()))
    {
        return Err(VerifyError::WrongSubject {
            wanted: wanted.clone(),
            found: statement
                .subject
                .iter()
                .filter_map(Subject::sha256_digest)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let time = statement.time();
    if let Some(time) = time
        && time > now + MAX_SKEW
    {
        return Err(VerifyError::FutureDated {
            time: time.to_rfc3339(),
        });
    }
    if let Some(max_age) = expect.max_age {
        let time = time.ok_or(VerifyError::NoTime)?;
        if now - time > max_age {
            return Err(VerifyError::Expired {
                time: time.to_rfc3339(),
                max_age: humantime_of(max_age),
            });
        }
    }
    Ok(Verified {
        key_id: key.key_id().to_string(),
        algorithm: key.algorithm(),
        statement,
        time,
    })
}

fn humantime_of(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
