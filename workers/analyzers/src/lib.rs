//! Deterministic analyzers. Each reads installed-state metadata from the merged filesystem and
//! reports packages with the evidence that proves them: no confidences, no guessing. A missing
//! or unreadable database is recorded as such; nothing is fabricated.

pub mod apk;
pub mod dpkg;
pub mod model;
pub mod osrelease;
pub mod purl;

pub use model::{Analysis, Distro, Ecosystem, Evidence, Package};

use stella_layerfs::Filesystem;

/// Version of the analyzer set: part of every cache key and recorded in every SBOM.
pub const ANALYZER_VERSION: &str = concat!("stella-analyzers/", env!("CARGO_PKG_VERSION"), "+os.1");

/// Errors of one analyzer on one database.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("{path}: {reason}")]
    Corrupt { path: String, reason: String },
}

/// Whether any OS analyzer needs the bytes of `path` (a normalised, root-relative path).
pub fn wants(path: &str) -> bool {
    osrelease::wants(path) || dpkg::wants(path) || apk::wants(path)
}

/// Runs every OS analyzer over the merged filesystem.
pub fn analyze(fs: &Filesystem) -> Analysis {
    let distro = osrelease::detect(fs);
    let mut analysis = Analysis { distro: distro.clone(), ..Analysis::default() };
    for result in [dpkg::analyze(fs, distro.as_ref()), apk::analyze(fs, distro.as_ref())] {
        match result {
            Ok(mut packages) => analysis.packages.append(&mut packages),
            Err(error) => analysis.errors.push(error.to_string()),
        }
    }
    analysis.packages.sort_by(|a, b| a.purl.cmp(&b.purl).then_with(|| a.evidence.path.cmp(&b.evidence.path)));
    analysis
}
