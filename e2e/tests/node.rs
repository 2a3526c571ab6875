//! The harness's real node (`e2e/harness/node.sh`): a locally built image loaded into its
//! containerd runs as a Deployment; a Job's Pod runs to completion (and a failing one fails);
//! a StatefulSet's claim binds to a hostpath volume that a non-root Pod writes; Service names
//! resolve through the cluster DNS; a Pod reaches the API server through the `kubernetes`
//! Service and authenticates with its ServiceAccount token; a container over its memory limit
//! ends `OOMKilled`.

use crate::{repo_root, run, unique_namespace};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use stella_e2e::TestCluster;
use stella_e2e::node::{API_SERVICE_IP, NODE_NAME};

/// The scanner tests' Debian image (debootstrap minbase bookworm, built by
/// `e2e/images/build-debian.sh`; its command is `sleep infinity`), loaded into the node once.
fn debian(cluster: &TestCluster) -> Option<&'static str> {
    static LOADED: OnceLock<Option<String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let script = repo_root().join("e2e/images/build-debian.sh");
            let output = Command::new("bash").arg(&script).output().unwrap();
            if !output.status.success() {
                stella_e2e::services::skip(&format!(
                    "{} failed: {}",
                    script.display(),
                    String::from_utf8_lossy(&output.stderr)
                ));
                return None;
            }
            let archive: PathBuf = stella_e2e::cluster::cache_dir()
                .unwrap()
                .join("images/debian-bookworm/image.tar");
            let names = cluster.load_image(&archive).unwrap();
            assert_eq!(names, ["docker.io/stella-test/debian:bookworm"]);
            Some(names[0].clone())
        })
        .as_deref()
}

fn kubectl(cluster: &TestCluster, namespace: &str) -> Command {
    let mut command = cluster.kubectl();
    command.args(["-n", namespace]);
    command
}

fn apply(cluster: &TestCluster, namespace: &str, yaml: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    run(kubectl(cluster, namespace)
        .args(["apply", "-f"])
        .arg(file.path()));
}

fn json(command: &mut Command) -> Value {
    serde_json::from_str(&run(command.args(["-o", "json"]))).unwrap()
}

fn namespace(cluster: &TestCluster, prefix: &str) -> String {
    let ns = unique_namespace(prefix);
    run(cluster.kubectl().args(["create", "namespace", &ns]));
    ns
}

/// Waits until a Pod of `job` has finished and returns its log.
fn job_log(cluster: &TestCluster, ns: &str, job: &str, condition: &str) -> String {
    run(kubectl(cluster, ns).args([
        "wait",
        &format!("--for=condition={condition}"),
        &format!("job/{job}"),
        "--timeout=180s",
    ]));
    run(kubectl(cluster, ns).args(["logs", &format!("job/{job}")]))
}

fn in_pod_subnet(ip: &str) -> bool {
    ip.starts_with("198.18.0.")
}

#[test]
fn deployment_of_a_loaded_image_gets_running_pods() {
    let Some(cluster) = stella_e2e::node() else {
        return;
    };
    let Some(image) = debian(cluster) else { return };
    let ns = namespace(cluster, "node-deploy");
    apply(
        cluster,
        &ns,
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: sleeper}
spec:
  replicas: 2
  selector: {matchLabels: {app: sleeper}}
  template:
    metadata: {labels: {app: sleeper}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: sleeper
        image: stella-test/debian:bookworm
        imagePullPolicy: Never
",
    );
    run(kubectl(cluster, &ns).args(["rollout", "status", "deployment/sleeper", "--timeout=180s"]));
    let pods = json(kubectl(cluster, &ns).args(["get", "pods", "-l", "app=sleeper"]));
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 2);
    for pod in pods {
        assert_eq!(pod["status"]["phase"], "Running", "{pod}");
        assert_eq!(pod["spec"]["nodeName"], NODE_NAME);
        let ip = pod["status"]["podIP"].as_str().unwrap();
        assert!(in_pod_subnet(ip), "pod IP {ip}");
        let container = &pod["status"]["containerStatuses"][0];
        assert_eq!(container["image"], image);
        // The node recorded the repository at the loaded digest, as after a pull.
        let image_id = container["imageID"].as_str().unwrap();
        assert!(
            image_id.starts_with("docker.io/stella-test/debian@sha256:"),
            "{image_id}"
        );
    }
    // The API server reaches the kubelet (exec) and the container is the loaded Debian.
    let name = pods[0]["metadata"]["name"].as_str().unwrap();
    let os_release =
        run(kubectl(cluster, &ns).args(["exec", name, "--", "cat", "/etc/os-release"]));
    assert!(
        os_release.contains("VERSION_CODENAME=bookworm"),
        "{os_release}"
    );
    run(cluster
        .kubectl()
        .args(["delete", "namespace", &ns, "--wait=false"]));
}

