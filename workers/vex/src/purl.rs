//! Package URLs as products: parsing into components, the canonical form (percent-encoding as
//! the analyzers write it, qualifiers sorted, case folded where the purl spec says names are
//! case-insensitive), and the matching rule of [`applies`].

use crate::model::Product;
use std::collections::BTreeMap;
use std::fmt;

/// A parsed purl; every component is held decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purl {
    pub ty: String,
    pub namespace: Vec<String>,
    pub name: String,
    pub version: Option<String>,
    pub qualifiers: BTreeMap<String, String>,
    pub subpath: Vec<String>,
}

/// Types whose namespace and name are case-insensitive (purl spec, per-type rules).
const CASE_INSENSITIVE: &[&str] = &[
    "alpm",
    "apk",
    "bitbucket",
    "composer",
    "deb",
    "github",
    "gitlab",
    "hex",
    "npm",
    "oci",
    "pypi",
];

/// Longest purl accepted.
const MAX_LEN: usize = 4096;

/// Why a string is not a purl.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("purl longer than {max} bytes", max = MAX_LEN)]
    TooLong,
    /// `purl` is the input, clipped to 80 characters.
    #[error("invalid purl {purl:?}: {defect}")]
    Invalid { purl: String, defect: Defect },
}

/// What is wrong with an invalid purl.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Defect {
    #[error("no pkg: scheme")]
    NoScheme,
    #[error("no type")]
    NoType,
    #[error("invalid type")]
    InvalidType,
    #[error("no name")]
    NoName,
    #[error("empty version")]
    EmptyVersion,
    #[error("qualifier without '='")]
    QualifierWithoutEquals,
    #[error("invalid qualifier key")]
    InvalidQualifierKey,
    #[error("duplicate qualifier")]
    DuplicateQualifier,
    #[error("invalid percent-encoding")]
    InvalidPercentEncoding,
    #[error("percent-encoding is not UTF-8")]
    NotUtf8,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Purl {
    /// Parses `pkg:type/namespace/name@version?qualifiers#subpath`.
    pub fn parse(s: &str) -> Result<Purl> {
        if s.len() > MAX_LEN {
            return Err(Error::TooLong);
        }
        let bad = |defect: Defect| Error::Invalid {
            purl: crate::clip(s),
            defect,
        };
        let rest = s
            .strip_prefix("pkg:")
            .ok_or_else(|| bad(Defect::NoScheme))?
            .trim_start_matches('/');
        let (rest, subpath) = match rest.split_once('#') {
            Some((r, sp)) => (r, Some(sp)),
            None => (rest, None),
        };
        let (rest, qualifiers) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let rest = rest.trim_end_matches('/');
        let (rest, version) = match rest.rsplit_once('@') {
            // An `@` inside the namespace (npm scopes are written `%40scope`) is not a version.
            Some((r, v)) if !v.contains('/') => (r, Some(v)),
            _ => (rest, None),
        };
        let mut segments = rest.split('/');
        let ty = segments
            .next()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad(Defect::NoType))?
            .to_ascii_lowercase();
        if !ty
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
            || ty.as_bytes()[0].is_ascii_digit()
        {
            return Err(bad(Defect::InvalidType));
        }
        let mut path: Vec<String> = Vec::new();
        for seg in segments.filter(|s| !s.is_empty()) {
            path.push(decode(seg).map_err(bad)?);
        }
        let mut name = path
            .pop()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad(Defect::NoName))?;
        let mut namespace = path;
        if CASE_INSENSITIVE.contains(&ty.as_str()) {
            name = name.to_lowercase();
            for n in &mut namespace {
                *n = n.to_lowercase();
            }
        }
        if ty == "pypi" {
            name = name.replace('_', "-");
        }
        let version = match version {
            Some(v) if !v.is_empty() => Some(decode(v).map_err(bad)?),
            Some(_) => return Err(bad(Defect::EmptyVersion)),
            None => None,
        };
        let mut quals = BTreeMap::new();
        for pair in qualifiers.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(Defect::QualifierWithoutEquals))?;
            let k = k.to_ascii_lowercase();
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                return Err(bad(Defect::InvalidQualifierKey));
            }
            let v = decode(v).map_err(bad)?;
            if !v.is_empty() && quals.insert(k, v).is_some() {
                return Err(bad(Defect::DuplicateQualifier));
            }
        }
        let mut sub = Vec::new();
        for seg in subpath.into_iter().flat_map(|p| p.split('/')) {
            let seg = decode(seg).map_err(bad)?;
            if !seg.is_empty() && seg != "." && seg != ".." {
                sub.push(seg);
            }
        }
        Ok(Purl {
            ty,
            namespace,
            name,
            version,
            qualifiers: quals,
            subpath: sub,
        })
    }

    /// Whether this purl, as a statement's product, covers `component`: same type, namespace
    /// and name; the same version when this purl has one; each of this purl's qualifiers
    /// present with the same value on `component`; the same subpath when this purl has one.
    pub fn covers(&self, component: &Purl) -> bool {
        self.ty == component.ty
            && self.namespace == component.namespace
            && self.name == component.name
            && self
                .version
                .as_ref()
                .is_none_or(|v| component.version.as_ref() == Some(v))
            && self
                .qualifiers
                .iter()
                .all(|(k, v)| component.qualifiers.get(k) == Some(v))
            && (self.subpath.is_empty() || self.subpath == component.subpath)
    }
}

