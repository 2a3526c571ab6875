//! SemVer 2.0.0 with npm's node-semver range semantics (`^`, `~`, x-ranges, hyphen ranges,
//! `||`, the prerelease rule, `loose` and `includePrerelease`), ported from node-semver's own
//! regular expressions and desugaring so that ranges mean exactly what npm means.

use super::InvalidVersion;
use regex::{Captures, Regex};
use std::cmp::Ordering;
use std::sync::LazyLock;

/// Why a range does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The whole range, whitespace collapsed, when it holds no comparator set.
    #[error("invalid range {0:?}")]
    InvalidRange(String),
    /// One desugared comparator the grammar rejects.
    #[error("invalid comparator {0:?}")]
    InvalidComparator(String),
    #[error(transparent)]
    Version(#[from] InvalidVersion),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

const MAX_LENGTH: usize = 256;
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Parsing options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub loose: bool,
    pub include_prerelease: bool,
}

struct Re {
    full: Regex,
    loose: Regex,
    comparator: Regex,
    comparator_loose: Regex,
    comparator_trim: Regex,
    tilde_trim: Regex,
    caret_trim: Regex,
    tilde: Regex,
    tilde_loose: Regex,
    caret: Regex,
    caret_loose: Regex,
    xrange: Regex,
    xrange_loose: Regex,
    hyphen: Regex,
    hyphen_loose: Regex,
    star: Regex,
    gte0: Regex,
    gte0_pre: Regex,
    build: Regex,
    numeric: Regex,
}

static RE: LazyLock<Re> = LazyLock::new(|| {
    let num = r"0|[1-9][0-9]*";
    let num_loose = r"[0-9]+";
    let non_num = r"[0-9]*[a-zA-Z-][a-zA-Z0-9-]*";
    let main = format!(r"({num})\.({num})\.({num})");
    let main_loose = format!(r"({num_loose})\.({num_loose})\.({num_loose})");
    let pre_id = format!(r"(?:{non_num}|{num})");
    let pre_id_loose = format!(r"(?:{non_num}|{num_loose})");
    let pre = format!(r"(?:-({pre_id}(?:\.{pre_id})*))");
    let pre_loose = format!(r"(?:-?({pre_id_loose}(?:\.{pre_id_loose})*))");
    let build_id = r"[a-zA-Z0-9-]+";
    let build = format!(r"(?:\+({build_id}(?:\.{build_id})*))");
    let full_plain = format!(r"v?{main}{pre}?{build}?");
    let loose_plain = format!(r"[v=\s]*{main_loose}{pre_loose}?{build}?");
    let gtlt = r"((?:<|>)?=?)";
    let xr = format!(r"{num}|x|X|\*");
    let xr_loose = format!(r"{num_loose}|x|X|\*");
    let xplain = format!(r"[v=\s]*({xr})(?:\.({xr})(?:\.({xr})(?:{pre})?{build}?)?)?");
    let xplain_loose = format!(
        r"[v=\s]*({xr_loose})(?:\.({xr_loose})(?:\.({xr_loose})(?:{pre_loose})?{build}?)?)?"
    );
    let r = |s: &str| Regex::new(s).expect("node-semver's patterns compile");
    Re {
        full: r(&format!("^{full_plain}$")),
        loose: r(&format!("^{loose_plain}$")),
        comparator: r(&format!(r"^{gtlt}\s*({full_plain})$|^$")),
        comparator_loose: r(&format!(r"^{gtlt}\s*({loose_plain})$|^$")),
        comparator_trim: r(&format!(r"(\s*){gtlt}\s*({loose_plain}|{xplain})")),
        tilde_trim: r(r"(\s*)(?:~>?)\s+"),
        caret_trim: r(r"(\s*)(?:\^)\s+"),
        tilde: r(&format!("^(?:~>?){xplain}$")),
        tilde_loose: r(&format!("^(?:~>?){xplain_loose}$")),
        caret: r(&format!(r"^(?:\^){xplain}$")),
        caret_loose: r(&format!(r"^(?:\^){xplain_loose}$")),
        xrange: r(&format!(r"^{gtlt}\s*{xplain}$")),
        xrange_loose: r(&format!(r"^{gtlt}\s*{xplain_loose}$")),
        hyphen: r(&format!(r"^\s*({xplain})\s+-\s+({xplain})\s*$")),
        hyphen_loose: r(&format!(r"^\s*({xplain_loose})\s+-\s+({xplain_loose})\s*$")),
        star: r(r"(<|>)?=?\s*\*"),
        gte0: r(r"^\s*>=\s*0\.0\.0\s*$"),
        gte0_pre: r(r"^\s*>=\s*0\.0\.0-0\s*$"),
        build: r(&build),
        numeric: r("^[0-9]+$"),
    }
});

