//! The bearer-token flow against a real registry: Debian's `docker-registry` configured with
//! token auth, and a token server (the piece an identity provider plays) written here: it
//! checks Basic credentials and issues ES256 JWTs the registry verifies against our CA.

use super::{Registry, have_tools, stella, test_image};
use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

const SERVICE: &str = "stella-test-registry";
const ISSUER: &str = "stella-test-issuer";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Serves `GET /token?scope=…&service=…` with Basic auth alice:wonderland, until the test ends.
fn token_server(key_pkcs8: Vec<u8>, cert_der: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pkcs8,
            &rng,
        )
        .unwrap();
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut authorized = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let expected = format!(
                    "basic {}",
                    base64::engine::general_purpose::STANDARD.encode("alice:wonderland")
                );
                if line.to_ascii_lowercase().starts_with("authorization:")
                    && line[14..].trim().eq_ignore_ascii_case(&expected)
                {
                    authorized = true;
                }
            }
            let mut stream = stream;
            if !authorized {
                let _ = stream.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            // Grant what the scope asks for.
            let query = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .split_once('?')
                .map(|(_, q)| q.to_string())
                .unwrap_or_default();
            let mut access = Vec::new();
            for pair in query.split('&') {
                if let Some(scope) = pair.strip_prefix("scope=") {
                    let scope = scope
                        .replace("%3A", ":")
                        .replace("%2C", ",")
                        .replace("%2F", "/");
                    let parts: Vec<&str> = scope.split(':').collect();
                    if parts.len() == 3 {
                        access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}));
                    }
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert_der)]});
            let claims = serde_json::json!({"iss": ISSUER, "sub": "alice", "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", access.len()), "access": access});
            let signing_input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let signature = key.sign(&rng, signing_input.as_bytes()).unwrap();
            let body = serde_json::json!({"token": format!("{signing_input}.{}", b64(signature.as_ref())), "expires_in": 300}).to_string();
            let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
        }
    });
    port
}

/// A self-signed issuer certificate and a registry trusting it, with its token server.
fn token_registry() -> Registry {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["stella-token-issuer".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "stella-token-issuer");
    let cert = params.self_signed(&key).unwrap();
    let token_port = token_server(key.serialize_der(), cert.der().to_vec());
    Registry::start(move |dir| {
        std::fs::write(dir.join("issuer.pem"), cert.pem()).unwrap();
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            dir.join("issuer.pem").display()
        )
    })
}

fn scan(reference: &str, data: &Path, extra: &[&str]) -> std::process::Output {
    stella()
        .args([
            "scan",
            reference,
            "--quiet",
            "--insecure-registry",
            "--format",
            "table",
            "--data-dir",
        ])
        .arg(data)
        .args(extra)
        .env("DOCKER_CONFIG", data.join("no-docker-config"))
        .output()
        .unwrap()
}

#[test]
fn bearer_token_auth_against_a_real_registry() {
    if !have_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let Some(image) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let registry = token_registry();
    let reference = registry.push(
        &image.join("oci"),
        "bookworm",
        "stella-test/debian:bookworm",
        Some("alice:wonderland"),
    );
    let data = tempfile::tempdir().unwrap();
    let auth = data.path().join("config.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"username":"alice","password":"wonderland"}}}}}}"#,
            registry.port
        ),
    )
    .unwrap();
    let out = scan(
        &reference,
        data.path(),
        &["--registry-auth-file", auth.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}\nregistry log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        registry.log()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("libc6"));
}

#[test]
fn anonymous_token_requests_are_refused_as_auth_failures() {
    // The token server refuses requests without credentials: exit code 4 with a clear reason.
    if !have_tools(&["docker-registry"]) {
        return;
    }
    let registry = token_registry();
    let data = tempfile::tempdir().unwrap();
    let out = scan(
        &format!("127.0.0.1:{}/a/b:1", registry.port),
        data.path(),
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("token endpoint answered 401"));
}
