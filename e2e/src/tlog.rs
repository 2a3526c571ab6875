//! A Rekor v2 transparency log on loopback, for the tests of our client: no Rekor server can
//! run here (it needs Trillian-Tessera and a cloud or POSIX backend we do not have), so this is
//! the stand-in, and only the log's side of the protocol is ours: `POST /api/v2/log/entries`
//! with a `hashedRekordRequestV002` appends the entry's canonicalized body as a leaf of an
//! RFC 9162 Merkle tree, and answers a `TransparencyLogEntry` with a real inclusion proof and
//! a C2SP checkpoint signed with the log's Ed25519 key. [`TestLog::trusted_root`] is the
//! Sigstore trusted root that names the log. It does not check the entry's signature (real
//! Rekor does): that is not what our client's tests test. [`Misbehave`] makes it lie.

use base64::Engine;
use ring::signature::KeyPair;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

/// How the log answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehave {
    /// Honestly.
    No,
    /// With a proof for another leaf than the posted entry's.
    WrongProof,
    /// With a checkpoint signed by another key.
    ForeignCheckpoint,
    /// With an entry about another digest.
    OtherEntry,
    /// HTTP 503, always.
    Unavailable,
}

struct State {
    leaves: Vec<[u8; 32]>,
    requests: usize,
    misbehave: Misbehave,
}

/// The running log; stopped on drop.
pub struct TestLog {
    pub url: String,
    pub origin: String,
    key: Arc<ring::signature::Ed25519KeyPair>,
    state: Arc<Mutex<State>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    port: u16,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn leaf_hash(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(body);
    h.finalize().into()
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 9162 §2.1.1: the largest power of two smaller than `n`.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// RFC 9162 §2.1.1 MTH over leaf hashes.
fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.1 PATH(m, D[n]), leaf to root.
fn path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(root(&leaves[..k]));
        p
    }
}

impl TestLog {
    /// Starts a log named `origin` holding `prefill` unrelated entries (so proofs have depth).
    pub fn start(origin: &str, prefill: usize) -> TestLog {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("a key");
        let key = Arc::new(ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap());
        let leaves = (0..prefill)
            .map(|i| leaf_hash(format!("{{\"prefill\":{i}}}").as_bytes()))
            .collect();
        let state = Arc::new(Mutex::new(State {
            leaves,
            requests: 0,
            misbehave: Misbehave::No,
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let log = TestLog {
            url: format!("http://127.0.0.1:{port}"),
            origin: origin.to_string(),
            key,
            state,
            stop,
            port,
        };
        let (key, state, stop, origin) = (
            log.key.clone(),
            log.state.clone(),
            log.stop.clone(),
            log.origin.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve(stream, &key, &state, &origin);
                }
            }
        });
        log
    }

    /// From now on, answer like this.
    pub fn misbehave(&self, how: Misbehave) {
        self.state.lock().unwrap().misbehave = how;
    }

    /// Entries appended (prefill included) and requests served.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        (state.leaves.len(), state.requests)
    }

    /// The log's public key (SubjectPublicKeyInfo DER).
    pub fn public_key_der(&self) -> Vec<u8> {
        [&ED25519_SPKI_PREFIX[..], self.key.public_key().as_ref()].concat()
    }

    /// The log's public key as PEM.
    pub fn public_key_pem(&self) -> String {
        let body = b64(&self.public_key_der());
        format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
    }

    /// A Sigstore trusted root naming this log.
    pub fn trusted_root(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": self.url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(&self.public_key_der()),
                    "keyDetails": "PKIX_ED25519",
                    "validFor": {"start": "2020-01-01T00:00:00Z"},
                },
                "logId": {"keyId": b64(&log_id(&self.origin, &self.key))},
            }],
        })
    }
}

impl std::fmt::Debug for TestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestLog")
            .field("url", &self.url)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Drop for TestLog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The C2SP signed-note key hash of an Ed25519 log key: SHA-256(name ‖ "\n" ‖ 0x01 ‖ key);
/// its first 4 bytes are the checkpoint signature's key hint.
fn log_id(origin: &str, key: &ring::signature::Ed25519KeyPair) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    h.update(b"\n\x01");
    h.update(key.public_key().as_ref());
    h.finalize().into()
}

fn respond(stream: &mut std::net::TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn serve(
    mut stream: std::net::TcpStream,
    key: &ring::signature::Ed25519KeyPair,
    state: &Mutex<State>,
    origin: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let request_line = line.trim().to_string();
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let misbehave = {
        let mut s = state.lock().unwrap();
        s.requests += 1;
        s.misbehave
    };
    if request_line != "POST /api/v2/log/entries HTTP/1.1" {
        return respond(&mut stream, 404, r#"{"code":5,"message":"not found"}"#);
    }
    if misbehave == Misbehave::Unavailable {
        return respond(&mut stream, 503, r#"{"code":14,"message":"unavailable"}"#);
    }
    let request: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return respond(
                &mut stream,
                400,
                &serde_json::json!({"code": 3, "message": e.to_string()}).to_string(),
            );
        }
    };
    let rekord = &request["hashedRekordRequestV002"];
    if !rekord["digest"].is_string() || !rekord["signature"]["content"].is_string() {
        return respond(
            &mut stream,
            400,
            r#"{"code":3,"message":"a hashedRekordRequestV002 with digest and signature is required"}"#,
        );
    }
    let mut digest = rekord["digest"].clone();
    if misbehave == Misbehave::OtherEntry {
        digest = serde_json::Value::String(b64(&[7u8; 32]));
    }
    let canonical = serde_json::json!({
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {"hashedRekordV002": {
            "data": {"algorithm": "SHA2_256", "digest": digest},
            "signature": rekord["signature"],
        }},
    })
    .to_string();
    let (index, size, root_hash, proof) = {
        let mut s = state.lock().unwrap();
        s.leaves.push(leaf_hash(canonical.as_bytes()));
        let index = s.leaves.len() - 1;
        let proven = if misbehave == Misbehave::WrongProof && index > 0 {
            index - 1
        } else {
            index
        };
        (
            index,
            s.leaves.len(),
            root(&s.leaves),
            path(proven, &s.leaves),
        )
    };
    let text = format!("{origin}\n{size}\n{}\n", b64(&root_hash));
    let signer_owned;
    let signer = if misbehave == Misbehave::ForeignCheckpoint {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        signer_owned = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        &signer_owned
    } else {
        key
    };
    let id = log_id(origin, key);
    let signature = signer.sign(text.as_bytes());
    let note = format!(
        "{text}\n\u{2014} {origin} {}\n",
        b64(&[&id[..4], signature.as_ref()].concat())
    );
    let entry = serde_json::json!({
        "logIndex": index.to_string(),
        "logId": {"keyId": b64(&id)},
        "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
        "integratedTime": "0",
        "inclusionProof": {
            "logIndex": index.to_string(),
            "rootHash": b64(&root_hash),
            "treeSize": size.to_string(),
            "hashes": proof.iter().map(|h| b64(h)).collect::<Vec<_>>(),
            "checkpoint": {"envelope": note},
        },
        "canonicalizedBody": b64(canonical.as_bytes()),
    });
    respond(&mut stream, 200, &entry.to_string())
}
