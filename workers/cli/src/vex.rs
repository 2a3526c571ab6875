//! `stella vex`: import VEX documents (OpenVEX, CSAF VEX, CycloneDX VEX) into the catalog,
//! report what is there, and show the consensus per vulnerability and product.

use crate::Exit;
use std::io::Read;
use std::path::{Path, PathBuf};
use stella_store::VexDb;
use stella_vex::{Consensus, Document, TrustConfig};

/// The subcommands, with the storage flags.
pub(crate) type Args = crate::WithStorage<Command>;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Import VEX documents — OpenVEX, CSAF 2.0 VEX, CycloneDX VEX, detected from their
    /// content — from files, directories (their `.json` files, recursively), zip archives or
    /// http(s) URLs. Every statement is kept, conflicting ones included; malformed statements
    /// are rejected with the reason and the rest of their document kept; re-importing a
    /// document adds nothing.
    Import {
        /// Files, directories, zip archives, or http(s):// URLs.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The provider of CycloneDX documents whose metadata names none.
        #[arg(long, value_name = "NAME")]
        provider: Option<String>,
    },
    /// Providers with their statement counts by status, the snapshot hash and the last import.
    Status,
    /// The decision per vulnerability and product, with the statements supporting it, those
    /// in conflict, and those that did not count.
    Consensus {
        /// Only this vulnerability id.
        #[arg(long, value_name = "ID")]
        vuln: Option<String>,
        /// Decide for this component purl (every statement that applies to it: by package,
        /// by image with --image, by subcomponent), or for this `sha256:` image digest.
        #[arg(long, value_name = "PURL")]
        product: Option<String>,
        /// The image the --product component was found in (`sha256:` digest).
        #[arg(long, value_name = "DIGEST", requires = "product")]
        image: Option<String>,
        /// Trust weights and justification gates (YAML or JSON, see `stella_vex::TrustConfig`).
        #[arg(long, value_name = "FILE")]
        trust: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

/// Largest download accepted from a URL.
const MAX_DOWNLOAD: u64 = 1 << 30;

pub(crate) fn run(args: Args) -> Exit {
    let (runtime, store) =
        match crate::open_store(&args.storage.config(stella_store::default_data_dir)) {
            Ok(x) => x,
            Err((exit, message)) => return crate::fail(exit, &message),
        };
    let db = &store.vex;
    match args.command {
        Command::Import { paths, provider } => import(&runtime, &store, &paths, provider),
        Command::Status => status(&runtime, db),
        Command::Consensus {
            vuln,
            product,
            image,
            trust,
            format,
        } => consensus(
            &runtime,
            db,
            vuln.as_deref(),
            product.as_deref(),
            image.as_deref(),
            trust.as_deref(),
            format,
        ),
    }
}

/// What an import read: documents with their origin, and rejections (origin, reason).
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) documents: Vec<(String, Document)>,
    pub(crate) rejected: Vec<(String, String)>,
}

fn import(
    runtime: &tokio::runtime::Runtime,
    store: &stella_store::Store,
    paths: &[PathBuf],
    provider: Option<String>,
) -> Exit {
    let options = stella_vex::Options { provider };
    let mut collected = Collected::default();
    for path in paths {
        let shown = path.display().to_string();
        let result = if shown.starts_with("http://") || shown.starts_with("https://") {
            runtime
                .block_on(download(&shown))
                .map(|bytes| read_document(&shown, &bytes, &options, &mut collected))
        } else {
            collect(path, &options, &mut collected)
        };
        if let Err(e) = result {
            return crate::fail(Exit::Usage, &format!("{shown}: {e}"));
        }
    }
    let accepted: usize = collected
        .documents
        .iter()
        .map(|(_, d)| d.statements.len())
        .sum();
    let batch: Vec<(&Document, &str)> = collected
        .documents
        .iter()
        .map(|(origin, d)| (d, origin.as_str()))
        .collect();
    let origin = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let stored = runtime.block_on(async {
        let imported = store.import_vex(&batch).await?;
        store
            .vex
            .record_import(&origin, accepted as i64, collected.rejected.len() as i64)
            .await?;
        Ok::<_, stella_store::Error>(imported.added)
    });
    let added = match stored {
        Ok(n) => n,
        Err(e) => {
            return crate::fail(
                Exit::Failure,
                &format!("failed to store VEX statements: {e}"),
            );
        }
    };
    for (origin, reason) in collected.rejected.iter().take(50) {
        eprintln!("rejected {origin}: {reason}");
    }
    if collected.rejected.len() > 50 {
        eprintln!("... and {} more rejected", collected.rejected.len() - 50);
    }
    println!(
        "imported {accepted} statements from {} documents ({added} new), rejected {}",
        collected.documents.len(),
        collected.rejected.len()
    );
    Exit::Ok
}

