//! The REST API over HTTP on a real socket, against the real API server harness: the static
//! users' tokens and ServiceAccount tokens from the TokenRequest API, reviewed by the API
//! server (TokenReview, SubjectAccessReview) under the ClusterRoles of `config/rbac`, with the
//! operator's own client running as a ServiceAccount bound to the `stella-operator`
//! ClusterRole. The store is seeded in a tempdir with SBOMs the `stella-sbom` library wrote.
//!
//! One cluster, one store and one server are shared by the tests (set up on first use); the
//! tests take turns (`serial`), so the API server's request counters tell how many reviews a
//! burst cost.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use stella_crds::policy::v1alpha1::Policy;
use stella_crds::scan::v1alpha1::Scan;
use stella_e2e::{ClusterKind, TestCluster};
use stella_operator::api::{self, ApiState};

const MANAGER: &str = "stella-api-test";

/// Everything the tests share.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    cluster: &'static TestCluster,
    admin: kube::Client,
    port: u16,
    /// The same API reusing reviews for only a second.
    short_ttl_port: u16,
    namespace: String,
    tokens: Tokens,
    old: stella_sbom::Inventory,
    new: stella_sbom::Inventory,
    /// Listed by the catalog, absent from the object store.
    broken: String,
    advisories: Vec<stella_advisories::Advisory>,
    policy: String,
    /// The catalog the API serves (Notify's deliveries are seeded into it).
    store: stella_store::Store,
    _data: tempfile::TempDir,
}

struct Tokens {
    /// Static users of the local harness (`None` on an external cluster).
    admin: Option<String>,
    viewer: Option<String>,
    /// ServiceAccounts: `stella-ops-reader` cluster-wide, `stella-ops-editor` cluster-wide,
    /// `stella-ops-reader` in the test namespace only, nothing, and one since deleted.
    reader: String,
    editor: String,
    ns_reader: String,
    nobody: String,
    gone: String,
}

/// The shared fixture, or `None` (the test is skipped, loudly) when no API server can be had
/// here; under CI, or with `STELLA_E2E_REQUIRE=1`, a missing cluster fails instead.
fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let cluster = match TestCluster::shared() {
                Ok(cluster) => cluster,
                Err(error) => {
                    let required = std::env::var_os("CI").is_some()
                        || std::env::var("STELLA_E2E_REQUIRE").is_ok_and(|v| v == "1");
                    assert!(!required, "test cluster required but unavailable: {error}");
                    eprintln!("SKIPPED: no test cluster: {error}");
                    return None;
                }
            };
            Some(Fixture::start(cluster))
        })
        .as_ref()
}

/// The tests take turns on the shared server.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sha256(bytes: &[u8]) -> String {
    let digest = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// A Debian 12 image with these packages (name, version, used by the entrypoint).
fn inventory(tag: &str, packages: &[(&str, &str, bool)]) -> stella_sbom::Inventory {
    let layer = |i: u8| format!("sha256:{}", format!("{i:02x}").repeat(32));
    let mut components: Vec<Value> = packages
        .iter()
        .map(|(name, version, used)| {
            json!({
                "package": {
                    "ecosystem": "deb", "name": name, "version": version, "arch": "amd64",
                    "source_name": name, "source_version": null, "licenses": ["GPL-2+"],
                    "supplier": "Debian", "installed_size": 100, "depends": [], "provides": [],
                    "depends_on": [], "files": [format!("/usr/bin/{name}")],
                    "purl": format!("pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12"),
                    "evidence": {"source": "dpkg-status", "path": "var/lib/dpkg/status",
                                 "method": "package-database"}
                },
                "layer_digest": layer(1),
                "used_by_entrypoint": used,
                "properties": []
            })
        })
        .collect();
    components.sort_by_key(|c| {
        c["package"]["purl"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    serde_json::from_value(json!({
        "image": {
            "digest": sha256(format!("manifest {tag}").as_bytes()),
            "config_digest": sha256(format!("config {tag}").as_bytes()),
            "name": format!("registry.example/web:{tag}"),
            "repository": "registry.example/web",
            "tags": [tag],
            "created": "2024-05-01T10:20:30Z",
            "os": "linux",
            "architecture": "amd64",
            "layers": [layer(0), layer(1)],
            "user": null
        },
        "distro": {"id": "debian", "version_id": "12", "version_codename": "bookworm",
                   "pretty_name": "Debian GNU/Linux 12 (bookworm)", "id_like": []},
        "components": components,
        "analyzer_version": "api-test-1",
        "errors": [],
        "relationships": [],
        "entry_trace": null,
        "view": "inventory"
    }))
    .unwrap()
}

/// Stores what the scan pipeline stores for an image (the SBOMs, the BOM-Index) and its
/// inventory, with their catalog rows.
async fn record(store: &stella_store::Store, inventory: &stella_sbom::Inventory) {
    let digest = &inventory.image.digest;
    let mut artifacts: Vec<_> = stella_store::image_artifacts(inventory, &[]).collect();
    artifacts.push(stella_store::Artifact {
        key: stella_store::keys::inventory(digest),
        kind: api::INVENTORY_KIND,
        format: "json",
        view: Some("inventory"),
        bytes: serde_json::to_vec(inventory).unwrap(),
    });
    for artifact in artifacts {
        store.store_artifact(digest, artifact).await.unwrap();
    }
}

/// An OSV advisory on a Debian 12 source package, fixed in a version nobody has.
fn advisory(id: &str, package: &str, vector: &str) -> stella_advisories::Advisory {
    let osv = json!({"id": id, "modified": "2099-01-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": vector}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": package},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99:1"}]}]}]});
    stella_advisories::osv::parse(osv.to_string().as_bytes()).unwrap()
}

