//! OpenVEX documents: the 0.2.0 context (`vulnerability` and `products` as objects) and the
//! older `https://openvex.dev/ns` v0.0.x context (both as strings). One [`Statement`] per
//! (statement, product); a statement with several products yields several.
//!
//! Required per the OpenVEX spec: `@id`, `author`, `statements`; per statement a vulnerability,
//! at least one product and a known status; `not_affected` needs a `justification` or an
//! `impact_statement`. The document `timestamp` and `version` are required by the 0.2.0 schema
//! but vexctl's own test data omits them: a statement is accepted when it has a timestamp of
//! its own or inherits the document's, and rejected when it has neither.

use crate::model::{
    Document, Format, Justification, Product, Provider, Rejection, Source, Statement, Status,
    Vulnerability,
};
use crate::{Error, Result, free_text, identifier, text};
use serde_json::Value;

/// Parses an OpenVEX document.
pub fn parse(bytes: &[u8]) -> Result<Document> {
    let (value, digest) = crate::read_json(bytes)?;
    from_value(&value, digest)
}

fn missing(field: &str) -> Error {
    Error::MissingField {
        format: Format::OpenVex,
        field: field.into(),
    }
}

fn invalid(field: &str, reason: String) -> Error {
    Error::InvalidField {
        format: Format::OpenVex,
        field: field.into(),
        reason,
    }
}

/// Reads an OpenVEX document already parsed as JSON; `digest` is the `sha256:` of its bytes.
pub fn from_value(v: &Value, digest: String) -> Result<Document> {
    let context = text(v, "@context").ok_or_else(|| missing("@context"))?;
    if !context.starts_with("https://openvex.dev/ns") {
        return Err(invalid(
            "@context",
            format!("{:?} is not an OpenVEX context", crate::clip(context)),
        ));
    }
    let id = identifier(text(v, "@id").ok_or_else(|| missing("@id"))?, "@id")
        .map_err(|e| invalid("@id", e))?;
    let author = identifier(
        text(v, "author").ok_or_else(|| missing("author"))?,
        "author",
    )
    .map_err(|e| invalid("author", e))?;
    let provider = Provider {
        name: author,
        namespace: None,
    };
    let statements = v
        .get("statements")
        .ok_or_else(|| missing("statements"))?
        .as_array()
        .ok_or_else(|| invalid("statements", "not an array".into()))?;
    if statements.is_empty() {
        return Err(Error::Empty(Format::OpenVex));
    }
    let doc_time = text(v, "timestamp");
    let doc_updated = text(v, "last_updated");
    let source = Source {
        format: Format::OpenVex,
        document_digest: digest.clone(),
        document_id: Some(id.clone()),
        index: 0,
    };
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        let location = format!("statements[{i}]");
        match statement(s, &provider, &source, doc_time, doc_updated) {
            Ok((mut list, bad)) => {
                accepted.append(&mut list);
                rejected.extend(bad.into_iter().map(|(j, reason)| Rejection {
                    location: format!("{location}.products[{j}]"),
                    reason,
                }));
            }
            Err(reason) => rejected.push(Rejection { location, reason }),
        }
    }
    Ok(Document {
        format: Format::OpenVex,
        digest,
        id: Some(id),
        provider,
        statements: crate::finish(accepted),
        rejected,
    })
}

type Products = (Vec<Statement>, Vec<(usize, String)>);

