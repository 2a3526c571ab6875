//! `stella scan` as a CI job runs it: SARIF valid against the official schema, `--severity`,
//! `--ignore-unfixed`, `--exit-code` with `--fail-on`, an ignore file (filter without a policy,
//! waivers the report records with one), `--vex` at scan time with `--show-suppressed`,
//! `--quiet`, and CycloneDX 1.5 — on the real Debian image with tracker and OSV records
//! written for its real `dash`.

use super::{stella, test_image};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

struct Fixture {
    data: tempfile::TempDir,
    work: tempfile::TempDir,
    target: String,
    dash: String,
}

fn fixture() -> Option<Fixture> {
    let dir = test_image("build-debian.sh", "debian-bookworm")?;
    let dash = std::fs::read_to_string(dir.join("expected-3.txt"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("dash ")
                .and_then(|rest| rest.split(' ').next())
                .map(str::to_string)
        })
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let feeds = work.path().join("feeds");
    std::fs::create_dir(&feeds).unwrap();
    // Always above what is installed: a fixed version exists and is newer.
    let above = format!("{dash}+deb12u9");
    let tracker = json!({"dash": {
        "CVE-2099-1000": {"description": "high, fixed upstream",
            "releases": {"bookworm": {"status": "resolved", "fixed_version": above, "urgency": "high"}}},
        "CVE-2099-1003": {"description": "medium, no fix",
            "releases": {"bookworm": {"status": "open", "urgency": "medium"}}}
    }});
    std::fs::write(feeds.join("tracker.json"), tracker.to_string()).unwrap();
    let osv = json!({"id": "OSV-2099-1", "modified": "2099-01-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": above}]}]}]});
    std::fs::write(feeds.join("osv.json"), osv.to_string()).unwrap();
    let import = stella()
        .args(["feeds", "import"])
        .arg(&feeds)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", text(&import.stderr));
    Some(Fixture {
        target: format!("{}:bookworm", dir.join("oci").display()),
        data,
        work,
        dash,
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Fixture {
    /// `stella scan` in the work directory (where a `.stellaignore` is looked for).
    fn scan(&self, args: &[&str]) -> Output {
        stella()
            .arg("scan")
            .arg(&self.target)
            .args(args)
            .arg("--data-dir")
            .arg(self.data.path())
            .current_dir(self.work.path())
            .env_remove("STELLA_DATABASE_URL")
            .output()
            .unwrap()
    }

    fn ids(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["--format", "findings-json"];
        all.extend_from_slice(args);
        let out = self.scan(&all);
        assert!(
            out.status.success(),
            "{args:?}: {} {}",
            out.status,
            text(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut ids: Vec<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    fn path(&self, name: &str) -> String {
        self.work.path().join(name).display().to_string()
    }
}

fn sarif_validator() -> Option<jsonschema::Validator> {
    let path = stella_e2e::services::fixtures("schemas/sarif-2.1.0/sarif-schema-2.1.0.json")?;
    let schema: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    Some(
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap(),
    )
}

#[test]
fn filters_and_exit_codes_compose() {
    let Some(f) = fixture() else { return };
    let all = ["CVE-2099-1000", "CVE-2099-1003", "OSV-2099-1"];
    assert_eq!(f.ids(&["--quiet"]), all);
    assert_eq!(
        f.ids(&["--quiet", "--severity", "critical"]),
        ["OSV-2099-1"]
    );
    assert_eq!(
        f.ids(&["--quiet", "--severity", "HIGH,Critical"]),
        ["CVE-2099-1000", "OSV-2099-1"]
    );
    assert_eq!(
        f.ids(&["--quiet", "--severity", "medium", "--severity", "low"]),
        ["CVE-2099-1003"]
    );
    assert_eq!(
        f.ids(&["--quiet", "--ignore-unfixed"]),
        ["CVE-2099-1000", "OSV-2099-1"]
    );
    assert_eq!(
        f.ids(&["--quiet", "--only-fixed"]),
        f.ids(&["--quiet", "--ignore-unfixed"])
    );
    // Without --quiet, the report says what it left out.
    let noted = f.scan(&[
        "--format",
        "table",
        "--severity",
        "critical",
        "--ignore-unfixed",
    ]);
    assert!(noted.status.success());
    assert!(
        text(&noted.stderr).contains("findings not reported: 2 outside --severity"),
        "{}",
        text(&noted.stderr)
    );
    assert_eq!(
        f.scan(&["--quiet", "--format", "table", "--severity", "extreme"])
            .status
            .code(),
        Some(2)
    );

    // --exit-code alone: any reported finding; with --fail-on, at or above it; --fail-on alone
    // keeps its 6. The gate counts only what is reported.
    let code = |args: &[&str]| {
        let mut all = vec!["--quiet", "--format", "table"];
        all.extend_from_slice(args);
        f.scan(&all).status.code()
    };
    assert_eq!(code(&["--exit-code", "13"]), Some(13));
    assert_eq!(code(&["--exit-code", "13", "--severity", "low"]), Some(0));
    assert_eq!(code(&["--fail-on", "critical"]), Some(6));
    assert_eq!(
        code(&["--fail-on", "critical", "--exit-code", "3"]),
        Some(3)
    );
    assert_eq!(
        code(&[
            "--fail-on",
            "high",
            "--severity",
            "medium",
            "--exit-code",
            "3"
        ]),
        Some(0)
    );
    assert_eq!(code(&["--exit-code", "0", "--fail-on", "low"]), Some(0));
    let gate = f.scan(&["--format", "table", "--fail-on", "HIGH"]);
    assert_eq!(gate.status.code(), Some(6));
    assert!(
        text(&gate.stderr).contains("2 vulnerabilities at or above high"),
        "{}",
        text(&gate.stderr)
    );
    // The gate is checked before the policy verdict: its code wins over 7.
    std::fs::write(
        f.path("policy.yaml"),
        "version: '1.0'\nrules:\n  - name: block-all\n    action: block\n",
    )
    .unwrap();
    let policy = f.path("policy.yaml");
    assert_eq!(code(&["--policy", &policy]), Some(7));
    assert_eq!(code(&["--policy", &policy, "--exit-code", "13"]), Some(13));
    assert_eq!(
        code(&[
            "--policy",
            &policy,
            "--exit-code",
            "13",
            "--severity",
            "low"
        ]),
        Some(7)
    );
}

#[test]
fn sarif_is_valid_and_locates_the_package() {
    let Some(f) = fixture() else { return };
    let Some(validator) = sarif_validator() else {
        return;
    };
    let out = f.scan(&["--quiet", "--format", "sarif"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = f.scan(&["--quiet", "--format", "sarif"]);
    assert_eq!(out.stdout, again.stdout, "SARIF is byte-stable");
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator is not vacuous.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = json!("fatal");
    assert!(!validator.is_valid(&broken));

    let run = &log["runs"][0];
    assert_eq!(log["version"], "2.1.0");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["CVE-2099-1000", "CVE-2099-1003", "OSV-2099-1"]);
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for result in results {
        let uri = &result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
        assert_eq!(uri, "var/lib/dpkg/status", "{result}");
        assert!(
            result["message"]["text"]
                .as_str()
                .unwrap()
                .contains(&f.dash)
        );
        let rule = &run["tool"]["driver"]["rules"][result["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], result["ruleId"]);
    }
    let level = |id: &str| {
        results
            .iter()
            .find(|r| r["ruleId"] == id)
            .map(|r| r["level"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(level("OSV-2099-1"), "error");
    assert_eq!(level("CVE-2099-1000"), "error");
    assert_eq!(level("CVE-2099-1003"), "warning");
    let osv = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "OSV-2099-1")
        .unwrap();
    assert_eq!(osv["properties"]["security-severity"], "9.8");
    // The openvex fixtures' real grype/trivy SARIF scans validate with the same validator.
    if let Some(examples) = stella_e2e::services::fixtures("schemas/openvex/examples") {
        let mut checked = 0;
        for entry in walk(&examples) {
            let name = entry.file_name().unwrap().to_string_lossy();
            if name.ends_with(".sarif.json") || name.ends_with(".sarif") {
                let doc: Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
                assert!(validator.is_valid(&doc), "{}", entry.display());
                checked += 1;
            }
        }
        assert!(
            checked > 0,
            "no SARIF fixture found under {}",
            examples.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn an_ignore_file_filters_and_becomes_waivers() {
    let Some(f) = fixture() else { return };
    std::fs::write(
        f.work.path().join(".stellaignore"),
        "ignore:\n  - id: OSV-2099-1\n    purl: pkg:deb/debian/dash\n    expires: 2999-01-01\n    justification: dash is never run by this service\n  - id: CVE-2099-1003\n    expires: 2000-01-01\n    justification: expired long ago\n",
    )
    .unwrap();
    // Found in the current directory; the expired entry hides nothing and says so.
    let out = f.scan(&["--format", "findings-json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("1 ignored by .stellaignore"), "{stderr}");
    assert!(
        stderr.contains(".stellaignore entry 2 (CVE-2099-1003) expired at 2000-01-01"),
        "{stderr}"
    );
    assert_eq!(f.ids(&["--quiet"]), ["CVE-2099-1000", "CVE-2099-1003"]);
    // --quiet: nothing on stderr at all.
    let quiet = f.scan(&["--quiet", "--format", "table"]);
    assert!(quiet.status.success());
    assert_eq!(text(&quiet.stderr), "");
    // The gate does not count the waived finding.
    assert_eq!(
        f.scan(&["--quiet", "--format", "table", "--fail-on", "critical"])
            .status
            .code(),
        Some(0)
    );

    // With a policy: a waiver named after the entry, its justification in the report, the
    // expired one recorded, and the policy digest covering the waivers.
    std::fs::write(
        f.path("policy.yaml"),
        "version: '1.0'\nrules:\n  - name: block-critical\n    severity: [Critical]\n    action: block\n",
    )
    .unwrap();
    let policy = f.path("policy.yaml");
    let report = f.scan(&["--quiet", "--format", "report-json", "--policy", &policy]);
    assert!(report.status.success(), "{}", text(&report.stderr));
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    let decision = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "OSV-2099-1")
        .unwrap();
    assert_eq!(decision["outcome"], "ignored", "{decision}");
    assert_eq!(decision["rule"], "stellaignore-1");
    assert!(
        decision
            .to_string()
            .contains("dash is never run by this service"),
        "{decision}"
    );
    assert!(
        report["expiredWaivers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["rule"] == "stellaignore-2"),
        "{report}"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let without = stella()
        .arg("scan")
        .arg(&f.target)
        .args([
            "--quiet",
            "--format",
            "report-json",
            "--policy",
            &policy,
            "--data-dir",
        ])
        .arg(f.data.path())
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    // Without the waiver the critical finding blocks (exit 7), under another digest.
    assert_eq!(without.status.code(), Some(7));
    let without: Value = serde_json::from_slice(&without.stdout).unwrap();
    assert_ne!(without["policyDigest"], report["policyDigest"]);

    // An explicit file that is missing or invalid is a usage error naming the problem.
    let missing = f.scan(&["--quiet", "--ignore-file", "/nonexistent/ignore.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    std::fs::write(
        f.path("bad.yaml"),
        "ignore:\n  - id: CVE-2099-1003\n    justification: ''\n",
    )
    .unwrap();
    let bad = f.scan(&["--quiet", "--ignore-file", &f.path("bad.yaml")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("ignore[0].justification: must not be blank"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn vex_at_scan_time_quiets_without_importing() {
    let Some(f) = fixture() else { return };
    let vex = json!({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://ci.example/vex/1",
        "author": "Example Vendor", "timestamp": "2099-01-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2099-1003"}, "products": [{"@id": "pkg:deb/debian/dash"}],
            "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]});
    std::fs::write(f.path("vex.json"), vex.to_string()).unwrap();
    let vex_path = f.path("vex.json");
    assert_eq!(
        f.ids(&["--quiet", "--vex", &vex_path]),
        ["CVE-2099-1000", "OSV-2099-1"]
    );
    let noted = f.scan(&["--format", "table", "--vex", &vex_path]);
    assert!(
        text(&noted.stderr).contains("1 quieted by VEX (--show-suppressed lists them)"),
        "{}",
        text(&noted.stderr)
    );
    // Listed and marked with --show-suppressed; never counted by the gate.
    let out = f.scan(&[
        "--quiet",
        "--format",
        "findings-json",
        "--vex",
        &vex_path,
        "--show-suppressed",
    ]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let suppressed: Vec<&Value> = listed["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x.get("suppressedBy").is_some())
        .collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["id"], "CVE-2099-1003");
    assert_eq!(suppressed[0]["suppressedBy"]["status"], "not_affected");
    assert_eq!(suppressed[0]["suppressedBy"]["provider"], "Example Vendor");
    assert_eq!(
        f.scan(&[
            "--quiet",
            "--vex",
            &vex_path,
            "--show-suppressed",
            "--severity",
            "medium",
            "--exit-code",
            "13"
        ])
        .status
        .code(),
        Some(0)
    );
    // SARIF carries it as a suppression, which code scanning shows as dismissed.
    let sarif = f.scan(&[
        "--quiet",
        "--format",
        "sarif",
        "--vex",
        &vex_path,
        "--show-suppressed",
    ]);
    let log: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    if let Some(validator) = sarif_validator() {
        assert!(validator.is_valid(&log));
    }
    let result = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "CVE-2099-1003")
        .unwrap();
    assert_eq!(result["suppressions"][0]["kind"], "external");
    assert!(
        result["suppressions"][0]["justification"]
            .as_str()
            .unwrap()
            .contains("vulnerable_code_not_in_execute_path"),
        "{result}"
    );
    // Not imported: the next scan without --vex reports it again.
    assert_eq!(
        f.ids(&["--quiet"]),
        ["CVE-2099-1000", "CVE-2099-1003", "OSV-2099-1"]
    );
    // A file that is not VEX is a usage error.
    std::fs::write(f.path("junk.json"), b"{\"hello\": 1}").unwrap();
    let junk = f.scan(&["--quiet", "--vex", &f.path("junk.json")]);
    assert_eq!(junk.status.code(), Some(2), "{}", text(&junk.stderr));
}

#[test]
fn cyclonedx_1_5_and_1_6_read_back_by_cyclonedx_python_lib() {
    let Some(f) = fixture() else { return };
    let out = f.scan(&["--quiet", "--format", "cyclonedx-json@1.5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bom: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bom["specVersion"], "1.5");
    let six: Value =
        serde_json::from_slice(&f.scan(&["--quiet", "--format", "cyclonedx-json"]).stdout).unwrap();
    assert_eq!(bom["components"], six["components"]);
    assert!(
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "dash")
    );
    // The CycloneDX project's own library validates both strictly and reads back exactly the
    // components we wrote.
    for (name, bytes) in [
        ("bom-1.5.json", &out.stdout),
        ("bom-1.6.json", &{
            f.scan(&["--quiet", "--format", "cyclonedx-json"]).stdout
        }),
    ] {
        let path = f.work.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let Some(read) = read_with_cyclonedx_python_lib(&path) else {
            return;
        };
        let ours: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(read["specVersion"], ours["specVersion"]);
        assert_eq!(read["errors"], json!([]), "{name}: {read}");
        let mut wrote: Vec<Value> = ours["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| match c["purl"].as_str() {
                Some(purl) => json!([c["name"], c["version"], purl.replace("%3A", ":")]),
                None => json!([c["name"], c["version"], null]),
            })
            .collect();
        wrote.sort_by_key(|v| v.to_string());
        // packageurl-python writes an epoch's `%3A` as `:` (both are valid purls).
        let mut theirs: Vec<Value> = read["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| match c[2].as_str() {
                Some(purl) => json!([c[0], c[1], purl.replace("%3A", ":")]),
                None => c.clone(),
            })
            .collect();
        theirs.sort_by_key(|v| v.to_string());
        assert_eq!(theirs, wrote, "{name}");
        assert!(read["dependencies"].as_u64().unwrap() > 0);
        assert_eq!(
            read["serialNumber"],
            ours["serialNumber"]
                .as_str()
                .unwrap()
                .trim_start_matches("urn:uuid:")
        );
    }
}

/// cyclonedx-python-lib's reading of a file, or `None` (skip) where it is not installed.
fn read_with_cyclonedx_python_lib(path: &Path) -> Option<Value> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import cyclonedx.validation.json, jsonschema"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        stella_e2e::services::skip(
            "cyclonedx-python-lib is not installed (pip install 'cyclonedx-python-lib[json-validation]')",
        );
        return None;
    }
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/read_cyclonedx.py"
        ))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cyclonedx-python-lib could not read {}: {}",
        path.display(),
        text(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn nothing_checked_is_never_a_clean_report() {
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let target = format!("{}:bookworm", dir.join("oci").display());
    let scan = |args: &[&str]| {
        stella()
            .arg("scan")
            .arg(&target)
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("STELLA_DATABASE_URL")
            .output()
            .unwrap()
    };
    // The README's first command, on a fresh data dir: no "0 vulnerabilities".
    let table = scan(&["--format", "table", "--quiet"]);
    assert!(table.status.success());
    let stdout = text(&table.stdout);
    assert!(
        stdout.contains("Vulnerabilities: not checked: no advisory data"),
        "{stdout}"
    );
    assert!(!stdout.contains("0 vulnerabilities"), "{stdout}");
    // Said on stderr even with --quiet.
    assert!(
        text(&table.stderr).contains("warning: not checked: no advisory data"),
        "{}",
        text(&table.stderr)
    );
    let json: Value =
        serde_json::from_slice(&scan(&["--format", "findings-json", "--quiet"]).stdout).unwrap();
    assert_eq!(json["advisoryData"]["state"], "none");
    assert_eq!(json["advisoryData"]["advisories"], 0);
    let sarif: Value =
        serde_json::from_slice(&scan(&["--format", "sarif", "--quiet"]).stdout).unwrap();
    if let Some(validator) = sarif_validator() {
        assert!(validator.is_valid(&sarif));
    }
    let notification = &sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"][0];
    assert_eq!(notification["level"], "error");
    assert!(
        notification["message"]["text"]
            .as_str()
            .unwrap()
            .starts_with("not checked: no advisory data")
    );
    // A gate with nothing checked fails, unless told otherwise.
    let gated = scan(&["--quiet", "--exit-code", "1"]);
    assert_eq!(gated.status.code(), Some(1));
    assert!(
        text(&gated.stderr).contains("no advisory data was checked"),
        "{}",
        text(&gated.stderr)
    );
    assert_eq!(
        scan(&["--quiet", "--fail-on", "high"]).status.code(),
        Some(6)
    );
    assert_eq!(
        scan(&["--quiet", "--exit-code", "1", "--allow-no-advisories"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn a_config_file_then_environment_then_flags() {
    let Some(f) = fixture() else { return };
    let ids = |env: &[(&str, &str)], args: &[&str]| -> Vec<String> {
        let out = stella()
            .arg("scan")
            .arg(&f.target)
            .args(args)
            .arg("--data-dir")
            .arg(f.data.path())
            .current_dir(f.work.path())
            .env_remove("STELLA_DATABASE_URL")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    // stella.yaml in the current directory: its values are the defaults.
    std::fs::write(
        f.work.path().join("stella.yaml"),
        "scan:\n  format: findings-json\n  quiet: true\n  severity: [critical]\n",
    )
    .unwrap();
    assert_eq!(ids(&[], &[]), ["OSV-2099-1"]);
    // The environment over the file, the command line over both.
    assert_eq!(ids(&[("STELLA_SEVERITY", "high")], &[]), ["CVE-2099-1000"]);
    assert_eq!(
        ids(&[("STELLA_SEVERITY", "high")], &["--severity", "medium"]),
        ["CVE-2099-1003"]
    );
    // --config names another file; $STELLA_CONFIG too.
    std::fs::write(
        f.path("other.yaml"),
        "scan:\n  format: findings-json\n  quiet: true\n  ignore-unfixed: true\n",
    )
    .unwrap();
    let mut fixed = ids(&[], &["--config", &f.path("other.yaml")]);
    fixed.sort();
    assert_eq!(fixed, ["CVE-2099-1000", "OSV-2099-1"]);
    let mut fixed = ids(&[("STELLA_CONFIG", &f.path("other.yaml"))], &[]);
    fixed.sort();
    assert_eq!(fixed, ["CVE-2099-1000", "OSV-2099-1"]);
    // Bad files: the location and the problem, exit 2, nothing scanned.
    for (content, wanted) in [
        ("scan:\n  formt: sarif\n", "scan.formt: no such flag"),
        ("scan:\n  format: [table\n", "bad.yaml:2:"),
        (
            "scan:\n  format: [table, sarif]\n",
            "scan.format: takes one value",
        ),
        ("deploy:\n  x: 1\n", "deploy: not a configurable command"),
        ("- scan\n", "expected a mapping of commands"),
    ] {
        std::fs::write(f.path("bad.yaml"), content).unwrap();
        let out = f.scan(&["--config", &f.path("bad.yaml")]);
        assert_eq!(out.status.code(), Some(2), "{content}");
        assert!(
            text(&out.stderr).contains(wanted),
            "{content}: {}",
            text(&out.stderr)
        );
    }
    std::fs::remove_file(f.work.path().join("stella.yaml")).unwrap();
}
