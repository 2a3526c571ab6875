//! dpkg: `var/lib/dpkg/status`, distroless `var/lib/dpkg/status.d/*`, `info/*.list` /
//! `*.md5sums` / `*.conffiles` for file ownership, and DEP-5 copyright files for licences.

use crate::model::{Distro, Ecosystem, Evidence, Package};
use crate::purl;
use std::collections::{BTreeMap, BTreeSet};
use stella_layerfs::Filesystem;

/// Why control-file stanzas could not be parsed. `line` counts from 1; `text` is the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("line {line}: continuation line with no field: {text:?}")]
    ContinuationWithoutField { line: usize, text: String },
    #[error("line {line}: not a field: {text:?}")]
    NotAField { line: usize, text: String },
    #[error("line {line}: duplicate field {field}")]
    DuplicateField { line: usize, field: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub const STATUS: &str = "var/lib/dpkg/status";
pub const STATUS_D: &str = "var/lib/dpkg/status.d";
const INFO: &str = "var/lib/dpkg/info";
const DOC: &str = "usr/share/doc";

pub fn wants(path: &str) -> bool {
    path == STATUS
        || path.starts_with("var/lib/dpkg/status.d/")
        || (path.starts_with("var/lib/dpkg/info/")
            && (path.ends_with(".list")
                || path.ends_with(".md5sums")
                || path.ends_with(".conffiles")))
        || (path.starts_with("usr/share/doc/")
            && path.ends_with("/copyright")
            && path.matches('/').count() == 4)
}

/// One control-file stanza: field name → value (continuation lines joined with `\n`).
pub type Stanza = BTreeMap<String, String>;

/// Most bytes one field's value may hold (all its continuation lines): the longest real
/// fields (`Conffiles` of a large package, a long `Description`) are far below it.
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// Most bytes of an identity field (`Package`, `Version`, `Architecture`, `Source`): Debian's
/// names and versions are short; a longer one is not a package name.
pub const MAX_IDENTITY_BYTES: usize = 256;

/// Parses control-file stanzas. Errors on a continuation line with no field before it, a
/// field without a colon, and a field given twice in one stanza. A stanza with a field over
/// [`MAX_FIELD_BYTES`] is left out ([`parse_stanzas_within`] says which).
pub fn parse_stanzas(text: &str) -> Result<Vec<Stanza>> {
    parse_stanzas_within(text).map(|(stanzas, _)| stanzas)
}

/// [`parse_stanzas`], and why each stanza left out was left out (`line N: field F is over
/// …`). An oversized value is never copied.
pub fn parse_stanzas_within(text: &str) -> Result<(Vec<Stanza>, Vec<String>)> {
    let mut stanzas = Vec::new();
    let mut skipped = Vec::new();
    let mut current = Stanza::new();
    let mut oversized: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if line.trim().is_empty() {
            match oversized.take() {
                Some(reason) => {
                    skipped.push(reason);
                    current.clear();
                }
                None if !current.is_empty() => stanzas.push(std::mem::take(&mut current)),
                None => {}
            }
            last_key = None;
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let key = last_key
                .as_ref()
                .ok_or_else(|| Error::ContinuationWithoutField {
                    line: number,
                    text: bounded(line),
                })?;
            if oversized.is_some() {
                continue;
            }
            let value = current.get_mut(key).expect("last key is present");
            if value.len() + 1 + line.len() > MAX_FIELD_BYTES {
                oversized = Some(format!(
                    "line {number}: field {key} is over {MAX_FIELD_BYTES} bytes: stanza left out"
                ));
                continue;
            }
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let not_a_field = || Error::NotAField {
            line: number,
            text: bounded(line),
        };
        let (key, value) = line.split_once(':').ok_or_else(not_a_field)?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(not_a_field());
        }
        if current.contains_key(key) {
            return Err(Error::DuplicateField {
                line: number,
                field: bounded(key),
            });
        }
        let value = value.trim();
        if value.len() > MAX_FIELD_BYTES && oversized.is_none() {
            oversized = Some(format!(
                "line {number}: field {} is {} bytes (over {MAX_FIELD_BYTES}): stanza left out",
                bounded(key),
                value.len()
            ));
        }
        let kept = if oversized.is_some() { "" } else { value };
        current.insert(key.to_string(), kept.to_string());
        last_key = Some(key.to_string());
    }
    match oversized {
        Some(reason) => skipped.push(reason),
        None if !current.is_empty() => stanzas.push(current),
        None => {}
    }
    Ok((stanzas, skipped))
}

