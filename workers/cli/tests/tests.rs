//! The `stella` binary as a user runs it.

use std::process::Command;

pub(crate) fn stella() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stella"))
}

#[test]
fn usage_errors_have_their_own_exit_code_and_a_clear_message() {
    let out = stella()
        .args(["scan", "/nonexistent/image.tar"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such OCI layout directory or image tar")
    );

    let out = stella()
        .args(["scan", "x", "--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = stella()
        .args(["scan", ".", "--platform", "linux"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("os/arch"));
}

#[test]
fn a_file_that_is_not_an_image_is_reported_not_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, vec![0x42u8; 10_000]).unwrap();
    let out = stella().arg("scan").arg(&junk).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("neither an OCI layout directory nor a docker-archive tar")
    );
    // A docker-archive whose manifest.json is over the JSON limit is a corrupt image (exit
    // 5, naming the file), not "not an image".
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    let mut manifest = b"[{\"Config\": \"c.json\", \"Layers\": []}]".to_vec();
    manifest.resize(9 * 1024 * 1024, b' ');
    std::fs::write(archive.join("manifest.json"), manifest).unwrap();
    let oversized = dir.path().join("oversized.tar");
    assert!(
        Command::new("tar")
            .arg("-cf")
            .arg(&oversized)
            .arg("-C")
            .arg(&archive)
            .arg("manifest.json")
            .status()
            .unwrap()
            .success()
    );
    let out = stella().arg("scan").arg(&oversized).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("manifest.json"), "{stderr}");
    // A FIFO is refused without blocking on it.
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = stella().arg("scan").arg(&fifo).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
}

mod attest;
mod ci;
mod concurrent;
mod debian;
mod diff;
mod entry;
mod index;
mod lang;
mod policy;
mod registry;
mod rpm;
mod s3;
mod sbom;
mod storage;
mod token;

/// Whether a test that needs real tools or images must fail (under CI) rather than skip.
pub(crate) fn required() -> bool {
    std::env::var_os("CI").is_some()
}

/// Whether every tool is installed; otherwise skip (or fail under CI).
pub(crate) fn have_tools(tools: &[&str]) -> bool {
    for tool in tools {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(!required(), "{tool} is required under CI");
            eprintln!("SKIPPED: {tool} not installed");
            return false;
        }
    }
    true
}

/// A test image built by `e2e/images/<script>` into the cache (`<cache>/images/<name>`);
/// `None` (skip) where it cannot be built here, a failure under CI.
pub(crate) fn test_image(script: &str, name: &str) -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../e2e/images")
        .join(script);
    let output = Command::new("bash").arg(&path).output().unwrap();
    if !output.status.success() {
        let message = format!(
            "{} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!required(), "{message}");
        eprintln!("SKIPPED: {message}");
        return None;
    }
    let cache = std::env::var_os("STELLA_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/stella")
        });
    Some(cache.join("images").join(name))
}

/// Debian's `docker-registry` on a loopback port with `auth` (a YAML `auth:` section or
/// nothing); stopped on drop.
pub(crate) struct Registry {
    child: std::process::Child,
    pub(crate) port: u16,
    pub(crate) dir: tempfile::TempDir,
}

impl Registry {
    pub(crate) fn start(auth: impl FnOnce(&std::path::Path) -> String) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n{}",
            dir.path().join("data").display(),
            auth(dir.path())
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Registry { child, port, dir }
    }

    /// Pushes the tag `tag` of an OCI layout to `repository` with skopeo.
    pub(crate) fn push(
        &self,
        layout: &std::path::Path,
        tag: &str,
        repository: &str,
        creds: Option<&str>,
    ) -> String {
        let reference = format!("127.0.0.1:{}/{repository}", self.port);
        let mut command = Command::new("skopeo");
        command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some(creds) = creds {
            command.args(["--dest-creds", creds]);
        }
        command
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{reference}"));
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        reference
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
mod verdict;
mod vex;
mod vulns;
mod worker;

/// A fresh PostgreSQL database per test (the harness's; skips outside CI without a server).
pub(crate) use stella_e2e::services::PgDatabase;
