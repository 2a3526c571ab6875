//! A real single-node cluster for the tests that need a kubelet: `e2e/harness/node.sh` starts
//! it (etcd, kube-apiserver, controller-manager, scheduler, containerd, kubelet, kube-proxy,
//! CNI, DNS and hostpath storage, in a network namespace of their own) and tears it down.
//! [`TestCluster::node`] starts one per test binary and stops it when the binary exits, or
//! adopts one already started with `node.sh up` (env [`ADOPT_ENV`]) and leaves it running.

use crate::cluster::{ClusterKind, Error, TestCluster};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Names the state directory of a running `node.sh up` node for the tests to use (and leave
/// running), e.g. `STELLA_E2E_NODE=/var/lib/stella-node/node`.
pub const ADOPT_ENV: &str = "STELLA_E2E_NODE";

/// The Node name the harness's kubelet registers.
pub const NODE_NAME: &str = "stella-node";

/// The node's Pod subnet, and the Service range (both in 198.18.0.0/15, the benchmarking range).
pub const POD_SUBNET: &str = "198.18.0.0/24";
pub const SERVICE_CIDR: &str = "198.19.0.0/17";
/// The ClusterIP of the `kubernetes` Service.
pub const API_SERVICE_IP: &str = "198.19.0.1";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/node.sh")
}

fn node_sh(state_dir: &Path, args: &[&str]) -> Result<Output, Error> {
    Command::new("bash")
        .arg(script())
        .args(args)
        .env("STELLA_NODE_DIR", state_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            what: "node.sh",
            source,
        })
}

