//! Validation: the document against the `Policy` CRD's OpenAPI schema (generated from the
//! schemars types exactly as the CRD is, so the two cannot drift), its CEL rules, and the
//! semantic checks a schema cannot express (dates that exist, waiver justifications, unique
//! rule names, globs that compile, ordered confidence bands). Every problem is an [`Issue`]
//! with its path; all are collected, none stops the others.

use crate::cel::Rules;
use crate::glob::Glob;
use crate::{Issue, Issues, Segment, render_path};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// The API version a manifest must carry.
pub(crate) const API_VERSION: &str = "stella-ops.org/v1alpha1";
/// Reachability buckets of the scoring configuration (seed: policy-scoring-schema@1).
pub(crate) const REACHABILITY_BUCKETS: [&str; 6] = [
    "entrypoint",
    "direct",
    "indirect",
    "runtime",
    "unreachable",
    "unknown",
];

/// The `Policy` CustomResourceDefinition as committed under `config/crd/bases`.
const POLICY_CRD: &str = include_str!("../../../config/crd/bases/stella-ops.org_policies.yaml");

/// The compiled schemas: the whole manifest and the spec alone.
struct Schemas {
    manifest: Value,
    spec: Value,
    manifest_validator: jsonschema::Validator,
    spec_validator: jsonschema::Validator,
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        // The committed CRD, which the CRD crate's tests keep equal to what its types generate.
        let crd: Value = serde_saphyr::from_str(POLICY_CRD).expect("the Policy CRD parses");
        let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
        assert!(schema.is_object(), "the Policy CRD has a schema");
        let mut manifest = schema;

        // The CRD leaves the object header to the API server; a file states it.
        if let Some(Value::Object(properties)) = manifest.get_mut("properties") {
            properties.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
            properties.insert("kind".into(), serde_json::json!({"type": "string"}));
            properties.insert("metadata".into(), serde_json::json!({"type": "object"}));
        }
        strict(&mut manifest);
        let spec = manifest["properties"]["spec"].clone();
        let compile = |schema: &Value| {
            jsonschema::draft4::new(schema).expect("the generated Policy schema compiles")
        };
        Schemas {
            manifest_validator: compile(&manifest),
            spec_validator: compile(&spec),
            manifest,
            spec,
        }
    })
}

/// Makes the structural schema say what the API server enforces: `nullable` admits `null`,
/// and unknown fields of an object with declared properties are errors (as with
/// `kubectl apply`'s strict field validation) rather than silently pruned.
fn strict(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if map.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(Value::String(kind)) = map.get("type").cloned() {
            map.insert("type".into(), serde_json::json!([kind, "null"]));
        }
        if let Some(Value::Array(values)) = map.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    if map.contains_key("properties")
        && !map.contains_key("additionalProperties")
        && !map.contains_key("x-kubernetes-preserve-unknown-fields")
    {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            children.values_mut().for_each(strict);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = map.get_mut(key) {
            strict(child);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            children.iter_mut().for_each(strict);
        }
    }
}

/// Every problem of `document`; `manifest` when it is a whole `Policy` object.
pub(crate) fn validate(document: &Value, manifest: bool) -> Issues {
    let schemas = schemas();
    let (schema, validator, prefix) = if manifest {
        (
            &schemas.manifest,
            &schemas.manifest_validator,
            vec![Segment::Key("spec".into())],
        )
    } else {
        (&schemas.spec, &schemas.spec_validator, vec![])
    };
    let mut issues = Vec::new();
    if manifest {
        manifest_header(document, &mut issues);
    }
    schema_issues(schema, validator, document, &mut issues);
    // CEL rules cost time per item; over-long lists are already reported, so skip them then.
    let oversized = issues.iter().any(|i| i.message.starts_with("too many "));
    if !oversized {
        cel_issues(manifest, document, &mut issues);
    }
    let spec = if manifest {
        document.get("spec")
    } else {
        Some(document)
    };
    if let Some(spec) = spec {
        Semantic {
            issues: &mut issues,
        }
        .spec(spec, &prefix);
    }
    Issues::finish(issues)
}

