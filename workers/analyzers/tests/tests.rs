//! The analyzers against real third-party databases from `../shared/fixtures/` (or
//! `$STELLA_FIXTURES`); skipped with a message where the fixtures are absent.

mod apk;
mod dpkg;
mod elf;
mod rpm;

use std::path::PathBuf;
use stella_layerfs::{Filesystem, read_dir};

/// The fixtures directory, or `None` (and a message) when it is not there.
fn fixtures(sub: &str) -> Option<PathBuf> {
    stella_e2e::services::fixtures(sub).filter(|d| d.is_dir())
}

/// A merged filesystem of one unpacked directory.
fn filesystem(root: &std::path::Path) -> Filesystem {
    let fragment = read_dir(root, &stella_analyzers::Analyzers).unwrap();
    Filesystem::build([&fragment])
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

mod lang;
