//! Go binaries: the build information the Go linker embeds (`runtime/debug.BuildInfo`) — the
//! toolchain version (as the `stdlib` component), the main module and every dependency with
//! version, checksum and `=>` replacement. Found by content, not by path: any executable ELF
//! file carrying the `\xff Go buildinf:` header. Both layouts are decoded: inline strings (Go ≥
//! 1.18) and pointers into the data segment (older), mapped through the ELF program headers.

use crate::model::{Ecosystem, Evidence, Package};
use serde::{Deserialize, Serialize};
use stella_layerfs::Filesystem;

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Marks condensed content.
const CONDENSED: &[u8] = b"stella-go-buildinfo/1\n";

/// One Go module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    pub path: String,
    pub version: String,
    pub sum: Option<String>,
}

/// What a binary's build information says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// `go1.22.1`.
    pub go_version: String,
    /// The main package's path (`path` line), when recorded.
    pub path: Option<String>,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` settings (`-ldflags`, `GOOS`, `vcs.revision`, …).
    pub settings: Vec<(String, String)>,
}

/// Why a binary's build information could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unrecognized executable format")]
    NotElf,
    #[error("not a Go binary (no build information)")]
    NoBuildInfo,
    #[error("unexpected pointer size {0}")]
    PointerSize(usize),
    #[error("not a valid ELF file: {0}")]
    Elf(#[from] goblin::error::Error),
    #[error("address outside the file")]
    AddressOutsideFile,
    #[error("string outside the file")]
    StringOutsideFile,
    #[error("implausible string length")]
    ImplausibleLength,
    #[error("bad length in build information")]
    BadLength,
    #[error("truncated build information")]
    Truncated,
    #[error("unexpected Go version {0:?}")]
    GoVersion(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads the build information of an ELF binary.
pub fn read(bytes: &[u8]) -> Result<BuildInfo> {
    if !crate::elf::is_elf(bytes) {
        return Err(Error::NotElf);
    }
    // The header is 16-byte aligned in the data segment.
    let start = memchr::memmem::find_iter(bytes, MAGIC)
        .find(|&i| i % 16 == 0 && i + 32 <= bytes.len())
        .ok_or(Error::NoBuildInfo)?;
    let header = &bytes[start..start + 32];
    let ptr_size = header[14] as usize;
    let flags = header[15];
    let (go_version, modinfo) = if flags & 2 != 0 {
        let mut at = start + 32;
        let version = inline_string(bytes, &mut at)?;
        let modinfo = inline_string(bytes, &mut at)?;
        (version, modinfo)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(Error::PointerSize(ptr_size));
        }
        let big_endian = flags & 1 != 0;
        let elf = goblin::elf::Elf::parse(bytes)?;
        let read_ptr = |addr: u64| -> Result<u64> {
            let offset = file_offset(&elf, addr).ok_or(Error::AddressOutsideFile)?;
            let raw = bytes
                .get(offset..offset + ptr_size)
                .ok_or(Error::Truncated)?;
            Ok(match (ptr_size, big_endian) {
                (4, false) => u32::from_le_bytes(raw.try_into().unwrap_or_default()) as u64,
                (4, true) => u32::from_be_bytes(raw.try_into().unwrap_or_default()) as u64,
                (_, false) => u64::from_le_bytes(raw.try_into().unwrap_or_default()),
                (_, true) => u64::from_be_bytes(raw.try_into().unwrap_or_default()),
            })
        };
        let go_string = |header_addr: u64| -> Result<String> {
            let data = read_ptr(header_addr)?;
            let len = read_ptr(header_addr + ptr_size as u64)? as usize;
            if len > 1 << 24 {
                return Err(Error::ImplausibleLength);
            }
            let offset = file_offset(&elf, data).ok_or(Error::StringOutsideFile)?;
            let raw = bytes.get(offset..offset + len).ok_or(Error::Truncated)?;
            Ok(String::from_utf8_lossy(raw).into_owned())
        };
        let field = |i: usize| -> u64 {
            let raw = &header[16 + i * ptr_size..16 + (i + 1) * ptr_size];
            match (ptr_size, big_endian) {
                (4, false) => u32::from_le_bytes(raw.try_into().unwrap_or_default()) as u64,
                (4, true) => u32::from_be_bytes(raw.try_into().unwrap_or_default()) as u64,
                (_, false) => u64::from_le_bytes(raw.try_into().unwrap_or_default()),
                (_, true) => u64::from_be_bytes(raw.try_into().unwrap_or_default()),
            }
        };
        (go_string(field(0))?, go_string(field(1))?)
    };
    if !go_version.starts_with("go") {
        return Err(Error::GoVersion(go_version));
    }
    Ok(parse_modinfo(go_version, &modinfo))
}

fn file_offset(elf: &goblin::elf::Elf, addr: u64) -> Option<usize> {
    elf.program_headers
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
        .find(|p| addr >= p.p_vaddr && addr < p.p_vaddr + p.p_filesz)
        .map(|p| (addr - p.p_vaddr + p.p_offset) as usize)
}

fn inline_string(bytes: &[u8], at: &mut usize) -> Result<String> {
    let (mut len, mut shift) = (0u64, 0);
    loop {
        let b = *bytes.get(*at).ok_or(Error::Truncated)?;
        *at += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 35 {
            return Err(Error::BadLength);
        }
    }
    let end = at
        .checked_add(len as usize)
        .filter(|&e| e <= bytes.len())
        .ok_or(Error::Truncated)?;
    let s = String::from_utf8_lossy(&bytes[*at..end]).into_owned();
    *at = end;
    Ok(s)
}

/// Parses `runtime/debug` modinfo text (with or without its 16-byte sentinels).
pub fn parse_modinfo(go_version: String, modinfo: &str) -> BuildInfo {
    let text = if modinfo.len() >= 33 && modinfo.as_bytes()[modinfo.len() - 17] == b'\n' {
        modinfo.get(16..modinfo.len() - 16).unwrap_or(modinfo)
    } else {
        modinfo
    };
    let mut info = BuildInfo {
        go_version,
        path: None,
        main: None,
        deps: vec![],
        settings: vec![],
    };
    let module = |fields: &[&str]| Module {
        path: fields.first().unwrap_or(&"").to_string(),
        version: fields.get(1).unwrap_or(&"").to_string(),
        sum: fields
            .get(2)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty()),
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.first().copied() {
            Some("path") => info.path = fields.get(1).map(|s| s.to_string()),
            Some("mod") => info.main = Some(module(&fields[1..])),
            Some("dep") => info.deps.push(module(&fields[1..])),
            // A replacement applies to the dependency just listed.
            Some("=>") => {
                if let Some(last) = info.deps.last_mut() {
                    *last = module(&fields[1..]);
                }
            }
            Some("build") => {
                if let Some((k, v)) = fields.get(1).and_then(|kv| kv.split_once('=')) {
                    info.settings.push((k.to_string(), v.to_string()));
                }
            }
            _ => {}
        }
    }
    info
}

/// Condenses an executable: its build information when it is a Go binary, else nothing.
pub fn condense(bytes: &[u8]) -> Option<Vec<u8>> {
    if !crate::elf::is_elf(bytes) {
        return None;
    }
    let info = read(bytes).ok()?;
    let mut out = CONDENSED.to_vec();
    out.extend(serde_json::to_vec(&info).ok()?);
    Some(out)
}

/// The main module's version: the recorded one, else a `-X main.version=…` link flag (what
/// release builds without module versions use), else none.
fn main_version(info: &BuildInfo, main: &Module) -> Option<String> {
    if !main.version.is_empty() && main.version != "(devel)" {
        return Some(main.version.clone());
    }
    let ldflags = info
        .settings
        .iter()
        .find(|(k, _)| k == "-ldflags")
        .map(|(_, v)| v.as_str())?;
    let flags: Vec<&str> = ldflags.trim_matches('"').split_whitespace().collect();
    flags.windows(2).find_map(|w| {
        let value = if w[0] == "-X" {
            w[1]
        } else {
            w[0].strip_prefix("-X=")?
        };
        let (name, version) = value.split_once('=')?;
        let lower = name.to_ascii_lowercase();
        (lower.ends_with("main.version") || lower.ends_with("main.appversion"))
            .then(|| version.to_string())
    })
}

pub fn analyze(fs: &Filesystem) -> Result<Vec<Package>, crate::Error> {
    let mut packages = Vec::new();
    for (path, bytes) in fs.files_under("") {
        let Some(json) = crate::elf::inner(bytes).strip_prefix(CONDENSED) else {
            continue;
        };
        let Ok(info) = serde_json::from_slice::<BuildInfo>(json) else {
            continue;
        };
        let package = |name: &str, version: &str, method: &str| {
            let (namespace, short) = match name.rsplit_once('/') {
                Some((ns, short)) => (Some(ns), short),
                None => (None, name),
            };
            Package::installed(
                Ecosystem::Golang,
                name.to_string(),
                version.to_string(),
                crate::purl::build("golang", namespace, short, Some(version), &[]),
                Evidence {
                    source: "go-buildinfo".into(),
                    path: path.to_string(),
                    method: method.into(),
                },
            )
        };
        let stdlib = format!("v{}", info.go_version.trim_start_matches("go"));
        // GOEXPERIMENT builds append `X:…` to the version: the toolchain is the part before.
        let stdlib = stdlib.split(' ').next().unwrap_or_default().to_string();
        packages.push(package("stdlib", &stdlib, "toolchain"));
        if let Some(main) = &info.main
            && !main.path.is_empty()
        {
            let version = main_version(&info, main).unwrap_or_default();
            packages.push(package(&main.path, &version, "main-module"));
        }
        for dep in &info.deps {
            packages.push(package(&dep.path, &dep.version, "dependency"));
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
            read(b"not elf")
                .unwrap_err()
                .to_string()
                .contains("unrecognized")
        );
        assert!(
            read(b"\x7fELF")
                .unwrap_err()
                .to_string()
                .contains("not a Go binary")
        );
        let mut fake = b"\x7fELF".to_vec();
        fake.resize(32, 0);
        fake.extend_from_slice(MAGIC);
        fake.extend_from_slice(&[8, 2]);
        fake.resize(64, 0xff);
        assert!(read(&fake).is_err());
        let info = parse_modinfo(
            "go1.21.0".into(),
            "path\tx/cmd\nmod\tx\t(devel)\t\ndep\ta\tv1.0.0\th1:abc\n=>\tb\tv2.0.0\th1:def\nbuild\t-ldflags=\"-X main.version=v9.9.9\"\n",
        );
        assert_eq!(info.deps[0].path, "b");
        let main = info.main.clone().unwrap();
        assert_eq!(main_version(&info, &main).as_deref(), Some("v9.9.9"));
    }
}
