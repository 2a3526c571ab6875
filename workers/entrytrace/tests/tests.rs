//! EntryTrace over images built in memory as layer tars, read by `stella_layerfs` with
//! EntryTrace's own capture rules.

mod hostile;
mod launchers;
mod scripts;

use stella_entrytrace::{Config, Options, Trace, trace};
use stella_layerfs::{Capture, Filesystem, read_layer};

/// One entry of a test layer.
pub(crate) enum E<'a> {
    /// An executable file (mode 0755).
    Exe(&'a str, &'a [u8]),
    /// A regular file with an explicit mode.
    File(&'a str, u32, &'a [u8]),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

/// A small ELF header: what a binary looks like to the capture.
pub(crate) const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0binary";

/// EntryTrace's capture, plus `package.json` (kept by the npm analyzer in a real scan).
struct Scripts;

impl Capture for Scripts {
    fn wants(&self, path: &str) -> bool {
        path.ends_with("package.json")
    }

    fn wants_entry(&self, path: &str, mode: u32, size: u64) -> bool {
        self.wants(path) || stella_entrytrace::wants_entry(path, mode, size)
    }

    fn condense(&self, path: &str, bytes: Vec<u8>) -> Option<Vec<u8>> {
        if self.wants(path) {
            Some(bytes)
        } else {
            stella_entrytrace::condense(path, &bytes)
        }
    }
}

/// A one-layer image.
pub(crate) fn image(entries: &[E<'_>]) -> Filesystem {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        match entry {
            E::Exe(path, data) | E::File(path, _, data) => {
                let mode = match entry {
                    E::File(_, mode, _) => *mode,
                    _ => 0o755,
                };
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, *data).unwrap();
            }
            E::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
            E::Link(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    let bytes = builder.into_inner().unwrap();
    let fragment = read_layer(&bytes[..], &Scripts).unwrap();
    Filesystem::build([&fragment])
}

/// A config with `ENTRYPOINT`, `CMD` and `Env`.
pub(crate) fn config(entrypoint: &[&str], cmd: &[&str], env: &[&str]) -> Config {
    let strings = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
    Config {
        entrypoint: strings(entrypoint),
        cmd: strings(cmd),
        env: strings(env),
        working_dir: None,
    }
}

pub(crate) fn run(fs: &Filesystem, config: &Config) -> Trace {
    trace(fs, config, &Options::default())
}

/// `(kind, from, path)` of every hop, for compact assertions.
pub(crate) fn hops(trace: &Trace) -> Vec<(String, String, String)> {
    trace
        .hops
        .iter()
        .map(|h| {
            let kind = serde_json::to_value(h.kind).unwrap();
            (
                kind.as_str().unwrap().to_string(),
                h.from.to_string(),
                h.path.clone(),
            )
        })
        .collect()
}

/// `(kind, path)` of every terminal.
pub(crate) fn terminals(trace: &Trace) -> Vec<(String, String)> {
    trace
        .terminals
        .iter()
        .map(|t| {
            let kind = serde_json::to_value(t.kind).unwrap();
            (kind.as_str().unwrap().to_string(), t.path.clone())
        })
        .collect()
}

/// `(reason, from)` of every unknown.
pub(crate) fn unknowns(trace: &Trace) -> Vec<(String, String)> {
    trace
        .unknowns
        .iter()
        .map(|u| (u.reason.as_str().to_string(), u.from.to_string()))
        .collect()
}

/// Owned tuples from string literals.
pub(crate) fn s3(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

pub(crate) fn s2(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
