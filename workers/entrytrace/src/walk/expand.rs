//! Word expansion: parameters (`$X`, `${X:-default}`, `$@`, positional), quoting and field
//! splitting, the alternatives `$@` brings, and globs expanded in the image.

use super::state::{Args, State, Val};
use super::{MAX_ALTERNATIVES, Tracer};
use crate::image;
use crate::shell::{self, ParamOp, Part, Word};

/// One word after expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Field {
    /// The text, with unknown parts as written (`$JAVA_OPTS`).
    pub(crate) text: String,
    /// Why the text is not known, when it is not: "`$X`, which is not set in the image".
    pub(crate) dynamic: Option<String>,
    /// Whether it holds unquoted `*`, `?` or `[`.
    pub(super) glob: bool,
}

impl Field {
    pub(crate) fn lit(text: impl Into<String>) -> Field {
        Field {
            text: text.into(),
            ..Field::default()
        }
    }
}

pub(crate) fn texts(fields: &[Field]) -> Vec<String> {
    fields.iter().map(|f| f.text.clone()).collect()
}

/// A parameter's value during expansion.
#[derive(Clone, Debug)]
enum Value {
    Str(String),
    /// `$@`: one field per parameter.
    List(Vec<Field>),
    /// Why the value is not known.
    Unknown(String),
}

/// Fields being built from the parts of one word.
#[derive(Clone, Debug, Default)]
struct Fields {
    done: Vec<Field>,
    current: Option<Field>,
}

impl Fields {
    fn append(&mut self, text: &str, dynamic: Option<&str>, glob: bool) {
        let current = self.current.get_or_insert_with(Field::default);
        current.text.push_str(text);
        if current.dynamic.is_none() {
            current.dynamic = dynamic.map(str::to_string);
        }
        current.glob |= glob;
    }

    fn split(&mut self) {
        if let Some(field) = self.current.take() {
            self.done.push(field);
        }
    }

    /// An unquoted expansion: split on blanks.
    fn append_split(&mut self, text: &str) {
        for (i, piece) in text.split([' ', '\t', '\n']).enumerate() {
            if i > 0 {
                self.split();
            }
            if !piece.is_empty() {
                self.append(piece, None, has_glob(piece));
            }
        }
    }

