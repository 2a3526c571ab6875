//! The bearer-token flow against a real registry: Debian's `docker-registry` configured with
//! token auth, and a token server (the piece an identity provider plays) written here: it
//! checks Basic credentials and issues ES256 JWTs the registry verifies against our CA.

use super::stella;
use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

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

#[test]
fn bearer_token_auth_against_a_real_registry() {
    for tool in ["docker-registry", "skopeo"] {
        if !Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(std::env::var_os("CI").is_none(), "{tool} required under CI");
            eprintln!("SKIPPED: {tool} not installed");
            return;
        }
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e/images/build-debian.sh");
    if !Command::new("bash")
        .arg(script)
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(std::env::var_os("CI").is_none());
        return;
    }
    let layout = std::env::var_os("STELLA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/stella"))
        .join("images/debian-bookworm/oci");

    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["stella-token-issuer".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "stella-token-issuer");
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.path().join("issuer.pem"), cert.pem()).unwrap();
    let token_port = token_server(key.serialize_der(), cert.der().to_vec());

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: 127.0.0.1:{port}\n\
         auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {pem}\n",
        data = dir.path().join("data").display(),
        pem = dir.path().join("issuer.pem").display(),
    );
    std::fs::write(dir.path().join("config.yml"), config).unwrap();
    let mut registry = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < 20);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let reference = format!("127.0.0.1:{port}/stella-test/debian:bookworm");
    let push = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:wonderland",
        ])
        .arg(format!("oci:{}:bookworm", layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );

    let auth = dir.path().join("config.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"127.0.0.1:{port}":{{"username":"alice","password":"wonderland"}}}}}}"#
        ),
    )
    .unwrap();
    let scan = |extra: &[&str]| {
        stella()
            .args([
                "scan",
                &reference,
                "--quiet",
                "--insecure-registry",
                "--format",
                "table",
                "--data-dir",
            ])
            .arg(dir.path().join("stella"))
            .args(extra)
            .env("DOCKER_CONFIG", dir.path().join("none"))
            .output()
            .unwrap()
    };
    let out = scan(&["--registry-auth-file", auth.to_str().unwrap()]);
    let _ = registry.kill();
    let _ = registry.wait();
    let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\nregistry log:\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("libc6"));
}

#[test]
fn anonymous_token_requests_are_refused_as_auth_failures() {
    // The token server refuses requests without credentials: exit code 4 with a clear reason.
    if Command::new("sh")
        .arg("-c")
        .arg("command -v docker-registry")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        return;
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["x".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("issuer.pem"), cert.pem()).unwrap();
    let token_port = token_server(key.serialize_der(), cert.der().to_vec());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(dir.path().join("config.yml"), format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        dir.path().join("data").display(), dir.path().join("issuer.pem").display())).unwrap();
    let mut registry = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = stella()
        .args([
            "scan",
            &format!("127.0.0.1:{port}/a/b:1"),
            "--quiet",
            "--insecure-registry",
            "--data-dir",
        ])
        .arg(dir.path().join("s"))
        .env("DOCKER_CONFIG", dir.path().join("none"))
        .output()
        .unwrap();
    let _ = registry.kill();
    let _ = registry.wait();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("token endpoint answered 401"));
}
