//! Deterministic analyzers. Each reads installed-state metadata from the merged filesystem and
//! reports packages with the evidence that proves them: no confidences, no guessing. A missing
//! or unreadable database is recorded as such; nothing is fabricated.

pub mod apk;
pub mod dpkg;
pub mod model;
pub mod osrelease;
pub mod purl;
pub mod rpm;

pub use model::{Analysis, Distro, Ecosystem, Evidence, Package};

use stella_layerfs::Filesystem;

/// Version of the analyzer set: part of every cache key and recorded in every SBOM. Bump the
/// suffix whenever [`wants`] or what an analyzer extracts changes: cached layer fragments of
/// an older set would otherwise be reused without the files the new set needs.
pub const ANALYZER_VERSION: &str = concat!("stella-analyzers/", env!("CARGO_PKG_VERSION"), "+os.2");

/// Errors of one analyzer on one database.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("{path}: {reason}")]
    Corrupt { path: String, reason: String },
}

/// Whether any OS analyzer needs the bytes of `path` (a normalised, root-relative path).
pub fn wants(path: &str) -> bool {
    osrelease::wants(path) || dpkg::wants(path) || apk::wants(path) || rpm::wants(path)
}

/// Runs every OS analyzer over the merged filesystem.
pub fn analyze(fs: &Filesystem) -> Analysis {
    let distro = osrelease::detect(fs);
    let mut analysis = Analysis {
        distro: distro.clone(),
        ..Analysis::default()
    };
    for result in [
        dpkg::analyze(fs, distro.as_ref()),
        apk::analyze(fs, distro.as_ref()),
        rpm::analyze(fs, distro.as_ref()),
    ] {
        match result {
            Ok(mut packages) => analysis.packages.append(&mut packages),
            Err(error) => analysis.errors.push(error.to_string()),
        }
    }
    analysis.packages.sort_by(|a, b| {
        a.purl
            .cmp(&b.purl)
            .then_with(|| a.evidence.path.cmp(&b.evidence.path))
    });
    analysis
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
                    let version = s.get("Version").filter(|v| !v.is_empty())?;
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
