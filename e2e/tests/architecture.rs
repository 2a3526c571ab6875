//! The README's crate graph is the workspace's (each crate's normal dependencies on workspace
//! crates), and no engine crate depends on Kubernetes' client crates.

use crate::repo_root;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// The engine: domain logic that must build without `kube`.
const ENGINE: [&str; 16] = [
    "model",
    "acquire",
    "layerfs",
    "analyzers",
    "entrytrace",
    "sbom",
    "advisories",
    "vex",
    "policy",
    "verdict",
    "scan",
    "store",
    "pipeline",
    "feeds",
    "notify",
    "attest",
];

fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(repo_root());
    command
}

/// `crate → its workspace dependencies`, from `cargo metadata`.
fn workspace_graph() -> BTreeMap<String, BTreeSet<String>> {
    let output = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let names: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let short = |name: &str| name.strip_prefix("stella-").unwrap_or(name).to_string();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap())
                .filter(|d| names.contains(d))
                .map(short)
                .collect();
            (short(p["name"].as_str().unwrap()), deps)
        })
        .collect()
}

/// The graph the README draws after its `<!-- crate-graph -->` marker.
fn readme_graph() -> BTreeMap<String, BTreeSet<String>> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let block = readme
        .split_once("<!-- crate-graph -->\n```\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(block, _)| block)
        .expect("README.md draws the crate graph after <!-- crate-graph -->");
    let mut graph = BTreeMap::new();
    for line in block.lines() {
        let (crates, deps) = line
            .split_once('→')
            .unwrap_or_else(|| panic!("not `crate → deps`: {line:?}"));
        let deps: BTreeSet<String> = match deps.trim() {
            "(none)" => BTreeSet::new(),
            list => list.split(',').map(|d| d.trim().to_string()).collect(),
        };
        for name in crates.split(',') {
            graph.insert(name.trim().to_string(), deps.clone());
        }
    }
    graph
}

#[test]
fn the_readme_draws_the_crate_graph_cargo_builds() {
    assert_eq!(readme_graph(), workspace_graph());
}

#[test]
fn engine_crates_build_without_kubernetes_client_crates() {
    for name in ENGINE {
        let output = cargo()
            .args([
                "tree",
                "-e",
                "normal",
                "--offline",
                "--all-features",
                "--prefix",
                "none",
            ])
            .args(["-p", &format!("stella-{name}")])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let tree = String::from_utf8(output.stdout).unwrap();
        let kube: Vec<&str> = tree
            .lines()
            .filter(|l| l.starts_with("kube") || l.starts_with("k8s-openapi"))
            .collect();
        assert!(kube.is_empty(), "stella-{name} depends on {kube:?}");
    }
}
