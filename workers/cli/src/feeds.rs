//! `stella feeds`: import advisory feeds into the catalog, and report what is there.

use crate::Exit;
use std::io::Read;
use std::path::{Path, PathBuf};
use stella_advisories::{Advisory, alpine, debian, matching, osv};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
    /// Where the catalog lives.
    #[arg(long, env = "STELLA_DATA_DIR", value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Keep advisories in PostgreSQL (`postgres://…`, schema `vuln`) instead of the embedded catalog.
    #[arg(long, env = "STELLA_DATABASE_URL", value_name = "URL", global = true)]
    database_url: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Import OSV records (JSON or YAML files, directories of them, or an OSV `all.zip`),
    /// Debian Security Tracker JSON and Alpine secdb JSON. Malformed records are rejected with the reason; the rest
    /// of the import is kept.
    Import {
        /// Files, directories or zip archives.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
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
        match crate::open_store(args.data_dir.as_deref(), args.database_url.as_deref()) {
            Ok(x) => x,
            Err((exit, message)) => return crate::fail(exit, &message),
        };
    match args.command {
        Command::Import { paths } => {
            let mut accepted = Vec::new();
            let mut rejected = Vec::new();
            for path in &paths {
                if let Err(e) = collect(path, &mut accepted, &mut rejected) {
                    return crate::fail(Exit::Usage, &format!("{}: {e}", path.display()));
                }
            }
            let result = runtime.block_on(async {
                for advisory in &accepted {
                    let keys: Vec<(String, String)> = advisory
                        .affected
                        .iter()
                        .map(|a| (a.ecosystem.clone(), a.package.clone()))
                        .collect();
                    let body = serde_json::to_string(advisory).unwrap_or_default();
                    store
                        .advisories
                        .put_advisory(
                            &advisory.id,
                            &advisory.source,
                            &advisory.modified,
                            &body,
                            &keys,
                        )
                        .await?;
                }
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

/// Reads advisories from a file, a directory (recursively) or a zip archive.
fn collect(
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
        for i in 0..archive.len() {
            let mut member = archive.by_index(i).map_err(|e| e.to_string())?;
            if !member.is_file() {
                continue;
            }
            let member_name = member
                .name()
                .map(|n| n.into_owned())
                .unwrap_or_else(|_| format!("#{i}"));
            let name = format!("{}:{member_name}", path.display());
            if member.size() > MAX_RECORD {
                rejected.push((name, "member larger than 64 MiB".into()));
                continue;
            }
            let mut bytes = Vec::new();
            if let Err(e) = member.by_ref().take(MAX_RECORD + 1).read_to_end(&mut bytes) {
                rejected.push((name, e.to_string()));
                continue;
            }
            parse_into(&name, &bytes, accepted, rejected);
        }
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
    if alpine::is_secdb(&value) {
        match alpine::parse(&value) {
            Ok(mut list) => accepted.append(&mut list),
            Err(e) => rejected.push((origin.into(), e)),
        }
    } else if is_osv {
        match osv::from_value(&value) {
            Ok(a) => accepted.push(a),
            Err(e) => rejected.push((origin.into(), e)),
        }
    } else if value.is_object() {
        match debian::parse(bytes) {
            Ok(mut list) if !list.is_empty() => accepted.append(&mut list),
            Ok(_) => rejected.push((
                origin.into(),
                "neither an OSV record nor Debian tracker data".into(),
            )),
            Err(e) => rejected.push((origin.into(), e)),
        }
    } else {
        rejected.push((
            origin.into(),
            "neither an OSV record nor Debian tracker data".into(),
        ));
    }
}