impl Fixture {
    fn start(cluster: &'static TestCluster) -> Fixture {
        let namespace = format!(
            "api-{:x}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        apply_cluster_roles(cluster);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let old = inventory(
            "1",
            &[
                ("bash", "5.2.15-2", false),
                ("coreutils", "9.1-1", true),
                ("dash", "0.5.12-2", true),
            ],
        );
        let new = inventory(
            "2",
            &[
                ("bash", "5.2.15-3", false),
                ("curl", "7.88.1-10", true),
                ("dash", "0.5.12-2", true),
            ],
        );
        let advisories = vec![
            advisory(
                "CVE-2099-0001",
                "dash",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            ),
            advisory(
                "CVE-2099-0002",
                "bash",
                "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N",
            ),
        ];
        let broken = format!("sha256:{}", "c".repeat(64));
        let policy = format!("{namespace}-warn");
        let (admin, tokens, port, short_ttl_port, store) = runtime.block_on(async {
            let admin = cluster.client().await.unwrap();
            install_crds(&admin).await;
            let store = stella_store::Store::open_embedded(data.path())
                .await
                .unwrap();
            record(&store, &old).await;
            record(&store, &new).await;
            store
                .catalog
                .record_artifact(&stella_store::ArtifactRow {
                    key: stella_store::keys::image_artifact(&broken, "inventory", "cdx.json"),
                    image_digest: broken.clone(),
                    kind: "sbom".into(),
                    format: "cyclonedx-json".into(),
                    view: Some("inventory".into()),
                    digest: sha256(b"gone"),
                    size: 4,
                })
                .await
                .unwrap();
            for a in &advisories {
                let body = serde_json::to_string(a).unwrap();
                let keys: Vec<(String, String)> = a
                    .affected
                    .iter()
                    .map(|x| (x.ecosystem.clone(), x.package.clone()))
                    .collect();
                store
                    .advisories
                    .put_advisory(&a.id, &a.source, &a.modified, &body, &keys)
                    .await
                    .unwrap();
            }
            let tokens = identities(cluster, &admin, &namespace).await;
            create_policy_and_scan(&admin, &namespace, &policy, &new).await;
            let operator = operator_client(cluster, &admin, &namespace).await;
            let state = ApiState::new(operator, store.clone());
            let short = state.clone().with_review_cache(Duration::from_secs(1), 16);
            let port = serve(state).await;
            let short_ttl_port = serve(short).await;
            (admin, tokens, port, short_ttl_port, store)
        });
        Fixture {
            runtime,
            cluster,
            admin,
            port,
            short_ttl_port,
            namespace,
            tokens,
            old,
            new,
            broken,
            advisories,
            policy,
            store,
            _data: data,
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> Reply {
        request(self.port, "GET", path, token, &[], None)
    }

    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        let body = body.to_string();
        request(
            self.port,
            "POST",
            path,
            token,
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    /// The API server's count of requests creating `resource` (its `/metrics`).
    fn created(&self, resource: &str) -> u64 {
        let text = self
            .runtime
            .block_on(
                self.admin.request_text(
                    warp::http::Request::get("/metrics")
                        .body(Vec::new())
                        .unwrap(),
                ),
            )
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
            .filter(|l| {
                l.contains(&format!("resource=\"{resource}\"")) && l.contains("verb=\"POST\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

/// Serves the API on a loopback port.
async fn serve(state: ApiState) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(warp::serve(api::routes(state)).incoming(listener).run());
    port
}

/// The ClusterRoles of `config/rbac/operator.yaml` the API relies on, applied as committed.
fn apply_cluster_roles(cluster: &TestCluster) {
    let text = std::fs::read_to_string(repo_root().join("config/rbac/operator.yaml")).unwrap();
    let roles: Vec<&str> = text
        .split("\n---\n")
        .filter(|doc| doc.contains("\nkind: ClusterRole\n"))
        .filter(|doc| {
            ["stella-operator", "stella-ops-reader", "stella-ops-editor"]
                .iter()
                .any(|name| doc.contains(&format!("\n  name: {name}\n")))
        })
        .collect();
    assert_eq!(
        roles.len(),
        3,
        "three ClusterRoles in config/rbac/operator.yaml"
    );
    let mut child = cluster
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(roles.join("\n---\n").as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "kubectl apply of the ClusterRoles"
    );
}

/// The generated CRDs (without CEL rules on servers that predate them), Established.
async fn install_crds(client: &kube::Client) {
    use kube::runtime::wait::{await_condition, conditions};
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let cel = stella_e2e::compat::supports_cel(&client.apiserver_version().await.unwrap());
    for crd in stella_crds::all() {
        let name = crd.metadata.name.clone().unwrap();
        let mut value = serde_json::to_value(&crd).unwrap();
        if !cel {
            stella_e2e::compat::strip_cel_rules(&mut value);
        }
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await
        .unwrap();
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("{name} not Established within 30s"))
        .unwrap();
    }
}

/// ServiceAccounts, their bindings (checked effective before use) and their tokens.
async fn identities(cluster: &TestCluster, admin: &kube::Client, namespace: &str) -> Tokens {
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    for name in [
        "reader",
        "editor",
        "ns-reader",
        "nobody",
        "gone",
        "operator",
    ] {
        accounts
            .create(
                &PostParams::default(),
                &ServiceAccount {
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        ..ObjectMeta::default()
                    },
                    ..ServiceAccount::default()
                },
            )
            .await
            .unwrap();
    }
    let subject = |name: &str| Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(namespace.into()),
        ..Subject::default()
    };
    let role = |name: &str| RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "ClusterRole".into(),
        name: name.into(),
    };
    for (account, cluster_role) in [
        ("reader", "stella-ops-reader"),
        ("editor", "stella-ops-editor"),
        ("operator", "stella-operator"),
    ] {
        Api::<ClusterRoleBinding>::all(admin.clone())
            .create(
                &PostParams::default(),
                &ClusterRoleBinding {
                    metadata: ObjectMeta {
                        name: Some(format!("{namespace}-{account}")),
                        ..ObjectMeta::default()
                    },
                    role_ref: role(cluster_role),
                    subjects: Some(vec![subject(account)]),
                },
            )
            .await
            .unwrap();
    }
    Api::<RoleBinding>::namespaced(admin.clone(), namespace)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: ObjectMeta {
                    name: Some("ns-reader".into()),
                    ..ObjectMeta::default()
                },
                role_ref: role("stella-ops-reader"),
                subjects: Some(vec![subject("ns-reader")]),
            },
        )
        .await
        .unwrap();
    // RBAC reaches the authorizer through an informer: wait until each binding counts.
    for (account, verb, ns) in [
        ("reader", "get", None),
        ("editor", "create", None),
        ("operator", "get", None),
        ("ns-reader", "get", Some(namespace)),
    ] {
        wait_allowed(admin, namespace, account, verb, ns).await;
    }
    let mut tokens = Vec::new();
    for name in ["reader", "editor", "ns-reader", "nobody", "gone"] {
        tokens.push(token(admin, namespace, name).await);
    }
    accounts.delete("gone", &Default::default()).await.unwrap();
    let [reader, editor, ns_reader, nobody, gone] = <[String; 5]>::try_from(tokens).unwrap();
    Tokens {
        admin: cluster.token("admin").map(str::to_string),
        viewer: cluster.token("viewer").map(str::to_string),
        reader,
        editor,
        ns_reader,
        nobody,
        gone,
    }
}

/// A ServiceAccount token from the TokenRequest API (audience: the API server's own).
async fn token(admin: &kube::Client, namespace: &str, account: &str) -> String {
    Api::<ServiceAccount>::namespaced(admin.clone(), namespace)
        .create_token_request(
            account,
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..TokenRequestSpec::default()
                }),
                ..TokenRequest::default()
            },
        )
        .await
        .unwrap()
        .status
        .and_then(|s| s.token)
        .expect("a token")
}

