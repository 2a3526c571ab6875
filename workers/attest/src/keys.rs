//! Signing and verification keys: ECDSA P-256 (SHA-256, ASN.1 DER signatures, deterministic
//! nonces by RFC 6979, so the same statement signs to the same bytes) and Ed25519.
//!
//! Private keys are read from PEM: `PRIVATE KEY` (PKCS#8, what `openssl genpkey` and
//! `stella attest keygen` write), `EC PRIVATE KEY` (SEC1), and cosign's encrypted files
//! (`ENCRYPTED SIGSTORE PRIVATE KEY`, `ENCRYPTED COSIGN PRIVATE KEY`; see [`crate::cosign`]).
//! Public keys are PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `cosign generate-key-pair`
//! publishes them. A key's id is the lowercase hex SHA-256 of its SubjectPublicKeyInfo DER.

use base64::Engine;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use ring::signature::{self as sig, KeyPair};
use sha2::{Digest, Sha256};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (`id-Ed25519`, BIT STRING of 33 bytes).
/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The largest PEM text read (a key file is a few hundred bytes).
pub const MAX_PEM: usize = 64 * 1024;

/// Signature algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256 (cosign's default).
    EcdsaP256,
    Ed25519,
}

impl Algorithm {
    /// `ecdsa-p256` / `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

/// Errors reading keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM file: {0}")]
    NotPem(&'static str),
    #[error("the key file is larger than {MAX_PEM} bytes")]
    TooLarge,
    #[error("the PEM body is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("a PEM {0:?} block is not a key this reads")]
    UnsupportedLabel(String),
    #[error("unsupported key: {0} (ECDSA P-256 and Ed25519 are)")]
    UnsupportedKey(String),
    #[error("malformed key: {0}")]
    Malformed(String),
    #[error("the key is encrypted: a password is needed")]
    PasswordRequired,
    #[error("wrong password (or a corrupted key file): the secretbox does not open")]
    WrongPassword,
    #[error("encrypted key file: {0}")]
    Encrypted(String),
    #[error("no randomness: {0}")]
    Random(String),
    #[error("PKCS#11: {0}")]
    Token(String),
}

/// One PEM block: its label and DER body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pem {
    pub label: String,
    pub der: Vec<u8>,
}

/// The first PEM block of `text`.
pub fn parse_pem(text: &str) -> Result<Pem, KeyError> {
    if text.len() > MAX_PEM {
        return Err(KeyError::TooLarge);
    }
    let start = text
        .find("-----BEGIN ")
        .ok_or(KeyError::NotPem("no BEGIN line"))?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest
        .find("-----")
        .ok_or(KeyError::NotPem("bad BEGIN line"))?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end_line = format!("-----END {label}-----");
    let end = body
        .find(&end_line)
        .ok_or(KeyError::NotPem("no END line"))?;
    let b64: String = body[..end]
        .lines()
        .filter(|l| !l.contains(':'))
        .flat_map(|l| l.split_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64)?;
    Ok(Pem {
        label: label.to_string(),
        der,
    })
}

/// PEM text of `der` under `label`, 64 columns.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A public key that verifies signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: Algorithm,
    /// The uncompressed P-256 point (65 bytes) or the Ed25519 key (32 bytes).
    raw: Vec<u8>,
    spki: Vec<u8>,
    key_id: String,
}

impl PublicKey {
    fn new(algorithm: Algorithm, raw: Vec<u8>, spki: Vec<u8>) -> PublicKey {
        let key_id = hex::encode(Sha256::digest(&spki));
        PublicKey {
            algorithm,
            raw,
            spki,
            key_id,
        }
    }

    /// A raw public key: an uncompressed P-256 point (65 bytes, `04‖x‖y`) or an Ed25519 key
    /// (32 bytes), as tokens hand them out.
    pub fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Result<PublicKey, KeyError> {
        let prefix: &[u8] = match algorithm {
            Algorithm::EcdsaP256 if raw.len() == 65 && raw[0] == 4 => &P256_SPKI_PREFIX,
            Algorithm::Ed25519 if raw.len() == 32 => &ED25519_SPKI_PREFIX,
            _ => {
                return Err(KeyError::Malformed(format!(
                    "a {}-byte {} public key",
                    raw.len(),
                    algorithm.as_str()
                )));
            }
        };
        PublicKey::from_spki_der(&[prefix, raw].concat())
    }

