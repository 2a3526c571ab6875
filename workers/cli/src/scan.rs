//! `stella scan`.

use crate::Exit;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use stella_acquire::Platform;
use stella_scan::{Event, Options};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: a registry reference (`registry/repo:tag`, `…@sha256:…`), an OCI layout
    /// directory (optionally `dir:tag`) or a docker-archive tar.
    image: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::CyclonedxJson)]
    format: Format,
    /// Write the output here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Platform to select from a multi-platform image.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// Layers read in parallel (default: the number of CPUs).
    #[arg(long)]
    parallelism: Option<usize>,
    /// Never draw progress bars.
    #[arg(long, short)]
    quiet: bool,
    /// Where the catalog (SQLite) and the artifact store (a directory) live.
    #[arg(long, env = "STELLA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Read every layer even when its analysis is cached.
    #[arg(long)]
    no_cache: bool,
    /// Talk to the registry over plain HTTP (only for registries on a trusted network).
    #[arg(long)]
    insecure_registry: bool,
    /// Extra registry credentials: a Kubernetes `.dockerconfigjson` (or Docker config.json)
    /// file; `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` is always read.
    #[arg(long, value_name = "FILE")]
    registry_auth_file: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Format {
    CyclonedxJson,
    SpdxJson,
    Table,
}

pub(crate) fn run(args: Args) -> Exit {
    let platform: Platform = match args.platform.parse() {
        Ok(p) => p,
        Err(e) => return fail(Exit::Usage, &e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(Exit::Failure, &format!("failed to start the runtime: {e}")),
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(stella_store::default_data_dir);
    let store = match runtime.block_on(stella_store::Store::open_embedded(&data_dir)) {
        Ok(store) => store,
        Err(e) => return fail(Exit::Failure, &format!("{}: {e}", data_dir.display())),
    };
    let image = match open(&args, &platform, &data_dir, &runtime) {
        Ok(image) => image,
        Err((exit, message)) => return fail(exit, &message),
    };
    let cache = stella_store::ObjectFragmentCache::new(store.clone(), runtime.handle().clone());
    let bars = Bars::new(!args.quiet && std::io::stderr().is_terminal(), &image);
    let progress = |event: Event| bars.on(event);
    let mut options = Options {
        progress: Some(&progress),
        ..Options::default()
    };
    if !args.no_cache {
        options.cache = Some(&cache);
    }
    if let Some(p) = args.parallelism {
        options.parallelism = p.max(1);
    }
    // The scan blocks (it reads layers on threads and the cache blocks on the runtime), so it
    // runs outside the runtime's workers.
    let outcome =
        std::thread::scope(|scope| scope.spawn(|| stella_scan::scan(&image, &options)).join());
    let outcome = match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(stella_scan::Error::Acquire(e))) => {
            return fail(exit_for(&e), &format!("{}: {e}", args.image));
        }
        Ok(Err(e)) => return fail(Exit::CorruptImage, &format!("{}: {e}", args.image)),
        Err(_) => return fail(Exit::Failure, "the scan panicked"),
    };
    bars.finish();
    if let Err(e) = runtime.block_on(record(&store, &image, &outcome.inventory)) {
        return fail(
            Exit::Failure,
            &format!("failed to store the results in {}: {e}", data_dir.display()),
        );
    }
    let inventory = outcome.inventory;
    for error in &inventory.errors {
        eprintln!("warning: {error}");
    }
    let rendered = match args.format {
        Format::CyclonedxJson => stella_sbom::cyclonedx::to_json(&inventory),
        Format::SpdxJson => stella_sbom::spdx::to_json(&inventory),
        Format::Table => table(&inventory),
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, rendered.as_bytes()),
        None => std::io::stdout().lock().write_all(rendered.as_bytes()),
    };
    match written {
        Ok(()) => Exit::Ok,
        Err(e) => fail(Exit::Failure, &format!("failed to write output: {e}")),
    }
}

/// Stores the SBOMs (CycloneDX and SPDX, inventory view) and records the image and its
/// artifacts in the catalog.
async fn record(
    store: &stella_store::Store,
    image: &stella_acquire::Image,
    inventory: &stella_sbom::Inventory,
) -> stella_store::Result<()> {
    use sha2::{Digest, Sha256};
    let digest = &inventory.image.digest;
    let documents = [
        (
            "cdx.json",
            "cyclonedx-json",
            stella_sbom::cyclonedx::to_json(inventory),
        ),
        (
            "spdx.json",
            "spdx-json",
            stella_sbom::spdx::to_json(inventory),
        ),
    ];
    for (extension, format, text) in documents {
        let key = stella_store::keys::image_artifact(digest, "inventory", extension);
        let sha = format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())));
        let size = text.len() as i64;
        store.put(&key, text.into_bytes()).await?;
        store
            .catalog
            .record_artifact(&stella_store::ArtifactRow {
                key,
                image_digest: digest.clone(),
                kind: "sbom".into(),
                format: format.into(),
                view: Some("inventory".into()),
                digest: sha,
                size,
            })
            .await?;
    }
    store
        .catalog
        .record_image(&stella_store::ImageRow {
            digest: digest.clone(),
            config_digest: inventory.image.config_digest.clone(),
            name: inventory.image.name.clone(),
            os: inventory.image.os.clone(),
            architecture: inventory.image.architecture.clone(),
            created: inventory.image.created.clone(),
            analyzer_version: inventory.analyzer_version.clone(),
            components: inventory.components.len() as i64,
            layers: image
                .layers
                .iter()
                .map(|l| (l.digest.to_string(), l.size as i64, l.media_type.clone()))
                .collect(),
        })
        .await
}

