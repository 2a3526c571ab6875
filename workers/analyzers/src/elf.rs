//! Native ELF analysis: what every executable and shared object declares (`PT_INTERP`,
//! `DT_NEEDED`, `DT_RPATH` / `DT_RUNPATH`, GNU symbol version needs, `.note.gnu.build-id`, the
//! DWARF compile units' producer and language) and which file of the image each `DT_NEEDED`
//! name resolves to, searched the way the dynamic loader would.
//!
//! ELF files are condensed while the layer streams ([`condense`]): only these facts (and the Go
//! or cargo-auditable metadata other analyzers want) are kept, never the code. [`link`] then
//! resolves the link graph over the merged filesystem. Resolution follows glibc's order —
//! `DT_RPATH` (when the object has no `DT_RUNPATH`), `DT_RUNPATH`, the directories of
//! `/etc/ld.so.conf` (with its `include`s, which is what `ld.so.cache` is built from), then the
//! system directories — with `$ORIGIN`, `$LIB` and `$PLATFORM` expanded; musl images use
//! `/etc/ld-musl-<arch>.path` or musl's defaults. Not modelled: `LD_LIBRARY_PATH` and
//! `LD_PRELOAD` (runtime environment), and the executable's `DT_RPATH` applied to its
//! libraries' own dependencies.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use stella_layerfs::Filesystem;

/// Prefix of a condensed ELF file: then a little-endian `u32` length, the facts as JSON, and
/// what the Go or Rust analyzer kept of the same file (possibly nothing).
const CONDENSED: &[u8] = b"stella-elf/1\n";

/// DWARF compile units reported per file, at most.
const MAX_UNITS: usize = 64;

/// What one ELF file declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfFacts {
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    /// 32 or 64.
    pub class: u8,
    /// `e_machine`.
    pub machine: u16,
    /// `executable`, `pie-executable`, `shared-object`, `relocatable` or `other`.
    pub kind: String,
    /// `PT_INTERP`: the dynamic loader it asks for.
    pub interpreter: Option<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH` entries (split at `:`).
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` entries (split at `:`).
    pub runpath: Vec<String>,
    /// GNU symbol version needs (`.gnu.version_r`): per needed file, the versions it requires.
    pub version_needs: Vec<VersionNeed>,
    /// `.note.gnu.build-id` (`NT_GNU_BUILD_ID`), hex.
    pub build_id: Option<String>,
    /// DWARF compile units (distinct producer / language pairs, sorted).
    pub compile_units: Vec<CompileUnit>,
}

/// Versions a file requires of one needed library.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionNeed {
    pub file: String,
    pub versions: Vec<String>,
}

/// `DW_AT_producer` and `DW_AT_language` of a compile unit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CompileUnit {
    pub producer: Option<String>,
    /// `DW_LANG_*` name (`DW_LANG_C11`, `DW_LANG_Rust`, …).
    pub language: Option<String>,
}

impl ElfFacts {
    /// The build-id as `stellaops:buildId` reports it: the GNU build-id, else — said so by the
    /// prefix — the file's SHA-256.
    pub fn build_id_or_hash(&self) -> String {
        match &self.build_id {
            Some(id) => id.clone(),
            None => format!("sha256:{}", self.sha256),
        }
    }
}

/// Whether `bytes` starts like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Whether a path names a shared object by convention (`libfoo.so`, `libfoo.so.1.2`): read even
/// when it has no execute bit, as distributions install most libraries `0644`.
pub fn wants_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".so") || name.contains(".so.")
}

/// Whether a configuration file of the loader's search path.
pub fn wants(path: &str) -> bool {
    path == "etc/ld.so.conf"
        || (path.starts_with("etc/ld.so.conf.d/") && path.ends_with(".conf"))
        || (path.starts_with("etc/ld-musl-") && path.ends_with(".path"))
}

