//! Java archives (`.jar`, `.war`, `.ear`, Jenkins `.jpi`/`.hpi`), nested ones included:
//! every `pom.properties` first (usually under `META-INF/maven/`; fat jars carry many), `MANIFEST.MF`
//! second. Archives are condensed while the layer is read (only their metadata is kept), so a
//! fragment holds kilobytes per jar, not the jar.

use crate::model::{Ecosystem, Evidence, Package};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use stella_layerfs::Filesystem;

const EXTENSIONS: [&str; 5] = [".jar", ".war", ".ear", ".jpi", ".hpi"];
/// Marks condensed content (what the fragment stores in place of the archive).
const MAGIC: &[u8] = b"stella-java-archive/1\n";
/// Nesting depth followed.
const MAX_DEPTH: usize = 4;
/// Largest nested archive or metadata member read into memory.
const MAX_MEMBER: u64 = 128 << 20;
/// Members looked at per archive.
const MAX_MEMBERS: usize = 200_000;

pub fn wants(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    EXTENSIONS.iter().any(|e| lower.ends_with(e))
}

/// What one archive (outer or nested) says about itself.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archive {
    /// `""` for the outer archive, else `WEB-INF/lib/x.jar` or `a.jar!/b.jar`.
    pub location: String,
    /// `(groupId, artifactId, version)` of every pom.properties, sorted.
    pub poms: Vec<(String, String, String)>,
    pub manifest: BTreeMap<String, String>,
}

/// Condenses an archive's bytes into its metadata (outer and nested archives). Unreadable
/// archives condense to a record of the error.
pub fn condense(bytes: &[u8]) -> Vec<u8> {
    let mut archives = Vec::new();
    let error = walk(bytes, "", 0, &mut archives).err();
    let mut out = MAGIC.to_vec();
    out.extend(
        serde_json::to_vec(&serde_json::json!({"archives": archives, "error": error}))
            .unwrap_or_default(),
    );
    out
}

fn walk(bytes: &[u8], location: &str, depth: usize, out: &mut Vec<Archive>) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("{}: not a readable archive: {e}", display(location)))?;
    let mut archive = Archive {
        location: location.to_string(),
        ..Archive::default()
    };
    let mut nested = Vec::new();
    for i in 0..zip.len().min(MAX_MEMBERS) {
        let Ok(mut member) = zip.by_index(i) else {
            continue;
        };
        let Some(name) = member
            .enclosed_name()
            .map(|n| n.to_string_lossy().into_owned())
        else {
            continue;
        };
        // Trivy and syft take a pom.properties anywhere in the archive (not only META-INF/maven).
        let is_pom = name == "pom.properties" || name.ends_with("/pom.properties");
        let is_manifest = name.eq_ignore_ascii_case("META-INF/MANIFEST.MF");
        let is_nested = depth < MAX_DEPTH && member.is_file() && wants(&name);
        if !(is_pom || is_manifest || is_nested) || member.size() > MAX_MEMBER {
            continue;
        }
        let mut data = Vec::new();
        if member
            .by_ref()
            .take(MAX_MEMBER)
            .read_to_end(&mut data)
            .is_err()
        {
            continue;
        }
        if is_pom {
            if let Some(pom) = parse_pom_properties(&String::from_utf8_lossy(&data)) {
                archive.poms.push(pom);
            }
        } else if is_manifest {
            archive.manifest = parse_manifest(&String::from_utf8_lossy(&data));
        } else {
            nested.push((name, data));
        }
    }
    archive.poms.sort();
    archive.poms.dedup();
    out.push(archive);
    for (name, data) in nested {
        let inner = if location.is_empty() {
            name
        } else {
            format!("{location}!/{name}")
        };
        // A broken nested archive does not spoil its parent.
        let _ = walk(&data, &inner, depth + 1, out);
    }
    Ok(())
}

fn display(location: &str) -> &str {
    if location.is_empty() {
        "archive"
    } else {
        location
    }
}

