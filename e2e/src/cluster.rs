//! Starts etcd + kube-apiserver on loopback (or adopts a kind/k3d cluster from `KUBECONFIG`)
//! and hands tests a kubeconfig.

use crate::pki::{TestCa, signing_key_pair};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The Kubernetes version the local harness builds.
pub const LOCAL_VERSION: &str = "1.20.2";

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no API server available: {0}")]
    Unavailable(String),
    #[error("cannot run a node: {0}")]
    Node(String),
    #[error("failed to prepare the test cluster: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to generate certificates: {0}")]
    Pki(#[from] rcgen::Error),
    #[error("failed to start {what}: {source}")]
    Spawn {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{what} did not become ready within {seconds}s; last log lines:\n{log}")]
    NotReady {
        what: &'static str,
        seconds: u64,
        log: String,
    },
    #[error("failed to read the kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("{what} failed ({status}):\n{output}")]
    Command {
        what: String,
        status: String,
        output: String,
    },
}

/// Where the tests run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterKind {
    /// etcd + kube-apiserver started by the harness: no controller-manager, no kubelet,
    /// CEL rules ignored.
    Local,
    /// A real cluster from `KUBECONFIG` (kind, k3d), by context name.
    External { context: String },
    /// A real single node started by `e2e/harness/node.sh` (kubelet, containerd,
    /// controller-manager, scheduler, kube-proxy, DNS, hostpath storage), by its state directory.
    Node { state_dir: PathBuf },
}

/// A running API server and a kubeconfig for it. Dropping it stops what it started.
#[derive(Debug)]
pub struct TestCluster {
    pub(crate) kind: ClusterKind,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) children: Vec<Child>,
    pub(crate) tokens: Vec<(String, String)>,
    pub(crate) dir: Option<tempfile::TempDir>,
}

/// Users the local server knows, by bearer token: `admin` (system:masters) and `viewer`
/// (no groups, no RBAC bindings: every request is forbidden until a test binds a role).
pub const USERS: [(&str, &str); 2] = [("admin", "system:masters"), ("viewer", "")];

