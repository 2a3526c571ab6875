//! Paths inside the image root: lexical joins that never climb above `/`, and lookups through
//! the union filesystem (symlinks confined to the root by `stella_layerfs`).

use stella_layerfs::{EntryKind, Filesystem};

/// `PATH` when the image sets none (Docker's default).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Joins `path` to the absolute directory `cwd` lexically: the result is absolute, without
/// `.`, `..` or empty components, and `..` stops at `/`.
pub(crate) fn join(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let base = if path.starts_with('/') { "" } else { cwd };
    for part in base.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The last component of a path.
pub(crate) fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The directory of an absolute path (`/` for top-level entries).
pub(crate) fn dirname(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// A regular file found in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    /// The absolute path as named (before symlinks).
    pub(crate) named: String,
    /// The absolute path after symlinks.
    pub(crate) resolved: String,
    /// Permission bits; 0 when unknown (a hardlink to a file no layer showed).
    pub(crate) mode: u32,
}

impl File {
    pub(crate) fn executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

fn relative(abs: &str) -> &str {
    abs.trim_start_matches('/')
}

/// The regular file at absolute path `abs`, following symlinks inside the root.
pub(crate) fn file(fs: &Filesystem, abs: &str) -> Option<File> {
    let resolved = fs.resolve(relative(abs))?;
    let mode = match &fs.node(&resolved)?.kind {
        EntryKind::File { mode, .. } => *mode,
        EntryKind::Hardlink { target } => match fs.node(target).map(|n| &n.kind) {
            Some(EntryKind::File { mode, .. }) => *mode,
            _ => 0,
        },
        _ => return None,
    };
    Some(File {
        named: abs.to_string(),
        resolved: format!("/{resolved}"),
        mode,
    })
}

/// The directory at absolute path `abs` (after symlinks), as an absolute path.
pub(crate) fn dir(fs: &Filesystem, abs: &str) -> Option<String> {
    let resolved = fs.resolve(relative(abs))?;
    if resolved.is_empty() {
        return Some("/".to_string());
    }
    // Layers may omit directory entries: a path with entries below it is a directory too.
    let is_dir = match fs.node(&resolved) {
        Some(node) => node.kind == EntryKind::Dir,
        None => fs.under(&resolved).next().is_some(),
    };
    is_dir.then(|| format!("/{resolved}"))
}

/// Captured bytes of the file at `abs`, following symlinks.
pub(crate) fn read<'a>(fs: &'a Filesystem, abs: &str) -> Option<&'a [u8]> {
    fs.read(relative(abs))
}

/// Names of the direct children of the directory `abs` (resolved), sorted.
pub(crate) fn children(fs: &Filesystem, abs: &str) -> Vec<String> {
    let Some(resolved) = dir(fs, abs) else {
        return Vec::new();
    };
    let rel = relative(&resolved).to_string();
    let mut names: Vec<String> = Vec::new();
    for (path, _) in fs.under(&rel) {
        let rest = if rel.is_empty() {
            path
        } else {
            &path[rel.len() + 1..]
        };
        // Layers may omit directory entries: deeper paths name their first component too.
        let name = rest.split('/').next().unwrap_or(rest);
        if names.last().map(String::as_str) != Some(name) {
            names.push(name.to_string());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Shell pattern match of one path component: `*`, `?` and `[…]` classes; a leading `.` must be
/// matched literally.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class(&p[pi..], n[ni]),
            Some(c) if *c == n[ni] => Some(1),
            _ => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class at the start of `p` (`[abc]`, `[a-z]`, `[!x]`); the pattern
/// length consumed when it matches.
fn class(p: &[char], c: char) -> Option<usize> {
    let end = p.iter().skip(2).position(|x| *x == ']')? + 2;
    let body = &p[1..end];
    let (negated, body) = match body.first() {
        Some('!' | '^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut found = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            found |= (body[i]..=body[i + 2]).contains(&c);
            i += 3;
        } else {
            found |= body[i] == c;
            i += 1;
        }
    }
    (found != negated).then_some(end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stay_inside_the_root() {
        assert_eq!(join("/app", "bin/x"), "/app/bin/x");
        assert_eq!(join("/app", "../../../../etc/passwd"), "/etc/passwd");
        assert_eq!(join("/app", "/usr//bin/./x"), "/usr/bin/x");
        assert_eq!(join("/", "."), "/");
        assert_eq!(dirname("/x.sh"), "/");
        assert_eq!(dirname("/a/b/c"), "/a/b");
        assert_eq!(basename("/a/b/c"), "c");
    }

    #[test]
    fn patterns() {
        assert!(matches("*.sh", "10-a.sh"));
        assert!(!matches("*.sh", "10-a.envsh"));
        assert!(matches("??-*", "10-x"));
        assert!(matches("[0-9]*", "5x"));
        assert!(!matches("[!0-9]*", "5x"));
        assert!(!matches("*", ".hidden"));
        assert!(matches("a*b*c", "aXbYbc"));
    }
}
