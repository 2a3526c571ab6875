//! CycloneDX VEX: `vulnerabilities[].analysis` of a BOM (1.4 and later). One [`Statement`] per
//! (vulnerability, `affects[].ref`). A ref is resolved through the components' `bom-ref`
//! (nested components and `metadata.component` included) to their purl; a ref that is itself a
//! purl is taken as is; a BOM-Link (`urn:cdx:…`) into another BOM is kept as written.
//!
//! `analysis.state`: `not_affected` and `false_positive` → not_affected, `exploitable` →
//! affected, `resolved` and `resolved_with_pedigree` → fixed, `in_triage` →
//! under_investigation. The justification is mapped onto the OpenVEX vocabulary (see
//! [`Justification::from_cyclonedx`]) and kept as written; `analysis.detail` is the impact
//! statement of a not_affected claim; `analysis.response` with the vulnerability's
//! `recommendation` and `workaround` form the action statement. `affects[].versions` ranges
//! are not read: the claim is about the referenced component as a whole.
//!
//! The provider is `metadata.manufacturer`, else `metadata.supplier`, else the first of
//! `metadata.authors` (1.5 and earlier: `metadata.manufacture`), else the configured name.

use crate::model::{
    Document, Format, Justification, Product, Provider, Rejection, Source, Statement, Status,
    Vulnerability,
};
use crate::{Error, Options, Result, free_text, identifier, text};
use serde_json::Value;
use std::collections::BTreeMap;

/// Parses a CycloneDX VEX document.
pub fn parse(bytes: &[u8], options: &Options) -> Result<Document> {
    let (value, digest) = crate::read_json(bytes)?;
    from_value(&value, digest, options)
}

fn missing(field: &str) -> Error {
    Error::MissingField {
        format: Format::CycloneDx,
        field: field.into(),
    }
}

/// Reads a CycloneDX document already parsed as JSON; `digest` is the `sha256:` of its bytes.
pub fn from_value(v: &Value, digest: String, options: &Options) -> Result<Document> {
    if text(v, "bomFormat") != Some("CycloneDX") {
        return Err(missing("bomFormat"));
    }
    text(v, "specVersion").ok_or_else(|| missing("specVersion"))?;
    let metadata = v.get("metadata");
    let named = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(|o| text(o, "name"))
            .map(str::to_string)
    };
    let author = metadata
        .and_then(|m| m.get("authors"))
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find_map(|x| text(x, "name")))
        .map(str::to_string);
    let name = named("manufacturer")
        .or_else(|| named("supplier"))
        .or(author)
        .or_else(|| named("manufacture"))
        .or_else(|| options.provider.clone())
        .ok_or(Error::NoProvider)?;
    let provider = Provider {
        name: identifier(&name, "provider").map_err(|reason| Error::InvalidField {
            format: Format::CycloneDx,
            field: "metadata provider".into(),
            reason,
        })?,
        namespace: None,
    };
    let vulnerabilities = v
        .get("vulnerabilities")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("vulnerabilities"))?;
    if vulnerabilities.is_empty() {
        return Err(Error::Empty(Format::CycloneDx));
    }
    let id = text(v, "serialNumber").map(|s| match v.get("version").and_then(Value::as_u64) {
        Some(n) => format!("{s}/{n}"),
        None => s.to_string(),
    });
    let refs = bom_refs(v);
    let source = Source {
        format: Format::CycloneDx,
        document_digest: digest.clone(),
        document_id: id.clone(),
        index: 0,
    };
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (i, vuln) in vulnerabilities.iter().enumerate() {
        let location = format!("vulnerabilities[{i}]");
        match vulnerability(vuln, &refs, &provider, &source) {
            Ok((mut list, bad)) => {
                accepted.append(&mut list);
                rejected.extend(bad.into_iter().map(|(j, reason)| Rejection {
                    location: format!("{location}.affects[{j}]"),
                    reason,
                }));
            }
            Err(reason) => rejected.push(Rejection { location, reason }),
        }
    }
    Ok(Document {
        format: Format::CycloneDx,
        digest,
        id,
        provider,
        statements: crate::finish(accepted),
        rejected,
    })
}

