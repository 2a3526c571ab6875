//! The install, on a real node of its own (`e2e/harness/node.sh`), as a platform engineer does
//! it with images in their own registry: the product images (`make images storage-images`)
//! pushed to the node's registry, `config/overlays/admission-enforce` (which is
//! `config/default` with admission enforced in labelled namespaces) applied through a
//! kustomization that names that registry, every Deployment and StatefulSet Ready. Then:
//!
//! - Deployments of two real, locally built Debian images are discovered, the worker Jobs' Pods
//!   run on the kubelet, and each Scan is Ready with the verdict, counts and components that
//!   `stella scan` of the same image in the same registry gives (an advisory imported into the
//!   cluster's catalog with `stella feeds import`, one Policy); the images of `stella-system`
//!   are scanned too.
//! - Admission enforced: a Deployment of the failing image is refused with the finding and the
//!   rule; an admitted workload that grows after enforcement gets no new Pods (its ReplicaSet's
//!   events say why); the passing image rolls out; with the webhook's Pods gone, the API server
//!   fails open.
//! - Notify: a team's NotifyChannel (Slack, a receiver on the node standing in) and NotifyRule
//!   in its namespace; a second advisory imported → the failing image re-evaluated → exactly
//!   one Slack message naming the new critical, the image and its workload; the rule's status
//!   counts it.
//! - Deleting the leader operator Pod hands the Lease over within its duration.
//! - A worker Job over its memory limit ends `OOMKilled`, the Scan says so, and retries once the
//!   limit is raised.
//!
//! One test (the steps share one install), with its own node: a separate test binary, so no
//! other test's Pods are discovered or admitted by this install.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use stella_e2e::compat::{adapt_to_server, supports_cel};
use stella_e2e::{TestCluster, node, repo_root, run, unique_namespace};

const SYSTEM: &str = "stella-system";
/// The tag of every product image (`make images` tags them with the workspace's version).
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The advisory this test imports: any version of Debian's `curl` source package (libcurl4 and
/// friends, which the full Debian image has and its minbase layer has not), critical.
const ADVISORY: &str = "CVE-2099-4401";
/// The advisory added later, for the same package: what a re-evaluation finds new, and what
/// the team's Slack channel hears about.
const SECOND_ADVISORY: &str = "CVE-2099-4402";
/// The Policy discovered Scans are judged by, which also carries the admission settings.
const POLICY: &str = "apiVersion: stella-ops.org/v1alpha1
kind: Policy
metadata: {name: stella-e2e}
spec:
  version: \"1.0\"
  rules:
    - {name: block-critical, severity: [Critical], action: block}
  admission:
    mode: enforce
    unscanned: allow
    onError: fail-open
";

fn step(started: Instant, what: &str) {
    eprintln!("install: [{:>4}s] {what}", started.elapsed().as_secs());
}

/// Polls `probe` every second until it gives a value; panics with `what` and the last
/// diagnosis after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(why) if started.elapsed() > timeout => {
                panic!("{what}: not within {}s; last: {why}", timeout.as_secs())
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

fn json_of(command: &mut Command) -> Value {
    serde_json::from_str(&run(command.args(["-o", "json"]))).unwrap()
}

/// stdout of a command that may fail, or its stderr.
fn try_run(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        ))
    }
}

/// The product images: `$STELLA_IMAGES_DIR/<profile>/{operator,worker,webhook}.tar` (the newest
/// profile that has all three, or `$STELLA_IMAGES_PROFILE`) and `$STELLA_IMAGES_DIR/storage/`.
struct Images {
    product: PathBuf,
    storage: PathBuf,
}

fn images() -> Result<Images, String> {
    let dir = std::env::var_os("STELLA_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            stella_e2e::cluster::cache_dir()
                .unwrap()
                .join("stella-images")
        });
    let complete = |profile: &Path| {
        ["operator", "worker", "webhook"]
            .iter()
            .all(|i| profile.join(format!("{i}.tar")).is_file())
    };
    let product = match std::env::var("STELLA_IMAGES_PROFILE") {
        Ok(profile) => Some(dir.join(profile)).filter(|p| complete(p)),
        Err(_) => ["debug", "release"]
            .iter()
            .map(|p| dir.join(p))
            .filter(|p| complete(p))
            .max_by_key(|p| {
                std::fs::metadata(p.join("operator.tar"))
                    .and_then(|m| m.modified())
                    .ok()
            }),
    };
    let storage = dir.join("storage");
    match product {
        Some(product)
            if ["trial-postgres", "trial-s3"]
                .iter()
                .all(|i| storage.join(format!("{i}.tar")).is_file()) =>
        {
            Ok(Images { product, storage })
        }
        _ => Err(format!(
            "no product or storage images under {} (make images storage-images)",
            dir.display()
        )),
    }
}

