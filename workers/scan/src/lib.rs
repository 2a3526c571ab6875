//! The scan pipeline for one image: read every layer into a fragment (in parallel, or from the
//! fragment cache), merge them into the union filesystem, run the analyzers, attribute each
//! package to the layer that introduced it, and produce the [`Inventory`] the SBOMs are made
//! from. No I/O beyond the image's own blobs and the cache.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use stella_acquire::{Image, Limits};
use stella_analyzers::ANALYZER_VERSION;
use stella_layerfs::{EntryKind, Filesystem, Fragment};
use stella_sbom::{Component, ImageInfo, Inventory, Relationship, View};

pub mod usage;

/// Errors of a scan.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Acquire(#[from] stella_acquire::Error),
    #[error("layer {digest}: {source}")]
    Layer {
        digest: String,
        source: stella_layerfs::Error,
    },
    #[error("layer {digest}: {reason}")]
    LayerIntegrity { digest: String, reason: String },
    #[error("{path}: {source}")]
    Rootfs {
        path: String,
        source: stella_layerfs::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use stella_layerfs::FragmentCache;

/// Progress events, for bars on a terminal.
#[derive(Clone, Debug)]
pub enum Event {
    LayerStarted {
        index: usize,
        digest: String,
        size: u64,
    },
    LayerDone {
        index: usize,
        cached: bool,
        uncompressed_bytes: u64,
    },
    Analyzing,
}

/// How to scan.
pub struct Options<'a> {
    pub limits: Limits,
    /// Layers read at once (defaults to the number of CPUs).
    pub parallelism: usize,
    pub cache: Option<&'a dyn FragmentCache>,
    pub progress: Option<&'a (dyn Fn(Event) + Sync)>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            parallelism: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            cache: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("limits", &self.limits)
            .field("parallelism", &self.parallelism)
            .finish()
    }
}

/// What a scan read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub layers: usize,
    pub layers_from_cache: usize,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
}

/// The result of scanning an image.
#[derive(Debug)]
pub struct Outcome {
    pub inventory: Inventory,
    pub stats: Stats,
}

/// Scans an acquired image.
pub fn scan(image: &Image, options: &Options) -> Result<Outcome> {
    let (mut fragments, stats) = read_fragments(image, options)?;
    let fs = recapture(&mut fragments, |index, capture| {
        let digest = image.layers[index].digest.to_string();
        let mut reader = image.open_layer(index, &options.limits)?;
        let fragment = stella_layerfs::read_layer(&mut reader, capture);
        if let Some(reason) = reader.failure() {
            return Err(Error::LayerIntegrity { digest, reason });
        }
        let fragment = fragment.map_err(|source| Error::Layer { digest, source })?;
        reader.finish()?;
        Ok(fragment)
    })?;
    if let Some(progress) = options.progress {
        progress(Event::Analyzing);
    }
    let inventory = inventory(
        &fragments,
        &fs,
        image_info(image),
        Some(&image.config.config),
    );
    Ok(Outcome { inventory, stats })
}

/// What an SBOM records of an acquired image: identity, name, tags, platform, user, layers.
pub fn image_info(image: &Image) -> ImageInfo {
    let (repository, _) = split_reference(&image.source);
    ImageInfo {
        digest: image.digest().to_string(),
        config_digest: image.config_digest.to_string(),
        name: image.source.clone(),
        repository,
        tags: image.tags.clone(),
        created: image.config.created.clone(),
        os: image.config.os.clone(),
        architecture: image.config.architecture.clone(),
        user: image.config.config.user.clone(),
        layers: image.layers.iter().map(|l| l.digest.to_string()).collect(),
    }
}

