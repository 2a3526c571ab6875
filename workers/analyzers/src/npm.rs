//! Node, installed state only: `node_modules/<name>/package.json` and
//! `node_modules/@scope/<name>/package.json`, at any nesting depth. Lockfiles and the
//! application's own `package.json` are not components.

use crate::model::{Ecosystem, Evidence, Package};
use stella_layerfs::Filesystem;

/// Why a `package.json` is not an installed package's manifest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("package.json without name")]
    MissingName,
    #[error("invalid package name {0:?}")]
    InvalidName(String),
    #[error("package.json without version")]
    MissingVersion,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The package directory's name (`lodash`, `@babel/core`) when `path` is an installed package's
/// manifest.
fn installed_name(path: &str) -> Option<String> {
    let dir = path.strip_suffix("/package.json")?;
    let (parent, name) = dir.rsplit_once('/')?;
    if parent.ends_with("node_modules") && !name.starts_with('@') && !name.starts_with('.') {
        return Some(name.to_string());
    }
    let (grand, scope) = parent.rsplit_once('/')?;
    (grand.ends_with("node_modules") && scope.starts_with('@') && scope.len() > 1)
        .then(|| format!("{scope}/{name}"))
}

pub fn wants(path: &str) -> bool {
    path.contains("node_modules/") && installed_name(path).is_some()
}

/// npm's package name rule: optional `@scope/`, then URL-safe characters.
pub fn is_valid_name(name: &str) -> bool {
    let part = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '~')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
    };
    if name.is_empty() {
        return true;
    }
    match name.strip_prefix('@') {
        Some(scoped) => scoped
            .split_once('/')
            .is_some_and(|(scope, rest)| part(scope) && part(rest)),
        None => part(name),
    }
}

/// Name, version, licences and author of a `package.json`.
pub fn parse_manifest(bytes: &[u8]) -> Result<(String, String, Vec<String>, Option<String>)> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let name = value
        .get("name")
        .and_then(|v| v.as_str())
        .filter(|n| !n.is_empty())
        .ok_or(Error::MissingName)?;
    if !is_valid_name(name) {
        return Err(Error::InvalidName(name.to_string()));
    }
    let version = value
        .get("version")
        .and_then(|v| v.as_str())
        .filter(|n| !n.is_empty())
        .ok_or(Error::MissingVersion)?;
    let license_of = |l: &serde_json::Value| -> Option<String> {
        match l {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Object(o) => o
                .get("type")
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            _ => None,
        }
    };
    let mut licenses: Vec<String> = Vec::new();
    for key in ["license", "licenses"] {
        match value.get(key) {
            Some(serde_json::Value::Array(list)) => {
                licenses.extend(list.iter().filter_map(license_of))
            }
            Some(other) => licenses.extend(license_of(other)),
            None => {}
        }
    }
    let author = match value.get("author") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(o)) => {
            o.get("name").and_then(|n| n.as_str()).map(str::to_string)
        }
        _ => None,
    };
    Ok((name.to_string(), version.to_string(), licenses, author))
}

pub fn analyze(fs: &Filesystem) -> Result<Vec<Package>, crate::Error> {
    let mut packages = Vec::new();
    for (path, bytes) in fs.files_under("") {
        if !wants(path) {
            continue;
        }
        // A broken manifest is skipped; the rest of the tree still counts.
        let Ok((name, version, licenses, author)) = parse_manifest(bytes) else {
            continue;
        };
        let (namespace, short) = match name.split_once('/') {
            Some((scope, short)) => (Some(scope), short),
            None => (None, name.as_str()),
        };
        let purl = crate::purl::build("npm", namespace, short, Some(&version), &[]);
        packages.push(Package {
            licenses,
            supplier: author,
            ..Package::installed(
                Ecosystem::Npm,
                name,
                version,
                purl,
                Evidence {
                    source: "npm-package-json".into(),
                    path: path.to_string(),
                    method: "installed-metadata".into(),
                },
            )
        });
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_manifests_only() {
        assert_eq!(
            installed_name("app/node_modules/lodash/package.json").as_deref(),
            Some("lodash")
        );
        assert_eq!(
            installed_name("node_modules/@babel/core/package.json").as_deref(),
            Some("@babel/core")
        );
        assert_eq!(
            installed_name("a/node_modules/x/node_modules/y/package.json").as_deref(),
            Some("y")
        );
        assert!(!wants("app/package.json"));
        assert!(!wants("node_modules/x/test/package.json"));
        assert!(!wants("node_modules/.bin/package.json"));
        assert!(!wants("node_modules/@/x/package.json"));
        assert!(parse_manifest(b"{").is_err());
        assert!(
            parse_manifest(br#"{"name":"x"}"#)
                .unwrap_err()
                .to_string()
                .contains("version")
        );
        assert!(parse_manifest(br#"{"name":"../x","version":"1"}"#).is_err());
        let (_, _, licenses, author) = parse_manifest(
            br#"{"name":"x","version":"1","licenses":[{"type":"MIT"},{"type":"Apache-2.0"},7],"author":{"name":"A"}}"#,
        )
        .unwrap();
        assert_eq!(licenses, ["MIT", "Apache-2.0"]);
        assert_eq!(author.as_deref(), Some("A"));
    }
}