/// The `stella` CLI beside this test binary (`target/<profile>/stella`, built by `cargo test
/// --workspace`).
fn stella() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("stella"))
        .filter(|p| p.is_file());
    path.ok_or_else(|| {
        format!(
            "no stella binary beside {} (cargo test --workspace builds it)",
            exe.display()
        )
    })
}

/// The scanner tests' Debian images (e2e/images/build-debian.sh): the full one (curl purged,
/// libcurl4 kept) and its minbase layer alone.
fn debian_images() -> Result<(PathBuf, PathBuf), String> {
    let script = repo_root().join("e2e/images/build-debian.sh");
    try_run(Command::new("bash").arg(&script)).map_err(|e| format!("{}: {e}", script.display()))?;
    let dir = stella_e2e::cluster::cache_dir()
        .unwrap()
        .join("images/debian-bookworm");
    Ok((dir.join("image.tar"), dir.join("image-minbase.tar")))
}

/// `../..` from `from` to the filesystem root, then `to`: kustomize takes bases by relative
/// path only.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from = from.canonicalize().unwrap();
    let to = to.canonicalize().unwrap();
    let mut path = PathBuf::new();
    for _ in from.components().skip(1) {
        path.push("..");
    }
    path.join(to.strip_prefix("/").unwrap())
}

/// The kustomization a user with their own registry writes over the enforce overlay: images
/// from `registry`, which is plain HTTP (the operator's discovered Scans and the webhook's tag
/// resolution are told so), the test's Policy for discovered images, quick retries.
fn kustomization(dir: &Path, registry: &str) -> String {
    let base = relative(dir, &repo_root().join("config/overlays/admission-enforce"));
    let images: String = ["operator", "webhook", "trial-postgres", "trial-s3"]
        .iter()
        .map(|i| format!("  - {{name: stella-ops/{i}, newName: {registry}/stella-ops/{i}}}\n"))
        .collect();
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {base}
images:
{images}patches:
  - target: {{kind: ConfigMap, name: stella-worker}}
    patch: |-
      - {{op: replace, path: /data/STELLA_WORKER_IMAGE, value: '{registry}/stella-ops/worker:{VERSION}'}}
      - {{op: add, path: /data/STELLA_INSECURE_REGISTRIES, value: '{registry}'}}
      - {{op: replace, path: /data/STELLA_DISCOVERY_POLICY, value: stella-e2e}}
      - {{op: add, path: /data/STELLA_RETRY_BASE_SECONDS, value: '5'}}
  - target: {{kind: Deployment, name: stella-webhook}}
    patch: |-
      - {{op: add, path: /spec/template/spec/containers/0/args/-, value: '--insecure-registry={registry}'}}
",
        base = base.display()
    )
}

/// Renders, adapts to the server (Kubernetes 1.20: no CEL rules, no policy/v1), applies
/// server-side.
fn install(cluster: &TestCluster, overlay: &Path) {
    let yaml = run(Command::new("kubectl").arg("kustomize").arg(overlay));
    let mut objects: Vec<Value> = serde_saphyr::from_multiple::<Value>(&yaml)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect();
    let served: BTreeSet<String> = run(cluster.kubectl().arg("api-versions"))
        .lines()
        .map(str::to_string)
        .collect();
    let version: k8s_openapi::apimachinery::pkg::version::Info =
        serde_json::from_str(&run(cluster.kubectl().args(["get", "--raw", "/version"]))).unwrap();
    let skipped = adapt_to_server(&mut objects, &served, supports_cel(&version))
        .unwrap_or_else(|unexpected| panic!("not served here: {unexpected:?}"));
    for entry in skipped {
        eprintln!(
            "install: {entry} is not served by Kubernetes {}; left out",
            version.git_version
        );
    }
    let file = overlay.join("rendered.json");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
    run(cluster
        .kubectl()
        .args(["apply", "--server-side", "--force-conflicts", "-f"])
        .arg(&file));
}

