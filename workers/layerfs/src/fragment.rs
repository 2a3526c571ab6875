//! One layer tar → a [`Fragment`].

use crate::{Error, Result, normalize};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;

/// What analyzers want captured from layers.
pub trait Capture: Sync {
    /// Whether the bytes of the regular file at `path` (normalised) are needed.
    fn wants(&self, path: &str) -> bool;
    /// Largest file captured; larger wanted files fail the layer with a clear error.
    fn max_file_bytes(&self) -> u64 {
        512 << 20
    }
    /// Whether the regular file at `path` with permission bits `mode` and `size` bytes is
    /// wanted: by default, when its path is. Analyzers that recognise files by content (Go
    /// binaries) also ask for executables, and keep only what [`Capture::condense`] returns.
    fn wants_entry(&self, path: &str, _mode: u32, _size: u64) -> bool {
        self.wants(path)
    }
    /// What to keep of a captured file (default: all of it); `None` keeps nothing. Analyzers
    /// of large archives and binaries keep only the metadata they read.
    fn condense(&self, _path: &str, bytes: Vec<u8>) -> Option<Vec<u8>> {
        Some(bytes)
    }
}

impl<F: Fn(&str) -> bool + Sync> Capture for F {
    fn wants(&self, path: &str) -> bool {
        self(path)
    }
}

/// Kind of a tar entry after normalisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    File {
        size: u64,
        mode: u32,
    },
    Dir,
    /// Target as written in the tar (relative or absolute, resolved inside the root later).
    Symlink {
        target: String,
    },
    /// Hardlink to another path of the image (normalised).
    Hardlink {
        target: String,
    },
    /// `.wh.<name>`: deletes `<name>` from lower layers.
    Whiteout,
    /// `.wh..wh..opq`: hides the directory's lower-layer contents.
    Opaque,
    /// Character or block device, FIFO: recorded, never opened.
    Special,
}

/// One entry of a layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FragmentEntry {
    /// Normalised path; for whiteouts, the path being deleted; for opaque markers, the directory.
    pub path: String,
    pub kind: EntryKind,
}

/// Everything a scan needs from one layer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragment {
    /// Entries in tar order.
    pub entries: Vec<FragmentEntry>,
    /// Bytes of wanted regular files, by path (the last occurrence in the layer wins).
    pub files: BTreeMap<String, serde_bytes::ByteBuf>,
    /// Entries skipped as hostile or unreadable, with the reason.
    pub skipped: Vec<String>,
}

/// Reads a layer tar into a fragment. Entries whose names climb out of the root (`../`) are
/// skipped and recorded; hardlinks to such paths likewise.
pub fn read_layer(reader: impl Read, capture: &dyn Capture) -> Result<Fragment> {
    let mut archive = tar::Archive::new(reader);
    let mut fragment = Fragment::default();
    for entry in archive.entries().map_err(Error::Tar)? {
        let mut entry = entry.map_err(Error::Tar)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = normalize(&raw) else {
            fragment
                .skipped
                .push(format!("{raw}: path escapes the image root"));
            continue;
        };
        if path.is_empty() {
            continue;
        }
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", path.as_str()),
        };
        let join = |n: &str| {
            if dir.is_empty() {
                n.to_string()
            } else {
                format!("{dir}/{n}")
            }
        };
        if name == ".wh..wh..opq" {
            fragment.entries.push(FragmentEntry {
                path: dir.to_string(),
                kind: EntryKind::Opaque,
            });
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if !hidden.is_empty() && hidden != "." && hidden != ".." {
                fragment.entries.push(FragmentEntry {
                    path: join(hidden),
                    kind: EntryKind::Whiteout,
                });
            }
            continue;
        }
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                EntryKind::File {
                    size: entry.size(),
                    mode: header.mode().unwrap_or(0o644),
                }
            }
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                EntryKind::Symlink { target }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                match target.as_deref().and_then(normalize) {
                    Some(target) if !target.is_empty() => EntryKind::Hardlink { target },
                    _ => {
                        fragment
                            .skipped
                            .push(format!("{path}: hardlink target escapes the image root"));
                        continue;
                    }
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                EntryKind::Special
            }
            // PAX/GNU metadata records are consumed by the tar reader; anything else is noted.
            other => {
                fragment
                    .skipped
                    .push(format!("{path}: unsupported entry type {other:?}"));
                continue;
            }
        };
        if let EntryKind::File { size, mode } = kind
            && capture.wants_entry(&path, mode, size)
        {
            let limit = capture.max_file_bytes();
            if size > limit {
                return Err(Error::CaptureTooLarge { path, limit });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .by_ref()
                .take(limit + 1)
                .read_to_end(&mut bytes)
                .map_err(Error::Tar)?;
            if let Some(bytes) = capture.condense(&path, bytes) {
                fragment
                    .files
                    .insert(path.clone(), serde_bytes::ByteBuf::from(bytes));
            }
        } else if let EntryKind::Hardlink { target } = &kind
            && capture.wants(&path)
            && let Some(bytes) = fragment.files.get(target).cloned()
        {
            fragment.files.insert(path.clone(), bytes);
        }
        fragment.entries.push(FragmentEntry { path, kind });
    }
    Ok(fragment)
}

