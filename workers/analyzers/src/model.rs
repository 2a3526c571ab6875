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
    /// ELF files and their resolved link graph.
    pub binaries: crate::elf::Binaries,
    /// Absolute path (symlinks resolved) → index into `packages` of the package that owns it:
    /// the OS package listing it, the language package whose metadata names it (a Go binary's
    /// main module, a Python `RECORD`, the npm package directory holding it), or the `bin:`
    /// component made for it.
    pub owners: std::collections::BTreeMap<String, usize>,
}

impl Analysis {
    /// `links_to` edges between packages (purl → purl), from the ELF link graph: an object
    /// owned by one package needs a library owned by another.
    pub fn links_to(&self) -> std::collections::BTreeSet<(String, String)> {
        let mut edges = std::collections::BTreeSet::new();
        for (object, libraries) in &self.binaries.links {
            let Some(&from) = self.owners.get(object) else {
                continue;
            };
            for library in libraries {
                if let Some(&to) = self.owners.get(library)
                    && self.packages[from].purl != self.packages[to].purl
                {
                    edges.insert((
                        self.packages[from].purl.clone(),
                        self.packages[to].purl.clone(),
                    ));
                }
            }
        }
        edges
    }

    /// Per package (aligned with `packages`), the `stellaops:` properties its ELF files add:
    /// `stellaops:buildId` for each (the GNU build-id, else `sha256:<file hash>`), and for a
    /// `bin:` component what the file declares (kind, interpreter, soname, needed names no
    /// directory of the image holds, DWARF producer and language).
    pub fn elf_properties(&self) -> Vec<Vec<(String, String)>> {
        let mut properties = vec![Vec::new(); self.packages.len()];
        for (path, &index) in &self.owners {
            let Some(facts) = self.binaries.objects.get(path) else {
                continue;
            };
            let props: &mut Vec<(String, String)> = &mut properties[index];
            props.push(("stellaops:buildId".into(), facts.build_id_or_hash()));
            if self.packages[index].ecosystem != Ecosystem::Binary {
                continue;
            }
            props.push(("stellaops:elf.kind".into(), facts.kind.clone()));
            if let Some(interp) = &facts.interpreter {
                props.push(("stellaops:elf.interpreter".into(), interp.clone()));
            }
            if let Some(soname) = &facts.soname {
                props.push(("stellaops:elf.soname".into(), soname.clone()));
            }
            for needed in self.binaries.unresolved.get(path).into_iter().flatten() {
                props.push(("stellaops:elf.unresolvedNeeded".into(), needed.clone()));
            }
            for unit in &facts.compile_units {
                if let Some(producer) = &unit.producer {
                    props.push(("stellaops:dwarf.producer".into(), producer.clone()));
                }
                if let Some(language) = &unit.language {
                    props.push(("stellaops:dwarf.language".into(), language.clone()));
                }
            }
        }
        for props in &mut properties {
            props.sort();
            props.dedup();
        }
        properties
    }
}
