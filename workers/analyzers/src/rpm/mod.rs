//! rpm: the package database in all three formats rpm has used (SQLite `rpmdb.sqlite`,
//! Berkeley DB hash `Packages`, NDB `Packages.db`) and CBL-Mariner's distroless
//! `container-manifest-2`, decoded natively: no librpm, no rpm binary.

pub mod bdb;
pub mod header;
pub mod ndb;
pub mod sqlite;

use crate::model::{Distro, Ecosystem, Evidence, Package};
use crate::purl;
use header::Header;
use stella_layerfs::Filesystem;

/// Why an rpm database or container manifest could not be read. A format's own error is shown
/// as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an rpm database (SQLite, Berkeley DB hash or ndb)")]
    UnknownFormat,
    #[error(transparent)]
    Sqlite(#[from] sqlite::Error),
    #[error(transparent)]
    Bdb(#[from] bdb::Error),
    #[error(transparent)]
    Ndb(#[from] ndb::Error),
    #[error(transparent)]
    Header(#[from] header::Error),
    #[error("header without a name")]
    NoName,
    #[error("line {line}: {fields} fields, expected 10")]
    ManifestFields { line: usize, fields: usize },
    #[error("line {line}: no version-release")]
    ManifestVersion { line: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Database locations, newest layout first.
pub const DATABASES: [&str; 6] = [
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/Packages.db",
    "usr/lib/sysimage/rpm/Packages",
    "var/lib/rpm/rpmdb.sqlite",
    "var/lib/rpm/Packages.db",
    "var/lib/rpm/Packages",
];

/// CBL-Mariner distroless images list packages in a text manifest instead.
pub const MARINER_MANIFEST: &str = "var/lib/rpmmanifest/container-manifest-2";

pub fn wants(path: &str) -> bool {
    DATABASES.contains(&path) || path == MARINER_MANIFEST
}

/// An installed rpm, as the header says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rpm {
    pub name: String,
    pub epoch: Option<i64>,
    pub version: String,
    pub release: String,
    pub arch: Option<String>,
    pub source_rpm: Option<String>,
    pub license: Option<String>,
    pub vendor: Option<String>,
    pub size: Option<i64>,
    pub summary: Option<String>,
    pub modularity_label: Option<String>,
    pub requires: Vec<String>,
    pub provides: Vec<String>,
    pub files: Vec<String>,
}

/// Decodes a database file's header blobs into packages (by detected format).
pub fn read_database(bytes: &[u8]) -> Result<Vec<Rpm>> {
    let blobs = if bytes.starts_with(b"SQLite format 3\0") {
        sqlite::package_blobs(bytes)?
    } else if ndb::is_ndb(bytes) {
        ndb::package_blobs(bytes)?
    } else if bdb::is_bdb(bytes) {
        bdb::package_blobs(bytes)?
    } else {
        return Err(Error::UnknownFormat);
    };
    blobs
        .iter()
        .map(|blob| from_header(&Header::parse(blob)?))
        .collect()
}

/// The package fields of one header.
pub fn from_header(h: &Header) -> Result<Rpm> {
    let text = |tag| {
        h.string(tag)
            .filter(|s| !s.is_empty() && *s != "(none)")
            .map(str::to_string)
    };
    Ok(Rpm {
        name: text(header::NAME).ok_or(Error::NoName)?,
        epoch: h.int(header::EPOCH),
        version: text(header::VERSION).unwrap_or_default(),
        release: text(header::RELEASE).unwrap_or_default(),
        arch: text(header::ARCH),
        source_rpm: text(header::SOURCERPM),
        license: text(header::LICENSE),
        vendor: text(header::VENDOR),
        size: h.int(header::SIZE),
        summary: text(header::SUMMARY),
        modularity_label: text(header::MODULARITYLABEL),
        requires: h.strings(header::REQUIRENAME).to_vec(),
        provides: h.strings(header::PROVIDENAME).to_vec(),
        files: h.files()?,
    })
}

/// Parses `container-manifest-2` (tab separated: name, version-release, install time, build
/// time, vendor, epoch or `(none)`, size, arch, epoch number, source rpm).
pub fn parse_mariner_manifest(text: &str) -> Result<Vec<Rpm>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 10 {
                return Err(Error::ManifestFields {
                    line: i + 1,
                    fields: f.len(),
                });
            }
            let (version, release) = f[1]
                .rsplit_once('-')
                .ok_or(Error::ManifestVersion { line: i + 1 })?;
            Ok(Rpm {
                name: f[0].to_string(),
                epoch: f[5].parse().ok(),
                version: version.into(),
                release: release.into(),
                arch: Some(f[7].to_string()),
                source_rpm: Some(f[9].to_string()).filter(|s| !s.is_empty()),
                vendor: Some(f[4].to_string()).filter(|s| !s.is_empty()),
                size: f[6].parse().ok(),
                ..Rpm::default()
            })
        })
        .collect()
}

/// Reads the rpm database of the image, if it has one.
pub fn analyze(fs: &Filesystem, distro: Option<&Distro>) -> Result<Vec<Package>, crate::Error> {
    let found = DATABASES
        .iter()
        .find_map(|p| fs.read(p).map(|b| (*p, b, "rpm-database")))
        .or_else(|| {
            fs.read(MARINER_MANIFEST)
                .map(|b| (MARINER_MANIFEST, b, "rpm-container-manifest"))
        });
    let Some((path, bytes, source)) = found else {
        return Ok(vec![]);
    };
    let rpms = if path == MARINER_MANIFEST {
        parse_mariner_manifest(&String::from_utf8_lossy(bytes))
    } else {
        read_database(bytes)
    }
    .map_err(|reason| crate::Error::Corrupt {
        path: path.into(),
        reason: reason.into(),
    })?;
    let namespace = distro.map(|d| d.id.as_str());
    let distro_q = distro.map(Distro::qualifier);
    Ok(rpms
        .into_iter()
        .filter(|r| r.name != "gpg-pubkey")
        .map(|r| {
            let version = format!("{}-{}", r.version, r.release);
            let epoch = r.epoch.map(|e| e.to_string());
            let purl = purl::build(
                "rpm",
                namespace,
                &r.name,
                Some(&version),
                &[
                    ("arch", r.arch.as_deref()),
                    ("epoch", epoch.as_deref()),
                    ("distro", distro_q.as_deref()),
                    ("upstream", r.source_rpm.as_deref()),
                ],
            );
            let mut files = r.files.clone();
            files.sort();
            files.dedup();
            Package {
                ecosystem: Ecosystem::Rpm,
                version: match r.epoch {
                    Some(e) => format!("{e}:{version}"),
                    None => version,
                },
                name: r.name,
                arch: r.arch,
                source_name: r.source_rpm.as_deref().and_then(source_name),
                source_version: None,
                licenses: r.license.into_iter().collect(),
                supplier: r.vendor,
                installed_size: r.size.and_then(|s| u64::try_from(s).ok()),
                depends: r.requires,
                provides: r.provides,
                depends_on: Vec::new(),
                files,
                purl,
                evidence: Evidence {
                    source: source.into(),
                    path: path.into(),
                    method: "package-database".into(),
                },
            }
        })
        .collect())
}

/// `openssl-1.1.1k-15.cm2.src.rpm` → `openssl`.
pub fn source_name(source_rpm: &str) -> Option<String> {
    let stem = source_rpm
        .strip_suffix(".src.rpm")
        .or_else(|| source_rpm.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = stem.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    Some(name.to_string())
}
