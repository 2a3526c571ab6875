//! Test harness: a real Kubernetes API server for the project's tests.
//!
//! There is no cluster on the build machines, but Debian's `kubernetes` source package builds
//! `kube-apiserver` 1.20 (see `e2e/harness/build-kube-apiserver.sh`). [`TestCluster`] builds
//! it once (cached), starts etcd and the API server on loopback with token auth, RBAC and
//! self-signed certificates, hands tests a kubeconfig, and tears everything down. When
//! `KUBECONFIG` names a kind or k3d cluster, the same tests run there instead.
//!
//! Limits of the local server, as with envtest: Kubernetes 1.20 ignores CEL rules, and no
//! controller-manager runs (Jobs never get Pods; tests set Job status themselves).
//!
//! Tests that need Pods to run ask for [`TestCluster::node`] instead: a real single node
//! (kubelet, containerd, controller-manager, scheduler, kube-proxy, DNS, hostpath storage)
//! started by `e2e/harness/node.sh`; see the [`node`] module.

pub mod argocd;
pub mod cluster;
pub mod compat;
pub mod install;
pub mod monitoring;
pub mod node;
pub mod pki;
pub mod services;
pub mod tlog;

pub use cluster::{ClusterKind, Error, TestCluster};

/// Whether a test that cannot get its cluster must fail rather than skip: under CI, or with
/// `STELLA_E2E_REQUIRE=1`.
fn cluster_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var("STELLA_E2E_REQUIRE").is_ok_and(|v| v == "1")
}

/// The shared API server ([`TestCluster::shared`]), or `None` with a `SKIPPED` line when none
/// can be had here; a failure under CI or with `STELLA_E2E_REQUIRE=1`.
pub fn cluster() -> Option<&'static TestCluster> {
    match TestCluster::shared() {
        Ok(cluster) => Some(cluster),
        Err(error) if cluster_required() => {
            panic!("test cluster required but unavailable: {error}")
        }
        Err(error) => {
            eprintln!("SKIPPED: no test cluster: {error}");
            None
        }
    }
}

/// The harness's real node ([`TestCluster::node`]), or `None` with a `SKIPPED` line when none
/// can be had here; a failure under CI or with `STELLA_E2E_REQUIRE=1`.
pub fn node() -> Option<&'static TestCluster> {
    match TestCluster::node() {
        Ok(node) => Some(node),
        Err(error) if cluster_required() => panic!("test node required but unavailable: {error}"),
        Err(error) => {
            eprintln!("SKIPPED: no test node: {error}");
            None
        }
    }
}
pub use install::install_crds;

/// The repository's root directory.
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A namespace name unique to this run.
pub fn unique_namespace(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{prefix}-{:x}-{nanos:x}", std::process::id())
}

/// Runs a command, returning stdout; panics with its stderr when it fails.
pub fn run(command: &mut std::process::Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
