//! `stella vex` as a user runs it: import from directories, zips and URLs with rejections
//! reported, idempotent re-import, status with the snapshot hash, consensus under a trust file,
//! and the statements kept in PostgreSQL.

use super::stella;
use std::path::{Path, PathBuf};
use std::process::Output;

fn openvex_examples() -> Option<PathBuf> {
    stella_e2e::services::fixtures("schemas/openvex/examples/openvex")
}

fn vex(data: &Path, args: &[&str]) -> Output {
    stella()
        .arg("vex")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("STELLA_DATABASE_URL")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Two providers disagreeing about CVE-2099-1 in openssl.
fn conflicting(dir: &Path) {
    let vendor = serde_json::json!({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://vendor.example/1",
        "author": "Vendor", "timestamp": "2099-01-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2099-1"}, "products": [{"@id": "pkg:deb/debian/openssl@3.0.11-1"}],
            "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]});
    let scanner = serde_json::json!({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://scanner.example/1",
        "author": "Scanner", "timestamp": "2099-01-02T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2099-1"}, "products": [{"@id": "pkg:deb/debian/openssl"}],
            "status": "affected", "action_statement": "upgrade"}]});
    std::fs::write(dir.join("vendor.json"), vendor.to_string()).unwrap();
    std::fs::write(dir.join("scanner.json"), scanner.to_string()).unwrap();
}

#[test]
fn import_reports_rejections_and_reimport_adds_nothing() {
    let Some(examples) = openvex_examples() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    // A zip of two documents and a file that is no VEX at all.
    let zip_path = inputs.path().join("bundle.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    for name in ["demo.vex.json", "vexctl-testdata-images.vex.json"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::copy(
            &mut std::fs::File::open(examples.join(name)).unwrap(),
            &mut zip,
        )
        .unwrap();
    }
    zip.finish().unwrap();
    std::fs::write(inputs.path().join("junk.json"), b"{\"hello\": ").unwrap();

    let out = vex(data.path(), &["import", inputs.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // demo: 2 statements; images: 2 accepted, 2 products not purls; junk: not JSON.
    assert_eq!(
        text(&out.stdout).trim(),
        "imported 4 statements from 2 documents (4 new), rejected 3"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bundle.zip:vexctl-testdata-images.vex.json: statements[1].products[0]: product \"nginx\""), "{stderr}");
    assert!(stderr.contains("junk.json: not JSON"), "{stderr}");

    let again = vex(data.path(), &["import", zip_path.to_str().unwrap()]);
    assert_eq!(
        text(&again.stdout).trim(),
        "imported 4 statements from 2 documents (0 new), rejected 2"
    );

    let status = vex(data.path(), &["status"]);
    let shown = text(&status.stdout);
    let mut statements = Vec::new();
    for name in ["demo.vex.json", "vexctl-testdata-images.vex.json"] {
        statements.extend(
            stella_vex::parse(&std::fs::read(examples.join(name)).unwrap())
                .unwrap()
                .statements,
        );
    }
    assert!(
        shown.contains(&format!(
            "snapshot {}",
            stella_vex::snapshot_hash(&statements)
        )),
        "{shown}"
    );
    assert!(shown.contains("4 statements"), "{shown}");
    assert!(
        shown.contains("John Doe: 2 (under_investigation 2)"),
        "{shown}"
    );
    assert!(shown.contains("Wolfi J Inkinson: 2 (fixed 2)"), "{shown}");
    assert!(shown.contains("4 accepted, 2 rejected"), "{shown}");
}

