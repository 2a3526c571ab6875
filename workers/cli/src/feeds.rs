//! `stella feeds`: import advisory feeds into the catalog, and report what is there.

use crate::Exit;
use std::io::Read;
use std::path::{Path, PathBuf};
use stella_advisories::{Advisory, alpine, debian, matching, nvd, osv};

/// The subcommands, with the storage flags.
pub(crate) type Args = crate::WithStorage<Command>;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Import OSV records (JSON or YAML files, directories of them, or an OSV `all.zip`),
    /// Debian Security Tracker JSON, Alpine secdb JSON and NVD CVE API 2.0 JSON, from files,
    /// directories, zip archives, offline kits or http(s) URLs. Malformed records are rejected
    /// with the reason; the rest of the import is kept. An offline kit whose manifest does not
    /// match its content is refused as a whole.
    Import {
        /// Files, directories, zip archives / offline kits, or http(s):// URLs.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Build an offline kit: a zip of the given feed files (directories and zips included)
    /// with a `stella-kit.json` manifest of SHA-256 digests, byte-identical for the same input.
    Kit {
        /// Feed files, directories or zip archives.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The kit to write.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Sources, record counts, the snapshot hash and the last import.
    Status,
    /// Write the snapshot: every advisory as one canonical JSON line, sorted (byte-identical
    /// for the same content); prints its hash.
    Export {
        /// Output file.
        file: PathBuf,
    },
    /// What changed between two exported snapshots: advisories added, removed, changed, and
    /// the ecosystem/package keys they touch (JSON).
    Diff { old: PathBuf, new: PathBuf },
}

/// Largest single record or zip member read.
const MAX_RECORD: u64 = 64 << 20;

pub(crate) fn run(args: Args) -> Exit {
    let (runtime, store) =
        match crate::open_store(&args.storage.config(stella_store::default_data_dir)) {
            Ok(x) => x,
            Err((exit, message)) => return crate::fail(exit, &message),
        };
    match args.command {
        Command::Import { paths } => {
            let mut accepted = Vec::new();
            let mut rejected = Vec::new();
            let downloads =
                std::env::temp_dir().join(format!("stella-feeds-{}", std::process::id()));
            for path in &paths {
                let shown = path.display().to_string();
                let result = if shown.starts_with("http://") || shown.starts_with("https://") {
                    runtime
                        .block_on(download(&shown, &downloads))
                        .and_then(|file| {
                            let before = rejected.len();
                            let r = collect(&file, &mut accepted, &mut rejected);
                            // Name the URL, not the temporary file, in rejections.
                            let temp = file.display().to_string();
                            for (origin, _) in &mut rejected[before..] {
                                *origin = origin.replacen(&temp, &shown, 1);
                            }
                            r
                        })
                } else if let Some(signals) = exploit_signals(path) {
                    // CISA KEV and FIRST EPSS files: exploit signals, stored beside.
                    match signals.and_then(|s| runtime.block_on(store_signals(&store, s))) {
                        Ok(message) => {
                            println!("{shown}: {message}");
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    collect(path, &mut accepted, &mut rejected)
                };
                if let Err(e) = result {
                    let _ = std::fs::remove_dir_all(&downloads);
                    return crate::fail(Exit::Usage, &format!("{shown}: {e}"));
                }
            }
            let _ = std::fs::remove_dir_all(&downloads);
            let result = runtime.block_on(async {
                let prepared: Vec<(String, Vec<(String, String)>)> = accepted
                    .iter()
                    .map(|advisory| {
                        let keys = advisory
                            .affected
                            .iter()
                            .map(|a| (a.ecosystem.clone(), a.package.clone()))
                            .collect();
                        (serde_json::to_string(advisory).unwrap_or_default(), keys)
                    })
                    .collect();
                let rows: Vec<stella_store::AdvisoryRow> = accepted
                    .iter()
                    .zip(&prepared)
                    .map(|(advisory, (body, keys))| stella_store::AdvisoryRow {
                        id: &advisory.id,
                        source: &advisory.source,
                        modified: &advisory.modified,
                        body,
                        keys,
                    })
                    .collect();
                store.advisories.put_advisories(&rows).await?;
                let origin = paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                store
                    .advisories
                    .record_import(&origin, accepted.len() as i64, rejected.len() as i64)
                    .await
            });
            if let Err(e) = result {
                return crate::fail(Exit::Failure, &format!("failed to store advisories: {e}"));
            }
            for (origin, reason) in rejected.iter().take(20) {
                eprintln!("rejected {origin}: {reason}");
            }
            if rejected.len() > 20 {
                eprintln!("... and {} more rejected", rejected.len() - 20);
            }
            println!(
                "imported {} advisories, rejected {}",
                accepted.len(),
                rejected.len()
            );
            Exit::Ok
        }
        Command::Status => {
            let status = runtime.block_on(async {
                let counts = store.advisories.advisory_counts().await?;
                let bodies = store.advisories.advisory_bodies().await?;
                let last = store.advisories.last_import().await?;
                Ok::<_, stella_store::Error>((counts, bodies, last))
            });
            let (counts, bodies, last) = match status {
                Ok(x) => x,
                Err(e) => return crate::fail(Exit::Failure, &e.to_string()),
            };
            let advisories: Vec<Advisory> = bodies
                .iter()
                .filter_map(|b| serde_json::from_str(b).ok())
                .collect();
            println!("snapshot {}", matching::snapshot_hash(&advisories));
            for (source, count) in counts {
                println!("{source:<16} {count} advisories");
            }
            match last {
                Some((origin, at, accepted, rejected)) => println!(
                    "last import {at}: {accepted} accepted, {rejected} rejected from {origin}"
                ),
                None => println!("no import yet: stella feeds import <path>"),
            }
            Exit::Ok
        }
        Command::Export { file } => {
            let bodies = match runtime.block_on(store.advisories.advisory_bodies()) {
                Ok(b) => b,
                Err(e) => return crate::fail(Exit::Failure, &e.to_string()),
            };
            let advisories: Vec<Advisory> = bodies
                .iter()
                .filter_map(|b| serde_json::from_str(b).ok())
                .collect();
            if let Err(e) = std::fs::write(&file, stella_advisories::snapshot::export(&advisories))
            {
                return crate::fail(Exit::Failure, &format!("{}: {e}", file.display()));
            }
            println!(
                "{} advisories, snapshot {}",
                advisories.len(),
                matching::snapshot_hash(&advisories)
            );
            Exit::Ok
        }
        Command::Kit { paths, out } => match build_kit(&paths, &out) {
            Ok(files) => {
                println!("{}: {files} feed files", out.display());
                Exit::Ok
            }
            Err(e) => crate::fail(Exit::Usage, &e),
        },
        Command::Diff { old, new } => {
            let read = |p: &Path| -> Result<Vec<Advisory>, String> {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                stella_advisories::snapshot::import(&text)
                    .map_err(|e| format!("{}: {e}", p.display()))
            };
            let (old, new) = match (read(&old), read(&new)) {
                (Ok(o), Ok(n)) => (o, n),
                (Err(e), _) | (_, Err(e)) => return crate::fail(Exit::Usage, &e),
            };
            let delta = stella_advisories::snapshot::delta(&old, &new);
            println!(
                "{}",
                stella_sbom::canonical::to_string_pretty(
                    &serde_json::to_value(&delta).unwrap_or_default()
                )
                .trim_end()
            );
            Exit::Ok
        }
    }
}

/// Exploit signals of one file.
enum Signals {
    Kev(stella_advisories::exploits::Kev),
    Epss(stella_advisories::exploits::Epss),
}

/// `Some` when `path` is a KEV catalog (JSON) or an EPSS score file (`.csv`, `.csv.gz`), with
/// the parsed signals or why they are unreadable; `None` for anything else.
fn exploit_signals(path: &Path) -> Option<Result<Signals, String>> {
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
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        if exploits::is_kev(&value) {
            return Some(
                exploits::parse_kev(&value)
                    .map(Signals::Kev)
                    .map_err(|e| e.to_string()),
            );
        }
    }
    None
}

async fn store_signals(store: &stella_store::Store, signals: Signals) -> Result<String, String> {
    match signals {
        Signals::Kev(kev) => {
            store
                .advisories
                .put_kev(&kev.entries)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "KEV catalog {}: {} known exploited vulnerabilities",
                kev.catalog_version,
                kev.entries.len()
            ))
        }
        Signals::Epss(epss) => {
            store
                .advisories
                .put_epss(&epss.scores, epss.score_date.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "EPSS scores{}: {}",
                epss.score_date
                    .as_deref()
                    .map(|d| format!(" of {d}"))
                    .unwrap_or_default(),
                epss.scores.len()
            ))
        }
    }
}