/// Reads an unpacked root filesystem directory into a fragment, as if it were one layer.
/// Symlinks are recorded, never followed; devices, FIFOs and sockets are recorded as special
/// and never opened. Only the root itself must be readable: a subdirectory or wanted file that
/// cannot be read (permissions, removed meanwhile) is skipped and recorded, like a hostile
/// tar entry. Names that are not UTF-8 are skipped the same way (SBOMs carry text paths).
pub fn read_dir(root: &std::path::Path, capture: &dyn Capture) -> Result<Fragment> {
    let mut fragment = Fragment::default();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let dir = root.join(&relative);
        let listed =
            std::fs::read_dir(&dir).and_then(|entries| entries.collect::<Result<Vec<_>, _>>());
        let mut children = match listed {
            Ok(children) => children,
            Err(e) if relative.as_os_str().is_empty() => return Err(Error::Tar(e)),
            Err(e) => {
                fragment.skipped.push(format!(
                    "{}: unreadable directory ({e})",
                    relative.display()
                ));
                continue;
            }
        };
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let path = relative.join(child.file_name());
            let Some(name) = path.to_str().map(str::to_string) else {
                fragment
                    .skipped
                    .push(format!("{}: name is not UTF-8", path.to_string_lossy()));
                continue;
            };
            let meta = match std::fs::symlink_metadata(child.path()) {
                Ok(meta) => meta,
                Err(e) => {
                    fragment.skipped.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let file_type = meta.file_type();
            let kind = if file_type.is_dir() {
                stack.push(path.clone());
                EntryKind::Dir
            } else if file_type.is_symlink() {
                match std::fs::read_link(child.path()) {
                    Ok(target) => EntryKind::Symlink {
                        target: target.to_string_lossy().into_owned(),
                    },
                    Err(e) => {
                        fragment.skipped.push(format!("{name}: {e}"));
                        continue;
                    }
                }
            } else if file_type.is_file() {
                use std::os::unix::fs::PermissionsExt;
                EntryKind::File {
                    size: meta.len(),
                    mode: meta.permissions().mode() & 0o7777,
                }
            } else {
                EntryKind::Special
            };
            if let EntryKind::File { size, mode } = kind
                && capture.wants_entry(&name, mode, size)
            {
                let limit = capture.max_file_bytes();
                if size > limit {
                    return Err(Error::CaptureTooLarge { path: name, limit });
                }
                match read_regular(&child.path(), limit) {
                    Ok(bytes) => {
                        if let Some(bytes) = capture.condense(&name, bytes) {
                            fragment
                                .files
                                .insert(name.clone(), serde_bytes::ByteBuf::from(bytes));
                        }
                    }
                    Err(e) => fragment.skipped.push(format!("{name}: {e}")),
                }
            }
            fragment.entries.push(FragmentEntry { path: name, kind });
        }
    }
    fragment.entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(fragment)
}

/// Reads a file that was a regular file when listed, at most `limit` bytes: one that became
/// something else (a FIFO would block, a device never ends) or grew past the limit is refused.
fn read_regular(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("no longer a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "grew past the {limit}-byte limit while read"
        )));
    }
    Ok(bytes)
}