/// `bom-ref` → purl of every component (nested ones and `metadata.component` included).
fn bom_refs(v: &Value) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut stack: Vec<&Value> = v
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(v.pointer("/metadata/component"))
        .collect();
    while let Some(c) = stack.pop() {
        if let (Some(r), Some(p)) = (text(c, "bom-ref"), text(c, "purl")) {
            map.insert(r.to_string(), p.to_string());
        }
        stack.extend(
            c.get("components")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    }
    map
}

type Affects = (Vec<Statement>, Vec<(usize, String)>);

fn vulnerability(
    v: &Value,
    refs: &BTreeMap<String, String>,
    provider: &Provider,
    source: &Source,
) -> std::result::Result<Affects, String> {
    let id = identifier(text(v, "id").ok_or("missing id")?, "vulnerability id")?;
    let mut aliases = Vec::new();
    for r in v
        .get("references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(a) = text(r, "id") {
            let a = identifier(a, "reference id")?;
            if a != id {
                aliases.push(a);
            }
        }
    }
    aliases.sort();
    aliases.dedup();
    let analysis = v
        .get("analysis")
        .ok_or("no analysis: a vulnerability without analysis is not a VEX claim")?;
    let state = text(analysis, "state").ok_or("analysis has no state")?;
    let status = match state {
        "not_affected" | "false_positive" => Status::NotAffected,
        "exploitable" => Status::Affected,
        "resolved" | "resolved_with_pedigree" => Status::Fixed,
        "in_triage" => Status::UnderInvestigation,
        other => return Err(format!("unknown analysis state {:?}", crate::clip(other))),
    };
    let original_justification = text(analysis, "justification").map(str::to_string);
    let justification = match &original_justification {
        Some(j) => Some(
            Justification::from_cyclonedx(j)
                .ok_or_else(|| format!("unknown analysis justification {:?}", crate::clip(j)))?,
        ),
        None => None,
    };
    let detail = free_text(text(analysis, "detail"), "analysis detail")?;
    let impact_statement = if status == Status::NotAffected {
        detail
    } else {
        None
    };
    if status == Status::NotAffected && justification.is_none() && impact_statement.is_none() {
        return Err(format!(
            "{state} without a justification or a detail (impact statement)"
        ));
    }
    let mut action = Vec::new();
    let responses: Vec<&str> = analysis
        .get("response")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !responses.is_empty() {
        action.push(format!("response: {}", responses.join(", ")));
    }
    if let Some(r) = free_text(text(v, "recommendation"), "recommendation")? {
        action.push(format!("recommendation: {r}"));
    }
    if let Some(w) = free_text(text(v, "workaround"), "workaround")? {
        action.push(format!("workaround: {w}"));
    }
    let action_statement = (!action.is_empty()).then(|| action.join("\n"));
    let affects = v
        .get("affects")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or("no affects")?;
    let vulnerability = Vulnerability { id, aliases };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (j, a) in affects.iter().enumerate() {
        let Some(r) = text(a, "ref") else {
            bad.push((j, "affects entry without ref".to_string()));
            continue;
        };
        let product = match refs.get(r) {
            Some(purl) => Product::parse(purl).map_err(|e| e.to_string()),
            None if r.starts_with("pkg:") || r.starts_with("urn:cdx:") => {
                Product::parse(r).map_err(|e| e.to_string())
            }
            None => Err(format!(
                "ref {:?} names no component with a purl",
                crate::clip(r)
            )),
        };
        match product {
            Ok(product) => out.push(Statement {
                vulnerability: vulnerability.clone(),
                product,
                subcomponents: vec![],
                status,
                justification,
                original_justification: original_justification.clone(),
                impact_statement: impact_statement.clone(),
                action_statement: action_statement.clone(),
                provider: provider.clone(),
                issued: text(analysis, "firstIssued").map(str::to_string),
                last_updated: text(analysis, "lastUpdated").map(str::to_string),
                source: source.clone(),
            }),
            Err(reason) => bad.push((j, reason)),
        }
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_maps_onto_statements_and_refs_resolve() {
        let v = serde_json::json!({
            "bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": "urn:uuid:1", "version": 2,
            "metadata": {"supplier": {"name": "Example Supplier"},
                "component": {"bom-ref": "app", "name": "app", "purl": "pkg:npm/app@1"}},
            "components": [{"bom-ref": "lib", "name": "lib", "purl": "pkg:npm/lib@2",
                "components": [{"bom-ref": "inner", "name": "inner", "purl": "pkg:npm/inner@3"}]}],
            "vulnerabilities": [
                {"id": "CVE-1", "references": [{"id": "GHSA-1"}],
                 "analysis": {"state": "not_affected", "justification": "protected_at_runtime", "response": ["will_not_fix"]},
                 "affects": [{"ref": "lib"}, {"ref": "inner"}, {"ref": "app"}, {"ref": "urn:cdx:abc/1#lib"}, {"ref": "nothing"}]},
                {"id": "CVE-2", "analysis": {"state": "exploitable", "detail": "reachable"}, "recommendation": "upgrade",
                 "affects": [{"ref": "pkg:npm/other@1"}]},
                {"id": "CVE-3", "analysis": {"state": "false_positive"}, "affects": [{"ref": "lib"}]},
                {"id": "CVE-4", "analysis": {"state": "unknown"}, "affects": [{"ref": "lib"}]},
                {"id": "CVE-5", "affects": [{"ref": "lib"}]}
            ]
        });
        let d = from_value(&v, "sha256:00".into(), &Options::default()).unwrap();
        assert_eq!(d.provider.name, "Example Supplier");
        assert_eq!(d.id.as_deref(), Some("urn:uuid:1/2"));
        let products: Vec<&str> = d.statements.iter().map(|s| s.product.as_str()).collect();
        assert_eq!(
            products,
            [
                "pkg:npm/app@1",
                "pkg:npm/inner@3",
                "pkg:npm/lib@2",
                "urn:cdx:abc/1#lib",
                "pkg:npm/other@1"
            ]
        );
        let first = &d.statements[0];
        assert_eq!(
            first.justification,
            Some(Justification::InlineMitigationsAlreadyExist)
        );
        assert_eq!(
            first.original_justification.as_deref(),
            Some("protected_at_runtime")
        );
        assert_eq!(first.vulnerability.aliases, ["GHSA-1"]);
        assert_eq!(
            first.action_statement.as_deref(),
            Some("response: will_not_fix")
        );
        let last = &d.statements[4];
        assert_eq!(
            (last.status, last.impact_statement.as_deref()),
            (Status::Affected, None)
        );
        assert_eq!(
            last.action_statement.as_deref(),
            Some("recommendation: upgrade")
        );
        let reasons: Vec<String> = d.rejected.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            reasons,
            [
                "vulnerabilities[0].affects[4]: ref \"nothing\" names no component with a purl",
                "vulnerabilities[2]: false_positive without a justification or a detail (impact statement)",
                "vulnerabilities[3]: unknown analysis state \"unknown\"",
                "vulnerabilities[4]: no analysis: a vulnerability without analysis is not a VEX claim",
            ]
        );
        let mut anonymous = v.clone();
        anonymous["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("supplier");
        assert!(matches!(
            from_value(&anonymous, "d".into(), &Options::default()),
            Err(Error::NoProvider)
        ));
        let named = Options {
            provider: Some("Configured".into()),
        };
        assert_eq!(
            from_value(&anonymous, "d".into(), &named)
                .unwrap()
                .provider
                .name,
            "Configured"
        );
    }
}
