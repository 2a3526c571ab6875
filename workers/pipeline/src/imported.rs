//! An SBOM made elsewhere read into an [`Inventory`]: CycloneDX 1.4–1.6 JSON, SPDX 2.3 JSON,
//! SPDX 3.0.1 JSON-LD, or an in-toto statement whose predicate is one of them. What it yields
//! is what matching reads: each package by its purl (ecosystem, name as our analyzers name it,
//! version, `arch`, the source package of `upstream=`), the distribution from `distro=` (or an
//! `operating-system` component), and for SBOMs we wrote ourselves the `stellaops:` facts
//! (layer, source package, entrypoint use, evidence). A component without a purl of a type we
//! match is counted and said, never guessed.

use stella_analyzers::{Distro, Ecosystem, Evidence, Package};
use stella_sbom::{Component, ImageInfo, Inventory, View};
use stella_vex::purl::Purl;

/// Largest SBOM read.
pub const MAX_SBOM_BYTES: usize = 256 << 20;
/// Most components read.
pub const MAX_COMPONENTS: usize = 200_000;

/// An SBOM read into an inventory.
#[derive(Clone, Debug)]
pub struct ImportedSbom {
    /// `CycloneDX 1.6`, `SPDX 2.3`, `SPDX 3.0.1`.
    pub format: String,
    pub inventory: Inventory,
    /// Components left out (no purl, a type we do not match), with why, at most 20.
    pub skipped: Vec<String>,
    pub skipped_count: usize,
}

/// One package as an SBOM lists it.
#[derive(Default)]
struct Listed {
    name: Option<String>,
    version: Option<String>,
    purl: Option<String>,
    /// `stellaops:` facts (name without the prefix, value).
    facts: Vec<(String, String)>,
    /// A file identified by content (our `bin:{sha256}` components): no purl to match by.
    file: bool,
}

/// Reads `bytes` (named `name` in messages and evidence) into an inventory of `image`.
pub fn import_sbom(bytes: &[u8], name: &str, image: ImageInfo) -> Result<ImportedSbom, String> {
    if bytes.len() > MAX_SBOM_BYTES {
        return Err(format!(
            "{name}: {} bytes, more than the {MAX_SBOM_BYTES} read",
            bytes.len()
        ));
    }
    let mut document: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("{name}: not JSON: {e}"))?;
    if document["_type"]
        .as_str()
        .is_some_and(|t| t.starts_with("https://in-toto.io/Statement/"))
    {
        document = document["predicate"].take();
    }
    let (format, listed, os) = if document["bomFormat"] == "CycloneDX" {
        cyclonedx(&document)?
    } else if document["spdxVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("SPDX-2."))
    {
        spdx2(&document)?
    } else if document["@context"]
        .as_str()
        .is_some_and(|c| c.starts_with("https://spdx.org/rdf/3."))
    {
        spdx3(&document)?
    } else {
        return Err(format!(
            "{name}: neither a CycloneDX, an SPDX 2 nor an SPDX 3 JSON document"
        ));
    };
    if listed.len() > MAX_COMPONENTS {
        return Err(format!(
            "{name}: {} components, more than the {MAX_COMPONENTS} read",
            listed.len()
        ));
    }
    let mut distro = os;
    let mut components = Vec::new();
    let mut skipped = Vec::new();
    let mut skipped_count = 0;
    for item in listed {
        match component(item, name, &mut distro) {
            Ok(Some(c)) => components.push(c),
            Ok(None) => {}
            Err(why) => {
                skipped_count += 1;
                if skipped.len() < 20 {
                    skipped.push(why);
                }
            }
        }
    }
    components.sort_by(|a: &Component, b| {
        (&a.package.purl, &a.package.evidence.path)
            .cmp(&(&b.package.purl, &b.package.evidence.path))
    });
    components.dedup_by(|a, b| a.package.purl == b.package.purl);
    let mut errors = Vec::new();
    if skipped_count > 0 {
        errors.push(format!(
            "{name}: {skipped_count} components without a purl we match were left out"
        ));
    }
    Ok(ImportedSbom {
        format,
        inventory: Inventory {
            image,
            distro,
            components,
            analyzer_version: format!("sbom-import/{}", stella_analyzers::ANALYZER_VERSION),
            errors,
            relationships: Vec::new(),
            entry_trace: None,
            view: View::Inventory,
            origin: None,
        },
        skipped,
        skipped_count,
    })
}

