//! Package URLs (purl spec): percent-encoding and qualifiers in canonical (sorted) order.

/// Percent-encodes everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:<type>/<namespace>/<name>@<version>?<qualifiers>` with qualifiers sorted by key and
/// empty values dropped.
pub fn build(
    type_: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, Option<&str>)],
) -> String {
    let mut purl = format!("pkg:{type_}/");
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        purl.push_str(&ns.split('/').map(encode).collect::<Vec<_>>().join("/"));
        purl.push('/');
    }
    purl.push_str(&encode(name));
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        purl.push('@');
        purl.push_str(&encode(v));
    }
    let mut qs: Vec<(&str, &str)> = qualifiers
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    qs.sort();
    if !qs.is_empty() {
        purl.push('?');
        let parts: Vec<String> = qs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        purl.push_str(&parts.join("&"));
    }
    purl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_canonical_purls() {
        assert_eq!(
            build(
                "deb",
                Some("debian"),
                "openssl",
                Some("3.0.11-1~deb12u2"),
                &[("distro", Some("debian-12")), ("arch", Some("amd64"))]
            ),
            "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            build(
                "deb",
                Some("debian"),
                "libc6",
                Some("2.36-9+deb12u4"),
                &[("upstream", Some("glibc")), ("arch", None)]
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?upstream=glibc"
        );
        assert_eq!(
            build("rpm", Some("rhel"), "bash", Some("1:5.1-6.el9"), &[]),
            "pkg:rpm/rhel/bash@1%3A5.1-6.el9"
        );
    }
}
