//! What EntryTrace needs captured from layers: scripts, decided by name and mode before the
//! bytes are read, and kept only when they are text.

/// Version of what [`wants_entry`] and [`condense`] keep: part of fragment cache keys.
pub const CAPTURE_VERSION: &str = "entrytrace.1";

/// Largest file captured as a possible script.
pub const MAX_SCRIPT_BYTES: u64 = 256 << 10;

/// Whether the layer entry at `path` (normalised, root-relative, no leading `/`) with
/// permission bits `mode` and `size` bytes may be a script EntryTrace needs: at most 256 KiB,
/// and executable or a script by name.
pub fn wants_entry(path: &str, mode: u32, size: u64) -> bool {
    size <= MAX_SCRIPT_BYTES && (mode & 0o111 != 0 || script_by_name(path))
}

/// What to keep of a file [`wants_entry`] accepted: all of it when it is text and starts with
/// `#!` or is a script by name; `None` for binaries.
pub fn condense(path: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let text = !bytes.contains(&0);
    (text && (bytes.starts_with(b"#!") || script_by_name(path))).then(|| bytes.to_vec())
}

/// Shell files recognised by name: `*.sh`, `*.bash`, `/etc/profile`, `/etc/environment`,
/// `/etc/profile.d/*`, `/etc/default/*`, anything under a `docker-entrypoint.d/`.
fn script_by_name(path: &str) -> bool {
    path.ends_with(".sh")
        || path.ends_with(".bash")
        || path == "etc/profile"
        || path == "etc/environment"
        || path.starts_with("etc/profile.d/")
        || path.starts_with("etc/default/")
        || path.starts_with("docker-entrypoint.d/")
        || path.contains("/docker-entrypoint.d/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_chosen_by_mode_name_and_size() {
        assert!(wants_entry("usr/local/bin/app", 0o755, 10));
        assert!(wants_entry("opt/start.sh", 0o644, 10));
        assert!(wants_entry("etc/profile.d/java.sh", 0o644, 10));
        assert!(wants_entry("etc/profile", 0o644, 10));
        assert!(wants_entry("etc/default/locale", 0o644, 10));
        assert!(wants_entry("docker-entrypoint.d/10-listen", 0o644, 10));
        assert!(wants_entry("usr/share/x/docker-entrypoint.d/a", 0o644, 10));
        assert!(!wants_entry("etc/passwd", 0o644, 10));
        assert!(!wants_entry("usr/bin/big", 0o755, (256 << 10) + 1));
        assert!(wants_entry("usr/bin/edge", 0o755, 256 << 10));
    }

    #[test]
    fn only_text_scripts_are_kept() {
        assert_eq!(
            condense("usr/bin/x", b"#!/bin/sh\nexec y\n").as_deref(),
            Some(&b"#!/bin/sh\nexec y\n"[..])
        );
        assert_eq!(condense("usr/bin/x", b"\x7fELF\x02\x01\x01\0\0"), None);
        assert_eq!(condense("usr/bin/x", b"plain text, no shebang"), None);
        assert_eq!(
            condense("etc/profile", b"export A=1\n").as_deref(),
            Some(&b"export A=1\n"[..])
        );
        assert_eq!(condense("opt/a.sh", b"#!\0binary"), None);
    }
}
