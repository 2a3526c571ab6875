//! A real two-layer image of language packages (e2e/images/build-lang.sh): a `pip install
//! --target` tree, an `npm install` with scoped and nested packages, Debian's jars (one war
//! nesting two), Go binaries. Expected packages come from `pip list --path`, `npm ls --all
//! --json`, the archives' own pom.properties and `go version -m`; findings from OSV records.

use super::{stella, test_image};

#[test]
fn language_installs_match_the_tools_own_listing() {
    let Some(dir) = test_image("build-lang.sh", "lang") else {
        return;
    };
    let expected = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (pypi, npm, maven) = (
        expected("expected-pypi.txt"),
        expected("expected-npm.txt"),
        expected("expected-maven.txt"),
    );
    let go = expected("expected-go.txt");
    assert!(pypi.len() >= 5 && npm.len() >= 10, "{pypi:?} {npm:?}");
    let data = tempfile::tempdir().unwrap();
    let target = format!("{}:lang", dir.join("oci").display());
    let out = stella()
        .args(["scan", &target, "--quiet", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers: Vec<String> = bom["metadata"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("stellaops:layer."))
        .map(|p| p["value"].as_str().unwrap().to_string())
        .collect();
    let (mut found_pypi, mut found_npm, mut found_maven, mut found_go) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in bom["components"].as_array().unwrap() {
        let Some(purl) = c["purl"].as_str() else {
            continue;
        };
        let layer = c["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "stellaops:layerDigest")
            .and_then(|p| layers.iter().position(|l| p["value"] == l.as_str()));
        let line = format!(
            "{} {}",
            c["name"].as_str().unwrap(),
            c["version"].as_str().unwrap_or("")
        );
        if purl.starts_with("pkg:pypi/") {
            assert_eq!(layer, Some(0), "{purl}");
            found_pypi.push(line);
        } else if purl.starts_with("pkg:npm/") {
            assert_eq!(layer, Some(1), "{purl}");
            if line.starts_with('@') {
                assert!(purl.starts_with("pkg:npm/%40"), "{purl}");
            }
            found_npm.push(line);
        } else if purl.starts_with("pkg:golang/") {
            assert_eq!(layer, Some(3), "{purl}");
            found_go.push(line);
        } else if purl.starts_with("pkg:maven/") {
            assert_eq!(layer, Some(2), "{purl}");
            found_maven.push(line);
        }
    }
    found_maven.sort();
    assert_eq!(found_maven, maven);
    // Go: Debian's umoci (no module information: its toolchain only) and a module build.
    found_go.sort();
    assert_eq!(found_go, go);
    // The war's libraries are located inside it.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/app/java/app.war!/WEB-INF/lib/guava.jar"),
        "nested location missing"
    );
    // pip lists each distribution once; npm ls once per name@version (a copy installed at two
    // nesting depths is two components with one purl).
    found_pypi.sort();
    found_npm.sort();
    found_npm.dedup();
    assert_eq!(found_pypi, pypi);
    assert_eq!(found_npm, npm);

    // Findings for language packages: OSV records for PyPI and npm, one fixed below the
    // installed version (no finding) and one above (a finding), read off the listings.
    let version_of = |list: &[String], name: &str| {
        list.iter()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap()
            .to_string()
    };
    assert_eq!(version_of(&npm, "lodash"), "4.17.20");
    assert_eq!(version_of(&pypi, "requests"), "2.31.0");
    let feeds = data.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let record = |id: &str, ecosystem: &str, name: &str, fixed: &str| {
        std::fs::write(
            feeds.join(format!("{id}.json")),
            serde_json::json!({"id": id, "modified": "2026-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]})
            .to_string(),
        )
        .unwrap();
    };
    record("GHSA-35jh-r3h4-6jhm", "npm", "lodash", "4.17.21");
    record("GHSA-9wx4-h78v-vm56", "PyPI", "requests", "2.32.0");
    record("TEST-OLD-1", "PyPI", "requests", "2.20.0");
    record("TEST-OLD-2", "npm", "@babel/code-frame", "7.0.0");
    // guava 31.1-jre is below 32.0.0-android's fix in Maven's order (CVE-2023-2976).
    record(
        "GHSA-7g45-4rm6-3mm3",
        "Maven",
        "com.google.guava:guava",
        "32.0.0-android",
    );
    let out = stella()
        .args(["feeds", "import"])
        .arg(&feeds)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = stella()
        .args([
            "scan",
            &target,
            "--quiet",
            "--format",
            "findings-json",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<(&str, &str)> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap(),
                f["evidence"]["comparator"].as_str().unwrap(),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("GHSA-35jh-r3h4-6jhm", "semver"),
            ("GHSA-7g45-4rm6-3mm3", "maven"),
            ("GHSA-9wx4-h78v-vm56", "pep440")
        ]
    );
}
