//! `os-release`: which distribution the image is.

use crate::model::Distro;
use stella_layerfs::Filesystem;

const PATHS: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

pub fn wants(path: &str) -> bool {
    PATHS.contains(&path) || path == "etc/alpine-release" || path == "etc/debian_version"
}

/// Parses `KEY=value` lines (quotes and backslash escapes as the spec allows).
pub fn parse(text: &str) -> Option<Distro> {
    let mut distro = Distro::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(raw.trim());
        match key.trim() {
            "ID" => distro.id = value.to_ascii_lowercase(),
            "VERSION_ID" => distro.version_id = Some(value).filter(|v| !v.is_empty()),
            "VERSION_CODENAME" => distro.version_codename = Some(value).filter(|v| !v.is_empty()),
            "PRETTY_NAME" => distro.pretty_name = Some(value).filter(|v| !v.is_empty()),
            "ID_LIKE" => distro.id_like = value.split_whitespace().map(str::to_string).collect(),
            _ => {}
        }
    }
    (!distro.id.is_empty()).then_some(distro)
}

fn unquote(raw: &str) -> String {
    let inner = if raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"'))
            || (raw.starts_with('\'') && raw.ends_with('\'')))
    {
        &raw[1..raw.len() - 1]
    } else {
        raw
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The distribution of the merged filesystem, if it says.
pub fn detect(fs: &Filesystem) -> Option<Distro> {
    PATHS
        .iter()
        .find_map(|p| fs.read(p))
        .and_then(|bytes| parse(&String::from_utf8_lossy(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_alpine_and_garbage() {
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";
        let d = parse(debian).unwrap();
        assert_eq!(
            (
                d.id.as_str(),
                d.version_id.as_deref(),
                d.qualifier().as_str()
            ),
            ("debian", Some("12"), "debian-12")
        );
        let alpine = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n";
        assert_eq!(parse(alpine).unwrap().qualifier(), "alpine-3.19.1");
        assert_eq!(parse("garbage\n\0\0=\n"), None);
        assert_eq!(
            parse("ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID='9.3'")
                .unwrap()
                .id_like,
            ["fedora"]
        );
    }
}
