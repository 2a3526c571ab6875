//! CSAF: the OASIS csaf_vex examples, Red Hat advisories read through the VEX profile, and the
//! CSAF validator test cases of the mandatory tests that bear on VEX claims.

use super::{decoded, fixtures, json, json_files};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use stella_vex::{Error, Format, Status};

const VEX_LISTS: &[&str] = &[
    "fixed",
    "known_affected",
    "known_not_affected",
    "under_investigation",
];

#[test]
fn oasis_vex_examples_parse_and_name_every_product_without_a_purl() {
    let Some(dir) = fixtures("advisories/csaf/oasis-examples/csaf_vex") else {
        return;
    };
    let files = json_files(&dir);
    assert_eq!(files.len(), 13);
    for file in files {
        let v = json(&file);
        let d = stella_vex::parse(&std::fs::read(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(d.format, Format::Csaf);
        assert_eq!(
            d.provider.name,
            v["document"]["publisher"]["name"].as_str().unwrap()
        );
        assert_eq!(
            d.provider.namespace.as_deref(),
            v["document"]["publisher"]["namespace"].as_str()
        );
        assert_eq!(d.id.as_deref(), v["document"]["tracking"]["id"].as_str());
        // These examples identify products by name only: each (vulnerability, product) claim is
        // rejected for want of a purl, and for no other reason (the examples are valid CSAF).
        let expected: usize = v["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|vuln| {
                VEX_LISTS
                    .iter()
                    .flat_map(|l| vuln["product_status"][l].as_array().into_iter().flatten())
                    .filter_map(Value::as_str)
                    .collect::<BTreeSet<_>>()
                    .len()
            })
            .sum();
        assert!(d.statements.is_empty());
        assert_eq!(
            d.rejected.len(),
            expected,
            "{}: {:?}",
            file.display(),
            d.rejected
        );
        assert!(
            d.rejected.iter().all(|r| r
                .reason
                .ends_with("has no purl in its product_identification_helper")),
            "{}: {:?}",
            file.display(),
            d.rejected
        );
    }
}

#[test]
fn other_csaf_categories_are_not_read_as_vex() {
    let Some(dir) = fixtures("advisories/csaf") else {
        return;
    };
    for file in [
        "oasis-examples/bsi-2022-0001.json",
        "oasis-examples/cisco-sa-20180328-smi2.json",
        "redhat/rhsa-2024_4546.json",
    ] {
        let err = stella_vex::parse(&std::fs::read(dir.join(file)).unwrap()).unwrap_err();
        assert!(matches!(err, Error::NotVex(_)), "{file}: {err}");
    }
}

/// Red Hat's product tree, walked here: product id → purl, and relationship product id →
/// component product id.
fn red_hat_purls(v: &Value) -> BTreeMap<String, String> {
    let mut purls = BTreeMap::new();
    let mut stack: Vec<&Value> = v["product_tree"]["branches"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    while let Some(b) = stack.pop() {
        if let Some(purl) = b["product"]["product_identification_helper"]["purl"].as_str() {
            purls.insert(
                b["product"]["product_id"].as_str().unwrap().to_string(),
                purl.to_string(),
            );
        }
        stack.extend(b["branches"].as_array().into_iter().flatten());
    }
    for r in v["product_tree"]["relationships"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(purl) = purls.get(r["product_reference"].as_str().unwrap()).cloned() {
            purls.insert(
                r["full_product_name"]["product_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                purl,
            );
        }
    }
    purls
}

#[test]
fn red_hat_advisories_resolve_relationships_to_component_purls() {
    let Some(dir) = fixtures("advisories/csaf/redhat") else {
        return;
    };
    for name in [
        "rhsa-2003_315.json",
        "rhsa-2015_0008.json",
        "rhsa-2024_4546.json",
        "rhsa-2024_6220.json",
    ] {
        let mut v = json(&dir.join(name));
        // Red Hat publishes VEX in the same shape; read this advisory through the VEX profile.
        v["document"]["category"] = "csaf_vex".into();
        let d = stella_vex::csaf::from_value(&v, "sha256:test".into()).unwrap();
        let purls = red_hat_purls(&v);
        let mut expected = BTreeSet::new();
        let mut unresolved = 0;
        for vuln in v["vulnerabilities"].as_array().unwrap() {
            let cve = vuln["cve"].as_str().unwrap();
            for id in vuln["product_status"]["fixed"].as_array().unwrap() {
                match purls.get(id.as_str().unwrap()) {
                    Some(purl) => {
                        expected.insert((cve.to_string(), decoded(purl)));
                    }
                    None => unresolved += 1,
                }
            }
        }
        let got: BTreeSet<(String, String)> = d
            .statements
            .iter()
            .map(|s| (s.vulnerability.id.clone(), decoded(s.product.as_str())))
            .collect();
        assert_eq!(got, expected, "{name}");
        assert_eq!(
            d.statements.len(),
            expected.len(),
            "{name}: one statement per claim"
        );
        assert_eq!(
            d.rejected.len(),
            unresolved,
            "{name}: {:?}",
            d.rejected.first()
        );
        for s in &d.statements {
            assert_eq!(s.status, Status::Fixed);
            assert_eq!(s.provider.name, "Red Hat Product Security");
            assert_eq!(
                s.provider.namespace.as_deref(),
                Some("https://www.redhat.com")
            );
            assert!(
                s.action_statement
                    .as_deref()
                    .unwrap()
                    .starts_with("vendor_fix: "),
                "{s:?}"
            );
            assert_eq!(
                s.last_updated.as_deref(),
                v["document"]["tracking"]["current_release_date"].as_str()
            );
        }
    }
}

/// The mandatory tests this reader enforces. The `csaf_base` test documents are relabelled
/// `csaf_vex` so that the VEX reader reads them; 6.1.26 is about the category itself.
const RULES: &[&str] = &[
    "6.1.1",
    "6.1.2",
    "6.1.3",
    "6.1.4",
    "6.1.5",
    "6.1.6",
    "6.1.13",
    "6.1.26",
    "6.1.27.7",
    "6.1.27.8",
    "6.1.27.9",
    "6.1.27.10",
    "6.1.29",
    "6.1.32",
    "6.1.33",
];

/// Every reason a document got: the error, or the rejections.
fn reasons(v: &Value) -> Vec<String> {
    match stella_vex::csaf::from_value(v, "sha256:test".into()) {
        Ok(d) => d.rejected.iter().map(|r| r.reason.clone()).collect(),
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn validator_test_cases_fail_for_the_tested_rule_and_valid_ones_do_not() {
    let Some(dir) = fixtures("schemas/csaf-2.0/validator-testcases/data") else {
        return;
    };
    let index = json(&dir.join("testcases.json"));
    let mut checked = BTreeMap::new();
    for test in index["tests"].as_array().unwrap() {
        let id = test["id"].as_str().unwrap();
        if !RULES.contains(&id) {
            continue;
        }
        let tag = format!("[CSAF {id}]");
        for (cases, must_fail) in [(&test["failures"], true), (&test["valid"], false)] {
            for case in cases.as_array().into_iter().flatten() {
                let name = case["name"].as_str().unwrap();
                assert_eq!(case["valid"].as_bool(), Some(!must_fail));
                let mut v = json(&dir.join(name));
                if id != "6.1.26" {
                    v["document"]["category"] = "csaf_vex".into();
                }
                let got = reasons(&v);
                let cites = got.iter().any(|r| r.contains(&tag));
                if id == "6.1.26" {
                    // Look-alikes of other categories are simply not VEX; only csaf_vex
                    // look-alikes are named as such.
                    let category = v["document"]["category"].as_str().unwrap().to_lowercase();
                    let vex_like = category.replace('_', "") == "csafvex";
                    assert!(
                        stella_vex::csaf::from_value(&v, "d".into()).is_err(),
                        "{name}"
                    );
                    assert_eq!(cites, must_fail && vex_like, "{name}: {got:?}");
                    *checked.entry(must_fail).or_insert(0) += 1;
                    continue;
                }
                if must_fail {
                    assert!(cites, "{name} must fail {tag}: {got:?}");
                } else {
                    assert!(!cites, "{name} is valid for {tag}: {got:?}");
                }
                *checked.entry(must_fail).or_insert(0) += 1;
            }
        }
    }
    assert!(checked[&true] >= 25 && checked[&false] >= 15, "{checked:?}");
    // The profile tests for other document categories fail as not being VEX at all.
    for test in index["tests"].as_array().unwrap() {
        let id = test["id"].as_str().unwrap();
        if !id.starts_with("6.1.27.") {
            continue;
        }
        for case in test["failures"].as_array().unwrap() {
            let v = json(&dir.join(case["name"].as_str().unwrap()));
            let got = reasons(&v);
            assert!(!got.is_empty(), "{id}: {}", case["name"]);
        }
    }
}
