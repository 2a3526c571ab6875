//! Applying fragments in layer order into the merged view.

use crate::fragment::{EntryKind, Fragment};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Longest symlink chain followed before giving up (Linux's limit).
const MAX_HOPS: usize = 40;

/// A path of the merged filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: EntryKind,
    /// Index of the layer that introduced the path.
    pub introduced_by: usize,
    /// Index of the last layer that wrote it.
    pub modified_by: usize,
}

/// The merged filesystem of an image.
#[derive(Debug, Default)]
pub struct Filesystem {
    nodes: BTreeMap<String, Node>,
    files: BTreeMap<String, (usize, Arc<[u8]>)>,
    /// The paths of the symlink nodes: resolution looks only these up, so a path costs its
    /// length whatever the depth of the tree (a lookup in `nodes` compares long shared
    /// prefixes: quadratic in depth).
    symlinks: BTreeSet<String>,
}

impl Filesystem {
    /// Applies `fragments` (lowest layer first).
    pub fn build<'a>(fragments: impl IntoIterator<Item = &'a Fragment>) -> Filesystem {
        let mut fs = Filesystem::default();
        for (layer, fragment) in fragments.into_iter().enumerate() {
            fs.apply(layer, fragment);
        }
        fs
    }

    fn apply(&mut self, layer: usize, fragment: &Fragment) {
        for entry in &fragment.entries {
            // Entries under a symlinked directory land where the link points, as a container
            // runtime's secure join would put them.
            let path = self
                .resolve_parent(&entry.path)
                .unwrap_or_else(|| entry.path.clone());
            match &entry.kind {
                EntryKind::Whiteout => self.remove_tree(&path, |_| true),
                EntryKind::Opaque => {
                    let prefix = format!("{path}/");
                    let lower = |n: &Node| n.modified_by < layer;
                    let doomed: Vec<String> = self
                        .nodes
                        .range(prefix.clone()..)
                        .take_while(|(p, _)| p.starts_with(&prefix))
                        .filter(|(_, n)| lower(n))
                        .map(|(p, _)| p.clone())
                        .collect();
                    for p in doomed {
                        self.nodes.remove(&p);
                        self.files.remove(&p);
                        self.symlinks.remove(&p);
                    }
                }
                kind => {
                    // A non-directory replacing a directory hides what was below it.
                    if !matches!(kind, EntryKind::Dir)
                        && self
                            .nodes
                            .get(&path)
                            .is_some_and(|n| n.kind == EntryKind::Dir)
                    {
                        let prefix = format!("{path}/");
                        self.remove_tree(&path, |p| p.starts_with(&prefix));
                    }
                    let introduced_by = self
                        .nodes
                        .get(&path)
                        .map(|n| n.introduced_by)
                        .unwrap_or(layer);
                    let kind = match kind {
                        EntryKind::Hardlink { target } => {
                            let target = self
                                .resolve_parent(target)
                                .unwrap_or_else(|| target.clone());
                            if let Some(content) = fragment.files.get(&target) {
                                self.files
                                    .insert(path.clone(), (layer, Arc::from(content.as_slice())));
                            } else if let Some((_, content)) = self.files.get(&target).cloned() {
                                self.files.insert(path.clone(), (layer, content));
                            }
                            match self.nodes.get(&target) {
                                Some(Node {
                                    kind: k @ EntryKind::File { .. },
                                    ..
                                }) => k.clone(),
                                _ => EntryKind::Hardlink { target },
                            }
                        }
                        other => other.clone(),
                    };
                    if let EntryKind::File { .. } = kind {
                        match fragment.files.get(&entry.path) {
                            Some(content) => {
                                self.files
                                    .insert(path.clone(), (layer, Arc::from(content.as_slice())));
                            }
                            None => {
                                // Overwritten by content nobody captured.
                                self.files.remove(&path);
                            }
                        }
                    } else if !matches!(kind, EntryKind::Hardlink { .. }) {
                        self.files.remove(&path);
                    }
                    if matches!(kind, EntryKind::Symlink { .. }) {
                        self.symlinks.insert(path.clone());
                    } else {
                        self.symlinks.remove(&path);
                    }
                    self.nodes.insert(
                        path,
                        Node {
                            kind,
                            introduced_by,
                            modified_by: layer,
                        },
                    );
                }
            }
        }
    }

    fn remove_tree(&mut self, path: &str, also: impl Fn(&str) -> bool) {
        let prefix = format!("{path}/");
        let doomed: Vec<String> = self
            .nodes
            .range(path.to_string()..)
            .take_while(|(p, _)| p.as_str() == path || p.starts_with(&prefix))
            .filter(|(p, _)| p.as_str() == path || also(p))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.nodes.remove(&p);
            self.files.remove(&p);
            self.symlinks.remove(&p);
        }
    }

    /// Every path, sorted.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(p, n)| (p.as_str(), n))
    }

    /// The node at `path` exactly (no symlink resolution).
    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Paths directly or indirectly under `dir`, sorted.
    pub fn under<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .map(|(p, n)| (p.as_str(), n))
    }

    /// Resolves `path` through symlinks, confined to the image root: `..` never climbs above
    /// `/`, and an absolute target restarts at the image root. `None` for dangling links and
    /// loops.
    pub fn resolve(&self, path: &str) -> Option<String> {
        self.resolve_inner(path, true)
    }

    /// Resolves symlinks in the directories of `path` but not its last component: where the
    /// entry itself (a symlink, say) lives.
    pub fn resolve_parent(&self, path: &str) -> Option<String> {
        self.resolve_inner(path, false)
    }

    fn resolve_inner(&self, path: &str, follow_last: bool) -> Option<String> {
        let mut pending: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).rev().collect();
        // The resolved path so far, and its length before each of its components: `..` and a
        // symlink's replacement truncate it, never rebuild it.
        let mut resolved = String::with_capacity(path.len());
        let mut starts: Vec<usize> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part {
                "." => continue,
                ".." => {
                    if let Some(start) = starts.pop() {
                        resolved.truncate(start);
                    }
                    continue;
                }
                _ => {}
            }
            starts.push(resolved.len());
            if !resolved.is_empty() {
                resolved.push('/');
            }
            resolved.push_str(part);
            if pending.is_empty() && !follow_last {
                break;
            }
            if !self.symlinks.contains(resolved.as_str()) {
                continue;
            }
            let Some(Node {
                kind: EntryKind::Symlink { target },
                ..
            }) = self.nodes.get(resolved.as_str())
            else {
                continue;
            };
            hops += 1;
            if hops > MAX_HOPS {
                return None;
            }
            if let Some(start) = starts.pop() {
                resolved.truncate(start);
            }
            if target.starts_with('/') {
                resolved.clear();
                starts.clear();
            }
            pending.extend(target.split('/').filter(|p| !p.is_empty()).rev());
        }
        Some(resolved)
    }

    /// Bytes of a captured regular file, following symlinks inside the root.
    pub fn read(&self, path: &str) -> Option<&[u8]> {
        let resolved = self.resolve(path)?;
        self.files.get(&resolved).map(|(_, b)| &b[..])
    }

    /// Layer index that last wrote the captured file at `path` (after resolution).
    pub fn content_layer(&self, path: &str) -> Option<usize> {
        let resolved = self.resolve(path)?;
        self.files.get(&resolved).map(|(layer, _)| *layer)
    }

    /// Captured files under `dir` (resolved), sorted by path.
    pub fn files_under<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let dir = self.resolve(dir).unwrap_or_else(|| dir.to_string());
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.files
            .range(prefix.clone()..)
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .map(|(p, (_, b))| (p.as_str(), &b[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fragment::{FragmentEntry, read_layer};

    fn layer(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Fragment {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if let Some(link) = link {
                header.set_link_name(link).unwrap();
            }
            // Bypass the builder's own path sanitising: hostile names must reach the reader.
            let name = header.as_old_mut().name.as_mut();
            name.fill(0);
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        let bytes = builder.into_inner().unwrap();
        read_layer(&bytes[..], &|_: &str| true).unwrap()
    }

    use tar::EntryType::{Directory as D, Fifo, Link as H, Regular as F, Symlink as S};

    /// 4,000 nested directories with a symlink half-way down and `..` in its target: every
    /// path resolves where a kernel would put it, and a loop of links ends in `None`.
    #[test]
    fn deep_trees_resolve_like_the_kernel() {
        let mut fragment = Fragment::default();
        let mut path = String::new();
        for depth in 0..4000 {
            if !path.is_empty() {
                path.push('/');
            }
            path.push('d');
            let kind = if depth == 2000 {
                EntryKind::Symlink {
                    target: "../e".into(),
                }
            } else {
                EntryKind::Dir
            };
            fragment.entries.push(FragmentEntry {
                path: path.clone(),
                kind,
            });
        }
        let half = "d/".repeat(2000);
        let fs = Filesystem::build([&fragment]);
        // The link `{half}d` points at `../e`: relative to the directory holding it, so paths
        // below it land in `e` beside that directory.
        let beside = format!("{}e", "d/".repeat(1999));
        assert_eq!(
            fs.resolve(&format!("{half}d/x")).as_deref(),
            Some(format!("{beside}/x").as_str())
        );
        assert_eq!(
            fs.resolve_parent(&format!("{half}d")).as_deref(),
            Some(format!("{half}d").as_str())
        );
        assert_eq!(
            fs.resolve(&format!("{half}../../..")).as_deref(),
            Some("d/".repeat(1997).trim_end_matches('/'))
        );
        // Entries written under the link in a later layer land under its target.
        let mut upper = Fragment::default();
        upper.entries.push(FragmentEntry {
            path: format!("{half}d/f"),
            kind: EntryKind::Dir,
        });
        let fs = Filesystem::build([&fragment, &upper]);
        assert!(fs.node(&format!("{beside}/f")).is_some());
        // A loop is not followed forever.
        let mut looped = Fragment::default();
        for (path, target) in [("a", "b"), ("b", "a")] {
            looped.entries.push(FragmentEntry {
                path: path.into(),
                kind: EntryKind::Symlink {
                    target: target.into(),
                },
            });
        }
        assert_eq!(Filesystem::build([&looped]).resolve("a/x"), None);
    }

    #[test]
    fn whiteouts_opaque_dirs_and_attribution() {
        let l0 = layer(&[
            ("etc/", D, b"", None),
            ("etc/a", F, b"a0", None),
            ("etc/b", F, b"b0", None),
            ("opt/x/1", F, b"1", None),
            ("opt/x/2", F, b"2", None),
        ]);
        let l1 = layer(&[
            ("etc/a", F, b"a1", None),
            ("etc/.wh.b", F, b"", None),
            ("opt/x/.wh..wh..opq", F, b"", None),
            ("opt/x/3", F, b"3", None),
        ]);
        let fs = Filesystem::build([&l0, &l1]);
        assert_eq!(fs.read("etc/a"), Some(&b"a1"[..]));
        let a = fs.node("etc/a").unwrap();
        assert_eq!((a.introduced_by, a.modified_by), (0, 1));
        assert!(fs.node("etc/b").is_none() && fs.read("etc/b").is_none());
        let under: Vec<_> = fs.under("opt/x").map(|(p, _)| p).collect();
        assert_eq!(under, ["opt/x/3"]);
    }

    #[test]
    fn opaque_marker_keeps_same_layer_entries_written_before_it() {
        let l0 = layer(&[("d/old", F, b"", None)]);
        let l1 = layer(&[("d/new", F, b"", None), ("d/.wh..wh..opq", F, b"", None)]);
        let fs = Filesystem::build([&l0, &l1]);
        let under: Vec<_> = fs.under("d").map(|(p, _)| p).collect();
        assert_eq!(under, ["d/new"]);
    }

    #[test]
    fn symlinks_resolve_inside_the_root_only() {
        let l0 = layer(&[
            ("usr/lib/os-release", F, b"ID=debian", None),
            ("etc/os-release", S, b"", Some("../usr/lib/os-release")),
            ("escape", S, b"", Some("../../../../etc/shadow-host")),
            ("abs", S, b"", Some("/usr/lib/os-release")),
            ("loop1", S, b"", Some("loop2")),
            ("loop2", S, b"", Some("loop1")),
            ("lib", S, b"", Some("usr/lib")),
        ]);
        let l1 = layer(&[("lib/extra.so", F, b"so", None)]);
        let fs = Filesystem::build([&l0, &l1]);
        assert_eq!(fs.read("etc/os-release"), Some(&b"ID=debian"[..]));
        assert_eq!(fs.read("abs"), Some(&b"ID=debian"[..]));
        assert_eq!(fs.resolve("escape").as_deref(), Some("etc/shadow-host"));
        assert_eq!(fs.resolve("loop1"), None);
        // Written through the lib -> usr/lib symlink, lands in usr/lib.
        assert_eq!(fs.read("usr/lib/extra.so"), Some(&b"so"[..]));
        assert_eq!(fs.read("lib/extra.so"), Some(&b"so"[..]));
    }

    #[test]
    fn hostile_entries_are_skipped_and_recorded() {
        let l = layer(&[
            ("../evil", F, b"x", None),
            ("ok", F, b"ok", None),
            ("link", H, b"", Some("../../etc/passwd")),
            ("dev/fifo", Fifo, b"", None),
            ("hard", H, b"", Some("ok")),
        ]);
        assert_eq!(l.skipped.len(), 2, "{:?}", l.skipped);
        assert!(l.entries.iter().any(|e| e
            == &FragmentEntry {
                path: "dev/fifo".into(),
                kind: EntryKind::Special
            }));
        let fs = Filesystem::build([&l]);
        assert_eq!(fs.read("hard"), Some(&b"ok"[..]));
        assert!(fs.node("evil").is_none());
    }

    #[test]
    fn truncated_and_garbage_tars_are_errors_not_panics() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1000);
        header.set_path("big").unwrap();
        header.set_cksum();
        builder.append(&header, &vec![7u8; 1000][..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        assert!(read_layer(&bytes[..700], &|_: &str| true).is_err());
        let garbage = vec![0x55u8; 4096];
        assert!(read_layer(&garbage[..], &|_: &str| true).is_err());
    }
}