#[test]
fn job_pods_run_to_completion_or_fail_with_their_exit_code() {
    let Some(cluster) = stella_e2e::node() else {
        return;
    };
    let Some(_) = debian(cluster) else { return };
    let ns = namespace(cluster, "node-job");
    let job = |name: &str, script: &str| {
        format!(
            "apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: stella-test/debian:bookworm
        imagePullPolicy: Never
        command: [sh, -c, '{script}']
"
        )
    };
    apply(cluster, &ns, &job("ok", "echo job-done from $(hostname)"));
    apply(cluster, &ns, &job("fails", "echo failing; exit 3"));

    let log = job_log(cluster, &ns, "ok", "complete");
    assert!(log.starts_with("job-done from ok-"), "{log}");
    let status = json(kubectl(cluster, &ns).args(["get", "job", "ok"]));
    assert_eq!(status["status"]["succeeded"], 1, "{status}");

    job_log(cluster, &ns, "fails", "failed");
    let failed = json(kubectl(cluster, &ns).args(["get", "job", "fails"]));
    let condition = failed["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap();
    assert_eq!(condition["reason"], "BackoffLimitExceeded", "{failed}");
    let pods = json(kubectl(cluster, &ns).args(["get", "pods", "-l", "job-name=fails"]));
    let terminated = &pods["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3, "{pods}");
    run(cluster
        .kubectl()
        .args(["delete", "namespace", &ns, "--wait=false"]));
}

#[test]
fn statefulset_claim_binds_and_service_names_resolve() {
    let Some(cluster) = stella_e2e::node() else {
        return;
    };
    let Some(_) = debian(cluster) else { return };
    let ns = namespace(cluster, "node-sts");
    // A headless governing Service, a StatefulSet whose non-root Pod writes its claim, and a
    // plain ClusterIP Service.
    apply(
        cluster,
        &ns,
        "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: plain}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext: {runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true}
      containers:
      - name: web
        image: stella-test/debian:bookworm
        imagePullPolicy: Never
        command: [sh, -c, 'echo written-by-$(id -u) > /data/proof && exec sleep infinity']
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
",
    );
    run(kubectl(cluster, &ns).args(["rollout", "status", "statefulset/web", "--timeout=180s"]));
    let claim = json(kubectl(cluster, &ns).args(["get", "pvc", "data-web-0"]));
    assert_eq!(claim["status"]["phase"], "Bound", "{claim}");
    assert_eq!(claim["spec"]["storageClassName"], "standard", "{claim}");
    let volume =
        json(
            cluster
                .kubectl()
                .args(["get", "pv", claim["spec"]["volumeName"].as_str().unwrap()]),
        );
    let path = volume["spec"]["hostPath"]["path"].as_str().unwrap();
    let hostpath_dir = cluster.node_dir().unwrap().join("hostpath");
    assert!(
        path.starts_with(hostpath_dir.to_str().unwrap()),
        "{path} outside {}",
        hostpath_dir.display()
    );
    // Only the Pod wrote it (as uid 1000), into the volume's directory on the host.
    let proof = std::fs::read_to_string(PathBuf::from(path).join("proof")).unwrap();
    assert_eq!(proof, "written-by-1000\n");
    let pod_ip = json(kubectl(cluster, &ns).args(["get", "pod", "web-0"]))["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    let cluster_ip =
        json(kubectl(cluster, &ns).args(["get", "service", "plain"]))["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .to_string();

    // From a Pod: the StatefulSet Pod's own name, the headless Service, the ClusterIP one (by
    // the search path), and the API server's.
    apply(
        cluster,
        &ns,
        "apiVersion: batch/v1
kind: Job
metadata: {name: lookup}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: stella-test/debian:bookworm
        imagePullPolicy: Never
        command: [sh, -c, 'for n in web-0.web web plain kubernetes.default.svc.cluster.local; do getent hosts $n || echo unresolved $n; done']
",
    );
    let log = job_log(cluster, &ns, "lookup", "complete");
    let answers: Vec<Vec<&str>> = log
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let fqdn = |name: &str| format!("{name}.{ns}.svc.cluster.local");
    assert_eq!(
        answers,
        [
            vec![pod_ip.as_str(), &fqdn("web-0.web")],
            vec![pod_ip.as_str(), &fqdn("web")],
            vec![cluster_ip.as_str(), &fqdn("plain")],
            vec![API_SERVICE_IP, "kubernetes.default.svc.cluster.local"],
        ],
        "{log}"
    );
    run(cluster
        .kubectl()
        .args(["delete", "namespace", &ns, "--wait=false"]));
}

#[test]
fn pod_reaches_the_api_server_through_the_service_with_its_token() {
    let Some(cluster) = stella_e2e::node() else {
        return;
    };
    let ns = namespace(cluster, "node-sa");
    let image = cluster.node_check_image().unwrap();
    // The Pod's ServiceAccount may review tokens, so the check can ask whose token it holds.
    let binding = format!("{ns}-auth-delegator");
    apply(
        cluster,
        &ns,
        &format!(
            "apiVersion: v1
kind: ServiceAccount
metadata: {{name: prober}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {binding}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}}
subjects: [{{kind: ServiceAccount, name: prober, namespace: {ns}}}]
"
        ),
    );
    // The token controller fills the ServiceAccount's secret before Pods can mount it.
    let started = std::time::Instant::now();
    while
        json(kubectl(cluster, &ns).args(["get", "serviceaccount", "prober"]))["secrets"][0]["name"]
            .is_null()
    {
        assert!(started.elapsed().as_secs() < 60, "no token for prober");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    apply(
        cluster,
        &ns,
        &format!(
            "apiVersion: batch/v1
kind: Job
metadata: {{name: check}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      serviceAccountName: prober
      containers:
      - name: check
        image: {image}
        args: [--token-review]
"
        ),
    );
    let log = job_log(cluster, &ns, "check", "complete");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            format!("resolved kubernetes.default.svc.cluster.local {API_SERVICE_IP}").as_str(),
            "version v1.20.2",
            &format!("authenticated (may get pods in {ns}: false)"),
            &format!("user system:serviceaccount:{ns}:prober"),
            "ok",
        ],
        "{log}"
    );
    run(cluster
        .kubectl()
        .args(["delete", "clusterrolebinding", &binding]));
    run(cluster
        .kubectl()
        .args(["delete", "namespace", &ns, "--wait=false"]));
}

#[test]
fn container_over_its_memory_limit_ends_oom_killed() {
    let Some(cluster) = stella_e2e::node() else {
        return;
    };
    let Some(_) = debian(cluster) else { return };
    let ns = namespace(cluster, "node-oom");
    // `tail` keeps the last "line" of /dev/zero, which has no newline: all of it.
    apply(
        cluster,
        &ns,
        "apiVersion: v1
kind: Pod
metadata: {name: eater}
spec:
  restartPolicy: Never
  containers:
  - name: eat
    image: stella-test/debian:bookworm
    imagePullPolicy: Never
    command: [sh, -c, 'head -c 256M /dev/zero | tail > /dev/null']
    resources: {limits: {memory: 24Mi}}
",
    );
    let started = std::time::Instant::now();
    let terminated = loop {
        let pod = json(kubectl(cluster, &ns).args(["get", "pod", "eater"]));
        let state = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
        if !state.is_null() {
            break state.clone();
        }
        assert!(started.elapsed().as_secs() < 120, "not terminated: {pod}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(terminated["reason"], "OOMKilled", "{terminated}");
    assert_eq!(terminated["exitCode"], 137, "{terminated}");
    run(cluster
        .kubectl()
        .args(["delete", "namespace", &ns, "--wait=false"]));
}
