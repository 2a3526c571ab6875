//! The CycloneDX 1.6 vulnerability example.

use super::{fixtures, json};
use stella_vex::{Error, Format, Justification, Options, Status};

#[test]
fn the_vulnerability_example_reads_into_one_not_affected_statement() {
    let Some(file) = fixtures("schemas/cyclonedx/test-resources-1.6/valid-vulnerability-1.6.json")
    else {
        return;
    };
    let bytes = std::fs::read(&file).unwrap();
    let v = json(&file);
    // The example names no manufacturer, supplier or author: a provider must be configured.
    assert!(matches!(stella_vex::parse(&bytes), Err(Error::NoProvider)));
    let options = Options {
        provider: Some("Example Team".into()),
    };
    let d = stella_vex::parse_with(&bytes, &options).unwrap();
    assert_eq!(d.format, Format::CycloneDx);
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let vuln = &v["vulnerabilities"][0];
    let analysis = &vuln["analysis"];
    assert_eq!(
        d.statements.len(),
        vuln["affects"].as_array().unwrap().len()
    );
    let s = &d.statements[0];
    // affects[0].ref is a bom-ref; the component's purl is the product.
    let bom_ref = vuln["affects"][0]["ref"].as_str().unwrap();
    let component = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == bom_ref)
        .unwrap();
    assert_eq!(s.product.as_str(), component["purl"].as_str().unwrap());
    assert_eq!(s.vulnerability.id, vuln["id"].as_str().unwrap());
    assert_eq!(
        s.vulnerability.aliases,
        [vuln["references"][0]["id"].as_str().unwrap()]
    );
    assert_eq!(analysis["state"], "not_affected");
    assert_eq!(s.status, Status::NotAffected);
    assert_eq!(
        s.original_justification.as_deref(),
        analysis["justification"].as_str()
    );
    assert_eq!(
        s.justification,
        Some(Justification::VulnerableCodeNotInExecutePath)
    );
    assert_eq!(s.issued.as_deref(), analysis["firstIssued"].as_str());
    assert_eq!(s.last_updated.as_deref(), analysis["lastUpdated"].as_str());
    assert_eq!(
        s.impact_statement.as_deref(),
        analysis["detail"].as_str().filter(|d| !d.is_empty())
    );
    let action = s.action_statement.as_deref().unwrap();
    assert!(
        action.starts_with("response: will_not_fix, update"),
        "{action}"
    );
    assert!(
        action.contains(vuln["recommendation"].as_str().unwrap()),
        "{action}"
    );
    assert_eq!(s.provider.name, "Example Team");
    assert_eq!(
        d.id.as_deref(),
        Some(format!("{}/1", v["serialNumber"].as_str().unwrap()).as_str())
    );
}
