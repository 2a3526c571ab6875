//! SPDX 3.0.1 JSON-LD.

use crate::{Inventory, TOOL_VERSION, canonical, cyclonedx::oci_purl, derived_uuid};
use serde_json::{Value, json};

const CONTEXT: &str = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld";

/// Renders the inventory as an SPDX 3.0.1 JSON-LD document (pretty, canonical, newline-ended).
pub fn to_json(inventory: &Inventory) -> String {
    canonical::to_string_pretty(&document(inventory))
}

/// The document as a JSON value.
pub fn document(inventory: &Inventory) -> Value {
    let image = &inventory.image;
    let namespace = format!(
        "https://stella-ops.org/spdx/{}/{}",
        image.digest.trim_start_matches("sha256:"),
        match inventory.view {
            crate::View::Inventory =>
                derived_uuid(&["spdx", &image.digest, &inventory.analyzer_version]),
            view => derived_uuid(&[
                "spdx",
                &image.digest,
                &inventory.analyzer_version,
                view.as_str()
            ]),
        }
    );
    let id =
        |kind: &str, key: &str| format!("{namespace}/{kind}/{}", &derived_uuid(&[kind, key])[..18]);
    // SPDX requires a creation time: the image's own, so two runs agree (epoch when it has none).
    let created = image
        .created
        .clone()
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let created = normalise_time(&created);
    let agent = format!("{namespace}/agent/stella-ops");
    let tool = format!("{namespace}/tool/stella");
    let document_id = format!("{namespace}/document");
    let sbom_id = format!("{namespace}/sbom");
    let image_id = format!("{namespace}/image");

    let mut graph = vec![
        json!({"type": "CreationInfo", "@id": "_:creationinfo", "specVersion": "3.0.1", "created": created,
               "createdBy": [agent], "createdUsing": [tool]}),
        json!({"type": "Organization", "spdxId": agent, "name": "Stella Ops", "creationInfo": "_:creationinfo"}),
        json!({"type": "Tool", "spdxId": tool, "name": format!("stella {TOOL_VERSION}"), "creationInfo": "_:creationinfo"}),
    ];
    let mut image_package = json!({
        "type": "software_Package", "spdxId": image_id, "creationInfo": "_:creationinfo",
        "name": image.repository.clone().unwrap_or_else(|| image.name.clone()),
        "software_packageVersion": image.digest,
        "software_packageUrl": oci_purl(inventory),
        "software_primaryPurpose": "container",
        "verifiedUsing": [{"type": "Hash", "algorithm": "sha256", "hashValue": image.digest.trim_start_matches("sha256:")}],
        "comment": format!("stellaops:analyzerVersion={}; stellaops:configDigest={}; stellaops:layers={}",
                           inventory.analyzer_version, image.config_digest, image.layers.join(",")),
    });
    for (name, value) in inventory.trace_properties() {
        let comment = image_package["comment"].as_str().unwrap_or_default();
        image_package["comment"] = Value::String(format!("{comment}; {name}={value}"));
    }
    if image.created.is_some() {
        image_package["builtTime"] = Value::String(created.clone());
    }
    graph.push(image_package);

    let mut elements = vec![agent.clone(), tool.clone(), image_id.clone()];
    let mut contained = Vec::new();
    let mut package_ids = std::collections::BTreeMap::new();
    for c in &inventory.components {
        let p = &c.package;
        package_ids
            .entry(p.purl.clone())
            .or_insert_with(|| id("package", &format!("{}#{}", p.purl, p.evidence.path)));
    }
    let links_from = crate::links_from(inventory);
    let mut depends_relationships = Vec::new();
    for c in &inventory.components {
        let p = &c.package;
        let package_id = id("package", &format!("{}#{}", p.purl, p.evidence.path));
        let comment = package_comment(c);
        let mut package = json!({
            "type": "software_Package", "spdxId": package_id, "creationInfo": "_:creationinfo",
            "name": p.name, "software_primaryPurpose": "library", "comment": comment,
        });
        // `bin:{sha256}` identifies a file by content: no purl, its hash instead.
        match p.purl.strip_prefix("bin:") {
            Some(sha256) => {
                package["software_primaryPurpose"] = Value::String("executable".into());
                package["verifiedUsing"] =
                    json!([{"type": "Hash", "algorithm": "sha256", "hashValue": sha256}]);
            }
            None => package["software_packageUrl"] = Value::String(p.purl.clone()),
        }
        if !p.version.is_empty() {
            package["software_packageVersion"] = Value::String(p.version.clone());
        }
        if let Some(s) = &p.supplier {
            package["software_copyrightText"] = Value::String(format!("Maintainer: {s}"));
        }
        let targets: Vec<&String> = p
            .depends_on
            .iter()
            .filter_map(|d| package_ids.get(d))
            .collect();
        let links: Vec<&String> = links_from
            .get(p.purl.as_str())
            .into_iter()
            .flatten()
            .filter_map(|to| package_ids.get(*to))
            .collect();
        if !links.is_empty() {
            let rel = id("relationship", &format!("links#{package_id}"));
            depends_relationships.push(
                json!({"type": "Relationship", "spdxId": rel, "creationInfo": "_:creationinfo",
                "from": package_id, "relationshipType": "hasDynamicLink", "to": links}),
            );
        }
        if !targets.is_empty() {
            let rel = id("relationship", &format!("depends#{package_id}"));
            depends_relationships.push(
                json!({"type": "Relationship", "spdxId": rel, "creationInfo": "_:creationinfo",
                "from": package_id, "relationshipType": "dependsOn", "to": targets}),
            );
        }
        graph.push(package);
        elements.push(package_id.clone());
        contained.push(package_id);
    }
    for rel in depends_relationships {
        elements.push(rel["spdxId"].as_str().unwrap_or_default().to_string());
        graph.push(rel);
    }
    if !contained.is_empty() {
        let rel = id("relationship", "image-contains");
        graph.push(json!({"type": "Relationship", "spdxId": rel, "creationInfo": "_:creationinfo",
                          "from": image_id, "relationshipType": "contains", "to": contained, "completeness": "complete"}));
        elements.push(rel);
    }
    graph.push(json!({"type": "software_Sbom", "spdxId": sbom_id, "creationInfo": "_:creationinfo",
                      "rootElement": [image_id], "element": elements.clone(), "software_sbomType": ["analyzed"]}));
    let mut all = elements;
    all.push(sbom_id.clone());
    graph.push(json!({"type": "SpdxDocument", "spdxId": document_id, "creationInfo": "_:creationinfo",
                      "rootElement": [sbom_id], "element": all, "profileConformance": ["core", "software"],
                      "dataLicense": "https://spdx.org/licenses/CC0-1.0"}));
    let mut document = json!({"@context": CONTEXT});
    document["@graph"] = Value::Array(graph);
    document
}

