//! Python versions (PEP 440, as pypa/packaging implements it): parsing with the spec's
//! normalisations (`1.0alpha1` = `1.0a1`, `1.0-1` = `1.0.post1`, `v1.0` = `1.0`), the spec's
//! total order (dev < pre < final < post; local versions above their public version), and
//! single version specifiers (`~=`, `==` with `.*`, `!=`, `<`, `<=`, `>`, `>=`, `===`).

use super::InvalidVersion;
use regex::Regex;
use std::cmp::Ordering;
use std::sync::LazyLock;

static VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)^\s*v?
        (?:(?P<epoch>[0-9]+)!)?
        (?P<release>[0-9]+(?:\.[0-9]+)*)
        (?P<pre>[-_\.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_\.]?(?P<pre_n>[0-9]+)?)?
        (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_\.]?(?P<post_l>post|rev|r)[-_\.]?(?P<post_n2>[0-9]+)?))?
        (?P<dev>[-_\.]?(?P<dev_l>dev)[-_\.]?(?P<dev_n>[0-9]+)?)?
        (?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?
        \s*$",
    )
    .expect("the PEP 440 pattern compiles")
});

/// A local version segment part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalPart {
    Num(u64),
    Str(String),
}

/// A parsed version. Equality is the spec's (`1.0 == 1.0.0`), not structural.
#[derive(Clone, Debug)]
pub struct Version {
    pub epoch: u64,
    pub release: Vec<u64>,
    /// (`a` | `b` | `rc`, number).
    pub pre: Option<(String, u64)>,
    pub post: Option<u64>,
    pub dev: Option<u64>,
    pub local: Option<Vec<LocalPart>>,
}

fn num(s: Option<regex::Match>) -> Result<u64, ()> {
    s.map(|m| m.as_str().parse::<u64>().map_err(|_| ()))
        .unwrap_or(Ok(0))
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, InvalidVersion> {
        let invalid = || InvalidVersion::new("pep440", s, "not a PEP 440 version");
        // ASCII case-insensitive only: `poſt` is not `post`.
        let lowered = s.to_ascii_lowercase();
        let m = VERSION.captures(&lowered).ok_or_else(invalid)?;
        let release = m["release"]
            .split('.')
            .map(|p| p.parse::<u64>().map_err(|_| invalid()))
            .collect::<Result<Vec<_>, _>>()?;
        let pre = match m.name("pre_l") {
            Some(l) => {
                let label = match l.as_str().to_ascii_lowercase().as_str() {
                    "alpha" | "a" => "a",
                    "beta" | "b" => "b",
                    _ => "rc",
                };
                Some((
                    label.to_string(),
                    num(m.name("pre_n")).map_err(|_| invalid())?,
                ))
            }
            None => None,
        };
        let post = if m.name("post").is_some() {
            Some(num(m.name("post_n1").or(m.name("post_n2"))).map_err(|_| invalid())?)
        } else {
            None
        };
        let dev = if m.name("dev").is_some() {
            Some(num(m.name("dev_n")).map_err(|_| invalid())?)
        } else {
            None
        };
        let local = m.name("local").map(|l| {
            l.as_str()
                .split(['-', '_', '.'])
                .map(|p| match p.parse::<u64>() {
                    Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => LocalPart::Num(n),
                    _ => LocalPart::Str(p.to_ascii_lowercase()),
                })
                .collect()
        });
        Ok(Version {
            epoch: num(m.name("epoch")).map_err(|_| invalid())?,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    pub fn is_postrelease(&self) -> bool {
        self.post.is_some()
    }

    pub fn is_devrelease(&self) -> bool {
        self.dev.is_some()
    }

    /// The version without its local segment.
    pub fn public(&self) -> Version {
        Version {
            local: None,
            ..self.clone()
        }
    }

    /// Epoch and release only.
    pub fn base(&self) -> Version {
        Version {
            epoch: self.epoch,
            release: self.release.clone(),
            pre: None,
            post: None,
            dev: None,
            local: None,
        }
    }

    /// The normalised form, with the release segment as given (`strip` drops trailing zeros).
    fn render(&self, strip_trailing_zero: bool, with_local: bool) -> String {
        let mut s = String::new();
        if self.epoch != 0 {
            s.push_str(&format!("{}!", self.epoch));
        }
        let mut release = self.release.clone();
        if strip_trailing_zero {
            while release.len() > 1 && release.last() == Some(&0) {
                release.pop();
            }
        }
        s.push_str(
            &release
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join("."),
        );
        if let Some((l, n)) = &self.pre {
            s.push_str(&format!("{l}{n}"));
        }
        if let Some(p) = self.post {
            s.push_str(&format!(".post{p}"));
        }
        if let Some(d) = self.dev {
            s.push_str(&format!(".dev{d}"));
        }
        if with_local && let Some(local) = &self.local {
            let parts: Vec<String> = local
                .iter()
                .map(|p| match p {
                    LocalPart::Num(n) => n.to_string(),
                    LocalPart::Str(s) => s.clone(),
                })
                .collect();
            s.push('+');
            s.push_str(&parts.join("."));
        }
        s
    }

    fn key(&self) -> Key {
        let mut release = self.release.clone();
        while release.last() == Some(&0) {
            release.pop();
        }
        let pre = match (&self.pre, self.post, self.dev) {
            (None, None, Some(_)) => Bound::NegInf,
            (None, _, _) => Bound::Inf,
            (Some((l, n)), _, _) => Bound::Value(format!("{l:>2}"), *n),
        };
        let post = match self.post {
            None => Bound::NegInf,
            Some(p) => Bound::Value(String::new(), p),
        };
        let dev = match self.dev {
            None => Bound::Inf,
            Some(d) => Bound::Value(String::new(), d),
        };
        Key {
            epoch: self.epoch,
            release,
            pre,
            post,
            dev,
            local: self.local.clone(),
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(false, true))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    NegInf,
    Value(String, u64),
    Inf,
}

#[derive(Debug, PartialEq, Eq)]
struct Key {
    epoch: u64,
    release: Vec<u64>,
    pre: Bound,
    post: Bound,
    dev: Bound,
    local: Option<Vec<LocalPart>>,
}

fn local_cmp(a: &Option<Vec<LocalPart>>, b: &Option<Vec<LocalPart>>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => {
            for (x, y) in a.iter().zip(b) {
                let o = match (x, y) {
                    (LocalPart::Num(x), LocalPart::Num(y)) => x.cmp(y),
                    (LocalPart::Num(_), LocalPart::Str(_)) => Ordering::Greater,
                    (LocalPart::Str(_), LocalPart::Num(_)) => Ordering::Less,
                    (LocalPart::Str(x), LocalPart::Str(y)) => x.cmp(y),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            a.len().cmp(&b.len())
        }
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.key(), other.key());
        a.epoch
            .cmp(&b.epoch)
            .then_with(|| a.release.cmp(&b.release))
            .then_with(|| a.pre.cmp(&b.pre))
            .then_with(|| a.post.cmp(&b.post))
            .then_with(|| a.dev.cmp(&b.dev))
            .then_with(|| local_cmp(&a.local, &b.local))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, InvalidVersion> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// A single version specifier (`>=1.0`, `==2.1.*`, `~=2.2`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Specifier {
    pub operator: String,
    pub version: String,
}

static SPEC_VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)^v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*
        (?:[-_\.]?(?:alpha|beta|preview|pre|a|b|c|rc)[-_\.]?[0-9]*)?
        (?:(?:-[0-9]+)|(?:[-_\.]?(?:post|rev|r)[-_\.]?[0-9]*))?
        (?:[-_\.]?dev[-_\.]?[0-9]*)?$",
    )
    .expect("compiles")
});
static LOCAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\+[a-z0-9]+(?:[-_\.][a-z0-9]+)*$").expect("compiles"));
static PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]+)((?:a|b|c|rc)[0-9]+)$").expect("compiles"));

