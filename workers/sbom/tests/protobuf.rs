//! CycloneDX 1.6 protobuf: decoded by `protoc` (a real protobuf implementation, not ours) and
//! compared with the JSON document field by field; byte-stable against a golden file.

use serde_json::Value;
use std::path::PathBuf;
use stella_analyzers::{Ecosystem, Evidence, Package};
use stella_sbom::{Component, Inventory, Relationship};

/// The sample inventory plus everything the emitters treat specially: a `bin:` file component
/// with a build id, components used by the entrypoint, one purl installed at two paths (bom-refs
/// with `#path`), an empty version, a string that needs escaping, `links_to` edges and a
/// degraded database.
pub(crate) fn rich_inventory() -> Inventory {
    let mut inventory = super::sample_inventory();
    let npm = |path: &str, used: bool| Component {
        package: Package {
            licenses: vec!["MIT".into()],
            supplier: Some("The \"lodash\" authors\tteam".into()),
            ..Package::installed(
                Ecosystem::Npm,
                "lodash".into(),
                "4.17.21".into(),
                "pkg:npm/lodash@4.17.21".into(),
                Evidence {
                    source: "npm-package-json".into(),
                    path: path.into(),
                    method: "installed-metadata".into(),
                },
            )
        },
        layer_digest: Some(format!("sha256:{}", "02".repeat(32))),
        used_by_entrypoint: used,
        properties: vec![],
    };
    let sha = "5e".repeat(32);
    let binary = Component {
        package: Package {
            files: vec!["/usr/lib/libfoo.so.1".into()],
            ..Package::installed(
                Ecosystem::Binary,
                "libfoo.so.1".into(),
                String::new(),
                format!("bin:{sha}"),
                Evidence {
                    source: "elf".into(),
                    path: "usr/lib/libfoo.so.1".into(),
                    method: "file-content".into(),
                },
            )
        },
        layer_digest: None,
        used_by_entrypoint: true,
        properties: vec![
            ("stellaops:buildId".into(), "0123456789abcdef".into()),
            ("stellaops:elf.soname".into(), "libfoo.so.1".into()),
        ],
    };
    let bash = inventory.components[0].package.purl.clone();
    let curl = inventory.components[2].package.purl.clone();
    inventory.components[0].used_by_entrypoint = true;
    inventory.components.insert(0, binary);
    inventory
        .components
        .push(npm("app/node_modules/lodash/package.json", true));
    inventory
        .components
        .push(npm("opt/tool/node_modules/lodash/package.json", false));
    inventory.relationships = vec![
        Relationship {
            from: bash.clone(),
            to: format!("bin:{sha}"),
            kind: "links_to".into(),
        },
        Relationship {
            from: curl.clone(),
            to: format!("bin:{sha}"),
            kind: "links_to".into(),
        },
        Relationship {
            from: curl,
            to: bash,
            kind: "mentions".into(),
        },
    ];
    inventory.errors = vec!["var/lib/rpm/rpmdb.sqlite: file is not a database".into()];
    // Fixed, so the golden files do not follow the analyzer set's version.
    inventory.analyzer_version = "stella-analyzers/golden".into();
    inventory
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `bytes` with `tests/golden/<name>`; `STELLA_UPDATE_GOLDEN=1` rewrites the file.
pub(crate) fn golden(name: &str, bytes: &[u8]) {
    let path = golden_path(name);
    if std::env::var_os("STELLA_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (STELLA_UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        expected == bytes,
        "{} differs from the output ({} vs {} bytes)",
        path.display(),
        expected.len(),
        bytes.len()
    );
}

#[test]
fn json_is_unchanged_by_the_shared_model() {
    let inventory = rich_inventory();
    golden(
        "rich.cdx.json",
        stella_sbom::cyclonedx::to_json(&inventory).as_bytes(),
    );
    let mut sample = super::sample_inventory();
    sample.analyzer_version = "stella-analyzers/golden".into();
    golden(
        "sample.cdx.json",
        stella_sbom::cyclonedx::to_json(&sample).as_bytes(),
    );
    let _: Value = serde_json::from_str(&stella_sbom::cyclonedx::to_json(&inventory)).unwrap();
}

/// The directory of `bom-1.6.proto` (`$STELLA_FIXTURES/schemas/cyclonedx`).
fn proto_dir() -> Option<PathBuf> {
    stella_e2e::services::fixtures("schemas/cyclonedx/bom-1.6.proto")
        .and_then(|proto| proto.parent().map(PathBuf::from))
}

/// `protoc --decode` of `bytes` as text format; `None` (skip) without protoc, a failure under CI.
fn protoc_decode(bytes: &[u8]) -> Option<String> {
    use std::io::Write;
    let dir = proto_dir()?;
    let child = std::process::Command::new("protoc")
        .arg("--decode=cyclonedx.v1_6.Bom")
        .arg("-I")
        .arg(&dir)
        .arg("bom-1.6.proto")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            let message = format!("protoc not runnable ({e}): apt-get install protobuf-compiler");
            assert!(std::env::var_os("CI").is_none(), "{message}");
            eprintln!("SKIPPED: {message}");
            return None;
        }
    };
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "protoc rejected our bytes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// A protobuf message as text format shows it: field name → values in order.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Scalar(String),
    Message(Message),
}

