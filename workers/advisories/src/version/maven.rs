//! Maven versions, ordered as `org.apache.maven.artifact.versioning.ComparableVersion` orders
//! them (Maven 3.8.7's qualifier order, with `.X` qualifiers treated as `-X`): a tree of number and qualifier items split on `.`, `-` and
//! digit/letter transitions; `alpha < beta < milestone < rc < snapshot < (release) < sp <
//! other qualifiers (lexically)`; `ga`, `final` and `release` are the release; trailing zeros
//! and empty qualifiers are ignored (`1 == 1.0 == 1-ga`). Digits are ASCII digits only.

use std::cmp::Ordering;

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_INDEX: &str = "5";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    /// Digits without leading zeros ("" is zero).
    Int(String),
    Str(String),
    List(Vec<Item>),
}

fn qualifier_key(q: &str) -> String {
    match QUALIFIERS.iter().position(|x| *x == q) {
        Some(i) => i.to_string(),
        None => format!("{}-{q}", QUALIFIERS.len()),
    }
}

fn int_cmp(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Item {
    fn string(value: &str, followed_by_digit: bool) -> Item {
        let value = if followed_by_digit && value.chars().count() == 1 {
            match value {
                "a" => "alpha",
                "b" => "beta",
                "m" => "milestone",
                other => other,
            }
        } else {
            value
        };
        let value = match value {
            "ga" | "final" | "release" => "",
            "cr" => "rc",
            other => other,
        };
        Item::Str(value.to_string())
    }

    fn parse(is_digit: bool, buf: &str) -> Item {
        if is_digit {
            Item::Int(buf.trim_start_matches('0').to_string())
        } else {
            Item::string(buf, false)
        }
    }

    fn is_null(&self) -> bool {
        match self {
            Item::Int(v) => v.is_empty(),
            Item::Str(v) => qualifier_key(v) == RELEASE_INDEX,
            Item::List(items) => items.is_empty(),
        }
    }

    /// Compares with a missing item (`None`), as padding.
    fn cmp_opt(&self, other: Option<&Item>) -> Ordering {
        match (self, other) {
            (Item::Int(v), None) => {
                if v.is_empty() {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            (Item::Str(v), None) => qualifier_key(v).as_str().cmp(RELEASE_INDEX),
            (Item::List(items), None) => items
                .iter()
                .map(|i| i.cmp_opt(None))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal),
            (Item::Int(a), Some(Item::Int(b))) => int_cmp(a, b),
            (Item::Int(_), Some(_)) => Ordering::Greater,
            (Item::Str(_), Some(Item::Int(_) | Item::List(_))) => Ordering::Less,
            (Item::Str(a), Some(Item::Str(b))) => {
                let (ka, kb) = (qualifier_key(a), qualifier_key(b));
                ka.encode_utf16().cmp(kb.encode_utf16())
            }
            (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
            (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
            (Item::List(a), Some(Item::List(b))) => {
                for i in 0..a.len().max(b.len()) {
                    let o = match (a.get(i), b.get(i)) {
                        (None, None) => Ordering::Equal,
                        (None, Some(r)) => r.cmp_opt(None).reverse(),
                        (Some(l), r) => l.cmp_opt(r),
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            }
        }
    }
}

/// Drops null items (0, "", empty lists) that carry no meaning: trailing ones, ones before a
/// qualifier, and ones before a sub-list that starts with a qualifier or a list, so that
/// `1.0-a`, `1a` and `1-a` are the same version.
fn normalize(items: &mut Vec<Item>) {
    for item in items.iter_mut() {
        if let Item::List(inner) = item {
            normalize(inner);
        }
    }
    let mut i = items.len();
    while i > 0 {
        i -= 1;
        if !items[i].is_null() {
            continue;
        }
        let drop = match items.get(i + 1) {
            None | Some(Item::Str(_)) => true,
            Some(Item::List(next)) => matches!(next.first(), Some(Item::List(_) | Item::Str(_))),
            Some(Item::Int(_)) => false,
        };
        if drop {
            items.remove(i);
        }
    }
}

/// A parsed Maven version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    items: Vec<Item>,
}

impl Version {
    pub fn parse(version: &str) -> Version {
        let version = version.to_lowercase();
        // A stack of lists; the innermost is the last. Lists are attached on pop.
        let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
        let chars: Vec<char> = version.chars().collect();
        let mut is_digit = false;
        let mut start = 0;
        let text = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
        for (i, &c) in chars.iter().enumerate() {
            let list = stack.last_mut().expect("a list");
            if c == '.' {
                list.push(if i == start {
                    Item::Int(String::new())
                } else {
                    Item::parse(is_digit, &text(start, i))
                });
                start = i + 1;
            } else if c == '-' {
                list.push(if i == start {
                    Item::Int(String::new())
                } else {
                    Item::parse(is_digit, &text(start, i))
                });
                start = i + 1;
                stack.push(Vec::new());
            } else if c.is_ascii_digit() {
                if !is_digit && i > start {
                    list.push(Item::string(&text(start, i), true));
                    start = i;
                    stack.push(Vec::new());
                }
                is_digit = true;
            } else {
                if is_digit && i > start {
                    list.push(Item::parse(true, &text(start, i)));
                    start = i;
                    stack.push(Vec::new());
                }
                is_digit = false;
            }
        }
        if chars.len() > start {
            // `1.0.0.X1 < 1.0.0-X2`: a trailing qualifier after `.` is treated like one after `-`.
            if !is_digit && !stack.last().expect("a list").is_empty() {
                stack.push(Vec::new());
            }
            stack
                .last_mut()
                .expect("a list")
                .push(Item::parse(is_digit, &text(start, chars.len())));
        }
        // Fold the stack: each list is the last item of the one before it, normalised.
        let mut current = stack.pop().expect("a list");
        while let Some(mut parent) = stack.pop() {
            normalize(&mut current);
            parent.push(Item::List(current));
            current = parent;
        }
        normalize(&mut current);
        Version { items: current }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        Item::List(self.items.clone()).cmp_opt(Some(&Item::List(other.items.clone())))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two Maven versions (every string is a version in Maven).
pub fn compare(a: &str, b: &str) -> Ordering {
    Version::parse(a).cmp(&Version::parse(b))
}
