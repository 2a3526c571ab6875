//! cosign's encrypted private-key files: a PEM block (`ENCRYPTED SIGSTORE PRIVATE KEY`, older
//! `ENCRYPTED COSIGN PRIVATE KEY`) whose body is the JSON of go-securesystemslib's
//! `encrypted` package — a scrypt KDF (`N`, `r`, `p`, salt) deriving a 32-byte key for a NaCl
//! secretbox (XSalsa20-Poly1305, 24-byte nonce) that seals the private key's DER.

use crate::keys::KeyError;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use serde::{Deserialize, Serialize};

/// The KDF cost accepted at most: `N` = 2^20 with `r` = 8 needs 1 GiB; cosign writes 2^15.
const MAX_LOG_N: u8 = 20;
const MAX_R: u32 = 32;
const MAX_P: u32 = 16;
/// What cosign writes.
const LOG_N: u8 = 15;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: Params,
    salt: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    nonce: String,
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, KeyError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| KeyError::Encrypted(format!("{field} is not base64: {e}")))
}

/// The DER sealed in the JSON `body` of an encrypted key file, opened with `password`.
pub fn decrypt(body: &[u8], password: &[u8]) -> Result<Vec<u8>, KeyError> {
    let sealed: Sealed = serde_json::from_slice(body)
        .map_err(|e| KeyError::Encrypted(format!("not the encrypted-key JSON: {e}")))?;
    if sealed.kdf.name != "scrypt" {
        return Err(KeyError::Encrypted(format!(
            "KDF {:?} (only scrypt is used by cosign)",
            sealed.kdf.name
        )));
    }
    if sealed.cipher.name != "nacl/secretbox" {
        return Err(KeyError::Encrypted(format!(
            "cipher {:?} (only nacl/secretbox is used by cosign)",
            sealed.cipher.name
        )));
    }
    let Params { n, r, p } = sealed.kdf.params;
    if n < 2 || !n.is_power_of_two() {
        return Err(KeyError::Encrypted(format!(
            "scrypt N = {n} is not a power of two"
        )));
    }
    let log_n = n.trailing_zeros() as u8;
    if log_n > MAX_LOG_N || r == 0 || r > MAX_R || p == 0 || p > MAX_P {
        return Err(KeyError::Encrypted(format!(
            "scrypt cost N = {n}, r = {r}, p = {p} is beyond what is accepted (N ≤ 2^{MAX_LOG_N}, r ≤ {MAX_R}, p ≤ {MAX_P})"
        )));
    }
    let salt = b64("kdf.salt", &sealed.kdf.salt)?;
    let nonce = b64("cipher.nonce", &sealed.cipher.nonce)?;
    if nonce.len() != 24 {
        return Err(KeyError::Encrypted(format!(
            "the secretbox nonce is {} bytes, not 24",
            nonce.len()
        )));
    }
    let ciphertext = b64("ciphertext", &sealed.ciphertext)?;
    let key = derive(password, &salt, log_n, r, p)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    cipher
        .decrypt(
            crypto_secretbox::Nonce::from_slice(&nonce),
            ciphertext.as_slice(),
        )
        .map_err(|_| KeyError::WrongPassword)
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32], KeyError> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| KeyError::Encrypted(format!("scrypt parameters: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key)
        .map_err(|e| KeyError::Encrypted(format!("scrypt: {e}")))?;
    Ok(key)
}

/// `der` sealed under `password` as cosign seals it (scrypt N = 2^15, r = 8, p = 1; a random
/// 32-byte salt and 24-byte nonce), as the PEM text of an `ENCRYPTED SIGSTORE PRIVATE KEY`.
pub fn encrypt(der: &[u8], password: &[u8]) -> Result<String, KeyError> {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    rng.fill(&mut salt)
        .and_then(|_| rng.fill(&mut nonce))
        .map_err(|e| KeyError::Random(e.to_string()))?;
    let key = derive(password, &salt, LOG_N, 8, 1)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    let ciphertext = cipher
        .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), der)
        .map_err(|_| KeyError::Encrypted("sealing failed".into()))?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let sealed = Sealed {
        kdf: Kdf {
            name: "scrypt".into(),
            params: Params {
                n: 1 << LOG_N,
                r: 8,
                p: 1,
            },
            salt: b64(&salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: b64(&nonce),
        },
        ciphertext: b64(&ciphertext),
    };
    let json = serde_json::to_vec(&sealed).map_err(|e| KeyError::Encrypted(e.to_string()))?;
    Ok(crate::keys::to_pem("ENCRYPTED SIGSTORE PRIVATE KEY", &json))
}
