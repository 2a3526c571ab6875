//! The domain's shared vocabulary: finding severities, verdicts, Secret references and the
//! policy document. The scan engine (advisories, policy, verdict, the pipeline) and the CRD
//! types both use these; nothing here knows Kubernetes' client or API machinery, so the engine
//! crates build without `kube` (the CRD crate turns on `schemars` to generate its schemas from
//! the same types).

pub mod policy;
pub mod selector;

use serde::{Deserialize, Serialize};

/// A duration as Kubernetes users write it (`30s`, `5m`, `1h30m`, `7d`) or as ISO 8601
/// (`PT5M`, `P1D`), the form the notify seed serialises.
pub const DURATION_PATTERN: &str =
    r"^(([0-9]+(ms|s|m|h|d))+|P([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?)$";

/// A `sha256:` digest in lowercase hex.
pub const SHA256_DIGEST_PATTERN: &str = r"^sha256:[a-f0-9]{64}$";

/// A DNS-1123 label, the shape of Kubernetes object names used as references.
pub const DNS_LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Namespace and image patterns (admission exemptions, discovery's namespaces): `*` matches
/// any run of characters, `?` one character; everything else itself. Linear in the text.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Vulnerability severity, from the advisory (CVSS-derived where the source gives a score).
#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    None,
    #[default]
    Unknown,
}

impl Severity {
    /// All severities, most severe first.
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::None,
        Severity::Unknown,
    ];

    /// The name as serialised: `Critical`, `High`, `Medium`, `Low`, `None`, `Unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "Critical",
            Severity::High => "High",
            Severity::Medium => "Medium",
            Severity::Low => "Low",
            Severity::None => "None",
            Severity::Unknown => "Unknown",
        }
    }

    /// A severity name in any case (`Critical`, `high`, ` LOW `); anything else is `Unknown`.
    pub fn parse(name: &str) -> Severity {
        let name = name.trim();
        Severity::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
            .unwrap_or(Severity::Unknown)
    }

    /// 4 for Critical down to 1 for Low; 0 for None and Unknown (nothing to rank).
    pub fn rank(self) -> u8 {
        match self {
            Severity::Critical => 4,
            Severity::High => 3,
            Severity::Medium => 2,
            Severity::Low => 1,
            Severity::None | Severity::Unknown => 0,
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Severity {
    /// [`Severity::parse`].
    fn from(name: &str) -> Severity {
        Severity::parse(name)
    }
}

impl PartialEq<str> for Severity {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Severity {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The outcome of policy evaluation for an image.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    /// `PASS`, `WARN` or `FAIL`, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }

    /// `PASS`, `WARN` or `FAIL` (exactly); anything else is `None`.
    pub fn parse(text: &str) -> Option<Verdict> {
        [Verdict::Pass, Verdict::Warn, Verdict::Fail]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key in a Secret. Credentials are only ever referenced, never inlined in a spec.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret. Namespaced kinds read it from their own namespace; cluster-scoped
    /// kinds read it from the operator's namespace.
    #[cfg_attr(
        feature = "schemars",
        schemars(
            length(min = 1, max = 253),
            regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
        )
    )]
    pub name: String,
    /// Key within the Secret's `data`.
    #[cfg_attr(
        feature = "schemars",
        schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))
    )]
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_read_and_print_their_serialised_names() {
        for severity in Severity::ALL {
            let json = serde_json::to_value(severity).unwrap();
            assert_eq!(json, severity.as_str());
            assert_eq!(Severity::parse(&severity.as_str().to_lowercase()), severity);
            assert!(severity == severity.as_str());
        }
        assert_eq!(Severity::parse(" HIGH "), Severity::High);
        assert_eq!(Severity::parse("negligible"), Severity::Unknown);
        assert!(Severity::Critical.rank() > Severity::Low.rank());
        assert_eq!(Severity::None.rank(), Severity::Unknown.rank());
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob("kube-*", "kube-system"));
        assert!(glob("*", ""));
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*-prod-*", "team-prod-eu"));
        assert!(glob("reg/*/x:*", "reg/team/sub/x:1"));
        assert!(!glob("kube-*", "default"));
        // Linear: a pathological pattern on a long text answers at once.
        assert!(!glob(
            &"*a".repeat(100),
            &"a".repeat(10_000).replace("aa", "ab")
        ));
    }

    #[test]
    fn verdicts_are_uppercase() {
        for verdict in [Verdict::Pass, Verdict::Warn, Verdict::Fail] {
            assert_eq!(serde_json::to_value(verdict).unwrap(), verdict.as_str());
            assert_eq!(Verdict::parse(verdict.as_str()), Some(verdict));
        }
        assert_eq!(Verdict::parse("pass"), None);
    }
}