fn failed(what: String, output: &Output) -> Error {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    Error::Command {
        what,
        status: output.status.to_string(),
        output: lines[lines.len().saturating_sub(40)..].join("\n"),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

impl TestCluster {
    /// The node shared by all tests of one test binary: adopted from [`ADOPT_ENV`], else started
    /// on first use (about 30 s with the binaries cached; the first build takes minutes) and
    /// torn down by a watchdog when the test binary exits. Needs root.
    pub fn node() -> Result<&'static TestCluster, &'static Error> {
        static NODE: OnceLock<Result<TestCluster, Error>> = OnceLock::new();
        NODE.get_or_init(
            || match std::env::var_os(ADOPT_ENV).filter(|v| !v.is_empty()) {
                Some(dir) => Self::adopt_node(PathBuf::from(dir)),
                None => Self::start_node(),
            },
        )
        .as_ref()
    }

    fn adopt_node(state_dir: PathBuf) -> Result<TestCluster, Error> {
        let status = node_sh(&state_dir, &["status"])?;
        if !status.status.success() {
            return Err(Error::Node(format!(
                "{ADOPT_ENV}={} names no running node:\n{}",
                state_dir.display(),
                String::from_utf8_lossy(&status.stdout)
            )));
        }
        Ok(Self::node_cluster(state_dir))
    }

    fn start_node() -> Result<TestCluster, Error> {
        if !is_root() {
            return Err(Error::Node(
                "it needs root (network namespace, cgroups, mounts)".into(),
            ));
        }
        let state_dir = PathBuf::from(format!("/var/lib/stella-node/e2e-{}", std::process::id()));
        // The watchdog first: a test binary killed while the node starts still tears it down.
        Self::watch_node(&state_dir)?;
        eprintln!(
            "stella-e2e: starting a node in {} (e2e/harness/node.sh up)",
            state_dir.display()
        );
        let output = node_sh(&state_dir, &["up"])?;
        if !output.status.success() {
            return Err(failed("node.sh up".into(), &output));
        }
        if let Some(line) = String::from_utf8_lossy(&output.stderr)
            .lines()
            .find(|l| l.starts_with("node: up in"))
        {
            eprintln!("stella-e2e: {line}");
        }
        Ok(Self::node_cluster(state_dir))
    }

    fn node_cluster(state_dir: PathBuf) -> TestCluster {
        TestCluster {
            kubeconfig: state_dir.join("kubeconfig"),
            kind: ClusterKind::Node { state_dir },
            children: vec![],
            tokens: vec![],
            dir: None,
        }
    }

    /// Runs `node.sh down` once this process has exited. Its output is kept in
    /// `/tmp/stella-e2e-node-<pid>.down.log` only when the teardown is not clean.
    /// `STELLA_E2E_KEEP=1` keeps the node's logs in `/tmp/stella-e2e-node-<pid>.logs`.
    fn watch_node(state_dir: &Path) -> Result<(), Error> {
        let pid = std::process::id();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
                 out=$(bash \"$STELLA_E2E_NODE_SH\" down 2>&1) || \
                 printf '%s\\n' \"$out\" > /tmp/stella-e2e-node-{pid}.down.log"
            ))
            .env("STELLA_E2E_NODE_SH", script())
            .env("STELLA_NODE_DIR", state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if std::env::var("STELLA_E2E_KEEP").is_ok_and(|v| v == "1") {
            command.env(
                "STELLA_NODE_KEEP_LOGS",
                format!("/tmp/stella-e2e-node-{pid}.logs"),
            );
        }
        command.spawn().map_err(|source| Error::Spawn {
            what: "node watchdog",
            source,
        })?;
        Ok(())
    }

    /// The node's state directory (`None` unless this is a [`ClusterKind::Node`]).
    pub fn node_dir(&self) -> Option<&Path> {
        match &self.kind {
            ClusterKind::Node { state_dir } => Some(state_dir),
            _ => None,
        }
    }

    /// Imports a docker-archive or OCI-archive tar into the node's containerd (namespace
    /// `k8s.io`), so Pods can run it without a pull (`imagePullPolicy: Never` or
    /// `IfNotPresent`; a `:latest` tag means `Always`, which cannot work here). Returns the
    /// image names the archive held.
    pub fn load_image(&self, archive: &Path) -> Result<Vec<String>, Error> {
        let state_dir = self
            .node_dir()
            .ok_or_else(|| Error::Node("images load into a harness node only".into()))?;
        let archive = archive.to_string_lossy();
        let output = node_sh(state_dir, &["load", &archive])?;
        if !output.status.success() {
            return Err(failed(format!("node.sh load {archive}"), &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// The image of `e2e/harness/node-check.go` (resolves the `kubernetes` Service, speaks to
    /// the API server with the Pod's ServiceAccount token; `--token-review` prints the user),
    /// already in the node's containerd.
    pub fn node_check_image(&self) -> Result<String, Error> {
        let state_dir = self
            .node_dir()
            .ok_or_else(|| Error::Node("the check image is on a harness node only".into()))?;
        Ok(std::fs::read_to_string(state_dir.join("node-check.ref"))?
            .trim()
            .to_string())
    }
}

impl TestCluster {
    /// The node's registry, `NODE_IP:5000` (Debian's docker-registry, plain HTTP): the node's
    /// containerd pulls from it, and so can Pods and the host.
    pub fn registry(&self) -> Result<String, Error> {
        let state_dir = self
            .node_dir()
            .ok_or_else(|| Error::Node("the registry is on a harness node only".into()))?;
        let output = node_sh(state_dir, &["registry"])?;
        if !output.status.success() {
            return Err(failed("node.sh registry".into(), &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Pushes a docker-archive tar to the node's registry as `repository:tag`; returns the
    /// pinned reference, `NODE_IP:5000/repository:tag@sha256:…`.
    pub fn push_image(&self, archive: &Path, name: &str) -> Result<String, Error> {
        let state_dir = self
            .node_dir()
            .ok_or_else(|| Error::Node("the registry is on a harness node only".into()))?;
        let archive = archive.to_string_lossy();
        let output = node_sh(state_dir, &["push", &archive, name])?;
        if !output.status.success() {
            return Err(failed(format!("node.sh push {archive} {name}"), &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// `program` run inside the node's network namespace, where Service ClusterIPs answer
    /// (kube-proxy's rules) as they do for the node's own processes.
    pub fn node_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Result<Command, Error> {
        let state_dir = self
            .node_dir()
            .ok_or_else(|| Error::Node("not a harness node".into()))?;
        let slot = std::fs::read_to_string(state_dir.join("slot"))?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &format!("stella-node{}", slot.trim())])
            .arg(program);
        Ok(command)
    }
}
