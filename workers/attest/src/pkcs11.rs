//! A signer whose private key never leaves a PKCS#11 token (an HSM, a cloud KMS's PKCS#11
//! library, SoftHSM2), named by an RFC 7512 URI:
//!
//! `pkcs11:token=<label>;object=<key label>?module-path=<library.so>&pin-value=<pin>`
//!
//! `pin-source=<file>` reads the PIN from a file instead, and `STELLA_PKCS11_PIN` /
//! `STELLA_PKCS11_MODULE` supply what the URI leaves out. ECDSA P-256 keys sign with
//! `CKM_ECDSA` over the SHA-256 of the message (the raw `r‖s` becomes DER, as DSSE verifiers
//! expect); Ed25519 keys with `CKM_EDDSA`. The public half is read from the token's public key
//! object of the same label.

use crate::keys::{Algorithm, KeyError, PublicKey, SignError, Signer};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use sha2::{Digest, Sha256};
use std::sync::Mutex;

/// What a `pkcs11:` URI names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    pub token: String,
    pub object: String,
    pub module: Option<String>,
    pub pin: Option<String>,
    pub pin_source: Option<String>,
}

fn percent_decode(text: &str) -> Result<String, KeyError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| KeyError::Token(format!("bad percent-encoding in {text:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| KeyError::Token(format!("{text:?} is not UTF-8")))
}

impl Uri {
    /// Parses an RFC 7512 URI (the attributes used here; others are refused by name).
    pub fn parse(uri: &str) -> Result<Uri, KeyError> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| KeyError::Token("not a pkcs11: URI".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut parsed = Uri {
            token: String::new(),
            object: String::new(),
            module: None,
            pin: None,
            pin_source: None,
        };
        let pairs = path
            .split(';')
            .chain(query.split('&'))
            .filter(|p| !p.is_empty());
        for pair in pairs {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| KeyError::Token(format!("{pair:?} is not name=value")))?;
            let value = percent_decode(value)?;
            match name {
                "token" => parsed.token = value,
                "object" => parsed.object = value,
                "type" if value == "private" => {}
                "module-path" => parsed.module = Some(value),
                "pin-value" => parsed.pin = Some(value),
                "pin-source" => {
                    parsed.pin_source = Some(value.strip_prefix("file:").unwrap_or(&value).into())
                }
                other => {
                    return Err(KeyError::Token(format!(
                        "URI attribute {other:?} is not supported (token, object, type=private, module-path, pin-value, pin-source)"
                    )));
                }
            }
        }
        if parsed.token.is_empty() || parsed.object.is_empty() {
            return Err(KeyError::Token(
                "the URI must name the token and the object (pkcs11:token=…;object=…)".into(),
            ));
        }
        Ok(parsed)
    }
}

