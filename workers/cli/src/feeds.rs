//! `stella feeds`: import advisory feeds into the catalog, and report what is there.

use crate::Exit;
use std::path::{Path, PathBuf};
use stella_advisories::{Advisory, matching};

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
    /// The combined snapshot Scans pin, advisories per source, each feed's sync state
    /// (FeedSources as `feedsource/<name>`, imports as `import`), the last import and the
    /// last delta. With `--catalog-url` (or `STELLA_CATALOG_URL`), the cluster's catalog.
    Status {
        /// One JSON document instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Fetch the public sources and import them, as `import` does with their URLs: OSV's
    /// per-ecosystem archives, the Debian Security Tracker, Alpine's secdb, CISA KEV and FIRST
    /// EPSS. Needs the network (or `--mirror`); offline kits stay the air-gap path.
    Sync {
        /// Only these sources (default: all).
        #[arg(long = "source", value_enum)]
        sources: Vec<SyncSource>,
        /// OSV ecosystems to fetch.
        #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_ECOSYSTEMS.map(String::from))]
        ecosystems: Vec<String>,
        /// Alpine releases whose secdb to fetch (`v3.21`).
        #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_ALPINE.map(String::from))]
        alpine: Vec<String>,
        /// Fetch every URL from this base instead of its own host (a mirror keeping the
        /// upstream paths under `/<host>/…`, e.g. `http://mirror.internal/feeds`).
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
        /// Print the URLs and fetch nothing.
        #[arg(long)]
        dry_run: bool,
    },
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

/// The public sources `feeds sync` fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SyncSource {
    Osv,
    Debian,
    Alpine,
    Kev,
    Epss,
}

/// OSV ecosystems fetched by default: the ones our analyzers find packages of.
const DEFAULT_ECOSYSTEMS: [&str; 9] = [
    "Debian",
    "Alpine",
    "npm",
    "PyPI",
    "Go",
    "Maven",
    "NuGet",
    "crates.io",
    "RubyGems",
];
/// Alpine releases fetched by default.
const DEFAULT_ALPINE: [&str; 2] = ["v3.20", "v3.21"];

/// The URLs of `feeds sync`, in fetch order.
pub(crate) fn sync_urls(
    sources: &[SyncSource],
    ecosystems: &[String],
    alpine: &[String],
    mirror: Option<&str>,
) -> Vec<String> {
    let wanted = |s: SyncSource| sources.is_empty() || sources.contains(&s);
    let mut urls = Vec::new();
    if wanted(SyncSource::Osv) {
        for ecosystem in ecosystems {
            let segment: String = ecosystem
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                        (b as char).to_string()
                    }
                    other => format!("%{other:02X}"),
                })
                .collect();
            urls.push(format!(
                "https://osv-vulnerabilities.storage.googleapis.com/{segment}/all.zip"
            ));
        }
    }
    if wanted(SyncSource::Debian) {
        urls.push("https://security-tracker.debian.org/tracker/data/json".into());
    }
    if wanted(SyncSource::Alpine) {
        for release in alpine {
            for repo in ["main", "community"] {
                urls.push(format!(
                    "https://secdb.alpinelinux.org/{release}/{repo}.json"
                ));
            }
        }
    }
    if wanted(SyncSource::Kev) {
        urls.push(
            "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
                .into(),
        );
    }
    if wanted(SyncSource::Epss) {
        urls.push("https://epss.cyentia.com/epss_scores-current.csv.gz".into());
    }
    match mirror {
        Some(base) => urls
            .into_iter()
            .map(|url| {
                let rest = url.strip_prefix("https://").unwrap_or(&url);
                format!("{}/{rest}", base.trim_end_matches('/'))
            })
            .collect(),
        None => urls,
    }
}

