//! Monitoring: the alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`, Debian's prometheus package), the kustomize component's
//! PrometheusRule and the chart's carry exactly those rules, the ServiceMonitors point at the
//! Services' metrics ports, and the dashboard queries only metrics the rules' sources name.
//! That every monitored metric is really served is checked where the real endpoints are
//! scraped: the operator test and the webhook's admission test.

use serde_json::Value;
use std::process::Command;
use stella_e2e::{repo_root, run};

fn promtool() -> bool {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return true;
    }
    stella_e2e::services::skip("promtool is not installed (apt-get install prometheus)");
    false
}

#[test]
fn the_rules_check_and_their_tests_pass() {
    if !promtool() {
        return;
    }
    let dir = repo_root().join("config/monitoring");
    run(Command::new("promtool")
        .args(["check", "rules", "alerts.yaml"])
        .current_dir(&dir));
    run(Command::new("promtool")
        .args(["test", "rules", "alerts.test.yaml"])
        .current_dir(&dir));
    // The tests are not vacuous: a rule that never fires fails them.
    let scratch = tempfile::tempdir().unwrap();
    let broken = std::fs::read_to_string(dir.join("alerts.yaml"))
        .unwrap()
        .replace("> 2 * 86400", "> 200 * 86400");
    std::fs::write(scratch.path().join("alerts.yaml"), broken).unwrap();
    std::fs::copy(
        dir.join("alerts.test.yaml"),
        scratch.path().join("alerts.test.yaml"),
    )
    .unwrap();
    let failed = Command::new("promtool")
        .args(["test", "rules", "alerts.test.yaml"])
        .current_dir(scratch.path())
        .output()
        .unwrap();
    assert!(
        !failed.status.success(),
        "a rule that cannot fire passed its test"
    );
}

#[test]
fn the_prometheus_rule_and_the_chart_carry_the_rules() {
    let dir = repo_root().join("config/monitoring");
    let alerts: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("alerts.yaml")).unwrap()).unwrap();
    let path = dir.join("prometheusrule.yaml");
    let expected = format!(
        "# Generated from alerts.yaml (e2e/tests/monitoring.rs keeps them equal; STELLA_UPDATE_GOLDEN=1\n# rewrites this file).\n{}\n",
        serde_json::to_string_pretty(&serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "stella-ops", "labels": {"app.kubernetes.io/component": "monitoring"}},
            "spec": alerts,
        }))
        .unwrap()
    );
    if std::env::var_os("STELLA_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        expected,
        "regenerate with STELLA_UPDATE_GOLDEN=1"
    );
    let rendered = run(Command::new("kubectl").args([
        "kustomize",
        &repo_root()
            .join("config/overlays/monitoring")
            .display()
            .to_string(),
    ]));
    let objects: Vec<Value> = serde_saphyr::from_multiple(&rendered).unwrap();
    let rule = objects
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .unwrap();
    assert_eq!(rule["spec"], alerts);
    assert_eq!(rule["metadata"]["namespace"], "stella-system");
    let monitors: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ServiceMonitor")
        .collect();
    assert_eq!(monitors.len(), 2);
    // Each ServiceMonitor names a port its Service has.
    for monitor in &monitors {
        let name = monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].clone();
        let service = objects
            .iter()
            .find(|o| {
                o["kind"] == "Service" && o["metadata"]["labels"]["app.kubernetes.io/name"] == name
            })
            .unwrap();
        let port = &monitor["spec"]["endpoints"][0]["port"];
        assert!(
            service["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| &p["name"] == port),
            "{name}: no port {port}"
        );
    }
    // The chart, with monitoring on: the same rules, both monitors and the dashboard.
    let Some(helm) = [
        "helm".to_string(),
        format!(
            "{}/.cache/stella/bin/helm",
            std::env::var("HOME").unwrap_or_default()
        ),
    ]
    .into_iter()
    .find(|h| {
        Command::new(h)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        stella_e2e::services::skip("helm is not installed (.ci/install-deps.sh installs Helm 4)");
        return;
    };
    let chart = run(Command::new(&helm).args([
        "template",
        "stella-ops",
        &repo_root()
            .join("config/helm/stella-ops")
            .display()
            .to_string(),
        "--set",
        "monitoring.serviceMonitor=true",
        "--set",
        "monitoring.prometheusRule=true",
        "--set",
        "monitoring.dashboard=true",
    ]));
    let objects: Vec<Value> = serde_saphyr::from_multiple(&chart).unwrap();
    let rule = objects
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .unwrap();
    assert_eq!(rule["spec"], alerts);
    assert_eq!(
        objects
            .iter()
            .filter(|o| o["kind"] == "ServiceMonitor")
            .count(),
        2
    );
    let dashboard = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "stella-ops-dashboard")
        .unwrap();
    let shipped: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dashboard.json")).unwrap())
            .unwrap();
    let carried: Value =
        serde_json::from_str(dashboard["data"]["stella-ops.json"].as_str().unwrap()).unwrap();
    assert_eq!(carried, shipped);
}

#[test]
fn the_dashboard_covers_what_users_look_at() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("config/monitoring/dashboard.json")).unwrap(),
    )
    .unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    for wanted in [
        "stella_scan_verdicts",
        "stella_scan_findings",
        "stella_webhook_admission_decisions_total",
        "stella_webhook_admission_duration_seconds_bucket",
        "stella_feed_age_seconds",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(wanted)),
            "no panel queries {wanted}"
        );
    }
    // Bounded labels only: the findings gauge is by namespace and severity, never by CVE.
    assert!(
        exprs
            .iter()
            .all(|e| !e.contains("cve") && !e.contains("image"))
    );
    let names = stella_e2e::monitoring::monitored();
    assert!(names.contains("stella_operator_leader"), "{names:?}");
}
