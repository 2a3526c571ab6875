//! Real OSV records and Debian tracker data: parsing, the linter's rejections, and matching
//! whose expected answers are worked out from the records themselves.

use crate::fixtures;
use stella_advisories::matching::{Candidate, match_all};
use stella_advisories::{debian, nvd, osv};

fn osv_file(path: &std::path::Path) -> Result<stella_advisories::Advisory, String> {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "yaml") {
        let value: serde_json::Value =
            serde_saphyr::from_slice(&bytes).map_err(|e| e.to_string())?;
        osv::from_value(&value).map_err(|e| e.to_string())
    } else {
        osv::parse(&bytes).map_err(|e| e.to_string())
    }
}

#[test]
fn real_osv_records_parse_and_the_linters_rejections_are_rejected() {
    let Some(dir) = fixtures("advisories/osv-records") else {
        return;
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mut parsed = 0;
    for record in index["records"].as_array().unwrap() {
        let file = record["file"].as_str().unwrap();
        let result = osv_file(&dir.join(file));
        if file.contains("RHSA-2022_0216") || file.contains("SUSE-FU-2022_0444-1") {
            let error = result.expect_err(file);
            assert!(
                error.contains("affected field cannot be null or empty"),
                "{file}: {error}"
            );
            continue;
        }
        let advisory = result.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(advisory.id, record["id"].as_str().unwrap());
        parsed += 1;
    }
    assert!(parsed >= 25, "{parsed}");
    let invalid = dir.join("../osv-invalid");
    assert!(
        osv_file(&invalid.join("nointroduced-CVE-2023-41045.json"))
            .unwrap_err()
            .contains("missing 'introduced'")
    );
    assert!(
        osv_file(&invalid.join("nondistinct-CVE-2018-5407.json"))
            .unwrap_err()
            .contains("non-distinct")
    );
    assert!(
        osv::parse(b"{").is_err()
            && osv::parse(b"{}")
                .unwrap_err()
                .to_string()
                .contains("missing id")
    );
    assert!(osv::parse(br#"{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"WEIRD","events":[{"introduced":"0"}]}]}]}"#).unwrap_err().to_string().contains("unknown range type"));
}

fn candidate(purl: &str, name: &str, version: &str, ecosystem: &str, package: &str) -> Candidate {
    Candidate {
        purl: purl.into(),
        name: name.into(),
        version: version.into(),
        ecosystem: ecosystem.into(),
        package: package.into(),
        layer_digest: None,
    }
}

#[test]
fn matching_follows_the_records_fixed_versions() {
    let Some(dir) = fixtures("advisories/osv-records") else {
        return;
    };
    let dsa = osv_file(&dir.join("Debian/DSA-3029-1.json")).unwrap();
    let alpine = osv_file(&dir.join("Alpine/CVE-2018-5407.json")).unwrap();
    let pysec = osv_file(&dir.join("PyPI/PYSEC-2023-74.json")).unwrap();
    let advisories = vec![dsa.clone(), alpine.clone(), pysec.clone()];
    // The expectations come from the records: their first fixed events.
    let fixed_of = |a: &stella_advisories::Advisory, eco: &str| -> String {
        a.affected
            .iter()
            .find(|f| f.ecosystem == eco)
            .unwrap()
            .ranges
            .iter()
            .flat_map(|r| &r.events)
            .find_map(|e| match e {
                stella_advisories::model::Event::Fixed(v) => Some(v.clone()),
                _ => None,
            })
            .unwrap()
    };
    let nginx_fixed = fixed_of(&dsa, "Debian:7");
    let openssl_fixed = fixed_of(&alpine, "Alpine:v3.5");
    let cands = vec![
        candidate(
            "pkg:deb/debian/nginx@1.2.1-2.2",
            "nginx",
            "1.2.1-2.2",
            "Debian:7",
            "nginx",
        ),
        candidate(
            "pkg:deb/debian/nginx-fixed",
            "nginx",
            &nginx_fixed,
            "Debian:7",
            "nginx",
        ),
        candidate(
            "pkg:deb/debian/nginx-other-release",
            "nginx",
            "1.2.1-2.2",
            "Debian:8",
            "nginx",
        ),
        candidate(
            "pkg:apk/alpine/openssl@1.0.2p-r0",
            "openssl",
            "1.0.2p-r0",
            "Alpine:v3.5",
            "openssl",
        ),
        candidate(
            "pkg:apk/alpine/openssl-fixed",
            "openssl",
            &openssl_fixed,
            "Alpine:v3.5",
            "openssl",
        ),
        candidate(
            "pkg:pypi/requests@2.28.0",
            "requests",
            "2.28.0",
            "PyPI",
            "requests",
        ),
        candidate(
            "pkg:pypi/requests@2.31.0",
            "requests",
            "2.31.0",
            "PyPI",
            "requests",
        ),
        candidate(
            "pkg:pypi/requests@2.2.0",
            "requests",
            "2.2.0",
            "PyPI",
            "requests",
        ),
    ];
    let findings = match_all(&cands, &advisories);
    let hits: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| (f.purl.as_str(), f.id.as_str()))
        .collect();
    assert_eq!(
        hits,
        [
            ("pkg:apk/alpine/openssl@1.0.2p-r0", alpine.id.as_str()),
            ("pkg:deb/debian/nginx@1.2.1-2.2", dsa.id.as_str()),
            ("pkg:pypi/requests@2.28.0", pysec.id.as_str()),
        ]
    );
    let nginx = findings.iter().find(|f| f.package == "nginx").unwrap();
    assert_eq!(nginx.fixed, [nginx_fixed]);
    assert_eq!(nginx.evidence.comparator, "dpkg");
    assert!(nginx.evidence.matched.contains("ECOSYSTEM range"));
}

#[test]
fn debian_tracker_not_affected_is_respected() {
    let Some(dir) = fixtures("advisories/debian-security-tracker") else {
        return;
    };
    let advisories =
        debian::parse(&std::fs::read(dir.join("debian_security_tracker_mock.json")).unwrap())
            .unwrap();
    let cve = advisories.iter().find(|a| a.id == "CVE-2014-1424").unwrap();
    let bookworm = cve
        .affected
        .iter()
        .find(|a| a.ecosystem == "Debian:12")
        .unwrap();
    assert!(
        bookworm.not_affected,
        "fixed_version 0 means never affected"
    );
    let findings = match_all(
        &[candidate(
            "pkg:deb/debian/apparmor@3.0.8-3",
            "apparmor",
            "3.0.8-3",
            "Debian:12",
            "apparmor",
        )],
        &advisories,
    );
    assert!(
        !findings.iter().any(|f| f.id == "CVE-2014-1424"),
        "{findings:?}"
    );
    // The other CVEs of the excerpt follow their bookworm entries: open ones match, others not.
    for f in &findings {
        let record = advisories.iter().find(|a| a.id == f.id).unwrap();
        let entry = record
            .affected
            .iter()
            .find(|a| a.ecosystem == "Debian:12")
            .unwrap();
        assert!(!entry.not_affected);
    }
    // An open issue in a release affects every version; a resolved one below its fix.
    let synthetic = br#"{"curl":{"CVE-2099-0001":{"releases":{"bookworm":{"status":"open","urgency":"high"}}},
        "CVE-2099-0002":{"releases":{"bookworm":{"status":"resolved","fixed_version":"7.88.1-10+deb12u6","urgency":"medium"}}},
        "CVE-2099-0003":{"releases":{"bookworm":{"status":"open","urgency":"low","nodsa":"Minor issue","nodsa_reason":"ignored"}}},
        "CVE-2099-0004":{"releases":{"bookworm":{"status":"open","urgency":"low","nodsa":"Minor issue","nodsa_reason":"postponed"}}}}}"#;
    let advisories = debian::parse(synthetic).unwrap();
    let findings = match_all(
        &[candidate(
            "pkg:deb/debian/curl@7.88.1-10+deb12u5",
            "curl",
            "7.88.1-10+deb12u5",
            "Debian:12",
            "curl",
        )],
        &advisories,
    );
    let got: Vec<(&str, &str, &str)> = findings
        .iter()
        .map(|f| (f.id.as_str(), f.severity.as_str(), f.status.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("CVE-2099-0001", "High", "unfixed"),
            ("CVE-2099-0002", "Medium", "fixed"),
            ("CVE-2099-0003", "Low", "will-not-fix"),
            ("CVE-2099-0004", "Low", "fix-deferred"),
        ]
    );
    assert!(debian::parse(b"[]").is_err());
}

