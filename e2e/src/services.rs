//! Real services the tests start on loopback: Debian's `docker-registry` (with a pusher for
//! small OCI images built in memory) and fresh PostgreSQL databases. Each is `None` (skip with
//! a message) when its program is missing, and a failure under CI (env `CI`).

use sha2::{Digest, Sha256};
use std::process::Command;
use std::time::{Duration, Instant};

/// Whether tests must not skip (env `CI`).
pub fn required() -> bool {
    std::env::var_os("CI").is_some()
}

/// Skips with a message (panics under CI).
pub fn skip(why: &str) {
    assert!(!required(), "{why} (required under CI)");
    eprintln!("SKIPPED: {why}");
}

/// `$STELLA_FIXTURES/<sub>` (default: `../shared/fixtures` beside the repository), the
/// third-party test data of `fixtures/INDEX.md`, when it exists. The fixtures are optional:
/// without them a test says `SKIPPED` and why, also under CI.
pub fn fixtures(sub: &str) -> Option<std::path::PathBuf> {
    let base = std::env::var_os("STELLA_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
        });
    let path = base.join(sub);
    if path.exists() {
        return Some(path);
    }
    eprintln!(
        "SKIPPED: fixtures not found at {} (set STELLA_FIXTURES)",
        path.display()
    );
    None
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Debian's docker-registry on a free loopback port; stopped on drop.
#[derive(Debug)]
pub struct Registry {
    child: std::process::Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    pub fn start() -> Option<Registry> {
        let found = Command::new("sh")
            .args(["-c", "command -v docker-registry"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            skip("docker-registry is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.path().join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            _dir: dir,
        })
    }

    /// Pushes a one-layer linux/amd64 image of `files` (path, contents) as
    /// `repository:tag` over the registry's HTTP API; returns the manifest digest.
    pub async fn push(&self, repository: &str, tag: &str, files: &[(&str, &[u8])]) -> String {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tar = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, path, *content).unwrap();
        }
        let tar = tar.into_inner().unwrap();
        let diff_id = sha256(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let layer = gz.finish().unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
        let http = reqwest::Client::new();
        self.blob(&http, repository, &layer).await;
        self.blob(&http, repository, &config).await;
        self.manifest(&http, repository, tag, &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(&layer), "size": layer.len()}],
        }))
        .await
    }

    /// Pushes a one-file image (`/etc/motd` holding `content`; distinct content, distinct
    /// digest) as `repository:tag`; returns its digest.
    pub async fn push_motd(&self, repository: &str, tag: &str, content: &str) -> String {
        self.push(repository, tag, &[("etc/motd", content.as_bytes())])
            .await
    }

    /// Uploads one blob (monolithic upload) to `repository`.
    pub async fn blob(&self, http: &reqwest::Client, repository: &str, blob: &[u8]) {
        let base = format!("http://{}/v2/{repository}", self.host);
        let started = http
            .post(format!("{base}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202, "upload start");
        let location = started.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("http://{}{location}", self.host)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = http
            .put(format!("{location}{separator}digest={}", sha256(blob)))
            .body(blob.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "blob upload");
    }

    /// Puts an OCI manifest as `repository:tag`; returns its digest.
    pub async fn manifest(
        &self,
        http: &reqwest::Client,
        repository: &str,
        tag: &str,
        manifest: &serde_json::Value,
    ) -> String {
        let bytes = serde_json::to_vec(manifest).unwrap();
        let put = http
            .put(format!(
                "http://{}/v2/{repository}/manifests/{tag}",
                self.host
            ))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "manifest upload");
        sha256(&bytes)
    }
}

/// A fresh PostgreSQL database (created with `psql`), dropped with the value. `DATABASE_URL`
/// names the server (default: the local one).
#[derive(Debug)]
pub struct PgDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(label: &str) -> Option<PgDatabase> {
        let admin = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!(
            "stella_{label}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        match psql(&admin, &format!("CREATE DATABASE {name}")) {
            Ok(o) if o.status.success() => {}
            other => {
                skip(&format!("no PostgreSQL/psql at {admin}: {other:?}"));
                return None;
            }
        }
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, sql: &str) -> std::io::Result<std::process::Output> {
    Command::new("psql")
        .arg(url)
        .args(["-q", "-c", sql])
        .output()
}