async fn wait_allowed(
    admin: &kube::Client,
    namespace: &str,
    account: &str,
    verb: &str,
    scope: Option<&str>,
) {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{namespace}:{account}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                group: Some("stella-ops.org".into()),
                resource: Some("scans".into()),
                verb: Some(verb.into()),
                namespace: scope.map(str::to_string),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(admin.clone());
    let started = Instant::now();
    loop {
        let status = api
            .create(&PostParams::default(), &review)
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        if status.allowed {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{account} never got {verb} scans"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The policy the report tests name (critical findings only warn) and a finished Scan of the
/// new image.
async fn create_policy_and_scan(
    admin: &kube::Client,
    namespace: &str,
    policy: &str,
    new: &stella_sbom::Inventory,
) {
    let object: Policy = serde_json::from_value(json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy",
        "metadata": {"name": policy},
        "spec": {"version": "1.0", "rules": [
            {"name": "Warn Critical", "severity": ["Critical"], "action": "warn"}
        ]}
    }))
    .unwrap();
    Api::<Policy>::all(admin.clone())
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    let scans: Api<Scan> = Api::namespaced(admin.clone(), namespace);
    let scan: Scan = serde_json::from_value(json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
        "metadata": {"name": "web"},
        "spec": {"image": "registry.example/web:2", "policyRef": policy}
    }))
    .unwrap();
    scans.create(&PostParams::default(), &scan).await.unwrap();
    let fresh: Scan = serde_json::from_value(json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
        "metadata": {"name": "fresh"},
        "spec": {"image": "registry.example/web:3"}
    }))
    .unwrap();
    scans.create(&PostParams::default(), &fresh).await.unwrap();
    let key = stella_store::keys::image_artifact(&new.image.digest, "inventory", "cdx.json");
    scans
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "phase": "Completed",
                "imageDigest": new.image.digest,
                "verdict": "WARN",
                "counts": {"critical": 1, "high": 0, "medium": 1, "low": 0, "none": 0, "unknown": 0},
                "components": 3,
                "artifacts": [{"kind": "sbom", "format": "cyclonedx-json", "view": "inventory",
                               "key": key, "digest": sha256(b"x"), "size": 1}],
                "attestation": {"state": "Logged", "envelopes": [
                    {"kind": "report", "key": format!("attest/{}.dsse.json", "b".repeat(64)), "digest": format!("sha256:{}", "c".repeat(64)), "logIndex": 43},
                    {"kind": "sbom", "key": format!("attest/{}.dsse.json", "a".repeat(64)), "digest": format!("sha256:{}", "d".repeat(64)), "logIndex": 42}]},
                "observedGeneration": 1
            }})),
        )
        .await
        .unwrap();
}

/// The operator's client: a ServiceAccount bound to the committed `stella-operator`
/// ClusterRole, so the test proves that role grants what the API needs (on the local
/// harness; an external cluster's kubeconfig is used as it is).
async fn operator_client(
    cluster: &TestCluster,
    admin: &kube::Client,
    namespace: &str,
) -> kube::Client {
    let (ClusterKind::Local, Some(admin_token)) = (cluster.kind(), cluster.token("admin")) else {
        return admin.clone();
    };
    let token = token(admin, namespace, "operator").await;
    let text = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    assert!(text.contains(admin_token));
    let kubeconfig: kube::config::Kubeconfig =
        kube::config::Kubeconfig::from_yaml(&text.replace(admin_token, &token)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// A response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The error code of a JSON error, after checking the shape and the status.
    fn error(&self, status: u16) -> String {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        let error = body["error"].as_object().expect("{\"error\": {…}}");
        assert_eq!(error.len(), 2, "code and message: {body}");
        assert!(!error["message"].as_str().unwrap().is_empty());
        error["code"].as_str().unwrap().to_string()
    }

    fn ok(&self) -> &Reply {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        self
    }
}

/// One HTTP/1.1 request on a fresh connection, read to the end.
fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    if let Some(body) = body {
        stream.write_all(body).unwrap();
    }
    read_reply(stream)
}

