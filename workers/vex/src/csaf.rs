//! CSAF 2.0 documents of the VEX profile (`document.category: csaf_vex`).
//!
//! The product tree resolves product ids to purls: a product's
//! `product_identification_helper.purl` (from `branches` at any depth or `full_product_names`);
//! a relationship's product (`default_component_of`, `installed_on`, …) is its
//! `product_reference` component — and when the platform it relates to is a container image
//! (a `sha256:` digest or `pkg:oci` purl with one), the statement is about that image narrowed
//! to the component. Product groups expand to their products.
//!
//! Statuses: `known_not_affected` → not_affected; `known_affected`, `first_affected`,
//! `last_affected` → affected; `fixed`, `first_fixed` → fixed; `under_investigation`;
//! `recommended` (a version carrying the vendor's recommended fix) → fixed, unless the product
//! already has a status for that vulnerability. `flags[].label` is the justification,
//! `threats[category=impact].details` the impact statement, `remediations` (`category: details`)
//! the action statement.
//!
//! The mandatory tests of CSAF section 6.1 that bear on reading VEX claims are enforced, and
//! every reason names its test as `[CSAF 6.1.x]`. A malformed product tree (6.1.1 in groups,
//! 6.1.2, 6.1.3, 6.1.5, 6.1.13) refuses the whole document, since every reference depends on
//! it; problems inside one vulnerability (6.1.1 and 6.1.4 references, 6.1.6, 6.1.27.7–10,
//! 6.1.29, 6.1.32, 6.1.33) reject the claims they touch and keep the rest.

use crate::model::{
    Document, Format, Justification, Product, Provider, Rejection, Source, Statement, Status,
    Vulnerability,
};
use crate::{Error, Result, free_text, identifier, text};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Parses a CSAF VEX document.
pub fn parse(bytes: &[u8]) -> Result<Document> {
    let (value, digest) = crate::read_json(bytes)?;
    from_value(&value, digest)
}

fn missing(field: &str) -> Error {
    Error::MissingField {
        format: Format::Csaf,
        field: field.into(),
    }
}

fn invalid(field: &str, reason: String) -> Error {
    Error::InvalidField {
        format: Format::Csaf,
        field: field.into(),
        reason,
    }
}

/// The product status lists, in the order they are read, with the status each maps to.
const STATUS_LISTS: &[(&str, Status)] = &[
    ("known_affected", Status::Affected),
    ("first_affected", Status::Affected),
    ("last_affected", Status::Affected),
    ("known_not_affected", Status::NotAffected),
    ("fixed", Status::Fixed),
    ("first_fixed", Status::Fixed),
    ("under_investigation", Status::UnderInvestigation),
];

/// The lists of which a VEX document needs at least one per vulnerability (6.1.27.7).
const VEX_LISTS: &[&str] = &[
    "fixed",
    "known_affected",
    "known_not_affected",
    "under_investigation",
];

/// The product tree, indexed.
#[derive(Debug, Default)]
struct Tree {
    /// product id → (name, purl or digest as written).
    products: BTreeMap<String, (Option<String>, Option<String>)>,
    /// relationship product id → (component product id, platform product id).
    relationships: BTreeMap<String, (String, String)>,
    groups: BTreeMap<String, Vec<String>>,
}