/// A root filesystem on disk (a build stage's output, an unpacked image) to scan as an image
/// of one layer.
#[derive(Clone, Debug)]
pub struct Rootfs<'a> {
    pub path: &'a std::path::Path,
    /// How SBOMs name it (BuildKit: the target's name, the directory's last component).
    pub name: String,
    /// OCI architecture (`amd64`, `arm64`, …).
    pub architecture: String,
    /// Build time (RFC 3339), e.g. from `SOURCE_DATE_EPOCH`; none: the SBOMs say the epoch.
    pub created: Option<String>,
}

/// Scans a root filesystem directory. It is read once (metadata of every entry, the bytes of
/// what analyzers want), never written, and nothing in it is executed or followed out of it:
/// symlinks resolve inside `path` as they would inside an image. Its identity (the `digest`
/// of the inventory and of its one layer) is the sha256 of that reading: the same tree gives
/// the same SBOM, a changed file another.
pub fn scan_rootfs(rootfs: &Rootfs, options: &Options) -> Result<Outcome> {
    let failed = |source| Error::Rootfs {
        path: rootfs.path.display().to_string(),
        source,
    };
    let fragment =
        stella_layerfs::read_dir(rootfs.path, &stella_analyzers::Analyzers).map_err(failed)?;
    let mut fragments = [fragment];
    let fs = recapture(&mut fragments, |_, capture| {
        stella_layerfs::read_dir(rootfs.path, capture).map_err(failed)
    })?;
    let [fragment] = fragments;
    if let Some(progress) = options.progress {
        progress(Event::Analyzing);
    }
    let digest = tree_digest(&fragment);
    let info = ImageInfo {
        digest: digest.clone(),
        config_digest: digest.clone(),
        name: rootfs.name.clone(),
        repository: None,
        tags: vec![],
        created: rootfs.created.clone(),
        os: "linux".into(),
        architecture: rootfs.architecture.clone(),
        user: None,
        layers: vec![digest],
    };
    let fragments = [fragment];
    let inventory = inventory(&fragments, &fs, info, None);
    let stats = Stats {
        layers: 1,
        ..Stats::default()
    };
    Ok(Outcome { inventory, stats })
}

/// A package-database directory that is a symlink into another directory of the image
/// (`var/lib/dpkg → /opt/dpkg`, Fedora's `var/lib/rpm → ../../usr/lib/sysimage/rpm`) was
/// captured where it lands only if that path is one the analyzers want: the layers holding
/// wanted files under such targets are read again (`reread`, only those), capturing what the
/// analyzers want there, and the files join their fragments.
/// Returns the merged filesystem of the fragments as they end up (built once when nothing is
/// redirected).
fn recapture(
    fragments: &mut [Fragment],
    mut reread: impl FnMut(usize, &dyn stella_layerfs::Capture) -> Result<Fragment>,
) -> Result<Filesystem> {
    let fs = Filesystem::build(fragments.iter());
    let pairs = stella_analyzers::redirected_databases(&fs);
    if pairs.is_empty() {
        return Ok(fs);
    }
    let capture = stella_analyzers::Redirected { pairs };
    for (index, fragment) in fragments.iter_mut().enumerate() {
        let wanted = fragment.entries.iter().any(|e| {
            matches!(e.kind, EntryKind::File { .. })
                && stella_layerfs::Capture::wants(&capture, &e.path)
                && !fragment.files.contains_key(&e.path)
        });
        if wanted {
            let extra = reread(index, &capture)?;
            fragment.files.extend(extra.files);
        }
    }
    Ok(Filesystem::build(fragments.iter()))
}

