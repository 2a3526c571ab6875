//! `stella scan` against a real OCI registry: Debian's `docker-registry` (CNCF distribution) on
//! loopback, with and without htpasswd Basic auth, the Debian test image pushed with skopeo.

use super::stella;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A registry process on a loopback port; stopped on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn required() -> bool {
    std::env::var_os("CI").is_some()
}

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(!required(), "{name} is required under CI");
        eprintln!("SKIPPED: {name} not installed");
    }
    found
}

fn start(auth: Option<(&str, &str)>) -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        dir.path().join("data").display()
    );
    if let Some((user, password)) = auth {
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: stella-test\n    path: {}\n",
            dir.path().join("htpasswd").display()
        ));
    }
    std::fs::write(dir.path().join("config.yml"), config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(Stdio::null())
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
    Registry {
        child,
        port,
        _dir: dir,
    }
}

fn push(layout: &Path, destination: &str, creds: Option<&str>) {
    let mut command = Command::new("skopeo");
    command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
    if let Some(creds) = creds {
        command.args(["--dest-creds", creds]);
    }
    command
        .arg(format!("oci:{}:bookworm", layout.display()))
        .arg(format!("docker://{destination}"));
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn debian_layout() -> Option<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e/images/build-debian.sh");
    let out = Command::new("bash").arg(script).output().unwrap();
    if !out.status.success() {
        assert!(!required(), "{}", String::from_utf8_lossy(&out.stderr));
        eprintln!("SKIPPED: cannot build the Debian test image");
        return None;
    }
    let cache = std::env::var_os("STELLA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/stella"));
    Some(cache.join("images/debian-bookworm/oci"))
}

fn components(bom: &[u8]) -> Vec<String> {
    let bom: serde_json::Value = serde_json::from_slice(bom).unwrap();
    bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn scans_from_a_registry_with_basic_auth_and_reports_auth_and_reachability_failures() {
    if !(tool("docker-registry") && tool("skopeo") && tool("htpasswd")) {
        return;
    }
    let Some(layout) = debian_layout() else {
        return;
    };
    let registry = start(Some(("alice", "wonderland")));
    let reference = format!("127.0.0.1:{}/stella-test/debian:bookworm", registry.port);
    push(&layout, &reference, Some("alice:wonderland"));

    let dir = tempfile::tempdir().unwrap();
    // A Kubernetes dockerconfigjson Secret's payload.
    let auth = dir.path().join("dockerconfig.json");
    let encoded = "YWxpY2U6d29uZGVybGFuZA=="; // alice:wonderland
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"{encoded}"}}}}}}"#,
            registry.port
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let scan = |extra: &[&str]| {
        let mut command = stella();
        command
            .args([
                "scan",
                &reference,
                "--quiet",
                "--insecure-registry",
                "--data-dir",
            ])
            .arg(&data)
            .args(extra);
        command.env("DOCKER_CONFIG", dir.path().join("no-docker-config"));
        command.output().unwrap()
    };
    let out = scan(&["--registry-auth-file", auth.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_registry = components(&out.stdout);

    let local = stella()
        .args([
            "scan",
            &format!("{}:bookworm", layout.display()),
            "--quiet",
            "--data-dir",
        ])
        .arg(dir.path().join("local"))
        .output()
        .unwrap();
    assert!(local.status.success());
    assert_eq!(
        from_registry,
        components(&local.stdout),
        "same image, same components"
    );
    let bom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        bom["metadata"]["component"]["name"],
        format!("127.0.0.1:{}/stella-test/debian", registry.port)
    );

    // Warm: the layers are cached, nothing is downloaded again (the blobs directory is gone).
    std::fs::remove_dir_all(data.join("blobs/sha256")).unwrap();
    let warm = scan(&["--registry-auth-file", auth.to_str().unwrap()]);
    assert!(warm.status.success());
    let layer_blobs = std::fs::read_dir(data.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        layer_blobs, 1,
        "only the config blob is fetched on a warm rescan"
    );

    // No credentials: an authentication failure, exit code 4.
    let out = scan(&[]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Wrong credentials: 4 as well.
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"username":"alice","password":"nope"}}}}}}"#,
            registry.port
        ),
    )
    .unwrap();
    let out = scan(&["--registry-auth-file", wrong.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown tag: a usage error (2), not a crash.
    let out = stella()
        .args([
            "scan",
            &format!("127.0.0.1:{}/stella-test/debian:nope", registry.port),
            "--quiet",
            "--insecure-registry",
            "--registry-auth-file",
            auth.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nothing listening: unreachable, exit code 3, after the retries.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = stella()
        .args([
            "scan",
            &format!("127.0.0.1:{closed}/x/y:1"),
            "--quiet",
            "--insecure-registry",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unreachable"));
}

#[test]
fn scans_from_an_anonymous_registry() {
    if !(tool("docker-registry") && tool("skopeo")) {
        return;
    }
    let Some(layout) = debian_layout() else {
        return;
    };
    let registry = start(None);
    let reference = format!("127.0.0.1:{}/library/debian:bookworm", registry.port);
    push(&layout, &reference, None);
    let dir = tempfile::tempdir().unwrap();
    let out = stella()
        .args([
            "scan",
            &reference,
            "--quiet",
            "--insecure-registry",
            "--format",
            "table",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("Debian GNU/Linux 12 (bookworm)") && table.contains("libc6"),
        "{table}"
    );
    // Plain HTTP is only used when asked for: without the flag, TLS to a plain-HTTP server fails.
    let out = stella()
        .args(["scan", &reference, "--quiet", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