#[test]
fn alpine_secdb_fixed_and_never_affected() {
    use stella_advisories::alpine;
    let doc = serde_json::json!({"distroversion": "v3.19", "reponame": "main", "packages": [
        {"pkg": {"name": "openssl", "secfixes": {"3.1.4-r1": ["CVE-2023-5678"], "3.1.4-r3": ["CVE-2023-6129 GHSA-xxxx"], "0": ["CVE-2022-0001"]}}},
        {"pkg": {"name": "busybox"}}]});
    assert!(alpine::is_secdb(&doc));
    let advisories = alpine::parse(&doc).unwrap();
    let ids: Vec<&str> = advisories.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["CVE-2022-0001", "CVE-2023-5678", "CVE-2023-6129"]);
    let installed = candidate(
        "pkg:apk/alpine/openssl@3.1.4-r2",
        "openssl",
        "3.1.4-r2",
        "Alpine:v3.19",
        "openssl",
    );
    let found: Vec<String> = match_all(&[installed], &advisories)
        .into_iter()
        .map(|f| f.id)
        .collect();
    // 3.1.4-r2 is past the r1 fix and before the r3 fix; CVE-2022-0001 never affected v3.19.
    assert_eq!(found, ["CVE-2023-6129"]);
    assert!(alpine::parse(&serde_json::json!({"distroversion": "3.19", "packages": []})).is_err());
    assert!(
        alpine::parse(&serde_json::json!({"distroversion": "v3.19", "packages": [{"nopkg": 1}]}))
            .is_err()
    );
}

