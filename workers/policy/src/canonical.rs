//! Canonical form and digest. The digest is `sha256:` of the canonical JSON (keys sorted,
//! no insignificant whitespace) of the normalised spec, so the same policy written
//! differently — key order, YAML or JSON, comments, flow or block style, `1` or `1.0`,
//! matcher lists in another order, the default scoring written out or left implicit — has
//! the same digest, and any change to what the policy decides changes it.

use crate::scoring::default_scoring;
use serde_json::Value;
use sha2::{Digest, Sha256};
use stella_model::Severity;
use stella_model::policy::PolicySpec;

/// The canonical spec: the default scoring configuration filled in; matcher lists (and the
/// `requireVex` lists, exemption lists) sorted and deduplicated, since their order means
/// nothing. Rule order, which decides, is kept; so are confidence bands' order.
pub fn normalize(mut spec: PolicySpec) -> PolicySpec {
    fn set(list: &mut Vec<String>) {
        list.sort();
        list.dedup();
    }
    if spec.scoring.is_none() {
        spec.scoring = Some(default_scoring());
    }
    for rule in &mut spec.rules {
        let rank = |s: &Severity| Severity::ALL.iter().position(|x| x == s);
        rule.severity.sort_by_key(rank);
        rule.severity.dedup();
        for list in [
            &mut rule.environments,
            &mut rule.sources,
            &mut rule.vendors,
            &mut rule.images,
            &mut rule.repositories,
            &mut rule.namespaces,
            &mut rule.purls,
            &mut rule.cves,
            &mut rule.paths,
            &mut rule.layer_digests,
            &mut rule.licenses,
        ] {
            set(list);
        }
        if let Some(require) = &mut rule.require_vex {
            set(&mut require.vendors);
            require.justifications.sort();
            require.justifications.dedup();
        }
    }
    if let Some(admission) = &mut spec.admission {
        for exemption in &mut admission.exemptions {
            set(&mut exemption.namespaces);
            set(&mut exemption.images);
        }
    }
    spec
}

/// `sha256:<hex>` of the canonical JSON of the normalised `spec`.
pub fn digest(spec: &PolicySpec) -> String {
    let value = serde_json::to_value(normalize(spec.clone())).expect("a policy spec serialises");
    let hash = Sha256::digest(canonical_json(&value).as_bytes());
    format!("sha256:{}", hex::encode(hash))
}

/// Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, numbers as
/// serde_json writes them (shortest round-trip form), strings with serde_json's escaping.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level_without_whitespace() {
        let value = serde_json::json!({"b": [{"z": 1, "a": "x\"y"}], "a": 1.5, "c": null});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":1.5,"b":[{"a":"x\"y","z":1}],"c":null}"#
        );
    }
}
