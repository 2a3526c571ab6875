//! The install manifests: `kubectl kustomize` renders them, they hold the security properties we
//! promise, and `kubectl apply --dry-run=server` of every rendered object succeeds against the
//! API server.

use crate::crds::install_crds;
use crate::{cluster, repo_root, run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use stella_e2e::compat::{strip_cel_rules, supports_cel};

const OVERLAYS: [&str; 3] = [
    "config/default",
    "config/overlays/admission-dry-run",
    "config/overlays/admission-enforce",
];

/// Renders a kustomization into its objects.
fn render(dir: &str) -> Vec<Value> {
    let yaml =
        run(Command::new("kubectl")
            .args(["kustomize", &repo_root().join(dir).display().to_string()]));
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&yaml).unwrap_or_else(|e| panic!("{dir}: {e}"));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| o["kind"] == kind)
}

#[test]
fn manifests_render_with_least_privilege_and_locked_down_pods() {
    for dir in OVERLAYS {
        let objects = render(dir);
        let kinds: BTreeSet<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        for kind in [
            "Namespace",
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "Deployment",
            "DaemonSet",
            "Service",
            "ValidatingWebhookConfiguration",
        ] {
            assert!(kinds.contains(kind), "{dir}: no {kind}");
        }
        assert_eq!(
            of_kind(&objects, "CustomResourceDefinition").count(),
            7,
            "{dir}"
        );
        let accounts: BTreeSet<&str> = of_kind(&objects, "ServiceAccount")
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            accounts,
            BTreeSet::from([
                "stella-operator",
                "stella-worker",
                "stella-webhook",
                "stella-observer",
                "stella-storage"
            ])
        );

        // Every namespaced object lands in stella-system.
        for object in &objects {
            let kind = object["kind"].as_str().unwrap();
            let namespaced = !matches!(
                kind,
                "Namespace"
                    | "CustomResourceDefinition"
                    | "ClusterRole"
                    | "ClusterRoleBinding"
                    | "ValidatingWebhookConfiguration"
            );
            if namespaced {
                assert_eq!(
                    object["metadata"]["namespace"], "stella-system",
                    "{dir}: {kind}"
                );
            }
        }

        // No wildcard verbs or resources, and secrets are never listed or watched cluster-wide.
        for role in of_kind(&objects, "ClusterRole").chain(of_kind(&objects, "Role")) {
            let name = role["metadata"]["name"].as_str().unwrap();
            for rule in role["rules"].as_array().unwrap() {
                let strings = |key: &str| -> Vec<String> {
                    rule[key]
                        .as_array()
                        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                        .unwrap_or_default()
                };
                assert!(
                    !strings("verbs").contains(&"*".to_string()),
                    "{name}: wildcard verb"
                );
                assert!(
                    !strings("resources").contains(&"*".to_string()),
                    "{name}: wildcard resource"
                );
                if role["kind"] == "ClusterRole"
                    && strings("resources").contains(&"secrets".to_string())
                {
                    assert_eq!(
                        strings("verbs"),
                        ["get"],
                        "{name}: secrets beyond get, cluster-wide"
                    );
                }
            }
        }

        // Pods: resources, no privilege escalation, read-only root; non-root except the observer.
        for workload in of_kind(&objects, "Deployment")
            .chain(of_kind(&objects, "DaemonSet"))
            .chain(of_kind(&objects, "StatefulSet"))
        {
            let name = workload["metadata"]["name"].as_str().unwrap();
            let pod = &workload["spec"]["template"]["spec"];
            assert!(
                pod["serviceAccountName"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("stella-")),
                "{name}"
            );
            for container in pod["containers"].as_array().unwrap() {
                let security = &container["securityContext"];
                assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
                assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
                assert_eq!(
                    security["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{name}"
                );
                for bound in ["requests", "limits"] {
                    assert!(
                        container["resources"][bound]["memory"].is_string(),
                        "{name}: no memory {bound}"
                    );
                    assert!(
                        container["resources"][bound]["cpu"].is_string(),
                        "{name}: no cpu {bound}"
                    );
                }
                if name != "stella-observer" {
                    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
                }
            }
        }

        // The webhook never sees the control plane or us, answers fast, and fails open.
        let webhook = of_kind(&objects, "ValidatingWebhookConfiguration")
            .next()
            .unwrap();
        for hook in webhook["webhooks"].as_array().unwrap() {
            assert_eq!(hook["failurePolicy"], "Ignore", "{dir}");
            assert!(hook["timeoutSeconds"].as_u64().unwrap() <= 10, "{dir}");
            let excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"].to_string();
            for ns in ["kube-system", "kube-node-lease", "stella-system"] {
                assert!(excluded.contains(ns), "{dir}: {ns} not excluded");
            }
            assert_eq!(
                hook["clientConfig"]["service"]["namespace"],
                "stella-system"
            );
        }
        let mode = of_kind(&objects, "Deployment")
            .find(|d| d["metadata"]["name"] == "stella-webhook")
            .map(|d| d["spec"]["template"]["spec"]["containers"][0]["args"].to_string())
            .unwrap();
        let expected = if dir.ends_with("enforce") {
            "--mode=enforce"
        } else {
            "--mode=dry-run"
        };
        assert!(mode.contains(expected), "{dir}: webhook args {mode}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_pass_server_side_dry_run() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client().await.unwrap();
    let cel = supports_cel(&client.apiserver_version().await.unwrap());
    // The CRDs and the namespace exist for real first, as `kubectl apply` would create them
    // before the objects that need them.
    install_crds(&client).await;
    let served: BTreeSet<String> = run(cluster.kubectl().arg("api-versions"))
        .lines()
        .map(str::to_string)
        .collect();

    for dir in OVERLAYS {
        let mut objects = render(dir);
        let namespace: Vec<Value> = of_kind(&objects, "Namespace").cloned().collect();
        apply(cluster, &namespace, false);

        let mut skipped = Vec::new();
        objects.retain(|o| {
            let api_version = o["apiVersion"].as_str().unwrap();
            let keep = served.contains(api_version);
            if !keep {
                skipped.push(format!("{} {}", o["kind"].as_str().unwrap(), api_version));
            }
            keep
        });
        if !cel {
            objects.iter_mut().for_each(strip_cel_rules);
        }
        // Only API versions newer than the server (policy/v1 needs Kubernetes 1.21) may be skipped.
        for entry in &skipped {
            assert_eq!(
                entry, "PodDisruptionBudget policy/v1",
                "{dir}: {entry} not served"
            );
            eprintln!("{dir}: {entry} is not served by this API server; skipped");
        }
        let output = apply(cluster, &objects, true);
        let answered = output
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(answered, objects.len(), "{dir}:\n{output}");
    }
}

/// `kubectl apply` of these objects, for real or as a server-side dry run.
fn apply(cluster: &stella_e2e::TestCluster, objects: &[Value], dry_run: bool) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(file.path(), serde_json::to_vec(&list).unwrap()).unwrap();
    let mut command = cluster.kubectl();
    command.args(["apply", "-f"]).arg(file.path());
    if dry_run {
        command.arg("--dry-run=server");
    }
    run(&mut command)
}
