//! Label selectors as Kubernetes writes them (`matchLabels`, `matchExpressions`), with their
//! matching semantics and kubectl's equality syntax (`env=prod,tier!=cache,!legacy`). The same
//! JSON shape and schema as the API machinery's `LabelSelector`, without depending on it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A label query: every `matchLabels` pair and every `matchExpressions` requirement must hold.
/// An empty selector matches everything.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Requirements, ANDed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
    /// `key: value` pairs, each equivalent to an `In` requirement with one value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// One requirement: a key, an operator (`In`, `NotIn`, `Exists`, `DoesNotExist`) and values.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

impl LabelSelector {
    /// Label selector semantics (`matchLabels` and `matchExpressions`: `In`, `NotIn`,
    /// `Exists`, `DoesNotExist`); an unknown operator matches nothing, as the API server
    /// refuses it.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let by_label = self
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v));
        let by_expression = self.match_expressions.iter().flatten().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
        by_label && by_expression
    }

    /// Parses kubectl's equality syntax: comma-separated `key=value`, `key==value`,
    /// `key!=value`, `key` (exists) and `!key` (does not exist).
    pub fn parse(text: &str) -> Result<LabelSelector, InvalidSelector> {
        let mut expressions = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (key, operator, values) = if let Some((k, v)) = term.split_once("!=") {
                (k, "NotIn", Some(vec![v.trim().to_string()]))
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, "In", Some(vec![v.trim().to_string()]))
            } else if let Some(k) = term.strip_prefix('!') {
                (k, "DoesNotExist", None)
            } else {
                (term, "Exists", None)
            };
            let key = key.trim();
            let valid = |s: &str| {
                !s.is_empty()
                    && s.len() <= 317
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            };
            if !valid(key) || values.iter().flatten().any(|v| !v.is_empty() && !valid(v)) {
                return Err(InvalidSelector(term.to_string()));
            }
            expressions.push(LabelSelectorRequirement {
                key: key.to_string(),
                operator: operator.to_string(),
                values,
            });
        }
        Ok(LabelSelector {
            match_expressions: Some(expressions),
            match_labels: None,
        })
    }
}

/// A selector term that is not `key`, `!key`, `key=value`, `key==value` or `key!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSelector(pub String);

impl std::fmt::Display for InvalidSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid selector term {:?}", self.0)
    }
}

impl std::error::Error for InvalidSelector {}

/// The API machinery's schema, word for word, so a CRD generated with this type is the one
/// generated with `k8s-openapi`'s.
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for LabelSelector {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A label selector is a label query over a set of resources. The result of matchLabels and matchExpressions are ANDed. An empty label selector matches all objects. A null label selector matches no objects.",
            "type": "object",
            "properties": {
                "matchExpressions": {
                    "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                    "type": "array",
                    "items": (generator.subschema_for::<LabelSelectorRequirement>()),
                },
                "matchLabels": {
                    "description": "matchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels map is equivalent to an element of matchExpressions, whose key field is \"key\", the operator is \"In\", and the values array contains only \"value\". The requirements are ANDed.",
                    "type": "object",
                    "additionalProperties": {
                        "type": "string",
                    },
                },
            },
        })
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for LabelSelectorRequirement {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A label selector requirement is a selector that contains values, a key, and an operator that relates the key and values.",
            "type": "object",
            "properties": {
                "key": {
                    "description": "key is the label key that the selector applies to.",
                    "type": "string",
                },
                "operator": {
                    "description": "operator represents a key's relationship to a set of values. Valid operators are In, NotIn, Exists and DoesNotExist.",
                    "type": "string",
                },
                "values": {
                    "description": "values is an array of string values. If the operator is In or NotIn, the values array must be non-empty. If the operator is Exists or DoesNotExist, the values array must be empty. This array is replaced during a strategic merge patch.",
                    "type": "array",
                    "items": {
                        "type": "string",
                    },
                },
            },
            "required": [
                "key",
                "operator",
            ],
        })
    }
}
