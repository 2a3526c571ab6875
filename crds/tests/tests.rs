//! Integration tests of the CRD types: generated YAML drift, sample validation, status size.

mod drift;
mod samples;
mod status_size;

use std::path::PathBuf;

/// The repository root (the workspace directory).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
