//! apk: `lib/apk/db/installed` (Alpine, Wolfi, Chainguard).

use crate::model::{Distro, Ecosystem, Evidence, Package};
use crate::purl;
use std::collections::BTreeSet;
use stella_layerfs::Filesystem;

/// Why the installed database could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A line that is neither blank nor an `X:value` field.
    #[error("line {line}: not an apk field: {text:?}")]
    NotAField { line: usize, text: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub const INSTALLED: &str = "lib/apk/db/installed";

pub fn wants(path: &str) -> bool {
    path == INSTALLED
}

/// One record of the installed database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    pub origin: Option<String>,
    pub license: Option<String>,
    pub maintainer: Option<String>,
    pub installed_size: Option<u64>,
    pub depends: Vec<String>,
    pub provides: Vec<String>,
    /// Absolute paths of files (not directories) the package owns, in database order.
    pub files: Vec<String>,
}

/// Parses the database: records separated by blank lines, one `X:value` field per line.
/// A line that is not a field is corruption.
pub fn parse(text: &str) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut current = Record::default();
    let mut dir = String::new();
    let mut any = false;
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if any {
                records.push(std::mem::take(&mut current));
            }
            any = false;
            dir.clear();
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b':' || !bytes[0].is_ascii_alphabetic() {
            return Err(Error::NotAField {
                line: number + 1,
                text: line.to_string(),
            });
        }
        any = true;
        let value = &line[2..];
        match bytes[0] {
            b'P' => current.name = value.to_string(),
            b'V' => current.version = value.to_string(),
            b'A' => current.arch = Some(value.to_string()),
            b'o' => current.origin = Some(value.to_string()),
            b'L' => current.license = Some(value.to_string()),
            b'm' => current.maintainer = Some(value.to_string()),
            b'I' => current.installed_size = value.parse().ok(),
            b'D' => current.depends = value.split_whitespace().map(str::to_string).collect(),
            b'p' => current.provides = value.split_whitespace().map(str::to_string).collect(),
            b'F' => dir = value.to_string(),
            b'R' => current.files.push(if dir.is_empty() {
                format!("/{value}")
            } else {
                format!("/{dir}/{value}")
            }),
            _ => {}
        }
    }
    if any {
        records.push(current);
    }
    Ok(records)
}

/// Reads the apk database of the image, if it has one.
pub fn analyze(fs: &Filesystem, distro: Option<&Distro>) -> Result<Vec<Package>, crate::Error> {
    let Some(bytes) = fs.read(INSTALLED) else {
        return Ok(vec![]);
    };
    let records =
        parse(&String::from_utf8_lossy(bytes)).map_err(|reason| crate::Error::Corrupt {
            path: INSTALLED.into(),
            reason: reason.into(),
        })?;
    let namespace = distro.map(|d| d.id.as_str()).unwrap_or("alpine");
    let distro_q = distro.map(Distro::qualifier);
    Ok(records
        .into_iter()
        .filter(|r| !r.name.is_empty() && !r.version.is_empty())
        .map(|r| {
            let upstream = r.origin.clone().filter(|o| o != &r.name);
            let purl = purl::build(
                "apk",
                Some(namespace),
                &r.name,
                Some(&r.version),
                &[
                    ("arch", r.arch.as_deref()),
                    ("distro", distro_q.as_deref()),
                    ("upstream", upstream.as_deref()),
                ],
            );
            let files: BTreeSet<String> = r.files.into_iter().collect();
            Package {
                ecosystem: Ecosystem::Apk,
                licenses: r.license.map(|l| vec![l]).unwrap_or_default(),
                name: r.name,
                version: r.version,
                arch: r.arch,
                source_name: r.origin,
                source_version: None,
                supplier: r.maintainer,
                installed_size: r.installed_size,
                depends: r.depends,
                provides: r.provides,
                depends_on: Vec::new(),
                files: files.into_iter().collect(),
                purl,
                evidence: Evidence {
                    source: "apk-installed".into(),
                    path: INSTALLED.into(),
                    method: "package-database".into(),
                },
            }
        })
        .collect())
}