impl Specifier {
    pub fn parse(s: &str) -> Result<Specifier, InvalidVersion> {
        let invalid = |reason: &str| InvalidVersion::new("pep440 specifier", s, reason);
        let s = s.trim();
        let operator = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"]
            .into_iter()
            .find(|op| s.starts_with(op))
            .ok_or_else(|| invalid("no operator"))?;
        let version = s[operator.len()..].trim();
        let lowered = version.to_ascii_lowercase();
        let version_lc = lowered.as_str();
        if version.is_empty() {
            return Err(invalid("no version"));
        }
        let ok = match operator {
            "===" => !version.contains(char::is_whitespace),
            "==" | "!=" => {
                if let Some(prefix) = version_lc.strip_suffix(".*") {
                    Regex::new(r"^v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*$")
                        .expect("compiles")
                        .is_match(prefix)
                } else {
                    let (main, local) = match version_lc.find('+') {
                        Some(i) => (&version_lc[..i], Some(&version_lc[i..])),
                        None => (version_lc, None),
                    };
                    SPEC_VERSION.is_match(main) && local.is_none_or(|l| LOCAL.is_match(l))
                }
            }
            "~=" => {
                SPEC_VERSION.is_match(version_lc)
                    && version_lc
                        .trim_start_matches(['v', 'V'])
                        .split('!')
                        .next_back()
                        .is_some_and(|r| {
                            r.split(|c: char| !c.is_ascii_digit() && c != '.')
                                .next()
                                .is_some_and(|rel| rel.contains('.'))
                        })
            }
            _ => SPEC_VERSION.is_match(version_lc),
        };
        if !ok {
            return Err(invalid("version not allowed with this operator"));
        }
        Ok(Specifier {
            operator: operator.to_string(),
            version: version.to_string(),
        })
    }

    /// Whether the specifier itself admits pre-releases (it names one, with an inclusive operator).
    pub fn prereleases(&self) -> bool {
        if !["==", ">=", "<=", "~=", "==="].contains(&self.operator.as_str()) {
            return false;
        }
        let version = self.version.strip_suffix(".*").unwrap_or(&self.version);
        Version::parse(version).is_ok_and(|v| v.is_prerelease())
    }