/// A prerelease identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identifier {
    Numeric(u64),
    Alpha(String),
}

impl Identifier {
    fn cmp_id(&self, other: &Identifier) -> Ordering {
        match (self, other) {
            (Identifier::Numeric(a), Identifier::Numeric(b)) => a.cmp(b),
            (Identifier::Numeric(_), Identifier::Alpha(_)) => Ordering::Less,
            (Identifier::Alpha(_), Identifier::Numeric(_)) => Ordering::Greater,
            (Identifier::Alpha(a), Identifier::Alpha(b)) => a.cmp(b),
        }
    }
}

impl std::fmt::Display for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identifier::Numeric(n) => write!(f, "{n}"),
            Identifier::Alpha(s) => f.write_str(s),
        }
    }
}

/// A semantic version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub prerelease: Vec<Identifier>,
    pub build: Vec<String>,
}

impl Version {
    pub fn parse(s: &str, options: Options) -> Result<Version, InvalidVersion> {
        let invalid = |reason: &str| InvalidVersion::new("semver", s, reason);
        if s.len() > MAX_LENGTH {
            return Err(invalid("longer than 256 characters"));
        }
        let re = if options.loose { &RE.loose } else { &RE.full };
        let m = re
            .captures(s.trim())
            .ok_or_else(|| invalid("not a semantic version"))?;
        let number = |i: usize| -> Result<u64, InvalidVersion> {
            m[i].parse::<u64>()
                .ok()
                .filter(|n| *n <= MAX_SAFE_INTEGER)
                .ok_or_else(|| invalid("component too large"))
        };
        let prerelease = m
            .get(4)
            .map(|p| {
                p.as_str()
                    .split('.')
                    .map(|id| match id.parse::<u64>() {
                        Ok(n) if RE.numeric.is_match(id) && n < MAX_SAFE_INTEGER => {
                            Identifier::Numeric(n)
                        }
                        _ => Identifier::Alpha(id.to_string()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let build = m
            .get(5)
            .map(|b| b.as_str().split('.').map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Version {
            major: number(1)?,
            minor: number(2)?,
            patch: number(3)?,
            prerelease,
            build,
        })
    }

    fn cmp_main(&self, o: &Version) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(o.major, o.minor, o.patch))
    }

    fn cmp_pre(&self, o: &Version) -> Ordering {
        match (self.prerelease.is_empty(), o.prerelease.is_empty()) {
            (false, true) => return Ordering::Less,
            (true, false) => return Ordering::Greater,
            (true, true) => return Ordering::Equal,
            _ => {}
        }
        for i in 0.. {
            match (self.prerelease.get(i), o.prerelease.get(i)) {
                (None, None) => return Ordering::Equal,
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (Some(a), Some(b)) => match a.cmp_id(b) {
                    Ordering::Equal => continue,
                    other => return other,
                },
            }
        }
        Ordering::Equal
    }
}

impl Ord for Version {
    /// Precedence: build metadata is ignored.
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_main(other).then_with(|| self.cmp_pre(other))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.prerelease.is_empty() {
            let ids: Vec<String> = self.prerelease.iter().map(ToString::to_string).collect();
            write!(f, "-{}", ids.join("."))?;
        }
        Ok(())
    }
}

/// Compares two versions.
pub fn compare(a: &str, b: &str, options: Options) -> Result<Ordering, InvalidVersion> {
    Ok(Version::parse(a, options)?.cmp(&Version::parse(b, options)?))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One primitive comparator; `None` version = any.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: Option<Version>,
}

impl Comparator {
    fn parse(comp: &str, options: Options) -> Result<Comparator> {
        let comp = comp.split_whitespace().collect::<Vec<_>>().join(" ");
        let re = if options.loose {
            &RE.comparator_loose
        } else {
            &RE.comparator
        };
        let m = re
            .captures(&comp)
            .ok_or_else(|| Error::InvalidComparator(comp.clone()))?;
        let op = match m.get(1).map(|g| g.as_str()).unwrap_or("") {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            _ => Op::Eq,
        };
        let version = match m.get(2) {
            Some(v) => Some(Version::parse(v.as_str(), options)?),
            None => None,
        };
        Ok(Comparator { op, version })
    }

    fn test(&self, v: &Version) -> bool {
        let Some(c) = &self.version else { return true };
        let o = v.cmp(c);
        match self.op {
            Op::Eq => o == Ordering::Equal,
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Gt => o == Ordering::Greater,
            Op::Ge => o != Ordering::Less,
        }
    }

    fn value(&self) -> String {
        match &self.version {
            None => String::new(),
            Some(v) => {
                let op = match self.op {
                    Op::Eq => "",
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                };
                format!("{op}{v}")
            }
        }
    }

    fn is_null_set(&self) -> bool {
        self.op == Op::Lt
            && self
                .version
                .as_ref()
                .is_some_and(|v| v.to_string() == "0.0.0-0")
    }
}

/// A range: sets of comparators joined by `||`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    set: Vec<Vec<Comparator>>,
    options: Options,
}

fn is_x(id: Option<&str>) -> bool {
    match id {
        None => true,
        Some(s) => s.is_empty() || s.eq_ignore_ascii_case("x") || s == "*",
    }
}

fn plus1(s: &str) -> u64 {
    s.parse::<u64>().unwrap_or(0) + 1
}

fn group<'a>(c: &'a Captures, i: usize) -> Option<&'a str> {
    c.get(i).map(|m| m.as_str())
}

