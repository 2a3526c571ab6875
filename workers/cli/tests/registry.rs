//! `stella scan` against a real OCI registry: Debian's `docker-registry` (CNCF distribution) on
//! loopback, with and without htpasswd Basic auth, the Debian test image pushed with skopeo.

use super::{Registry, have_tools, stella, test_image};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// A registry requiring htpasswd Basic auth for `user:password`.
pub(crate) fn with_basic_auth(user: &str, password: &str) -> Registry {
    let (user, password) = (user.to_string(), password.to_string());
    Registry::start(move |dir| {
        let out = Command::new("htpasswd")
            .args(["-Bbn", &user, &password])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(dir.join("htpasswd"), out.stdout).unwrap();
        format!(
            "auth:\n  htpasswd:\n    realm: stella-test\n    path: {}\n",
            dir.join("htpasswd").display()
        )
    })
}

fn debian_layout() -> Option<PathBuf> {
    test_image("build-debian.sh", "debian-bookworm").map(|d| d.join("oci"))
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
    if !have_tools(&["docker-registry", "skopeo", "htpasswd"]) {
        return;
    }
    let Some(layout) = debian_layout() else {
        return;
    };
    let registry = with_basic_auth("alice", "wonderland");
    let reference = registry.push(
        &layout,
        "bookworm",
        "stella-test/debian:bookworm",
        Some("alice:wonderland"),
    );

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
    if !have_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let Some(layout) = debian_layout() else {
        return;
    };
    let registry = Registry::start(|_| String::new());
    let reference = registry.push(&layout, "bookworm", "library/debian:bookworm", None);
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