/// Reads VEX documents from a file, a directory (its `.json` and `.zip` files, recursively)
/// or a zip archive (its `.json` members).
pub(crate) fn collect(
    path: &Path,
    options: &stella_vex::Options,
    out: &mut Collected,
) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let wanted = entry.extension().is_some_and(|e| e == "json" || e == "zip");
            if std::fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir()) || wanted {
                collect(&entry, options, out)?;
            }
        }
        return Ok(());
    }
    if !meta.is_file() {
        return Err("not a regular file or directory".into());
    }
    let shown = path.display().to_string();
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
            let name = member
                .name()
                .map(|n| n.into_owned())
                .unwrap_or_else(|_| format!("#{i}"));
            if !member.is_file() || !name.ends_with(".json") {
                continue;
            }
            let origin = format!("{shown}:{name}");
            if member.size() > stella_vex::MAX_DOCUMENT as u64 {
                out.rejected
                    .push((origin, "member larger than 64 MiB".into()));
                continue;
            }
            let mut bytes = Vec::new();
            match member
                .by_ref()
                .take(stella_vex::MAX_DOCUMENT as u64 + 1)
                .read_to_end(&mut bytes)
            {
                Ok(_) => read_document(&origin, &bytes, options, out),
                Err(e) => out.rejected.push((origin, e.to_string())),
            }
        }
        return Ok(());
    }
    if meta.len() > stella_vex::MAX_DOCUMENT as u64 {
        out.rejected.push((shown, "larger than 64 MiB".into()));
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    read_document(&shown, &bytes, options, out);
    Ok(())
}

fn read_document(origin: &str, bytes: &[u8], options: &stella_vex::Options, out: &mut Collected) {
    match stella_vex::parse_with(bytes, options) {
        Ok(document) => {
            out.rejected.extend(
                document
                    .rejected
                    .iter()
                    .map(|r| (origin.to_string(), r.to_string())),
            );
            out.documents.push((origin.to_string(), document));
        }
        Err(e) => out.rejected.push((origin.to_string(), e.to_string())),
    }
}

/// Downloads one document into memory, capped at [`MAX_DOWNLOAD`].
async fn download(url: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let written = stella_feeds::http::fetch(url, MAX_DOWNLOAD, |chunk| {
        bytes.extend_from_slice(chunk);
        Ok(())
    })
    .await?;
    eprintln!("downloaded {url} ({written} bytes)");
    Ok(bytes)
}

fn status(runtime: &tokio::runtime::Runtime, db: &VexDb) -> Exit {
    let result = runtime.block_on(async {
        Ok::<_, stella_store::Error>((
            db.vex_statements().await?,
            db.statement_counts().await?,
            db.last_import().await?,
        ))
    });
    let (statements, counts, last) = match result {
        Ok(x) => x,
        Err(e) => return crate::fail(Exit::Failure, &e.to_string()),
    };
    println!("snapshot {}", stella_vex::snapshot_hash(&statements));
    println!("{} statements", statements.len());
    for provider in counts {
        let total: i64 = provider.by_status.iter().map(|(_, n)| n).sum();
        let parts: Vec<String> = provider
            .by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        println!("{}: {total} ({})", provider.provider, parts.join(", "));
    }
    match last {
        Some((origin, at, accepted, rejected)) => {
            println!("last import {at}: {accepted} accepted, {rejected} rejected from {origin}")
        }
        None => println!("no import yet: stella vex import <path>"),
    }
    Exit::Ok
}

