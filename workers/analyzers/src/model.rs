//! What analyzers report.

use serde::{Deserialize, Serialize};

/// Package ecosystems the analyzers know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Deb,
    Apk,
    Rpm,
    Pypi,
    Npm,
    Maven,
    Golang,
    Nuget,
    Cargo,
    /// An executable or library no package database or language metadata owns, identified by
    /// its content: `bin:{sha256}`.
    Binary,
}

/// The distribution, from `os-release`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    /// `ID` (`debian`, `alpine`, `rhel`, …).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.19.1`, …).
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub pretty_name: Option<String>,
    pub id_like: Vec<String>,
}

impl Distro {
    /// The purl `distro` qualifier: `debian-12`, `alpine-3.19.1`.
    pub fn qualifier(&self) -> String {
        match &self.version_id {
            Some(v) => format!("{}-{v}", self.id),
            None => self.id.clone(),
        }
    }
}

/// Where a fact was proven.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Which analyzer: `dpkg-status`, `dpkg-status.d`, `apk-installed`, `rpm-sqlite`, …
    pub source: String,
    /// Root-relative path of the database file.
    pub path: String,
    /// How: `package-database`.
    pub method: String,
}

/// An installed OS package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    /// Source package name (dpkg `Source`, apk origin, rpm sourcerpm name).
    pub source_name: Option<String>,
    /// Source package version, when it differs from the binary's.
    pub source_version: Option<String>,
    pub licenses: Vec<String>,
    /// Maintainer (deb, apk) or vendor (rpm).
    pub supplier: Option<String>,
    pub installed_size: Option<u64>,
    /// Dependency declarations as written.
    pub depends: Vec<String>,
    /// Capabilities the package provides (names, sonames, commands), as written.
    pub provides: Vec<String>,
    /// Purls of the installed packages the declarations resolve to (filled by
    /// [`crate::resolve_dependencies`]), sorted.
    pub depends_on: Vec<String>,
    /// Files the package owns, as absolute paths, sorted.
    pub files: Vec<String>,
    pub purl: String,
    pub evidence: Evidence,
}

impl Package {
    /// A package known only by name, version, purl and evidence (language packages fill in
    /// what their metadata adds with struct update syntax).
    pub fn installed(
        ecosystem: Ecosystem,
        name: String,
        version: String,
        purl: String,
        evidence: Evidence,
    ) -> Package {
        Package {
            ecosystem,
            name,
            version,
            arch: None,
            source_name: None,
            source_version: None,
            licenses: vec![],
            supplier: None,
            installed_size: None,
            depends: vec![],
            provides: vec![],
            depends_on: vec![],
            files: vec![],
            purl,
            evidence,
        }
    }
}

/// What the OS analyzers found in an image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    pub distro: Option<Distro>,
    /// Sorted by purl.
    pub packages: Vec<Package>,
    /// Databases present but unreadable, with the reason (a degraded result, not a guess).
    pub errors: Vec<String>,
}