type Message = std::collections::BTreeMap<String, Vec<Node>>;

/// Parses protoc's text format (`name: value` and `name { … }` lines).
fn parse_text(text: &str) -> Message {
    fn message<'a>(lines: &mut impl Iterator<Item = &'a str>) -> Message {
        let mut fields = Message::new();
        while let Some(line) = lines.next() {
            let line = line.trim();
            if line == "}" {
                return fields;
            }
            if let Some(name) = line.strip_suffix(" {") {
                let nested = message(lines);
                fields
                    .entry(name.to_string())
                    .or_default()
                    .push(Node::Message(nested));
            } else {
                let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("{line}"));
                // Unknown fields print as their number: a field we numbered wrong.
                assert!(
                    !name.chars().all(|c| c.is_ascii_digit()),
                    "protoc found an unknown field: {line}"
                );
                fields
                    .entry(name.to_string())
                    .or_default()
                    .push(Node::Scalar(unquote(value)));
            }
        }
        fields
    }
    message(&mut text.lines().filter(|l| !l.trim().is_empty()))
}

/// A text-format string literal (C escapes, octal bytes) to its text; other values as they are.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_string();
    };
    let mut bytes = Vec::new();
    let mut chars = inner.bytes().peekable();
    while let Some(b) = chars.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match chars.next().unwrap() {
            b'n' => bytes.push(b'\n'),
            b't' => bytes.push(b'\t'),
            b'r' => bytes.push(b'\r'),
            d @ b'0'..=b'7' => {
                let mut n = u32::from(d - b'0');
                for _ in 0..2 {
                    match chars.peek() {
                        Some(&d @ b'0'..=b'7') => {
                            n = n * 8 + u32::from(d - b'0');
                            chars.next();
                        }
                        _ => break,
                    }
                }
                bytes.push(n as u8);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).unwrap()
}

fn scalar(fields: &mut Message, name: &str, value: impl ToString) {
    fields
        .entry(name.into())
        .or_default()
        .push(Node::Scalar(value.to_string()));
}

fn nested(fields: &mut Message, name: &str, value: Message) {
    fields
        .entry(name.into())
        .or_default()
        .push(Node::Message(value));
}

/// What protoc must show for a JSON component, field by field.
fn expected_component(c: &Value) -> Message {
    let mut m = Message::new();
    let kind = c["type"].as_str().unwrap();
    scalar(
        &mut m,
        "type",
        format!("CLASSIFICATION_{}", kind.to_uppercase().replace('-', "_")),
    );
    for (json, proto) in [
        ("bom-ref", "bom_ref"),
        ("publisher", "publisher"),
        ("name", "name"),
        ("version", "version"),
        ("description", "description"),
        ("purl", "purl"),
    ] {
        if let Some(v) = c.get(json) {
            scalar(&mut m, proto, v.as_str().unwrap());
        }
    }
    for h in c["hashes"].as_array().into_iter().flatten() {
        assert_eq!(h["alg"], "SHA-256");
        let mut hash = Message::new();
        scalar(&mut hash, "alg", "HASH_ALG_SHA_256");
        scalar(&mut hash, "value", h["content"].as_str().unwrap());
        nested(&mut m, "hashes", hash);
    }
    for l in c["licenses"].as_array().into_iter().flatten() {
        let mut license = Message::new();
        scalar(&mut license, "name", l["license"]["name"].as_str().unwrap());
        let mut choice = Message::new();
        nested(&mut choice, "license", license);
        nested(&mut m, "licenses", choice);
    }
    for p in c["properties"].as_array().into_iter().flatten() {
        nested(&mut m, "properties", expected_property(p));
    }
    if let Some(evidence) = c.get("evidence") {
        let mut e = Message::new();
        for o in evidence["occurrences"].as_array().unwrap() {
            let mut occurrence = Message::new();
            scalar(&mut occurrence, "location", o["location"].as_str().unwrap());
            nested(&mut e, "occurrences", occurrence);
        }
        nested(&mut m, "evidence", e);
    }
    m
}

fn expected_property(p: &Value) -> Message {
    let mut m = Message::new();
    scalar(&mut m, "name", p["name"].as_str().unwrap());
    scalar(&mut m, "value", p["value"].as_str().unwrap());
    m
}

