//! Deterministic analyzers. Each reads installed-state metadata from the merged filesystem and
//! reports packages with the evidence that proves them: no confidences, no guessing. A missing
//! or unreadable database is recorded as such; nothing is fabricated.

pub mod apk;
pub mod dotnet;
pub mod dpkg;
pub mod elf;
pub mod golang;
pub mod java;
pub mod model;
pub mod npm;
pub mod osrelease;
pub mod purl;
pub mod python;
pub mod rpm;
pub mod rust;

pub use model::{Analysis, Distro, Ecosystem, Evidence, Package};

use stella_layerfs::Filesystem;

/// Version of the analyzer set: part of every cache key and recorded in every SBOM. Bump the
/// suffix whenever [`wants`] or what an analyzer extracts changes: cached layer fragments of
/// an older set would otherwise be reused without the files the new set needs. It ends with
/// EntryTrace's [`stella_entrytrace::CAPTURE_VERSION`], whose scripts the same fragments hold.
pub const ANALYZER_VERSION: &str = concat!(
    "stella-analyzers/",
    env!("CARGO_PKG_VERSION"),
    "+elf.1+entrytrace.1"
);

/// Errors of one analyzer on one database.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("{path}: {reason}")]
    Corrupt {
        path: String,
        #[source]
        reason: Corruption,
    },
}