/// Every real NVD record parses, and our CVSS v3 and v2 base scores equal the ones NVD
/// published next to each vector.
#[test]
fn real_records_and_scores() {
    let Some(dir) = fixtures("advisories/nvd-cve-2.0") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut scored = 0;
    for path in files {
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(nvd::is_nvd(&value), "{}", path.display());
        let (accepted, rejected) = nvd::parse(&value);
        assert!(rejected.is_empty(), "{}: {rejected:?}", path.display());
        assert!(!accepted.is_empty(), "{}", path.display());
        for entry in value["vulnerabilities"].as_array().unwrap() {
            for (key, ours) in [
                (
                    "cvssMetricV31",
                    stella_advisories::cvss::v3_base_score as fn(&str) -> Option<f64>,
                ),
                ("cvssMetricV30", stella_advisories::cvss::v3_base_score),
                ("cvssMetricV2", stella_advisories::cvss::v2_base_score),
            ] {
                for m in entry["cve"]["metrics"][key]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let vector = m["cvssData"]["vectorString"].as_str().unwrap();
                    let theirs = m["cvssData"]["baseScore"].as_f64().unwrap();
                    assert_eq!(ours(vector), Some(theirs), "{} {vector}", path.display());
                    scored += 1;
                }
            }
        }
    }
    assert!(scored >= 20, "only {scored} scored vectors in the fixtures");
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("CVE-2023-4863.json")).unwrap()).unwrap();
    let (accepted, _) = nvd::parse(&value);
    let webp = &accepted[0];
    assert_eq!(webp.id, "CVE-2023-4863");
    assert_eq!(webp.cwes, ["CWE-787"]);
    assert!(
        webp.severity
            .iter()
            .any(|s| s.kind == "CVSS_V3"
                && s.score == "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H")
    );
    assert!(webp.references.windows(2).all(|w| w[0] < w[1]));
    assert!(webp.summary.as_deref().unwrap().contains("libwebp"));
    assert!(webp.affected.is_empty());
}

/// A Debian tracker finding without CVSS takes NVD's CVSS v3 for the same CVE (score, vector
/// and origin named); a record carrying its own CVSS keeps it; NVD alone makes no finding.
#[test]
fn nvd_lends_cvss_to_findings_for_the_same_cve() {
    let Some(dir) = fixtures("advisories/nvd-cve-2.0") else {
        return;
    };
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("CVE-2023-4863.json")).unwrap()).unwrap();
    let (mut advisories, _) = nvd::parse(&value);
    let nvd_vector = value["vulnerabilities"][0]["cve"]["metrics"]["cvssMetricV31"][0]["cvssData"]
        ["vectorString"]
        .as_str()
        .unwrap()
        .to_string();
    let nvd_score =
        value["vulnerabilities"][0]["cve"]["metrics"]["cvssMetricV31"][0]["cvssData"]["baseScore"]
            .as_f64()
            .unwrap();
    let libwebp = candidate(
        "pkg:deb/debian/libwebp7@1.2.4-0.2?arch=amd64&distro=debian-12",
        "libwebp7",
        "1.2.4-0.2",
        "Debian:12",
        "libwebp",
    );
    assert!(match_all(std::slice::from_ref(&libwebp), &advisories).is_empty());
    advisories.extend(
        debian::parse(
            br#"{"libwebp":{"CVE-2023-4863":{"releases":{"bookworm":{"status":"resolved",
            "fixed_version":"1.2.4-0.2+deb12u1","urgency":"not yet assigned"}}}}}"#,
        )
        .unwrap(),
    );
    let findings = match_all(std::slice::from_ref(&libwebp), &advisories);
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = &findings[0];
    assert_eq!(f.evidence.source, "debian-tracker");
    assert_eq!(f.fixed, ["1.2.4-0.2+deb12u1"]);
    assert_eq!(f.severity_source.as_deref(), Some(nvd_vector.as_str()));
    assert_eq!(f.cvss_score, Some(nvd_score));
    assert_eq!(f.severity_origin.as_deref(), Some("nvd"));
    assert_eq!(
        f.severity,
        stella_advisories::cvss::rating(nvd_score),
        "8.8 is High"
    );
    // Withdrawn (Rejected) NVD records lend nothing.
    for a in advisories.iter_mut().filter(|a| a.source == "nvd") {
        a.withdrawn = Some(a.modified.clone());
    }
    let findings = match_all(std::slice::from_ref(&libwebp), &advisories);
    assert_eq!(findings[0].severity, "Unknown");
    assert_eq!(findings[0].cvss_score, None);
}