impl fmt::Display for Purl {
    /// The canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}/", self.ty)?;
        for ns in &self.namespace {
            write!(f, "{}/", encode(ns))?;
        }
        f.write_str(&encode(&self.name))?;
        if let Some(v) = &self.version {
            write!(f, "@{}", encode(v))?;
        }
        for (i, (k, v)) in self.qualifiers.iter().enumerate() {
            write!(f, "{}{k}={}", if i == 0 { '?' } else { '&' }, encode(v))?;
        }
        if !self.subpath.is_empty() {
            let parts: Vec<String> = self.subpath.iter().map(|s| encode(s)).collect();
            write!(f, "#{}", parts.join("/"))?;
        }
        Ok(())
    }
}

/// Percent-encodes everything but unreserved characters, as `stella-analyzers` writes purls.
fn encode(s: &str) -> String {
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

fn decode(s: &str) -> Result<String, Defect> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(Defect::InvalidPercentEncoding)?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Defect::NotUtf8)
}

/// Whether a statement about `product` (narrowed to `subcomponents` when not empty) is about
/// the component `component_purl` found in the image `image_digest`:
///
/// - an image product (a `sha256:` digest, or a `pkg:oci` purl whose version is one) names the
///   image: it applies to every component of that image, or only to those a subcomponent
///   covers;
/// - a package product applies to the component it covers (purl semantics, see
///   [`Purl::covers`]); with subcomponents, to the components they cover instead (the claim
///   is about those parts of the package);
/// - a BOM-Link never applies (the BOM it points into is not at hand).
///
/// A component purl that does not parse matches nothing.
pub fn applies(
    product: &Product,
    subcomponents: &[String],
    image_digest: Option<&str>,
    component_purl: &str,
) -> bool {
    let Ok(component) = Purl::parse(component_purl) else {
        return false;
    };
    let by_subcomponent = || {
        subcomponents
            .iter()
            .filter_map(|s| Purl::parse(s).ok())
            .any(|s| s.covers(&component))
    };
    if let Some(digest) = product.image_digest() {
        let same_image = image_digest
            .and_then(crate::model::image_digest)
            .is_some_and(|d| d == digest);
        return same_image && (subcomponents.is_empty() || by_subcomponent());
    }
    match product {
        Product::Purl(p) if subcomponents.is_empty() => {
            Purl::parse(p).is_ok_and(|p| p.covers(&component))
        }
        Product::Purl(_) => by_subcomponent(),
        Product::Image(_) | Product::BomLink(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_decodes_sorts_and_folds_case() {
        let p = Purl::parse("pkg:NPM/%40Babel/Core@7.0.0?b=2&a=1").unwrap();
        assert_eq!(p.to_string(), "pkg:npm/%40babel/core@7.0.0?a=1&b=2");
        let p = Purl::parse("pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64").unwrap();
        assert_eq!(
            p.to_string(),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
        );
        assert_eq!(
            Purl::parse("pkg:pypi/Django_Rest@1").unwrap().name,
            "django-rest"
        );
        assert_eq!(
            Purl::parse("pkg:maven/Org.Apache/Log4J@2").unwrap().name,
            "Log4J",
            "maven names keep their case"
        );
        let oci = Purl::parse("pkg:oci/nginx@sha256%3Aab").unwrap();
        assert_eq!(oci.version.as_deref(), Some("sha256:ab"));
        for bad in [
            "npm/x",
            "pkg:",
            "pkg:npm",
            "pkg:npm/",
            "pkg:npm/x@",
            "pkg:npm/x%zz",
            "pkg:1x/y",
            "pkg:npm/x?a",
        ] {
            assert!(Purl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn products_cover_components_by_purl_semantics() {
        let apply = |product: &str, subs: &[&str], image: Option<&str>, component: &str| {
            let subs: Vec<String> = subs.iter().map(|s| s.to_string()).collect();
            applies(&Product::parse(product).unwrap(), &subs, image, component)
        };
        let c = "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12";
        assert!(apply("pkg:deb/debian/openssl", &[], None, c));
        assert!(apply(
            "pkg:deb/debian/openssl@3.0.11-1~deb12u2",
            &[],
            None,
            c
        ));
        assert!(apply(
            "pkg:deb/debian/openssl@3.0.11-1%7Edeb12u2?arch=amd64",
            &[],
            None,
            c
        ));
        assert!(!apply("pkg:deb/debian/openssl@3.0.11-1", &[], None, c));
        assert!(!apply("pkg:deb/debian/openssl?arch=arm64", &[], None, c));
        assert!(!apply("pkg:deb/ubuntu/openssl", &[], None, c));
        assert!(!apply("pkg:rpm/debian/openssl", &[], None, c));
        let digest = format!("sha256:{}", "ab".repeat(32));
        let other = format!("sha256:{}", "cd".repeat(32));
        assert!(apply(&digest, &[], Some(&digest), c));
        assert!(!apply(&digest, &[], Some(&other), c));
        assert!(!apply(&digest, &[], None, c));
        assert!(apply(
            &digest,
            &["pkg:deb/debian/openssl"],
            Some(&digest),
            c
        ));
        assert!(!apply(&digest, &["pkg:deb/debian/curl"], Some(&digest), c));
        let oci = format!("pkg:oci/app@sha256%3A{}", "ab".repeat(32));
        assert!(apply(&oci, &[], Some(&digest), c));
        assert!(apply(
            "pkg:apk/wolfi/git@2",
            &["pkg:deb/debian/openssl"],
            None,
            c
        ));
        assert!(!apply(
            "pkg:deb/debian/openssl",
            &["pkg:deb/debian/curl"],
            None,
            c
        ));
        assert!(!apply("urn:cdx:x/1#y", &[], Some(&digest), c));
        assert!(!apply("pkg:deb/debian/openssl", &[], None, "not a purl"));
    }
}
