//! Verdicts with their proof: deterministic roots, bundles that replay to the same root, any
//! changed input changing the root, tampering detected, overrides showing what changes.

use stella_analyzers::{Ecosystem, Evidence, Package};
use stella_sbom::{Component, ImageInfo, Inventory};
use stella_verdict::bundle::{self, Error, Overrides};
use stella_verdict::evaluate::{Inputs, evaluate};

const IMAGE: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";

fn deb(name: &str, version: &str) -> Component {
    let mut package = Package::installed(
        Ecosystem::Deb,
        name.into(),
        version.into(),
        format!("pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12"),
        Evidence {
            source: "dpkg-status".into(),
            path: "var/lib/dpkg/status".into(),
            method: "package-database".into(),
        },
    );
    package.source_name = Some(name.into());
    Component {
        package,
        layer_digest: None,
        used_by_entrypoint: name == "openssl",
        properties: vec![],
    }
}

fn osv(id: &str, package: &str, fixed: &str, score: &str) -> stella_advisories::Advisory {
    stella_advisories::osv::from_value(&serde_json::json!({
        "id": id, "modified": "2024-01-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": score}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": package},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    }))
    .unwrap()
}

const CRITICAL: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
const MEDIUM: &str = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N";

fn policy(yaml: &str) -> stella_policy::PolicySpec {
    stella_policy::load_str(yaml).unwrap().spec
}

const POLICY: &str = "version: \"1.0\"\nrules:\n  - name: Block Critical\n    severity: [Critical]\n    action: block\n  - name: Warn Medium\n    severity: [Medium]\n    action: warn\n";

fn inputs() -> Inputs {
    Inputs {
        inventory: Inventory {
            image: ImageInfo {
                digest: IMAGE.into(),
                config_digest: "sha256:66".into(),
                name: "registry.example/app:1".into(),
                repository: Some("registry.example/app".into()),
                tags: vec![],
                created: None,
                os: "linux".into(),
                architecture: "amd64".into(),
                layers: vec![],
                user: None,
            },
            distro: Some(stella_analyzers::Distro {
                id: "debian".into(),
                version_id: Some("12".into()),
                ..Default::default()
            }),
            components: vec![deb("openssl", "3.0.11-1"), deb("zlib", "1.2.13-1")],
            analyzer_version: "test".into(),
            errors: vec![],
            relationships: vec![],
            entry_trace: None,
            view: Default::default(),
            origin: None,
        },
        advisories: vec![
            osv("CVE-2024-0001", "openssl", "3.0.12-1", CRITICAL),
            osv("CVE-2024-0002", "zlib", "1.2.14-1", MEDIUM),
            osv("CVE-2024-0003", "zlib", "1.2.0-1", CRITICAL),
        ],
        statements: vec![],
        trust: Default::default(),
        exploits: Default::default(),
        policy: policy(POLICY),
        evaluated_at: "2026-06-01T00:00:00Z".parse().unwrap(),
        namespace: None,
        environment: None,
    }
}

fn openvex(status: &str) -> Vec<stella_vex::Statement> {
    let doc = serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1", "author": "Example Vendor",
        "timestamp": "2024-02-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2024-0001"},
            "products": [{"@id": "pkg:deb/debian/openssl@3.0.11-1"}],
            "status": status, "justification": "vulnerable_code_not_in_execute_path"}]
    });
    stella_vex::parse(doc.to_string().as_bytes())
        .unwrap()
        .statements
}