fn apply(cluster: &TestCluster, yaml: &str) -> Result<String, String> {
    apply_with(cluster, yaml, &[])
}

fn apply_with(cluster: &TestCluster, yaml: &str, flags: &[&str]) -> Result<String, String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    try_run(
        cluster
            .kubectl()
            .args(["apply", "-f"])
            .arg(file.path())
            .args(flags),
    )
}

/// Waits until both webhook replicas have seen `namespace` enforced (they watch Namespaces):
/// three server-side dry runs of a Deployment of `image` in a row are denied.
fn wait_enforced(cluster: &TestCluster, namespace: &str, image: &str) {
    let probe = deployment(namespace, "probe", image, 1);
    let mut denials = 0;
    wait_for(
        &format!("admission enforced in {namespace}"),
        Duration::from_secs(120),
        || match apply_with(cluster, &probe, &["--dry-run=server"]) {
            Err(denied) if denied.contains("denied the request") => {
                denials += 1;
                if denials >= 3 { Ok(()) } else { Err(denied) }
            }
            other => {
                denials = 0;
                Err(format!("{other:?}"))
            }
        },
    );
}

fn deployment(namespace: &str, name: &str, image: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: main, image: '{image}'}}
"
    )
}

fn rollout(cluster: &TestCluster, namespace: &str, target: &str) {
    run(cluster.kubectl().args([
        "-n",
        namespace,
        "rollout",
        "status",
        target,
        "--timeout=300s",
    ]));
}

/// The Scan of `digest` (discovery's `sha256-<hex>` in stella-system) once its phase is final:
/// `Ok` with it when Ready, or when `accept` takes it as it is.
fn scan_settled(cluster: &TestCluster, name: &str, accept: impl Fn(&Value) -> bool) -> Value {
    wait_for(
        &format!("Scan {SYSTEM}/{name}"),
        Duration::from_secs(900),
        || {
            let scan = try_run(
                cluster
                    .kubectl()
                    .args(["-n", SYSTEM, "get", "scan", name, "-o", "json"]),
            )?;
            let scan: Value = serde_json::from_str(&scan).map_err(|e| e.to_string())?;
            if accept(&scan) {
                return Ok(scan);
            }
            let ready = condition(&scan, "Ready");
            match (ready["status"].as_str(), scan["status"]["phase"].as_str()) {
                (Some("True"), _) => Ok(scan),
                (_, Some("Failed")) => panic!(
                    "Scan {name} failed: {}\nworker: {}",
                    scan["status"],
                    worker_log(cluster, &scan)
                ),
                _ => Err(scan["status"].to_string()),
            }
        },
    )
}

fn condition<'a>(object: &'a Value, type_: &str) -> &'a Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn worker_log(cluster: &TestCluster, scan: &Value) -> String {
    match scan["status"]["jobName"].as_str() {
        Some(job) => try_run(cluster.kubectl().args([
            "-n",
            SYSTEM,
            "logs",
            &format!("job/{job}"),
            "--tail=40",
        ]))
        .unwrap_or_else(|e| e),
        None => "no Job".into(),
    }
}

fn scan_name(pinned: &str) -> String {
    let digest = pinned.rsplit_once('@').unwrap().1;
    stella_crds::discovered::scan_name(digest).unwrap()
}

/// Severity counts of a findings list (`findings-json`), as the Scan's status counts them.
fn severity_counts(findings: &Value) -> Value {
    let mut counts = serde_json::Map::new();
    for severity in ["critical", "high", "medium", "low", "none", "unknown"] {
        let n = findings
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["severity"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(severity))
            })
            .count();
        counts.insert(severity.into(), json!(n));
    }
    Value::Object(counts)
}