/// A line as an error quotes it: at most 200 characters.
fn bounded(text: &str) -> String {
    if text.len() <= 200 {
        return text.to_string();
    }
    let mut end = 200;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// Whether a `Status:` value means the package's files are on disk.
pub fn is_installed(status: Option<&str>) -> bool {
    let Some(status) = status else { return true };
    let words: Vec<&str> = status.split_whitespace().collect();
    match words.as_slice() {
        [want, _, state] => {
            !matches!(*want, "deinstall" | "purge")
                && matches!(
                    *state,
                    "installed"
                        | "half-configured"
                        | "unpacked"
                        | "triggers-awaited"
                        | "triggers-pending"
                )
        }
        _ => false,
    }
}

/// `Installed-Size`: KiB as dpkg writes it; humanised forms (`4KB`, `10kib`) in bytes, as
/// other tools read them.
pub fn installed_size(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Ok(n) = value.parse() {
        return Some(n);
    }
    let split = value.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1048576.0,
        "g" | "gb" => 1e9,
        "gib" => 1073741824.0,
        _ => return None,
    };
    Some((number * factor) as u64)
}

/// `Source: name (version)` → (name, version).
pub fn source(value: &str) -> (String, Option<String>) {
    match value.split_once('(') {
        Some((name, rest)) => (
            name.trim().to_string(),
            Some(rest.trim_end_matches(')').trim().to_string()),
        ),
        None => (value.trim().to_string(), None),
    }
}

/// Splits a dependency field (`a (>= 1), b | c`) into its comma-separated alternatives.
pub fn split_depends(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|d| !d.is_empty())
        .collect()
}

/// Licences of a machine-readable (DEP-5) copyright file: the `License:` short names and
/// `/usr/share/common-licenses/<name>` references, sorted and unique. `None` for free-form
/// copyright files: nothing is guessed from prose.
pub fn copyright_licenses(text: &str) -> Option<Vec<String>> {
    let first = text.lines().find(|l| !l.trim().is_empty())?;
    let format = first.strip_prefix("Format:")?.trim();
    if !format.contains("debian.org/doc/packaging-manuals/copyright-format/1.0") {
        return None;
    }
    let mut licenses = BTreeSet::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("License:") {
            // "License: none" marks files under no licence at all, not a licence name.
            let value = value.trim();
            if !value.is_empty() && !value.eq_ignore_ascii_case("none") {
                licenses.insert(value.to_string());
            }
        }
        if let Some(at) = line.find("/usr/share/common-licenses/") {
            let name: String = line[at + "/usr/share/common-licenses/".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
                .collect();
            let name = name.trim_end_matches('.').to_string();
            if !name.is_empty() {
                licenses.insert(name);
            }
        }
    }
    Some(licenses.into_iter().collect())
}

/// Paths listed in an `info/*.md5sums` file (`<md5>  <path>`), absolute.
pub fn md5sums_paths(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once(char::is_whitespace).map(|(_, p)| p.trim()))
        .filter(|p| !p.is_empty())
        .map(absolute)
        .collect()
}