#[test]
fn the_verdict_is_proved_and_replays_to_the_same_root() {
    let inputs = inputs();
    let a = evaluate(&inputs);
    let ids: Vec<&str> = a.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["CVE-2024-0001", "CVE-2024-0002"]);
    assert_eq!(serde_json::to_value(a.report.verdict).unwrap(), "FAIL");
    stella_verdict::evaluate::verify(&a.nodes).unwrap();
    // Inputs, a match, a delta per finding, and the verdict over the deltas.
    let kinds: Vec<String> = a
        .nodes
        .iter()
        .map(|n| format!("{:?} {}", n.kind, n.id))
        .collect();
    assert!(
        kinds.contains(&"Score score:verdict".to_string()),
        "{kinds:?}"
    );
    assert_eq!(a.nodes.len(), 4 + 2 * 2 + 1, "{kinds:?}");
    let verdict = a.nodes.last().unwrap();
    assert_eq!(verdict.rule_id.as_deref(), Some("FAIL"));
    assert_eq!(
        verdict.total,
        a.report.findings.iter().map(|d| d.score.score).sum::<f64>()
    );
    assert!(a.manifest.lattice_policy_hash.starts_with("sha256:"));
    assert!(a.manifest.deterministic);

    // Same inputs: byte-identical everything.
    let b = evaluate(&inputs);
    assert_eq!(a.root, b.root);
    assert_eq!(a.nodes, b.nodes);
    assert_eq!(a.manifest, b.manifest);
    let bytes = bundle::write(&inputs, &a);
    assert_eq!(bytes, bundle::write(&inputs, &b));

    // Replay proves the recorded root.
    let (replay, again) = bundle::replay(&bytes, Overrides::default()).unwrap();
    assert!(replay.proved, "{replay:?}");
    assert_eq!(replay.root, a.root);
    assert!(replay.changes.is_empty() && replay.changed_inputs.is_empty());
    assert_eq!(again.report, a.report);
}

#[test]
fn any_change_to_any_input_changes_the_root() {
    let base = evaluate(&inputs()).root;
    let mut changed = Vec::new();
    let mut i = inputs();
    i.inventory.components[1].package.version = "1.2.13-2".into();
    changed.push(("inventory", evaluate(&i).root));
    let mut i = inputs();
    i.advisories.pop();
    changed.push(("advisories", evaluate(&i).root));
    let mut i = inputs();
    i.statements = openvex("under_investigation");
    changed.push(("vex", evaluate(&i).root));
    let mut i = inputs();
    i.trust.default_weight = 0.5;
    changed.push(("trust", evaluate(&i).root));
    let mut i = inputs();
    i.policy = policy(&POLICY.replace("action: warn", "action: block"));
    changed.push(("policy", evaluate(&i).root));
    let mut i = inputs();
    i.evaluated_at = "2026-06-02T00:00:00Z".parse().unwrap();
    changed.push(("time", evaluate(&i).root));
    let mut i = inputs();
    i.exploits.insert(
        "CVE-2024-0002".into(),
        stella_verdict::evaluate::Exploit {
            kev: false,
            epss: Some(0.2),
        },
    );
    changed.push(("exploits", evaluate(&i).root));
    for (what, root) in &changed {
        assert_ne!(root, &base, "{what} did not change the root");
    }
    let distinct: std::collections::BTreeSet<&String> = changed.iter().map(|(_, r)| r).collect();
    assert_eq!(distinct.len(), changed.len());
}

#[test]
fn known_exploited_vulnerabilities_reach_the_policy() {
    let mut i = inputs();
    i.policy = policy(&POLICY.replace(
        "rules:\n",
        "rules:\n  - name: Known exploited\n    kev: true\n    action: block\n",
    ));
    let before = evaluate(&i);
    let zlib = |e: &stella_verdict::evaluate::Evaluation| {
        e.report
            .findings
            .iter()
            .find(|d| d.id == "CVE-2024-0002")
            .unwrap()
            .rule
            .clone()
    };
    assert_eq!(zlib(&before).as_deref(), Some("Warn Medium"));
    i.exploits.insert(
        "CVE-2024-0002".into(),
        stella_verdict::evaluate::Exploit {
            kev: true,
            epss: Some(0.9),
        },
    );
    let after = evaluate(&i);
    assert_eq!(zlib(&after).as_deref(), Some("Known exploited"));
    assert_ne!(
        before.manifest.exploit_snapshot_hash,
        after.manifest.exploit_snapshot_hash
    );
    // The signals travel in the bundle and replay to the same root.
    let (replay, _) = bundle::replay(&bundle::write(&i, &after), Overrides::default()).unwrap();
    assert!(replay.proved);
}