/// What a [`FeedServer`] answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `200` with the body and its ETag (`"sha256-prefix"`); `304` to a matching
    /// `If-None-Match`.
    Body(Vec<u8>),
    /// This status and an empty body (`Retry-After: 1` with a 429).
    Status(u16),
    /// `200` announcing more bytes than it sends, then closing.
    Truncated(Vec<u8>),
    /// `302` to this location.
    Redirect(String),
}

/// A request a [`FeedServer`] got: its request line and `If-None-Match`.
pub type Request = (String, Option<String>);

/// A loopback HTTP/1.1 server for feed tests: one answer for every path, changed while it
/// runs, and the requests it got (request line and `If-None-Match`). Stopped on drop.
#[derive(Debug)]
pub struct FeedServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    answer: std::sync::Arc<std::sync::Mutex<Answer>>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FeedServer {
    pub fn start(answer: Answer) -> FeedServer {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let answer = std::sync::Arc::new(std::sync::Mutex::new(answer));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a, r, s) = (answer.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(stream.try_clone().expect("a clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut if_none_match = None;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("if-none-match")
                    {
                        if_none_match = Some(value.trim().to_string());
                    }
                }
                r.lock()
                    .unwrap()
                    .push((line.trim().to_string(), if_none_match.clone()));
                let answer = a.lock().unwrap().clone();
                let response: Vec<u8> = match answer {
                    Answer::Body(body) => {
                        let etag = format!("\"{}\"", &sha256(&body)[7..23]);
                        if if_none_match.as_deref() == Some(etag.as_str()) {
                            format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n").into_bytes()
                        } else {
                            let mut head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            head.extend_from_slice(&body);
                            head
                        }
                    }
                    Answer::Status(code) => format!(
                        "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
                    )
                    .into_bytes(),
                    Answer::Truncated(body) => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len() * 2 + 10
                        )
                        .into_bytes();
                        head.extend_from_slice(&body);
                        head
                    }
                    Answer::Redirect(location) => format!(
                        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .into_bytes(),
                };
                let _ = stream.write_all(&response);
                let _ = stream.flush();
            }
        });
        FeedServer {
            base,
            answer,
            requests,
            stop,
        }
    }

    /// Answers `answer` from now on.
    pub fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// The requests so far: (request line, `If-None-Match`).
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

/// A SoftHSM2 token (Debian's `softhsm2`, the stand-in for an HSM) with one ECDSA P-256 key
/// pair made by OpenSC's `pkcs11-tool`, in a directory of its own.
#[derive(Debug)]
pub struct SoftHsm {
    /// `SOFTHSM2_CONF` for every process that opens the token.
    pub conf: std::path::PathBuf,
    pub module: &'static str,
    _dir: tempfile::TempDir,
}

impl SoftHsm {
    /// Token `token` (user PIN `pin`) with the key pair `key`; `None` (skipped, loudly; a
    /// failure under CI) where SoftHSM2 or OpenSC is not installed.
    pub fn start(token: &str, pin: &str, key: &str) -> Option<SoftHsm> {
        let module = "/usr/lib/softhsm/libsofthsm2.so";
        let tools = ["softhsm2-util", "pkcs11-tool"]
            .iter()
            .all(|t| std::process::Command::new(t).arg("--help").output().is_ok());
        if !tools || !std::path::Path::new(module).exists() {
            skip("SoftHSM2 / OpenSC are not installed (apt-get install softhsm2 opensc)");
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("tokens")).expect("the token directory");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .expect("the SoftHSM configuration");
        let hsm = SoftHsm {
            conf,
            module,
            _dir: dir,
        };
        hsm.tool(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                token,
                "--so-pin",
                "0000",
                "--pin",
                pin,
            ],
        );
        hsm.tool(
            "pkcs11-tool",
            &[
                "--module",
                module,
                "--token-label",
                token,
                "--login",
                "--pin",
                pin,
                "--keypairgen",
                "--key-type",
                "EC:prime256v1",
                "--label",
                key,
            ],
        );
        Some(hsm)
    }

    /// Runs a SoftHSM / OpenSC tool against this token's configuration; panics on failure.
    pub fn tool(&self, program: &str, args: &[&str]) {
        let out = std::process::Command::new(program)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The RFC 7512 URI of `key` on `token` with the PIN given as a value.
    pub fn uri(&self, token: &str, key: &str, pin: &str) -> String {
        format!(
            "pkcs11:token={token};object={key}?module-path={}&pin-value={pin}",
            self.module
        )
    }
}
