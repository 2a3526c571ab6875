//! The install a platform engineer does, on a real cluster: `config/default` into the kind /
//! k3d cluster `KUBECONFIG` names (with the images loaded: `make images storage-images
//! kind-load`), a pod started, and its discovered Scan Ready — nobody writes a Scan. Skipped,
//! with a message, on the local API server (no kubelet there to run anything).

use crate::{cluster, repo_root, run, unique_namespace};
use stella_e2e::ClusterKind;

#[test]
fn installed_operator_scans_a_running_pod() {
    let Some(cluster) = cluster() else {
        return;
    };
    if let ClusterKind::Local = cluster.kind() {
        eprintln!(
            "SKIPPED: needs a real cluster (KUBECONFIG naming a kind-/k3d- context, images loaded with `make images storage-images kind-load`); the local API server has no kubelet"
        );
        return;
    }
    let kubectl = || cluster.kubectl();
    run(kubectl()
        .args(["apply", "--server-side", "--force-conflicts", "-k"])
        .arg(repo_root().join("config/default")));
    for target in [
        "statefulset/stella-postgres",
        "deployment/stella-s3",
        "deployment/stella-operator",
    ] {
        run(kubectl().args([
            "-n",
            "stella-system",
            "rollout",
            "status",
            target,
            "--timeout=300s",
        ]));
    }
    let ns = unique_namespace("kind-e2e");
    run(kubectl().args(["create", "namespace", &ns]));
    run(kubectl().args([
        "-n",
        &ns,
        "run",
        "sleeper",
        "--image=docker.io/library/busybox:1.36",
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ]));
    run(kubectl().args([
        "-n",
        &ns,
        "wait",
        "--for=condition=Ready",
        "pod/sleeper",
        "--timeout=300s",
    ]));
    // Discovery labels the Scan with the workload (a bare Pod here) and its namespace.
    let selector = format!("workload.stella-ops.org/pod.sleeper={ns}");
    let started = std::time::Instant::now();
    loop {
        let names = run(kubectl().args([
            "-n",
            "stella-system",
            "get",
            "scans",
            "-l",
            &selector,
            "-o",
            "name",
        ]));
        if !names.trim().is_empty() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no Scan discovered for the pod"
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    run(kubectl().args([
        "-n",
        "stella-system",
        "wait",
        "--for=condition=Ready",
        "scans",
        "-l",
        &selector,
        "--timeout=900s",
    ]));
    let table = run(kubectl().args(["get", "scans", "-A", "-l", &selector]));
    assert!(table.contains("Completed"), "{table}");
    run(kubectl().args(["delete", "namespace", &ns, "--wait=false"]));
}
