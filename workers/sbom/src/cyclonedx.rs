//! CycloneDX 1.6 JSON.

use crate::{Inventory, TOOL_VERSION, canonical, derived_uuid};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use stella_analyzers::purl;

/// Renders the inventory as a CycloneDX 1.6 JSON document (pretty, canonical, newline-ended).
pub fn to_json(inventory: &Inventory) -> String {
    canonical::to_string_pretty(&document(inventory))
}

/// The document as a JSON value.
pub fn document(inventory: &Inventory) -> Value {
    let image = &inventory.image;
    let image_ref = image.digest.clone();
    let mut metadata_props = vec![
        prop("stellaops:imageDigest", &image.digest),
        prop("stellaops:configDigest", &image.config_digest),
        prop("stellaops:analyzerVersion", &inventory.analyzer_version),
    ];
    for (i, layer) in image.layers.iter().enumerate() {
        metadata_props.push(prop(&format!("stellaops:layer.{i:03}"), layer));
    }
    for error in &inventory.errors {
        metadata_props.push(prop("stellaops:degraded", error));
    }
    let mut image_component = json!({
        "type": "container",
        "bom-ref": image_ref,
        "name": image.repository.clone().unwrap_or_else(|| image.name.clone()),
        "version": image.digest,
        "hashes": [{"alg": "SHA-256", "content": image.digest.trim_start_matches("sha256:")}],
        "purl": oci_purl(inventory),
    });
    if !image.tags.is_empty() {
        image_component["properties"] = Value::Array(
            image
                .tags
                .iter()
                .map(|t| prop("stellaops:tag", t))
                .collect(),
        );
    }
    let mut metadata = json!({
        "tools": {"components": [{"type": "application", "name": "stella", "version": TOOL_VERSION,
                                   "publisher": "Stella Ops"}]},
    });
    metadata["component"] = image_component;
    metadata["properties"] = Value::Array(metadata_props);
    if let Some(created) = &image.created {
        metadata["timestamp"] = Value::String(created.clone());
    }

    let mut components = Vec::new();
    let mut refs_seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in &inventory.components {
        *refs_seen.entry(c.package.purl.clone()).or_default() += 1;
    }
    if let Some(distro) = &inventory.distro {
        let mut os = json!({
            "type": "operating-system",
            "bom-ref": format!("os:{}", distro.qualifier()),
            "name": distro.id,
        });
        if let Some(v) = &distro.version_id {
            os["version"] = Value::String(v.clone());
        }
        if let Some(p) = &distro.pretty_name {
            os["description"] = Value::String(p.clone());
        }
        components.push(os);
    }
    for c in &inventory.components {
        let p = &c.package;
        let bom_ref = if refs_seen[&p.purl] > 1 {
            format!("{}#{}", p.purl, p.evidence.path)
        } else {
            p.purl.clone()
        };
        let mut props = vec![
            prop("stellaops:evidence.source", &p.evidence.source),
            prop("stellaops:evidence.method", &p.evidence.method),
        ];
        if let Some(layer) = &c.layer_digest {
            props.push(prop("stellaops:layerDigest", layer));
        }
        if let Some(a) = &p.arch {
            props.push(prop("stellaops:package.arch", a));
        }
        if let Some(s) = &p.source_name {
            props.push(prop("stellaops:package.sourceName", s));
        }
        if let Some(s) = &p.source_version {
            props.push(prop("stellaops:package.sourceVersion", s));
        }
        if let Some(size) = p.installed_size {
            props.push(prop("stellaops:package.installedSize", &size.to_string()));
        }
        props.push(prop("stellaops:package.files", &p.files.len().to_string()));
        if c.used_by_entrypoint {
            props.push(prop("stellaops:usedByEntrypoint", "true"));
        }
        for (name, value) in &c.properties {
            props.push(prop(name, value));
        }
        let mut component = json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": p.name,
            "evidence": {"occurrences": [{"location": format!("/{}", p.evidence.path)}]},
        });
        // `bin:{sha256}` identifies a file by content: no purl, a file component with its hash.
        match p.purl.strip_prefix("bin:") {
            Some(sha256) => {
                component["type"] = Value::String("file".into());
                component["hashes"] = json!([{"alg": "SHA-256", "content": sha256}]);
            }
            None => component["purl"] = Value::String(p.purl.clone()),
        }
        // Assigned, not interpolated: `json!` would deep-copy a `Value` by serialising it.
        component["properties"] = Value::Array(props);
        if !p.version.is_empty() {
            component["version"] = Value::String(p.version.clone());
        }
        if !p.licenses.is_empty() {
            component["licenses"] = Value::Array(
                p.licenses
                    .iter()
                    .map(|l| json!({"license": {"name": l}}))
                    .collect(),
            );
        }
        if let Some(s) = &p.supplier {
            component["publisher"] = Value::String(s.clone());
        }
        components.push(component);
    }
    let reference = |p: &stella_analyzers::Package| {
        if refs_seen[&p.purl] > 1 {
            format!("{}#{}", p.purl, p.evidence.path)
        } else {
            p.purl.clone()
        }
    };
    let by_purl: BTreeMap<&str, String> = inventory
        .components
        .iter()
        .map(|c| (c.package.purl.as_str(), reference(&c.package)))
        .collect();
    let mut dependencies = vec![json!({
        "ref": image_ref,
        "dependsOn": inventory.components.iter().map(|c| reference(&c.package))
            .collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>(),
    })];
    let links_from = crate::links_from(inventory);
    let mut seen_refs = std::collections::BTreeSet::new();
    for c in &inventory.components {
        let r = reference(&c.package);
        if !seen_refs.insert(r.clone()) {
            continue;
        }
        let links = links_from.get(c.package.purl.as_str()).into_iter().flatten();
        let depends: std::collections::BTreeSet<&String> = c
            .package
            .depends_on
            .iter()
            .map(String::as_str)
            .chain(links.copied())
            .filter_map(|purl| by_purl.get(purl))
            .collect();
        dependencies.push(json!({"ref": r, "dependsOn": depends.into_iter().collect::<Vec<_>>()}));
    }
    dependencies.sort_by(|a, b| a["ref"].as_str().cmp(&b["ref"].as_str()));
    let mut document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", derived_uuid(&["cyclonedx", &image.digest, &inventory.analyzer_version])),
        "version": 1,
    });
    document["metadata"] = metadata;
    document["components"] = Value::Array(components);
    document["dependencies"] = Value::Array(dependencies);
    document
}

fn prop(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// `pkg:oci/<name>@<digest>?repository_url=<repo>&arch=<arch>`.
pub fn oci_purl(inventory: &Inventory) -> String {
    let image = &inventory.image;
    let name = image
        .repository
        .as_deref()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or("image")
        .to_ascii_lowercase();
    purl::build(
        "oci",
        None,
        &name,
        Some(&image.digest),
        &[
            ("repository_url", image.repository.as_deref()),
            ("arch", Some(&image.architecture)),
        ],
    )
}
