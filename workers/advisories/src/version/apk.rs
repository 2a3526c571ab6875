//! Alpine (apk) versions: `1.2.3a_pre2_p1~<hash>-r4`, compared token by token as apk-tools
//! does: numbers (a leading-zero component sorts by its zeros first), one letter, suffixes
//! (`_alpha` < `_beta` < `_pre` < `_rc` < none < `_cvs` < `_svn` < `_git` < `_hg` < `_p`), a
//! commit hash, and the `-r` revision.

use super::InvalidVersion;
use std::cmp::Ordering;

const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    /// A component with leading zeros: sorts before plain numbers, digit by digit among itself.
    Lead(Vec<u8>),
    Num(i64),
    Text(Vec<u8>),
}

struct Tokens<'a> {
    s: &'a [u8],
    kind: Kind,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Tokens<'a> {
        Tokens {
            s: s.as_bytes(),
            kind: if s.is_empty() { Kind::End } else { Kind::Digit },
        }
    }

    /// Classifies what follows the current token.
    fn next_kind(&mut self) {
        let current = self.kind;
        let mut n = Kind::Invalid;
        match self.s.first() {
            None | Some(0) => n = Kind::End,
            Some(c)
                if matches!(current, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() =>
            {
                n = Kind::Letter
            }
            Some(c) if current == Kind::Letter && c.is_ascii_digit() => n = Kind::Digit,
            Some(c) if current == Kind::Suffix && c.is_ascii_digit() => n = Kind::SuffixNo,
            Some(c) => {
                match c {
                    b'.' => n = Kind::DigitOrZero,
                    b'_' => n = Kind::Suffix,
                    b'~' => n = Kind::CommitHash,
                    b'-' if self.s.get(1) == Some(&b'r') => {
                        n = Kind::RevisionNo;
                        self.s = &self.s[1..];
                    }
                    _ => {}
                }
                self.s = &self.s[1..];
            }
        }
        if n < current
            && !((n == Kind::DigitOrZero && current == Kind::Digit)
                || (n == Kind::Suffix && current == Kind::SuffixNo)
                || (n == Kind::Digit && current == Kind::Letter))
        {
            n = Kind::Invalid;
        }
        self.kind = n;
    }

    /// The value of the current token; advances.
    fn next_value(&mut self) -> Value {
        let s = self.s;
        let mut i = 0;
        let mut next_kind = None;
        let value = match self.kind {
            Kind::End | Kind::Invalid => return Value::Num(0),
            Kind::DigitOrZero if s.first() == Some(&b'0') => {
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
                Value::Lead(s[..i].to_vec())
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
                let mut v: i64 = 0;
                while i < s.len() && s[i].is_ascii_digit() {
                    v = v.saturating_mul(10).saturating_add(i64::from(s[i] - b'0'));
                    i += 1;
                }
                Value::Num(v)
            }
            Kind::Letter => {
                i = 1;
                Value::Num(i64::from(s[0]))
            }
            Kind::CommitHash => {
                while i < s.len() && s[i].is_ascii_hexdigit() && !s[i].is_ascii_uppercase() {
                    i += 1;
                }
                Value::Text(s[..i].to_vec())
            }
            Kind::Suffix => {
                let rest = std::str::from_utf8(s).unwrap_or("");
                if let Some(p) = PRE.iter().position(|p| rest.starts_with(p)) {
                    i = PRE[p].len();
                    next_kind = Some(Kind::SuffixNo);
                    Value::Num(p as i64 - PRE.len() as i64)
                } else if let Some(p) = POST.iter().position(|p| rest.starts_with(p)) {
                    i = POST[p].len();
                    next_kind = Some(Kind::SuffixNo);
                    Value::Num(p as i64)
                } else {
                    self.kind = Kind::Invalid;
                    return Value::Num(-1);
                }
            }
        };
        self.s = &s[i..];
        if self.s.is_empty() {
            self.kind = Kind::End;
        } else if let Some(k) = next_kind {
            self.kind = k;
        } else {
            self.next_kind();
        }
        value
    }
}

/// Whether apk would accept the version.
pub fn validate(s: &str) -> Result<(), InvalidVersion> {
    let invalid = |reason: &str| Err(InvalidVersion::new("apk", s, reason));
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return invalid("must start with a number");
    }
    while i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return invalid("empty version component");
        }
    }
    if i < b.len() && b[i].is_ascii_lowercase() {
        i += 1;
    }
    while i < b.len() && b[i] == b'_' {
        i += 1;
        let rest = &s[i..];
        let Some(name) = PRE
            .iter()
            .chain(POST.iter())
            .filter(|p| rest.starts_with(*p))
            .max_by_key(|p| p.len())
        else {
            return invalid("unknown suffix");
        };
        i += name.len();
        digits(&mut i);
    }
    if i < b.len() && b[i] == b'~' {
        i += 1;
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || (b'a'..=b'f').contains(&b[i])) {
            i += 1;
        }
        if i == start {
            return invalid("empty commit hash");
        }
    }
    if i < b.len() && b[i] == b'-' {
        if b.get(i + 1) != Some(&b'r') {
            return invalid("revision must be -r<number>");
        }
        i += 2;
        if !digits(&mut i) {
            return invalid("revision must be -r<number>");
        }
    }
    if i != b.len() {
        return invalid("trailing characters");
    }
    Ok(())
}

fn compare_tokens(a: &str, b: &str, fuzzy: bool) -> Ordering {
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    let (mut av, mut bv) = (Value::Num(0), Value::Num(0));
    while ta.kind == tb.kind && ta.kind != Kind::End && ta.kind != Kind::Invalid && av == bv {
        av = ta.next_value();
        bv = tb.next_value();
        if fuzzy && av == bv && tb.kind == Kind::End {
            return Ordering::Equal;
        }
    }
    match av.cmp(&bv) {
        Ordering::Equal => {}
        other => return other,
    }
    if ta.kind == tb.kind {
        return Ordering::Equal;
    }
    // Equal so far: the longer version is greater, unless what follows is a pre-release suffix.
    if ta.kind == Kind::Suffix {
        let mut t = Tokens {
            s: ta.s,
            kind: Kind::Suffix,
        };
        if matches!(t.next_value(), Value::Num(v) if v < 0) {
            return Ordering::Less;
        }
    }
    if tb.kind == Kind::Suffix {
        let mut t = Tokens {
            s: tb.s,
            kind: Kind::Suffix,
        };
        if matches!(t.next_value(), Value::Num(v) if v < 0) {
            return Ordering::Greater;
        }
    }
    tb.kind.cmp(&ta.kind)
}

/// Compares two apk versions. Invalid versions (which apk compares as plain strings) sort
/// after every valid one and among themselves as strings, so the order stays total.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (validate(a).is_ok(), validate(b).is_ok()) {
        (true, true) => compare_tokens(a, b, false),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

/// apk's fuzzy match (`~`): `b` matches `a` as a prefix on version-component boundaries.
pub fn fuzzy_match(a: &str, b: &str) -> bool {
    compare_tokens(a, b, true) == Ordering::Equal
}
