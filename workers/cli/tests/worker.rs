//! `stella-worker` as a Job runs it, against a real registry (Debian's `docker-registry`), a
//! real PostgreSQL and a real S3 server (moto): the artifacts land where the catalog says with
//! the recorded digests and sizes, the result and the run are recorded, and every ending —
//! success, unreachable registry, bad credentials, broken policy, unreachable catalog, bad
//! flags — exits with its class and says why in one JSON line on stdout and in the
//! termination log. The worker writes nowhere but its data directory and that log.

use super::s3::moto::Moto;
use super::{PgDatabase, Registry, have_tools, stella, test_image};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use stella_store::{AdvisoryDb, Catalog, Store};

fn worker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stella-worker"))
}

/// A Job's view of the machine: an empty home, temporary directory, XDG directories and
/// working directory (all must stay empty), the data directory, and the termination log's
/// directory. Nothing of the caller's environment leaks in.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        for dir in ["home", "tmp", "cwd", "xdg", "term", "inputs"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        Sandbox { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn data(&self) -> PathBuf {
        self.path("data")
    }

    fn termination_log(&self) -> PathBuf {
        self.path("term/termination-log")
    }

    /// The worker for `image` as run `run_id`, with `env` on top of a bare environment.
    fn run(&self, image: &str, run_id: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = worker();
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("TMPDIR", self.path("tmp"))
            .env("XDG_DATA_HOME", self.path("xdg"))
            .env("XDG_CACHE_HOME", self.path("xdg"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("STELLA_DATA_DIR", self.data())
            .current_dir(self.path("cwd"))
            .args(["--image", image, "--run-id", run_id, "--insecure-registry"])
            .arg("--termination-log")
            .arg(self.termination_log())
            .args(extra)
            .envs(env.iter().copied());
        command.output().unwrap()
    }

    /// Nothing was written outside the data directory and the termination log.
    fn untouched(&self) {
        for dir in ["home", "tmp", "cwd", "xdg"] {
            let found: Vec<_> = std::fs::read_dir(self.path(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert!(found.is_empty(), "the worker wrote {found:?}");
        }
    }
}

/// The final JSON line: the last line of stdout, the same as the termination log.
fn ending(sandbox: &Sandbox, out: &Output, code: i32) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let logged = std::fs::read_to_string(sandbox.termination_log()).unwrap();
    assert_eq!(logged, line, "the termination log holds the same line");
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    let expected = if code == 0 { "succeeded" } else { "failed" };
    assert_eq!(value["outcome"], expected, "{value}");
    // Progress goes to stderr as plain lines, never progress bars.
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\r'));
    value
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The advisories (three on dash: critical, high, medium) and the VEX statement (the high one
/// does not affect dash) imported into the catalog at `url`.
fn import_feeds(url: &str, inputs: &Path) {
    let feeds = inputs.join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    for (id, vector) in [
        (
            "CVE-2099-3001",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ),
        (
            "CVE-2099-3002",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
        ),
        (
            "CVE-2099-3003",
            "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N",
        ),
    ] {
        let record = serde_json::json!({"id": id, "modified": "2099-01-01T00:00:00Z",
            "severity": [{"type": "CVSS_V3", "score": vector}],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99:1"}]}]}]});
        std::fs::write(feeds.join(format!("{id}.json")), record.to_string()).unwrap();
    }
    let vex = serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://debian.example/vex/3002",
        "author": "Debian", "timestamp": "2099-02-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2099-3002"},
            "products": [{"@id": "pkg:deb/debian/dash"}],
            "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]});
    std::fs::write(inputs.join("vex.json"), vex.to_string()).unwrap();
    let data = inputs.join("importer");
    for args in [
        vec!["feeds", "import", feeds.to_str().unwrap()],
        vec!["vex", "import", inputs.join("vex.json").to_str().unwrap()],
    ] {
        ok(stella()
            .args(&args)
            .arg("--data-dir")
            .arg(&data)
            .env("STELLA_CATALOG_URL", url)
            .output()
            .unwrap());
    }
}

/// A `Policy` as `kubectl get -o json` prints it: server metadata and status included.
fn policy_object() -> String {
    serde_json::json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy",
        "metadata": {"name": "baseline", "uid": "6f1c0e52", "resourceVersion": "4711", "generation": 2,
            "creationTimestamp": "2026-11-28T08:00:00Z",
            "managedFields": [{"manager": "kubectl", "operation": "Apply",
                "apiVersion": "stella-ops.org/v1alpha1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
        "spec": {"version": "1.0", "rules": [
            {"name": "Block Critical", "severity": ["Critical"], "action": "block"},
            {"name": "Warn Medium", "severity": ["Medium"], "action": "warn"}]},
        "status": {"digest": format!("sha256:{}", "0".repeat(64)), "ruleCount": 2, "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Valid", "message": "valid",
                "lastTransitionTime": "2026-11-28T08:00:00Z", "observedGeneration": 2}]}
    })
    .to_string()
}

#[test]
fn the_worker_scans_into_postgres_and_s3_and_reports_every_ending() {
    if !have_tools(&["docker-registry", "skopeo", "htpasswd"]) {
        return;
    }
    let Some(layout) = test_image("build-debian.sh", "debian-bookworm").map(|d| d.join("oci"))
    else {
        return;
    };
    let Some(pg) = PgDatabase::create("worker") else {
        return;
    };
    let Some(moto) = Moto::start("artifacts") else {
        return;
    };
    let registry = Registry::start(|_| String::new());
    let reference = registry.push(&layout, "bookworm", "stella-test/debian:bookworm", None);
    let sandbox = Sandbox::new();
    import_feeds(&pg.url, &sandbox.path("inputs"));
    let policy = sandbox.path("inputs/policy.json");
    std::fs::write(&policy, policy_object()).unwrap();
    let s3_url = moto.url("artifacts", "cluster");
    let storage = [
        ("STELLA_CATALOG_URL", pg.url.as_str()),
        ("STELLA_OBJECT_STORE", s3_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];

    // Success with a FAIL verdict: the verdict is data, the run succeeded.
    let out = sandbox.run(
        &reference,
        "scan-debian-1",
        &[
            "--policy-file",
            policy.to_str().unwrap(),
            "--namespace",
            "team-a",
            "--environment",
            "prod",
        ],
        &storage,
    );
    let end = ending(&sandbox, &out, 0);
    assert_eq!(end["reason"], "Completed");
    assert_eq!(end["verdict"], "FAIL");
    let digest = end["imageDigest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{end}");
    assert_eq!(
        end.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["imageDigest", "outcome", "reason", "verdict"]
    );
    sandbox.untouched();
    assert!(
        !sandbox.data().join("catalog.db").exists() && !sandbox.data().join("objects").exists(),
        "neither the catalog nor the artifacts are local"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let catalog = Catalog::connect_postgres(&pg.url).await.unwrap();
        let feeds = AdvisoryDb::connect_postgres(&pg.url).await.unwrap();
        let other = tempfile::tempdir().unwrap();
        let bucket = Store::open_embedded(other.path())
            .await
            .unwrap()
            .with_s3_credentials(&s3_url, "test", "test")
            .unwrap();

        // Every artifact the catalog lists is in S3 with the recorded digest and size.
        let artifacts = catalog.artifacts(&digest).await.unwrap();
        let kinds: std::collections::BTreeSet<&str> =
            artifacts.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["bom-index", "inventory", "report", "sbom"]
                .into_iter()
                .collect(),
            "{artifacts:?}"
        );
        // Five SBOMs, the BOM-Index, the inventory, and the report twice: the latest
        // (`report.json`) and its version (`reports/<sha256>.json`, what the result names).
        assert_eq!(artifacts.len(), 9, "{artifacts:?}");
        let reports: Vec<&str> = artifacts
            .iter()
            .filter(|a| a.kind == "report")
            .map(|a| a.digest.as_str())
            .collect();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0], reports[1], "the same bytes");
        for artifact in &artifacts {
            let bytes = bucket
                .get(&artifact.key)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{} is in the catalog but not in S3", artifact.key));
            assert_eq!(sha256(&bytes), artifact.digest, "{}", artifact.key);
            assert_eq!(bytes.len() as i64, artifact.size, "{}", artifact.key);
        }
        let image = catalog.image(&digest).await.unwrap().unwrap();
        assert_eq!(image.layers.len(), 3);
        let inventory = artifacts.iter().find(|a| a.kind == "inventory").unwrap();
        let inventory: stella_sbom::Inventory =
            serde_json::from_slice(&bucket.get(&inventory.key).await.unwrap().unwrap()).unwrap();
        assert_eq!(inventory.image.digest, digest);
        assert_eq!(inventory.components.len() as i64, image.components);

        // The result under its pinned inputs: the feed snapshot of the imports, the policy's
        // digest, counts after VEX.
        let policy_digest = stella_policy::load_file(&policy).unwrap().digest;
        let snapshot = feeds.feed_snapshot().await.unwrap();
        assert_ne!(snapshot, stella_store::EMPTY_FEED_SNAPSHOT);
        let result = catalog
            .result(
                &digest,
                &image.analyzer_version,
                &snapshot,
                Some(&policy_digest),
            )
            .await
            .unwrap()
            .expect("the result under the pinned inputs");
        assert_eq!(
            catalog.latest_result(&digest).await.unwrap(),
            Some(result.clone())
        );
        assert_eq!(result.image_ref, reference);
        assert_eq!(result.verdict.as_deref(), Some("FAIL"));
        assert_eq!(
            (
                result.critical,
                result.high,
                result.medium,
                result.suppressed
            ),
            (1, 0, 1, 1),
            "{result:?}"
        );
        assert_eq!(result.components, image.components);
        assert!(result.vex_snapshot.is_some());
        let report_key = result.report_key.clone().unwrap();
        // The result names its report version, content-addressed (the latest is also at
        // `report.json`).
        let version = report_key
            .strip_prefix(&format!("images/{digest}/reports/"))
            .and_then(|f| f.strip_suffix(".json"))
            .unwrap_or_else(|| panic!("{report_key} is not a report version"));
        let latest = bucket
            .get(&format!("images/{digest}/report.json"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sha256(&latest), format!("sha256:{version}"));
        let report: serde_json::Value =
            serde_json::from_slice(&bucket.get(&report_key).await.unwrap().unwrap()).unwrap();
        assert_eq!(report["verdict"], "FAIL");
        assert_eq!(report["policyDigest"], policy_digest.as_str());
        assert_eq!(report["namespace"], "team-a");

        let run = catalog.run("scan-debian-1").await.unwrap().unwrap();
        assert_eq!(
            (
                run.outcome.as_str(),
                run.reason.as_str(),
                run.image_digest.as_deref()
            ),
            ("succeeded", "Completed", Some(digest.as_str()))
        );
        // The unknowns registry is in PostgreSQL too.
        let store = Store::open(&stella_store::StoreConfig {
            data_dir: other.path().to_path_buf(),
            catalog_url: Some(pg.url.clone()),
            object_store_url: None,
        })
        .await
        .unwrap();
        let unknowns = store
            .unknowns
            .list(&stella_store::UnknownFilter {
                image_digest: Some(digest.clone()),
                all: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(!unknowns.is_empty());
    });

    // Failures: each with its exit class and reason, in the run row and the final line.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("127.0.0.1:{closed}/stella-test/debian:bookworm");
    let end = ending(
        &sandbox,
        &sandbox.run(&unreachable, "scan-unreachable", &[], &storage),
        3,
    );
    assert_eq!(end["reason"], "Unreachable");
    assert!(
        end["message"].as_str().unwrap().contains("unreachable"),
        "{end}"
    );

    let broken = "apiVersion: stella-ops.org/v1alpha1\nkind: Policy\nmetadata: {name: broken}\nspec:\n  version: \"1.0\"\n  rules:\n    - name: typo\n      action: blok\n";
    let mut with_policy = storage.to_vec();
    with_policy.push(("STELLA_POLICY", broken));
    let end = ending(
        &sandbox,
        &sandbox.run(&reference, "scan-broken-policy", &[], &with_policy),
        2,
    );
    assert_eq!(end["reason"], "InvalidPolicy");
    assert!(end["message"].as_str().unwrap().contains("blok"), "{end}");

    let guarded = super::registry::with_basic_auth("alice", "wonderland");
    let private = guarded.push(
        &layout,
        "bookworm",
        "stella-test/debian:bookworm",
        Some("alice:wonderland"),
    );
    let wrong = sandbox.path("inputs/wrong.dockerconfigjson");
    std::fs::write(
        &wrong,
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"username":"alice","password":"nope"}}}}}}"#,
            guarded.port
        ),
    )
    .unwrap();
    let end = ending(
        &sandbox,
        &sandbox.run(
            &private,
            "scan-bad-auth",
            &["--registry-auth-file", wrong.to_str().unwrap()],
            &storage,
        ),
        4,
    );
    assert_eq!(end["reason"], "Unauthorized");

    runtime.block_on(async {
        let catalog = Catalog::connect_postgres(&pg.url).await.unwrap();
        for (run_id, reason) in [
            ("scan-unreachable", "Unreachable"),
            ("scan-broken-policy", "InvalidPolicy"),
            ("scan-bad-auth", "Unauthorized"),
        ] {
            let run = catalog.run(run_id).await.unwrap().unwrap();
            assert_eq!(
                (run.outcome.as_str(), run.reason.as_str(), run.image_digest),
                ("failed", reason, None),
                "{run_id}"
            );
            assert!(!run.message.is_empty());
        }
    });

    // A catalog that cannot be reached: no run row is possible, the final line says why.
    let mut nowhere = storage.to_vec();
    nowhere[0] = ("STELLA_CATALOG_URL", "postgres://nobody@127.0.0.1:1/stella");
    let end = ending(
        &sandbox,
        &sandbox.run(&reference, "scan-no-catalog", &[], &nowhere),
        1,
    );
    assert_eq!(end["reason"], "StorageUnavailable");
    assert!(
        !end["message"].as_str().unwrap().contains("nobody@"),
        "{end}"
    );
    sandbox.untouched();
}

