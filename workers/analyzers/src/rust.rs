//! Rust binaries built with `cargo auditable`: the `.dep-v0` ELF section holds the crate graph
//! as zlib-compressed JSON. Runtime crates become components (build-time crates are not in the
//! binary), each with the crates it depends on. Found by content, like Go binaries.

use crate::model::{Ecosystem, Evidence, Package};
use serde::{Deserialize, Serialize};
use std::io::Read;
use stella_layerfs::Filesystem;

const SECTION: &str = ".dep-v0";
/// Marks condensed content.
const CONDENSED: &[u8] = b"stella-cargo-auditable/1\n";
/// Largest decompressed dependency list accepted.
const MAX_JSON: u64 = 16 << 20;

/// One crate of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crate {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub source: String,
    #[serde(default = "runtime")]
    pub kind: String,
    #[serde(default)]
    pub dependencies: Vec<usize>,
    #[serde(default)]
    pub root: bool,
}

fn runtime() -> String {
    "runtime".into()
}

#[derive(Debug, Deserialize)]
struct VersionInfo {
    packages: Vec<Crate>,
}

/// Why a binary's crate graph could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unrecognized executable format")]
    NotElf,
    #[error("not a valid ELF file: {0}")]
    Elf(#[from] goblin::error::Error),
    #[error("no .dep-v0 section (not built with cargo auditable)")]
    NoSection,
    #[error("truncated .dep-v0 section")]
    TruncatedSection,
    #[error(".dep-v0 is not zlib data: {0}")]
    Zlib(#[source] std::io::Error),
    #[error(".dep-v0 expands beyond 16 MiB")]
    TooLarge,
    #[error(".dep-v0 is not a crate list: {0}")]
    Json(#[from] serde_json::Error),
    #[error(".dep-v0 names a dependency that is not listed")]
    DanglingDependency,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The crate graph of an ELF binary.
pub fn read(bytes: &[u8]) -> Result<Vec<Crate>> {
    if !crate::elf::is_elf(bytes) {
        return Err(Error::NotElf);
    }
    let elf = goblin::elf::Elf::parse(bytes)?;
    let section = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(SECTION))
        .ok_or(Error::NoSection)?;
    let start = section.sh_offset as usize;
    let compressed = start
        .checked_add(section.sh_size as usize)
        .and_then(|end| bytes.get(start..end))
        .ok_or(Error::TruncatedSection)?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .map_err(Error::Zlib)?;
    if json.len() as u64 > MAX_JSON {
        return Err(Error::TooLarge);
    }
    let info: VersionInfo = serde_json::from_slice(&json)?;
    if info
        .packages
        .iter()
        .any(|p| p.dependencies.iter().any(|&d| d >= info.packages.len()))
    {
        return Err(Error::DanglingDependency);
    }
    Ok(info.packages)
}

/// Condenses an executable: its crate graph when it has one, else nothing.
pub fn condense(bytes: &[u8]) -> Option<Vec<u8>> {
    // Only the section headers are read to decide (most executables are not Rust).
    if !has_section(bytes, SECTION) {
        return None;
    }
    let crates = read(bytes).ok()?;
    let mut out = CONDENSED.to_vec();
    out.extend(serde_json::to_vec(&crates).ok()?);
    Some(out)
}

/// Whether an ELF file has a section named `name`, from its section headers alone.
fn has_section(bytes: &[u8], name: &str) -> bool {
    use goblin::elf::{Elf, section_header::SectionHeader};
    let Ok(header) = Elf::parse_header(bytes) else {
        return false;
    };
    let (Ok(container), Ok(endian)) = (header.container(), header.endianness()) else {
        return false;
    };
    let ctx = goblin::container::Ctx::new(container, endian);
    let Ok(sections) =
        SectionHeader::parse(bytes, header.e_shoff as usize, header.e_shnum as usize, ctx)
    else {
        return false;
    };
    let Some(strtab) = sections.get(header.e_shstrndx as usize) else {
        return false;
    };
    let base = strtab.sh_offset as usize;
    sections.iter().any(|s| {
        let start = base.saturating_add(s.sh_name);
        bytes
            .get(start..)
            .and_then(|rest| rest.split(|&b| b == 0).next())
            .is_some_and(|n| n == name.as_bytes())
    })
}

pub fn analyze(fs: &Filesystem) -> Result<Vec<Package>, crate::Error> {
    let mut packages = Vec::new();
    for (path, bytes) in fs.files_under("") {
        let Some(json) = crate::elf::inner(bytes).strip_prefix(CONDENSED) else {
            continue;
        };
        let Ok(crates) = serde_json::from_slice::<Vec<Crate>>(json) else {
            continue;
        };
        let purl = |c: &Crate| crate::purl::build("cargo", None, &c.name, Some(&c.version), &[]);
        for c in crates.iter().filter(|c| c.kind == "runtime") {
            let mut depends_on: Vec<String> = c
                .dependencies
                .iter()
                .filter_map(|&d| crates.get(d))
                .filter(|d| d.kind == "runtime")
                .map(purl)
                .collect();
            depends_on.sort();
            depends_on.dedup();
            packages.push(Package {
                depends_on,
                ..Package::installed(
                    Ecosystem::Cargo,
                    c.name.clone(),
                    c.version.clone(),
                    purl(c),
                    Evidence {
                        source: "cargo-auditable".into(),
                        path: path.to_string(),
                        method: if c.root { "root-crate" } else { "dependency" }.into(),
                    },
                )
            });
        }
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_panics() {
        assert!(
            read(b"MZ not elf")
                .unwrap_err()
                .to_string()
                .contains("unrecognized")
        );
        let mut fake = b"\x7fELF\x02\x01\x01".to_vec();
        fake.extend_from_slice(b".dep-v0");
        fake.resize(200, 0);
        assert!(read(&fake).is_err());
        assert!(condense(&fake).is_none());
        assert!(condense(b"\x7fELF without the section").is_none());
    }
}