/// The sha256 of a directory's reading: every entry (path, kind, size, mode, link target) and
/// every captured file's bytes, length-prefixed so no two readings collide by concatenation.
fn tree_digest(fragment: &Fragment) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    for entry in &fragment.entries {
        field(entry.path.as_bytes());
        field(format!("{:?}", entry.kind).as_bytes());
    }
    for (path, bytes) in &fragment.files {
        field(path.as_bytes());
        field(bytes);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// The inventory of the union of `fragments` (bottom first; `info.layers` are their digests):
/// analyzers, layer attribution, ELF links, and the entrypoint's trace when `config` has one.
fn inventory(
    fragments: &[Fragment],
    fs: &Filesystem,
    info: ImageInfo,
    config: Option<&stella_acquire::RuntimeConfig>,
) -> Inventory {
    let analysis = stella_analyzers::analyze(fs);
    let layers = attribute(fragments, fs, &analysis.packages);
    let relationships = analysis
        .links_to()
        .into_iter()
        .map(|(from, to)| Relationship {
            from,
            to,
            kind: "links_to".into(),
        })
        .collect();
    let properties = analysis.elf_properties();
    let entry_trace = config.and_then(|config| trace_entrypoint(fs, config));
    let used = entry_trace
        .as_ref()
        .map(|trace| usage::used_packages(trace, &analysis, fs))
        .unwrap_or_default();
    let components = analysis
        .packages
        .into_iter()
        .zip(layers)
        .zip(properties)
        .enumerate()
        .map(|(i, ((package, layer), properties))| Component {
            package,
            layer_digest: layer.map(|i| info.layers[i].clone()),
            used_by_entrypoint: used.contains(&i),
            properties,
        })
        .collect();
    let mut errors = analysis.errors;
    for (digest, fragment) in info.layers.iter().zip(fragments) {
        for skipped in &fragment.skipped {
            errors.push(format!("layer {digest}: skipped {skipped}"));
        }
    }
    Inventory {
        image: info,
        distro: analysis.distro,
        components,
        analyzer_version: ANALYZER_VERSION.to_string(),
        errors,
        relationships,
        entry_trace,
        view: View::Inventory,
        origin: None,
    }
}

/// EntryTrace of the image's ENTRYPOINT / CMD, when it has either.
fn trace_entrypoint(
    fs: &Filesystem,
    config: &stella_acquire::RuntimeConfig,
) -> Option<stella_entrytrace::Trace> {
    let entrypoint = config.entrypoint.clone().unwrap_or_default();
    let cmd = config.cmd.clone().unwrap_or_default();
    if entrypoint.is_empty() && cmd.is_empty() {
        return None;
    }
    let config = stella_entrytrace::Config {
        entrypoint,
        cmd,
        env: config.env.clone().unwrap_or_default(),
        working_dir: config.working_dir.clone(),
    };
    Some(stella_entrytrace::trace(
        fs,
        &config,
        &stella_entrytrace::Options::default(),
    ))
}

/// Reads every layer into a fragment: from the cache when it has it, else by streaming the
/// blob (verified) through the tar reader, several layers at once.
pub fn read_fragments(image: &Image, options: &Options) -> Result<(Vec<Fragment>, Stats)> {
    let count = image.layers.len();
    let slots: Vec<Mutex<Option<Result<LayerRead>>>> =
        (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = options.parallelism.clamp(1, count.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let result = read_one(image, index, options);
                    *slots[index].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut fragments = Vec::with_capacity(count);
    let mut stats = Stats {
        layers: count,
        ..Stats::default()
    };
    for slot in slots {
        let result = slot
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .expect("every layer was read");
        let (fragment, cached, compressed, uncompressed) = result?;
        stats.layers_from_cache += usize::from(cached);
        stats.compressed_bytes += compressed;
        stats.uncompressed_bytes += uncompressed;
        fragments.push(fragment);
    }
    Ok((fragments, stats))
}

/// A layer's fragment, whether it came from the cache, and its compressed and uncompressed sizes.
type LayerRead = (Fragment, bool, u64, u64);

fn read_one(image: &Image, index: usize, options: &Options) -> Result<LayerRead> {
    let layer = &image.layers[index];
    let digest = layer.digest.to_string();
    if let Some(cache) = options.cache
        && let Some(fragment) = cache.get(&digest, ANALYZER_VERSION)
    {
        if let Some(progress) = options.progress {
            progress(Event::LayerDone {
                index,
                cached: true,
                uncompressed_bytes: 0,
            });
        }
        return Ok((fragment, true, 0, 0));
    }
    if let Some(progress) = options.progress {
        progress(Event::LayerStarted {
            index,
            digest: digest.clone(),
            size: layer.size,
        });
    }
    let mut reader = image.open_layer(index, &options.limits)?;
    let fragment = stella_layerfs::read_layer(&mut reader, &stella_analyzers::Analyzers);
    // An integrity failure (digest mismatch, bomb) explains a tar error better than the tar error.
    if let Some(reason) = reader.failure() {
        return Err(Error::LayerIntegrity { digest, reason });
    }
    let fragment = fragment.map_err(|source| Error::Layer {
        digest: digest.clone(),
        source,
    })?;
    let stats = reader.finish()?;
    if let Some(cache) = options.cache {
        cache.put(&digest, ANALYZER_VERSION, &fragment);
    }
    if let Some(progress) = options.progress {
        progress(Event::LayerDone {
            index,
            cached: false,
            uncompressed_bytes: stats.uncompressed_bytes,
        });
    }
    Ok((
        fragment,
        false,
        stats.compressed_bytes,
        stats.uncompressed_bytes,
    ))
}

/// For each package, the index of the layer that introduced it: for single-file databases, the
/// first layer from which the package is present in every later version of the file; for
/// per-package files (distroless `status.d`), the layer that last wrote the file.
pub fn attribute(
    fragments: &[Fragment],
    fs: &Filesystem,
    packages: &[stella_analyzers::Package],
) -> Vec<Option<usize>> {
    let paths: BTreeSet<&str> = packages.iter().map(|p| p.evidence.path.as_str()).collect();
    // Each layer's whiteouts, once: looking them up per package path was quadratic.
    let whiteouts: Vec<BTreeSet<&str>> = fragments
        .iter()
        .map(|f| {
            f.entries
                .iter()
                .filter(|e| e.kind == EntryKind::Whiteout)
                .map(|e| e.path.as_str())
                .collect()
        })
        .collect();
    let mut first_seen: BTreeMap<&str, Option<BTreeMap<String, usize>>> = BTreeMap::new();
    for path in paths {
        let mut seen: Option<BTreeMap<String, usize>> = None;
        for (index, fragment) in fragments.iter().enumerate() {
            if whiteouts[index].contains(path)
                && let Some(seen) = seen.as_mut()
            {
                seen.clear();
            }
            let Some(bytes) = fragment.files.get(path) else {
                continue;
            };
            let Some(keys) = stella_analyzers::database_keys(path, bytes) else {
                seen = None;
                break;
            };
            let map = seen.get_or_insert_with(BTreeMap::new);
            map.retain(|k, _| keys.contains(k));
            for key in keys {
                map.entry(key).or_insert(index);
            }
        }
        first_seen.insert(path, seen);
    }
    packages
        .iter()
        .map(|p| match first_seen.get(p.evidence.path.as_str()) {
            Some(Some(map)) => map.get(&stella_analyzers::package_key(p)).copied(),
            // Nested archives (`outer.jar!/inner.jar`) came with their outer file.
            _ => fs.content_layer(p.evidence.path.split("!/").next().unwrap_or_default()),
        })
        .collect()
}

/// `registry/repo:tag@digest` → (repository, tag-or-digest). Paths give no repository.
pub fn split_reference(source: &str) -> (Option<String>, Option<String>) {
    if source.starts_with('/')
        || source.starts_with('.')
        || source.ends_with(".tar")
        || std::path::Path::new(source).exists()
    {
        return (None, None);
    }
    let (name, digest) = match source.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (source, None),
    };
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (
                Some(name[..at].to_string()),
                digest.or_else(|| Some(name[at + 1..].to_string())),
            )
        }
        None => (Some(name.to_string()), digest),
    }
}