/// SPDX wants `YYYY-MM-DDThh:mm:ssZ`: drop fractional seconds, keep UTC.
pub(crate) fn normalise_time(time: &str) -> String {
    match time.split_once('.') {
        Some((seconds, rest)) if rest.ends_with('Z') => format!("{seconds}Z"),
        _ => time.to_string(),
    }
}

/// A component's `stellaops:` facts as SPDX writes them, in a package's `comment`
/// (`k=v; k=v`): evidence, layer, entrypoint use, the source package advisories are keyed on,
/// and the component's properties. `stella scan sbom:` reads them back.
pub(crate) fn package_comment(c: &crate::Component) -> String {
    let p = &c.package;
    let mut comment = format!(
        "stellaops:evidence={}:/{}",
        p.evidence.source, p.evidence.path
    );
    if let Some(layer) = &c.layer_digest {
        comment.push_str(&format!("; stellaops:layerDigest={layer}"));
    }
    if c.used_by_entrypoint {
        comment.push_str("; stellaops:usedByEntrypoint=true");
    }
    if let Some(source) = &p.source_name {
        comment.push_str(&format!("; stellaops:package.sourceName={source}"));
    }
    if let Some(version) = &p.source_version {
        comment.push_str(&format!("; stellaops:package.sourceVersion={version}"));
    }
    for (name, value) in &c.properties {
        comment.push_str(&format!("; {name}={value}"));
    }
    comment
}
