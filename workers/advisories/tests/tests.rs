//! The comparators against the upstream tools' own vectors.

mod feeds;
mod versions;

use std::path::PathBuf;

fn vectors(name: &str) -> Option<serde_json::Value> {
    let base = std::env::var_os("STELLA_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    let path = base.join("version-vectors").join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
        Err(_) => {
            eprintln!("SKIPPED: no vectors at {}", path.display());
            None
        }
    }
}

fn fixtures(sub: &str) -> Option<PathBuf> {
    stella_e2e::services::fixtures(sub)
}
