//! The CRD's CEL rules (`x-kubernetes-validations`), evaluated where the API server would:
//! each rule with `self` bound to the value at its schema node, a failed rule reported at that
//! node's path plus the rule's `fieldPath` with its `message`. Rules that cannot be evaluated
//! (a field the rule reads is absent or of another type) report nothing: the schema check has
//! already said what is wrong with such a value.

use crate::{Issue, Segment};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The rules of one schema node and of the nodes below it that have any.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    own: Vec<Rule>,
    properties: BTreeMap<String, Rules>,
    items: Option<Box<Rules>>,
    additional: Option<Box<Rules>>,
}

#[derive(Debug)]
struct Rule {
    program: cel::Program,
    message: String,
    field_path: Vec<Segment>,
}

impl Rules {
    /// Compiles every rule of `schema` (an OpenAPI v3 structural schema). A rule that does not
    /// compile is a bug of the CRD, whose own tests evaluate every rule.
    pub(crate) fn compile(schema: &Value) -> Rules {
        let mut rules = Rules::default();
        for rule in schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
            let program = cel::Program::compile(text)
                .unwrap_or_else(|e| panic!("the CRD's CEL rule {text:?} does not compile: {e}"));
            let message = match rule.get("message").and_then(Value::as_str) {
                Some(message) => message.to_string(),
                None => format!("failed rule: {text}"),
            };
            let field_path = rule
                .get("fieldPath")
                .and_then(Value::as_str)
                .map(field_path)
                .unwrap_or_default();
            rules.own.push(Rule {
                program,
                message,
                field_path,
            });
        }
        for (key, child) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let child = Rules::compile(child);
            if !child.is_empty() {
                rules.properties.insert(key.clone(), child);
            }
        }
        let below = |key: &str| {
            schema
                .get(key)
                .filter(|s| s.is_object())
                .map(Rules::compile)
                .filter(|r| !r.is_empty())
                .map(Box::new)
        };
        rules.items = below("items");
        rules.additional = below("additionalProperties");
        rules
    }

    fn is_empty(&self) -> bool {
        self.own.is_empty()
            && self.properties.is_empty()
            && self.items.is_none()
            && self.additional.is_none()
    }

    /// Every failed rule of `value` (the document at `path`).
    pub(crate) fn check(&self, value: &Value, path: &mut Vec<Segment>, issues: &mut Vec<Issue>) {
        if !self.own.is_empty() {
            let mut context = cel::Context::default();
            context.add_variable_from_value("self", to_cel(value));
            for rule in &self.own {
                if let Ok(cel::Value::Bool(false)) = rule.program.execute(&context) {
                    let mut at = path.clone();
                    at.extend(rule.field_path.iter().cloned());
                    issues.push(Issue::at(at, rule.message.clone()));
                }
            }
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let rules = self
                        .properties
                        .get(key)
                        .or(self.additional.as_deref().filter(|_| {
                            // Declared properties are never additional ones.
                            !self.properties.contains_key(key)
                        }));
                    if let Some(rules) = rules {
                        path.push(Segment::Key(key.clone()));
                        rules.check(child, path, issues);
                        path.pop();
                    }
                }
            }
            Value::Array(items) => {
                if let Some(rules) = &self.items {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Segment::Index(i));
                        rules.check(item, path, issues);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }
}

/// `.escalateTo` or `.spec.rules[2].name` → path segments.
fn field_path(text: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in text.split('.').filter(|s| !s.is_empty()) {
        let (key, mut rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                segments.push(Segment::Index(i));
            }
            rest = after.trim_start_matches('[');
        }
    }
    segments
}

/// A JSON value as CEL sees it: integers as `int` (or `uint` past `i64`), other numbers as
/// `double`, objects as maps with string keys.
fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let map: HashMap<cel::objects::Key, cel::Value> = map
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(schema: Value, document: Value) -> Vec<String> {
        let mut out = Vec::new();
        Rules::compile(&schema).check(&document, &mut Vec::new(), &mut out);
        out.iter().map(Issue::to_string).collect()
    }

    #[test]
    fn rules_are_checked_at_their_node_and_reported_at_the_field_path() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"rules": {"type": "array", "items": {
                "type": "object",
                "x-kubernetes-validations": [{
                    "rule": "self.action != 'escalate' || has(self.escalateTo)",
                    "message": "needs escalateTo", "fieldPath": ".escalateTo"}],
            }}},
        });
        let document = serde_json::json!({"rules": [
            {"action": "escalate", "escalateTo": "High"},
            {"action": "escalate"},
            {"action": "warn"},
        ]});
        assert_eq!(
            issues(schema, document),
            ["rules[1].escalateTo: needs escalateTo"]
        );
    }

    #[test]
    fn rules_that_cannot_evaluate_report_nothing() {
        let schema = serde_json::json!({
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "size(self.names) > 2", "message": "few"},
                {"rule": "self.count > 1", "message": "small"}],
        });
        assert!(issues(schema.clone(), serde_json::json!({"count": 5})).is_empty());
        assert_eq!(
            issues(schema, serde_json::json!({"names": [1], "count": 0})),
            ["(document): few", "(document): small"]
        );
    }

    #[test]
    fn field_paths_parse_keys_and_indices() {
        assert_eq!(
            field_path(".spec.rules[2].name"),
            [
                Segment::Key("spec".into()),
                Segment::Key("rules".into()),
                Segment::Index(2),
                Segment::Key("name".into())
            ]
        );
        assert!(field_path("").is_empty());
    }
}
