//! Excititor, the VEX module: OpenVEX, CSAF 2.0 VEX and CycloneDX VEX documents read into one
//! normalised [`Statement`] model; every statement kept, conflicting ones included; a
//! deterministic consensus per (vulnerability, product) under provider trust weights and
//! justification gates; and the snapshot hash of the statement set (`excititorSnapshotHash`).
//!
//! Parsing is pure: bytes in, a [`Document`] (accepted statements plus the rejected parts with
//! their reasons) or an [`Error`] for a document that cannot be read at all. Storage lives in
//! `stella-store`, the CLI in `stella-cli`.

pub mod consensus;
pub mod csaf;
pub mod cyclonedx;
pub mod model;
pub mod openvex;
pub mod purl;
pub mod snapshot;

pub use consensus::{Claim, Consensus, TrustCategory, TrustConfig, consensus};
pub use model::{
    Document, Format, Justification, Product, Provider, Rejection, Source, Statement, Status,
    Vulnerability,
};
pub use purl::applies;
pub use snapshot::snapshot_hash;

use serde_json::Value;
use sha2::Digest;

/// Largest document read.
pub const MAX_DOCUMENT: usize = 64 << 20;
/// Longest identifier (vulnerability id, alias, provider name) accepted.
pub const MAX_ID: usize = 1024;
/// Longest free text (impact or action statement) accepted.
pub const MAX_TEXT: usize = 64 << 10;

/// Why a whole document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("document of {size} bytes is larger than the {limit} bytes accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a VEX document: {0}")]
    UnknownFormat(String),
    #[error("{format}: missing required field {field}")]
    MissingField { format: Format, field: String },
    #[error("{format}: invalid {field}: {reason}")]
    InvalidField {
        format: Format,
        field: String,
        reason: String,
    },
    #[error("csaf: document.category {0:?} is not csaf_vex: only the VEX profile is read")]
    NotVex(String),
    #[error(
        "cyclonedx: the BOM names no provider (metadata.manufacturer, metadata.supplier or metadata.authors) and none was configured"
    )]
    NoProvider,
    #[error("{0}: the document has no statements")]
    Empty(Format),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Settings of a parse.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The provider of CycloneDX documents whose metadata names none.
    pub provider: Option<String>,
}

/// Reads a VEX document of any supported format, detected from its content: an `@context`
/// under `https://openvex.dev/ns` is OpenVEX, a `document.csaf_version` is CSAF, a `bomFormat`
/// of `CycloneDX` is CycloneDX.
pub fn parse(bytes: &[u8]) -> Result<Document> {
    parse_with(bytes, &Options::default())
}

/// [`parse`] with options.
pub fn parse_with(bytes: &[u8], options: &Options) -> Result<Document> {
    let (value, digest) = read_json(bytes)?;
    match detect(&value) {
        Some(Format::OpenVex) => openvex::from_value(&value, digest),
        Some(Format::Csaf) => csaf::from_value(&value, digest),
        Some(Format::CycloneDx) => cyclonedx::from_value(&value, digest, options),
        None => Err(Error::UnknownFormat(
            "neither OpenVEX (@context https://openvex.dev/ns…), CSAF (document.csaf_version) nor CycloneDX (bomFormat)"
                .into(),
        )),
    }
}

/// The format a JSON document is in, from its content.
pub fn detect(value: &Value) -> Option<Format> {
    let context = value.get("@context").and_then(Value::as_str).unwrap_or("");
    if context.starts_with("https://openvex.dev/ns") {
        return Some(Format::OpenVex);
    }
    if value.pointer("/document/csaf_version").is_some() {
        return Some(Format::Csaf);
    }
    if value.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        return Some(Format::CycloneDx);
    }
    None
}

/// The JSON value of a document and the `sha256:` digest of its bytes. Nesting deeper than
/// serde_json's limit (128) is refused by it, without recursion overflow.
pub(crate) fn read_json(bytes: &[u8]) -> Result<(Value, String)> {
    if bytes.len() > MAX_DOCUMENT {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: MAX_DOCUMENT,
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(Error::NotJson("the top level is not an object".into()));
    }
    Ok((value, sha256(bytes)))
}

/// `sha256:<hex>` of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The first 80 characters of `s`, for messages.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A string field, `None` when absent or not a string.
pub(crate) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A non-empty identifier at most [`MAX_ID`] bytes long, trimmed.
pub(crate) fn identifier(s: &str, what: &str) -> std::result::Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(format!("empty {what}"));
    }
    if s.len() > MAX_ID {
        return Err(format!("{what} longer than {MAX_ID} bytes"));
    }
    Ok(s.to_string())
}

/// Free text at most [`MAX_TEXT`] bytes long; empty text is `None`.
pub(crate) fn free_text(
    s: Option<&str>,
    what: &str,
) -> std::result::Result<Option<String>, String> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.len() > MAX_TEXT => Err(format!("{what} longer than {MAX_TEXT} bytes")),
        Some(s) => Ok(Some(s.to_string())),
    }
}

/// Sorts and deduplicates the accepted statements of one document (a CSAF product listed under
/// several platforms yields the same claim several times) and numbers them.
pub(crate) fn finish(mut statements: Vec<Statement>) -> Vec<Statement> {
    statements.sort();
    let mut seen = std::collections::BTreeSet::new();
    statements.retain(|s| seen.insert(s.content_key()));
    for (i, s) in statements.iter_mut().enumerate() {
        s.source.index = i as u32;
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_input_is_refused_with_a_reason() {
        assert!(matches!(parse(b""), Err(Error::NotJson(_))));
        assert!(matches!(parse(b"\x00\xff garbage"), Err(Error::NotJson(_))));
        assert!(matches!(parse(b"[1, 2]"), Err(Error::NotJson(_))));
        let truncated = br#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vuln"#;
        assert!(matches!(parse(truncated), Err(Error::NotJson(_))));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(deep.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("recursion limit"), "{err}");
        let deep_in_doc = format!(
            r#"{{"@context": "https://openvex.dev/ns/v0.2.0", "x": {}{}}}"#,
            "{\"a\":".repeat(5000),
            "}".repeat(5000)
        );
        assert!(matches!(
            parse(deep_in_doc.as_bytes()),
            Err(Error::NotJson(_))
        ));
        assert!(matches!(
            parse(&vec![b' '; MAX_DOCUMENT + 1]),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(parse(b"{\"a\": 1}"), Err(Error::UnknownFormat(_))));
    }

    #[test]
    fn clip_cuts_on_character_boundaries() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(clip(&long).chars().count(), 81);
    }
}