/// Why an ELF file's facts could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF: {0}")]
    Malformed(#[from] goblin::error::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads the facts of an ELF file. Errors name what is malformed.
pub fn read(bytes: &[u8]) -> Result<ElfFacts> {
    use goblin::elf::{Elf, header, note::NT_GNU_BUILD_ID};
    if !is_elf(bytes) {
        return Err(Error::NotElf);
    }
    let elf = Elf::parse(bytes)?;
    let kind = match elf.header.e_type {
        header::ET_EXEC => "executable",
        header::ET_DYN if elf.interpreter.is_some() => "pie-executable",
        header::ET_DYN => "shared-object",
        header::ET_REL => "relocatable",
        _ => "other",
    };
    let split = |entries: &[&str]| -> Vec<String> {
        entries
            .iter()
            .flat_map(|e| e.split(':'))
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut version_needs = Vec::new();
    if let Some(verneed) = &elf.verneed {
        for need in verneed.iter() {
            let file = elf.dynstrtab.get_at(need.vn_file).unwrap_or_default();
            let mut versions: Vec<String> = need
                .iter()
                .filter_map(|aux| elf.dynstrtab.get_at(aux.vna_name))
                .map(str::to_string)
                .collect();
            versions.sort();
            versions.dedup();
            version_needs.push(VersionNeed {
                file: file.to_string(),
                versions,
            });
        }
        version_needs.sort_by(|a, b| a.file.cmp(&b.file));
    }
    let mut build_id = None;
    if let Some(notes) = elf.iter_note_headers(bytes) {
        for note in notes.flatten() {
            if note.n_type == NT_GNU_BUILD_ID && note.name == "GNU" && !note.desc.is_empty() {
                build_id = Some(hex::encode(note.desc));
                break;
            }
        }
    }
    Ok(ElfFacts {
        sha256: sha256(bytes),
        class: if elf.is_64 { 64 } else { 32 },
        machine: elf.header.e_machine,
        kind: kind.into(),
        interpreter: elf.interpreter.map(str::to_string),
        soname: elf.soname.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpath: split(&elf.rpaths),
        runpath: split(&elf.runpaths),
        version_needs,
        build_id,
        compile_units: compile_units(&elf, bytes),
    })
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Producer and language of the DWARF compile units, when the file carries `.debug_info`
/// (uncompressed; distribution binaries are stripped and have none).
fn compile_units(elf: &goblin::elf::Elf, bytes: &[u8]) -> Vec<CompileUnit> {
    use gimli::{EndianSlice, RunTimeEndian, SectionId};
    use goblin::elf::section_header::{SHF_COMPRESSED, SHT_NOBITS};
    let section_data = |name: &str| -> &[u8] {
        elf.section_headers
            .iter()
            .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(name))
            .filter(|sh| sh.sh_type != SHT_NOBITS && sh.sh_flags & u64::from(SHF_COMPRESSED) == 0)
            .and_then(|sh| {
                let start = usize::try_from(sh.sh_offset).ok()?;
                let end = start.checked_add(usize::try_from(sh.sh_size).ok()?)?;
                bytes.get(start..end)
            })
            .unwrap_or(&[])
    };
    if section_data(".debug_info").is_empty() {
        return vec![];
    }
    let endian = if elf.little_endian {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let load = |id: SectionId| -> Result<EndianSlice<'_, RunTimeEndian>, gimli::Error> {
        Ok(EndianSlice::new(section_data(id.name()), endian))
    };
    let Ok(dwarf) = gimli::Dwarf::load(load) else {
        return vec![];
    };
    let mut found = BTreeSet::new();
    let mut headers = dwarf.units();
    let mut seen = 0;
    while let Ok(Some(header)) = headers.next() {
        seen += 1;
        if seen > 10_000 || found.len() >= MAX_UNITS {
            break;
        }
        let Ok(unit) = dwarf.unit(header) else {
            continue;
        };
        let mut entries = unit.entries();
        let Ok(Some(root)) = entries.next_dfs() else {
            continue;
        };
        let producer = root
            .attr_value(gimli::DW_AT_producer)
            .and_then(|v| dwarf.attr_string(&unit, v).ok())
            .map(|s| String::from_utf8_lossy(s.slice()).into_owned());
        let language = match root.attr_value(gimli::DW_AT_language) {
            Some(gimli::AttributeValue::Language(lang)) => Some(
                lang.static_string()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("DW_LANG_0x{:04x}", lang.0)),
            ),
            _ => None,
        };
        found.insert(CompileUnit { producer, language });
    }
    found.into_iter().collect()
}

/// What to keep of a file that may be an ELF object: its facts, followed by what `inner`
/// (the Go / Rust analyzers' condensation of the same bytes) keeps. `None` for non-ELF or
/// malformed files.
pub fn condense(bytes: &[u8], inner: Option<Vec<u8>>) -> Option<Vec<u8>> {
    let facts = read(bytes).ok()?;
    let json = serde_json::to_vec(&facts).ok()?;
    let mut out = CONDENSED.to_vec();
    out.extend(u32::try_from(json.len()).ok()?.to_le_bytes());
    out.extend(json);
    out.extend(inner.unwrap_or_default());
    Some(out)
}

/// The facts of a condensed ELF file (`None` for anything else).
pub fn facts(condensed: &[u8]) -> Option<ElfFacts> {
    let (json, _) = split(condensed)?;
    serde_json::from_slice(json).ok()
}

/// What other analyzers kept of a condensed ELF file; any other bytes unchanged.
pub fn inner(bytes: &[u8]) -> &[u8] {
    split(bytes).map(|(_, rest)| rest).unwrap_or(bytes)
}

fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = bytes.strip_prefix(CONDENSED)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let rest = &rest[4..];
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// The resolved link graph of an image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binaries {
    /// Every ELF file, by absolute path.
    pub objects: BTreeMap<String, ElfFacts>,
    /// Absolute path → the files its `DT_NEEDED` names resolve to (needed order), and the
    /// interpreter when it exists.
    pub links: BTreeMap<String, Vec<String>>,
    /// Absolute path → `DT_NEEDED` names no search directory holds.
    pub unresolved: BTreeMap<String, Vec<String>>,
}