impl TestCluster {
    /// The cluster shared by all tests of one test binary, started on first use. Its
    /// processes are stopped by a watchdog when the test binary exits.
    pub fn shared() -> Result<&'static TestCluster, &'static Error> {
        static SHARED: OnceLock<Result<TestCluster, Error>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let cluster = TestCluster::start()?;
                cluster.watch_parent()?;
                Ok(cluster)
            })
            .as_ref()
    }

    /// Adopts the `KUBECONFIG` cluster when it is a kind/k3d context (or `STELLA_E2E_EXTERNAL=1`
    /// says any context will do); otherwise starts a local one. Blocking.
    pub fn start() -> Result<TestCluster, Error> {
        if let Some(cluster) = Self::external()? {
            return Ok(cluster);
        }
        Self::start_local()
    }

    /// What kind of cluster this is.
    pub fn kind(&self) -> &ClusterKind {
        &self.kind
    }

    /// Path of the kubeconfig file.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Bearer token of a local user (see [`USERS`]); `None` on an external cluster.
    pub fn token(&self, user: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, t)| t.as_str())
    }

    /// The API server URL.
    pub fn server(&self) -> Result<String, Error> {
        let config = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let context = config.current_context.clone().unwrap_or_default();
        let cluster = config
            .contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
            .unwrap_or_default();
        config
            .clusters
            .iter()
            .find(|c| c.name == cluster)
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .ok_or_else(|| Error::Kubeconfig(format!("no server for context {context}")))
    }

    /// A client for the cluster, as the admin.
    pub async fn client(&self) -> Result<kube::Client, kube::Error> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        kube::Client::try_from(config)
    }

    /// `kubectl` pointed at this cluster (on a harness node, with its discovery cache in the
    /// node's state directory, so that nothing of the node outlives it).
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new("kubectl");
        command.arg("--kubeconfig").arg(&self.kubeconfig);
        if let ClusterKind::Node { state_dir } = &self.kind {
            command
                .arg("--cache-dir")
                .arg(state_dir.join("kubectl-cache"));
        }
        command
    }

    fn external() -> Result<Option<TestCluster>, Error> {
        let Some(path) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let first = std::env::split_paths(&path).next().unwrap_or_default();
        let config = kube::config::Kubeconfig::read_from(&first)
            .map_err(|e| Error::Kubeconfig(format!("{}: {e}", first.display())))?;
        let context = config.current_context.unwrap_or_default();
        let any = std::env::var("STELLA_E2E_EXTERNAL").is_ok_and(|v| v == "1");
        if !(any || context.starts_with("kind-") || context.starts_with("k3d-")) {
            eprintln!(
                "stella-e2e: KUBECONFIG context {context:?} is not a kind/k3d cluster; using a \
                 local API server (set STELLA_E2E_EXTERNAL=1 to run against it)"
            );
            return Ok(None);
        }
        Ok(Some(TestCluster {
            kind: ClusterKind::External { context },
            kubeconfig: first,
            children: vec![],
            tokens: vec![],
            dir: None,
        }))
    }

    fn start_local() -> Result<TestCluster, Error> {
        let apiserver = apiserver_binary()?;
        let etcd = which("etcd").ok_or_else(|| {
            Error::Unavailable("etcd not found (apt-get install etcd-server)".into())
        })?;
        let dir = scratch_dir()?;
        let root = dir.path().to_path_buf();
        // STELLA_E2E_KEEP=1 keeps the logs, certificates and kubeconfig for a post-mortem.
        let dir = if std::env::var("STELLA_E2E_KEEP").is_ok_and(|v| v == "1") {
            eprintln!("stella-e2e: keeping {}", root.display());
            let _ = dir.keep();
            None
        } else {
            Some(dir)
        };
        let mut cluster = TestCluster {
            kind: ClusterKind::Local,
            kubeconfig: root.join("kubeconfig"),
            children: vec![],
            tokens: vec![],
            dir,
        };

        // etcd.
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_log = root.join("etcd.log");
        let child = Command::new(etcd)
            .arg("--name=stella-e2e")
            .arg(format!("--data-dir={}", root.join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=stella-e2e={peer_url}"))
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&etcd_log)?)
            .spawn()
            .map_err(|source| Error::Spawn {
                what: "etcd",
                source,
            })?;
        cluster.children.push(child);
        wait_for_port(client_port, "etcd", &etcd_log, Duration::from_secs(30))?;

        // Certificates, tokens, service-account keys.
        let ca = TestCa::new("stella-e2e-ca")?;
        let serving = ca.serving_cert(
            "kube-apiserver",
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
            ],
        )?;
        let (sa_key, sa_pub) = signing_key_pair()?;
        write(&root.join("ca.crt"), ca.cert_pem())?;
        write(&root.join("apiserver.crt"), &serving.cert_pem)?;
        write(&root.join("apiserver.key"), &serving.key_pem)?;
        write(&root.join("sa.key"), &sa_key)?;
        write(&root.join("sa.pub"), &sa_pub)?;
        let mut tokens_csv = String::new();
        for (user, groups) in USERS {
            let token = random_token()?;
            tokens_csv.push_str(&format!("{token},{user},{user},\"{groups}\"\n"));
            cluster.tokens.push((user.to_string(), token));
        }
        write(&root.join("tokens.csv"), &tokens_csv)?;

        // kube-apiserver.
        let port = free_port()?;
        let log = root.join("kube-apiserver.log");
        let issuer = "https://kubernetes.default.svc.cluster.local";
        let child = Command::new(&apiserver)
            .arg(format!("--etcd-servers={etcd_url}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--secure-port={port}"))
            .arg(format!("--cert-dir={}", root.join("certs").display()))
            .arg(format!(
                "--tls-cert-file={}",
                root.join("apiserver.crt").display()
            ))
            .arg(format!(
                "--tls-private-key-file={}",
                root.join("apiserver.key").display()
            ))
            .arg(format!(
                "--client-ca-file={}",
                root.join("ca.crt").display()
            ))
            .arg(format!(
                "--token-auth-file={}",
                root.join("tokens.csv").display()
            ))
            .arg("--authorization-mode=RBAC")
            .arg(format!("--service-account-issuer={issuer}"))
            .arg(format!("--api-audiences={issuer}"))
            .arg(format!(
                "--service-account-key-file={}",
                root.join("sa.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                root.join("sa.key").display()
            ))
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            .arg("--allow-privileged=true")
            // No controller-manager creates the `default` ServiceAccount or its token Secret.
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--profiling=false")
            .arg("--v=1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .map_err(|source| Error::Spawn {
                what: "kube-apiserver",
                source,
            })?;
        cluster.children.push(child);

        let admin = cluster.token("admin").unwrap_or_default().to_string();
        write(
            &cluster.kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: stella-e2e\n  cluster:\n    \
                 server: https://127.0.0.1:{port}\n    certificate-authority: {ca}\n\
                 users:\n- name: admin\n  user:\n    token: {admin}\n\
                 contexts:\n- name: stella-e2e\n  context:\n    cluster: stella-e2e\n    user: admin\n\
                 current-context: stella-e2e\n",
                ca = root.join("ca.crt").display(),
            ),
        )?;
        cluster.wait_ready(&log, Duration::from_secs(60))?;
        Ok(cluster)
    }

    /// Polls `/readyz` until the server answers `ok`.
    fn wait_ready(&self, log: &Path, timeout: Duration) -> Result<(), Error> {
        let started = Instant::now();
        let ready = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        while started.elapsed() < timeout {
                            if let Ok(client) = self.client().await {
                                let request = http::Request::get("/readyz").body(Vec::new());
                                if let Ok(request) = request
                                    && let Ok(body) = client.request_text(request).await
                                    && body.trim() == "ok"
                                {
                                    return Ok::<bool, std::io::Error>(true);
                                }
                            }
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        Ok(false)
                    })
                })
                .join()
                .unwrap_or(Ok(false))
        })?;
        if ready {
            Ok(())
        } else {
            Err(Error::NotReady {
                what: "kube-apiserver",
                seconds: timeout.as_secs(),
                log: tail(log),
            })
        }
    }

    /// Stops the children and removes the scratch directory when the test process exits, even
    /// though a `static` is never dropped.
    fn watch_parent(&self) -> Result<(), Error> {
        if self.children.is_empty() {
            return Ok(());
        }
        let pids: Vec<String> = self.children.iter().map(|c| c.id().to_string()).collect();
        let pids = pids.join(" ");
        let dir = self
            .dir
            .as_ref()
            .map(|d| d.path().display().to_string())
            .unwrap_or_default();
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill -TERM {pids} 2>/dev/null; \
             sleep 2; kill -KILL {pids} 2>/dev/null; rm -rf '{dir}'",
            parent = std::process::id(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| Error::Spawn {
                what: "watchdog",
                source,
            })?;
        Ok(())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // The API server first, then etcd.
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The kube-apiserver binary: `STELLA_KUBE_APISERVER`, else the cached build, else built now
/// by `e2e/harness/build-kube-apiserver.sh` (a few minutes, once).
fn apiserver_binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("STELLA_KUBE_APISERVER") {
        return Ok(PathBuf::from(path));
    }
    let cache = cache_dir()?;
    let binary = cache.join(format!("kube-apiserver-{LOCAL_VERSION}/kube-apiserver"));
    if binary.is_file() {
        return Ok(binary);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/build-kube-apiserver.sh");
    eprintln!(
        "stella-e2e: building kube-apiserver {LOCAL_VERSION} (once; cached in {})",
        cache.display()
    );
    let output = Command::new("bash")
        .arg(&script)
        .env("STELLA_CACHE", &cache)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            what: "build-kube-apiserver.sh",
            source,
        })?;
    if !output.status.success() || !binary.is_file() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().rev().take(20).collect();
        let tail: Vec<&str> = lines.into_iter().rev().collect();
        return Err(Error::Unavailable(format!(
            "{} failed ({}):\n{}",
            script.display(),
            output.status,
            tail.join("\n")
        )));
    }
    Ok(binary)
}

/// `STELLA_CACHE`, else `~/.cache/stella`: where the harness keeps what it builds.
pub fn cache_dir() -> Result<PathBuf, Error> {
    std::env::var_os("STELLA_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/stella")))
        .ok_or_else(|| Error::Unavailable("neither STELLA_CACHE nor HOME is set".into()))
}

/// Scratch space on tmpfs when there is one (etcd fsyncs a lot).
fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix("stella-e2e-");
        b
    };
    if shm.is_dir()
        && let Ok(dir) = builder().tempdir_in(shm)
    {
        return Ok(dir);
    }
    builder().tempdir()
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(
    port: u16,
    what: &'static str,
    log: &Path,
    timeout: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(Error::NotReady {
        what,
        seconds: timeout.as_secs(),
        log: tail(log),
    })
}

fn write(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(contents.as_bytes())
}

fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
