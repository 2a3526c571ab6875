//! The snapshot hash: invariant under order and file layout, sensitive to any change.

use super::fixtures;
use stella_vex::{Statement, Status, snapshot_hash};

#[test]
fn same_statements_in_any_order_or_layout_hash_the_same_and_any_change_differs() {
    let Some(dir) = fixtures("schemas/openvex/examples/openvex") else {
        return;
    };
    let mut all: Vec<Statement> = Vec::new();
    for name in [
        "demo.vex.json",
        "document1.vex.json",
        "document2.vex.json",
        "vexctl-testdata-images.vex.json",
    ] {
        let d = stella_vex::parse(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        all.extend(d.statements);
    }
    let hash = snapshot_hash(&all);
    assert!(hash.starts_with("sha256:") && hash.len() == 71);
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(snapshot_hash(&reversed), hash);
    // Another layout: demo.vex.json's statement split into one document per product.
    let demo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("demo.vex.json")).unwrap()).unwrap();
    let mut relaid: Vec<Statement> = all
        .iter()
        .filter(|s| s.source.document_id.as_deref() != demo["@id"].as_str())
        .cloned()
        .collect();
    for product in demo["statements"][0]["products"].as_array().unwrap() {
        let mut one = demo.clone();
        one["statements"][0]["products"] = serde_json::json!([product]);
        one["@id"] = serde_json::json!(format!("split-{}", product["@id"]));
        let d = stella_vex::parse(serde_json::to_string_pretty(&one).unwrap().as_bytes()).unwrap();
        assert_ne!(d.digest, all[0].source.document_digest);
        relaid.extend(d.statements);
    }
    assert_eq!(relaid.len(), all.len());
    assert_eq!(snapshot_hash(&relaid), hash, "file layout does not matter");
    // Duplicates (the same claim imported twice) do not change the set.
    let mut doubled = all.clone();
    doubled.push(all[0].clone());
    assert_eq!(snapshot_hash(&doubled), hash);
    // Any change to any claim changes the hash.
    type Change = Box<dyn Fn(&mut Statement)>;
    let changes: Vec<Change> = vec![
        Box::new(|s| s.status = Status::Affected),
        Box::new(|s| s.vulnerability.id.push('0')),
        Box::new(|s| s.vulnerability.aliases.push("ALIAS-1".into())),
        Box::new(|s| s.provider.name.push('!')),
        Box::new(|s| s.issued = Some("2030-01-01T00:00:00Z".into())),
        Box::new(|s| s.action_statement = Some("upgrade".into())),
        Box::new(|s| s.subcomponents.push("pkg:npm/a@1".into())),
        Box::new(|s| s.product = stella_vex::Product::parse("pkg:apk/wolfi/bash@1.0.1").unwrap()),
    ];
    for (i, change) in changes.iter().enumerate() {
        let mut changed = all.clone();
        change(&mut changed[1]);
        assert_ne!(snapshot_hash(&changed), hash, "change {i}");
    }
    let mut fewer = all.clone();
    fewer.pop();
    assert_ne!(snapshot_hash(&fewer), hash);
}