/// What `stella scan` says of `reference` (pulled from the node's registry) with the test's
/// advisory and Policy: (verdict, severity counts, components).
fn local_scan(stella: &Path, work: &Path, reference: &str) -> (String, Value, usize) {
    let data = work.join("local-data");
    let scan = |format: &str| -> Value {
        let output = Command::new(stella)
            .args(["scan", reference, "--insecure-registry", "--format", format])
            .arg("--policy")
            .arg(work.join("policy.yaml"))
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        // Exit 7: the verdict is FAIL (the output is written all the same).
        assert!(
            matches!(output.status.code(), Some(0 | 7)),
            "stella scan {reference}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let out = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{format}: {e}: {out}"))
    };
    let report = scan("report-json");
    let findings = scan("findings-json");
    let sbom = scan("cyclonedx-json");
    (
        report["verdict"].as_str().unwrap().to_string(),
        severity_counts(&findings["findings"]),
        // The packages: the SBOM also lists the operating system itself, which the Scan's
        // component count does not.
        sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] != "operating-system")
            .count(),
    )
}

#[test]
fn config_default_installs_scans_and_enforces_on_a_real_node() {
    let Some(cluster) = node() else { return };
    let prerequisites = images().and_then(|i| Ok((i, stella()?, debian_images()?)));
    let (images, stella, (debian, minbase)) = match prerequisites {
        Ok(found) => found,
        Err(why) => return stella_e2e::services::skip(&why),
    };
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let registry = cluster.registry().unwrap();

    step(
        started,
        &format!("pushing the images to the node's registry {registry}"),
    );
    for (dir, image) in [
        (&images.product, "operator"),
        (&images.product, "worker"),
        (&images.product, "webhook"),
        (&images.storage, "trial-postgres"),
        (&images.storage, "trial-s3"),
    ] {
        cluster
            .push_image(
                &dir.join(format!("{image}.tar")),
                &format!("stella-ops/{image}:{VERSION}"),
            )
            .unwrap();
    }
    let failing = cluster.push_image(&debian, "e2e/debian:bookworm").unwrap();
    let passing = cluster
        .push_image(&minbase, "e2e/debian:bookworm-minbase")
        .unwrap();
    let failing_tag = failing.split_once('@').unwrap().0.to_string();
    let passing_tag = passing.split_once('@').unwrap().0.to_string();

    step(
        started,
        &format!(
            "kubectl apply of config/overlays/admission-enforce ({})",
            images.product.display()
        ),
    );
    let overlay = work.path().join("overlay");
    std::fs::create_dir(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        kustomization(&overlay, &registry),
    )
    .unwrap();
    install(cluster, &overlay);
    run(cluster.kubectl().args([
        "wait",
        "--for=condition=Established",
        "crd/policies.stella-ops.org",
        "crd/scans.stella-ops.org",
        "--timeout=60s",
    ]));
    apply(cluster, POLICY).unwrap();
    for target in [
        "statefulset/stella-postgres",
        "deployment/stella-s3",
        "deployment/stella-operator",
        "deployment/stella-webhook",
    ] {
        rollout(cluster, SYSTEM, target);
    }
    let none = run(cluster
        .kubectl()
        .args(["get", "daemonsets", "-A", "-o", "name"]));
    assert_eq!(
        none.trim(),
        "",
        "the install ships no DaemonSet until the observer exists"
    );
    step(
        started,
        "installed: every Deployment and StatefulSet rolled out",
    );
    // The Policy controller validated the Policy: Ready, with the digest verdicts carry.
    run(cluster.kubectl().args([
        "wait",
        "--for=condition=Ready",
        "policy/stella-e2e",
        "--timeout=60s",
    ]));
    let policy_digest = run(cluster.kubectl().args([
        "get",
        "policy",
        "stella-e2e",
        "-o",
        "jsonpath={.status.digest}",
    ]));
    assert!(policy_digest.starts_with("sha256:"), "{policy_digest}");
    // The install's own Pods (not the worker Jobs' that discovery has started by now).
    let system = json_of(
        cluster
            .kubectl()
            .args(["-n", SYSTEM, "get", "pods", "-l", "!job-name"]),
    );
    for pod in system["items"].as_array().unwrap() {
        let restarts = &pod["status"]["containerStatuses"][0]["restartCount"];
        assert_eq!(
            restarts, 0,
            "{} restarted: {}",
            pod["metadata"]["name"], pod["status"]
        );
    }
    eprintln!(
        "install: kubectl get pods -A -o wide\n{}",
        run(cluster.kubectl().args(["get", "pods", "-A", "-o", "wide"]))
    );

    // The advisory, into the cluster's catalog as a user would: `stella feeds import` with the
    // storage Secret's settings, from the node (where the Services' addresses answer).
    let advisory = json!({"id": ADVISORY, "modified": "2099-01-01T00:00:00Z",
        "summary": "A critical flaw in every curl of Debian 12 (test advisory)",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "curl"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99:1"}]}]}]});
    let advisory_file = work.path().join(format!("{ADVISORY}.json"));
    std::fs::write(&advisory_file, advisory.to_string()).unwrap();
    std::fs::write(work.path().join("policy.yaml"), POLICY).unwrap();
    let cluster_ip = |service: &str| {
        run(cluster.kubectl().args([
            "-n",
            SYSTEM,
            "get",
            "service",
            service,
            "-o",
            "jsonpath={.spec.clusterIP}",
        ]))
    };
    let (postgres, s3) = (cluster_ip("stella-postgres"), cluster_ip("stella-s3"));
    let imported = run(cluster
        .node_command(&stella)
        .unwrap()
        .args(["feeds", "import"])
        .arg(&advisory_file)
        .arg(format!(
            "--catalog-url=postgres://stella:stella-trial-password@{postgres}:5432/stella"
        ))
        .arg(format!(
            "--object-store=s3://stella?endpoint=http://{s3}:9000&region=us-east-1&allow_http=true"
        ))
        .env("AWS_ACCESS_KEY_ID", "stella")
        .env("AWS_SECRET_ACCESS_KEY", "stella-trial-password"));
    step(
        started,
        &format!(
            "advisory imported into the cluster's catalog: {}",
            imported.trim()
        ),
    );
    run(Command::new(&stella)
        .args(["feeds", "import"])
        .arg(&advisory_file)
        .arg("--data-dir")
        .arg(work.path().join("local-data")));

    // Two workloads in a namespace admission only warns in: discovered, scanned by worker Jobs.
    let open = unique_namespace("e2e-open");
    run(cluster.kubectl().args(["create", "namespace", &open]));
    let warned = apply(cluster, &deployment(&open, "full", &failing_tag, 1)).unwrap();
    apply(cluster, &deployment(&open, "minbase", &passing_tag, 1)).unwrap();
    step(
        started,
        &format!("deployments applied in {open}: {}", warned.trim()),
    );
    rollout(cluster, &open, "deployment/full");
    rollout(cluster, &open, "deployment/minbase");

    for (pinned, tag, verdict) in [
        (&failing, &failing_tag, "FAIL"),
        (&passing, &passing_tag, "PASS"),
    ] {
        let name = scan_name(pinned);
        let scan = scan_settled(cluster, &name, |_| false);
        let status = &scan["status"];
        let (local_verdict, local_counts, local_components) = local_scan(&stella, work.path(), tag);
        step(
            started,
            &format!(
                "{tag}: Scan {name} Ready (Job {} from {} to {}), verdict {} counts {} components {}; stella scan: {local_verdict} {local_counts} {local_components}",
                status["jobName"],
                status["startTime"],
                status["completionTime"],
                status["verdict"],
                status["counts"],
                status["components"]
            ),
        );
        assert_eq!(status["imageDigest"], pinned.rsplit_once('@').unwrap().1);
        assert_eq!(status["verdict"], verdict, "{status}");
        assert_eq!(local_verdict, verdict);
        for (severity, n) in local_counts.as_object().unwrap() {
            assert_eq!(
                status["counts"][severity].as_u64().unwrap_or(0),
                n.as_u64().unwrap(),
                "{severity}: {status}"
            );
        }
        assert_eq!(
            status["components"].as_u64().unwrap() as usize,
            local_components
        );
        assert!(local_components > 50, "{local_components} components");
        // The worker Job's Pod ran on the kubelet.
        let job = status["jobName"].as_str().unwrap();
        let pods = json_of(cluster.kubectl().args([
            "-n",
            SYSTEM,
            "get",
            "pods",
            "-l",
            &format!("job-name={job}"),
        ]));
        assert!(
            pods["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["status"]["phase"] == "Succeeded"
                    && p["spec"]["nodeName"] == stella_e2e::node::NODE_NAME),
            "{pods}"
        );
    }
    assert_eq!(
        local_scan(&stella, work.path(), &failing_tag).1["critical"],
        1,
        "the advisory is one critical finding"
    );

    // Notify, as a team sets it up in its own namespace: a Slack channel (a loopback receiver
    // on the node stands in for Slack's incoming webhook) and a rule for new criticals. A new
    // advisory for the failing image's curl → the operator re-evaluates its stored inventory
    // → exactly one Slack message, naming the finding, the image and the workload.
    let node_ip = registry.split(':').next().unwrap().to_string();
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let inbox = work.path().join("slack-inbox");
    std::fs::create_dir(&inbox).unwrap();
    let mut slack = cluster
        .node_command("python3")
        .unwrap()
        .arg(repo_root().join("e2e/harness/http-inbox.py"))
        .arg(&node_ip)
        .arg(port.to_string())
        .arg(&inbox)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(slack.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the Slack stand-in did not start");
    }
    apply(
        cluster,
        &format!(
            "apiVersion: stella-ops.org/v1alpha1
kind: NotifyChannel
metadata: {{name: team-slack, namespace: {open}}}
spec:
  type: slack
  endpoint: http://{node_ip}:{port}/services/T0/B0/e2e
  allowHosts: ['{node_ip}']
---
apiVersion: stella-ops.org/v1alpha1
kind: NotifyRule
metadata: {{name: new-criticals, namespace: {open}}}
spec:
  match:
    eventKinds: [scheduler.rescan.delta]
    minSeverity: Critical
  actions:
    - channel: team-slack
"
        ),
    )
    .unwrap();
    for object in ["notifychannel/team-slack", "notifyrule/new-criticals"] {
        run(cluster.kubectl().args([
            "-n",
            &open,
            "wait",
            "--for=condition=Ready",
            object,
            "--timeout=60s",
        ]));
    }
    let second = json!({"id": SECOND_ADVISORY, "modified": "2099-01-02T00:00:00Z",
        "summary": "Another critical flaw in curl (test advisory)",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "curl"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99:2"}]}]}]});
    let second_file = work.path().join(format!("{SECOND_ADVISORY}.json"));
    std::fs::write(&second_file, second.to_string()).unwrap();
    let imported = Instant::now();
    run(cluster
        .node_command(&stella)
        .unwrap()
        .args(["feeds", "import"])
        .arg(&second_file)
        .arg(format!(
            "--catalog-url=postgres://stella:stella-trial-password@{postgres}:5432/stella"
        ))
        .arg(format!(
            "--object-store=s3://stella?endpoint=http://{s3}:9000&region=us-east-1&allow_http=true"
        ))
        .env("AWS_ACCESS_KEY_ID", "stella")
        .env("AWS_SECRET_ACCESS_KEY", "stella-trial-password"));
    let messages = || -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(&inbox)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    };
    wait_for("the Slack message", Duration::from_secs(180), || {
        let got = messages();
        if got.is_empty() {
            Err("none yet".into())
        } else {
            Ok(())
        }
    });
    let latency = imported.elapsed();
    // Quiet: nothing else follows (the rule's throttle-free, one event per image change).
    std::thread::sleep(Duration::from_secs(20));
    let got = messages();
    let text = got.first().map(Value::to_string).unwrap_or_default();
    step(
        started,
        &format!(
            "a new advisory → {} Slack message(s), the first {:.1}s after the import: {}",
            got.len(),
            latency.as_secs_f64(),
            got.first().map_or(String::new(), |m| m["text"].to_string())
        ),
    );
    assert_eq!(got.len(), 1, "one message: {got:?}");
    let repository = failing_tag.rsplit_once(':').unwrap().0;
    for needle in [
        SECOND_ADVISORY,
        "FAIL",
        "Deployment/full",
        repository,
        "Critical",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} not in the Slack message: {text}"
        );
    }
    assert!(got[0]["blocks"].as_array().is_some_and(|b| b.len() <= 50));
    let delivered = wait_for("the rule's status", Duration::from_secs(90), || {
        let rule =
            json_of(
                cluster
                    .kubectl()
                    .args(["-n", &open, "get", "notifyrule", "new-criticals"]),
            );
        if rule["status"]["delivered"] == 1 {
            Ok(rule["status"].clone())
        } else {
            Err(rule["status"].to_string())
        }
    });
    assert_eq!(delivered["failed"], 0, "{delivered}");
    drop(slack.stdin.take());
    let _ = slack.wait();

    // The install's own images are discovered and scanned like any other.
    for image in ["operator", "webhook", "trial-postgres", "trial-s3"] {
        let repository = format!("{registry}/stella-ops/{image}");
        let name = wait_for(
            &format!("a Scan of {repository}"),
            Duration::from_secs(300),
            || {
                let scans = json_of(cluster.kubectl().args(["-n", SYSTEM, "get", "scans"]));
                scans["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| {
                        s["spec"]["image"]
                            .as_str()
                            .is_some_and(|i| i.starts_with(&repository))
                    })
                    .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
                    .ok_or_else(|| "none yet".to_string())
            },
        );
        let scan = scan_settled(cluster, &name, |_| false);
        assert!(
            scan["status"]["verdict"].is_string(),
            "{image}: {}",
            scan["status"]
        );
        step(
            started,
            &format!(
                "{image}: Scan {name} Ready, verdict {}",
                scan["status"]["verdict"]
            ),
        );
    }

    // Enforced where labelled: the failing image is refused with its finding and the rule.
    let enforced = unique_namespace("e2e-enforced");
    run(cluster.kubectl().args(["create", "namespace", &enforced]));
    run(cluster.kubectl().args([
        "label",
        "namespace",
        &enforced,
        "stella-ops.org/enforce=true",
    ]));
    wait_enforced(cluster, &enforced, &failing_tag);
    let denied = apply(cluster, &deployment(&enforced, "full", &failing_tag, 1))
        .expect_err("a Deployment of a failing image is denied");
    step(started, &format!("denied: {}", denied.trim()));
    for needle in [
        "denied the request",
        &failing_tag,
        "FAIL",
        ADVISORY,
        "block-critical",
    ] {
        assert!(denied.contains(needle), "{needle:?} not in: {denied}");
    }
    assert!(
        try_run(
            cluster
                .kubectl()
                .args(["-n", &enforced, "get", "deployment", "full"])
        )
        .is_err()
    );
    // The passing image rolls out there.
    apply(cluster, &deployment(&enforced, "minbase", &passing_tag, 1)).unwrap();
    rollout(cluster, &enforced, "deployment/minbase");
    step(
        started,
        "the passing image rolled out in the enforced namespace",
    );

    // A workload admitted before its namespace was enforced cannot grow: the scale-up's Pods are
    // denied, and its ReplicaSet's events say why.
    run(cluster
        .kubectl()
        .args(["label", "namespace", &open, "stella-ops.org/enforce=true"]));
    wait_enforced(cluster, &open, &failing_tag);
    run(cluster
        .kubectl()
        .args(["-n", &open, "scale", "deployment/full", "--replicas=2"]));
    let event = wait_for(
        "the ReplicaSet's FailedCreate event",
        Duration::from_secs(120),
        || {
            let events = json_of(cluster.kubectl().args([
                "-n",
                &open,
                "get",
                "events",
                "--field-selector",
                "involvedObject.kind=ReplicaSet,reason=FailedCreate",
            ]));
            events["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["message"].as_str())
                .find(|m| m.contains("denied the request"))
                .map(str::to_string)
                .ok_or_else(|| events.to_string())
        },
    );
    step(started, &format!("scale-up denied: {event}"));
    assert!(
        event.contains(ADVISORY) && event.contains("FAIL"),
        "{event}"
    );
    let full = json_of(
        cluster
            .kubectl()
            .args(["-n", &open, "get", "deployment", "full"]),
    );
    assert_eq!(full["status"]["readyReplicas"], 1, "{}", full["status"]);

    // Fail-open: no webhook Pods, nothing answers, the API server admits.
    run(cluster.kubectl().args([
        "-n",
        SYSTEM,
        "scale",
        "deployment/stella-webhook",
        "--replicas=0",
    ]));
    wait_for("the webhook's Pods gone", Duration::from_secs(120), || {
        let pods = run(cluster.kubectl().args([
            "-n",
            SYSTEM,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=stella-webhook",
            "-o",
            "name",
        ]));
        if pods.trim().is_empty() {
            Ok(())
        } else {
            Err(pods)
        }
    });
    apply(cluster, &deployment(&enforced, "full", &failing_tag, 1))
        .expect("with no webhook the API server fails open");
    rollout(cluster, &enforced, "deployment/full");
    step(
        started,
        "fail-open: with the webhook stopped the failing image was admitted",
    );
    run(cluster.kubectl().args([
        "-n",
        SYSTEM,
        "scale",
        "deployment/stella-webhook",
        "--replicas=2",
    ]));
    rollout(cluster, SYSTEM, "deployment/stella-webhook");

    // Leader handover: the holder's Pod deleted, the other replica holds the Lease.
    let holder = || {
        run(cluster.kubectl().args([
            "-n",
            SYSTEM,
            "get",
            "lease",
            "stella-operator",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]))
    };
    let leader = wait_for("a leader", Duration::from_secs(60), || {
        Some(holder())
            .filter(|h| !h.is_empty())
            .ok_or_else(String::new)
    });
    let deleted = Instant::now();
    run(cluster
        .kubectl()
        .args(["-n", SYSTEM, "delete", "pod", &leader, "--wait=false"]));
    let successor = wait_for("a new leader", Duration::from_secs(60), || {
        Some(holder())
            .filter(|h| !h.is_empty() && h != &leader)
            .ok_or_else(holder)
    });
    let handover = deleted.elapsed();
    step(
        started,
        &format!(
            "leader {leader} deleted; {successor} holds the Lease after {:.1}s",
            handover.as_secs_f64()
        ),
    );
    assert!(
        handover < Duration::from_secs(15),
        "handover took {handover:?} (lease 15 s)"
    );
    rollout(cluster, SYSTEM, "deployment/stella-operator");

    // A worker Job over its memory limit: OOMKilled, the Scan says so, and retries.
    let set_memory = |request: &str, limit: &str| {
        run(cluster.kubectl().args([
            "-n",
            SYSTEM,
            "patch",
            "configmap",
            "stella-worker",
            "--type=merge",
            "-p",
            &json!({"data": {"STELLA_WORKER_MEMORY_REQUEST": request,
                "STELLA_WORKER_MEMORY_LIMIT": limit, "STELLA_WORKER_BACKOFF_LIMIT": "0"}})
            .to_string(),
        ]));
        run(cluster.kubectl().args([
            "-n",
            SYSTEM,
            "rollout",
            "restart",
            "deployment/stella-operator",
        ]));
        rollout(cluster, SYSTEM, "deployment/stella-operator");
    };
    set_memory("12Mi", "12Mi");
    let scans = unique_namespace("e2e-scans");
    run(cluster.kubectl().args(["create", "namespace", &scans]));
    apply(
        cluster,
        &format!(
            "apiVersion: stella-ops.org/v1alpha1
kind: Scan
metadata: {{name: oom, namespace: {scans}}}
spec: {{image: '{failing_tag}', insecureRegistry: true, force: true, policyRef: stella-e2e}}
"
        ),
    )
    .unwrap();
    let get_scan = || json_of(cluster.kubectl().args(["-n", &scans, "get", "scan", "oom"]));
    let failed = wait_for(
        "the Scan to fail OOMKilled",
        Duration::from_secs(300),
        || {
            let scan = get_scan();
            let ready = condition(&scan, "Ready");
            if scan["status"]["phase"] == "Failed" {
                Ok(scan)
            } else {
                Err(format!("{ready}"))
            }
        },
    );
    let ready = condition(&failed, "Ready");
    step(
        started,
        &format!("Scan oom: {} {}", ready["reason"], ready["message"]),
    );
    assert_eq!(ready["reason"], "OOMKilled", "{}", failed["status"]);
    let first_job = failed["status"]["jobName"].as_str().unwrap().to_string();
    set_memory("256Mi", "1Gi");
    let retried = wait_for(
        "the Scan to succeed on a retry",
        Duration::from_secs(600),
        || {
            let scan = get_scan();
            if condition(&scan, "Ready")["status"] == "True" {
                Ok(scan)
            } else {
                Err(scan["status"].to_string())
            }
        },
    );
    step(
        started,
        &format!(
            "Scan oom retried: attempts {}, verdict {}",
            retried["status"]["attempts"], retried["status"]["verdict"]
        ),
    );
    assert!(
        retried["status"]["attempts"].as_u64().unwrap() >= 2,
        "{}",
        retried["status"]
    );
    assert_ne!(retried["status"]["jobName"], first_job.as_str());
    assert_eq!(retried["status"]["verdict"], "FAIL");

    eprintln!(
        "install: kubectl get scans -A\n{}",
        run(cluster.kubectl().args(["get", "scans", "-A"]))
    );
    step(started, "done");
}