fn read_reply(mut stream: std::net::TcpStream) -> Reply {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = raw[split + 4..].to_vec();
    if let Some(length) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        assert_eq!(length.1.parse::<usize>().unwrap(), body.len());
    }
    Reply {
        status,
        headers,
        body,
    }
}

const P: &str = "/api/v1/scanner";

#[test]
fn unauthenticated_callers_get_401_everywhere() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let digest = &f.new.image.digest;
    let paths = [
        format!("{P}/scans/{}/web", f.namespace),
        format!("{P}/sboms/{digest}"),
        format!("{P}/diff?old={}&new={digest}", f.old.image.digest),
        format!("{P}/catalog/artifacts/images/{digest}/inventory.cdx.json"),
    ];
    for path in &paths {
        for token in [None, Some("garbage"), Some(f.tokens.gone.as_str())] {
            let reply = f.get(path, token);
            assert_eq!(reply.error(401), "unauthenticated", "{path} {token:?}");
            assert_eq!(
                reply.header("www-authenticate"),
                Some("Bearer realm=\"stella-ops\"")
            );
        }
        let basic = request(
            f.port,
            "GET",
            path,
            None,
            &[("authorization", "Basic YWRtaW46YWRtaW4=")],
            None,
        );
        assert_eq!(basic.error(401), "unauthenticated");
    }
    // Before the body is read.
    let body = json!({"imageDigest": digest});
    assert_eq!(
        f.post(&format!("{P}/reports"), None, &body).error(401),
        "unauthenticated"
    );
    assert_eq!(
        f.post(&format!("{P}/reports"), Some("garbage"), &body)
            .error(401),
        "unauthenticated"
    );
}

#[test]
fn bound_identities_are_allowed_and_unbound_ones_forbidden() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let path = format!("{P}/sboms/{}", f.new.image.digest);
    f.get(&path, Some(&f.tokens.reader)).ok();
    f.get(&path, Some(&f.tokens.editor)).ok();
    let denied = f.get(&path, Some(&f.tokens.nobody));
    assert_eq!(denied.error(403), "forbidden");
    let message = denied.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(&format!("system:serviceaccount:{}:nobody", f.namespace))
            && message.contains("cluster scope"),
        "{message}"
    );
    if let (Some(admin), Some(viewer)) = (&f.tokens.admin, &f.tokens.viewer) {
        f.get(&path, Some(admin)).ok();
        assert_eq!(f.get(&path, Some(viewer)).error(403), "forbidden");
    }
}

#[test]
fn a_namespaced_binding_reads_its_scans_but_not_digest_addressed_results() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let token = Some(f.tokens.ns_reader.as_str());
    f.get(&format!("{P}/scans/{}/web", f.namespace), token).ok();
    // Another namespace: forbidden before anything is looked up.
    assert_eq!(
        f.get(&format!("{P}/scans/default/web"), token).error(403),
        "forbidden"
    );
    for path in [
        format!("{P}/sboms/{}", f.new.image.digest),
        format!(
            "{P}/diff?old={}&new={}",
            f.old.image.digest, f.new.image.digest
        ),
        format!(
            "{P}/catalog/artifacts/images/{}/inventory.cdx.json",
            f.new.image.digest
        ),
    ] {
        assert_eq!(f.get(&path, token).error(403), "forbidden", "{path}");
    }
}

#[test]
fn scans_show_the_result_their_status_records() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let reader = Some(f.tokens.reader.as_str());
    let reply = f.get(&format!("{P}/scans/{}/web", f.namespace), reader);
    let body = reply.ok().json();
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(body["scanId"], format!("{}/web", f.namespace));
    assert_eq!(body["image"], "registry.example/web:2");
    assert_eq!(body["status"], "Completed");
    assert_eq!(body["imageDigest"], f.new.image.digest.as_str());
    assert_eq!(body["verdict"], "WARN");
    assert_eq!(body["counts"]["critical"], 1);
    assert_eq!(body["components"], 3);
    assert_eq!(body["artifacts"][0]["format"], "cyclonedx-json");
    assert_eq!(
        body["rekor"],
        json!({"logIndex": 42, "entries": [{"kind": "report", "logIndex": 43}, {"kind": "sbom", "logIndex": 42}]})
    );
    // Not yet seen by the controller: pending, nothing stored.
    let fresh = f
        .get(&format!("{P}/scans/{}/fresh", f.namespace), reader)
        .ok()
        .json();
    assert_eq!(
        fresh,
        json!({
            "scanId": format!("{}/fresh", f.namespace), "image": "registry.example/web:3",
            "status": "Pending", "counts": {"critical": 0, "high": 0, "medium": 0, "low": 0,
            "none": 0, "unknown": 0}, "suppressed": 0, "components": 0, "artifacts": [],
            "conditions": []
        })
    );

    assert_eq!(
        f.get(&format!("{P}/scans/{}/nope", f.namespace), reader)
            .error(404),
        "not_found"
    );
    for bad in ["Web", "a_b", "-web", &"a".repeat(254)] {
        assert_eq!(
            f.get(&format!("{P}/scans/{}/{bad}", f.namespace), reader)
                .error(400),
            "bad_request",
            "{bad}"
        );
    }
    assert_eq!(
        f.get(&format!("{P}/scans/Team/web"), reader).error(400),
        "bad_request"
    );
}