/// A private key on a PKCS#11 token.
pub struct Pkcs11Signer {
    // Kept alive for the session.
    _context: Pkcs11,
    session: Mutex<Session>,
    key: ObjectHandle,
    ed25519: bool,
    public: PublicKey,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("key_id", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

fn token_error(what: &str) -> impl FnOnce(cryptoki::error::Error) -> KeyError + '_ {
    move |e| {
        use cryptoki::error::{Error, RvError};
        let why = match e {
            Error::Pkcs11(RvError::PinIncorrect, _) => "wrong PIN".to_string(),
            Error::Pkcs11(RvError::PinLocked, _) => "the token's PIN is locked".to_string(),
            Error::Pkcs11(RvError::PinExpired, _) => "the token's PIN has expired".to_string(),
            Error::Pkcs11(RvError::TokenNotPresent, _) => "the token is not present".to_string(),
            e => e.to_string(),
        };
        KeyError::Token(format!("{what}: {why}"))
    }
}

impl Pkcs11Signer {
    /// Opens the key `uri` names: loads the module, finds the token by label, logs in, finds
    /// the private and public key objects by label.
    pub fn open(uri: &str) -> Result<Pkcs11Signer, KeyError> {
        let uri = Uri::parse(uri)?;
        let module = uri
            .module
            .clone()
            .or_else(|| std::env::var("STELLA_PKCS11_MODULE").ok())
            .ok_or_else(|| {
                KeyError::Token(
                    "no PKCS#11 module: add module-path=… to the URI or set STELLA_PKCS11_MODULE"
                        .into(),
                )
            })?;
        let pin = match (&uri.pin, &uri.pin_source) {
            (Some(pin), _) => pin.clone(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| KeyError::Token(format!("pin-source {file}: {e}")))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            (None, None) => std::env::var("STELLA_PKCS11_PIN").map_err(|_| {
                KeyError::Token(
                    "no PIN: add pin-value= or pin-source= to the URI or set STELLA_PKCS11_PIN"
                        .into(),
                )
            })?,
        };
        let context = Pkcs11::new(&module).map_err(token_error("loading the module"))?;
        match context.initialize(CInitializeArgs::OsThreads) {
            Ok(()) | Err(cryptoki::error::Error::AlreadyInitialized) => {}
            Err(e) => return Err(token_error("initializing the module")(e)),
        }
        let slot = context
            .get_slots_with_token()
            .map_err(token_error("listing slots"))?
            .into_iter()
            .find(|slot| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == uri.token)
            })
            .ok_or_else(|| KeyError::Token(format!("no token labelled {:?}", uri.token)))?;
        let session = context
            .open_ro_session(slot)
            .map_err(token_error("opening a session"))?;
        session
            .login(UserType::User, Some(&cryptoki::types::AuthPin::new(pin)))
            .map_err(token_error("logging in"))?;
        let find = |class: ObjectClass| {
            session
                .find_objects(&[
                    Attribute::Class(class),
                    Attribute::Label(uri.object.as_bytes().to_vec()),
                ])
                .map_err(token_error("finding the key"))
                .map(|found| found.into_iter().next())
        };
        let key = find(ObjectClass::PRIVATE_KEY)?.ok_or_else(|| {
            KeyError::Token(format!(
                "no private key labelled {:?} on token {:?}",
                uri.object, uri.token
            ))
        })?;
        let public_object = find(ObjectClass::PUBLIC_KEY)?.ok_or_else(|| {
            KeyError::Token(format!(
                "no public key labelled {:?} on token {:?} (it is needed for the key id)",
                uri.object, uri.token
            ))
        })?;
        let attributes = session
            .get_attributes(
                public_object,
                &[AttributeType::KeyType, AttributeType::EcPoint],
            )
            .map_err(token_error("reading the public key"))?;
        let (mut key_type, mut point) = (None, None);
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let point = point
            .as_deref()
            .and_then(der_octet_string)
            .ok_or_else(|| KeyError::Token("the public key has no EC point".into()))?;
        let algorithm = match key_type {
            Some(KeyType::EC) => Algorithm::EcdsaP256,
            Some(KeyType::EC_EDWARDS) => Algorithm::Ed25519,
            other => {
                return Err(KeyError::UnsupportedKey(format!(
                    "token key of type {other:?} (ECDSA P-256 and Ed25519 are)"
                )));
            }
        };
        Ok(Pkcs11Signer {
            _context: context,
            session: Mutex::new(session),
            key,
            ed25519: algorithm == Algorithm::Ed25519,
            public: PublicKey::from_raw(algorithm, point)?,
        })
    }
}

/// The contents of a DER OCTET STRING (how tokens return `CKA_EC_POINT`), or the bytes as
/// they are when they are a bare point.
fn der_octet_string(bytes: &[u8]) -> Option<&[u8]> {
    match bytes {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => Some(rest),
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => Some(rest),
        [0x04, ..] if bytes.len() == 65 => Some(bytes),
        _ => None,
    }
}

impl Signer for Pkcs11Signer {
    fn public(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let refused = |e: cryptoki::error::Error| SignError::Refused(format!("the token: {e}"));
        if self.ed25519 {
            let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            return session.sign(&mechanism, self.key, message).map_err(refused);
        }
        let digest = Sha256::digest(message);
        let raw = session
            .sign(&Mechanism::Ecdsa, self.key, &digest)
            .map_err(refused)?;
        let signature = p256::ecdsa::Signature::from_slice(&raw)
            .map_err(|e| SignError::Refused(format!("the token's ECDSA signature: {e}")))?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// The URI without its PIN (`pin-value=…`), for messages and logs.
pub fn redact_pin(uri: &str) -> String {
    match uri.find("pin-value=") {
        Some(at) => {
            let start = at + "pin-value=".len();
            let end = uri[start..]
                .find(['&', ';'])
                .map_or(uri.len(), |i| start + i);
            format!("{}…{}", &uri[..start], &uri[end..])
        }
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_token_object_module_and_pin() {
        let uri = Uri::parse(
            "pkcs11:token=stella%20ci;object=release;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
        )
        .unwrap();
        assert_eq!(
            uri,
            Uri {
                token: "stella ci".into(),
                object: "release".into(),
                module: Some("/usr/lib/softhsm/libsofthsm2.so".into()),
                pin: Some("1234".into()),
                pin_source: None,
            }
        );
        for (bad, wanted) in [
            ("file.pem", "not a pkcs11: URI"),
            ("pkcs11:token=a", "must name the token and the object"),
            (
                "pkcs11:token=a;object=b;serial=1",
                "\"serial\" is not supported",
            ),
            ("pkcs11:token=a%zz;object=b", "bad percent-encoding"),
            ("pkcs11:token", "is not name=value"),
        ] {
            let e = Uri::parse(bad).unwrap_err().to_string();
            assert!(e.contains(wanted), "{bad}: {e}");
        }
    }
}
