//! DSSE envelopes (secure-systems-lab/dsse v1): the signature covers the pre-authentication
//! encoding `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, never the
//! JSON around it, so a verifier checks exactly the bytes that were signed.

use crate::keys::{PublicKey, SignError, Signer};
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The in-toto payload type.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The largest envelope read: an SBOM statement of a large image, base64-encoded.
pub const MAX_ENVELOPE: usize = 256 << 20;
/// At most this many signatures are looked at.
pub const MAX_SIGNATURES: usize = 16;

/// `PAE(payload_type, payload)`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The signed bytes (base64 in JSON).
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
    pub payload_type: String,
    pub signatures: Vec<Signature>,
}

/// One signature of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signing key's id (hex SHA-256 of its SubjectPublicKeyInfo); may be empty.
    #[serde(default)]
    pub keyid: String,
    #[serde(with = "b64")]
    pub sig: Vec<u8>,
}

mod b64 {
    use base64::Engine;

    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        // DSSE allows either alphabet; padding is optional in the URL-safe one.
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        engines
            .iter()
            .find_map(|e| e.decode(text.as_bytes()).ok())
            .ok_or_else(|| serde::de::Error::custom("not base64"))
    }
}

/// Why an envelope does not verify or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the envelope is {0} bytes, larger than the {MAX_ENVELOPE} accepted")]
    TooLarge(usize),
    #[error("not a DSSE envelope: {0}")]
    Malformed(String),
    #[error("the envelope has no signatures")]
    Unsigned,
    #[error("the envelope has {0} signatures, more than the {MAX_SIGNATURES} looked at")]
    TooManySignatures(usize),
    #[error("no signature verifies with a trusted key (signed by {signers}; trusted: {trusted})")]
    Untrusted { signers: String, trusted: String },
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
}

impl Envelope {
    /// `payload` of `payload_type` signed by `signer`.
    pub fn sign(
        payload_type: &str,
        payload: Vec<u8>,
        signer: &dyn Signer,
    ) -> Result<Envelope, EnvelopeError> {
        let sig = signer.sign(&pae(payload_type, &payload))?;
        Ok(Envelope {
            payload,
            payload_type: payload_type.to_string(),
            signatures: vec![Signature {
                keyid: signer.public().key_id().to_string(),
                sig,
            }],
        })
    }

    /// Canonical JSON (keys sorted, no whitespace) and a trailing newline: the stored bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("an envelope serialises");
        let mut out = stella_sbom::canonical::to_string(&value).into_bytes();
        out.push(b'\n');
        out
    }

    /// An envelope from its JSON, refusing oversized input and anything but an envelope.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if envelope.signatures.is_empty() {
            return Err(EnvelopeError::Unsigned);
        }
        if envelope.signatures.len() > MAX_SIGNATURES {
            return Err(EnvelopeError::TooManySignatures(envelope.signatures.len()));
        }
        Ok(envelope)
    }

    /// The trusted key that verifies one of the signatures. A signature naming a key id is
    /// checked only against that key; one without an id against every key.
    pub fn verify<'k>(&self, keys: &'k [PublicKey]) -> Result<&'k PublicKey, EnvelopeError> {
        if self.signatures.is_empty() {
            return Err(EnvelopeError::Unsigned);
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(EnvelopeError::TooManySignatures(self.signatures.len()));
        }
        let message = pae(&self.payload_type, &self.payload);
        for signature in &self.signatures {
            for key in keys {
                if !signature.keyid.is_empty() && signature.keyid != key.key_id() {
                    continue;
                }
                if key.verify(&message, &signature.sig) {
                    return Ok(key);
                }
            }
        }
        let short = |id: &str| {
            if id.is_empty() {
                "(no key id)".to_string()
            } else {
                id.chars().take(12).collect()
            }
        };
        Err(EnvelopeError::Untrusted {
            signers: self
                .signatures
                .iter()
                .map(|s| short(&s.keyid))
                .collect::<Vec<_>>()
                .join(", "),
            trusted: if keys.is_empty() {
                "none".into()
            } else {
                keys.iter()
                    .map(|k| short(k.key_id()))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }

    /// The payload as base64, as it appears in the JSON.
    pub fn payload_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.payload)
    }
}