fn fail(exit: Exit, message: &str) -> Exit {
    eprintln!("stella: {message}");
    exit
}

/// `dir:tag` → (dir, tag) when `dir` exists and the whole string does not.
fn split_tag(image: &str) -> (PathBuf, Option<String>) {
    if !Path::new(image).exists()
        && let Some((dir, tag)) = image.rsplit_once(':')
        && Path::new(dir).is_dir()
    {
        return (PathBuf::from(dir), Some(tag.to_string()));
    }
    (PathBuf::from(image), None)
}

/// Opens the image: a local layout or archive when the argument names an existing path,
/// otherwise a registry reference.
fn open(
    args: &Args,
    platform: &Platform,
    data_dir: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<stella_acquire::Image, (Exit, String)> {
    let (path, tag) = split_tag(&args.image);
    let result = if path.is_dir() {
        stella_acquire::layout::open(&path, tag.as_deref(), platform)
    } else if path.exists() {
        stella_acquire::open_local(&path, platform)
    } else {
        let looks_local = args.image.starts_with('/')
            || args.image.starts_with('.')
            || args.image.ends_with(".tar");
        let reference = match stella_acquire::Reference::parse(&args.image) {
            Ok(r) if !looks_local => r,
            _ => {
                return Err((
                    Exit::Usage,
                    format!(
                        "{}: no such OCI layout directory or image tar, nor a valid image reference",
                        args.image
                    ),
                ));
            }
        };
        let credentials = stella_acquire::Credentials::load(&args.registry_auth_file)
            .map_err(|e| (Exit::Usage, e.to_string()))?;
        let client = stella_acquire::RegistryClient::new(credentials, args.insecure_registry)
            .map_err(|e| (Exit::Failure, e.to_string()))?;
        let blobs = data_dir.join("blobs");
        runtime.block_on(std::sync::Arc::new(client).open(
            &reference,
            platform,
            &blobs,
            runtime.handle().clone(),
        ))
    };
    result.map_err(|e| (exit_for(&e), format!("{}: {e}", args.image)))
}

fn exit_for(e: &stella_acquire::Error) -> Exit {
    use stella_acquire::Error as E;
    match e {
        E::UnknownSource { .. }
        | E::NoMatchingPlatform { .. }
        | E::Registry { status: 404, .. } => Exit::Usage,
        E::Unreachable { .. } => Exit::Unreachable,
        E::Auth { .. } => Exit::Auth,
        E::Io { .. } | E::Registry { .. } => Exit::Failure,
        _ => Exit::CorruptImage,
    }
}

/// Progress bars on a terminal, one per layer; nothing otherwise.
struct Bars {
    multi: Option<MultiProgress>,
    layers: Mutex<Vec<Option<ProgressBar>>>,
}

impl Bars {
    fn new(enabled: bool, image: &stella_acquire::Image) -> Bars {
        let multi = enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Bars {
            multi,
            layers: Mutex::new(vec![None; image.layers.len()]),
        }
    }

    fn on(&self, event: Event) {
        let Some(multi) = &self.multi else { return };
        let mut layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::LayerStarted {
                index,
                digest,
                size,
            } => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!(
                    "layer {} {} ({} MB)",
                    index + 1,
                    &digest[7..19],
                    size / 1_000_000
                ));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                layers[index] = Some(bar);
            }
            Event::LayerDone {
                index,
                cached,
                uncompressed_bytes,
            } => {
                let bar = layers[index]
                    .take()
                    .unwrap_or_else(|| multi.add(ProgressBar::new_spinner()));
                let how = if cached {
                    "cached".to_string()
                } else {
                    format!("{} MB read", uncompressed_bytes / 1_000_000)
                };
                bar.finish_with_message(format!("layer {} done ({how})", index + 1));
            }
            Event::Analyzing => {
                let _ = multi.println("analyzing");
            }
        }
    }

    fn finish(&self) {
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

fn table(inventory: &stella_sbom::Inventory) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "VERSION".into(),
        "TYPE".into(),
        "LAYER".into(),
    ]];
    for c in &inventory.components {
        let layer = c
            .layer_digest
            .as_deref()
            .map(|d| d[7..19].to_string())
            .unwrap_or_else(|| "-".into());
        let kind = format!("{:?}", c.package.ecosystem).to_lowercase();
        rows.push([
            c.package.name.clone(),
            c.package.version.clone(),
            kind,
            layer,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let distro = inventory
        .distro
        .as_ref()
        .and_then(|d| d.pretty_name.clone())
        .unwrap_or_else(|| "unknown OS".into());
    out.push_str(&format!(
        "{} ({}) — {}, {} packages\n",
        inventory.image.name,
        inventory.image.digest,
        distro,
        inventory.components.len()
    ));
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