#[test]
fn sboms_are_served_as_stored_with_their_media_types() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let reader = Some(f.tokens.reader.as_str());
    let digest = &f.new.image.digest;
    let usage = f.new.usage_view();
    let cases = [
        (
            "",
            "application/vnd.cyclonedx+json; version=1.6",
            stella_sbom::cyclonedx::to_json(&f.new).into_bytes(),
        ),
        (
            "?format=cdx-json&view=inventory",
            "application/vnd.cyclonedx+json; version=1.6",
            stella_sbom::cyclonedx::to_json(&f.new).into_bytes(),
        ),
        (
            "?format=cyclonedx-protobuf",
            "application/x.vnd.cyclonedx+protobuf; version=1.6",
            stella_sbom::cyclonedx_pb::to_protobuf(&f.new),
        ),
        (
            "?format=spdx-json",
            "application/spdx+json",
            stella_sbom::spdx::to_json(&f.new).into_bytes(),
        ),
        (
            "?view=usage",
            "application/vnd.cyclonedx+json; version=1.6",
            stella_sbom::cyclonedx::to_json(&usage).into_bytes(),
        ),
        (
            "?view=usage&format=cdx-pb",
            "application/x.vnd.cyclonedx+protobuf; version=1.6",
            stella_sbom::cyclonedx_pb::to_protobuf(&usage),
        ),
    ];
    for (query, media_type, bytes) in cases {
        let reply = f.get(&format!("{P}/sboms/{digest}{query}"), reader);
        reply.ok();
        assert_eq!(reply.header("content-type"), Some(media_type), "{query}");
        assert_eq!(reply.body, bytes, "{query}");
        assert_eq!(
            reply.header("etag"),
            Some(format!("\"{}\"", sha256(&bytes)).as_str())
        );
    }
    // The digest percent-encoded, as some clients send it.
    let encoded = digest.replace(':', "%3A");
    f.get(&format!("{P}/sboms/{encoded}"), reader).ok();

    let other = format!("sha256:{}", "d".repeat(64));
    let not_found = f.get(&format!("{P}/sboms/{other}"), reader);
    assert_eq!(not_found.error(404), "not_found");
    let absent = f.get(
        &format!("{P}/sboms/{digest}?format=spdx-json&view=usage"),
        reader,
    );
    assert_eq!(absent.error(404), "not_found");
    assert!(
        absent.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cyclonedx-json/inventory"),
        "the message lists what is stored"
    );
    for bad in [
        "sha256:abc",
        "latest",
        &digest.to_uppercase().replace("SHA256", "sha256"),
        "sha256%3Azz",
        "%ZZ",
    ] {
        assert_eq!(
            f.get(&format!("{P}/sboms/{bad}"), reader).error(400),
            "bad_request",
            "{bad}"
        );
    }
    for query in [
        "?format=xml",
        "?view=all",
        "?format=spdx-json&format=cdx-json",
        "?formats=spdx-json",
    ] {
        assert_eq!(
            f.get(&format!("{P}/sboms/{digest}{query}"), reader)
                .error(400),
            "bad_request",
            "{query}"
        );
    }
    let long = "x".repeat(300);
    assert_eq!(
        f.get(&format!("{P}/sboms/{digest}?format={long}"), reader)
            .error(400),
        "bad_request"
    );
    // The catalog lists it, the object store lost it: the store failed.
    assert_eq!(
        f.get(&format!("{P}/sboms/{}", f.broken), reader).error(503),
        "unavailable"
    );
}

#[test]
fn diff_answers_what_stella_diff_prints() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let reader = Some(f.tokens.reader.as_str());
    let (old, new) = (&f.old.image.digest, &f.new.image.digest);
    let expected = |old: &stella_sbom::Inventory, new: &stella_sbom::Inventory| {
        stella_sbom::canonical::to_string_pretty(
            &serde_json::to_value(stella_sbom::diff::diff(
                old,
                new,
                &stella_advisories::matching::compare,
            ))
            .unwrap(),
        )
    };
    let reply = f.get(&format!("{P}/diff?old={old}&new={new}"), reader);
    reply.ok();
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        String::from_utf8(reply.body.clone()).unwrap(),
        expected(&f.old, &f.new)
    );
    let body = reply.json();
    let changes: Vec<(&str, &str)> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        [
            ("bash", "version_changed"),
            ("coreutils", "removed"),
            ("curl", "added")
        ]
    );
    assert_eq!(body["changes"][0]["direction"], "upgraded");

    let usage = f.get(&format!("{P}/diff?old={old}&new={new}&view=usage"), reader);
    assert_eq!(
        String::from_utf8(usage.ok().body.clone()).unwrap(),
        expected(&f.old.usage_view(), &f.new.usage_view())
    );
    assert_eq!(usage.json()["changes"].as_array().unwrap().len(), 2);

    let missing = format!("sha256:{}", "e".repeat(64));
    for (query, status, code) in [
        (format!("old={old}&new={missing}"), 404, "not_found"),
        // Catalogued, but without an inventory.
        (format!("old={old}&new={}", f.broken), 404, "not_found"),
        (format!("old={old}"), 400, "bad_request"),
        (format!("new={new}"), 400, "bad_request"),
        (format!("old={old}&new=sha256:1"), 400, "bad_request"),
        (format!("old={old}&new={new}&view=both"), 400, "bad_request"),
        (
            format!("old={old}&new={new}&format=json"),
            400,
            "bad_request",
        ),
    ] {
        assert_eq!(
            f.get(&format!("{P}/diff?{query}"), reader).error(status),
            code,
            "{query}"
        );
    }
}

