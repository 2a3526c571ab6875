//! Cosign key-based image signatures, verified directly with `ring`: cosign stores a
//! signature of image `repo@sha256:<hex>` as the image `repo:sha256-<hex>.sig`, whose layers
//! are simple-signing payloads (`application/vnd.dev.cosign.simplesigning.v1+json`) each
//! annotated with `dev.cosignproject.cosign/signature`, a base64 ECDSA P-256 / SHA-256 (DER)
//! signature of the payload bytes. A payload counts when a configured key verifies it and its
//! `critical.image.docker-manifest-digest` is the admitted digest. Keyless (Fulcio/Rekor)
//! signatures are not verified.

use crate::policy::PublicKey;
use base64::Engine;
use serde::Deserialize;

/// Layer media type of a cosign simple-signing payload.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The largest payload fetched.
pub const MAX_PAYLOAD: u64 = 64 * 1024;
/// At most this many signatures of one image are checked.
pub const MAX_SIGNATURES: usize = 16;

/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point
/// (`id-ecPublicKey`, `prime256v1`, BIT STRING of 66 bytes).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Errors reading keys.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not a PEM PUBLIC KEY")]
    NotPem,
    #[error("the key is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("only ECDSA P-256 public keys (cosign's default) are supported")]
    UnsupportedKey,
}

/// One signature found for an image: the payload and its decoded signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// What the signatures of a digest show against a set of keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    Verified { key: String },
    Missing,
    Invalid(String),
}

/// The uncompressed P-256 point of a PEM `PUBLIC KEY` (SPKI), as `cosign generate-key-pair`
/// writes it.
pub fn parse_public_key(name: &str, pem: &str) -> Result<PublicKey, Error> {
    let body: String = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|s| s.trim_end().strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or(Error::NotPem)?
        .split_whitespace()
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body)?;
    match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        Some(point) if point.len() == 65 && point[0] == 4 => Ok(PublicKey {
            name: name.to_string(),
            point: point.to_vec(),
        }),
        _ => Err(Error::UnsupportedKey),
    }
}

/// The PEM SPKI of an uncompressed P-256 point (what tests and `cosign` publish).
pub fn public_key_pem(point: &[u8]) -> String {
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(point);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// The simple-signing payload cosign signs for `repository@digest`.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .unwrap_or_default()
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: PayloadImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Checks the signatures of `digest` against `keys`: verified by the first key whose
/// signature verifies over a payload naming this digest.
pub fn check(signatures: &[Signed], digest: &str, keys: &[PublicKey]) -> Check {
    if signatures.is_empty() {
        return Check::Missing;
    }
    if keys.is_empty() {
        return Check::Invalid("no usable key configured".into());
    }
    let mut why = "no signature verifies".to_string();
    for signed in signatures.iter().take(MAX_SIGNATURES) {
        for key in keys {
            let verifier = ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_ASN1,
                &key.point,
            );
            if verifier.verify(&signed.payload, &signed.signature).is_err() {
                continue;
            }
            match serde_json::from_slice::<Payload>(&signed.payload) {
                Ok(p)
                    if p.critical.image.digest == digest
                        && p.critical.kind == "cosign container image signature" =>
                {
                    return Check::Verified {
                        key: key.name.clone(),
                    };
                }
                Ok(p) => {
                    why = format!(
                        "a signature by key {} is for {}, not this digest",
                        key.name, p.critical.image.digest
                    );
                }
                Err(e) => why = format!("a payload signed by key {} is malformed: {e}", key.name),
            }
        }
    }
    Check::Invalid(why)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    pub(crate) fn key_pair() -> EcdsaKeyPair {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
    }

    fn sign(key: &EcdsaKeyPair, payload: Vec<u8>) -> Signed {
        let rng = ring::rand::SystemRandom::new();
        let signature = key.sign(&rng, &payload).unwrap().as_ref().to_vec();
        Signed { payload, signature }
    }

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn verifies_with_the_right_key_and_digest_only() {
        let release = key_pair();
        let other = key_pair();
        let pem = public_key_pem(release.public_key().as_ref());
        let key = parse_public_key("release", &pem).unwrap();
        let other_key =
            parse_public_key("other", &public_key_pem(other.public_key().as_ref())).unwrap();
        let good = sign(&release, payload("r.example/app", DIGEST));
        assert_eq!(
            check(
                std::slice::from_ref(&good),
                DIGEST,
                std::slice::from_ref(&key)
            ),
            Check::Verified {
                key: "release".into()
            }
        );
        assert_eq!(
            check(&[], DIGEST, std::slice::from_ref(&key)),
            Check::Missing
        );
        assert!(matches!(
            check(
                std::slice::from_ref(&good),
                DIGEST,
                std::slice::from_ref(&other_key)
            ),
            Check::Invalid(_)
        ));
        let elsewhere = sign(
            &release,
            payload("r.example/app", &DIGEST.replace('1', "2")),
        );
        match check(&[elsewhere], DIGEST, std::slice::from_ref(&key)) {
            Check::Invalid(why) => assert!(why.contains("not this digest"), "{why}"),
            other => panic!("{other:?}"),
        }
        let mut tampered = good.clone();
        tampered.payload.push(b' ');
        assert!(matches!(
            check(&[tampered], DIGEST, &[key, other_key]),
            Check::Invalid(_)
        ));
    }

    #[test]
    fn only_p256_pem_keys_parse() {
        assert!(matches!(parse_public_key("k", "nope"), Err(Error::NotPem)));
        let ed25519 = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----";
        assert!(matches!(
            parse_public_key("k", ed25519),
            Err(Error::UnsupportedKey)
        ));
        assert!(matches!(
            parse_public_key(
                "k",
                "-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----"
            ),
            Err(Error::Base64(_))
        ));
    }
}
