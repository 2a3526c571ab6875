//! The parsers against the real documents of the shared fixtures: OpenVEX examples, the OASIS
//! CSAF VEX examples, Red Hat CSAF, the CSAF validator test cases and the CycloneDX 1.6
//! vulnerability example. Expectations come from the documents themselves, by a small JSON
//! walk written here, never from the parser under test.

use serde_json::Value;
use std::path::{Path, PathBuf};

mod csaf;
mod cyclonedx;
mod openvex;
mod snapshot;

/// `$STELLA_FIXTURES/<sub>` (default: the shared fixtures beside the repository); `None`, with
/// a message, when absent.
pub(crate) fn fixtures(sub: &str) -> Option<PathBuf> {
    stella_e2e::services::fixtures(sub)
}

pub(crate) fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The `.json` files of a directory, sorted.
pub(crate) fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Percent-decoding of a whole string, for comparing purls written in different encodings.
pub(crate) fn decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn truncated_real_documents_are_errors_not_panics() {
    let Some(dir) = fixtures("schemas/openvex/examples/openvex") else {
        return;
    };
    let bytes = std::fs::read(dir.join("demo.vex.json")).unwrap();
    for cut in (0..bytes.len() - 2).step_by(7) {
        assert!(
            stella_vex::parse(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes"
        );
    }
    let Some(cdx) = fixtures("schemas/cyclonedx/test-resources-1.6/valid-vulnerability-1.6.json")
    else {
        return;
    };
    let bytes = std::fs::read(cdx).unwrap();
    let options = stella_vex::Options {
        provider: Some("x".into()),
    };
    for cut in (0..bytes.len() - 2).step_by(101) {
        assert!(
            stella_vex::parse_with(&bytes[..cut], &options).is_err(),
            "prefix of {cut} bytes"
        );
    }
}

#[test]
fn huge_strings_are_rejected_with_a_reason() {
    let huge = "x".repeat(2 << 20);
    let doc = serde_json::json!({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "author": "a",
    "timestamp": "2024-01-01T00:00:00Z",
    "statements": [
        {"vulnerability": {"name": huge}, "products": [{"@id": "pkg:npm/a@1"}], "status": "fixed"},
        {"vulnerability": {"name": "CVE-1"}, "products": [{"@id": format!("pkg:npm/{huge}")}], "status": "fixed"},
        {"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:npm/a@1"}], "status": "affected", "action_statement": huge},
        {"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:npm/a@1"}], "status": "fixed"}
    ]});
    let d = stella_vex::parse(doc.to_string().as_bytes()).unwrap();
    assert_eq!(d.statements.len(), 1);
    let reasons: Vec<&str> = d.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "vulnerability name longer than 1024 bytes",
            "purl longer than 4096 bytes",
            "action_statement longer than 65536 bytes"
        ]
    );
}
