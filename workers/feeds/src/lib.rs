//! Reading feeds: advisory records (OSV JSON / YAML, GHSA in OSV form, Debian Security
//! Tracker, Alpine secdb, NVD CVE API 2.0), exploit signals (CISA KEV, FIRST EPSS) and offline
//! kits, from files, directories, zip archives and HTTP(S) ([`http`]: conditional, capped,
//! retried). What `stella feeds import` and the operator's FeedSource controller both read
//! with; no storage here, no cluster.

pub mod http;

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use stella_advisories::{Advisory, alpine, debian, nvd, osv};

/// Largest single record or zip member read.
pub const MAX_RECORD: u64 = 64 << 20;

/// What a read found: advisories, rejections (origin, reason) and the offline kits verified
/// (one line each, for the user).
#[derive(Debug, Default)]
pub struct Records {
    pub advisories: Vec<Advisory>,
    pub rejected: Vec<(String, String)>,
    pub kits: Vec<String>,
}

/// Exploit signals of one file.
#[derive(Debug)]
pub enum Signals {
    Kev(stella_advisories::exploits::Kev),
    Epss(stella_advisories::exploits::Epss),
}

/// `Some` when `path` is a KEV catalog (JSON) or an EPSS score file (`.csv`, `.csv.gz`), with
/// the parsed signals or why they are unreadable; `None` for anything else.
pub fn exploit_signals(path: &Path) -> Option<Result<Signals, String>> {
    use stella_advisories::exploits;
    let name = path.file_name()?.to_string_lossy().to_string();
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    const MAX: u64 = 1 << 30;
    let read = |reader: &mut dyn Read| -> Result<String, String> {
        let mut text = String::new();
        reader
            .take(MAX + 1)
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        if text.len() as u64 > MAX {
            return Err(format!("larger than {MAX} bytes"));
        }
        Ok(text)
    };
    if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return Some(Err(e.to_string())),
        };
        let text = if name.ends_with(".gz") {
            read(&mut flate2::read::GzDecoder::new(file))
        } else {
            read(&mut std::io::BufReader::new(file))
        };
        return Some(text.and_then(|t| {
            exploits::parse_epss(&t)
                .map(Signals::Epss)
                .map_err(|e| e.to_string())
        }));
    }
    if name.ends_with(".json") && meta.len() <= MAX {
        let bytes = std::fs::read(path).ok()?;
        return exploit_signals_of(&name, &bytes);
    }
    None
}

/// [`exploit_signals`] of a document already read (`name` tells `.csv` / `.csv.gz` EPSS
/// files; JSON is recognised by its content as KEV).
pub fn exploit_signals_of(name: &str, bytes: &[u8]) -> Option<Result<Signals, String>> {
    use stella_advisories::exploits;
    if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        let mut text = String::new();
        let read = if name.ends_with(".gz") {
            flate2::read::GzDecoder::new(bytes)
                .take(1 << 30)
                .read_to_string(&mut text)
        } else {
            std::str::from_utf8(bytes)
                .map(|t| {
                    text = t.to_string();
                    t.len()
                })
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        };
        return Some(
            read.map_err(|e| e.to_string())
                .and_then(|_| exploits::parse_epss(&text).map_err(|e| e.to_string()))
                .map(Signals::Epss),
        );
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    exploits::is_kev(&value).then(|| {
        exploits::parse_kev(&value)
            .map(Signals::Kev)
            .map_err(|e| e.to_string())
    })
}

/// Reads advisories from a file, a directory (recursively) or a zip archive.
pub fn collect(path: &Path, out: &mut Records) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let is_record = entry
                .extension()
                .is_some_and(|e| e == "json" || e == "yaml" || e == "yml" || e == "zip");
            if std::fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir()) || is_record {
                collect(&entry, out)?;
            }
        }
        return Ok(());
    }
    if !meta.is_file() {
        return Err("not a regular file or directory".into());
    }
    if meta.len() > 4 << 30 {
        return Err("larger than 4 GiB".into());
    }
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| e.to_string())?;
    if head[..n].starts_with(b"PK\x03\x04") {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        return read_zip(&path.display().to_string(), file, out);
    }
    if meta.len() > MAX_RECORD {
        out.rejected
            .push((path.display().to_string(), "larger than 64 MiB".into()));
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    parse_into(
        &path.display().to_string(),
        &bytes,
        &mut out.advisories,
        &mut out.rejected,
    );
    Ok(())
}