#[test]
fn reports_evaluate_the_stored_inventory_as_the_cli_does() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let editor = Some(f.tokens.editor.as_str());
    let digest = f.new.image.digest.clone();
    let spec = serde_json::to_string(
        &f.runtime
            .block_on(Api::<Policy>::all(f.admin.clone()).get(&f.policy))
            .unwrap()
            .spec,
    )
    .unwrap();
    let loaded = stella_policy::load_str(&spec).unwrap();

    // The named policy: the critical finding only warns.
    let reply = f.post(
        &format!("{P}/reports"),
        editor,
        &json!({"imageDigest": digest, "policyRevision": f.policy, "namespace": "team-a", "environment": "prod"}),
    );
    let body = reply.ok().json();
    assert_eq!(body["verdict"], "WARN");
    let report = &body["report"];
    assert_eq!(report["policyDigest"], loaded.digest.as_str());
    assert_eq!(report["namespace"], "team-a");
    assert_eq!(report["environment"], "prod");
    // Exactly what the library evaluates from the same inputs at the same instant.
    let evaluated_at =
        chrono::DateTime::parse_from_rfc3339(report["evaluatedAt"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
    let evaluation = stella_verdict::evaluate::evaluate(&stella_verdict::evaluate::Inputs {
        inventory: f.new.clone(),
        advisories: f.advisories.clone(),
        statements: vec![],
        trust: Default::default(),
        exploits: Default::default(),
        policy: loaded.spec.clone(),
        evaluated_at,
        namespace: Some("team-a".into()),
        environment: Some("prod".into()),
    });
    assert_eq!(*report, serde_json::to_value(&evaluation.report).unwrap());
    assert_eq!(body["reportId"], evaluation.manifest.scan_id.as_str());
    assert_eq!(body["rootHash"], evaluation.root.as_str());
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["CVE-2099-0002", "CVE-2099-0001"]);

    // Pinned at its digest: the same; at another: 409.
    f.post(
        &format!("{P}/reports"),
        editor,
        &json!({"imageDigest": digest, "policyRevision": format!("{}@{}", f.policy, loaded.digest)}),
    )
    .ok();
    let stale = format!("{}@sha256:{}", f.policy, "0".repeat(64));
    assert_eq!(
        f.post(
            &format!("{P}/reports"),
            editor,
            &json!({"imageDigest": digest, "policyRevision": stale})
        )
        .error(409),
        "conflict"
    );

    // No policy: the built-in default, severity decides (critical fails).
    let default = f.post(
        &format!("{P}/reports"),
        editor,
        &json!({"imageDigest": digest}),
    );
    let default = default.ok().json();
    assert_eq!(default["verdict"], "FAIL");
    assert_eq!(default["report"]["counts"]["fail"], 1);

    // Who may: create scans (editor), not get (reader), nobody not at all.
    for token in [&f.tokens.reader, &f.tokens.nobody, &f.tokens.ns_reader] {
        assert_eq!(
            f.post(
                &format!("{P}/reports"),
                Some(token),
                &json!({"imageDigest": digest})
            )
            .error(403),
            "forbidden"
        );
    }

    let missing = format!("sha256:{}", "e".repeat(64));
    for (body, status, code) in [
        (json!({"imageDigest": missing}), 404, "not_found"),
        (
            json!({"imageDigest": digest, "policyRevision": "no-such-policy"}),
            404,
            "not_found",
        ),
        (json!({"imageDigest": "sha256:1"}), 400, "bad_request"),
        (json!({"policyRevision": f.policy}), 400, "bad_request"),
        (
            json!({"imageDigest": digest, "vexSnapshot": "x"}),
            400,
            "bad_request",
        ),
        (
            json!({"imageDigest": digest, "policyRevision": "Bad_Name"}),
            400,
            "bad_request",
        ),
        (
            json!({"imageDigest": digest, "policyRevision": "p@42"}),
            400,
            "bad_request",
        ),
        (
            json!({"imageDigest": digest, "namespace": "Team A"}),
            400,
            "bad_request",
        ),
        (
            json!({"imageDigest": digest, "environment": "a/b"}),
            400,
            "bad_request",
        ),
        (json!([digest]), 400, "bad_request"),
    ] {
        let reply = f.post(&format!("{P}/reports"), editor, &body);
        assert_eq!(reply.status, status, "{body}");
        assert_eq!(reply.error(status), code, "{body}");
    }
    let not_json = request(
        f.port,
        "POST",
        &format!("{P}/reports"),
        editor,
        &[],
        Some(b"imageDigest=sha256:1"),
    );
    assert_eq!(not_json.error(400), "bad_request");

    // Over 1 MiB: refused from the declared length, before the body is sent.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    write!(
        stream,
        "POST {P}/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        f.tokens.editor,
        api::MAX_BODY_BYTES + 1
    )
    .unwrap();
    assert_eq!(read_reply(stream).error(413), "payload_too_large");
}

#[test]
fn catalog_artifacts_describe_what_is_stored() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let reader = Some(f.tokens.reader.as_str());
    let digest = &f.new.image.digest;
    let key = format!("images/{digest}/inventory.spdx.json");
    let bytes = stella_sbom::spdx::to_json(&f.new).into_bytes();
    let expected = json!({
        "id": key, "imageDigest": digest, "kind": "sbom", "format": "spdx-json",
        "view": "inventory", "digest": sha256(&bytes), "size": bytes.len()
    });
    let reply = f.get(&format!("{P}/catalog/artifacts/{key}"), reader);
    assert_eq!(reply.ok().json(), expected);
    // The id percent-encoded as one segment.
    let encoded = key.replace('/', "%2F").replace(':', "%3A");
    assert_eq!(
        f.get(&format!("{P}/catalog/artifacts/{encoded}"), reader)
            .ok()
            .json(),
        expected
    );
    let index = f.get(
        &format!("{P}/catalog/artifacts/indexes/{digest}/bom-index.bin"),
        reader,
    );
    assert_eq!(index.ok().json()["kind"], "bom-index");

    assert_eq!(
        f.get(
            &format!("{P}/catalog/artifacts/images/{digest}/nope.json"),
            reader
        )
        .error(404),
        "not_found"
    );
    for bad in [
        format!("images/{digest}/../../../etc/passwd"),
        format!("images/{digest}/%2e%2e/%2e%2e/x"),
        format!("images/{digest}"),
        "images/latest/inventory.cdx.json".to_string(),
        format!("images//{digest}/x"),
        String::new(),
    ] {
        assert_eq!(
            f.get(&format!("{P}/catalog/artifacts/{bad}"), reader)
                .error(400),
            "bad_request",
            "{bad}"
        );
    }
}