#[test]
fn overrides_show_which_decisions_and_verdicts_change() {
    let inputs = inputs();
    let bytes = bundle::write(&inputs, &evaluate(&inputs));
    // Vendor VEX says the critical openssl finding does not apply: it is quieted, the
    // verdict drops to WARN (the medium zlib finding).
    let (replay, _) = bundle::replay(
        &bytes,
        Overrides {
            statements: Some(openvex("not_affected")),
            ..Overrides::default()
        },
    )
    .unwrap();
    assert!(!replay.proved);
    assert_eq!(replay.changed_inputs, ["vex"]);
    assert_eq!(replay.recorded_verdict, "FAIL");
    assert_eq!(replay.verdict, "WARN");
    assert_eq!(replay.changes.len(), 1, "{:?}", replay.changes);
    let change = &replay.changes[0];
    assert_eq!(change.id, "CVE-2024-0001");
    assert!(change.before.as_deref().unwrap().starts_with("fail"));
    assert!(
        change
            .after
            .as_deref()
            .unwrap()
            .starts_with("vex-suppressed"),
        "{change:?}"
    );
    assert_ne!(replay.root, replay.recorded_root);

    // A newer feed where zlib's medium issue is fixed at the installed version: the finding
    // disappears.
    let mut advisories = inputs.advisories.clone();
    advisories[1] = osv("CVE-2024-0002", "zlib", "1.2.13-1", MEDIUM);
    let (replay, _) = bundle::replay(
        &bytes,
        Overrides {
            advisories: Some(advisories),
            ..Overrides::default()
        },
    )
    .unwrap();
    assert_eq!(replay.changed_inputs, ["advisories"]);
    assert_eq!(replay.changes.len(), 1);
    assert_eq!(replay.changes[0].id, "CVE-2024-0002");
    assert_eq!(replay.changes[0].after, None);
    assert_eq!(replay.verdict, "FAIL");
}

/// Rewrites one member of a bundle.
fn with_member(bytes: &[u8], name: &str, edit: impl Fn(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let member = file.name().unwrap().to_string();
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        if member == name {
            data = edit(data);
        }
        out.start_file(member, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn tampered_truncated_and_foreign_bundles_are_refused() {
    let inputs = inputs();
    let bytes = bundle::write(&inputs, &evaluate(&inputs));
    // An input edited without updating the manifest.
    let tampered = with_member(&bytes, "inputs/policy.json", |p| {
        String::from_utf8(p)
            .unwrap()
            .replace("\"warn\"", "\"ignore\"")
            .into_bytes()
    });
    match bundle::read(&tampered) {
        Err(Error::Tampered { input, .. }) => assert_eq!(input, "policy"),
        other => panic!("{other:?}"),
    }
    // A node edited: its hash no longer matches its content.
    let forged = with_member(&bytes, "score_proof.json", |p| {
        String::from_utf8(p)
            .unwrap()
            .replacen("\"FAIL\"", "\"PASS\"", 1)
            .into_bytes()
    });
    assert!(matches!(bundle::read(&forged), Err(Error::Ledger(_))));
    // The root edited.
    let rerooted = with_member(&bytes, "meta.json", |p| {
        let mut meta: serde_json::Value = serde_json::from_slice(&p).unwrap();
        meta["rootHash"] = "sha256:00".into();
        serde_json::to_vec(&meta).unwrap()
    });
    assert!(matches!(bundle::read(&rerooted), Err(Error::Ledger(_))));
    // Garbage, truncation, a member that does not belong, a member missing.
    assert!(matches!(bundle::read(b"not a zip"), Err(Error::Zip(_))));
    assert!(bundle::read(&bytes[..bytes.len() / 2]).is_err());
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    out.start_file("../../etc/passwd", zip::write::SimpleFileOptions::default())
        .unwrap();
    let foreign = out.finish().unwrap().into_inner();
    match bundle::read(&foreign) {
        Err(Error::Member { reason, .. }) => assert!(reason.contains("not a member")),
        other => panic!("{other:?}"),
    }
    let empty = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()))
        .finish()
        .unwrap()
        .into_inner();
    match bundle::read(&empty) {
        Err(Error::Member { reason, .. }) => assert_eq!(reason, "missing"),
        other => panic!("{other:?}"),
    }
}