/// Detects the format of one document and parses it.
fn parse_into(
    origin: &str,
    bytes: &[u8],
    accepted: &mut Vec<Advisory>,
    rejected: &mut Vec<(String, String)>,
) {
    let value: Result<serde_json::Value, String> =
        if origin.ends_with(".yaml") || origin.ends_with(".yml") {
            serde_saphyr::from_slice(bytes).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice(bytes).map_err(|e| e.to_string())
        };
    let value = match value {
        Ok(v) => v,
        Err(e) => return rejected.push((origin.into(), format!("not JSON/YAML: {e}"))),
    };
    let is_osv = value.get("id").is_some()
        && (value.get("modified").is_some() || value.get("affected").is_some());
    if nvd::is_nvd(&value) {
        let (mut list, failed) = nvd::parse(&value);
        accepted.append(&mut list);
        rejected.extend(
            failed
                .into_iter()
                .map(|(id, reason)| (format!("{origin}: {id}"), reason)),
        );
    } else if alpine::is_secdb(&value) {
        match alpine::parse(&value) {
            Ok(mut list) => accepted.append(&mut list),
            Err(e) => rejected.push((origin.into(), e.to_string())),
        }
    } else if is_osv {
        match osv::from_value(&value) {
            Ok(a) => accepted.push(a),
            Err(e) => rejected.push((origin.into(), e.to_string())),
        }
    } else if value.is_object() {
        match debian::parse(bytes) {
            Ok(mut list) if !list.is_empty() => accepted.append(&mut list),
            Ok(_) => rejected.push((
                origin.into(),
                "neither an OSV record nor Debian tracker data".into(),
            )),
            Err(e) => rejected.push((origin.into(), e.to_string())),
        }
    } else {
        rejected.push((
            origin.into(),
            "neither an OSV record nor Debian tracker data".into(),
        ));
    }
}

