//! Loading: the bytes of a policy file into a validated, normalised [`PolicySpec`] and its
//! digest. YAML is parsed by serde-saphyr with budgets (size, depth, nodes, aliases), so
//! hostile input is refused with an error, never a hang or a panic; JSON is YAML's subset and
//! takes the same path unless it starts with `{`, when serde_json parses it.

use crate::{Error, Issue, Issues, Segment, canonical, validate};
use serde_json::Value;
use std::path::Path;
use stella_model::policy::PolicySpec;

/// Largest policy document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;
/// Deepest nesting of mappings and lists (the policy's own shape needs 6).
const MAX_DEPTH: usize = 32;
/// Most YAML nodes (scalars, mappings, lists) in a document, after alias expansion.
const MAX_NODES: usize = 200_000;
/// Most alias references (`*name`) in a document.
const MAX_ALIASES: usize = 1_000;

/// What the document was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// A `Policy` manifest (`apiVersion: stella-ops.org/v1alpha1`, `kind: Policy`) with its
    /// `metadata.name`, if it has one. Issue paths start at the manifest (`spec.rules[0]`).
    Manifest { name: Option<String> },
    /// A bare spec. Issue paths start at the spec (`rules[0]`).
    Spec,
}

/// A valid policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The spec, normalised ([`canonical::normalize`]): the default scoring configuration
    /// filled in, matcher lists sorted and deduplicated.
    pub spec: PolicySpec,
    /// `sha256:` of the canonical JSON of `spec` ([`canonical::digest`]).
    pub digest: String,
    pub kind: DocumentKind,
}

/// Reads and loads the policy file at `path`.
pub fn load_file(path: &Path) -> Result<Loaded, Error> {
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read)?;
    if !metadata.is_file() {
        return Err(read(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if metadata.len() > MAX_DOCUMENT_BYTES as u64 {
        return Err(Error::Invalid(Issues(vec![too_large(metadata.len())])));
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Invalid(Issues(vec![Issue::at(
            vec![],
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )]))
    })?;
    load_str(&text).map_err(Error::Invalid)
}

/// Loads a policy from YAML or JSON text: a `Policy` manifest or a bare spec. Every problem
/// is reported at once, sorted by location.
pub fn load_str(text: &str) -> Result<Loaded, Issues> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Issues(vec![too_large(text.len() as u64)]));
    }
    let document = parse(text).map_err(|issue| Issues(vec![issue]))?;
    let (kind, prefix) = match &document {
        Value::Object(map) if map.contains_key("apiVersion") || map.contains_key("kind") => (
            DocumentKind::Manifest {
                name: document
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
            vec![Segment::Key("spec".into())],
        ),
        Value::Object(_) => (DocumentKind::Spec, vec![]),
        Value::Null => {
            return Err(Issues(vec![Issue::at(
                vec![],
                "empty document (expected a Policy manifest or a policy spec)",
            )]));
        }
        other => {
            return Err(Issues(vec![Issue::at(
                vec![],
                format!(
                    "expected a mapping (a Policy manifest or a policy spec), got {}",
                    validate::describe(other)
                ),
            )]));
        }
    };
    let issues = validate::validate(&document, matches!(kind, DocumentKind::Manifest { .. }));
    if !issues.0.is_empty() {
        return Err(issues);
    }
    let spec_value = match kind {
        DocumentKind::Manifest { .. } => document.get("spec").cloned().unwrap_or(Value::Null),
        DocumentKind::Spec => document,
    };
    let spec: PolicySpec = serde_json::from_value(spec_value)
        .map_err(|e| Issues(vec![Issue::at(prefix, format!("not a policy spec: {e}"))]))?;
    let spec = canonical::normalize(spec);
    let digest = canonical::digest(&spec);
    Ok(Loaded { spec, digest, kind })
}

fn too_large(len: u64) -> Issue {
    Issue::at(
        vec![],
        format!("policy document is {len} bytes, more than the {MAX_DOCUMENT_BYTES} allowed"),
    )
}

/// Parses YAML (or JSON) into a JSON value under budgets.
pub(crate) fn parse(text: &str) -> Result<Value, Issue> {
    if text.trim_start().starts_with('{') {
        let value: Value = serde_json::from_str(text).map_err(|e| Issue {
            position: Some((e.line() as u64, e.column() as u64)),
            path: vec![],
            message: format!("JSON syntax error: {}", json_message(&e)),
        })?;
        check_depth(&value, 0)?;
        return Ok(value);
    }
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_aliases = MAX_ALIASES;
    budget.max_anchors = MAX_ALIASES;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = MAX_DOCUMENT_BYTES;
    budget.max_merge_keys = 1_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        let position = e.location().map(|l| (l.line(), l.column()));
        Issue {
            position,
            path: vec![],
            message: yaml_message(&e),
        }
    })
}

/// serde_json appends " at line L column C"; the position is shown separately.
fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The one-line message of a serde-saphyr error, budget breaches in words.
fn yaml_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 3 column 4: message" → "message"
    let message = match first.find(": ") {
        Some(at) if first.starts_with("line ") => &first[at + 2..],
        _ => first,
    };
    let mut message = message.trim();
    // The position is shown separately.
    if let Some(at) = message.rfind(" at line ") {
        message = &message[..at];
    }
    if let Some(breach) = message.strip_prefix("budget breached: ") {
        let kind = breach.split([' ', '{']).next().unwrap_or_default();
        return match kind {
            "Depth" => format!("nested deeper than {MAX_DEPTH} levels"),
            "Nodes" => format!(
                "more than {MAX_NODES} YAML nodes (after expanding aliases); a policy has at most 512 rules"
            ),
            "Aliases" | "AliasAnchorRatio" => {
                format!("more than {MAX_ALIASES} alias references (an alias bomb?)")
            }
            "Anchors" => format!("more than {MAX_ALIASES} anchors"),
            "Documents" => "more than one YAML document".into(),
            "ScalarBytes" => format!("more than {MAX_DOCUMENT_BYTES} bytes of text"),
            _ => format!("document too large or too complex ({breach})"),
        };
    }
    if message.starts_with("multiple YAML documents") {
        return "more than one YAML document (a policy file holds one)".into();
    }
    format!("YAML syntax error: {message}")
}

fn check_depth(value: &Value, depth: usize) -> Result<(), Issue> {
    if depth > MAX_DEPTH {
        return Err(Issue::at(
            vec![],
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    match value {
        Value::Array(items) => items.iter().try_for_each(|v| check_depth(v, depth + 1)),
        Value::Object(map) => map.values().try_for_each(|v| check_depth(v, depth + 1)),
        _ => Ok(()),
    }
}
