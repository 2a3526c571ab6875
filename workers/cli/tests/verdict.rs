//! The real Debian image through VEX and policy to a verdict, its proof bundle, and replays.

use super::{stella, test_image};
use std::process::Output;

fn ok(out: &Output) -> &Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn policy_verdicts_are_explained_bundled_and_replayed() {
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let run = |args: &[&str]| -> Output {
        stella()
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .unwrap()
    };
    // Two findings on dash (any installed version is below these fixes): one critical, one
    // medium.
    let osv = |id: &str, vector: &str| {
        serde_json::json!({"id": id, "modified": "2099-01-01T00:00:00Z",
            "severity": [{"type": "CVSS_V3", "score": vector}],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99:1"}]}]}]})
    };
    std::fs::create_dir(w.join("feeds")).unwrap();
    for (id, vector) in [
        (
            "CVE-2099-2001",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ),
        (
            "CVE-2099-2002",
            "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N",
        ),
    ] {
        std::fs::write(
            w.join("feeds").join(format!("{id}.json")),
            osv(id, vector).to_string(),
        )
        .unwrap();
    }
    ok(&run(&[
        "feeds",
        "import",
        w.join("feeds").to_str().unwrap(),
    ]));
    let policy = w.join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: stella-ops.org/v1alpha1\nkind: Policy\nmetadata: {name: baseline}\nspec:\n  version: \"1.0\"\n  rules:\n    - name: Block Critical\n      severity: [Critical]\n      action: block\n    - name: Warn Medium\n      severity: [Medium]\n      action: warn\n",
    )
    .unwrap();
    let target = format!("{}:bookworm", dir.join("oci").display());
    let bundle = w.join("proof.zip");

    // FAIL: the critical finding is blocked by its rule; exit 7; the bundle is written.
    let out = run(&[
        "scan",
        &target,
        "--quiet",
        "--format",
        "report-json",
        "--policy",
        policy.to_str().unwrap(),
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "FAIL");
    let decision = |report: &serde_json::Value, id: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(decision(&report, "CVE-2099-2001")["outcome"], "fail");
    assert_eq!(decision(&report, "CVE-2099-2001")["rule"], "Block Critical");
    assert_eq!(decision(&report, "CVE-2099-2002")["outcome"], "warn");
    assert!(
        report["policyDigest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    // The bundle replays to its root.
    let out = ok(&run(&["replay", bundle.to_str().unwrap()]))
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("proved: root sha256:"), "{text}");
    assert!(text.contains("verdict FAIL"), "{text}");

    // The vendor says dash is not affected by the critical one: imported, the verdict is WARN.
    let vex = serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://debian.example/vex/1",
        "author": "Debian", "timestamp": "2099-02-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2099-2001"},
            "products": [{"@id": "pkg:deb/debian/dash"}],
            "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]});
    std::fs::write(w.join("vex.json"), vex.to_string()).unwrap();
    // Replaying the old bundle with it shows exactly that change.
    let out = ok(&run(&[
        "replay",
        bundle.to_str().unwrap(),
        "--vex",
        w.join("vex.json").to_str().unwrap(),
        "--format",
        "json",
    ]))
    .stdout
    .clone();
    let replay: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(replay["changedInputs"], serde_json::json!(["vex"]));
    assert_eq!(replay["recordedVerdict"], "FAIL");
    assert_eq!(replay["verdict"], "WARN");
    let changes = replay["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{replay}");
    assert_eq!(changes[0]["id"], "CVE-2099-2001");
    assert!(
        changes[0]["after"]
            .as_str()
            .unwrap()
            .starts_with("vex-suppressed")
    );

    ok(&run(&[
        "vex",
        "import",
        w.join("vex.json").to_str().unwrap(),
    ]));
    let out = run(&["report", &target, "--policy", policy.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "WARN");
    // Judged as at a pinned instant: the same bytes twice, and that instant in the report;
    // a time that is not RFC 3339 is a usage error before anything is scanned.
    let at = ["--evaluated-at", "2099-06-01T12:00:00.750+02:00"];
    let pinned = |extra: &[&str]| {
        let mut args = vec!["report", &target, "--policy", policy.to_str().unwrap()];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (first, second) = (pinned(&at), pinned(&at));
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(first.stdout, second.stdout, "byte-identical");
    let pinned_report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(
        pinned_report["evaluatedAt"], "2099-06-01T10:00:00Z",
        "UTC, whole seconds"
    );
    for garbage in ["yesterday", "2099-13-01T00:00:00Z", ""] {
        let out = pinned(&["--evaluated-at", garbage]);
        assert_eq!(out.status.code(), Some(2), "{garbage:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--evaluated-at"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        decision(&report, "CVE-2099-2001")["outcome"],
        "vex-suppressed"
    );
    // The unknowns registry knows which finding VEX covered and which it did not.
    let out = ok(&run(&["unknowns", "list", "--format", "json"]))
        .stdout
        .clone();
    let unknowns: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let open: Vec<&str> = unknowns["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["vulnerability"].as_str())
        .collect();
    assert!(open.contains(&"CVE-2099-2002"), "{unknowns}");
    assert!(!open.contains(&"CVE-2099-2001"), "{unknowns}");
    let out = ok(&run(&["unknowns", "list", "--all", "--format", "json"]))
        .stdout
        .clone();
    let all: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let covered = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["vulnerability"] == "CVE-2099-2001")
        .unwrap();
    assert_eq!(covered["status"], "resolved");
    assert_eq!(covered["resolution"], "not-observed");

    // A policy swap in replay; a tampered bundle; a broken policy.
    let lenient = w.join("lenient.yaml");
    std::fs::write(
        &lenient,
        "version: \"1.0\"\nrules:\n  - name: Accept all until 2100\n    action: ignore\n    expires: \"2100-01-01\"\n    justification: test image\n",
    )
    .unwrap();
    let out = ok(&run(&[
        "replay",
        bundle.to_str().unwrap(),
        "--policy",
        lenient.to_str().unwrap(),
    ]))
    .stdout
    .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("changed inputs: policy"), "{text}");
    assert!(text.contains("verdict FAIL → PASS"), "{text}");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let len = bytes.len();
    bytes.truncate(len - 40);
    std::fs::write(w.join("broken.zip"), &bytes).unwrap();
    assert_eq!(
        run(&["replay", w.join("broken.zip").to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    std::fs::write(
        w.join("bad.yaml"),
        "version: \"1.0\"\nrules:\n  - name: x\n    action: blok\n",
    )
    .unwrap();
    let out = run(&[
        "scan",
        &target,
        "--quiet",
        "--policy",
        w.join("bad.yaml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rules[0].action"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run(&["report", &target]).status.code(), Some(2));

    // CISA KEV lists the medium one, FIRST EPSS scores it: a `kev` rule now blocks it, and
    // the unknowns registry ranks it under that pressure.
    let kev = serde_json::json!({"title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2099.01.01", "count": 1, "vulnerabilities": [
            {"cveID": "CVE-2099-2002", "vendorProject": "Debian", "product": "dash",
             "dateAdded": "2099-01-01", "knownRansomwareCampaignUse": "Unknown"}]});
    std::fs::write(w.join("kev.json"), kev.to_string()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        b"#model_version:v2023.03.01,score_date:2099-01-01T00:00:00+0000\ncve,epss,percentile\nCVE-2099-2002,0.91,0.99\n",
    )
    .unwrap();
    std::fs::write(
        w.join("epss_scores-2099-01-01.csv.gz"),
        gz.finish().unwrap(),
    )
    .unwrap();
    let out = ok(&run(&[
        "feeds",
        "import",
        w.join("kev.json").to_str().unwrap(),
        w.join("epss_scores-2099-01-01.csv.gz").to_str().unwrap(),
    ]))
    .stdout
    .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("KEV catalog 2099.01.01: 1 known exploited"),
        "{text}"
    );
    assert!(
        text.contains("EPSS scores of 2099-01-01T00:00:00+0000: 1"),
        "{text}"
    );
    let kev_policy = w.join("kev.yaml");
    std::fs::write(
        &kev_policy,
        "version: \"1.0\"\nrules:\n  - name: Known exploited\n    kev: true\n    action: block\n  - name: Likely exploited\n    epssAtLeast: 0.5\n    action: warn\n",
    )
    .unwrap();
    let out = run(&["report", &target, "--policy", kev_policy.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        decision(&report, "CVE-2099-2002")["rule"],
        "Known exploited"
    );
    let out = ok(&run(&["unknowns", "list", "--format", "json"]))
        .stdout
        .clone();
    let unknowns: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let pressured = unknowns["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["vulnerability"] == "CVE-2099-2002")
        .unwrap();
    assert_eq!(pressured["scoreBreakdown"]["pressure"], 1.0);
}