fn manifest_header(document: &Value, issues: &mut Vec<Issue>) {
    let key = |k: &str| vec![Segment::Key(k.into())];
    match document.get("apiVersion") {
        Some(Value::String(v)) if v == API_VERSION => {}
        Some(other) => issues.push(Issue::at(
            key("apiVersion"),
            format!("unknown value {} (expected {API_VERSION})", short(other)),
        )),
        None => issues.push(Issue::at(
            key("apiVersion"),
            format!("required field is missing (expected {API_VERSION})"),
        )),
    }
    match document.get("kind") {
        Some(Value::String(v)) if v == "Policy" => {}
        Some(other) => issues.push(Issue::at(
            key("kind"),
            format!("unknown value {} (expected Policy)", short(other)),
        )),
        None => issues.push(Issue::at(
            key("kind"),
            "required field is missing (expected Policy)",
        )),
    }
}

/// `/spec/rules/1/action` → `[spec, rules, 1, action]`.
fn pointer_path(pointer: &str) -> Vec<Segment> {
    pointer
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = s.replace("~1", "/").replace("~0", "~");
            match s.parse::<usize>() {
                Ok(i) if s.bytes().all(|b| b.is_ascii_digit()) => Segment::Index(i),
                _ => Segment::Key(s),
            }
        })
        .collect()
}

/// The subschema describing the value at `path`.
fn schema_at<'a>(schema: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    let mut at = schema;
    for segment in path {
        at = match segment {
            Segment::Index(_) => at.get("items")?,
            Segment::Key(key) => match at.get("properties").and_then(|p| p.get(key)) {
                Some(child) => child,
                None => at.get("additionalProperties")?,
            },
        };
    }
    Some(at)
}

fn schema_issues(
    schema: &Value,
    validator: &jsonschema::Validator,
    document: &Value,
    issues: &mut Vec<Issue>,
) {
    use jsonschema::error::ValidationErrorKind as Kind;
    for error in validator.iter_errors(document) {
        let mut path = pointer_path(error.instance_path().as_str());
        let instance = error.instance();
        let node = schema_at(schema, &path);
        let message = match error.kind() {
            Kind::Enum { options } => enum_message(instance, options),
            Kind::Type { .. } if node.and_then(|n| n.get("enum")).is_some() => {
                enum_message(instance, &node.expect("checked")["enum"])
            }
            Kind::Type { .. } => {
                let expected = node
                    .and_then(|n| n.get("type"))
                    .map(expected_type)
                    .unwrap_or_else(|| "another type".into());
                format!("expected {expected}, got {}", describe(instance))
            }
            Kind::Required { property } => {
                let property = property.as_str().unwrap_or_default().to_string();
                path.push(Segment::Key(property.clone()));
                match property.as_str() {
                    "version" => "required field is missing (expected \"1.0\")".into(),
                    _ => "required field is missing".into(),
                }
            }
            Kind::AdditionalProperties { unexpected } => {
                let expected = node
                    .and_then(|n| n.get("properties"))
                    .and_then(Value::as_object)
                    .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                for key in unexpected {
                    let mut at = path.clone();
                    at.push(Segment::Key(key.clone()));
                    issues.push(Issue::at(
                        at,
                        format!("unknown field (expected one of: {expected})"),
                    ));
                }
                continue;
            }
            Kind::MinLength { limit } => match instance.as_str() {
                Some("") => "must not be empty".into(),
                Some(s) => format!(
                    "too short: {} characters (at least {limit})",
                    s.chars().count()
                ),
                None => error.to_string(),
            },
            Kind::MaxLength { limit } => format!(
                "too long: {} characters (at most {limit})",
                instance.as_str().map_or(0, |s| s.chars().count())
            ),
            Kind::Minimum { limit } => {
                format!(
                    "out of range: {instance} (expected at least {})",
                    number(limit)
                )
            }
            Kind::Maximum { limit } => {
                format!(
                    "out of range: {instance} (expected at most {})",
                    number(limit)
                )
            }
            Kind::MaxItems { limit } => format!(
                "too many items: {} (at most {limit})",
                instance.as_array().map_or(0, Vec::len)
            ),
            Kind::MinItems { limit } => format!(
                "too few items: {} (at least {limit})",
                instance.as_array().map_or(0, Vec::len)
            ),
            Kind::MaxProperties { limit } => format!(
                "too many entries: {} (at most {limit})",
                instance.as_object().map_or(0, Map::len)
            ),
            Kind::Pattern { pattern } => {
                format!(
                    "invalid value {} (expected {})",
                    short(instance),
                    shape(pattern)
                )
            }
            _ => error.to_string(),
        };
        issues.push(Issue::at(path, message));
    }
}