impl Range {
    pub fn parse(range: &str, options: Options) -> Result<Range> {
        let raw = range.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut set: Vec<Vec<Comparator>> = Vec::new();
        for part in raw.split("||") {
            let comparators = Self::parse_set(part.trim(), options)?;
            if !comparators.is_empty() {
                set.push(comparators);
            }
        }
        if set.is_empty() {
            return Err(Error::InvalidRange(raw));
        }
        if set.len() > 1 {
            let first = set[0].clone();
            set.retain(|c| !c[0].is_null_set());
            if set.is_empty() {
                set = vec![first];
            } else if set.len() > 1
                && let Some(any) = set.iter().find(|c| c.len() == 1 && c[0].version.is_none())
            {
                set = vec![any.clone()];
            }
        }
        Ok(Range { set, options })
    }

    fn parse_set(range: &str, options: Options) -> Result<Vec<Comparator>> {
        let inc = options.include_prerelease;
        let hyphen = if options.loose {
            &RE.hyphen_loose
        } else {
            &RE.hyphen
        };
        let range = hyphen
            .replace(range, |c: &Captures| {
                let (from, fm, fmi, fp, fpr) = (
                    group(c, 1).unwrap_or(""),
                    group(c, 2),
                    group(c, 3),
                    group(c, 4),
                    group(c, 5),
                );
                let (to, tm, tmi, tp, tpr) = (
                    group(c, 7).unwrap_or(""),
                    group(c, 8),
                    group(c, 9),
                    group(c, 10),
                    group(c, 11),
                );
                let z = if inc { "-0" } else { "" };
                let from = if is_x(fm) {
                    String::new()
                } else if is_x(fmi) {
                    format!(">={}.0.0{z}", fm.unwrap_or(""))
                } else if is_x(fp) {
                    format!(">={}.{}.0{z}", fm.unwrap_or(""), fmi.unwrap_or(""))
                } else if fpr.is_some() {
                    format!(">={from}")
                } else {
                    format!(">={from}{z}")
                };
                let to = if is_x(tm) {
                    String::new()
                } else if is_x(tmi) {
                    format!("<{}.0.0-0", plus1(tm.unwrap_or("")))
                } else if is_x(tp) {
                    format!("<{}.{}.0-0", tm.unwrap_or(""), plus1(tmi.unwrap_or("")))
                } else if let Some(tpr) = tpr {
                    format!(
                        "<={}.{}.{}-{tpr}",
                        tm.unwrap_or(""),
                        tmi.unwrap_or(""),
                        tp.unwrap_or("")
                    )
                } else if inc {
                    format!(
                        "<{}.{}.{}-0",
                        tm.unwrap_or(""),
                        tmi.unwrap_or(""),
                        plus1(tp.unwrap_or(""))
                    )
                } else {
                    format!("<={to}")
                };
                format!("{from} {to}").trim().to_string()
            })
            .into_owned();
        let range = RE
            .comparator_trim
            .replace_all(&range, "${1}${2}${3}")
            .into_owned();
        let range = RE.tilde_trim.replace_all(&range, "${1}~").into_owned();
        let range = RE.caret_trim.replace_all(&range, "${1}^").into_owned();
        let expanded: Vec<String> = range
            .split(' ')
            .map(|c| parse_comparator(c, options))
            .collect();
        let joined = expanded.join(" ");
        let gte0 = if inc { &RE.gte0_pre } else { &RE.gte0 };
        let mut list: Vec<String> = joined
            .split_whitespace()
            .map(|c| gte0.replace(c.trim(), "").into_owned())
            .collect();
        if joined.trim().is_empty() {
            list = vec![String::new()];
        }
        if options.loose {
            list.retain(|c| RE.comparator_loose.is_match(c));
        }
        let mut out: Vec<Comparator> = Vec::new();
        for comp in list {
            let c = Comparator::parse(&comp, options)?;
            if c.is_null_set() {
                return Ok(vec![c]);
            }
            if let Some(existing) = out.iter_mut().find(|e| e.value() == c.value()) {
                *existing = c;
            } else {
                out.push(c);
            }
        }
        if out.len() > 1 {
            out.retain(|c| !c.value().is_empty());
        }
        Ok(out)
    }

