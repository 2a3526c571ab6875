//! End-to-end tests against a real API server: the local harness (etcd + kube-apiserver 1.20
//! built from Debian's source) or a kind/k3d cluster named by `KUBECONFIG`; and, for what
//! needs Pods to run, the harness's real node (`e2e/harness/node.sh`).

mod architecture;
mod crds;
mod install;
mod kind;
mod leader;
mod node;

use std::path::PathBuf;
use stella_e2e::TestCluster;

/// The shared cluster, or `None` (the test is skipped, loudly) when no API server can be had
/// here. Under CI, or with `STELLA_E2E_REQUIRE=1`, a missing cluster fails the test instead.
fn cluster() -> Option<&'static TestCluster> {
    match TestCluster::shared() {
        Ok(cluster) => Some(cluster),
        Err(error) => {
            let required = std::env::var_os("CI").is_some()
                || std::env::var("STELLA_E2E_REQUIRE").is_ok_and(|v| v == "1");
            if required {
                panic!("test cluster required but unavailable: {error}");
            }
            eprintln!("SKIPPED: no test cluster: {error}");
            None
        }
    }
}

/// The harness's real node (`e2e/harness/node.sh`: kubelet, containerd, controller-manager,
/// …), or `None` (skipped, loudly) when none can be had here; a failure under CI or with
/// `STELLA_E2E_REQUIRE=1`.
fn node() -> Option<&'static TestCluster> {
    match TestCluster::node() {
        Ok(node) => Some(node),
        Err(error) => {
            let required = std::env::var_os("CI").is_some()
                || std::env::var("STELLA_E2E_REQUIRE").is_ok_and(|v| v == "1");
            if required {
                panic!("test node required but unavailable: {error}");
            }
            eprintln!("SKIPPED: no test node: {error}");
            None
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A namespace name unique to this run.
fn unique_namespace(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{:x}-{nanos:x}", std::process::id())
}

/// Runs a command, returning stdout; panics with stderr on failure.
fn run(command: &mut std::process::Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