#[test]
fn unknown_endpoints_and_methods_are_json_errors() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let reader = Some(f.tokens.reader.as_str());
    for path in [
        format!("{P}/nope"),
        "/elsewhere".into(),
        format!("{P}/scans/a"),
    ] {
        assert_eq!(f.get(&path, reader).error(404), "not_found", "{path}");
    }
    assert_eq!(
        f.get(&format!("{P}/reports"), reader).error(405),
        "method_not_allowed"
    );
    let post = request(
        f.port,
        "POST",
        &format!("{P}/sboms/{}", f.new.image.digest),
        reader,
        &[],
        Some(b"{}"),
    );
    assert_eq!(post.error(405), "method_not_allowed");
}

#[test]
fn a_burst_with_one_token_costs_one_review_of_each_kind() {
    let Some(f) = fixture() else { return };
    if *f.cluster.kind() != ClusterKind::Local {
        eprintln!("SKIPPED: review counts need the local API server (nothing else reviews)");
        return;
    }
    let _turn = serial();
    // A token the API has never seen.
    let token = f.runtime.block_on(token(&f.admin, &f.namespace, "reader"));
    let (reviews, accesses) = (f.created("tokenreviews"), f.created("subjectaccessreviews"));
    let path = format!("{P}/sboms/{}", f.new.image.digest);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| f.get(&path, Some(&token)).status))
            .collect();
        for worker in workers {
            assert_eq!(worker.join().unwrap(), 200);
        }
    });
    // Another permission of the same caller: a new access review, the same token review.
    f.get(&format!("{P}/scans/{}/web", f.namespace), Some(&token))
        .ok();
    assert_eq!(f.created("tokenreviews") - reviews, 1);
    assert_eq!(f.created("subjectaccessreviews") - accesses, 2);
}

#[test]
fn reviews_are_reused_for_the_ttl_only() {
    let Some(f) = fixture() else { return };
    if *f.cluster.kind() != ClusterKind::Local {
        eprintln!("SKIPPED: review counts need the local API server (nothing else reviews)");
        return;
    }
    let _turn = serial();
    let token = f.runtime.block_on(token(&f.admin, &f.namespace, "reader"));
    let path = format!("{P}/sboms/{}", f.new.image.digest);
    let get = || request(f.short_ttl_port, "GET", &path, Some(&token), &[], None);
    let reviews = f.created("tokenreviews");
    get().ok();
    get().ok();
    assert_eq!(
        f.created("tokenreviews") - reviews,
        1,
        "reused within the TTL"
    );
    std::thread::sleep(Duration::from_millis(1200));
    get().ok();
    assert_eq!(
        f.created("tokenreviews") - reviews,
        2,
        "reviewed again after it"
    );
}

#[test]
fn an_unreachable_api_server_is_503() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = runtime.block_on(async {
        // A port nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url: warp::http::Uri =
            format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port())
                .parse()
                .unwrap();
        drop(closed);
        let client = kube::Client::try_from(kube::Config::new(url)).unwrap();
        let store = stella_store::Store::open_embedded(data.path())
            .await
            .unwrap();
        serve(ApiState::new(client, store)).await
    });
    let path = format!("{P}/sboms/sha256:{}", "a".repeat(64));
    let reply = request(port, "GET", &path, Some("some-token"), &[], None);
    assert_eq!(reply.error(503), "unavailable");
    // Without a token nothing needs the API server.
    assert_eq!(
        request(port, "GET", &path, None, &[], None).error(401),
        "unauthenticated"
    );
}

/// A loopback HTTP receiver that answers `status` to every request and keeps the bodies.
fn receiver(status: u16) -> (u16, std::sync::Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut raw = Vec::new();
            let mut chunk = [0u8; 8192];
            let body = loop {
                let n = stream.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                raw.extend_from_slice(&chunk[..n]);
                if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..i]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while raw.len() < i + 4 + length {
                        let n = stream.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        raw.extend_from_slice(&chunk[..n]);
                    }
                    break Some(raw[i + 4..].to_vec());
                }
            };
            if let Some(body) = body {
                sink.lock().unwrap().push(body);
            }
            let _ = stream.write_all(
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (port, got)
}