/// The statements of one OpenVEX statement (one per product), and the products rejected.
fn statement(
    s: &Value,
    provider: &Provider,
    source: &Source,
    doc_time: Option<&str>,
    doc_updated: Option<&str>,
) -> std::result::Result<Products, String> {
    if !s.is_object() {
        return Err("not an object".into());
    }
    let vulnerability = match s.get("vulnerability") {
        Some(Value::String(name)) => Vulnerability {
            id: identifier(name, "vulnerability")?,
            aliases: vec![],
        },
        Some(obj @ Value::Object(_)) => {
            let name = text(obj, "name")
                .or_else(|| text(obj, "@id"))
                .ok_or("vulnerability has no name")?;
            let id = identifier(name, "vulnerability name")?;
            let mut aliases = Vec::new();
            for a in obj
                .get("aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let a = a.as_str().ok_or("vulnerability alias is not a string")?;
                let a = identifier(a, "vulnerability alias")?;
                if a != id {
                    aliases.push(a);
                }
            }
            aliases.sort();
            aliases.dedup();
            Vulnerability { id, aliases }
        }
        Some(_) => return Err("vulnerability is neither a string nor an object".into()),
        None => return Err("missing vulnerability".into()),
    };
    let status_text = text(s, "status").ok_or("missing status")?;
    let status = Status::parse(status_text)
        .ok_or_else(|| format!("unknown status {:?}", crate::clip(status_text)))?;
    let original_justification = text(s, "justification").map(str::to_string);
    let justification = match &original_justification {
        Some(j) => Some(
            Justification::parse(j)
                .ok_or_else(|| format!("unknown justification {:?}", crate::clip(j)))?,
        ),
        None => None,
    };
    let impact_statement = free_text(text(s, "impact_statement"), "impact_statement")?;
    let action_statement = free_text(text(s, "action_statement"), "action_statement")?;
    if status == Status::NotAffected && justification.is_none() && impact_statement.is_none() {
        return Err("not_affected without a justification or an impact_statement".into());
    }
    let issued = text(s, "timestamp")
        .or(doc_time)
        .ok_or("no timestamp on the statement nor on the document")?;
    let last_updated = text(s, "last_updated").or(doc_updated);
    let products = s
        .get("products")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or("no products")?;
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (j, p) in products.iter().enumerate() {
        match product(p) {
            Ok((product, subcomponents)) => out.push(Statement {
                vulnerability: vulnerability.clone(),
                product,
                subcomponents,
                status,
                justification,
                original_justification: original_justification.clone(),
                impact_statement: impact_statement.clone(),
                action_statement: action_statement.clone(),
                provider: provider.clone(),
                issued: Some(issued.to_string()),
                last_updated: last_updated.map(str::to_string),
                source: source.clone(),
            }),
            Err(reason) => bad.push((j, reason)),
        }
    }
    Ok((out, bad))
}

/// A product and its subcomponents: a string (v0.0.x) or an object with `@id`,
/// `identifiers.purl`, `hashes` and `subcomponents` (0.2.0).
fn product(p: &Value) -> std::result::Result<(Product, Vec<String>), String> {
    let product = component(p)?;
    let mut subcomponents = Vec::new();
    for sub in p
        .get("subcomponents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match component(sub)? {
            Product::Purl(purl) => subcomponents.push(purl),
            other => return Err(format!("subcomponent {other} is not a purl")),
        }
    }
    subcomponents.sort();
    subcomponents.dedup();
    Ok((product, subcomponents))
}

