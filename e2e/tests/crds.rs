//! Every generated CRD installs and becomes Established; every sample is accepted and reads
//! back; every invalid sample is rejected naming its field; `kubectl get stella -A` shows the
//! printer columns.

use crate::{cluster, repo_root, run, unique_namespace};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use std::path::Path;
use stella_e2e::compat::supports_cel;

const MANAGER: &str = "stella-e2e";

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
}

fn load<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Installs the committed CRDs (the harness's installer) and checks all seven kinds came.
pub(crate) async fn install_crds(client: &kube::Client) -> Vec<CustomResourceDefinition> {
    let installed = stella_e2e::install_crds(client).await;
    assert_eq!(installed.len(), 7, "seven kinds");
    installed
}

fn api_for(
    client: &kube::Client,
    crds: &[CustomResourceDefinition],
    object: &Value,
    ns: &str,
) -> Api<DynamicObject> {
    let kind = object["kind"].as_str().unwrap();
    let crd = crds.iter().find(|c| c.spec.names.kind == kind).unwrap();
    let gvk = GroupVersionKind::gvk(&crd.spec.group, &crd.spec.versions[0].name, kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
    if crd.spec.scope == "Namespaced" {
        Api::namespaced_with(client.clone(), ns, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    }
}

/// `expected` is contained in `actual` (the server may add defaults).
fn assert_subset(expected: &Value, actual: &Value, at: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let child = format!("{at}.{key}");
                assert!(
                    a.contains_key(key),
                    "{child} missing from the stored object"
                );
                assert_subset(value, &a[key], &child);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{at}: length");
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                assert_subset(e, a, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            assert_eq!(e.as_f64(), a.as_f64(), "{at}");
        }
        _ => assert_eq!(expected, actual, "{at}"),
    }
}

/// `spec.rules[1].action` → `spec.rules.action`.
fn without_indices(field: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in field.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn crds_install_and_samples_round_trip() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client().await.unwrap();
    let crds = install_crds(&client).await;

    let ns = unique_namespace("stella-samples");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();

    // Valid samples: accepted, and read back as written (plus server defaults).
    let mut cluster_scoped = Vec::new();
    for path in yaml_files(&repo_root().join("config/samples")) {
        let object: Value = load(&path);
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let api = api_for(&client, &crds, &object, &ns);
        let dynamic: DynamicObject = serde_json::from_value(object.clone()).unwrap();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&dynamic),
        )
        .await
        .unwrap_or_else(|e| panic!("{} rejected: {e}", path.display()));
        let stored = serde_json::to_value(api.get(&name).await.unwrap()).unwrap();
        assert_subset(
            &object["spec"],
            &stored["spec"],
            &format!("{}: spec", path.display()),
        );
        if stored["metadata"]["namespace"].is_null() {
            cluster_scoped.push((api, name));
        }
    }

    // Invalid samples: rejected with 422, naming the field. CEL rules need Kubernetes >= 1.25;
    // older servers (the local 1.20) ignore them, so those samples are checked only there.
    let version = client.apiserver_version().await.unwrap();
    let cel = supports_cel(&version);
    let mut rejected = 0;
    for path in yaml_files(&repo_root().join("config/samples/invalid")) {
        let object: Value = load(&path);
        let annotations = &object["metadata"]["annotations"];
        let field = annotations["stella-ops.org/expect-invalid"]
            .as_str()
            .unwrap();
        if annotations["stella-ops.org/expect-invalid-by"] == "cel" && !cel {
            eprintln!(
                "{}: CEL rule not checked on Kubernetes {}",
                path.display(),
                version.git_version
            );
            continue;
        }
        let api = api_for(&client, &crds, &object, &ns);
        let dynamic: DynamicObject = serde_json::from_value(object.clone()).unwrap();
        match api.create(&PostParams::default(), &dynamic).await {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{}: {status:?}", path.display());
                // Servers before 1.22 drop list indices from field paths (`spec.actions.throttle`).
                let names = |f: &str| {
                    status.message.contains(&format!("{f}:"))
                        || status.message.contains(&format!("{f} in body"))
                };
                assert!(
                    names(field) || names(&without_indices(field)),
                    "{}: expected the error to name {field}: {}",
                    path.display(),
                    status.message
                );
                rejected += 1;
            }
            Err(other) => panic!("{}: {other}", path.display()),
        }
    }
    assert!(
        rejected >= 20,
        "only {rejected} invalid samples were checked"
    );

    // The status subresource and the printer columns: `kubectl get stella -A`.
    let scans = api_for(&client, &crds, &json!({"kind": "Scan"}), &ns);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let status = json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
        "status": {"phase": "Completed", "imageDigest": digest, "verdict": "FAIL",
                   "counts": {"critical": 3, "high": 14, "medium": 20, "low": 7, "none": 0, "unknown": 1},
                   "components": 212, "observedGeneration": 1}
    });
    scans
        .patch_status(
            "nginx-1-27",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();

    let table = run(cluster.kubectl().args(["get", "stella", "-A"]));
    let header = table
        .lines()
        .find(|l| l.contains("IMAGE"))
        .unwrap_or_else(|| panic!("no Scan table in:\n{table}"));
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "NAMESPACE",
            "NAME",
            "IMAGE",
            "DIGEST",
            "PHASE",
            "VERDICT",
            "READY",
            "CRITICAL",
            "HIGH",
            "AGE"
        ]
    );
    let row = table.lines().find(|l| l.contains("nginx-1-27")).unwrap();
    for cell in [
        ns.as_str(),
        "registry.example.com/library/nginx:1.27.2",
        &digest,
        "Completed",
        "FAIL",
        "3",
        "14",
    ] {
        assert!(
            row.split_whitespace().any(|c| c == cell),
            "{cell} missing from {row:?}"
        );
    }
    for kind in [
        "policy.stella-ops.org/baseline",
        "schedule.stella-ops.org/nightly-eu",
        "symbolsource.stella-ops.org/debian-debuginfod",
        "feedsource.stella-ops.org/osv-debian",
        "notifyrule.stella-ops.org/high-critical-alerts",
        "notifychannel.stella-ops.org/soc-email",
    ] {
        assert!(
            table.contains(kind.split('/').nth(1).unwrap()),
            "{kind} missing from:\n{table}"
        );
    }
    let wide = run(cluster
        .kubectl()
        .args(["get", "scans", "-n", &ns, "-o", "wide"]));
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    for column in ["MEDIUM", "LOW", "COMPONENTS", "POLICY", "ATTESTATION"] {
        assert!(
            header.contains(&column),
            "{column} missing from -o wide: {header:?}"
        );
    }
    let short = run(cluster
        .kubectl()
        .args(["get", "stscan", "-n", &ns, "-o", "name"]));
    assert_eq!(short.trim(), "scan.stella-ops.org/nginx-1-27");

    for (api, name) in cluster_scoped {
        api.delete(&name, &Default::default()).await.unwrap();
    }
    namespaces.delete(&ns, &Default::default()).await.unwrap();
}