impl Binaries {
    /// Files reachable from `roots` over `links` (the roots included), sorted.
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = roots.into_iter().map(str::to_string).collect();
        while let Some(path) = stack.pop() {
            if !seen.insert(path.clone()) {
                continue;
            }
            if let Some(next) = self.links.get(&path) {
                stack.extend(next.iter().filter(|n| !seen.contains(*n)).cloned());
            }
        }
        seen
    }
}

/// Resolves the link graph of every captured ELF file of `fs`.
pub fn link(fs: &Filesystem) -> Binaries {
    let mut binaries = Binaries::default();
    for (path, bytes) in fs.files_under("") {
        if let Some(facts) = facts(bytes) {
            binaries.objects.insert(format!("/{path}"), facts);
        }
    }
    let search = SearchPath::read(fs, &binaries.objects);
    let mut links = BTreeMap::new();
    let mut unresolved = BTreeMap::new();
    for (path, facts) in &binaries.objects {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        if let Some(interp) = &facts.interpreter
            && let Some(file) = search.existing(fs, interp)
        {
            found.push(file);
        }
        for needed in &facts.needed {
            match search.find(fs, &binaries.objects, path, facts, needed) {
                Some(file) if &file != path => found.push(file),
                Some(_) => {}
                None => missing.push(needed.clone()),
            }
        }
        found.dedup();
        if !found.is_empty() {
            links.insert(path.clone(), found);
        }
        if !missing.is_empty() {
            unresolved.insert(path.clone(), missing);
        }
    }
    binaries.links = links;
    binaries.unresolved = unresolved;
    binaries
}

/// The loader's directories after the object's own: from `ld.so.conf` (glibc) or the musl path
/// file, then the system defaults.
struct SearchPath {
    configured: Vec<String>,
    musl: bool,
}