#[test]
fn the_worker_defaults_to_the_embedded_storage_and_refuses_bad_flags() {
    if !have_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let Some(layout) = test_image("build-debian.sh", "debian-bookworm").map(|d| d.join("oci"))
    else {
        return;
    };
    let registry = Registry::start(|_| String::new());
    let reference = registry.push(&layout, "bookworm", "stella-test/debian:bookworm", None);
    let sandbox = Sandbox::new();

    // No policy, no catalog URL, no object store: SQLite and objects under the data directory.
    let end = ending(
        &sandbox,
        &sandbox.run(&reference, "scan-embedded", &[], &[]),
        0,
    );
    assert!(end.get("verdict").is_none(), "{end}");
    let digest = end["imageDigest"].as_str().unwrap().to_string();
    sandbox.untouched();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open_embedded(&sandbox.data()).await.unwrap();
        let artifacts = store.catalog.artifacts(&digest).await.unwrap();
        assert_eq!(
            artifacts.len(),
            7,
            "SBOMs, the index and the inventory; no report without a policy"
        );
        for artifact in &artifacts {
            let bytes = std::fs::read(sandbox.data().join("objects").join(&artifact.key)).unwrap();
            assert_eq!(sha256(&bytes), artifact.digest);
        }
        let result = store.catalog.latest_result(&digest).await.unwrap().unwrap();
        assert_eq!(
            (result.policy_digest, result.verdict, result.report_key),
            (None, None, None)
        );
        assert_eq!(result.feed_snapshot, stella_store::EMPTY_FEED_SNAPSHOT);
        assert_eq!(result.vex_snapshot, None, "no VEX imported");
        let run = store.catalog.run("scan-embedded").await.unwrap().unwrap();
        assert_eq!(run.reason, "Completed");
    });

    // Bad flags: a usage failure, reported the same way (the termination log still found).
    let out = worker()
        .args(["--image", &reference, "--termination-log"])
        .arg(sandbox.termination_log())
        .output()
        .unwrap();
    let end = ending(&sandbox, &out, 2);
    assert_eq!(end["reason"], "InvalidArguments");
    assert!(
        end["message"].as_str().unwrap().contains("--run-id"),
        "{end}"
    );
    let out = sandbox.run("/var/lib/image.tar", "scan-local", &[], &[]);
    let end = ending(&sandbox, &out, 2);
    assert!(
        end["message"]
            .as_str()
            .unwrap()
            .contains("not a registry reference"),
        "{end}"
    );
}