fn consensus(
    runtime: &tokio::runtime::Runtime,
    db: &VexDb,
    vuln: Option<&str>,
    product: Option<&str>,
    image: Option<&str>,
    trust: Option<&Path>,
    format: OutputFormat,
) -> Exit {
    let mut trust = match trust.map(read_trust).transpose() {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => return crate::fail(Exit::Usage, &e),
    };
    // The weights FeedSources give their documents, as scans apply them.
    match runtime.block_on(db.document_weights()) {
        Ok(weights) => {
            for (digest, weight) in weights {
                trust.documents.entry(digest).or_insert(weight);
            }
        }
        Err(e) => return crate::fail(Exit::Failure, &e.to_string()),
    }
    if let Some(image) = image
        && stella_vex::model::image_digest(image).is_none()
    {
        return crate::fail(
            Exit::Usage,
            &format!("--image {image:?} is not a sha256: digest"),
        );
    }
    // All statements: a vulnerability is matched by its aliases too.
    let statements = match runtime.block_on(db.vex_statements()) {
        Ok(s) => s,
        Err(e) => return crate::fail(Exit::Failure, &e.to_string()),
    };
    let about = |s: &stella_vex::Statement, v: &str| {
        s.vulnerability.id == v || s.vulnerability.aliases.iter().any(|a| a == v)
    };
    let decisions: Vec<Consensus> = match product {
        Some(p) if p.starts_with("pkg:") => {
            if let Err(e) = stella_vex::purl::Purl::parse(p) {
                return crate::fail(Exit::Usage, &format!("--product: {e}"));
            }
            let ids: std::collections::BTreeSet<&str> = statements
                .iter()
                .filter(|s| s.applies(image, p))
                .map(|s| s.vulnerability.id.as_str())
                .filter(|id| vuln.is_none_or(|v| *id == v))
                .collect();
            let ids: Vec<&str> = match vuln {
                Some(v) if ids.is_empty() => vec![v],
                _ => ids.into_iter().collect(),
            };
            ids.into_iter()
                .filter_map(|v| {
                    stella_vex::consensus::consensus_for(&statements, v, image, p, &trust)
                })
                .collect()
        }
        Some(p) => {
            let Some(digest) = stella_vex::model::image_digest(p) else {
                return crate::fail(
                    Exit::Usage,
                    &format!("--product {p:?} is neither a purl nor a sha256: digest"),
                );
            };
            let selected: Vec<stella_vex::Statement> = statements
                .into_iter()
                .filter(|s| s.product.image_digest().as_deref() == Some(digest.as_str()))
                .filter(|s| vuln.is_none_or(|v| about(s, v)))
                .collect();
            stella_vex::consensus(&selected, &trust)
        }
        None => {
            let selected: Vec<stella_vex::Statement> = statements
                .into_iter()
                .filter(|s| vuln.is_none_or(|v| about(s, v)))
                .collect();
            stella_vex::consensus(&selected, &trust)
        }
    };
    match format {
        OutputFormat::Json => {
            let value = serde_json::to_value(&decisions).unwrap_or_default();
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        OutputFormat::Table => {
            if decisions.is_empty() {
                println!("no VEX statements match");
            }
            for c in &decisions {
                let status = match (c.status, c.justification) {
                    (Some(s), Some(j)) => format!("{s} ({j})"),
                    (Some(s), None) => s.to_string(),
                    (None, _) => "undecided".to_string(),
                };
                println!("{}  {}  {status}", c.vulnerability, c.product);
                println!("    reason: {}", c.reason);
                let rows = c
                    .support
                    .iter()
                    .map(|x| ("support", x))
                    .chain(c.conflicts.iter().map(|x| ("conflict", x)))
                    .chain(c.disqualified.iter().map(|x| ("disqualified", x)));
                for (kind, claim) in rows {
                    let s = &claim.statement;
                    let mut line = format!(
                        "    {kind:<12} {} [{}] {} from {}",
                        s.status,
                        claim.weight,
                        s.provider,
                        s.source
                            .document_id
                            .as_deref()
                            .unwrap_or(&s.source.document_digest)
                    );
                    if let Some(note) = &claim.note {
                        line.push_str(&format!(" — {note}"));
                    }
                    println!("{line}");
                }
            }
        }
    }
    Exit::Ok
}

/// Reads and validates a trust configuration (YAML or JSON).
pub(crate) fn read_trust(path: &Path) -> Result<TrustConfig, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let config: TrustConfig = serde_saphyr::from_slice(&bytes)
        .map_err(|e| format!("{}: not a trust configuration: {e}", path.display()))?;
    config
        .validate()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(config)
}