impl Tree {
    fn read(v: Option<&Value>) -> Result<Tree> {
        let mut tree = Tree::default();
        let Some(v) = v else {
            return Ok(tree);
        };
        let define = |p: &Value, tree: &mut Tree| -> Result<()> {
            let id = text(p, "product_id").ok_or_else(|| missing("product_tree product_id"))?;
            let purl = p
                .pointer("/product_identification_helper/purl")
                .and_then(Value::as_str);
            if let Some(purl) = purl {
                crate::purl::Purl::parse(purl).map_err(|e| {
                    invalid("product_tree", format!("[CSAF 6.1.13] product {id}: {e}"))
                })?;
            }
            let previous = tree.products.insert(
                id.to_string(),
                (
                    text(p, "name").map(str::to_string),
                    purl.map(str::to_string),
                ),
            );
            if previous.is_some() {
                return Err(invalid(
                    "product_tree",
                    format!("[CSAF 6.1.2] product id {id} is defined more than once"),
                ));
            }
            Ok(())
        };
        // Branches, iteratively (nesting is bounded by the JSON parser's depth limit anyway).
        let mut stack: Vec<&Value> = v
            .get("branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        while let Some(branch) = stack.pop() {
            if let Some(p) = branch.get("product") {
                define(p, &mut tree)?;
            }
            stack.extend(
                branch
                    .get("branches")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            );
        }
        for p in v
            .get("full_product_names")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            define(p, &mut tree)?;
        }
        for r in v
            .get("relationships")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let full = r
                .get("full_product_name")
                .ok_or_else(|| missing("product_tree relationships full_product_name"))?;
            define(full, &mut tree)?;
            let id = text(full, "product_id").unwrap_or_default().to_string();
            let component = text(r, "product_reference")
                .ok_or_else(|| missing("product_tree relationships product_reference"))?;
            let platform = text(r, "relates_to_product_reference").ok_or_else(|| {
                missing("product_tree relationships relates_to_product_reference")
            })?;
            if id == component || id == platform {
                return Err(invalid(
                    "product_tree",
                    format!("[CSAF 6.1.3] circular definition of product id {id}"),
                ));
            }
            tree.relationships
                .insert(id, (component.to_string(), platform.to_string()));
        }
        for g in v
            .get("product_groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = text(g, "group_id").ok_or_else(|| missing("product_groups group_id"))?;
            let members: Vec<String> = g
                .get("product_ids")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            if tree.groups.insert(id.to_string(), members).is_some() {
                return Err(invalid(
                    "product_tree",
                    format!("[CSAF 6.1.5] group id {id} is defined more than once"),
                ));
            }
        }
        // Every reference inside the tree names a defined product.
        let referenced = tree
            .relationships
            .values()
            .flat_map(|(c, p)| [c, p])
            .chain(tree.groups.values().flatten());
        for id in referenced {
            if !tree.products.contains_key(id) {
                return Err(invalid(
                    "product_tree",
                    format!("[CSAF 6.1.1] product id {id} is referenced but not defined"),
                ));
            }
        }
        // Relationship chains that loop back (A is a component of B, B of A).
        for start in tree.relationships.keys() {
            let mut seen = BTreeSet::new();
            let mut at = start;
            while let Some((component, _)) = tree.relationships.get(at) {
                if !seen.insert(at) {
                    return Err(invalid(
                        "product_tree",
                        format!("[CSAF 6.1.3] circular definition of product id {start}"),
                    ));
                }
                at = component;
            }
        }
        Ok(tree)
    }

    /// Product ids of `product_ids` and `group_ids`, each defined; the reason otherwise.
    fn expand(&self, item: &Value) -> std::result::Result<Vec<String>, String> {
        let mut out = Vec::new();
        for id in item
            .get("product_ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !self.products.contains_key(id) {
                return Err(format!(
                    "[CSAF 6.1.1] product id {id} is not defined in the product_tree"
                ));
            }
            out.push(id.to_string());
        }
        for gid in item
            .get("group_ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let members = self.groups.get(gid).ok_or_else(|| {
                format!("[CSAF 6.1.4] group id {gid} is not defined in the product_tree")
            })?;
            out.extend(members.iter().cloned());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn has_refs(item: &Value) -> bool {
        ["product_ids", "group_ids"].iter().any(|k| {
            item.get(k)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        })
    }

    /// The product and subcomponents a product id stands for.
    fn resolve(&self, id: &str) -> std::result::Result<(Product, Vec<String>), String> {
        let (name, purl) = self.products.get(id).cloned().unwrap_or_default();
        if let Some(purl) = purl {
            return Ok((Product::parse(&purl).map_err(|e| e.to_string())?, vec![]));
        }
        if let Some((component, platform)) = self.relationships.get(id) {
            let (component, _) = self.resolve(component)?;
            if let Ok((platform, _)) = self.resolve(platform)
                && platform.image_digest().is_some()
                && let Product::Purl(purl) = &component
            {
                return Ok((platform, vec![purl.clone()]));
            }
            return Ok((component, vec![]));
        }
        Err(format!(
            "product {id}{} has no purl in its product_identification_helper",
            name.map(|n| format!(" ({})", crate::clip(&n)))
                .unwrap_or_default()
        ))
    }
}