/// The identifier of a product or subcomponent: `@id` when it is a purl or digest, else
/// `identifiers.purl`, else a `sha-256` hash.
fn component(p: &Value) -> std::result::Result<Product, String> {
    let parse = |s: &str| Product::parse(s).map_err(|e| e.to_string());
    if let Some(s) = p.as_str() {
        return parse(s);
    }
    if !p.is_object() {
        return Err("product is neither a string nor an object".into());
    }
    let id = text(p, "@id");
    if let Some(Ok(product)) = id.map(Product::parse) {
        return Ok(product);
    }
    if let Some(purl) = p.pointer("/identifiers/purl").and_then(Value::as_str) {
        return parse(purl);
    }
    if let Some(hash) = p.pointer("/hashes/sha-256").and_then(Value::as_str) {
        return parse(&format!("sha256:{hash}"));
    }
    match id {
        Some(id) => parse(id),
        None => Err("product has no @id, identifiers.purl or sha-256 hash".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(statements: Value) -> Document {
        let v = serde_json::json!({
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.com/vex/1",
            "author": "Example Vendor",
            "timestamp": "2024-01-01T00:00:00Z",
            "version": 1,
            "statements": statements,
        });
        from_value(&v, "sha256:00".into()).unwrap()
    }

    #[test]
    fn one_statement_per_product_with_subcomponents_and_the_openvex_rules() {
        let d = doc(serde_json::json!([
            {"vulnerability": {"name": "CVE-2024-1", "aliases": ["GHSA-x", "CVE-2024-1"]},
             "products": [
                {"@id": format!("pkg:oci/app@sha256%3A{}", "ab".repeat(32)),
                 "subcomponents": [{"@id": "pkg:npm/b@2"}, {"@id": "pkg:npm/a@1"}]},
                {"@id": "urn:x", "identifiers": {"purl": "pkg:deb/debian/curl@8"}},
                {"@id": "x", "hashes": {"sha-256": "CD".repeat(32)}},
                {"@id": "nginx"}],
             "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
            {"vulnerability": {"name": "CVE-2024-2"}, "products": [{"@id": "pkg:npm/a@1"}],
             "status": "not_affected"},
            {"vulnerability": {"name": "CVE-2024-3"}, "products": [{"@id": "pkg:npm/a@1"}],
             "status": "exploitable"},
            {"vulnerability": {"name": "CVE-2024-4"}, "products": [{"@id": "pkg:npm/a@1"}],
             "status": "not_affected", "justification": "it_is_fine"},
            {"vulnerability": {"name": "CVE-2024-5"}, "status": "fixed"},
            {"vulnerability": {"name": "CVE-2024-6"}, "products": [{"@id": "pkg:npm/a@1"}],
             "status": "not_affected", "impact_statement": "not reachable",
             "timestamp": "2024-02-02T00:00:00Z", "last_updated": "2024-03-03T00:00:00Z"}
        ]));
        assert_eq!(d.statements.len(), 4, "{:#?}", d.rejected);
        // Sorted: purls before digests.
        assert_eq!(d.statements[0].product.as_str(), "pkg:deb/debian/curl@8");
        let oci = &d.statements[1];
        assert_eq!(oci.vulnerability.aliases, ["GHSA-x"]);
        assert_eq!(oci.subcomponents, ["pkg:npm/a@1", "pkg:npm/b@2"]);
        assert_eq!(oci.issued.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(
            d.statements[2].product,
            Product::Image(format!("sha256:{}", "cd".repeat(32)))
        );
        let last = &d.statements[3];
        assert_eq!(
            (last.issued.as_deref(), last.last_updated.as_deref()),
            (Some("2024-02-02T00:00:00Z"), Some("2024-03-03T00:00:00Z"))
        );
        let reasons: Vec<String> = d.rejected.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            reasons,
            [
                "statements[0].products[3]: product \"nginx\" is neither a purl nor a sha256: image digest",
                "statements[1]: not_affected without a justification or an impact_statement",
                "statements[2]: unknown status \"exploitable\"",
                "statements[3]: unknown justification \"it_is_fine\"",
                "statements[4]: no products",
            ]
        );
    }

    #[test]
    fn documents_missing_required_fields_are_refused() {
        let base = serde_json::json!({"@context": "https://openvex.dev/ns", "@id": "x",
            "author": "a", "statements": [{"vulnerability": "CVE-1", "products": ["pkg:npm/a"],
            "status": "fixed", "timestamp": "2024-01-01T00:00:00Z"}]});
        assert_eq!(from_value(&base, "d".into()).unwrap().statements.len(), 1);
        for field in ["@id", "author", "statements"] {
            let mut v = base.clone();
            v.as_object_mut().unwrap().remove(field);
            let err = from_value(&v, "d".into()).unwrap_err().to_string();
            assert_eq!(err, format!("openvex: missing required field {field}"));
        }
        let mut v = base.clone();
        v["statements"] = serde_json::json!([]);
        assert!(matches!(from_value(&v, "d".into()), Err(Error::Empty(_))));
        let mut v = base.clone();
        v["author"] = Value::String("x".repeat(crate::MAX_ID + 1));
        assert!(
            from_value(&v, "d".into())
                .unwrap_err()
                .to_string()
                .contains("longer than")
        );
        let mut v = base;
        v["statements"][0]
            .as_object_mut()
            .unwrap()
            .remove("timestamp");
        let d = from_value(&v, "d".into()).unwrap();
        assert_eq!(
            d.rejected[0].reason,
            "no timestamp on the statement nor on the document"
        );
    }
}