#[test]
fn consensus_follows_the_trust_file() {
    let data = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    conflicting(inputs.path());
    let out = vex(data.path(), &["import", inputs.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Equal default weights: a tie, resolved conservatively.
    let out = vex(
        data.path(),
        &[
            "consensus",
            "--vuln",
            "CVE-2099-1",
            "--product",
            "pkg:deb/debian/openssl@3.0.11-1?arch=amd64",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let decisions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decisions.as_array().unwrap().len(), 1);
    assert_eq!(decisions[0]["status"], "affected");
    assert!(
        decisions[0]["reason"]
            .as_str()
            .unwrap()
            .contains("tie with not_affected")
    );

    // The vendor trusted over a third-party scanner.
    let trust = inputs.path().join("trust.yaml");
    std::fs::write(&trust, "providers:\n  - {name: Vendor, category: vendor}\n  - {name: Scanner, category: third_party}\n").unwrap();
    let args = [
        "consensus",
        "--vuln",
        "CVE-2099-1",
        "--product",
        "pkg:deb/debian/openssl@3.0.11-1?arch=amd64",
        "--trust",
        trust.to_str().unwrap(),
    ];
    let json_out = vex(data.path(), &[&args[..], &["--format", "json"]].concat());
    let decisions: serde_json::Value = serde_json::from_slice(&json_out.stdout).unwrap();
    let d = &decisions[0];
    assert_eq!(
        (d["status"].as_str(), d["justification"].as_str()),
        (
            Some("not_affected"),
            Some("vulnerable_code_not_in_execute_path")
        )
    );
    assert_eq!(d["support"][0]["statement"]["provider"]["name"], "Vendor");
    assert_eq!(
        d["conflicts"][0]["statement"]["provider"]["name"],
        "Scanner"
    );
    assert_eq!(d["weights"]["affected"], 0.5);
    let table = text(&vex(data.path(), &args).stdout);
    assert!(table.starts_with("CVE-2099-1  pkg:deb/debian/openssl@3.0.11-1?arch=amd64  not_affected (vulnerable_code_not_in_execute_path)"), "{table}");
    assert!(
        table.contains("support      not_affected [1] Vendor"),
        "{table}"
    );
    assert!(
        table.contains("conflict     affected [0.5] Scanner"),
        "{table}"
    );

    // Without --product, one decision per stated product: the two statements name different
    // product forms, so each decides alone.
    let all = vex(data.path(), &["consensus", "--format", "json"]);
    let decisions: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(decisions.as_array().unwrap().len(), 2);

    // Usage errors.
    std::fs::write(&trust, "defaultWeight: -1\n").unwrap();
    let bad = vex(data.path(), &args);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("weight -1"),
        "{}",
        text(&bad.stderr)
    );
    let bad = vex(data.path(), &["consensus", "--product", "openssl"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = vex(data.path(), &["import", "/nonexistent/vex.json"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn import_from_a_url() {
    let inputs = tempfile::tempdir().unwrap();
    conflicting(inputs.path());
    let body = std::fs::read(inputs.path().join("vendor.json")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        for status in ["200 OK", "404 Not Found"] {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request).unwrap();
            let payload: &[u8] = if status.starts_with("200") {
                &body
            } else {
                b""
            };
            write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                payload.len()
            )
            .unwrap();
            conn.write_all(payload).unwrap();
        }
    });
    let data = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/vendor.json");
    let out = vex(data.path(), &["import", &url]);
    assert_eq!(
        text(&out.stdout).trim(),
        "imported 1 statements from 1 documents (1 new), rejected 0",
        "{}",
        text(&out.stderr)
    );
    let missing = vex(
        data.path(),
        &["import", &format!("http://127.0.0.1:{port}/missing.json")],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("HTTP 404"),
        "{}",
        text(&missing.stderr)
    );
    server.join().unwrap();
}

#[test]
fn statements_in_postgres() {
    let Some(db) = super::PgDatabase::create("cli_vex") else {
        return;
    };
    let url = db.url.clone();
    let data = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    conflicting(inputs.path());
    let out = vex(
        data.path(),
        &[
            "import",
            inputs.path().to_str().unwrap(),
            "--database-url",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = text(&vex(data.path(), &["status", "--database-url", &url]).stdout);
    assert!(status.contains("2 statements"), "{status}");
    // The embedded catalog has none: the statements really are in PostgreSQL.
    let embedded = text(&vex(data.path(), &["status"]).stdout);
    assert!(embedded.contains("0 statements"), "{embedded}");
}