/// Reads a CSAF document already parsed as JSON; `digest` is the `sha256:` of its bytes.
pub fn from_value(v: &Value, digest: String) -> Result<Document> {
    let document = v.get("document").ok_or_else(|| missing("document"))?;
    let category = text(document, "category").ok_or_else(|| missing("document.category"))?;
    if category != "csaf_vex" {
        let folded: String = category
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if folded == "csafvex" {
            return Err(invalid(
                "document.category",
                format!(
                    "[CSAF 6.1.26] {:?} is a prohibited look-alike of csaf_vex",
                    crate::clip(category)
                ),
            ));
        }
        return Err(Error::NotVex(crate::clip(category)));
    }
    let version = text(document, "csaf_version").ok_or_else(|| missing("document.csaf_version"))?;
    if version != "2.0" {
        return Err(invalid(
            "document.csaf_version",
            format!("{:?} is not 2.0", crate::clip(version)),
        ));
    }
    let publisher = document
        .get("publisher")
        .ok_or_else(|| missing("document.publisher"))?;
    let name = text(publisher, "name").ok_or_else(|| missing("document.publisher.name"))?;
    let namespace =
        text(publisher, "namespace").ok_or_else(|| missing("document.publisher.namespace"))?;
    let provider = Provider {
        name: identifier(name, "publisher name")
            .map_err(|e| invalid("document.publisher.name", e))?,
        namespace: Some(
            identifier(namespace, "publisher namespace")
                .map_err(|e| invalid("document.publisher.namespace", e))?,
        ),
    };
    let tracking = document
        .get("tracking")
        .ok_or_else(|| missing("document.tracking"))?;
    let id = identifier(
        text(tracking, "id").ok_or_else(|| missing("document.tracking.id"))?,
        "tracking id",
    )
    .map_err(|e| invalid("document.tracking.id", e))?;
    let issued = text(tracking, "initial_release_date")
        .ok_or_else(|| missing("document.tracking.initial_release_date"))?;
    let updated = text(tracking, "current_release_date")
        .ok_or_else(|| missing("document.tracking.current_release_date"))?;
    let tree = Tree::read(v.get("product_tree"))?;
    let vulnerabilities = v
        .get("vulnerabilities")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("vulnerabilities"))?;
    if vulnerabilities.is_empty() {
        return Err(Error::Empty(Format::Csaf));
    }
    let context = Context {
        tree: &tree,
        provider: &provider,
        source: Source {
            format: Format::Csaf,
            document_digest: digest.clone(),
            document_id: Some(id.clone()),
            index: 0,
        },
        issued,
        updated,
    };
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (i, vuln) in vulnerabilities.iter().enumerate() {
        context.vulnerability(i, vuln, &mut accepted, &mut rejected);
    }
    Ok(Document {
        format: Format::Csaf,
        digest,
        id: Some(id),
        provider,
        statements: crate::finish(accepted),
        rejected,
    })
}

struct Context<'a> {
    tree: &'a Tree,
    provider: &'a Provider,
    source: Source,
    issued: &'a str,
    updated: &'a str,
}