    /// Whether `version` satisfies the specifier. Pre-releases are excluded only when
    /// `prereleases` is `Some(false)` (packaging 25+ semantics: a single specifier does not
    /// exclude them by default; choosing finals over pre-releases is a set/filter concern).
    pub fn contains(&self, version: &str, prereleases: Option<bool>) -> bool {
        let Ok(item) = Version::parse(version) else {
            return self.operator == "===" && version.eq_ignore_ascii_case(&self.version);
        };
        if item.is_prerelease() && prereleases == Some(false) {
            return false;
        }
        self.matches(&item)
    }

    fn matches(&self, item: &Version) -> bool {
        let spec = || Version::parse(&self.version);
        match self.operator.as_str() {
            "===" => item.to_string().eq_ignore_ascii_case(&self.version),
            "==" => self.equal(item),
            "!=" => !self.equal(item),
            "<=" => spec().is_ok_and(|s| item.public() <= s),
            ">=" => spec().is_ok_and(|s| item.public() >= s),
            // `<V` does not admit pre-releases of V itself unless V is one; `>V` does not admit
            // post-releases (or local versions) of V itself unless V is a post-release.
            "<" => spec().is_ok_and(|s| {
                let final_of = Version {
                    pre: None,
                    dev: None,
                    local: None,
                    ..item.clone()
                };
                let release_of = Version {
                    post: None,
                    ..final_of.clone()
                };
                *item < s
                    && !(!s.is_prerelease()
                        && item.is_prerelease()
                        && (final_of == s || release_of == s))
            }),
            ">" => spec().is_ok_and(|s| {
                let stripped = Version {
                    post: None,
                    dev: None,
                    local: None,
                    ..item.clone()
                };
                *item > s
                    && !(!s.is_postrelease() && item.is_postrelease() && stripped == s)
                    && !(item.local.is_some() && item.public() == s)
            }),
            "~=" => {
                let parts = version_split(&self.version);
                let kept: Vec<&String> = parts
                    .iter()
                    .take_while(|p| {
                        !["dev", "a", "b", "rc", "post"]
                            .iter()
                            .any(|x| p.starts_with(x))
                    })
                    .collect();
                let prefix = kept[1..kept.len().saturating_sub(1).max(1)]
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                let epoch = kept.first().map(|s| s.as_str()).unwrap_or("0");
                let prefix = if epoch == "0" {
                    format!("{prefix}.*")
                } else {
                    format!("{epoch}!{prefix}.*")
                };
                Specifier {
                    operator: ">=".into(),
                    version: self.version.clone(),
                }
                .matches(item)
                    && Specifier {
                        operator: "==".into(),
                        version: prefix,
                    }
                    .matches(item)
            }
            _ => false,
        }
    }

    fn equal(&self, item: &Version) -> bool {
        if let Some(prefix) = self.version.strip_suffix(".*") {
            let Ok(spec) = Version::parse(prefix) else {
                return false;
            };
            let split_spec = version_split(&spec.render(false, false));
            let split_item = version_split(&item.public().render(false, false));
            let (padded, _) = pad(&split_item, &split_spec);
            return padded.len() >= split_spec.len()
                && padded[..split_spec.len()] == split_spec[..];
        }
        let Ok(spec) = Version::parse(&self.version) else {
            return false;
        };
        if spec.local.is_none() {
            item.public() == spec
        } else {
            *item == spec
        }
    }
}

/// packaging's `_version_split`: epoch first, then release parts, `1rc1` split in two.
fn version_split(version: &str) -> Vec<String> {
    let (epoch, rest) = match version.rsplit_once('!') {
        Some((e, r)) => (e.to_string(), r),
        None => ("0".to_string(), version),
    };
    let mut out = vec![if epoch.is_empty() { "0".into() } else { epoch }];
    for item in rest.split('.') {
        match PREFIX.captures(item) {
            Some(c) => {
                out.push(c[1].to_string());
                out.push(c[2].to_string());
            }
            None => out.push(item.to_string()),
        }
    }
    out
}

/// packaging's `_pad_version`: pad the shorter numeric release with zeros.
fn pad(left: &[String], right: &[String]) -> (Vec<String>, Vec<String>) {
    let digits = |v: &[String]| {
        v.iter()
            .take_while(|x| x.bytes().all(|b| b.is_ascii_digit()) && !x.is_empty())
            .count()
    };
    let (ld, rd) = (digits(left), digits(right));
    let mut l = left[..ld].to_vec();
    l.extend(std::iter::repeat_n("0".to_string(), rd.saturating_sub(ld)));
    l.extend_from_slice(&left[ld..]);
    let mut r = right[..rd].to_vec();
    r.extend(std::iter::repeat_n("0".to_string(), ld.saturating_sub(rd)));
    r.extend_from_slice(&right[rd..]);
    (l, r)
}
