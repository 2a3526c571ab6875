//! Glob patterns of the rule matchers (images, repositories, namespaces, paths, vendors,
//! licenses), compiled to anchored regular expressions so matching is linear in the input.
//!
//! Syntax: `*` matches any run of characters except `/`, `**` any run including `/`, `?` one
//! character except `/`, `[abc]` / `[a-z]` / `[!abc]` (or `[^abc]`) one character of (not of)
//! a class, and `\x` the character `x` itself. Everything else matches itself.

use regex::Regex;

/// A compiled glob.
#[derive(Clone, Debug)]
pub(crate) struct Glob {
    regex: Regex,
}

/// Why a glob does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GlobError {
    #[error("unclosed character class '['")]
    UnclosedClass,
    #[error("empty character class")]
    EmptyClass,
    #[error("dangling escape '\\' at the end")]
    DanglingEscape,
    #[error("pattern too complex: {0}")]
    TooComplex(String),
}

impl Glob {
    /// Compiles `pattern`; `case_insensitive` for vendor and license names.
    pub(crate) fn new(pattern: &str, case_insensitive: bool) -> Result<Glob, GlobError> {
        let mut out = String::with_capacity(pattern.len() * 2 + 8);
        if case_insensitive {
            out.push_str("(?i)");
        }
        out.push('^');
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    out.push_str("(?s:.*)");
                    while chars.get(i) == Some(&'*') {
                        i += 1;
                    }
                    continue;
                }
                '*' => out.push_str("[^/]*"),
                '?' => out.push_str("[^/]"),
                '\\' => {
                    let escaped = chars.get(i + 1).ok_or(GlobError::DanglingEscape)?;
                    out.push_str(&regex::escape(&escaped.to_string()));
                    i += 1;
                }
                '[' => {
                    let close = chars[i + 1..]
                        .iter()
                        .enumerate()
                        // A `]` right after `[` or `[!` is a literal member, as in POSIX.
                        .position(|(k, c)| {
                            *c == ']' && k > 0 && !(k == 1 && matches!(chars[i + 1], '!' | '^'))
                        })
                        .map(|k| i + 1 + k)
                        .ok_or(GlobError::UnclosedClass)?;
                    let mut body = &chars[i + 1..close];
                    out.push('[');
                    if let Some('!' | '^') = body.first() {
                        out.push('^');
                        body = &body[1..];
                    }
                    if body.is_empty() {
                        return Err(GlobError::EmptyClass);
                    }
                    for (k, c) in body.iter().enumerate() {
                        let range_dash = *c == '-' && k > 0 && k + 1 < body.len();
                        if range_dash {
                            out.push('-');
                        } else {
                            out.push_str(&regex::escape(&c.to_string()));
                        }
                    }
                    out.push(']');
                    i = close;
                }
                c => out.push_str(&regex::escape(&c.to_string())),
            }
            i += 1;
        }
        out.push('$');
        let regex = regex::RegexBuilder::new(&out)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                GlobError::TooComplex(e.to_string().lines().last().unwrap_or("").into())
            })?;
        Ok(Glob { regex })
    }

    /// Whether `text` matches the whole pattern.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_classes_and_escapes() {
        let cases: &[(&str, &str, bool)] = &[
            ("ghcr.io/acme/*", "ghcr.io/acme/api:1.2", true),
            ("ghcr.io/acme/*", "ghcr.io/acme/team/api:1.2", false),
            ("ghcr.io/**", "ghcr.io/acme/team/api:1.2", true),
            ("prod-?", "prod-a", true),
            ("prod-?", "prod-ab", false),
            (
                "/usr/lib/**/*.so",
                "/usr/lib/x86_64-linux-gnu/libssl.so",
                true,
            ),
            ("team-[abc]", "team-b", true),
            ("team-[!abc]", "team-b", false),
            ("team-[a-c]", "team-c", true),
            ("team-[]]", "team-]", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("a.b", "axb", false),
            ("(x)+", "(x)+", true),
        ];
        for (pattern, text, expected) in cases {
            let glob = Glob::new(pattern, false).unwrap();
            assert_eq!(glob.is_match(text), *expected, "{pattern} vs {text}");
        }
        assert!(
            Glob::new("debian*", true)
                .unwrap()
                .is_match("Debian OpenSSL Team")
        );
        assert!(!Glob::new("debian*", false).unwrap().is_match("Debian"));
    }

    #[test]
    fn broken_globs_say_why() {
        assert_eq!(
            Glob::new("ghcr.io/[acme", false).unwrap_err(),
            GlobError::UnclosedClass
        );
        assert_eq!(
            Glob::new("x\\", false).unwrap_err(),
            GlobError::DanglingEscape
        );
        assert_eq!(
            Glob::new("x[!]", false).unwrap_err(),
            GlobError::UnclosedClass
        );
    }
}
