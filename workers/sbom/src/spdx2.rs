//! SPDX 2.3 JSON: what BuildKit's SBOM protocol, Docker's tooling and most downstream
//! consumers still read (SPDX 3 is the default elsewhere, [`crate::spdx`]).
//!
//! The same inventory gives the same bytes: identifiers derive from content, the only time is
//! the image's own `created`, and packages keep the inventory's (purl) order. No licensing
//! fields: SPDX 2.3 made them optional and DESIGN.md leaves them out; `dataLicense` is the
//! licence of the document itself, which the format requires.

use crate::spdx::{normalise_time, package_comment};
use crate::{Inventory, TOOL_VERSION, canonical, cyclonedx::oci_purl, derived_uuid};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Renders the inventory as an SPDX 2.3 JSON document (pretty, canonical, newline-ended).
pub fn to_json(inventory: &Inventory) -> String {
    canonical::to_string_pretty(&document(inventory))
}

/// The document as a JSON value.
pub fn document(inventory: &Inventory) -> Value {
    let image = &inventory.image;
    let mut namespace_parts = vec!["spdx-2.3", &image.digest, &inventory.analyzer_version];
    if inventory.view != crate::View::Inventory {
        namespace_parts.push(inventory.view.as_str());
    }
    let namespace = format!(
        "https://stella-ops.org/spdx/{}/{}",
        image.digest.trim_start_matches("sha256:"),
        derived_uuid(&namespace_parts)
    );
    let created = normalise_time(image.created.as_deref().unwrap_or("1970-01-01T00:00:00Z"));
    let mut image_comment = format!(
        "stellaops:analyzerVersion={}; stellaops:configDigest={}; stellaops:layers={}",
        inventory.analyzer_version,
        image.config_digest,
        image.layers.join(",")
    );
    for (name, value) in inventory.trace_properties() {
        image_comment.push_str(&format!("; {name}={value}"));
    }
    let mut image_package = json!({
        "SPDXID": IMAGE_ID,
        "name": image.repository.clone().unwrap_or_else(|| image.name.clone()),
        "versionInfo": image.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [purl_ref(&oci_purl(inventory))],
        "comment": image_comment,
    });
    if let Some(hex) = image.digest.strip_prefix("sha256:") {
        image_package["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": hex}]);
    }
    if image.created.is_some() {
        image_package["builtDate"] = Value::String(created.clone());
    }

    let id_of = |c: &crate::Component| {
        let key = format!("{}#{}", c.package.purl, c.package.evidence.path);
        format!(
            "SPDXRef-Package-{}",
            &derived_uuid(&["package", &key])[..18]
        )
    };
    let mut ids_by_purl: BTreeMap<&str, String> = BTreeMap::new();
    for c in &inventory.components {
        ids_by_purl
            .entry(c.package.purl.as_str())
            .or_insert_with(|| id_of(c));
    }
    let links_from = crate::links_from(inventory);
    let mut packages = vec![image_package];
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];
    let mut edges = Vec::new();
    for c in &inventory.components {
        let p = &c.package;
        let id = id_of(c);
        let comment = package_comment(c);
        let mut package = json!({
            "SPDXID": id,
            "name": p.name,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "LIBRARY",
            "comment": comment,
        });
        // `bin:{sha256}` identifies a file by content: no purl, its hash instead.
        match p.purl.strip_prefix("bin:") {
            Some(sha256) => {
                package["primaryPackagePurpose"] = Value::String("APPLICATION".into());
                package["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sha256}]);
            }
            None => package["externalRefs"] = json!([purl_ref(&p.purl)]),
        }
        if !p.version.is_empty() {
            package["versionInfo"] = Value::String(p.version.clone());
        }
        if let Some(s) = &p.supplier {
            package["supplier"] = Value::String(format!("Organization: {}", one_line(s)));
        }
        relationships.push(relationship(IMAGE_ID, "CONTAINS", &id));
        for target in p
            .depends_on
            .iter()
            .filter_map(|d| ids_by_purl.get(d.as_str()))
        {
            edges.push(relationship(&id, "DEPENDS_ON", target));
        }
        for target in links_from
            .get(p.purl.as_str())
            .into_iter()
            .flatten()
            .filter_map(|to| ids_by_purl.get(*to))
        {
            edges.push(relationship(&id, "DYNAMIC_LINK", target));
        }
        packages.push(package);
    }
    relationships.extend(edges);
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image.repository.clone().unwrap_or_else(|| image.name.clone()),
        "documentNamespace": namespace,
        "creationInfo": {
            "created": created,
            "creators": ["Organization: Stella Ops", format!("Tool: stella-{TOOL_VERSION}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

const IMAGE_ID: &str = "SPDXRef-Image";

fn purl_ref(purl: &str) -> Value {
    json!({"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl})
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

/// SPDX 2 actor fields are one line; a maintainer field with a newline would break tag-value.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
