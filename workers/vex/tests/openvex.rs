//! The OpenVEX examples (0.2.0 and v0.0.x contexts).

use super::{fixtures, json, json_files};
use serde_json::Value;
use stella_vex::{Format, Justification, Status};

/// The product identifiers of a statement as written: strings (v0.0.x) or `@id`s (0.2.0).
fn written_products(statement: &Value) -> Vec<String> {
    statement["products"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().or_else(|| p["@id"].as_str()).map(str::to_string))
        .collect()
}

#[test]
fn every_example_yields_one_statement_per_purl_product() {
    let Some(dir) = fixtures("schemas/openvex/examples") else {
        return;
    };
    let mut files = json_files(&dir.join("openvex"));
    files.push(dir.join("csaf/openvex.json"));
    files.extend(
        json_files(&dir.join("sarif"))
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".openvex.json")),
    );
    assert!(files.len() >= 13, "{files:?}");
    for file in files {
        let v = json(&file);
        let d = stella_vex::parse(&std::fs::read(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(d.format, Format::OpenVex);
        assert_eq!(d.provider.name, v["author"].as_str().unwrap());
        assert_eq!(d.id.as_deref(), v["@id"].as_str());
        // Every statement of these examples has a known status and, for not_affected, a
        // justification: a product is accepted exactly when it is a purl.
        let statements = v["statements"].as_array().unwrap();
        let expected: usize = statements
            .iter()
            .map(|s| {
                written_products(s)
                    .iter()
                    .filter(|p| p.starts_with("pkg:"))
                    .count()
            })
            .sum();
        let not_purls: usize = statements
            .iter()
            .map(|s| {
                written_products(s)
                    .iter()
                    .filter(|p| !p.starts_with("pkg:"))
                    .count()
            })
            .sum();
        let without_products = statements
            .iter()
            .filter(|s| s["products"].as_array().is_none_or(|p| p.is_empty()))
            .count();
        assert_eq!(d.statements.len(), expected, "{}", file.display());
        assert_eq!(
            d.rejected.len(),
            not_purls + without_products,
            "{}: {:?}",
            file.display(),
            d.rejected
        );
        for s in &d.statements {
            assert_eq!(
                s.source.document_digest,
                stella_vex::sha256(&std::fs::read(&file).unwrap())
            );
        }
    }
}

#[test]
fn fields_are_read_as_written() {
    let Some(dir) = fixtures("schemas/openvex/examples") else {
        return;
    };
    // demo.vex.json: one fixed statement over two arch-qualified apk products.
    let d = stella_vex::parse(&std::fs::read(dir.join("openvex/demo.vex.json")).unwrap()).unwrap();
    let got: Vec<(&str, Status, Option<&str>)> = d
        .statements
        .iter()
        .map(|s| (s.product.as_str(), s.status, s.issued.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "pkg:apk/distro/git@2.39.0-r1?arch=armv7",
                Status::Fixed,
                Some("2023-12-04T21:55:19.945015302-06:00")
            ),
            (
                "pkg:apk/distro/git@2.39.0-r1?arch=x86_64",
                Status::Fixed,
                Some("2023-12-04T21:55:19.945015302-06:00")
            ),
        ]
    );
    // sample-history: aliases, justification, the second statement inherits the document time.
    let d =
        stella_vex::parse(&std::fs::read(dir.join("sarif/sample-history.openvex.json")).unwrap())
            .unwrap();
    assert_eq!(d.statements.len(), 2);
    let mut issued: Vec<&str> = d
        .statements
        .iter()
        .map(|s| s.issued.as_deref().unwrap())
        .collect();
    issued.sort();
    assert_eq!(
        issued,
        [
            "2023-08-15T19:55:22.076684217-06:00",
            "2023-08-16T19:55:22.076684217-06:00"
        ]
    );
    for s in &d.statements {
        assert_eq!(s.vulnerability.id, "CVE-2023-27103");
        assert_eq!(s.vulnerability.aliases, ["SNYK-DEBIAN12-LIBDE265-3361563"]);
        assert_eq!(s.justification, Some(Justification::ComponentNotPresent));
        assert_eq!(
            s.product.image_digest().as_deref(),
            Some("sha256:13d22ec63300e16014d4a42aed735207a8b33c223cff19627dd3042e5a10a3a0")
        );
    }
    // v0.0.x: string vulnerability and products; non-purl products rejected by name.
    let d = stella_vex::parse(
        &std::fs::read(dir.join("openvex/vexctl-testdata-images.vex.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(d.statements.len(), 2);
    assert!(
        d.statements
            .iter()
            .all(|s| s.status == Status::UnderInvestigation
                && s.vulnerability.id == "CVE-1234-5678"
                && s.issued.as_deref() == Some("2022-12-22T16:36:43-05:00"))
    );
    let reasons: Vec<String> = d.rejected.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        reasons,
        [
            "statements[1].products[0]: product \"nginx\" is neither a purl nor a sha256: image digest",
            "statements[2].products[0]: product \"registry.k8s.io/kube-apiserver:v1.26.0\" is neither a purl nor a sha256: image digest",
        ]
    );
    // A statement without products names nothing to match.
    let d = stella_vex::parse(
        &std::fs::read(dir.join("openvex/vexctl-testdata-test.vex.json")).unwrap(),
    )
    .unwrap();
    assert!(d.statements.is_empty());
    assert_eq!(d.rejected.len(), 2);
    assert!(d.rejected.iter().all(|r| r.reason == "no products"));
}