impl SearchPath {
    fn read(fs: &Filesystem, objects: &BTreeMap<String, ElfFacts>) -> SearchPath {
        let musl = objects
            .values()
            .filter_map(|f| f.interpreter.as_deref())
            .any(|i| i.contains("ld-musl"));
        let mut configured = Vec::new();
        if musl {
            if let Some((_, bytes)) = fs
                .files_under("etc")
                .find(|(p, _)| p.starts_with("etc/ld-musl-") && p.ends_with(".path"))
            {
                let text = String::from_utf8_lossy(bytes);
                configured.extend(
                    text.split(|c: char| c == ':' || c.is_whitespace())
                        .filter(|d| d.starts_with('/'))
                        .map(str::to_string),
                );
            }
        } else {
            let mut seen = BTreeSet::new();
            read_ld_so_conf(fs, "etc/ld.so.conf", &mut configured, &mut seen, 0);
        }
        SearchPath { configured, musl }
    }

    /// The image file at absolute `path`, after symlinks, when it exists.
    fn existing(&self, fs: &Filesystem, path: &str) -> Option<String> {
        let resolved = fs.resolve(path.trim_start_matches('/'))?;
        match fs.node(&resolved)?.kind {
            stella_layerfs::EntryKind::File { .. } => Some(format!("/{resolved}")),
            _ => None,
        }
    }

    fn find(
        &self,
        fs: &Filesystem,
        objects: &BTreeMap<String, ElfFacts>,
        from: &str,
        facts: &ElfFacts,
        needed: &str,
    ) -> Option<String> {
        if needed.contains('/') {
            return self.existing(fs, needed);
        }
        let origin = from.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let expand = |dir: &str| -> String {
            let lib = if facts.class == 64 { "lib64" } else { "lib" };
            let platform = platform(facts.machine);
            dir.replace("${ORIGIN}", origin)
                .replace("$ORIGIN", origin)
                .replace("${LIB}", lib)
                .replace("$LIB", lib)
                .replace("${PLATFORM}", platform)
                .replace("$PLATFORM", platform)
        };
        let mut dirs: Vec<String> = Vec::new();
        if facts.runpath.is_empty() {
            dirs.extend(facts.rpath.iter().map(|d| expand(d)));
        }
        dirs.extend(facts.runpath.iter().map(|d| expand(d)));
        dirs.extend(self.configured.iter().cloned());
        dirs.extend(self.defaults(facts));
        dirs.into_iter().find_map(|dir| {
            let file = self.existing(fs, &format!("{}/{needed}", dir.trim_end_matches('/')))?;
            // The loader skips what is not an ELF object of the same class and machine, and
            // keeps searching.
            let lib = objects.get(&file)?;
            (lib.class == facts.class && lib.machine == facts.machine).then_some(file)
        })
    }

    fn defaults(&self, facts: &ElfFacts) -> Vec<String> {
        if self.musl {
            return ["/lib", "/usr/local/lib", "/usr/lib"]
                .map(String::from)
                .to_vec();
        }
        let mut dirs = Vec::new();
        // Debian's multiarch directories, which its ld.so.conf.d names (kept for images that
        // ship no ld.so.conf, like distroless).
        if let Some(triplet) = multiarch(facts.machine, facts.class) {
            for base in ["/lib", "/usr/lib"] {
                dirs.push(format!("{base}/{triplet}"));
            }
        }
        if facts.class == 64 {
            dirs.extend(["/lib64", "/usr/lib64"].map(String::from));
        }
        dirs.extend(["/lib", "/usr/lib"].map(String::from));
        dirs
    }
}