pub(crate) fn run(args: Args) -> Exit {
    let (runtime, store) =
        match crate::open_store(&args.storage.config(stella_store::default_data_dir)) {
            Ok(x) => x,
            Err((exit, message)) => return crate::fail(exit, &message),
        };
    match args.command {
        Command::Sync {
            sources,
            ecosystems,
            alpine,
            mirror,
            dry_run,
        } => {
            if let Some(m) = &mirror
                && !(m.starts_with("http://") || m.starts_with("https://"))
            {
                return crate::fail(
                    Exit::Usage,
                    &format!("--mirror {m:?}: expected an http:// or https:// URL"),
                );
            }
            let urls = sync_urls(&sources, &ecosystems, &alpine, mirror.as_deref());
            if dry_run {
                for url in &urls {
                    println!("{url}");
                }
                return Exit::Ok;
            }
            eprintln!("fetching {} sources", urls.len());
            let paths: Vec<PathBuf> = urls.iter().map(PathBuf::from).collect();
            import(&runtime, &store, &paths)
        }
        Command::Import { paths } => import(&runtime, &store, &paths),
        Command::Status { json } => {
            let status = runtime.block_on(async {
                let snapshot = store.advisories.feed_snapshot().await?;
                let counts = store.advisories.advisory_counts().await?;
                let feeds = store.advisories.feed_states().await?;
                let last = store.advisories.last_import().await?;
                let delta = store.advisories.last_feed_delta().await?;
                Ok::<_, stella_store::Error>((snapshot, counts, feeds, last, delta))
            });
            let (snapshot, counts, feeds, last, delta) = match status {
                Ok(x) => x,
                Err(e) => return crate::fail(Exit::Failure, &e.to_string()),
            };
            if json {
                let body = serde_json::json!({
                    "snapshot": snapshot,
                    "sources": counts.iter().map(|(s, n)| serde_json::json!({"source": s, "advisories": n})).collect::<Vec<_>>(),
                    "feeds": feeds.iter().map(|f| serde_json::json!({
                        "feed": f.feed, "snapshot": f.snapshot, "records": f.records,
                        "rejected": f.rejected, "syncedAt": f.synced_at,
                    })).collect::<Vec<_>>(),
                    "lastImport": last.as_ref().map(|(origin, at, accepted, rejected)| serde_json::json!({
                        "origin": origin, "at": at, "accepted": accepted, "rejected": rejected,
                    })),
                    "lastDelta": delta.as_ref().map(|d| serde_json::json!({
                        "seq": d.seq, "feed": d.feed, "at": d.at, "toSnapshot": d.to_snapshot,
                        "added": d.body.added.len(), "removed": d.body.removed.len(),
                        "changed": d.body.changed.len(), "keys": d.body.keys.len(),
                    })),
                });
                println!(
                    "{}",
                    stella_sbom::canonical::to_string_pretty(&body).trim_end()
                );
                return Exit::Ok;
            }
            println!("snapshot {snapshot}");
            for (source, count) in counts {
                println!("{source:<16} {count} advisories");
            }
            for feed in &feeds {
                println!(
                    "feed {:<30} {} records, {} rejected, synced {}, snapshot {}",
                    feed.feed,
                    feed.records,
                    feed.rejected,
                    feed.synced_at,
                    short(&feed.snapshot)
                );
            }
            match last {
                Some((origin, at, accepted, rejected)) => println!(
                    "last import {at}: {accepted} accepted, {rejected} rejected from {origin}"
                ),
                None if feeds.is_empty() => println!("no import yet: stella feeds import <path>"),
                None => {}
            }
            if let Some(d) = delta {
                println!(
                    "last delta #{} {} ({}): {} added, {} removed, {} changed, {} package keys",
                    d.seq,
                    d.at,
                    d.feed,
                    d.body.added.len(),
                    d.body.removed.len(),
                    d.body.changed.len(),
                    d.body.keys.len()
                );
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
        Command::Kit { paths, out } => match stella_feeds::build_kit(&paths, &out) {
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

/// The first 12 hex digits of a `sha256:` digest.
fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

async fn store_signals(
    store: &stella_store::Store,
    signals: stella_feeds::Signals,
) -> Result<String, String> {
    match signals {
        stella_feeds::Signals::Kev(kev) => {
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
        stella_feeds::Signals::Epss(epss) => {
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

/// Largest download accepted from an http(s) feed URL.
const MAX_DOWNLOAD: u64 = 4 << 30;

/// `feeds import` (and `feeds sync`, with the sources' URLs): files, directories, zips, kits
/// and http(s) URLs; KEV and EPSS documents (also downloaded ones) as exploit signals.
fn import(
    runtime: &tokio::runtime::Runtime,
    store: &stella_store::Store,
    paths: &[PathBuf],
) -> Exit {
    let mut records = stella_feeds::Records::default();
    let downloads = std::env::temp_dir().join(format!("stella-feeds-{}", std::process::id()));
    for path in paths {
        let shown = path.display().to_string();
        let result = if shown.starts_with("http://") || shown.starts_with("https://") {
            let downloaded = runtime.block_on(download(&shown, &downloads));
            // A downloaded KEV catalog or EPSS file: exploit signals, stored beside.
            if let Ok(file) = &downloaded
                && let Some(signals) = stella_feeds::exploit_signals(file)
            {
                match signals.and_then(|s| runtime.block_on(store_signals(store, s))) {
                    Ok(message) => {
                        println!("{shown}: {message}");
                        continue;
                    }
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&downloads);
                        return crate::fail(Exit::Usage, &format!("{shown}: {e}"));
                    }
                }
            }
            downloaded.and_then(|file| {
                let before = records.rejected.len();
                let r = stella_feeds::collect(&file, &mut records);
                // Name the URL, not the temporary file, in rejections.
                let temp = file.display().to_string();
                for (origin, _) in &mut records.rejected[before..] {
                    *origin = origin.replacen(&temp, &shown, 1);
                }
                r
            })
        } else if let Some(signals) = stella_feeds::exploit_signals(path) {
            // CISA KEV and FIRST EPSS files: exploit signals, stored beside.
            match signals.and_then(|s| runtime.block_on(store_signals(store, s))) {
                Ok(message) => {
                    println!("{shown}: {message}");
                    continue;
                }
                Err(e) => Err(e),
            }
        } else {
            stella_feeds::collect(path, &mut records)
        };
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&downloads);
            return crate::fail(Exit::Usage, &format!("{shown}: {e}"));
        }
    }
    let _ = std::fs::remove_dir_all(&downloads);
    for kit in &records.kits {
        eprintln!("{kit}");
    }
    let (accepted, rejected) = (&records.advisories, &records.rejected);
    let result = runtime.block_on(async {
        let prepared = stella_store::prepare_advisories(accepted);
        let rows = stella_store::advisory_rows(accepted, &prepared);
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
    let written = stella_feeds::http::fetch(url, MAX_DOWNLOAD, |chunk| {
        file.write_all(chunk).map_err(|e| e.to_string())
    })
    .await?;
    eprintln!("downloaded {url} ({written} bytes)");
    Ok(target)
}