    /// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo) of a P-256 or Ed25519 key.
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let pem = parse_pem(text)?;
        if pem.label != "PUBLIC KEY" {
            return Err(KeyError::UnsupportedLabel(pem.label));
        }
        PublicKey::from_spki_der(&pem.der)
    }

    /// A SubjectPublicKeyInfo DER of a P-256 or Ed25519 key.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        if let Some(raw) = der.strip_prefix(&ED25519_SPKI_PREFIX[..])
            && raw.len() == 32
        {
            return Ok(PublicKey::new(
                Algorithm::Ed25519,
                raw.to_vec(),
                der.to_vec(),
            ));
        }
        use p256::pkcs8::DecodePublicKey;
        match p256::PublicKey::from_public_key_der(der) {
            Ok(key) => {
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                let raw = key.to_encoded_point(false).as_bytes().to_vec();
                Ok(PublicKey::new(Algorithm::EcdsaP256, raw, der.to_vec()))
            }
            Err(p256::pkcs8::spki::Error::OidUnknown { oid }) => Err(KeyError::UnsupportedKey(
                format!("public key algorithm {oid}"),
            )),
            Err(e) => Err(KeyError::UnsupportedKey(e.to_string())),
        }
    }

    /// The key's PEM `PUBLIC KEY`.
    pub fn to_pem(&self) -> String {
        to_pem("PUBLIC KEY", &self.spki)
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Lowercase hex SHA-256 of the SubjectPublicKeyInfo DER.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let algorithm: &dyn sig::VerificationAlgorithm = match self.algorithm {
            Algorithm::EcdsaP256 => &sig::ECDSA_P256_SHA256_ASN1,
            Algorithm::Ed25519 => &sig::ED25519,
        };
        sig::UnparsedPublicKey::new(algorithm, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

/// Errors signing.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the signer refused: {0}")]
    Refused(String),
}

/// Anything that signs with a private key it holds: a software key ([`SigningKey`]) or a
/// hardware token.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The public half.
    fn public(&self) -> &PublicKey;
    /// The signature of `message` (DER for ECDSA, 64 bytes for Ed25519).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A software private key.
pub struct SigningKey {
    inner: Inner,
    public: PublicKey,
}

enum Inner {
    P256(p256::ecdsa::SigningKey),
    Ed25519(sig::Ed25519KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.public.algorithm)
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

/// OID of `id-ecPublicKey` and of `id-Ed25519`, DER-encoded with their tag and length.
const OID_EC_PUBLIC_KEY: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
const OID_RSA: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

impl SigningKey {
    /// A private key from PEM text; `password` opens cosign's encrypted files (an empty
    /// password is a password: cosign writes such files).
    pub fn from_pem(text: &str, password: Option<&[u8]>) -> Result<SigningKey, KeyError> {
        let pem = parse_pem(text)?;
        match pem.label.as_str() {
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&pem.der),
            "EC PRIVATE KEY" => SigningKey::from_sec1_der(&pem.der),
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let password = password.ok_or(KeyError::PasswordRequired)?;
                let der = crate::cosign::decrypt(&pem.der, password)?;
                // cosign writes PKCS#8; its older files hold SEC1.
                SigningKey::from_pkcs8_der(&der).or_else(|e| match e {
                    KeyError::UnsupportedKey(_) => Err(e),
                    _ => SigningKey::from_sec1_der(&der).map_err(|_| e),
                })
            }
            "RSA PRIVATE KEY" => Err(KeyError::UnsupportedKey("RSA".into())),
            "ENCRYPTED PRIVATE KEY" => Err(KeyError::UnsupportedLabel(
                "ENCRYPTED PRIVATE KEY (PKCS#8 PBES2; decrypt it with openssl pkcs8 first)".into(),
            )),
            other => Err(KeyError::UnsupportedLabel(other.to_string())),
        }
    }

    /// A PKCS#8 (v1 or v2) P-256 or Ed25519 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        if contains(&OID_ED25519) {
            let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|e| KeyError::Malformed(format!("Ed25519 PKCS#8: {e}")))?;
            let raw = pair.public_key().as_ref().to_vec();
            let spki = [&ED25519_SPKI_PREFIX[..], &raw].concat();
            let public = PublicKey::new(Algorithm::Ed25519, raw, spki);
            return Ok(SigningKey {
                inner: Inner::Ed25519(pair),
                public,
            });
        }
        if contains(&OID_RSA) {
            return Err(KeyError::UnsupportedKey("RSA".into()));
        }
        if !contains(&OID_EC_PUBLIC_KEY) {
            return Err(KeyError::Malformed(
                "PKCS#8 of no algorithm this reads".into(),
            ));
        }
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| match e {
            p256::pkcs8::Error::PublicKey(p256::pkcs8::spki::Error::OidUnknown { oid }) => {
                KeyError::UnsupportedKey(format!("elliptic curve {oid}"))
            }
            e => KeyError::Malformed(format!("P-256 PKCS#8: {e}")),
        })?;
        Ok(SigningKey::p256(key))
    }

    /// A SEC1 `ECPrivateKey` on P-256.
    pub fn from_sec1_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let secret = p256::SecretKey::from_sec1_der(der)
            .map_err(|e| KeyError::Malformed(format!("SEC1 EC private key (P-256): {e}")))?;
        Ok(SigningKey::p256(p256::ecdsa::SigningKey::from(secret)))
    }

    fn p256(key: p256::ecdsa::SigningKey) -> SigningKey {
        let verifying = key.verifying_key();
        let raw = verifying.to_encoded_point(false).as_bytes().to_vec();
        let spki = p256::PublicKey::from(verifying)
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        SigningKey {
            inner: Inner::P256(key),
            public: PublicKey::new(Algorithm::EcdsaP256, raw, spki),
        }
    }

    /// A new random key and its PKCS#8 DER.
    pub fn generate(algorithm: Algorithm) -> Result<(SigningKey, Vec<u8>), KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let random = |e: ring::error::Unspecified| KeyError::Random(e.to_string());
        let der = match algorithm {
            Algorithm::EcdsaP256 => {
                sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(random)?
            }
            Algorithm::Ed25519 => sig::Ed25519KeyPair::generate_pkcs8(&rng).map_err(random)?,
        };
        let der = der.as_ref().to_vec();
        Ok((SigningKey::from_pkcs8_der(&der)?, der))
    }
}

impl Signer for SigningKey {
    fn public(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.inner {
            Inner::P256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(message);
                Ok(signature.to_der().as_bytes().to_vec())
            }
            Inner::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}