fn absolute(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// Reads every dpkg database in the image.
pub fn analyze(fs: &Filesystem, distro: Option<&Distro>) -> Result<Vec<Package>, crate::Error> {
    analyze_within(fs, distro).map(|(packages, _)| packages)
}

/// [`analyze`], and what was left out over its budgets (a stanza with an oversized field, an
/// identity field over [`MAX_IDENTITY_BYTES`]), each with the database and the reason: a
/// degraded result, said so, never an oversized value copied into the SBOM.
pub fn analyze_within(
    fs: &Filesystem,
    distro: Option<&Distro>,
) -> Result<(Vec<Package>, Vec<String>), crate::Error> {
    let mut databases: Vec<(String, &[u8], &'static str)> = Vec::new();
    if let Some(bytes) = fs.read(STATUS) {
        databases.push((STATUS.to_string(), bytes, "dpkg-status"));
    }
    for (path, bytes) in fs.files_under(STATUS_D) {
        let name = path.rsplit('/').next().unwrap_or_default();
        if !name.contains('.') {
            databases.push((path.to_string(), bytes, "dpkg-status.d"));
        }
    }
    let mut packages = Vec::new();
    let mut left_out = Vec::new();
    for (path, bytes, source_kind) in databases {
        let text = String::from_utf8_lossy(bytes);
        let (stanzas, skipped) =
            parse_stanzas_within(&text).map_err(|reason| crate::Error::Corrupt {
                path: path.clone(),
                reason: reason.into(),
            })?;
        left_out.extend(skipped.into_iter().map(|why| format!("{path}: {why}")));
        for stanza in stanzas {
            let Some(name) = stanza.get("Package").filter(|n| !n.is_empty()) else {
                continue;
            };
            if let Some((field, value)) = ["Package", "Version", "Architecture", "Source"]
                .iter()
                .find_map(|f| {
                    stanza
                        .get(*f)
                        .filter(|v| v.len() > MAX_IDENTITY_BYTES)
                        .map(|v| (f, v))
                })
            {
                left_out.push(format!(
                    "{path}: package {}: {field} is {} bytes (over {MAX_IDENTITY_BYTES}): left out",
                    bounded(name),
                    value.len()
                ));
                continue;
            }
            if !is_installed(stanza.get("Status").map(String::as_str)) {
                continue;
            }
            // A stanza without a version is still an installed package (dpkg records what it
            // was told); it is reported without a version rather than dropped or guessed.
            let empty = String::new();
            let version = stanza.get("Version").unwrap_or(&empty);
            let arch = stanza
                .get("Architecture")
                .cloned()
                .filter(|a| !a.is_empty());
            let (source_name, source_version) = match stanza.get("Source") {
                Some(s) => {
                    let (n, v) = source(s);
                    (Some(n), v)
                }
                None => (None, None),
            };
            let files = owned_files(
                fs,
                &path,
                source_kind,
                name,
                arch.as_deref(),
                stanza.get("Conffiles"),
            );
            let licenses = fs
                .read(&format!("{DOC}/{name}/copyright"))
                .and_then(|b| copyright_licenses(&String::from_utf8_lossy(b)))
                .unwrap_or_default();
            let mut depends =
                split_depends(stanza.get("Depends").map(String::as_str).unwrap_or(""));
            depends.extend(split_depends(
                stanza.get("Pre-Depends").map(String::as_str).unwrap_or(""),
            ));
            let upstream = source_name.as_ref().map(|n| match &source_version {
                Some(v) if v != version => format!("{n}@{v}"),
                _ => n.clone(),
            });
            let namespace = distro.map(|d| d.id.as_str()).unwrap_or("debian");
            let distro_q = distro.map(Distro::qualifier);
            let purl = purl::build(
                "deb",
                Some(namespace),
                name,
                Some(version),
                &[
                    ("arch", arch.as_deref()),
                    ("distro", distro_q.as_deref()),
                    ("upstream", upstream.as_deref()),
                ],
            );
            packages.push(Package {
                ecosystem: Ecosystem::Deb,
                name: name.clone(),
                version: version.clone(),
                arch,
                source_name,
                source_version,
                licenses,
                supplier: stanza.get("Maintainer").cloned(),
                installed_size: stanza.get("Installed-Size").and_then(|s| installed_size(s)),
                depends,
                provides: split_depends(stanza.get("Provides").map(String::as_str).unwrap_or("")),
                depends_on: Vec::new(),
                files,
                purl,
                evidence: Evidence {
                    source: source_kind.into(),
                    path: path.clone(),
                    method: "package-database".into(),
                },
            });
        }
    }
    Ok((packages, left_out))
}

fn owned_files(
    fs: &Filesystem,
    db_path: &str,
    kind: &str,
    name: &str,
    arch: Option<&str>,
    conffiles: Option<&String>,
) -> Vec<String> {
    let mut files = BTreeSet::new();
    let bases: Vec<String> = if kind == "dpkg-status.d" {
        vec![db_path.to_string()]
    } else {
        let mut bases = vec![format!("{INFO}/{name}")];
        if let Some(arch) = arch {
            bases.push(format!("{INFO}/{name}:{arch}"));
        }
        bases
    };
    for base in bases {
        if let Some(list) = fs.read(&format!("{base}.list")) {
            for line in String::from_utf8_lossy(list)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && *l != "/.")
            {
                files.insert(absolute(line));
            }
        }
        if let Some(sums) = fs.read(&format!("{base}.md5sums")) {
            files.extend(md5sums_paths(&String::from_utf8_lossy(sums)));
        }
        if let Some(conf) = fs.read(&format!("{base}.conffiles")) {
            files.extend(
                String::from_utf8_lossy(conf)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(absolute),
            );
        }
    }
    if let Some(conffiles) = conffiles {
        for line in conffiles.lines() {
            if let Some(path) = line.split_whitespace().next() {
                files.insert(absolute(path));
            }
        }
    }
    files.into_iter().collect()
}
