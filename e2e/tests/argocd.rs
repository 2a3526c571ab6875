//! Argo CD health for every kind: `config/argocd/health.lua` run with Debian's `lua5.4` over
//! each case of `config/argocd/tests/<Kind>/health_test.yaml` (Argo CD's own convention:
//! status and message must both match), and the `argocd-cm` patch users apply carrying exactly
//! that script for each kind. The operator test runs the same script over objects read back
//! from the real API server.

use serde_json::Value;
use stella_e2e::{argocd, repo_root};

/// The kinds a controller writes status for (SymbolSource has none yet: no script, so Argo CD
/// shows it without a health state rather than "Progressing" forever).
const KINDS: [&str; 6] = [
    "Scan",
    "Policy",
    "FeedSource",
    "Schedule",
    "NotifyRule",
    "NotifyChannel",
];

#[test]
fn health_cases_of_every_kind() {
    if !argocd::available() {
        return;
    }
    let mut ran = 0;
    for kind in KINDS {
        let dir = repo_root().join("config/argocd/tests").join(kind);
        let tests: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(dir.join("health_test.yaml")).unwrap())
                .unwrap();
        let mut statuses = std::collections::BTreeSet::new();
        for case in tests["tests"].as_array().unwrap() {
            let input = dir.join(case["inputPath"].as_str().unwrap());
            let object: Value =
                serde_saphyr::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
            assert_eq!(object["kind"], kind, "{}", input.display());
            let (status, message) = argocd::health(&object);
            assert_eq!(
                (status.as_str(), message.as_str()),
                (
                    case["healthStatus"]["status"].as_str().unwrap(),
                    case["healthStatus"]["message"].as_str().unwrap()
                ),
                "{}",
                input.display()
            );
            statuses.insert(status);
            ran += 1;
        }
        assert!(
            statuses.contains("Healthy") && statuses.contains("Degraded") || kind == "Schedule",
            "{kind}: cases for Healthy and Degraded"
        );
    }
    assert!(ran >= 20, "{ran} cases");
}

#[test]
fn the_argocd_cm_patch_carries_the_script_for_every_kind() {
    let script = std::fs::read_to_string(argocd::script()).unwrap();
    let path = repo_root().join("config/argocd/argocd-cm.yaml");
    let mut expected = String::from(
        "# Merge into Argo CD's argocd-cm ConfigMap (kubectl -n argocd patch configmap argocd-cm\n\
         # --patch-file config/argocd/argocd-cm.yaml): health for every Stella Ops kind from its\n\
         # kstatus conditions. Generated from config/argocd/health.lua (e2e/tests/argocd.rs keeps\n\
         # them equal; STELLA_UPDATE_GOLDEN=1 rewrites this file).\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\n  labels:\n    app.kubernetes.io/part-of: argocd\ndata:\n",
    );
    for kind in KINDS {
        expected.push_str(&format!(
            "  resource.customizations.health.stella-ops.org_{kind}: |\n"
        ));
        for line in script.lines() {
            if line.is_empty() {
                expected.push('\n');
            } else {
                expected.push_str(&format!("    {line}\n"));
            }
        }
    }
    if std::env::var_os("STELLA_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written, expected, "regenerate with STELLA_UPDATE_GOLDEN=1");
    // It is a ConfigMap whose values are the script itself.
    let parsed: Value = serde_saphyr::from_str(&written).unwrap();
    for kind in KINDS {
        assert_eq!(
            parsed["data"][format!("resource.customizations.health.stella-ops.org_{kind}")]
                .as_str()
                .unwrap(),
            script
        );
    }
}

#[test]
fn the_lua_conversion_keeps_strings_exact() {
    if !argocd::available() {
        return;
    }
    let hostile = "quote \" backslash \\ newline \n tab \t é ]] --[[ \u{0}";
    let object = serde_json::json!({"kind": "Policy", "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "False", "reason": "InvalidPolicy", "message": hostile}]}});
    let (status, message) = argocd::health(&object);
    assert_eq!(status, "Degraded");
    assert_eq!(message, format!("InvalidPolicy: {hostile}"));
}