/// `groupId`, `artifactId`, `version` of a pom.properties.
pub fn parse_pom_properties(text: &str) -> Option<(String, String, String)> {
    let mut props = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        if let Some((k, v)) = line.split_once(['=', ':']) {
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    let get = |k: &str| props.get(k).filter(|v| !v.is_empty()).cloned();
    Some((get("groupId")?, get("artifactId")?, get("version")?))
}

/// MANIFEST.MF main section (continuation lines start with one space).
pub fn parse_manifest(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some(value) = last.as_ref().and_then(|k| out.get_mut(k)) {
                let value: &mut String = value;
                value.push_str(rest);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.insert(k.trim().to_string(), v.trim().to_string());
            last = Some(k.trim().to_string());
        }
    }
    out
}

/// `(groupId, artifactId, version)` from a manifest: Implementation-Vendor-Id or the
/// Bundle-SymbolicName's package, Implementation-Title / Specification-Title / Bundle-Name,
/// Implementation-Version / Specification-Version / Bundle-Version.
pub fn from_manifest(m: &BTreeMap<String, String>) -> Option<(String, String, String)> {
    let get = |k: &str| m.get(k).filter(|v| !v.is_empty()).cloned();
    let group = get("Implementation-Vendor-Id").or_else(|| {
        let symbolic = get("Bundle-SymbolicName")?;
        let symbolic = symbolic.split(';').next()?.trim().to_string();
        symbolic.rsplit_once('.').map(|(g, _)| g.to_string())
    })?;
    let artifact = get("Implementation-Title")
        .or_else(|| get("Specification-Title"))
        .or_else(|| get("Bundle-Name"))?;
    let version = get("Implementation-Version")
        .or_else(|| get("Specification-Version"))
        .or_else(|| get("Bundle-Version"))?;
    Some((group, artifact, version))
}

/// Licences a Jenkins plugin manifest declares.
fn manifest_licenses(m: &BTreeMap<String, String>) -> Vec<String> {
    m.iter()
        .filter(|(k, _)| k.starts_with("Plugin-License-Name"))
        .map(|(_, v)| v.clone())
        .collect()
}

pub fn analyze(fs: &Filesystem) -> Result<Vec<Package>, crate::Error> {
    let mut packages = Vec::new();
    for (path, bytes) in fs.files_under("") {
        if !wants(path) {
            continue;
        }
        let Some(json) = bytes.strip_prefix(MAGIC) else {
            continue;
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
            continue;
        };
        let archives: Vec<Archive> =
            serde_json::from_value(value["archives"].clone()).unwrap_or_default();
        for archive in archives {
            let (found, method): (Vec<(String, String, String)>, &str) = if !archive.poms.is_empty()
            {
                (archive.poms.clone(), "pom.properties")
            } else if let Some(gav) = from_manifest(&archive.manifest) {
                (vec![gav], "MANIFEST.MF")
            } else {
                continue;
            };
            let evidence_path = if archive.location.is_empty() {
                path.to_string()
            } else {
                format!("{path}!/{}", archive.location)
            };
            for (group, artifact, version) in found {
                let purl =
                    crate::purl::build("maven", Some(&group), &artifact, Some(&version), &[]);
                packages.push(Package {
                    licenses: manifest_licenses(&archive.manifest),
                    supplier: archive.manifest.get("Implementation-Vendor").cloned(),
                    ..Package::installed(
                        Ecosystem::Maven,
                        format!("{group}:{artifact}"),
                        version,
                        purl,
                        Evidence {
                            source: "java-archive".into(),
                            path: evidence_path.clone(),
                            method: method.into(),
                        },
                    )
                });
            }
        }
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_archives_condense_to_an_error() {
        let condensed = condense(b"PK\x03\x04garbage");
        let value: serde_json::Value = serde_json::from_slice(&condensed[MAGIC.len()..]).unwrap();
        assert!(
            value["error"]
                .as_str()
                .unwrap()
                .contains("not a readable archive")
        );
        assert_eq!(parse_pom_properties("groupId=g\nartifactId=a\n"), None);
        assert_eq!(
            parse_pom_properties("#c\ngroupId = g\nartifactId=a\nversion=1\n"),
            Some(("g".into(), "a".into(), "1".into()))
        );
        let m = parse_manifest(
            "A: b\r\n c\r\nBundle-SymbolicName: org.x.core;singleton:=true\r\n\r\nName: x\r\nA: z\r\n",
        );
        assert_eq!(m["A"], "bc");
        assert_eq!(m.len(), 2);
    }
}
