//! The real Debian image matched against imported Debian tracker data and OSV records. The
//! records are written here for packages the image really has (per `dpkg-query`), and the
//! expected findings are decided with `dpkg --compare-versions`, never with our comparator.

use super::{stella, test_image};
use std::process::Command;

fn dpkg_lt(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "lt", b])
        .status()
        .unwrap()
        .success()
}

#[test]
fn debian_image_findings_follow_the_records() {
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    if Command::new("dpkg").arg("--version").output().is_err() {
        return;
    }
    let installed: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(dir.join("expected-3.txt"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut p = l.split(' ');
                (p.next().unwrap().to_string(), p.next().unwrap().to_string())
            })
            .collect();
    // dash: source dash, no binNMU, so the tracker's source version is the installed version.
    let dash = installed["dash"].clone();
    let data = tempfile::tempdir().unwrap();
    let feeds = tempfile::tempdir().unwrap();
    let above = format!("{dash}+deb12u9");
    let below = "0.5.11-1".to_string();
    let tracker = serde_json::json!({"dash": {
        "CVE-2099-1000": {"description": "vulnerable: fixed above what is installed",
            "releases": {"bookworm": {"status": "resolved", "fixed_version": above, "urgency": "high"}}},
        "CVE-2099-1001": {"description": "fixed: fixed at or below what is installed",
            "releases": {"bookworm": {"status": "resolved", "fixed_version": below, "urgency": "high"}}},
        "CVE-2099-1002": {"description": "not affected",
            "releases": {"bookworm": {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"}}},
        "CVE-2099-1003": {"description": "unfixed",
            "releases": {"bookworm": {"status": "open", "urgency": "medium"}}},
        "CVE-2099-1004": {"description": "another release only",
            "releases": {"bullseye": {"status": "open", "urgency": "high"}}}
    }});
    std::fs::write(feeds.path().join("tracker.json"), tracker.to_string()).unwrap();
    let osv = serde_json::json!({"id": "OSV-2099-1", "modified": "2099-01-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": above}]}]}]});
    std::fs::write(feeds.path().join("osv.json"), osv.to_string()).unwrap();
    std::fs::write(
        feeds.path().join("broken.json"),
        b"{\"id\": \"BROKEN\", \"affected\": []}",
    )
    .unwrap();

    let import = stella()
        .args(["feeds", "import"])
        .arg(feeds.path())
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(
        String::from_utf8_lossy(&import.stdout).contains("rejected 1"),
        "{}",
        String::from_utf8_lossy(&import.stdout)
    );
    assert!(String::from_utf8_lossy(&import.stderr).contains("BROKEN"));
    let status = stella()
        .args(["feeds", "status", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains("debian-tracker") && status.contains("snapshot sha256:"),
        "{status}"
    );
    let json = stella()
        .args(["feeds", "status", "--json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        status.starts_with(&format!(
            "snapshot {}\n",
            json["snapshot"].as_str().unwrap()
        )),
        "the same snapshot both ways: {json}"
    );
    assert!(
        json["lastImport"]["accepted"].as_i64().unwrap() > 0,
        "{json}"
    );
    assert!(
        json["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["source"] == "debian-tracker"),
        "{json}"
    );

    let target = format!("{}:bookworm", dir.join("oci").display());
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    // Expected, decided by dpkg itself from the records.
    let mut expected = vec!["CVE-2099-1003".to_string()];
    if dpkg_lt(&dash, &above) {
        expected.push("CVE-2099-1000".into());
        expected.push("OSV-2099-1".into());
    }
    if dpkg_lt(&dash, &below) {
        expected.push("CVE-2099-1001".into());
    }
    expected.sort();
    assert_eq!(ids, expected);
    let osv_finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "OSV-2099-1")
        .unwrap();
    assert_eq!(osv_finding["severity"], "Critical");
    assert_eq!(osv_finding["evidence"]["comparator"], "dpkg");
    assert!(
        osv_finding["layerDigest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );

    // --fail-on sets the exit code; below the threshold it does not.
    let fail = stella()
        .args([
            "scan",
            &target,
            "--quiet",
            "--format",
            "table",
            "--fail-on",
            "critical",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(
        fail.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&fail.stderr)
    );
    let table = String::from_utf8_lossy(&fail.stdout);
    assert!(
        table.contains("vulnerabilities")
            && table.contains("OSV-2099-1")
            && table.contains("(no fix)"),
        "{table}"
    );

    // Every open finding without VEX is an unknown (missing_vex), ranked and banded.
    let unknowns = |extra: &[&str]| -> serde_json::Value {
        let out = stella()
            .args(["unknowns", "list", "--format", "json", "--data-dir"])
            .arg(data.path())
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let listed = unknowns(&[]);
    let items = listed["items"].as_array().unwrap();
    let mut vulns: Vec<&str> = items
        .iter()
        .filter(|u| u["reasons"] == serde_json::json!(["missing_vex"]))
        .map(|u| u["vulnerability"].as_str().unwrap())
        .collect();
    vulns.sort();
    assert_eq!(vulns, expected, "{listed}");
    assert!(
        items
            .iter()
            .all(|u| ["HOT", "WARM", "COLD"].contains(&u["band"].as_str().unwrap()))
    );
    assert!(
        items
            .windows(2)
            .all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64())
    );
    let critical = items
        .iter()
        .find(|u| u["vulnerability"] == "CVE-2099-1003")
        .unwrap();
    let id = critical["id"].as_str().unwrap();
    // Resolve: gone from the open list, kept with its justification; a rescan keeps it closed.
    let resolve = stella()
        .args([
            "unknowns",
            "resolve",
            id,
            "--resolution",
            "accepted-risk",
            "--justification",
            "dash is not reachable from the network",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        resolve.status.success(),
        "{}",
        String::from_utf8_lossy(&resolve.stderr)
    );
    let rescan = stella()
        .args([
            "scan",
            &target,
            "--quiet",
            "--format",
            "table",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(rescan.status.success());
    assert!(
        !unknowns(&[])["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == id)
    );
    let all = unknowns(&["--all"]);
    let kept = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .unwrap();
    assert_eq!(kept["status"], "resolved");
    assert_eq!(
        kept["justification"],
        "dash is not reachable from the network"
    );
    // Escalate another; resolved ones cannot be; unknown ids and bands are usage errors.
    let other = items.iter().find(|u| u["id"] != id).unwrap()["id"]
        .as_str()
        .unwrap();
    let run = |args: &[&str]| {
        stella()
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .unwrap()
    };
    assert!(run(&["unknowns", "escalate", other]).status.success());
    let shown: serde_json::Value =
        serde_json::from_slice(&run(&["unknowns", "show", other]).stdout).unwrap();
    assert_eq!(shown["status"], "escalated");
    assert!(shown["scoreBreakdown"]["blast"].is_number());
    assert_eq!(run(&["unknowns", "escalate", id]).status.code(), Some(2));
    assert_eq!(
        run(&["unknowns", "show", "unk-0000000000000000"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["unknowns", "list", "--band", "TEPID"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&[
            "unknowns",
            "resolve",
            other,
            "--resolution",
            "x",
            "--justification",
            " "
        ])
        .status
        .code(),
        Some(2)
    );
    std::fs::remove_file(feeds.path().join("osv.json")).unwrap();
}

#[test]
fn importing_the_real_records_keeps_the_valid_and_reports_the_rest() {
    let Some(base) = stella_e2e::services::fixtures("advisories") else {
        return;
    };
    let records = base.join("osv-records");
    let data = tempfile::tempdir().unwrap();
    let out = stella()
        .args(["feeds", "import"])
        .arg(&records)
        .arg(base.join("osv-invalid"))
        .arg(base.join("debian-security-tracker"))
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains("missing 'introduced'")
            && stderr.contains("non-distinct")
            && stderr.contains("affected field cannot be null"),
        "{stderr}"
    );
    // An OSV all.zip: the same records zipped import the same way.
    let zip = data.path().join("all.zip");
    let made = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg(records.join("Go"))
        .status();
    if made.is_ok_and(|s| s.success()) {
        let out = stella()
            .args(["feeds", "import"])
            .arg(&zip)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("imported 7 advisories"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(stdout.starts_with("imported "), "{stdout}");
    // Garbage is rejected, not fatal; a missing path is a usage error.
    std::fs::write(data.path().join("junk.json"), b"\x00\x01garbage").unwrap();
    let out = stella()
        .args(["feeds", "import"])
        .arg(data.path().join("junk.json"))
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("rejected 1"));
    let out = stella()
        .args(["feeds", "import", "/nonexistent", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn snapshots_export_deterministically_and_diff() {
    let data = tempfile::tempdir().unwrap();
    let feed = |name: &str, fixed: &str| {
        let path = data.path().join(name);
        std::fs::write(&path, serde_json::json!({"id": "OSV-1", "modified": "2026-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]}).to_string()).unwrap();
        path
    };
    let run = |args: &[&str]| {
        stella()
            .args(args)
            .arg("--data-dir")
            .arg(data.path().join("db"))
            .output()
            .unwrap()
    };
    let first = feed("a.json", "1.0.1");
    assert!(
        run(&["feeds", "import", first.to_str().unwrap()])
            .status
            .success()
    );
    let old = data.path().join("old.jsonl");
    let again = data.path().join("again.jsonl");
    assert!(
        run(&["feeds", "export", old.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        run(&["feeds", "export", again.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read(&old).unwrap(),
        std::fs::read(&again).unwrap(),
        "byte-identical exports"
    );
    let second = feed("b.json", "1.0.2");
    assert!(
        run(&["feeds", "import", second.to_str().unwrap()])
            .status
            .success()
    );
    let new = data.path().join("new.jsonl");
    assert!(
        run(&["feeds", "export", new.to_str().unwrap()])
            .status
            .success()
    );
    let diff = stella()
        .args(["feeds", "diff"])
        .arg(&old)
        .arg(&new)
        .output()
        .unwrap();
    let diff: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    assert_eq!(diff["changed"], serde_json::json!(["OSV-1"]));
    assert_eq!(diff["changedKeys"], serde_json::json!(["npm/left-pad"]));
    std::fs::write(data.path().join("bad.jsonl"), "garbage\n").unwrap();
    let bad = stella()
        .args(["feeds", "diff"])
        .arg(data.path().join("bad.jsonl"))
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn feeds_and_findings_with_advisories_in_postgres() {
    let Some(db) = super::PgDatabase::create("cli_vulns") else {
        return;
    };
    let url = db.url.clone();
    let data = tempfile::tempdir().unwrap();
    let record = data.path().join("osv.json");
    std::fs::write(&record, serde_json::json!({"id": "OSV-PG-1", "modified": "2026-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}).to_string()).unwrap();
    let import = stella()
        .args(["feeds", "import"])
        .arg(&record)
        .args(["--database-url", &url, "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let status = stella()
        .args(["feeds", "status", "--database-url", &url, "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("osv              1 advisories"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    // The embedded catalog has none: the advisories really are in PostgreSQL.
    let embedded = stella()
        .args(["feeds", "status", "--data-dir"])
        .arg(data.path())
        .env_remove("STELLA_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&embedded.stdout).contains("osv "));
    if let Some(dir) = test_image("build-debian.sh", "debian-bookworm") {
        let target = format!("{}:bookworm", dir.join("oci").display());
        let out = stella()
            .args([
                "scan",
                &target,
                "--quiet",
                "--format",
                "findings-json",
                "--database-url",
                &url,
                "--data-dir",
            ])
            .arg(data.path())
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == "OSV-PG-1"),
            "{report}"
        );
    }
}

/// Serves `routes` (path → body) over HTTP/1.1 on loopback; other paths get 404.
fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split(' ').nth(1).unwrap_or("").to_string();
            let response = match routes.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{addr}")
}

/// Offline kits: built byte-identically, verified on import (a changed, missing or unlisted
/// file refuses the whole kit and stores nothing), and importable over HTTP like any source.
#[test]
fn offline_kits_verify_and_http_sources_import() {
    let data = tempfile::tempdir().unwrap();
    let feeds = data.path().join("feeds");
    std::fs::create_dir_all(feeds.join("osv")).unwrap();
    std::fs::write(
        feeds.join("osv/OSV-1.json"),
        serde_json::json!({"id": "OSV-1", "modified": "2026-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.1"}]}]}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        feeds.join("nvd.json"),
        serde_json::json!({"format": "NVD_CVE", "version": "2.0", "vulnerabilities": [
            {"cve": {"id": "CVE-2099-0001", "lastModified": "2099-01-01T00:00:00.000",
             "metrics": {"cvssMetricV31": [{"type": "Primary", "cvssData": {
                "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "baseScore": 9.8}}]},
             "weaknesses": [{"description": [{"lang": "en", "value": "CWE-787"}]}]}}]})
        .to_string(),
    )
    .unwrap();
    let db = data.path().join("db");
    let run = |args: &[&str]| {
        stella()
            .args(args)
            .arg("--data-dir")
            .arg(&db)
            .output()
            .unwrap()
    };
    let kit = data.path().join("kit.zip");
    let again = data.path().join("again.zip");
    for out in [&kit, &again] {
        let o = run(&[
            "feeds",
            "kit",
            feeds.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read(&kit).unwrap(), std::fs::read(&again).unwrap());

    // Tampered kits: rebuild the zip with one member changed, one dropped, or one added.
    type Change<'a> = &'a dyn Fn(&str, Vec<u8>) -> Option<Vec<u8>>;
    let tampered = |name: &str, change: Change, extra: bool| {
        use std::io::{Read, Write};
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&kit).unwrap()).unwrap();
        let path = data.path().join(name);
        let mut out = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..archive.len() {
            let mut member = archive.by_index(i).unwrap();
            let member_name = member.name().unwrap().into_owned();
            let mut bytes = Vec::new();
            member.read_to_end(&mut bytes).unwrap();
            if let Some(bytes) = change(&member_name, bytes) {
                out.start_file(
                    member_name.as_str(),
                    zip::write::SimpleFileOptions::default(),
                )
                .unwrap();
                out.write_all(&bytes).unwrap();
            }
        }
        if extra {
            out.start_file(
                "feeds/sneaky.json",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            out.write_all(b"{}").unwrap();
        }
        out.finish().unwrap();
        path
    };
    let changed = tampered(
        "changed.zip",
        &|name, bytes| {
            Some(if name.ends_with("OSV-1.json") {
                String::from_utf8(bytes)
                    .unwrap()
                    .replace("1.0.1", "9.9.9")
                    .into_bytes()
            } else {
                bytes
            })
        },
        false,
    );
    let dropped = tampered(
        "dropped.zip",
        &|name, bytes| (!name.ends_with("nvd.json")).then_some(bytes),
        false,
    );
    let added = tampered("added.zip", &|_, bytes| Some(bytes), true);
    let garbled = tampered(
        "garbled.zip",
        &|name, bytes| {
            Some(if name == "stella-kit.json" {
                b"{\"kind\": 7}".to_vec()
            } else {
                bytes
            })
        },
        false,
    );
    for (path, reason) in [
        (
            &changed,
            "kit verification failed: feeds/osv/OSV-1.json has sha256",
        ),
        (
            &dropped,
            "kit verification failed: feeds/nvd.json is listed but missing",
        ),
        (
            &added,
            "kit verification failed: feeds/sneaky.json is not listed in the manifest",
        ),
        (&garbled, "stella-kit.json is not a kit manifest"),
    ] {
        let o = run(&["feeds", "import", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
    }
    let status = String::from_utf8_lossy(&run(&["feeds", "status"]).stdout).to_string();
    assert!(status.contains("no import yet"), "{status}");

    // The intact kit, over HTTP.
    let base = serve(vec![("/kit.zip", std::fs::read(&kit).unwrap())]);
    let o = run(&["feeds", "import", &format!("{base}/kit.zip")]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("offline kit verified (2 files"), "{stderr}");
    assert!(
        stdout.starts_with("imported 2 advisories, rejected 0"),
        "{stdout}"
    );
    let status = String::from_utf8_lossy(&run(&["feeds", "status"]).stdout).to_string();
    assert!(
        status.contains("nvd") && status.contains("osv") && status.contains("/kit.zip"),
        "{status}"
    );
    // Missing on the server, and nothing listening: clear usage errors.
    let o = run(&["feeds", "import", &format!("{base}/gone.json")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HTTP 404"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let o = run(&[
        "feeds",
        "import",
        &format!("http://127.0.0.1:{port}/feed.json"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unreachable"));
}

/// `stella feeds sync` against a mirror on loopback keeping the upstream paths: OSV's
/// per-ecosystem archive, the Debian tracker, Alpine's secdb, KEV and EPSS, all imported in
/// one run (KEV and EPSS downloaded as exploit signals); a missing source fails the sync.
#[test]
fn feeds_sync_fetches_the_public_sources() {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("OSV-2099-7.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(
        serde_json::json!({"id": "OSV-2099-7", "modified": "2099-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9"}]}]}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let osv = zip.finish().unwrap().into_inner();
    let tracker = serde_json::json!({"dash": {"CVE-2099-7000": {"description": "x",
        "releases": {"bookworm": {"status": "open", "urgency": "low"}}}}});
    let secdb = serde_json::json!({"distroversion": "v3.21", "reponame": "main",
        "urlprefix": "https://dl-cdn.alpinelinux.org/alpine", "apkurl": "{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk",
        "archs": ["x86_64"], "packages": [{"pkg": {"name": "busybox", "secfixes": {"1.36.1-r1": ["CVE-2099-7001"]}}}]});
    let kev = serde_json::json!({"title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2099.01.01", "count": 1, "vulnerabilities": [
            {"cveID": "CVE-2099-7000", "vendorProject": "Debian", "product": "dash",
             "dateAdded": "2099-01-01", "knownRansomwareCampaignUse": "Unknown"}]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"#model_version:v2023.03.01,score_date:2099-01-01T00:00:00+0000\ncve,epss,percentile\nCVE-2099-7000,0.5,0.9\n")
        .unwrap();
    let base = serve(vec![
        (
            "/osv-vulnerabilities.storage.googleapis.com/Debian/all.zip",
            osv,
        ),
        (
            "/security-tracker.debian.org/tracker/data/json",
            tracker.to_string().into_bytes(),
        ),
        (
            "/secdb.alpinelinux.org/v3.21/main.json",
            secdb.to_string().into_bytes(),
        ),
        (
            "/secdb.alpinelinux.org/v3.21/community.json",
            secdb.to_string().into_bytes(),
        ),
        (
            "/www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
            kev.to_string().into_bytes(),
        ),
        (
            "/epss.cyentia.com/epss_scores-current.csv.gz",
            gz.finish().unwrap(),
        ),
    ]);
    let data = tempfile::tempdir().unwrap();
    let sync = |extra: &[&str]| {
        stella()
            .args([
                "feeds",
                "sync",
                "--ecosystems",
                "Debian",
                "--alpine",
                "v3.21",
                "--mirror",
                &base,
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("STELLA_DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = sync(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("KEV catalog 2099.01.01"), "{stdout}");
    assert!(stdout.contains("EPSS scores of 2099-01-01"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fetching 6 sources"), "{stderr}");
    let status = stella()
        .args(["feeds", "status", "--json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let sources: Vec<&str> = status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    for wanted in ["debian-tracker", "osv", "alpine-secdb"] {
        assert!(sources.contains(&wanted), "{wanted} in {status}");
    }
    // The URLs it would fetch, without fetching; an unreachable source is an error.
    let listed = sync(&["--dry-run", "--source", "kev"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        format!(
            "{base}/www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
        )
    );
    let missing = stella()
        .args([
            "feeds",
            "sync",
            "--source",
            "osv",
            "--ecosystems",
            "npm",
            "--mirror",
            &base,
        ])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    // A mirror that is not an http(s) URL is refused before anything is read.
    for mirror in ["file:///etc", "/etc", "not a url"] {
        let refused = stella()
            .args(["feeds", "sync", "--source", "kev", "--mirror", mirror])
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "{mirror}");
        assert!(
            String::from_utf8_lossy(&refused.stderr)
                .contains("expected an http:// or https:// URL"),
            "{mirror}"
        );
    }
}