/// Reads advisories from a file, a directory (recursively) or a zip archive.
pub(crate) fn collect(
    path: &Path,
    accepted: &mut Vec<Advisory>,
    rejected: &mut Vec<(String, String)>,
) -> Result<(), String> {
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
                collect(&entry, accepted, rejected)?;
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
        let mut archive =
            zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip: {e}"))?;
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
            let name = format!("{}:{member_name}", path.display());
            if member.size() > MAX_RECORD {
                if manifest.is_some() {
                    return Err(format!("kit member {member_name} larger than 64 MiB"));
                }
                rejected.push((name, "member larger than 64 MiB".into()));
                continue;
            }
            let mut bytes = Vec::new();
            if let Err(e) = member.by_ref().take(MAX_RECORD + 1).read_to_end(&mut bytes) {
                if manifest.is_some() {
                    return Err(format!("kit member {member_name}: {e}"));
                }
                rejected.push((name, e.to_string()));
                continue;
            }
            if manifest.is_some() {
                seen.insert(member_name.clone(), sha256_hex(&bytes));
            }
            parse_into(&name, &bytes, &mut kit_accepted, &mut kit_rejected);
        }
        if let Some(manifest) = manifest {
            manifest.verify(&seen)?;
            eprintln!(
                "{}: offline kit verified ({} files, created {})",
                path.display(),
                seen.len(),
                manifest.created
            );
        }
        accepted.append(&mut kit_accepted);
        rejected.append(&mut kit_rejected);
        return Ok(());
    }
    if meta.len() > MAX_RECORD {
        rejected.push((path.display().to_string(), "larger than 64 MiB".into()));
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    parse_into(&path.display().to_string(), &bytes, accepted, rejected);
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

/// Largest download accepted from an http(s) feed URL.
const MAX_DOWNLOAD: u64 = 4 << 30;

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

/// Downloads a feed URL into `dir` (named after the URL's last segment, so `.yaml` and `.zip`
/// are recognised), capped at [`MAX_DOWNLOAD`].
async fn download(url: &str, dir: &Path) -> Result<PathBuf, String> {
    use std::io::Write;
    let segment = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or_default();
    let name: String = segment
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let name = match name.trim_start_matches('.') {
        "" => "feed.json".to_string(),
        n => n.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let target = dir.join(format!(
        "{}-{name}",
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    ));
    let mut file = std::fs::File::create(&target).map_err(|e| e.to_string())?;
    crate::http::fetch(url, MAX_DOWNLOAD, |chunk| {
        file.write_all(chunk).map_err(|e| e.to_string())
    })
    .await?;
    Ok(target)
}

/// Writes an offline kit: every feed file under `paths` (zips expanded into `<zip name>/…`),
/// sorted, with fixed timestamps and a digest manifest.
fn build_kit(paths: &[PathBuf], out: &Path) -> Result<usize, String> {
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