    fn apply(&mut self, value: &Value, raw: &str, quoted: bool) {
        match value {
            Value::Str(text) if quoted => self.append(text, None, false),
            Value::Str(text) => self.append_split(text),
            Value::Unknown(why) => self.append(raw, Some(why), false),
            Value::List(fields) => {
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        self.split();
                    }
                    if quoted || field.dynamic.is_some() {
                        self.append(&field.text, field.dynamic.as_deref(), false);
                    } else {
                        self.append_split(&field.text);
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Vec<Field> {
        self.split();
        self.done
    }
}

fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

impl Tracer<'_> {
    /// Keeps the first [`MAX_ALTERNATIVES`] alternatives of an expansion, noting when some are
    /// dropped (reported by the command they were for).
    fn bounded<T>(&mut self, mut alternatives: Vec<T>) -> Vec<T> {
        if alternatives.len() > MAX_ALTERNATIVES {
            alternatives.truncate(MAX_ALTERNATIVES);
            self.truncated = true;
        }
        alternatives
    }

    pub(super) fn expand_words(&mut self, words: &[Word], state: &mut State) -> Vec<Vec<Field>> {
        let mut alternatives: Vec<Vec<Field>> = vec![Vec::new()];
        for word in words {
            let expanded = self.expand_word(word, state);
            let mut next = Vec::new();
            for prefix in &alternatives {
                for fields in &expanded {
                    let mut argv = prefix.clone();
                    argv.extend(fields.iter().cloned());
                    if !next.contains(&argv) {
                        next.push(argv);
                    }
                }
            }
            alternatives = self.bounded(next);
        }
        alternatives
    }

    /// The possible field lists of one word (several when `$@` has several possible values).
    fn expand_word(&mut self, word: &Word, state: &mut State) -> Vec<Vec<Field>> {
        let mut alternatives = vec![Fields::default()];
        for part in &word.parts {
            match part {
                Part::Lit { text, quoted } => {
                    for fields in &mut alternatives {
                        fields.append(text, None, !quoted && has_glob(text));
                    }
                }
                Part::Dynamic { raw, .. } => {
                    let why = format!("`{}`, whose value is known only at run time", short(raw));
                    for fields in &mut alternatives {
                        fields.append(raw, Some(&why), false);
                    }
                }
                Part::Param {
                    name,
                    op,
                    quoted,
                    raw,
                } => {
                    let values = self.param(name, op, raw, *quoted, state);
                    let mut next = Vec::new();
                    for fields in &alternatives {
                        for value in &values {
                            let mut fields = fields.clone();
                            fields.apply(value, raw, *quoted);
                            next.push(fields);
                        }
                    }
                    alternatives = self.bounded(next);
                }
            }
        }
        alternatives.into_iter().map(Fields::finish).collect()
    }

    /// A word expanded to one string (assignments, `${X:-word}`), or why it is not known.
    pub(super) fn expand_string(
        &mut self,
        word: &Word,
        state: &mut State,
    ) -> Result<String, String> {
        let alternatives = self.expand_word(word, state);
        let mut values =
            alternatives.iter().map(
                |fields| match fields.iter().find_map(|f| f.dynamic.clone()) {
                    Some(why) => Err(why),
                    None => Ok(texts(fields).join(" ")),
                },
            );
        let first = values.next().unwrap_or(Ok(String::new()));
        for other in values {
            if other != first {
                return Err(format!(
                    "`{}`, which has several possible values",
                    word.display()
                ));
            }
        }
        first
    }

    /// The possible values of a parameter expansion.
    fn param(
        &mut self,
        name: &str,
        op: &ParamOp,
        raw: &str,
        quoted: bool,
        state: &mut State,
    ) -> Vec<Value> {
        let unknown = |why: &str| Value::Unknown(format!("`{raw}`, which {why}"));
        let positional = name.chars().all(|c| c.is_ascii_digit()) && !name.is_empty();
        let base: Vec<Option<Value>> = match name {
            "" => return vec![unknown("is not evaluated statically")],
            "@" | "*" | "#" => match &state.args {
                Args::Known(lists) => lists
                    .iter()
                    .map(|list| {
                        Some(match name {
                            "#" => Value::Str(list.len().to_string()),
                            "*" if quoted => match list.iter().find_map(|f| f.dynamic.clone()) {
                                Some(why) => Value::Unknown(why),
                                None => Value::Str(texts(list).join(" ")),
                            },
                            _ => Value::List(list.clone()),
                        })
                    })
                    .collect(),
                Args::Unknown(why) => vec![Some(unknown(why))],
            },
            "0" => vec![Some(Value::Str(state.arg0.clone()))],
            _ if positional => {
                let index: usize = name.parse().unwrap_or(usize::MAX);
                match &state.args {
                    Args::Known(lists) => lists
                        .iter()
                        .map(|list| {
                            list.get(index.wrapping_sub(1)).map(|f| match &f.dynamic {
                                Some(why) => Value::Unknown(why.clone()),
                                None => Value::Str(f.text.clone()),
                            })
                        })
                        .collect(),
                    Args::Unknown(why) => vec![Some(unknown(why))],
                }
            }
            "?" | "$" | "!" | "-" => vec![Some(unknown("is known only at run time"))],
            _ => vec![match state.vars.get(name).map(|v| &v.val) {
                Some(Val::Known(value)) => Some(Value::Str(value.clone())),
                Some(Val::Unknown(why)) => Some(unknown(why)),
                None => None,
            }],
        };
        let is_empty = |v: &Value| match v {
            Value::Str(s) => s.is_empty(),
            Value::List(l) => l.is_empty(),
            Value::Unknown(_) => false,
        };
        let mut values = Vec::new();
        for value in base {
            let value = match op {
                ParamOp::Plain => value.unwrap_or_else(|| {
                    if positional {
                        Value::Str(String::new())
                    } else {
                        unknown("is not set in the image")
                    }
                }),
                ParamOp::Default { colon, word } | ParamOp::Assign { colon, word } => match value {
                    Some(v) if !(*colon && is_empty(&v)) => v,
                    _ => {
                        let default = match self.expand_string(word, state) {
                            Ok(s) => Value::Str(s),
                            Err(why) => Value::Unknown(why),
                        };
                        if let (ParamOp::Assign { .. }, true) = (op, shell::is_identifier(name)) {
                            let val = match &default {
                                Value::Str(s) => Val::Known(s.clone()),
                                _ => Val::Unknown(format!("is assigned by `{raw}`")),
                            };
                            state.set(name, val);
                        }
                        default
                    }
                },
                ParamOp::Alternative { colon, word } => match value {
                    Some(Value::Unknown(why)) => Value::Unknown(why),
                    Some(v) if !(*colon && is_empty(&v)) => match self.expand_string(word, state) {
                        Ok(s) => Value::Str(s),
                        Err(why) => Value::Unknown(why),
                    },
                    _ => Value::Str(String::new()),
                },
                ParamOp::Other => match value {
                    Some(Value::Unknown(why)) => Value::Unknown(why),
                    _ => unknown("is not evaluated statically"),
                },
            };
            values.push(value);
        }
        values
    }

    /// Expands a glob whose wildcards are in the last component, in the image.
    pub(super) fn glob(&self, pattern: &str, state: &State) -> Vec<String> {
        let (dir, last) = match pattern.rsplit_once('/') {
            Some((dir, last)) => (Some(dir), last),
            None => (None, pattern),
        };
        if dir.is_some_and(has_glob) {
            return Vec::new();
        }
        let Ok(abs_dir) = state.absolute(match dir {
            Some("") => "/",
            Some(dir) => dir,
            None => ".",
        }) else {
            return Vec::new();
        };
        image::children(self.fs, &abs_dir)
            .into_iter()
            .filter(|name| image::matches(last, name))
            .map(|name| match dir {
                Some(dir) => format!("{dir}/{name}"),
                None => name,
            })
            .collect()
    }
}

/// Long substitutions shortened for explanations.
fn short(raw: &str) -> String {
    const MAX: usize = 60;
    if raw.chars().count() <= MAX {
        raw.to_string()
    } else {
        let cut: String = raw.chars().take(MAX).collect();
        format!("{cut}…")
    }
}