    /// node-semver's canonical form (`Range.range`).
    pub fn canonical(&self) -> String {
        let sets: Vec<String> = self
            .set
            .iter()
            .map(|comps| {
                comps
                    .iter()
                    .map(|c| {
                        if c.version.is_none() {
                            "*".to_string()
                        } else {
                            c.value()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
                    .trim()
                    .to_string()
            })
            .collect();
        sets.join("||").trim().to_string()
    }

    /// Whether `version` satisfies the range (an unparseable version satisfies nothing).
    pub fn satisfies(&self, version: &str) -> bool {
        let Ok(v) = Version::parse(version, self.options) else {
            return false;
        };
        self.satisfies_version(&v)
    }

    pub fn satisfies_version(&self, v: &Version) -> bool {
        self.set.iter().any(|set| {
            if !set.iter().all(|c| c.test(v)) {
                return false;
            }
            if v.prerelease.is_empty() || self.options.include_prerelease {
                return true;
            }
            // A prerelease satisfies only through a comparator on the same [major, minor, patch]
            // that itself names a prerelease.
            set.iter().any(|c| {
                c.version
                    .as_ref()
                    .is_some_and(|a| !a.prerelease.is_empty() && a.cmp_main(v) == Ordering::Equal)
            })
        })
    }
}

fn parse_comparator(comp: &str, options: Options) -> String {
    let comp = RE.build.replace(comp, "").into_owned();
    let comp: String = comp
        .split_whitespace()
        .map(|c| replace_caret(c, options))
        .collect::<Vec<_>>()
        .join(" ");
    let comp: String = comp
        .split_whitespace()
        .map(|c| replace_tilde(c, options))
        .collect::<Vec<_>>()
        .join(" ");
    let comp: String = comp
        .split_whitespace()
        .map(|c| replace_xrange(c, options))
        .collect::<Vec<_>>()
        .join(" ");
    RE.star.replace(comp.trim(), "").into_owned()
}

fn replace_tilde(comp: &str, options: Options) -> String {
    let re = if options.loose {
        &RE.tilde_loose
    } else {
        &RE.tilde
    };
    let z = if options.include_prerelease { "-0" } else { "" };
    re.replace(comp, |c: &Captures| {
        let (m, mi, p, pr) = (group(c, 1), group(c, 2), group(c, 3), group(c, 4));
        let (mv, miv, pv) = (m.unwrap_or(""), mi.unwrap_or(""), p.unwrap_or(""));
        if is_x(m) {
            String::new()
        } else if is_x(mi) {
            format!(">={mv}.0.0{z} <{}.0.0-0", plus1(mv))
        } else if is_x(p) {
            format!(">={mv}.{miv}.0{z} <{mv}.{}.0-0", plus1(miv))
        } else if let Some(pr) = pr {
            format!(">={mv}.{miv}.{pv}-{pr} <{mv}.{}.0-0", plus1(miv))
        } else {
            format!(">={mv}.{miv}.{pv} <{mv}.{}.0-0", plus1(miv))
        }
    })
    .into_owned()
}

fn replace_caret(comp: &str, options: Options) -> String {
    let re = if options.loose {
        &RE.caret_loose
    } else {
        &RE.caret
    };
    let z = if options.include_prerelease { "-0" } else { "" };
    re.replace(comp, |c: &Captures| {
        let (m, mi, p, pr) = (group(c, 1), group(c, 2), group(c, 3), group(c, 4));
        let (mv, miv, pv) = (m.unwrap_or(""), mi.unwrap_or(""), p.unwrap_or(""));
        if is_x(m) {
            String::new()
        } else if is_x(mi) {
            format!(">={mv}.0.0{z} <{}.0.0-0", plus1(mv))
        } else if is_x(p) {
            if mv == "0" {
                format!(">={mv}.{miv}.0{z} <{mv}.{}.0-0", plus1(miv))
            } else {
                format!(">={mv}.{miv}.0{z} <{}.0.0-0", plus1(mv))
            }
        } else if let Some(pr) = pr {
            if mv == "0" {
                if miv == "0" {
                    format!(">={mv}.{miv}.{pv}-{pr} <{mv}.{miv}.{}-0", plus1(pv))
                } else {
                    format!(">={mv}.{miv}.{pv}-{pr} <{mv}.{}.0-0", plus1(miv))
                }
            } else {
                format!(">={mv}.{miv}.{pv}-{pr} <{}.0.0-0", plus1(mv))
            }
        } else if mv == "0" {
            if miv == "0" {
                format!(">={mv}.{miv}.{pv} <{mv}.{miv}.{}-0", plus1(pv))
            } else {
                format!(">={mv}.{miv}.{pv} <{mv}.{}.0-0", plus1(miv))
            }
        } else {
            format!(">={mv}.{miv}.{pv} <{}.0.0-0", plus1(mv))
        }
    })
    .into_owned()
}

fn replace_xrange(comp: &str, options: Options) -> String {
    let comp = comp.trim();
    let re = if options.loose {
        &RE.xrange_loose
    } else {
        &RE.xrange
    };
    re.replace(comp, |c: &Captures| {
        let whole = c.get(0).map(|m| m.as_str().to_string()).unwrap_or_default();
        let mut gtlt = group(c, 1).unwrap_or("").to_string();
        let (m, mi, p) = (group(c, 2), group(c, 3), group(c, 4));
        let xm = is_x(m);
        let xmi = xm || is_x(mi);
        let xp = xmi || is_x(p);
        // A wildcard followed by a number (`1.x.5`, `x.1`) is not a range: leave it to fail.
        let number = |g: Option<&str>| g.is_some_and(|s| !is_x(Some(s)));
        if (is_x(m) && (number(mi) || number(p))) || (m.is_some() && is_x(mi) && number(p)) {
            return whole;
        }
        if gtlt == "=" && xp {
            gtlt.clear();
        }
        let mut pr = if options.include_prerelease { "-0" } else { "" };
        if xm {
            if gtlt == ">" || gtlt == "<" {
                "<0.0.0-0".to_string()
            } else {
                "*".to_string()
            }
        } else if !gtlt.is_empty() && xp {
            let mut major: u64 = m.unwrap_or("0").parse().unwrap_or(0);
            let mut minor: u64 = if xmi {
                0
            } else {
                mi.unwrap_or("0").parse().unwrap_or(0)
            };
            let mut patch = 0;
            if gtlt == ">" {
                gtlt = ">=".into();
                if xmi {
                    major += 1;
                    minor = 0;
                    patch = 0;
                } else {
                    minor += 1;
                    patch = 0;
                }
            } else if gtlt == "<=" {
                gtlt = "<".into();
                if xmi {
                    major += 1;
                } else {
                    minor += 1;
                }
            }
            if gtlt == "<" {
                pr = "-0";
            }
            format!("{gtlt}{major}.{minor}.{patch}{pr}")
        } else if xmi {
            format!(
                ">={}.0.0{pr} <{}.0.0-0",
                m.unwrap_or(""),
                plus1(m.unwrap_or(""))
            )
        } else if xp {
            format!(
                ">={}.{}.0{pr} <{}.{}.0-0",
                m.unwrap_or(""),
                mi.unwrap_or(""),
                m.unwrap_or(""),
                plus1(mi.unwrap_or(""))
            )
        } else {
            whole
        }
    })
    .into_owned()
}

/// Whether `version` satisfies `range` (npm's `semver.satisfies`; an invalid range satisfies nothing).
pub fn satisfies(version: &str, range: &str, options: Options) -> bool {
    Range::parse(range, options).is_ok_and(|r| r.satisfies(version))
}