type Read = (String, Vec<Listed>, Option<Distro>);

fn text(value: &serde_json::Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

fn cyclonedx(document: &serde_json::Value) -> Result<Read, String> {
    let version = text(&document["specVersion"]).unwrap_or_default();
    if !matches!(version.as_str(), "1.4" | "1.5" | "1.6" | "1.7") {
        return Err(format!(
            "CycloneDX {version:?}: versions 1.4 to 1.6 are read"
        ));
    }
    let mut listed = Vec::new();
    let mut os = None;
    // Nested components (an application's dependencies inside it) count too.
    let mut stack: Vec<&serde_json::Value> = document["components"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(c) = stack.pop() {
        stack.extend(c["components"].as_array().into_iter().flatten());
        if c["type"] == "operating-system" {
            os = os.or_else(|| {
                Some(Distro {
                    id: text(&c["name"])?.to_ascii_lowercase(),
                    version_id: text(&c["version"]),
                    ..Distro::default()
                })
            });
            continue;
        }
        let facts = c["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let name = p["name"].as_str()?.strip_prefix("stellaops:")?;
                Some((name.to_string(), text(&p["value"])?))
            })
            .collect();
        listed.push(Listed {
            name: text(&c["name"]),
            version: text(&c["version"]),
            purl: text(&c["purl"]),
            facts,
            file: c["type"] == "file",
        });
    }
    Ok((format!("CycloneDX {version}"), listed, os))
}

/// `stellaops:k=v; stellaops:k=v` (the comments our SPDX writers leave).
fn comment_facts(comment: Option<&str>) -> Vec<(String, String)> {
    comment
        .unwrap_or_default()
        .split("; ")
        .filter_map(|part| {
            let (name, value) = part.strip_prefix("stellaops:")?.split_once('=')?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

fn spdx2(document: &serde_json::Value) -> Result<Read, String> {
    let version = text(&document["spdxVersion"]).unwrap_or_default();
    let mut listed = Vec::new();
    for p in document["packages"].as_array().into_iter().flatten() {
        if p["primaryPackagePurpose"] == "CONTAINER"
            || p["primaryPackagePurpose"] == "OPERATING-SYSTEM"
        {
            continue;
        }
        let purl = p["externalRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["referenceType"] == "purl")
            .and_then(|r| text(&r["referenceLocator"]));
        listed.push(Listed {
            name: text(&p["name"]),
            version: text(&p["versionInfo"]),
            file: purl.is_none() && p["primaryPackagePurpose"] == "APPLICATION",
            purl,
            facts: comment_facts(p["comment"].as_str()),
        });
    }
    Ok((version.replace('-', " "), listed, None))
}

fn spdx3(document: &serde_json::Value) -> Result<Read, String> {
    let mut listed = Vec::new();
    for e in document["@graph"].as_array().into_iter().flatten() {
        if e["type"] != "software_Package" || e["software_primaryPurpose"] == "container" {
            continue;
        }
        listed.push(Listed {
            name: text(&e["name"]),
            version: text(&e["software_packageVersion"]),
            purl: text(&e["software_packageUrl"]),
            facts: comment_facts(e["comment"].as_str()),
            file: e["software_primaryPurpose"] == "executable",
        });
    }
    Ok(("SPDX 3.0.1".into(), listed, None))
}

/// One listed package as a component: `Ok(None)` for a file identified by content (nothing to
/// match it by), `Err` with why for a package that cannot be matched.
fn component(
    item: Listed,
    sbom: &str,
    distro: &mut Option<Distro>,
) -> Result<Option<Component>, String> {
    let label = item.name.clone().unwrap_or_else(|| "(unnamed)".into());
    let Some(purl_text) = item.purl else {
        return if item.file {
            Ok(None)
        } else {
            Err(format!("{label}: no purl"))
        };
    };
    let purl = Purl::parse(&purl_text).map_err(|e| format!("{label}: {e}"))?;
    let ecosystem = match purl.ty.as_str() {
        "deb" => Ecosystem::Deb,
        // Older syft wrote Alpine's packages as `pkg:alpine/…`.
        "apk" | "alpine" => Ecosystem::Apk,
        "rpm" => Ecosystem::Rpm,
        "pypi" => Ecosystem::Pypi,
        "npm" => Ecosystem::Npm,
        "maven" => Ecosystem::Maven,
        "golang" => Ecosystem::Golang,
        "nuget" => Ecosystem::Nuget,
        "cargo" => Ecosystem::Cargo,
        other => return Err(format!("{label}: purl type {other:?} is not matched")),
    };
    let version = purl
        .version
        .clone()
        .or(item.version)
        .ok_or_else(|| format!("{label}: no version"))?;
    let namespace = purl.namespace.join("/");
    let name = match ecosystem {
        Ecosystem::Maven if !namespace.is_empty() => format!("{namespace}:{}", purl.name),
        Ecosystem::Npm | Ecosystem::Golang if !namespace.is_empty() => {
            format!("{namespace}/{}", purl.name)
        }
        // Our own SBOMs keep the name as installed (PyPI's letter case, say).
        _ => item
            .name
            .filter(|n| n.eq_ignore_ascii_case(&purl.name))
            .unwrap_or(purl.name.clone()),
    };
    if distro.is_none()
        && let Some(d) = purl.qualifiers.get("distro")
    {
        // `debian-12`, `alpine-3.19`, `rhel-9.3`: the id, then the version.
        let (id, version) = match d.split_once('-') {
            Some((id, v)) => (id.to_string(), Some(v.to_string())),
            None => (d.clone(), None),
        };
        *distro = Some(Distro {
            id,
            version_id: version,
            ..Distro::default()
        });
    }
    let fact = |key: &str| {
        item.facts
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let (upstream, upstream_version) = match purl.qualifiers.get("upstream") {
        Some(u) => match u.split_once('@') {
            Some((n, v)) => (Some(n.to_string()), Some(v.to_string())),
            None => (Some(u.clone()), None),
        },
        None => (None, None),
    };
    let evidence = Evidence {
        source: fact("evidence.source").unwrap_or_else(|| "sbom".into()),
        path: sbom.to_string(),
        method: "sbom-import".into(),
    };
    let package = Package {
        arch: purl
            .qualifiers
            .get("arch")
            .cloned()
            .or_else(|| fact("package.arch")),
        source_name: fact("package.sourceName").or(upstream),
        source_version: fact("package.sourceVersion").or(upstream_version),
        ..Package::installed(ecosystem, name, version, purl_text, evidence)
    };
    Ok(Some(Component {
        package,
        layer_digest: fact("layerDigest"),
        used_by_entrypoint: fact("usedByEntrypoint").as_deref() == Some("true"),
        properties: Vec::new(),
    }))
}

/// `stella scan sbom:FILE`: an SBOM file as the thing scanned. Its identity (the inventory's
/// digest) is the SHA-256 of the file; it is read into an inventory and stored as a scan's is
/// (SBOMs, BOM-Index, inventory, a catalog row without layers), so matching, VEX, policy and
/// attestations run on it as on an image.
pub async fn import_file(
    store: &stella_store::Store,
    path: &std::path::Path,
) -> crate::Result<ImportedSbom> {
    let invalid = |m: String| crate::Error::InvalidOptions(m);
    let size = std::fs::metadata(path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .len();
    if size > MAX_SBOM_BYTES as u64 {
        return Err(invalid(format!(
            "{}: {size} bytes, more than the {MAX_SBOM_BYTES} read",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    let name = path.display().to_string();
    let image = ImageInfo {
        digest: digest.clone(),
        config_digest: digest,
        name: name.clone(),
        repository: None,
        tags: Vec::new(),
        created: None,
        os: "linux".into(),
        architecture: String::new(),
        layers: Vec::new(),
        user: None,
    };
    let mut imported = import_sbom(&bytes, &name, image).map_err(invalid)?;
    imported.inventory.origin = Some(stella_sbom::Origin {
        kind: "sbom-file".into(),
        format: imported.format.clone(),
        envelope_digest: None,
        key_id: None,
    });
    crate::analyze::store_inventory(store, &imported.inventory, Vec::new())
        .await
        .map_err(crate::Error::storage("failed to store the results"))?;
    Ok(imported)
}