/// The manifest at the root of an offline kit.
const KIT_MANIFEST: &str = "stella-kit.json";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `{"kind": "stella-feed-kit", "version": 1, "created": …, "files": [{"path", "sha256", "size"}]}`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KitManifest {
    kind: String,
    version: u32,
    created: String,
    files: Vec<KitFile>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KitFile {
    path: String,
    sha256: String,
    size: u64,
}

impl KitManifest {
    fn parse(bytes: &[u8]) -> Result<KitManifest, String> {
        let manifest: KitManifest = serde_json::from_slice(bytes)
            .map_err(|e| format!("{KIT_MANIFEST} is not a kit manifest: {e}"))?;
        if manifest.kind != "stella-feed-kit" || manifest.version != 1 {
            return Err(format!(
                "{KIT_MANIFEST}: unsupported kit {:?} version {}",
                manifest.kind, manifest.version
            ));
        }
        Ok(manifest)
    }

    /// Every listed file present with its digest, and nothing unlisted.
    fn verify(&self, seen: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
        let mut listed = std::collections::BTreeSet::new();
        for f in &self.files {
            if !listed.insert(f.path.as_str()) {
                return Err(format!("kit verification failed: {} listed twice", f.path));
            }
            match seen.get(&f.path) {
                None => {
                    return Err(format!(
                        "kit verification failed: {} is listed but missing",
                        f.path
                    ));
                }
                Some(digest) if *digest != f.sha256 => {
                    return Err(format!(
                        "kit verification failed: {} has sha256 {digest}, the manifest says {}",
                        f.path, f.sha256
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = seen.keys().find(|k| !listed.contains(k.as_str())) {
            return Err(format!(
                "kit verification failed: {extra} is not listed in the manifest"
            ));
        }
        Ok(())
    }
}

/// Reads the advisories of a zip archive: an OSV `all.zip`, or an offline kit (a
/// `stella-kit.json` manifest of digests; a kit whose members do not match it is refused as
/// a whole, before any record is kept).
pub fn read_zip(origin: &str, reader: impl Read + Seek, out: &mut Records) -> Result<(), String> {
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| format!("not a readable zip: {e}"))?;
    let manifest = match archive.by_name(KIT_MANIFEST) {
        Ok(mut m) => {
            let mut text = Vec::new();
            m.by_ref()
                .take(MAX_RECORD + 1)
                .read_to_end(&mut text)
                .map_err(|e| format!("{KIT_MANIFEST}: {e}"))?;
            Some(KitManifest::parse(&text)?)
        }
        Err(_) => None,
    };
    // A kit's records are held back until every digest has been checked.
    let (mut kit_accepted, mut kit_rejected) = (Vec::new(), Vec::new());
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|e| e.to_string())?;
        if !member.is_file() {
            continue;
        }
        let member_name = member
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("#{i}"));
        if manifest.is_some() && member_name == KIT_MANIFEST {
            continue;
        }
        let name = format!("{}:{member_name}", origin);
        if member.size() > MAX_RECORD {
            if manifest.is_some() {
                return Err(format!("kit member {member_name} larger than 64 MiB"));
            }
            out.rejected
                .push((name, "member larger than 64 MiB".into()));
            continue;
        }
        let mut bytes = Vec::new();
        if let Err(e) = member.by_ref().take(MAX_RECORD + 1).read_to_end(&mut bytes) {
            if manifest.is_some() {
                return Err(format!("kit member {member_name}: {e}"));
            }
            out.rejected.push((name, e.to_string()));
            continue;
        }
        if manifest.is_some() {
            seen.insert(member_name.clone(), sha256_hex(&bytes));
        }
        parse_into(&name, &bytes, &mut kit_accepted, &mut kit_rejected);
    }
    if let Some(manifest) = manifest {
        manifest.verify(&seen)?;
        out.kits.push(format!(
            "{origin}: offline kit verified ({} files, created {})",
            seen.len(),
            manifest.created
        ));
    }
    out.advisories.append(&mut kit_accepted);
    out.rejected.append(&mut kit_rejected);
    Ok(())
}

/// Reads the advisories of one downloaded or mounted document: a zip archive (an OSV
/// `all.zip` or an offline kit) or one JSON / YAML document (`origin`'s extension tells
/// YAML). Malformed records are rejected with the reason.
pub fn read_document(origin: &str, bytes: &[u8], out: &mut Records) -> Result<(), String> {
    if bytes.starts_with(b"PK\x03\x04") {
        return read_zip(origin, std::io::Cursor::new(bytes), out);
    }
    if bytes.len() as u64 > MAX_RECORD {
        out.rejected
            .push((origin.to_string(), "larger than 64 MiB".into()));
        return Ok(());
    }
    parse_into(origin, bytes, &mut out.advisories, &mut out.rejected);
    Ok(())
}
/// Writes an offline kit: every feed file under `paths` (zips expanded into `<zip name>/…`),
/// sorted, with fixed timestamps and a digest manifest.
pub fn build_kit(paths: &[PathBuf], out: &Path) -> Result<usize, String> {
    let mut files: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for path in paths {
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "feed".into());
        gather(path, &base, &mut files).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if files.is_empty() {
        return Err("no feed files (.json, .yaml, .yml, .zip) found".into());
    }
    let created = files
        .values()
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .filter_map(|v| {
            v.get("modified")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .max()
        .unwrap_or_default();
    let manifest = KitManifest {
        kind: "stella-feed-kit".into(),
        version: 1,
        created,
        files: files
            .iter()
            .map(|(path, bytes)| KitFile {
                path: path.clone(),
                sha256: sha256_hex(bytes),
                size: bytes.len() as u64,
            })
            .collect(),
    };
    let temp = out.with_extension("partial");
    let file = std::fs::File::create(&temp).map_err(|e| format!("{}: {e}", temp.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    let entries = std::iter::once((KIT_MANIFEST, &manifest_bytes))
        .chain(files.iter().map(|(k, v)| (k.as_str(), v)));
    for (name, bytes) in entries {
        use std::io::Write;
        zip.start_file(name, options).map_err(|e| e.to_string())?;
        zip.write_all(bytes).map_err(|e| e.to_string())?;
    }
    zip.finish().map_err(|e| e.to_string())?;
    std::fs::rename(&temp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(files.len())
}

fn gather(
    path: &Path,
    name: &str,
    files: &mut std::collections::BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            let child = entry.file_name().to_string_lossy().into_owned();
            gather(&entry.path(), &format!("{name}/{child}"), files)?;
        }
        return Ok(());
    }
    let is_feed = [".json", ".yaml", ".yml", ".zip"]
        .iter()
        .any(|e| name.ends_with(e));
    if !meta.is_file() || !is_feed || name == KIT_MANIFEST {
        return Ok(());
    }
    if meta.len() > MAX_RECORD && !name.ends_with(".zip") {
        return Err(format!("{name} is larger than 64 MiB"));
    }
    if name.ends_with(".zip") {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut archive =
            zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip: {e}"))?;
        for i in 0..archive.len() {
            let mut member = archive.by_index(i).map_err(|e| e.to_string())?;
            // Only plain relative names: no `..`, no absolute paths.
            let Some(inner) = member.enclosed_name() else {
                continue;
            };
            if !member.is_file() || member.size() > MAX_RECORD {
                continue;
            }
            let inner = inner.to_string_lossy().replace('\\', "/");
            let mut bytes = Vec::new();
            member
                .by_ref()
                .take(MAX_RECORD + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| e.to_string())?;
            files.insert(format!("{name}/{inner}"), bytes);
        }
        return Ok(());
    }
    files.insert(
        name.to_string(),
        std::fs::read(path).map_err(|e| e.to_string())?,
    );
    Ok(())
}

/// The `sha256:<hex>` of an offline kit's `stella-kit.json` manifest (what a FeedSource's
/// `offlineKit.manifestDigest` pins), or why `bytes` is not a kit.
pub fn kit_manifest_digest(bytes: &[u8]) -> Result<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not an offline kit (not a readable zip): {e}"))?;
    let mut manifest = archive
        .by_name(KIT_MANIFEST)
        .map_err(|_| format!("not an offline kit: no {KIT_MANIFEST}"))?;
    let mut text = Vec::new();
    manifest
        .by_ref()
        .take(MAX_RECORD + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("{KIT_MANIFEST}: {e}"))?;
    Ok(format!("sha256:{}", sha256_hex(&text)))
}