/// Every real OSV record we accept (the osv.dev records and GitHub advisories converted to
/// OSV) is valid against the official OSV schema: we never accept what the schema rejects.
#[test]
fn accepted_osv_records_are_valid_against_the_official_schema() {
    let (Some(schemas), Some(advisories)) = (fixtures("schemas/osv"), fixtures("advisories"))
    else {
        return;
    };
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(schemas.join("schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut files = Vec::new();
    let mut stack = vec![
        advisories.join("osv-records"),
        advisories.join("ghsa-to-osv"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if name != "index.json"
                && (name.ends_with(".osv.json")
                    || (!path.starts_with(advisories.join("ghsa-to-osv"))
                        && (name.ends_with(".json") || name.ends_with(".yaml"))))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut checked = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let value: serde_json::Value = if path.extension().is_some_and(|e| e == "yaml") {
            serde_saphyr::from_slice(&bytes).unwrap()
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        if osv::from_value(&value).is_ok() {
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} records checked");
}

/// Installed names spelled as the package's own metadata spells them, against real records
/// spelled as their databases do: each ecosystem's name comparison makes them meet.
#[test]
fn names_meet_by_each_ecosystems_comparison() {
    use stella_advisories::matching::{key, package_key};
    let Some(dir) = fixtures("advisories/osv-records") else {
        return;
    };
    let records: Vec<_> = [
        "PyPI/GHSA-p44j-xrqg-4xrr.json", // products-pluggableauthservice, fixed 2.6.1
        "PyPI/GHSA-9v2f-6vcg-3hgv.json", // Gradio, versions 4.36.1
        "NuGet/GHSA-5crp-9r3c-p9vr.json", // Newtonsoft.Json, fixed 13.0.1
    ]
    .iter()
    .map(|f| osv_file(&dir.join(f)).unwrap())
    .collect();
    let installed = |purl_type: &str, name: &str, version: &str| {
        let (ecosystem, package) = key(purl_type, name, None, None, None).unwrap();
        candidate(
            &format!("pkg:{purl_type}/{name}@{version}"),
            name,
            version,
            &ecosystem,
            &package,
        )
    };
    let candidates = [
        // METADATA's Name: dots and capitals (PEP 503 normalises both).
        installed("pypi", "Products.PluggableAuthService", "2.6.0"),
        installed("pypi", "Products.PluggableAuthService", "2.6.1"),
        installed("pypi", "gradio", "4.36.1"),
        // NuGet's package folder is lower-case; the record says Newtonsoft.Json.
        installed("nuget", "newtonsoft.json", "12.0.3"),
        installed("nuget", "newtonsoft.json", "13.0.1"),
    ];
    let found: Vec<(String, String)> = match_all(&candidates, &records)
        .iter()
        .map(|f| (f.purl.clone(), f.id.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "pkg:nuget/newtonsoft.json@12.0.3".to_string(),
                "GHSA-5crp-9r3c-p9vr".to_string()
            ),
            (
                "pkg:pypi/Products.PluggableAuthService@2.6.0".to_string(),
                "GHSA-p44j-xrqg-4xrr".to_string()
            ),
            (
                "pkg:pypi/gradio@4.36.1".to_string(),
                "GHSA-9v2f-6vcg-3hgv".to_string()
            ),
        ]
    );
    // The rules themselves.
    assert_eq!(
        package_key("PyPI", "Zope.Interface__x-_y"),
        "zope-interface-x-y"
    );
    assert_eq!(package_key("PyPI", "requests"), "requests");
    assert_eq!(package_key("crates.io", "Serde_JSON"), "serde-json");
    // Case-sensitive ecosystems stay as written.
    assert_eq!(package_key("npm", "JSONStream"), "JSONStream");
    assert_eq!(
        package_key("Go", "github.com/BurntSushi/toml"),
        "github.com/BurntSushi/toml"
    );
    assert_eq!(
        package_key("Maven", "org.Apache:Commons"),
        "org.Apache:Commons"
    );
}