impl Context<'_> {
    /// The statements of `vulnerabilities[i]`.
    fn vulnerability(
        &self,
        i: usize,
        v: &Value,
        accepted: &mut Vec<Statement>,
        rejected: &mut Vec<Rejection>,
    ) {
        let at = |path: String, reason: String| Rejection {
            location: format!("vulnerabilities[{i}]{path}"),
            reason,
        };
        // Identity: the CVE, else the first of `ids`; the other ids are aliases.
        let mut ids: Vec<String> = Vec::new();
        if let Some(cve) = text(v, "cve") {
            ids.push(cve.to_string());
        }
        for x in v.get("ids").and_then(Value::as_array).into_iter().flatten() {
            if let Some(t) = text(x, "text") {
                ids.push(t.to_string());
            }
        }
        let mut fatal = false;
        let ids: Vec<String> = match ids
            .iter()
            .map(|s| identifier(s, "vulnerability id"))
            .collect::<std::result::Result<Vec<_>, _>>()
        {
            Ok(ids) => ids,
            Err(e) => {
                rejected.push(at(String::new(), e));
                return;
            }
        };
        if ids.is_empty() {
            rejected.push(at(
                String::new(),
                "[CSAF 6.1.27.8] the vulnerability has neither cve nor ids".into(),
            ));
            fatal = true;
        }
        let status = v.get("product_status");
        let has_vex_list = VEX_LISTS.iter().any(|l| {
            status
                .and_then(|s| s.get(*l))
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        });
        if !has_vex_list {
            rejected.push(at(
                ".product_status".into(),
                "[CSAF 6.1.27.7] none of fixed, known_affected, known_not_affected, under_investigation is given".into(),
            ));
            fatal = true;
        }
        // Justifications from flags, one per product.
        let mut justification: BTreeMap<String, (Justification, String)> = BTreeMap::new();
        let mut ambiguous: BTreeSet<String> = BTreeSet::new();
        for (k, flag) in v
            .get("flags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let path = format!(".flags[{k}]");
            if !Tree::has_refs(flag) {
                rejected.push(at(
                    path,
                    "[CSAF 6.1.32] flag without product_ids or group_ids".into(),
                ));
                continue;
            }
            let products = match self.tree.expand(flag) {
                Ok(p) => p,
                Err(e) => {
                    rejected.push(at(path, e));
                    continue;
                }
            };
            let Some(label) = text(flag, "label") else {
                rejected.push(at(path, "flag without label".into()));
                continue;
            };
            let Some(j) = Justification::parse(label) else {
                rejected.push(at(
                    path,
                    format!("unknown flag label {:?}", crate::clip(label)),
                ));
                continue;
            };
            for p in products {
                if justification
                    .insert(p.clone(), (j, label.to_string()))
                    .is_some()
                {
                    ambiguous.insert(p);
                }
            }
        }
        // Impact statements from threats of category impact; every threat's references checked.
        let mut impact: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, threat) in v
            .get("threats")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let products = match self.tree.expand(threat) {
                Ok(p) => p,
                Err(e) => {
                    rejected.push(at(format!(".threats[{k}]"), e));
                    continue;
                }
            };
            if text(threat, "category") != Some("impact") {
                continue;
            }
            match free_text(text(threat, "details"), "threat details") {
                Ok(Some(details)) => {
                    for p in products {
                        impact.entry(p).or_default().push(details.clone());
                    }
                }
                Ok(None) => {}
                Err(e) => rejected.push(at(format!(".threats[{k}]"), e)),
            }
        }
        // Action statements from remediations.
        let mut action: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, r) in v
            .get("remediations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let path = format!(".remediations[{k}]");
            if !Tree::has_refs(r) {
                rejected.push(at(
                    path,
                    "[CSAF 6.1.29] remediation without product_ids or group_ids".into(),
                ));
                continue;
            }
            let products = match self.tree.expand(r) {
                Ok(p) => p,
                Err(e) => {
                    rejected.push(at(path, e));
                    continue;
                }
            };
            let category = text(r, "category").unwrap_or("remediation");
            let mut line = match free_text(text(r, "details"), "remediation details") {
                Ok(Some(d)) => format!("{category}: {d}"),
                Ok(None) => category.to_string(),
                Err(e) => {
                    rejected.push(at(path, e));
                    continue;
                }
            };
            if let Some(url) = text(r, "url") {
                line.push_str(&format!(" ({url})"));
            }
            for p in products {
                action.entry(p).or_default().push(line.clone());
            }
        }
        // Statuses per product: (status, list) pairs.
        let mut listed: BTreeMap<String, BTreeSet<(Status, &str)>> = BTreeMap::new();
        for (list, st) in STATUS_LISTS {
            for (j, id) in status
                .and_then(|s| s.get(*list))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let Some(id) = id.as_str() else {
                    rejected.push(at(
                        format!(".product_status.{list}[{j}]"),
                        "not a product id".into(),
                    ));
                    continue;
                };
                if !self.tree.products.contains_key(id) {
                    rejected.push(at(
                        format!(".product_status.{list}[{j}]"),
                        format!("[CSAF 6.1.1] product id {id} is not defined in the product_tree"),
                    ));
                    continue;
                }
                listed
                    .entry(id.to_string())
                    .or_default()
                    .insert((*st, list));
            }
        }
        for id in status
            .and_then(|s| s.get("recommended"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if self.tree.products.contains_key(id) && !listed.contains_key(id) {
                listed
                    .entry(id.to_string())
                    .or_default()
                    .insert((Status::Fixed, "recommended"));
            }
        }
        // Contradicting statuses (6.1.6) are reported whatever else is wrong.
        let mut contradicted = BTreeSet::new();
        for (id, statuses) in &listed {
            let distinct: BTreeSet<Status> = statuses.iter().map(|(s, _)| *s).collect();
            if distinct.len() > 1 {
                let lists: Vec<&str> = statuses.iter().map(|(_, l)| *l).collect();
                rejected.push(at(
                    ".product_status".into(),
                    format!(
                        "[CSAF 6.1.6] contradicting product status: {id} is listed in {}",
                        lists.join(", ")
                    ),
                ));
                contradicted.insert(id.clone());
            }
        }
        if fatal {
            return;
        }
        let vulnerability = Vulnerability {
            id: ids[0].clone(),
            aliases: {
                let mut a: Vec<String> =
                    ids[1..].iter().filter(|x| **x != ids[0]).cloned().collect();
                a.sort();
                a.dedup();
                a
            },
        };
        for (id, statuses) in &listed {
            if contradicted.contains(id) {
                continue;
            }
            let distinct: BTreeSet<Status> = statuses.iter().map(|(s, _)| *s).collect();
            let st = *distinct
                .iter()
                .next()
                .unwrap_or(&Status::UnderInvestigation);
            let lists: BTreeSet<&str> = statuses.iter().map(|(_, l)| *l).collect();
            let (justification, original) = match justification.get(id) {
                Some((j, label)) => (Some(*j), Some(label.clone())),
                None => (None, None),
            };
            let impact_statement = impact.get(id).map(|d| d.join("\n"));
            let action_statement = action.get(id).map(|d| d.join("\n"));
            if ambiguous.contains(id) {
                rejected.push(at(
                    ".flags".into(),
                    format!(
                        "[CSAF 6.1.33] product {id} has more than one flag with a VEX justification"
                    ),
                ));
                continue;
            }
            if st == Status::NotAffected && justification.is_none() && impact_statement.is_none() {
                rejected.push(at(
                    ".product_status.known_not_affected".into(),
                    format!("[CSAF 6.1.27.9] product {id} is known_not_affected without an impact statement (a flag or a threat of category impact)"),
                ));
                continue;
            }
            if lists.contains("known_affected") && action_statement.is_none() {
                rejected.push(at(
                    ".product_status.known_affected".into(),
                    format!("[CSAF 6.1.27.10] product {id} is known_affected without an action statement (a remediation)"),
                ));
                continue;
            }
            let (product, subcomponents) = match self.tree.resolve(id) {
                Ok(x) => x,
                Err(e) => {
                    rejected.push(at(
                        format!(".product_status.{}", lists.iter().next().unwrap_or(&"")),
                        e,
                    ));
                    continue;
                }
            };
            accepted.push(Statement {
                vulnerability: vulnerability.clone(),
                product,
                subcomponents,
                status: st,
                justification: if st == Status::NotAffected {
                    justification
                } else {
                    None
                },
                original_justification: if st == Status::NotAffected {
                    original
                } else {
                    None
                },
                impact_statement,
                action_statement,
                provider: self.provider.clone(),
                issued: Some(self.issued.to_string()),
                last_updated: Some(self.updated.to_string()),
                source: self.source.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(product_tree: Value, vulnerabilities: Value) -> Result<Document> {
        let v = serde_json::json!({
            "document": {"category": "csaf_vex", "csaf_version": "2.0", "title": "t",
                "publisher": {"category": "vendor", "name": "Example PSIRT", "namespace": "https://psirt.example.com"},
                "tracking": {"id": "EX-1", "initial_release_date": "2024-01-01T00:00:00Z",
                    "current_release_date": "2024-02-01T00:00:00Z", "status": "final", "version": "1",
                    "revision_history": []}},
            "product_tree": product_tree,
            "vulnerabilities": vulnerabilities,
        });
        from_value(&v, "sha256:00".into())
    }

    #[test]
    fn relationships_resolve_to_component_purls_and_image_platforms_narrow() {
        let image = format!("sha256:{}", "ab".repeat(32));
        let tree = serde_json::json!({
            "branches": [{"category": "vendor", "name": "Example", "branches": [
                {"category": "product_version", "name": "curl", "product": {"product_id": "curl", "name": "curl 8",
                    "product_identification_helper": {"purl": "pkg:rpm/example/curl@8.0-1?arch=x86_64"}}},
                {"category": "product_name", "name": "OS", "product": {"product_id": "os", "name": "Example OS 9"}},
                {"category": "product_name", "name": "img", "product": {"product_id": "img", "name": "app image",
                    "product_identification_helper": {"purl": format!("pkg:oci/app@{}", image.replace(':', "%3A"))}}}]}],
            "relationships": [
                {"category": "default_component_of", "product_reference": "curl", "relates_to_product_reference": "os",
                 "full_product_name": {"product_id": "os:curl", "name": "curl on OS"}},
                {"category": "default_component_of", "product_reference": "curl", "relates_to_product_reference": "img",
                 "full_product_name": {"product_id": "img:curl", "name": "curl in the image"}}],
            "product_groups": [{"group_id": "all", "product_ids": ["os:curl", "img:curl"]}]
        });
        let d = doc(tree, serde_json::json!([
            {"cve": "CVE-2024-1", "ids": [{"system_name": "x", "text": "EX-2024-1"}],
             "product_status": {"known_not_affected": ["os:curl", "img:curl"], "recommended": ["curl"]},
             "flags": [{"label": "vulnerable_code_not_in_execute_path", "group_ids": ["all"]}]},
            {"cve": "CVE-2024-2", "product_status": {"known_affected": ["os:curl"], "fixed": ["os:curl"]}},
            {"cve": "CVE-2024-3", "product_status": {"known_affected": ["os:curl", "img:curl"]},
             "remediations": [{"category": "vendor_fix", "details": "update", "product_ids": ["os:curl"]}]}
        ])).unwrap();
        let got: Vec<(String, String, String, Vec<String>)> = d
            .statements
            .iter()
            .map(|s| {
                (
                    s.vulnerability.id.clone(),
                    s.status.to_string(),
                    s.product.to_string(),
                    s.subcomponents.clone(),
                )
            })
            .collect();
        let curl = "pkg:rpm/example/curl@8.0-1?arch=x86_64".to_string();
        let oci = format!("pkg:oci/app@sha256%3A{}", "ab".repeat(32));
        assert_eq!(
            got,
            [
                (
                    "CVE-2024-1".into(),
                    "not_affected".into(),
                    oci,
                    vec![curl.clone()]
                ),
                (
                    "CVE-2024-1".into(),
                    "not_affected".into(),
                    curl.clone(),
                    vec![]
                ),
                ("CVE-2024-1".into(), "fixed".into(), curl.clone(), vec![]),
                ("CVE-2024-3".into(), "affected".into(), curl.clone(), vec![]),
            ]
        );
        assert_eq!(d.statements[0].product.image_digest(), Some(image));
        assert_eq!(d.statements[0].vulnerability.aliases, ["EX-2024-1"]);
        assert_eq!(
            d.statements[3].action_statement.as_deref(),
            Some("vendor_fix: update")
        );
        let reasons: Vec<String> = d.rejected.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            reasons,
            [
                "vulnerabilities[1].product_status: [CSAF 6.1.6] contradicting product status: os:curl is listed in known_affected, fixed",
                "vulnerabilities[2].product_status.known_affected: [CSAF 6.1.27.10] product img:curl is known_affected without an action statement (a remediation)",
            ]
        );
    }

    #[test]
    fn other_categories_and_broken_trees_are_refused() {
        let mut v = serde_json::json!({"document": {"category": "csaf_security_advisory", "csaf_version": "2.0"}});
        assert!(matches!(from_value(&v, "d".into()), Err(Error::NotVex(_))));
        v["document"]["category"] = "csaf_vex".into();
        assert_eq!(
            from_value(&v, "d".into()).unwrap_err().to_string(),
            "csaf: missing required field document.publisher"
        );
        let loop_tree = serde_json::json!({"full_product_names": [{"product_id": "a", "name": "a"}, {"product_id": "b", "name": "b"}],
            "relationships": [
                {"category": "installed_on", "product_reference": "d", "relates_to_product_reference": "b", "full_product_name": {"product_id": "c", "name": "c"}},
                {"category": "installed_on", "product_reference": "c", "relates_to_product_reference": "b", "full_product_name": {"product_id": "d", "name": "d"}}]});
        let err = doc(loop_tree, serde_json::json!([]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[CSAF 6.1.3]"), "{err}");
    }
}