#[test]
fn notify_deliveries_and_test_sends_are_authorised_and_checked() {
    let Some(f) = fixture() else { return };
    let _turn = serial();
    let ns = &f.namespace;
    // Deliveries: one seeded in the test namespace's rule, one elsewhere.
    let row = |id: &str, rule: &str| stella_store::DeliveryRow {
        id: id.into(),
        event_id: format!("event-{id}"),
        rule: rule.into(),
        action: 0,
        channel: format!("{ns}/hook"),
        target: String::new(),
        status: "dead".into(),
        reason: "matched".into(),
        group_key: String::new(),
        members: "[]".into(),
        attempts: 5,
        last_error: "HTTP 500 (gave up after 5 attempt(s))".into(),
        created_at: "2026-12-01T00:00:00.000Z".into(),
        next_attempt_at: "2026-12-01T00:00:00.000Z".into(),
        sent_at: String::new(),
    };
    f.runtime
        .block_on(f.store.notify.plan(
            "api-test",
            1,
            "2026-12-01T00:00:00.000Z",
            &[
                (row("d-1", &format!("{ns}/criticals")), None),
                (row("d-2", "elsewhere/rule"), None),
            ],
        ))
        .unwrap();
    let d = "/api/v1/notify/deliveries";
    let all = f.get(d, Some(&f.tokens.reader)).json();
    assert_eq!(all["count"], 2, "{all}");
    let mine = f
        .get(
            &format!("{d}?rule={ns}/criticals&status=dead"),
            Some(&f.tokens.reader),
        )
        .json();
    assert_eq!(mine["count"], 1, "{mine}");
    let item = &mine["items"][0];
    assert_eq!(
        (
            item["id"].as_str(),
            item["eventId"].as_str(),
            item["attempts"].as_i64()
        ),
        (Some("d-1"), Some("event-d-1"), Some(5))
    );
    assert!(item["lastError"].as_str().unwrap().contains("HTTP 500"));
    assert!(item["sentAt"].is_null());
    // The namespaced reader sees its namespace's, not the cluster's.
    let by_ns = f
        .get(&format!("{d}?namespace={ns}"), Some(&f.tokens.ns_reader))
        .json();
    assert_eq!(by_ns["count"], 1, "{by_ns}");
    assert_eq!(f.get(d, Some(&f.tokens.ns_reader)).error(403), "forbidden");
    assert_eq!(f.get(d, Some(&f.tokens.nobody)).error(403), "forbidden");
    assert_eq!(f.get(d, None).error(401), "unauthenticated");
    for bad in [
        "status=lost",
        "limit=0",
        "limit=501",
        "limit=x",
        "rule=no-slash",
        "rule=../etc/passwd",
        "namespace=Bad_NS",
        "extra=1",
    ] {
        assert_eq!(
            f.get(&format!("{d}?{bad}"), Some(&f.tokens.reader))
                .error(400),
            "bad_request",
            "{bad}"
        );
    }

    // Test sends, through channels the API resolves from the API server.
    let (ok_port, got) = receiver(200);
    let (failing_port, _) = receiver(500);
    let channels: Api<stella_crds::notify::v1alpha1::NotifyChannel> =
        Api::namespaced(f.admin.clone(), ns);
    for (name, spec) in [
        (
            "hook",
            json!({"type": "webhook", "endpoint": format!("http://127.0.0.1:{ok_port}/hook"), "allowHosts": ["127.0.0.1"]}),
        ),
        (
            "failing",
            json!({"type": "webhook", "endpoint": format!("http://127.0.0.1:{failing_port}/hook"), "allowHosts": ["127.0.0.1"]}),
        ),
        (
            "guarded",
            json!({"type": "webhook", "endpoint": format!("http://127.0.0.1:{ok_port}/hook")}),
        ),
        (
            "no-secret",
            json!({"type": "slack", "secretRef": {"name": "absent", "key": "url"}}),
        ),
    ] {
        let channel: stella_crds::notify::v1alpha1::NotifyChannel =
            serde_json::from_value(json!({"apiVersion": "stella-ops.org/v1alpha1",
                "kind": "NotifyChannel", "metadata": {"name": name}, "spec": spec}))
            .unwrap();
        f.runtime
            .block_on(channels.patch(
                name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&channel),
            ))
            .unwrap();
    }
    let t = "/api/v1/notify/test";
    let send = |channel: &str, token: &str| {
        f.post(
            t,
            Some(token),
            &json!({"channel": format!("{ns}/{channel}")}),
        )
    };
    let sent = send("hook", &f.tokens.editor);
    assert_eq!(sent.status, 200, "{}", String::from_utf8_lossy(&sent.body));
    assert_eq!(sent.json()["status"], "sent");
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let event: Value = serde_json::from_slice(&bodies[0]).unwrap();
    assert_eq!(event["type"], "notify.test");
    assert_eq!(event["subject"], format!("{ns}/hook"));
    // The receiver's 500: 502, retryable; the SSRF guard: 502, not retryable; an unresolvable
    // channel: 409 with its reason; none at all: 404.
    // The error carries `retryable` beside its code and message.
    let delivery_failed = |reply: Reply| {
        assert_eq!(
            reply.status,
            502,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let error = reply.json()["error"].clone();
        assert_eq!(error["code"], "delivery_failed", "{error}");
        error
    };
    let failed = delivery_failed(send("failing", &f.tokens.editor));
    assert_eq!(failed["retryable"], true, "{failed}");
    assert_eq!(failed["message"], "HTTP 500");
    let guarded = delivery_failed(send("guarded", &f.tokens.editor));
    assert_eq!(guarded["retryable"], false, "{guarded}");
    assert!(
        guarded["message"].as_str().unwrap().contains("allowHosts"),
        "{guarded}"
    );
    let unresolved = send("no-secret", &f.tokens.editor);
    assert_eq!(unresolved.error(409), "conflict");
    assert!(
        unresolved.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SecretNotFound")
    );
    assert_eq!(send("absent", &f.tokens.editor).error(404), "not_found");
    // Readers may not send; nothing more reached the receiver.
    assert_eq!(send("hook", &f.tokens.reader).error(403), "forbidden");
    assert_eq!(got.lock().unwrap().len(), 1);
    // Garbage bodies.
    for bad in [
        json!(["x"]),
        json!({"channel": "no-slash"}),
        json!({"channel": format!("{ns}/hook"), "extra": 1}),
        json!({"channel": format!("{ns}/hook"), "target": "a\r\nBcc: b"}),
        json!({"channel": 7}),
    ] {
        assert_eq!(
            f.post(t, Some(&f.tokens.editor), &bad).error(400),
            "bad_request",
            "{bad}"
        );
    }
    // Over 1 MiB: refused from the declared length, before the body is sent.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    write!(
        stream,
        "POST {t} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        f.tokens.editor,
        api::MAX_BODY_BYTES + 1
    )
    .unwrap();
    assert_eq!(read_reply(stream).error(413), "payload_too_large");
}