fn cel_issues(manifest: bool, document: &Value, issues: &mut Vec<Issue>) {
    thread_local! {
        /// The CEL rules compiled once per thread (compiled programs are not `Sync`).
        static COMPILED: (Rules, Rules) = (
            Rules::compile(&schemas().manifest),
            Rules::compile(&schemas().spec),
        );
    }
    COMPILED.with(|(whole, spec)| {
        let rules = if manifest { whole } else { spec };
        rules.check(document, &mut Vec::new(), issues);
    });
}

fn enum_message(instance: &Value, options: &Value) -> String {
    let options: Vec<&Value> = options
        .as_array()
        .map(|o| o.iter().filter(|v| !v.is_null()).collect())
        .unwrap_or_default();
    let listed = options
        .iter()
        .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
        .collect::<Vec<_>>()
        .join(", ");
    match instance {
        Value::String(s) => format!("unknown value \"{s}\" (expected one of: {listed})"),
        other => {
            let quoted = options
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "expected a string (one of: {quoted}), got {}; quote it",
                describe(other)
            )
        }
    }
}

/// The expected type of a schema node in words.
fn expected_type(kind: &Value) -> String {
    let names: Vec<&str> = match kind {
        Value::String(s) => vec![s.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    names
        .into_iter()
        .filter(|k| *k != "null")
        .map(|k| match k {
            "string" => "a string",
            "number" => "a number",
            "integer" => "an integer",
            "boolean" => "a boolean (true or false)",
            "array" => "a list",
            "object" => "a mapping",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A value in words: `number 1.0`, `string "x"`, `a list`, `a mapping`.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => format!("string {}", short(value)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// A value as shown in a message, long strings cut.
fn short(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() > 80 => {
            format!("\"{}…\"", s.chars().take(80).collect::<String>())
        }
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) | Value::Object(_) => describe(value),
        other => other.to_string(),
    }
}

fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => value.to_string(),
    }
}

/// What a schema pattern means, for the patterns the CRD uses.
fn shape(pattern: &str) -> String {
    if pattern.starts_with("^[0-9]{4}-[0-9]{2}-[0-9]{2}") {
        "a date YYYY-MM-DD or an RFC 3339 time".into()
    } else if pattern == stella_model::SHA256_DIGEST_PATTERN {
        "a digest sha256:<64 lowercase hex digits>".into()
    } else if pattern == "^pkg:[a-z]" {
        "a package URL prefix such as pkg:deb/debian/openssl".into()
    } else if pattern == stella_model::DNS_LABEL_PATTERN {
        "a DNS label: lowercase letters, digits and '-'".into()
    } else {
        format!("to match {pattern}")
    }
}

/// The semantic checks, tolerant of values the schema rejects (those are skipped here).
struct Semantic<'a> {
    issues: &'a mut Vec<Issue>,
}

fn child(path: &[Segment], key: &str) -> Vec<Segment> {
    let mut out = path.to_vec();
    out.push(Segment::Key(key.into()));
    out
}

fn index(path: &[Segment], i: usize) -> Vec<Segment> {
    let mut out = path.to_vec();
    out.push(Segment::Index(i));
    out
}

impl Semantic<'_> {
    fn push(&mut self, path: Vec<Segment>, message: impl Into<String>) {
        self.issues.push(Issue::at(path, message));
    }

    fn spec(&mut self, spec: &Value, path: &[Segment]) {
        if let Some(Value::Array(rules)) = spec.get("rules") {
            let mut names: BTreeMap<&str, usize> = BTreeMap::new();
            for (i, rule) in rules.iter().enumerate() {
                let at = index(&child(path, "rules"), i);
                if let Some(Value::String(name)) = rule.get("name") {
                    if name.trim().is_empty() && !name.is_empty() {
                        self.push(child(&at, "name"), "must not be blank");
                    }
                    match names.get(name.as_str()) {
                        Some(first) => {
                            let first = render_path(&index(&child(path, "rules"), *first));
                            self.push(
                                child(&at, "name"),
                                format!("duplicate rule name \"{name}\" (first used by {first})"),
                            );
                        }
                        None => {
                            names.insert(name, i);
                        }
                    }
                }
                self.rule(rule, &at);
            }
        }
        if let Some(scoring @ Value::Object(_)) = spec.get("scoring") {
            self.scoring(scoring, &child(path, "scoring"));
        }
        if let Some(Value::Array(exemptions)) =
            spec.get("admission").and_then(|a| a.get("exemptions"))
        {
            let at = child(&child(path, "admission"), "exemptions");
            for (i, exemption) in exemptions.iter().enumerate() {
                let at = index(&at, i);
                self.expires(exemption, &at);
                for key in ["namespaces", "images"] {
                    self.globs(exemption, &at, key, false);
                }
            }
        }
    }

    fn rule(&mut self, rule: &Value, at: &[Segment]) {
        let action = rule.get("action").and_then(Value::as_str);
        self.expires(rule, at);
        if action == Some("ignore") {
            let justified = rule
                .get("justification")
                .and_then(Value::as_str)
                .is_some_and(|j| !j.trim().is_empty());
            if !justified {
                self.push(
                    child(at, "justification"),
                    "required for action \"ignore\" (a waiver must say why)",
                );
            }
        }
        if let (Some(action), Some(_)) = (action, rule.get("escalateTo"))
            && action != "escalate"
        {
            self.push(
                child(at, "escalateTo"),
                format!("only used by action \"escalate\" (this rule's action is \"{action}\")"),
            );
        }
        if action == Some("requireVEX") && rule.get("overrideVex") == Some(&Value::Bool(true)) {
            self.push(
                child(at, "overrideVex"),
                "has no effect with action \"requireVEX\", which always weighs the VEX consensus",
            );
        }
        if let Some(require) = rule.get("requireVex") {
            let at = child(at, "requireVex");
            if let Some(Value::Array(vendors)) = require.get("vendors") {
                let mut seen = BTreeSet::new();
                for (i, vendor) in vendors.iter().enumerate() {
                    if let Some(vendor) = vendor.as_str() {
                        if vendor.trim().is_empty() {
                            self.push(index(&child(&at, "vendors"), i), "must not be blank");
                        } else if !seen.insert(vendor.to_lowercase()) {
                            self.push(
                                index(&child(&at, "vendors"), i),
                                format!("duplicate vendor \"{vendor}\""),
                            );
                        }
                    }
                }
            }
            if let Some(Value::Array(justifications)) = require.get("justifications") {
                let mut seen = BTreeSet::new();
                for (i, justification) in justifications.iter().enumerate() {
                    if let Some(j) = justification.as_str()
                        && !seen.insert(j)
                    {
                        self.push(
                            index(&child(&at, "justifications"), i),
                            format!("duplicate justification \"{j}\""),
                        );
                    }
                }
            }
        }
        for key in ["images", "repositories", "namespaces", "paths"] {
            self.globs(rule, at, key, false);
        }
        for key in ["vendors", "licenses"] {
            self.globs(rule, at, key, true);
        }
        if let Some(Value::Array(cves)) = rule.get("cves") {
            let shape = vulnerability_id();
            for (i, id) in cves.iter().enumerate() {
                if let Some(id) = id.as_str()
                    && id.len() >= 3
                    && !shape.is_match(id)
                {
                    self.push(
                            index(&child(at, "cves"), i),
                            format!(
                                "invalid vulnerability id \"{id}\" (expected an id such as CVE-2024-3094 or GHSA-xxxx-xxxx-xxxx)"
                            ),
                        );
                }
            }
        }
    }

    /// `expires` must name a real date or time (the schema only checks its shape).
    fn expires(&mut self, object: &Value, at: &[Segment]) {
        let Some(Value::String(expires)) = object.get("expires") else {
            return;
        };
        static SHAPE: OnceLock<regex::Regex> = OnceLock::new();
        let shaped = SHAPE.get_or_init(|| {
            regex::Regex::new(
                r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$",
            )
            .expect("the expires pattern compiles")
        });
        if shaped.is_match(expires) && crate::evaluate::parse_expires(expires).is_none() {
            self.push(
                child(at, "expires"),
                format!(
                    "invalid date \"{expires}\" (expected a date YYYY-MM-DD or an RFC 3339 time that exists)"
                ),
            );
        }
    }

    fn globs(&mut self, object: &Value, at: &[Segment], key: &str, case_insensitive: bool) {
        let Some(Value::Array(patterns)) = object.get(key) else {
            return;
        };
        for (i, pattern) in patterns.iter().enumerate() {
            if let Some(pattern) = pattern.as_str()
                && let Err(e) = Glob::new(pattern, case_insensitive)
            {
                self.push(
                    index(&child(at, key), i),
                    format!("invalid glob \"{pattern}\": {e}"),
                );
            }
        }
    }

    fn scoring(&mut self, scoring: &Value, at: &[Segment]) {
        if let Some(Value::Object(buckets)) = scoring.get("reachabilityBuckets") {
            let mut seen = BTreeMap::new();
            for key in buckets.keys() {
                let lower = key.to_ascii_lowercase();
                if !REACHABILITY_BUCKETS.contains(&lower.as_str()) {
                    self.push(
                        child(&child(at, "reachabilityBuckets"), key),
                        format!(
                            "unknown reachability bucket \"{key}\" (expected one of: {})",
                            REACHABILITY_BUCKETS.join(", ")
                        ),
                    );
                } else if let Some(first) = seen.insert(lower, key) {
                    self.push(
                        child(&child(at, "reachabilityBuckets"), key),
                        format!("duplicate bucket (keys are case-insensitive; also \"{first}\")"),
                    );
                }
            }
        }
        if let Some(Value::Object(trust)) = scoring.get("trustOverrides") {
            let mut seen = BTreeMap::new();
            for key in trust.keys() {
                let lower = key.to_ascii_lowercase();
                if key.trim().is_empty() {
                    self.push(child(&child(at, "trustOverrides"), key), "empty trust key");
                } else if let Some(first) = seen.insert(lower, key) {
                    self.push(
                        child(&child(at, "trustOverrides"), key),
                        format!(
                            "duplicate trust key (keys are case-insensitive; also \"{first}\")"
                        ),
                    );
                }
            }
        }
        let Some(unknown @ Value::Object(_)) = scoring.get("unknownConfidence") else {
            return;
        };
        let at = child(at, "unknownConfidence");
        if let (Some(initial), Some(floor)) = (
            unknown.get("initial").and_then(Value::as_f64),
            unknown.get("floor").and_then(Value::as_f64),
        ) && floor > initial
        {
            self.push(
                child(&at, "floor"),
                format!("floor {floor} is above initial {initial}"),
            );
        }
        if let Some(Value::Array(bands)) = unknown.get("bands") {
            let mut previous: Option<f64> = None;
            let mut names = BTreeSet::new();
            for (i, band) in bands.iter().enumerate() {
                let band_at = index(&child(&at, "bands"), i);
                if let Some(name) = band.get("name").and_then(Value::as_str)
                    && !names.insert(name)
                {
                    self.push(
                        child(&band_at, "name"),
                        format!("duplicate band \"{name}\""),
                    );
                }
                if let Some(min) = band.get("min").and_then(Value::as_f64) {
                    if let Some(previous) = previous
                        && min >= previous
                    {
                        self.push(
                            child(&band_at, "min"),
                            format!(
                                "bands must be ordered by min, descending: {min} follows {previous}"
                            ),
                        );
                    }
                    previous = Some(min);
                }
            }
        }
    }
}

/// What a vulnerability id looks like: a prefix, a dash, and an id (CVE-2024-3094,
/// GHSA-xxxx-xxxx-xxxx, DSA-5678-1, PYSEC-2021-1, RHSA-2024:1234).
fn vulnerability_id() -> &'static regex::Regex {
    static SHAPE: OnceLock<regex::Regex> = OnceLock::new();
    SHAPE.get_or_init(|| {
        regex::Regex::new(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9][A-Za-z0-9._:-]*$")
            .expect("the id pattern compiles")
    })
}
