//! The snapshot hash of a statement set (`excititorSnapshotHash` in the scan manifest):
//! SHA-256 over the canonical statements — each statement's content without where it was read
//! from (see [`Statement::content_key`]), deduplicated, sorted, one per line. The same claims
//! in any order, from any file layout, hash the same; any change to a claim changes the hash.

use crate::model::Statement;
use sha2::Digest;
use std::collections::BTreeSet;

/// The canonical export: one canonical JSON statement (without its source) per line, sorted
/// and deduplicated.
pub fn canonical(statements: &[Statement]) -> String {
    let lines: BTreeSet<String> = statements.iter().map(Statement::content_key).collect();
    let mut out = String::new();
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `sha256:<hex>` of [`canonical`].
pub fn snapshot_hash(statements: &[Statement]) -> String {
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(canonical(statements).as_bytes()))
    )
}
