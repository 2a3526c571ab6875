//! .NET: `*.deps.json`, the dependency manifest the SDK writes next to an application (installed
//! state: what the host will load). Every library of the runtime target that carries runtime,
//! native or resource assets (compile-time-only references are not shipped) or that the target
//! does not list; when the runtime target is missing, every library.

use crate::model::{Ecosystem, Evidence, Package};
use stella_layerfs::Filesystem;

/// Why a `.deps.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to decode .deps.json file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("libraries is not an object")]
    LibrariesNotAnObject,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub fn wants(path: &str) -> bool {
    path.ends_with(".deps.json")
}

/// `(name, version)` of the libraries a deps.json ships, sorted.
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let libraries = match value.get("libraries") {
        Some(serde_json::Value::Object(l)) => l,
        None | Some(serde_json::Value::Null) => return Ok(vec![]),
        Some(_) => return Err(Error::LibrariesNotAnObject),
    };
    let target = value
        .pointer("/runtimeTarget/name")
        .and_then(|n| n.as_str())
        .and_then(|name| value.get("targets")?.get(name))
        .and_then(|t| t.as_object());
    let mut out = Vec::new();
    for (id, _) in libraries {
        let Some((name, version)) = id.split_once('/') else {
            continue;
        };
        // Self-contained apps list their bundled runtime as `runtimepack.<pack name>`.
        let name = name.strip_prefix("runtimepack.").unwrap_or(name);
        if name.is_empty() || version.is_empty() {
            continue;
        }
        if let Some(target) = target {
            // A library the target does not list cannot be told apart: it is kept.
            let ships = target.get(id).is_none_or(|entry| {
                ["runtime", "runtimeTargets", "native", "resources"]
                    .iter()
                    .any(|k| {
                        entry
                            .get(k)
                            .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                    })
            });
            if !ships {
                continue;
            }
        }
        out.push((name.to_string(), version.to_string()));
    }
    out.sort();
    Ok(out)
}

pub fn analyze(fs: &Filesystem) -> Result<Vec<Package>, crate::Error> {
    let mut packages = Vec::new();
    for (path, bytes) in fs.files_under("") {
        if !wants(path) {
            continue;
        }
        // A broken manifest is skipped; the rest of the image still counts.
        let Ok(libraries) = parse(bytes) else {
            continue;
        };
        for (name, version) in libraries {
            let purl = crate::purl::build("nuget", None, &name, Some(&version), &[]);
            packages.push(Package::installed(
                Ecosystem::Nuget,
                name,
                version,
                purl,
                Evidence {
                    source: "dotnet-deps-json".into(),
                    path: path.to_string(),
                    method: "installed-metadata".into(),
                },
            ));
        }
    }
    Ok(packages)
}
