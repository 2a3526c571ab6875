//! Python, installed state only: `*.dist-info/METADATA` (wheels), `*.egg-info/PKG-INFO` and bare
//! `*.egg-info` files (eggs). `RECORD` / `installed-files.txt` name the files a distribution
//! owns. Requirement files and lockfiles are not components.

use crate::model::{Ecosystem, Evidence, Package};
use stella_layerfs::Filesystem;

/// Why core metadata could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A line before the first blank one that is not `Key: value` (shown truncated).
    #[error("not a metadata header: {0:?}")]
    NotAHeader(String),
    #[error("metadata without Name")]
    MissingName,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub fn wants(path: &str) -> bool {
    let Some((dir, file)) = path.rsplit_once('/').or(Some(("", path))) else {
        return false;
    };
    let dir_lower = dir.to_ascii_lowercase();
    (dir_lower.ends_with("dist-info") && matches!(file, "METADATA" | "RECORD" | "direct_url.json"))
        || (dir_lower.ends_with("egg-info")
            && matches!(file, "PKG-INFO" | "installed-files.txt" | "RECORD"))
        || file.ends_with(".egg-info")
}

/// Core metadata: name, version, licences, author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub licenses: Vec<String>,
    pub author: Option<String>,
}

/// Parses core metadata (RFC 822 style headers up to the first blank line). Licences follow
/// the metadata's own precedence: `License-Expression`, then `License :: …` classifiers, then
/// `License`, then `License-File` (as `file://…`).
pub fn parse_metadata(bytes: &[u8]) -> Result<Metadata> {
    let text = String::from_utf8_lossy(bytes);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(Error::NotAHeader(truncate(line)));
        };
        headers.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let get = |key: &str| {
        headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let all = |key: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let name = get("name").ok_or(Error::MissingName)?;
    // Syft keeps versionless distributions (an egg-info naming only the project): so do we,
    // as components that no version-based matching will touch.
    let version = get("version").unwrap_or_default();
    let classifiers: Vec<String> = all("classifier")
        .iter()
        .filter_map(|c| {
            let parts: Vec<&str> = c.split("::").map(str::trim).collect();
            (parts.len() > 2 && parts[0] == "License").then(|| parts[parts.len() - 1].to_string())
        })
        .collect();
    let licenses = if let Some(expression) = get("license-expression") {
        vec![expression]
    } else if !classifiers.is_empty() {
        classifiers
    } else if let Some(license) = get("license") {
        // Some projects paste the whole licence text: keep its first line.
        vec![license.lines().next().unwrap_or_default().to_string()]
    } else {
        all("license-file")
            .into_iter()
            .filter(|f| !f.is_empty())
            .map(|f| format!("file://{f}"))
            .collect()
    };
    Ok(Metadata {
        name,
        version,
        licenses,
        author: get("author").or_else(|| get("author-email")),
    })
}

/// `a/b/../c` → `/a/c`, with `..` never climbing above the root (as a runtime would see it).
fn clamp(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// PEP 503 normalised name: lowercase, runs of `-_.` → `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Files named by a `RECORD` (CSV: path,hash,size) or `installed-files.txt`, as absolute paths,
/// resolved against `site` (the directory holding the metadata directory). Entries that climb
/// above the image root are clamped by normalisation.
fn owned_files(site: &str, listing: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(listing);
    let mut files: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let path = if let Some(rest) = line.strip_prefix('"') {
                rest.split('"').next()?
            } else {
                line.split(',').next()?
            };
            let path = path.trim();
            if path.is_empty() {
                return None;
            }
            let joined = if path.starts_with('/') {
                path.to_string()
            } else {
                format!("{site}/{path}")
            };
            Some(clamp(&joined))
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

pub fn analyze(fs: &Filesystem) -> Result<Vec<Package>, crate::Error> {
    let mut packages = Vec::new();
    for (path, bytes) in fs.files_under("") {
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
        let dir_lower = dir.to_ascii_lowercase();
        let (meta_dir, source) = if dir_lower.ends_with("dist-info") && file == "METADATA" {
            (Some(dir), "python-dist-info")
        } else if dir_lower.ends_with("egg-info") && file == "PKG-INFO" {
            (Some(dir), "python-egg-info")
        } else if file.ends_with(".egg-info") {
            (None, "python-egg-info")
        } else {
            continue;
        };
        // A malformed distribution is skipped, not fatal: the rest of the image still counts.
        let Ok(metadata) = parse_metadata(bytes) else {
            continue;
        };
        let site = meta_dir
            .map(|d| d.rsplit_once('/').map_or("", |(s, _)| s))
            .unwrap_or(dir);
        let files = meta_dir
            .and_then(|d| {
                fs.read(&format!("{d}/RECORD"))
                    .or_else(|| fs.read(&format!("{d}/installed-files.txt")))
                    .map(|listing| {
                        // installed-files.txt paths are relative to the egg-info directory.
                        let base = if fs.read(&format!("{d}/RECORD")).is_some() {
                            site.to_string()
                        } else {
                            d.to_string()
                        };
                        owned_files(&base, listing)
                    })
            })
            .unwrap_or_default();
        let normalized = normalize(&metadata.name);
        // PEP 610: a distribution installed from a VCS names it (`vcs_url` qualifier).
        let vcs_url = meta_dir
            .and_then(|d| fs.read(&format!("{d}/direct_url.json")))
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|v| {
                let url = v.get("url")?.as_str()?;
                let vcs = v.pointer("/vcs_info/vcs")?.as_str()?;
                let commit = v.pointer("/vcs_info/commit_id")?.as_str()?;
                Some(format!("{vcs}+{url}@{commit}"))
            });
        let purl = crate::purl::build(
            "pypi",
            None,
            &normalized,
            Some(&metadata.version),
            &[("vcs_url", vcs_url.as_deref())],
        );
        packages.push(Package {
            licenses: metadata.licenses,
            supplier: metadata.author,
            files,
            ..Package::installed(
                Ecosystem::Pypi,
                metadata.name,
                metadata.version,
                purl,
                Evidence {
                    source: source.into(),
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
    fn names_and_hostile_metadata() {
        assert_eq!(normalize("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(normalize("zope.interface"), "zope-interface");
        assert!(parse_metadata(b"{}").is_err());
        assert_eq!(parse_metadata(b"Name: x\n").unwrap().version, "");
        assert!(
            parse_metadata(b"Version: 1\n")
                .unwrap_err()
                .to_string()
                .contains("Name")
        );
        assert!(parse_metadata(b"").is_err());
        assert!(parse_metadata(&[0xff, 0xfe, b'\n']).is_err());
        let m = parse_metadata(b"Name: a\nVersion: 1\nLicense: line one\n  line two\n\nbody: x")
            .unwrap();
        assert_eq!(m.licenses, ["line one"]);
        assert_eq!(
            owned_files(
                "usr/lib/site",
                b"a/b.py,sha256=x,1\n\"c,d.py\",,\n../../../../../etc/x,,\n"
            ),
            ["/etc/x", "/usr/lib/site/a/b.py", "/usr/lib/site/c,d.py"]
        );
        assert_eq!(
            owned_files(
                "usr/lib/python3/site",
                b"../../../bin/tool,,
"
            ),
            ["/usr/bin/tool"]
        );
        assert!(wants(
            "usr/lib/python3/site-packages/six-1.16.0.dist-info/METADATA"
        ));
        assert!(wants("site/x.egg-info"));
        assert!(!wants("site/x.dist-info/LICENSE"));
    }
}