/// What is wrong with a corrupt OS package database, by format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Corruption {
    #[error(transparent)]
    Dpkg(#[from] dpkg::Error),
    #[error(transparent)]
    Apk(#[from] apk::Error),
    #[error(transparent)]
    Rpm(#[from] rpm::Error),
}

/// Whether any analyzer needs the bytes of `path` (a normalised, root-relative path).
pub fn wants(path: &str) -> bool {
    osrelease::wants(path)
        || dpkg::wants(path)
        || apk::wants(path)
        || rpm::wants(path)
        || python::wants(path)
        || npm::wants(path)
        || java::wants(path)
        || dotnet::wants(path)
        || elf::wants(path)
}

/// What the analyzers capture from layers: the files [`wants`] names, with Java archives
/// condensed to their metadata as they are read, and the build information of Go binaries.
#[derive(Debug, Clone, Copy)]
pub struct Analyzers;

impl stella_layerfs::Capture for Analyzers {
    fn wants(&self, path: &str) -> bool {
        wants(path)
    }

    /// Executables (any `x` bit) and shared objects (`*.so*`), 64 bytes to 256 MiB, are read
    /// for their ELF facts, Go build information and cargo-auditable crate lists.
    fn wants_entry(&self, path: &str, mode: u32, size: u64) -> bool {
        wants(path)
            || ((mode & 0o111 != 0 || elf::wants_name(path)) && (64..=256 << 20).contains(&size))
            || stella_entrytrace::wants_entry(path, mode, size)
    }

    fn condense(&self, path: &str, bytes: Vec<u8>) -> Option<Vec<u8>> {
        if java::wants(path) {
            Some(java::condense(&bytes))
        } else if wants(path) {
            Some(bytes)
        } else if elf::is_elf(&bytes) {
            let inner = golang::condense(&bytes).or_else(|| rust::condense(&bytes));
            elf::condense(&bytes, inner)
        } else {
            // Shell scripts and the files they source, for EntryTrace.
            stella_entrytrace::condense(path, &bytes)
        }
    }
}

/// Package-database directories the layer walk captures by their own paths, and the
/// ecosystem each holds.
const DATABASE_DIRS: [(&str, Ecosystem); 3] = [
    ("var/lib/dpkg", Ecosystem::Deb),
    ("lib/apk/db", Ecosystem::Apk),
    ("var/lib/rpm", Ecosystem::Rpm),
];

/// The package-database directories that are symlinks (or under one) to another directory of
/// the image holding entries (`var/lib/dpkg → /opt/dpkg`): (the database's own path, where it
/// resolves). The layer walk captures files by their own paths, so what lies behind such a
/// link is captured by a second read with [`Redirected`].
pub fn redirected_databases(fs: &Filesystem) -> Vec<(String, String)> {
    DATABASE_DIRS
        .iter()
        .filter_map(|(dir, _)| {
            let target = fs.resolve(dir).filter(|t| t != dir)?;
            fs.under(&target).next()?;
            Some((dir.to_string(), target))
        })
        .collect()
}

/// What a second read of the layers captures: the files under a redirected database
/// directory's target that the analyzers want at the directory's own path.
#[derive(Clone, Debug)]
pub struct Redirected {
    /// (database directory, its target), from [`redirected_databases`].
    pub pairs: Vec<(String, String)>,
}

impl stella_layerfs::Capture for Redirected {
    fn wants(&self, path: &str) -> bool {
        self.pairs.iter().any(|(dir, target)| {
            path.strip_prefix(target.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| wants(&format!("{dir}/{rest}")))
        })
    }
}

/// A package-database directory that is a symlink to another directory of the image holding
/// files while no package of its kind was found, even after the second read: said so, as a
/// degraded result, rather than reported as an image without packages.
fn unread_databases(fs: &Filesystem, analysis: &mut Analysis) {
    for (dir, ecosystem) in DATABASE_DIRS {
        let Some(target) = fs.resolve(dir).filter(|t| t != dir) else {
            continue;
        };
        let found = analysis.packages.iter().any(|p| p.ecosystem == ecosystem);
        if found || fs.under(&target).next().is_none() {
            continue;
        }
        analysis.errors.push(format!(
            "/{dir} is a symlink to /{target}: no package database was found behind it"
        ));
    }
}

/// Runs every OS analyzer over the merged filesystem.
pub fn analyze(fs: &Filesystem) -> Analysis {
    let distro = osrelease::detect(fs);
    let mut analysis = Analysis {
        distro: distro.clone(),
        ..Analysis::default()
    };
    let dpkg = dpkg::analyze_within(fs, distro.as_ref()).map(|(packages, left_out)| {
        analysis.errors.extend(left_out);
        packages
    });
    for result in [
        dpkg,
        apk::analyze(fs, distro.as_ref()),
        rpm::analyze(fs, distro.as_ref()),
    ] {
        match result {
            Ok(mut packages) => analysis.packages.append(&mut packages),
            Err(error) => analysis.errors.push(error.to_string()),
        }
    }
    unread_databases(fs, &mut analysis);
    // Language packages, except those whose metadata an OS package owns (a distro's
    // python3-six is reported once, as the deb).
    let owned: std::collections::BTreeSet<&str> = analysis
        .packages
        .iter()
        .flat_map(|p| p.files.iter().map(String::as_str))
        .collect();
    let mut language = Vec::new();
    for result in [
        python::analyze(fs),
        npm::analyze(fs),
        java::analyze(fs),
        golang::analyze(fs),
        dotnet::analyze(fs),
        rust::analyze(fs),
    ] {
        match result {
            Ok(packages) => language.extend(packages.into_iter().filter(|p| {
                // A nested archive is owned with the archive holding it.
                let outer = p.evidence.path.split("!/").next().unwrap_or_default();
                !owned.contains(format!("/{outer}").as_str())
            })),
            Err(error) => analysis.errors.push(error.to_string()),
        }
    }
    analysis.packages.append(&mut language);
    analysis.binaries = elf::link(fs);
    let owned = owners(fs, &analysis.packages);
    for (path, facts) in &analysis.binaries.objects {
        if !owned.contains_key(path)
            && matches!(
                facts.kind.as_str(),
                "executable" | "pie-executable" | "shared-object"
            )
        {
            analysis.packages.push(binary_package(path, facts));
        }
    }
    resolve_dependencies(&mut analysis.packages);
    analysis.packages.sort_by(|a, b| {
        a.purl
            .cmp(&b.purl)
            .then_with(|| a.evidence.path.cmp(&b.evidence.path))
    });
    analysis.owners = owners(fs, &analysis.packages);
    analysis
}

/// The `bin:{sha256}` component of an ELF file no package owns.
fn binary_package(path: &str, facts: &elf::ElfFacts) -> Package {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    let mut package = Package::installed(
        Ecosystem::Binary,
        name,
        String::new(),
        format!("bin:{}", facts.sha256),
        Evidence {
            source: "elf".into(),
            path: path.trim_start_matches('/').into(),
            method: "file-content".into(),
        },
    );
    package.files = vec![path.to_string()];
    package
}

/// Which package owns each file (absolute; symlinked directories resolved, so `/lib/x.so`
/// listed before usrmerge is `/usr/lib/x.so`, but a listed symlink is owned as itself, not
/// its target): listed files first (OS package databases, Python `RECORD`s, `bin:`
/// components), then a Go binary's main module or a Rust
/// binary's root crate (their toolchain when there is no main module), then the npm package
/// whose directory holds it.
fn owners(fs: &Filesystem, packages: &[Package]) -> std::collections::BTreeMap<String, usize> {
    let mut owners = std::collections::BTreeMap::new();
    let canonical = |f: &str| {
        fs.resolve_parent(f.trim_start_matches('/'))
            .map(|p| format!("/{p}"))
    };
    for (i, p) in packages.iter().enumerate() {
        for file in &p.files {
            if let Some(path) = canonical(file) {
                owners.entry(path).or_insert(i);
            }
        }
    }
    for methods in [&["main-module", "root-crate"][..], &["toolchain"][..]] {
        for (i, p) in packages.iter().enumerate() {
            if methods.contains(&p.evidence.method.as_str()) {
                owners.entry(format!("/{}", p.evidence.path)).or_insert(i);
            }
        }
    }
    let npm_dirs: std::collections::BTreeMap<String, usize> = packages
        .iter()
        .enumerate()
        .filter(|(_, p)| p.ecosystem == Ecosystem::Npm)
        .filter_map(|(i, p)| Some((format!("/{}", p.evidence.path.rsplit_once('/')?.0), i)))
        .collect();
    if !npm_dirs.is_empty() {
        for (path, _) in fs.files_under("") {
            let path = format!("/{path}");
            if owners.contains_key(&path) || !path.contains("/node_modules/") {
                continue;
            }
            let mut dir = path.as_str();
            while let Some((parent, _)) = dir.rsplit_once('/') {
                if let Some(&i) = npm_dirs.get(parent) {
                    owners.insert(path.clone(), i);
                    break;
                }
                dir = parent;
            }
        }
    }
    owners
}

/// The identity of a package within its database, for layer attribution.
pub fn package_key(package: &Package) -> String {
    format!(
        "{}\u{0}{}\u{0}{}",
        package.name,
        package.version,
        package.arch.as_deref().unwrap_or("")
    )
}

/// The package keys a single-file database holds, for databases whose packages can be
/// attributed to the layer that added them (one file holding every package). `None` for other
/// paths and for unreadable versions of the file.
pub fn database_keys(path: &str, bytes: &[u8]) -> Option<std::collections::BTreeSet<String>> {
    let text = String::from_utf8_lossy(bytes);
    let key = |name: &str, version: &str, arch: Option<&str>| {
        format!("{name}\u{0}{version}\u{0}{}", arch.unwrap_or(""))
    };
    match path {
        dpkg::STATUS => dpkg::parse_stanzas(&text).ok().map(|stanzas| {
            stanzas
                .iter()
                .filter(|s| dpkg::is_installed(s.get("Status").map(String::as_str)))
                .filter_map(|s| {
                    let name = s.get("Package").filter(|n| !n.is_empty())?;
                    let version = s.get("Version").map(String::as_str).unwrap_or("");
                    Some(key(
                        name,
                        version,
                        s.get("Architecture")
                            .map(String::as_str)
                            .filter(|a| !a.is_empty()),
                    ))
                })
                .collect()
        }),
        apk::INSTALLED => apk::parse(&text).ok().map(|records| {
            records
                .iter()
                .filter(|r| !r.name.is_empty() && !r.version.is_empty())
                .map(|r| key(&r.name, &r.version, r.arch.as_deref()))
                .collect()
        }),
        p if rpm::DATABASES.contains(&p) || p == rpm::MARINER_MANIFEST => {
            let rpms = if p == rpm::MARINER_MANIFEST {
                rpm::parse_mariner_manifest(&text)
            } else {
                rpm::read_database(bytes)
            };
            rpms.ok().map(|rpms| {
                rpms.iter()
                    .map(|r| {
                        let version = format!("{}-{}", r.version, r.release);
                        let version = match r.epoch {
                            Some(e) => format!("{e}:{version}"),
                            None => version,
                        };
                        key(&r.name, &version, r.arch.as_deref())
                    })
                    .collect()
            })
        }
        _ => None,
    }
}

/// The name a dependency or provides entry is about: `libc6 (>= 2.34)` → `libc6`,
/// `so:libc.musl-x86_64.so.1=1` → `so:libc.musl-x86_64.so.1`, `python3:any` → `python3`,
/// `musl>=1.2` → `musl`.
fn capability(entry: &str) -> &str {
    let entry = entry.trim();
    let end = entry
        .find([' ', '(', '=', '<', '>', '~'])
        .unwrap_or(entry.len());
    let name = &entry[..end];
    name.strip_suffix(":any").unwrap_or(name)
}

/// Resolves each package's dependency declarations to the installed packages that satisfy
/// them (by name, provides, or owned file path), within its ecosystem. Every installed
/// alternative of `a | b` counts (each could be what is used); unresolvable and conflict (`!x`)
/// entries are left out: only what is installed is linked, nothing is guessed.
pub fn resolve_dependencies(packages: &mut [Package]) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut providers: BTreeMap<(Ecosystem, String), BTreeSet<String>> = BTreeMap::new();
    for p in packages.iter() {
        let mut add = |key: &str| {
            providers
                .entry((p.ecosystem, key.to_string()))
                .or_default()
                .insert(p.purl.clone());
        };
        add(&p.name);
        for provided in &p.provides {
            add(capability(provided));
        }
        if p.ecosystem == Ecosystem::Rpm {
            for file in &p.files {
                add(file);
            }
        }
    }
    for p in packages.iter_mut() {
        let mut resolved = BTreeSet::new();
        for declaration in &p.depends {
            if declaration.starts_with('!') || declaration.starts_with("rpmlib(") {
                continue;
            }
            for name in declaration.split('|').map(capability) {
                if let Some(purls) = providers.get(&(p.ecosystem, name.to_string())) {
                    resolved.extend(purls.iter().filter(|purl| **purl != p.purl).cloned());
                }
            }
        }
        p.depends_on = resolved.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cache_key_names_the_entrytrace_capture() {
        assert!(super::ANALYZER_VERSION.ends_with(stella_entrytrace::CAPTURE_VERSION));
    }
}