/// Reads an `ld.so.conf`: directories one per line (or separated by `:` `,` whitespace), `#`
/// comments, `include <glob>` (a `*` in the last component), `hwcap` lines ignored.
fn read_ld_so_conf(
    fs: &Filesystem,
    path: &str,
    dirs: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
    depth: usize,
) {
    if depth > 8 || !seen.insert(path.to_string()) {
        return;
    }
    let Some(bytes) = fs.read(path) else {
        return;
    };
    let text = String::from_utf8_lossy(bytes).into_owned();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(pattern) = line.strip_prefix("include") {
            for pattern in pattern.split_whitespace() {
                let pattern = pattern.trim_start_matches('/');
                let (dir, glob) = pattern.rsplit_once('/').unwrap_or(("", pattern));
                let matches: Vec<String> = fs
                    .files_under(dir)
                    .map(|(p, _)| p.to_string())
                    .filter(|p| {
                        let name = p.rsplit('/').next().unwrap_or_default();
                        p.matches('/').count() == dir.matches('/').count() + 1
                            && glob_match(glob, name)
                    })
                    .collect();
                for m in matches {
                    read_ld_so_conf(fs, &m, dirs, seen, depth + 1);
                }
            }
        } else if !line.starts_with("hwcap") {
            dirs.extend(
                line.split(|c: char| c == ':' || c == ',' || c.is_whitespace())
                    .filter(|d| d.starts_with('/'))
                    .map(str::to_string),
            );
        }
    }
}

/// `*` matches any run of characters; everything else literally.
fn glob_match(glob: &str, name: &str) -> bool {
    match glob.split_once('*') {
        None => glob == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            if !tail.contains('*') {
                return rest.len() >= tail.len() && rest.ends_with(tail);
            }
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob_match(tail, &rest[i..]))
        }
    }
}

fn platform(machine: u16) -> &'static str {
    use goblin::elf::header::*;
    match machine {
        EM_X86_64 => "x86_64",
        EM_386 => "i686",
        EM_AARCH64 => "aarch64",
        EM_ARM => "armv7l",
        EM_PPC64 => "ppc64le",
        EM_S390 => "s390x",
        EM_RISCV => "riscv64",
        _ => "unknown",
    }
}

fn multiarch(machine: u16, class: u8) -> Option<&'static str> {
    use goblin::elf::header::*;
    Some(match (machine, class) {
        (EM_X86_64, 64) => "x86_64-linux-gnu",
        (EM_386, _) => "i386-linux-gnu",
        (EM_AARCH64, _) => "aarch64-linux-gnu",
        (EM_ARM, _) => "arm-linux-gnueabihf",
        (EM_PPC64, _) => "powerpc64le-linux-gnu",
        (EM_S390, _) => "s390x-linux-gnu",
        (EM_RISCV, _) => "riscv64-linux-gnu",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_the_loader_config() {
        assert!(glob_match("*.conf", "x86_64-linux-gnu.conf"));
        assert!(glob_match("libc.conf", "libc.conf"));
        assert!(!glob_match("*.conf", "notes.txt"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn condensed_files_round_trip_and_garbage_is_refused() {
        assert_eq!(read(b"not elf").unwrap_err().to_string(), "not an ELF file");
        assert!(
            read(b"\x7fELF\x02\x01\x01")
                .unwrap_err()
                .to_string()
                .starts_with("malformed ELF")
        );
        assert!(condense(b"\x7fELF garbage", None).is_none());
        assert!(facts(b"stella-elf/1\n\xff\xff\xff\xff{}").is_none());
        assert!(facts(b"stella-elf/1\n\x02").is_none());
        assert_eq!(inner(b"plain"), b"plain");
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let condensed = condense(&exe, Some(b"rest".to_vec())).unwrap();
        assert!(condensed.len() < exe.len());
        let facts = facts(&condensed).unwrap();
        assert_eq!(facts.class, 64);
        assert_eq!(inner(&condensed), b"rest");
        assert_eq!(facts, read(&exe).unwrap());
    }

    #[test]
    fn truncated_and_corrupted_objects_never_panic() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        // Every truncation point in the headers, then coarser steps through the file.
        let cuts = (0..4096.min(exe.len()))
            .step_by(3)
            .chain((4096..exe.len()).step_by(exe.len() / 16 + 1));
        for cut in cuts {
            let _ = read(&exe[..cut]);
        }
        // Flipped bytes in the headers and the dynamic section's neighbourhood.
        for at in (0..2048.min(exe.len())).step_by(7) {
            let mut bad = exe.clone();
            bad[at] ^= 0xff;
            let _ = read(&bad);
        }
    }
}