/// What protoc must show for the JSON document; `timestamp` is the instant of its
/// `metadata.timestamp` (worked out by hand, not by the code under test).
fn expected(document: &Value, timestamp: Option<(i64, i32)>) -> Message {
    assert_eq!(document["bomFormat"], "CycloneDX");
    let mut bom = Message::new();
    scalar(
        &mut bom,
        "spec_version",
        document["specVersion"].as_str().unwrap(),
    );
    scalar(&mut bom, "version", document["version"].as_u64().unwrap());
    scalar(
        &mut bom,
        "serial_number",
        document["serialNumber"].as_str().unwrap(),
    );
    let metadata = &document["metadata"];
    let mut m = Message::new();
    assert_eq!(timestamp.is_some(), metadata.get("timestamp").is_some());
    if let Some((seconds, nanos)) = timestamp {
        let mut t = Message::new();
        scalar(&mut t, "seconds", seconds);
        scalar(&mut t, "nanos", nanos);
        nested(&mut m, "timestamp", t);
    }
    let mut tools = Message::new();
    for c in metadata["tools"]["components"].as_array().unwrap() {
        nested(&mut tools, "components", expected_component(c));
    }
    nested(&mut m, "tools", tools);
    nested(
        &mut m,
        "component",
        expected_component(&metadata["component"]),
    );
    for p in metadata["properties"].as_array().unwrap() {
        nested(&mut m, "properties", expected_property(p));
    }
    nested(&mut bom, "metadata", m);
    for c in document["components"].as_array().unwrap() {
        nested(&mut bom, "components", expected_component(c));
    }
    for d in document["dependencies"].as_array().unwrap() {
        let mut dependency = Message::new();
        scalar(&mut dependency, "ref", d["ref"].as_str().unwrap());
        for r in d["dependsOn"].as_array().unwrap() {
            let mut on = Message::new();
            scalar(&mut on, "ref", r.as_str().unwrap());
            nested(&mut dependency, "dependencies", on);
        }
        nested(&mut bom, "dependencies", dependency);
    }
    bom
}

#[test]
fn protoc_decodes_the_same_content_as_the_json() {
    let inventory = rich_inventory();
    let bytes = stella_sbom::cyclonedx_pb::to_protobuf(&inventory);
    let Some(text) = protoc_decode(&bytes) else {
        return;
    };
    let document = stella_sbom::cyclonedx::document(&inventory);
    // 2024-05-01T10:20:30.123456789Z
    let want = expected(&document, Some((1_714_558_830, 123_456_789)));
    let got = parse_text(&text);
    assert_eq!(got, want, "protoc:\n{text}");
    // The special cases reached the protobuf.
    for needle in [
        "CLASSIFICATION_FILE",
        "stellaops:usedByEntrypoint",
        "stellaops:buildId",
        "#app/node_modules/lodash/package.json",
        "seconds: 1714558830",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

/// No distro, no tags, no `created`, no relationships: the absent parts are absent in both.
#[test]
fn protoc_decodes_a_minimal_inventory() {
    let mut inventory = super::sample_inventory();
    inventory.distro = None;
    inventory.image.tags.clear();
    inventory.image.created = None;
    inventory.image.repository = None;
    let bytes = stella_sbom::cyclonedx_pb::to_protobuf(&inventory);
    let Some(text) = protoc_decode(&bytes) else {
        return;
    };
    let document = stella_sbom::cyclonedx::document(&inventory);
    assert_eq!(parse_text(&text), expected(&document, None), "{text}");
    assert!(!text.contains("timestamp"));
    assert!(!text.contains("CLASSIFICATION_OPERATING_SYSTEM"));
}

/// A `created` that is not RFC 3339 stays in the JSON as given and is left out of the protobuf
/// (a Timestamp cannot carry it); everything else is the same.
#[test]
fn an_unparseable_created_is_left_out_of_the_protobuf_only() {
    let mut inventory = rich_inventory();
    inventory.image.created = Some("last tuesday".into());
    let bytes = stella_sbom::cyclonedx_pb::to_protobuf(&inventory);
    let mut document = stella_sbom::cyclonedx::document(&inventory);
    assert_eq!(document["metadata"]["timestamp"], "last tuesday");
    let Some(text) = protoc_decode(&bytes) else {
        return;
    };
    document["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("timestamp");
    assert_eq!(parse_text(&text), expected(&document, None));
}

#[test]
fn protobuf_is_byte_stable() {
    let inventory = rich_inventory();
    let bytes = stella_sbom::cyclonedx_pb::to_protobuf(&inventory);
    assert_eq!(
        bytes,
        stella_sbom::cyclonedx_pb::to_protobuf(&inventory.clone())
    );
    golden("rich.cdx.pb", &bytes);
    // Content-derived: another image gives other bytes.
    let mut other = inventory.clone();
    other.image.digest = format!("sha256:{}", "ef".repeat(32));
    assert_ne!(bytes, stella_sbom::cyclonedx_pb::to_protobuf(&other));
}

/// SPDX 3.0.1 and the usage view are pinned by golden files as well: any change to the
/// emitted bytes is a deliberate one.
#[test]
fn spdx_and_usage_view_goldens() {
    let inventory = rich_inventory();
    golden(
        "rich.spdx.json",
        stella_sbom::spdx::to_json(&inventory).as_bytes(),
    );
    let usage = inventory.usage_view();
    assert!(usage.components.iter().all(|c| c.used_by_entrypoint));
    assert!(!usage.components.is_empty());
    golden(
        "rich.usage.cdx.json",
        stella_sbom::cyclonedx::to_json(&usage).as_bytes(),
    );
    golden(
        "rich.usage.cdx.pb",
        &stella_sbom::cyclonedx_pb::to_protobuf(&usage),
    );
}