/// `trustBuildTimeSboms`: the image's build-time SBOM (made by `stella sbom --rootfs` from
/// the unpacked image, signed and attached as CI would) is the worker's inventory when its key
/// is trusted — no layer is pulled and the result says where it came from — and is ignored,
/// with the reason in the log, when the key is not.
#[test]
fn the_worker_trusts_a_signed_build_time_sbom_and_pulls_no_layer() {
    if !have_tools(&["docker-registry", "skopeo", "umoci"]) {
        return;
    }
    let Some(image_dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let layout = image_dir.join("oci");
    let registry = Registry::start(|_| String::new());
    let reference = registry.push(&layout, "bookworm", "stella-test/debian:bookworm", None);
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    let digest = sha256(&ok(raw).stdout);
    let manifest: serde_json::Value = serde_json::from_slice(
        &Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name).to_str().unwrap().to_string();
    // CI: the SBOM of the built filesystem, signed, attached to the pushed image.
    ok(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:bookworm", layout.display()))
        .arg(w("bundle"))
        .output()
        .unwrap());
    ok(stella()
        .args([
            "sbom",
            "--rootfs",
            &w("bundle/rootfs"),
            "-o",
            &w("sbom.spdx.json"),
        ])
        .output()
        .unwrap());
    let repository = reference.rsplit_once(':').unwrap().0;
    for key in ["ci", "stranger"] {
        ok(stella()
            .args(["attest", "keygen", "--out", &w(key)])
            .env_remove("COSIGN_PASSWORD")
            .output()
            .unwrap());
    }
    ok(stella()
        .args(["attest", "sign", &w("sbom.spdx.json"), "--image"])
        .arg(format!("{repository}@{digest}"))
        .args(["--key", &w("ci.key"), "-o", &w("sbom.dsse.json")])
        .output()
        .unwrap());
    ok(stella()
        .args([
            "attest",
            "attach",
            &reference,
            &w("sbom.dsse.json"),
            "--insecure-registry",
        ])
        .output()
        .unwrap());
    let expected = std::fs::read_to_string(image_dir.join("expected-3.txt"))
        .unwrap()
        .lines()
        .count();

    // Trusted: the SBOM is the inventory, and no layer blob was fetched.
    let sandbox = Sandbox::new();
    let trusted = std::fs::read_to_string(w("ci.pub")).unwrap();
    let out = sandbox.run(
        &reference,
        "scan-trusted",
        &[],
        &[(
            "STELLA_TRUSTED_SBOM_KEYS",
            &format!(
                "{}\n{}",
                std::fs::read_to_string(w("stranger.pub")).unwrap(),
                trusted
            ),
        )],
    );
    let end = ending(&sandbox, &out, 0);
    assert_eq!(end["imageDigest"], digest.as_str());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("inventory from the build-time SBOM sha256:"),
        "{stderr}"
    );
    assert!(stderr.contains("no layer pulled"), "{stderr}");
    let fetched = files_under(&sandbox.data());
    for layer in &layers {
        assert!(
            !fetched.iter().any(|f| f == layer),
            "layer {layer} was pulled"
        );
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let inventory = runtime.block_on(async {
        let store = Store::open_embedded(&sandbox.data()).await.unwrap();
        let artifacts = store.catalog.artifacts(&digest).await.unwrap();
        stella_pipeline::stored_inventory(&store, &artifacts)
            .await
            .unwrap()
            .unwrap()
    });
    let origin = inventory.origin.clone().expect("the origin is recorded");
    assert_eq!(origin.kind, "build-time-sbom");
    assert_eq!(origin.format, "SPDX 2.3");
    assert_eq!(
        origin.envelope_digest,
        Some(sha256(&std::fs::read(w("sbom.dsse.json")).unwrap()))
    );
    let debs = inventory
        .components
        .iter()
        .filter(|c| c.package.purl.starts_with("pkg:deb/"))
        .count();
    assert_eq!(debs, expected, "the build-time SBOM's packages");
    // What matching needs survives the trip: the source package, the architecture.
    assert!(
        inventory
            .components
            .iter()
            .any(|c| c.package.name == "libc6"
                && c.package.source_name.as_deref() == Some("glibc")
                && c.package.arch.as_deref() == Some("amd64"))
    );
    // The stored CycloneDX says where its content came from.
    let cdx = std::fs::read_to_string(sandbox.data().join("objects").join(
        stella_store::keys::image_artifact(&digest, "inventory", "cdx.json"),
    ))
    .unwrap();
    assert!(cdx.contains("\"stellaops:origin\"") && cdx.contains("build-time-sbom"));

    // Untrusted: the layers are analysed, and the log says why the SBOM was not used.
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &reference,
        "scan-untrusted",
        &[],
        &[(
            "STELLA_TRUSTED_SBOM_KEYS",
            &std::fs::read_to_string(w("stranger.pub")).unwrap(),
        )],
    );
    ending(&sandbox, &out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("build-time SBOM not trusted"), "{stderr}");
    assert!(stderr.contains("analysing the layers"), "{stderr}");
    let fetched = files_under(&sandbox.data());
    assert!(
        layers.iter().all(|l| fetched.iter().any(|f| f == l)),
        "the layers were pulled"
    );
    // A key that is not one: a usage failure, named.
    let out = sandbox.run(
        &reference,
        "scan-bad-key",
        &[],
        &[(
            "STELLA_TRUSTED_SBOM_KEYS",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )],
    );
    let end = ending(&sandbox, &out, 2);
    assert!(
        end["message"]
            .as_str()
            .unwrap()
            .contains("STELLA_TRUSTED_SBOM_KEYS"),
        "{end}"
    );
}

/// The file names under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names
}
