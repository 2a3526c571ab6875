//! The layer union filesystem, streamed from layer tars.
//!
//! [`read_layer`] walks one layer tar once (no extraction to disk) into a [`Fragment`]: every
//! entry's normalised path and kind, and the bytes of the files analyzers asked for. Fragments
//! are independent of each other, so layers are read in parallel and a fragment can be cached
//! by layer digest. [`Filesystem::build`] then applies fragments in order: whiteouts
//! (`.wh.<name>`), opaque directories (`.wh..wh..opq`), hardlinks, and for every path the layer
//! that introduced it and the last that modified it. Symlinks resolve only inside the image
//! root. Nothing from the image is ever written to disk or executed.

mod fragment;
mod union;

pub use fragment::{Capture, EntryKind, Fragment, FragmentEntry, read_dir, read_layer};
pub use union::{Filesystem, Node};

/// Where fragments are cached, keyed by layer blob digest and analyzer version.
pub trait FragmentCache: Sync {
    fn get(&self, layer_digest: &str, analyzer_version: &str) -> Option<Fragment>;
    fn put(&self, layer_digest: &str, analyzer_version: &str, fragment: &Fragment);
}

/// Errors reading a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read layer tar: {0}")]
    Tar(#[source] std::io::Error),
    #[error("captured file {path} is larger than the {limit}-byte limit")]
    CaptureTooLarge { path: String, limit: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Normalises a tar entry name to a root-relative path: no leading `/` or `./`, no empty or
/// `.` components. `None` for names that climb out with `..`.
pub fn normalize(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn names_normalise_and_escapes_are_refused() {
        assert_eq!(
            normalize("./etc/os-release").as_deref(),
            Some("etc/os-release")
        );
        assert_eq!(normalize("/usr//lib/./x/").as_deref(), Some("usr/lib/x"));
        assert_eq!(normalize("./").as_deref(), Some(""));
        assert_eq!(normalize("../etc/passwd"), None);
        assert_eq!(normalize("usr/../../etc/shadow"), None);
        assert_eq!(normalize("a/b/.."), None);
    }
}
