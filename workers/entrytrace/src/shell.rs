//! The POSIX shell subset EntryTrace reads: a hand-written recursive-descent parser from script
//! text to an AST of the constructs that decide what runs. Nothing is evaluated here.
//!
//! Parsed: simple commands with assignments and redirections, words with single and double
//! quotes, backslash escapes, `$'…'`, parameter expansions (`$X`, `${X}`, `${X:-w}`, `${X:=w}`,
//! `${X:+w}`; other operators are kept as opaque), command and arithmetic substitutions (kept as
//! opaque), `;`, `&`, `&&`, `||`, `|`, newlines, comments, here-documents (skipped), `if`,
//! `case`, `while`/`until`, `for`, functions (`name() …` and `function name …`), `{ …; }` and
//! `( … )` groups, bash `[[ … ]]` and `(( … ))` (skipped). Nesting deeper than
//! [`MAX_NESTING`] is a parse error, so hostile input cannot exhaust the stack.

use std::rc::Rc;

/// Deepest nesting of compound commands and `${…}` expansions accepted.
pub(crate) const MAX_NESTING: usize = 48;

/// Why a script could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub(crate) struct ParseError {
    pub(crate) line: u32,
    pub(crate) message: String,
}

type Result<T, E = ParseError> = std::result::Result<T, E>;

/// A shell word before expansion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) parts: Vec<Part>,
}

/// One piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal text; `quoted` when it came from quotes or an escape (no field splitting, no
    /// globbing).
    Lit { text: String, quoted: bool },
    /// A parameter expansion; `raw` is its source text, for explanations.
    Param {
        name: String,
        op: ParamOp,
        quoted: bool,
        raw: String,
    },
    /// Command or arithmetic substitution, process substitution or an array literal: its value
    /// is never known statically.
    Dynamic { quoted: bool, raw: String },
}

/// The operator of a `${…}` expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParamOp {
    /// `$X`, `${X}`, `${X:?msg}`.
    Plain,
    /// `${X-w}`, `${X:-w}`.
    Default { colon: bool, word: Word },
    /// `${X=w}`, `${X:=w}`.
    Assign { colon: bool, word: Word },
    /// `${X+w}`, `${X:+w}`.
    Alternative { colon: bool, word: Word },
    /// Length, pattern removal, substitution, substring, indirection: not evaluated.
    Other,
}

impl Word {
    /// The word's text when it has no expansions (quotes removed).
    pub(crate) fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit { text, .. } => out.push_str(text),
                _ => return None,
            }
        }
        Some(out)
    }

    /// The word's text when it is one unquoted literal: how reserved words are recognised.
    fn bare(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [
                Part::Lit {
                    text,
                    quoted: false,
                },
            ] => Some(text),
            _ => None,
        }
    }

    /// The word as it could be written back, for explanations.
    pub(crate) fn display(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit { text, .. } => out.push_str(text),
                Part::Param { raw, .. } | Part::Dynamic { raw, .. } => out.push_str(raw),
            }
        }
        out
    }
}

/// Commands run one after the other.
pub(crate) type List = Vec<AndOr>;

/// `a && b || c`, optionally in the background (`&`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AndOr {
    pub(crate) first: Pipeline,
    /// The pipelines after `&&` or `||`: each may or may not run.
    pub(crate) rest: Vec<Pipeline>,
    pub(crate) background: bool,
}

/// `a | b | c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pipeline(pub(crate) Vec<Command>);

/// One branch of an `if`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Branch {
    pub(crate) line: u32,
    pub(crate) condition: List,
    pub(crate) body: List,
}

/// One arm of a `case`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arm {
    pub(crate) line: u32,
    pub(crate) patterns: Vec<Word>,
    pub(crate) body: List,
}

/// A command of the AST; `line` is the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Simple {
        line: u32,
        assignments: Vec<(String, Word)>,
        words: Vec<Word>,
    },
    Group {
        line: u32,
        body: List,
        subshell: bool,
    },
    If {
        line: u32,
        branches: Vec<Branch>,
        otherwise: Option<(u32, List)>,
    },
    Case {
        line: u32,
        subject: Word,
        arms: Vec<Arm>,
    },
    /// `while`/`until` (and arithmetic `for ((…))`): the body may run any number of times.
    Loop {
        line: u32,
        condition: List,
        body: List,
    },
    For {
        line: u32,
        var: String,
        /// `None` for `for x; do` (the positional parameters).
        words: Option<Vec<Word>>,
        body: List,
    },
    Function {
        line: u32,
        name: String,
        body: Rc<Command>,
    },
    /// `[[ … ]]` and `(( … ))`: conditions, nothing runs.
    Test { line: u32 },
}

/// Parses a whole script.
pub(crate) fn parse(source: &str) -> Result<List> {
    let mut parser = Parser {
        src: source.chars().collect(),
        pos: 0,
        line: 1,
        depth: 0,
        heredocs: Vec::new(),
    };
    let list = parser.list()?;
    match parser.next()? {
        Tok::Eof => Ok(list),
        other => Err(parser.error(format!("unexpected {}", other.describe()))),
    }
}

#[derive(Debug, Clone)]
enum Tok {
    Word(Word, u32),
    Op(&'static str),
    /// Digits directly before a redirection (`2>`).
    IoNumber,
    Newline,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w, _) => format!("`{}`", w.display()),
            Tok::Op(op) => format!("`{op}`"),
            Tok::IoNumber => "a redirection".to_string(),
            Tok::Newline => "end of line".to_string(),
            Tok::Eof => "end of file".to_string(),
        }
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self, Tok::Op(o) if *o == op)
    }

    fn is_word(&self, reserved: &str) -> bool {
        matches!(self, Tok::Word(w, _) if w.bare() == Some(reserved))
    }
}

/// Operators, longest first.
const OPERATORS: &[&str] = &[
    ";;&", "&>>", "<<<", "<<-", "&&", "||", ";;", ";&", "|&", "&>", "<<", "<&", "<>", ">>", ">&",
    ">|", "(", ")", "<", ">", ";", "&", "|",
];

/// Reserved words that close a construct: a list stops in front of them.
const CLOSERS: &[&str] = &["then", "elif", "else", "fi", "do", "done", "esac", "}"];

struct Parser {
    src: Vec<char>,
    pos: usize,
    line: u32,
    depth: usize,
    /// Here-documents whose bodies start after the next newline: (delimiter, strip tabs).
    heredocs: Vec<(String, bool)>,
}

fn is_meta(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
    )
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `s` is a valid shell variable name.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name)
}

fn push_lit(parts: &mut Vec<Part>, text: &str, quoted: bool) {
    if let Some(Part::Lit {
        text: last,
        quoted: q,
    }) = parts.last_mut()
        && *q == quoted
    {
        last.push_str(text);
        return;
    }
    parts.push(Part::Lit {
        text: text.to_string(),
        quoted,
    });
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            message: message.into(),
        }
    }

    fn peek_char(&self, ahead: usize) -> Option<char> {
        self.src.get(self.pos + ahead).copied()
    }

    fn nest(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(format!("nesting deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    fn skip_blank(&mut self) {
        while let Some(c) = self.peek_char(0) {
            match c {
                ' ' | '\t' | '\r' => self.pos += 1,
                '\\' if self.peek_char(1) == Some('\n') => {
                    self.pos += 2;
                    self.line += 1;
                }
                '#' => {
                    while self.peek_char(0).is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn peek(&mut self) -> Result<Tok> {
        let saved = (self.pos, self.line, self.heredocs.clone());
        let tok = self.next();
        (self.pos, self.line, self.heredocs) = saved;
        tok
    }

    fn next(&mut self) -> Result<Tok> {
        self.skip_blank();
        let Some(c) = self.peek_char(0) else {
            return Ok(Tok::Eof);
        };
        if c == '\n' {
            self.pos += 1;
            self.line += 1;
            self.read_heredocs();
            return Ok(Tok::Newline);
        }
        for op in OPERATORS {
            if op
                .chars()
                .enumerate()
                .all(|(i, oc)| self.peek_char(i) == Some(oc))
            {
                self.pos += op.chars().count();
                return Ok(Tok::Op(op));
            }
        }
        let line = self.line;
        let word = self.word(None)?;
        if matches!(self.peek_char(0), Some('<' | '>'))
            && word
                .bare()
                .is_some_and(|t| t.chars().all(|c| c.is_ascii_digit()))
        {
            return Ok(Tok::IoNumber);
        }
        Ok(Tok::Word(word, line))
    }

    /// Skips the bodies of pending here-documents, which start at the current position.
    fn read_heredocs(&mut self) {
        for (delimiter, strip) in std::mem::take(&mut self.heredocs) {
            while self.pos < self.src.len() {
                let start = self.pos;
                while self.peek_char(0).is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
                let text: String = self.src[start..self.pos].iter().collect();
                if self.pos < self.src.len() {
                    self.pos += 1;
                    self.line += 1;
                }
                let text = if strip {
                    text.trim_start_matches('\t')
                } else {
                    &text
                };
                if text.trim_end_matches('\r') == delimiter {
                    break;
                }
            }
        }
    }

    fn skip_newlines(&mut self) -> Result<()> {
        while matches!(self.peek()?, Tok::Newline) {
            self.next()?;
        }
        Ok(())
    }

    fn expect_word(&mut self, reserved: &str, construct: &str, line: u32) -> Result<()> {
        let tok = self.next()?;
        if tok.is_word(reserved) {
            Ok(())
        } else {
            Err(self.error(format!(
                "`{construct}` at line {line} without `{reserved}` (found {})",
                tok.describe()
            )))
        }
    }

    /// A list of and-or lists, up to end of input, `)`, `;;` or a closing reserved word.
    fn list(&mut self) -> Result<List> {
        let mut list = Vec::new();
        loop {
            let tok = self.peek()?;
            match &tok {
                Tok::Eof => break,
                Tok::Newline | Tok::Op(";") => {
                    self.next()?;
                    continue;
                }
                Tok::Op(")" | ";;" | ";&" | ";;&") => break,
                Tok::Word(w, _) if w.bare().is_some_and(|b| CLOSERS.contains(&b)) => break,
                _ => {}
            }
            let mut and_or = self.and_or()?;
            match self.peek()? {
                Tok::Op("&") => {
                    self.next()?;
                    and_or.background = true;
                }
                Tok::Op(";") | Tok::Newline => {
                    self.next()?;
                }
                _ => {}
            }
            list.push(and_or);
        }
        Ok(list)
    }

    fn and_or(&mut self) -> Result<AndOr> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        while matches!(self.peek()?, Tok::Op("&&" | "||")) {
            self.next()?;
            self.skip_newlines()?;
            rest.push(self.pipeline()?);
        }
        Ok(AndOr {
            first,
            rest,
            background: false,
        })
    }

    fn pipeline(&mut self) -> Result<Pipeline> {
        if self.peek()?.is_word("!") {
            self.next()?;
        }
        let mut commands = vec![self.command()?];
        while matches!(self.peek()?, Tok::Op("|" | "|&")) {
            self.next()?;
            self.skip_newlines()?;
            commands.push(self.command()?);
        }
        Ok(Pipeline(commands))
    }

    fn command(&mut self) -> Result<Command> {
        let tok = self.peek()?;
        let line = self.line_of(&tok);
        let compound = match &tok {
            Tok::Op("(") => {
                self.next()?;
                if self.peek_char(0) == Some('(') {
                    self.pos += 1;
                    self.skip_balanced(2, "`((`")?;
                    Some(Command::Test { line })
                } else {
                    self.nest()?;
                    let body = self.list()?;
                    let close = self.next()?;
                    if !close.is_op(")") {
                        return Err(self.error(format!(
                            "`(` at line {line} without `)` (found {})",
                            close.describe()
                        )));
                    }
                    self.depth -= 1;
                    Some(Command::Group {
                        line,
                        body,
                        subshell: true,
                    })
                }
            }
            Tok::Word(w, _) => match w.bare() {
                Some("if") => Some(self.if_clause(line)?),
                Some("while" | "until") => Some(self.loop_clause(line)?),
                Some("for" | "select") => Some(self.for_clause(line)?),
                Some("case") => Some(self.case_clause(line)?),
                Some("{") => {
                    self.next()?;
                    self.nest()?;
                    let body = self.list()?;
                    self.expect_word("}", "{", line)?;
                    self.depth -= 1;
                    Some(Command::Group {
                        line,
                        body,
                        subshell: false,
                    })
                }
                Some("function") => {
                    self.next()?;
                    let name = match self.next()? {
                        Tok::Word(w, _) => w.display(),
                        other => {
                            return Err(self.error(format!(
                                "`function` without a name (found {})",
                                other.describe()
                            )));
                        }
                    };
                    if self.peek()?.is_op("(") {
                        self.next()?;
                        let close = self.next()?;
                        if !close.is_op(")") {
                            return Err(self.error(format!(
                                "function `{name}`: expected `)` (found {})",
                                close.describe()
                            )));
                        }
                    }
                    Some(self.function_body(line, name)?)
                }
                Some("[[") => {
                    self.next()?;
                    loop {
                        match self.next()? {
                            Tok::Eof => {
                                return Err(self.error(format!("`[[` at line {line} without `]]`")));
                            }
                            t if t.is_word("]]") => break,
                            _ => {}
                        }
                    }
                    Some(Command::Test { line })
                }
                Some(name) if is_identifier(name) || name.contains(['-', '.', ':']) => {
                    // `name() body`
                    let name = name.to_string();
                    let saved = (self.pos, self.line, self.heredocs.clone());
                    self.next()?;
                    if self.peek()?.is_op("(") {
                        self.next()?;
                        if self.peek()?.is_op(")") {
                            self.next()?;
                            return self.function_body(line, name);
                        }
                    }
                    (self.pos, self.line, self.heredocs) = saved;
                    None
                }
                _ => None,
            },
            _ => None,
        };
        match compound {
            Some(command) => {
                self.redirections()?;
                Ok(command)
            }
            None => self.simple(line),
        }
    }

    fn line_of(&self, tok: &Tok) -> u32 {
        match tok {
            Tok::Word(_, line) => *line,
            _ => {
                // Operators start after blanks on the current line.
                self.line
            }
        }
    }

    fn function_body(&mut self, line: u32, name: String) -> Result<Command> {
        self.skip_newlines()?;
        self.nest()?;
        let body = self.command()?;
        self.depth -= 1;
        Ok(Command::Function {
            line,
            name,
            body: Rc::new(body),
        })
    }

    /// Redirections after a compound command.
    fn redirections(&mut self) -> Result<()> {
        loop {
            match self.peek()? {
                Tok::IoNumber => {
                    self.next()?;
                }
                Tok::Op(op) if is_redirection(op) => {
                    self.next()?;
                    self.redirection_target(op)?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn redirection_target(&mut self, op: &str) -> Result<()> {
        match self.next()? {
            Tok::Word(target, _) => {
                if op == "<<" || op == "<<-" {
                    let delimiter = target.literal().unwrap_or_else(|| target.display());
                    self.heredocs.push((delimiter, op == "<<-"));
                }
                Ok(())
            }
            other => Err(self.error(format!(
                "redirection `{op}` without a target (found {})",
                other.describe()
            ))),
        }
    }

    fn simple(&mut self, line: u32) -> Result<Command> {
        let mut assignments = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        loop {
            match self.peek()? {
                Tok::Word(word, _) => {
                    self.next()?;
                    if words.is_empty()
                        && let Some((name, value)) = split_assignment(&word)
                    {
                        if value.parts.is_empty() && self.peek_char(0) == Some('(') {
                            // `name=(a b c)`: an array, never known.
                            self.pos += 1;
                            let start = self.pos;
                            self.skip_balanced(1, "array")?;
                            let raw: String = self.src[start - 1..self.pos].iter().collect();
                            assignments.push((
                                name,
                                Word {
                                    parts: vec![Part::Dynamic { quoted: true, raw }],
                                },
                            ));
                        } else {
                            assignments.push((name, value));
                        }
                    } else {
                        words.push(word);
                    }
                }
                Tok::IoNumber => {
                    self.next()?;
                }
                Tok::Op(op) if is_redirection(op) => {
                    self.next()?;
                    self.redirection_target(op)?;
                }
                Tok::Op("(") if !words.is_empty() => {
                    return Err(self.error("unexpected `(`"));
                }
                _ => break,
            }
        }
        if words.is_empty() && assignments.is_empty() {
            let tok = self.peek()?;
            return Err(self.error(format!("expected a command, found {}", tok.describe())));
        }
        Ok(Command::Simple {
            line,
            assignments,
            words,
        })
    }

    fn if_clause(&mut self, line: u32) -> Result<Command> {
        self.next()?;
        self.nest()?;
        let mut branches = Vec::new();
        let mut otherwise = None;
        let mut branch_line = line;
        loop {
            let condition = self.list()?;
            self.expect_word("then", "if", line)?;
            let body = self.list()?;
            branches.push(Branch {
                line: branch_line,
                condition,
                body,
            });
            let tok = self.next()?;
            if tok.is_word("elif") {
                branch_line = self.line_of(&tok);
                continue;
            }
            if tok.is_word("else") {
                let else_line = self.line_of(&tok);
                otherwise = Some((else_line, self.list()?));
                self.expect_word("fi", "if", line)?;
            } else if !tok.is_word("fi") {
                return Err(self.error(format!(
                    "`if` at line {line} without `fi` (found {})",
                    tok.describe()
                )));
            }
            break;
        }
        self.depth -= 1;
        Ok(Command::If {
            line,
            branches,
            otherwise,
        })
    }

    fn loop_clause(&mut self, line: u32) -> Result<Command> {
        let keyword = match self.next()? {
            Tok::Word(w, _) => w.display(),
            _ => unreachable!("loop_clause is entered on its keyword"),
        };
        self.nest()?;
        let condition = self.list()?;
        self.expect_word("do", &keyword, line)?;
        let body = self.list()?;
        self.expect_word("done", &keyword, line)?;
        self.depth -= 1;
        Ok(Command::Loop {
            line,
            condition,
            body,
        })
    }

    fn for_clause(&mut self, line: u32) -> Result<Command> {
        self.next()?;
        self.nest()?;
        if self.peek()?.is_op("(") && self.peek_char(0) == Some('(') {
            // Arithmetic `for ((i = 0; i < n; i++))`.
            self.skip_blank();
            self.pos += 2;
            self.skip_balanced(2, "`for ((`")?;
            if self.peek()?.is_op(";") {
                self.next()?;
            }
            self.skip_newlines()?;
            self.expect_word("do", "for", line)?;
            let body = self.list()?;
            self.expect_word("done", "for", line)?;
            self.depth -= 1;
            return Ok(Command::Loop {
                line,
                condition: Vec::new(),
                body,
            });
        }
        let var = match self.next()? {
            Tok::Word(w, _) if w.bare().is_some_and(is_identifier) => w.display(),
            other => {
                return Err(self.error(format!(
                    "`for` at line {line} without a variable name (found {})",
                    other.describe()
                )));
            }
        };
        self.skip_newlines()?;
        let mut words = None;
        if self.peek()?.is_word("in") {
            self.next()?;
            let mut list = Vec::new();
            while let Tok::Word(w, _) = self.peek()? {
                self.next()?;
                list.push(w);
            }
            words = Some(list);
        }
        if matches!(self.peek()?, Tok::Op(";")) {
            self.next()?;
        }
        self.skip_newlines()?;
        self.expect_word("do", "for", line)?;
        let body = self.list()?;
        self.expect_word("done", "for", line)?;
        self.depth -= 1;
        Ok(Command::For {
            line,
            var,
            words,
            body,
        })
    }

    fn case_clause(&mut self, line: u32) -> Result<Command> {
        self.next()?;
        self.nest()?;
        let subject = match self.next()? {
            Tok::Word(w, _) => w,
            other => {
                return Err(self.error(format!(
                    "`case` at line {line} without a word (found {})",
                    other.describe()
                )));
            }
        };
        self.skip_newlines()?;
        self.expect_word("in", "case", line)?;
        let mut arms = Vec::new();
        loop {
            self.skip_newlines()?;
            let tok = self.peek()?;
            if tok.is_word("esac") {
                self.next()?;
                break;
            }
            if matches!(tok, Tok::Eof) {
                return Err(self.error(format!("`case` at line {line} without `esac`")));
            }
            if tok.is_op("(") {
                self.next()?;
            }
            let next = self.peek()?;
            let arm_line = self.line_of(&next);
            let mut patterns = Vec::new();
            loop {
                match self.next()? {
                    Tok::Word(w, _) => patterns.push(w),
                    other => {
                        return Err(self.error(format!(
                            "`case` at line {line}: expected a pattern (found {})",
                            other.describe()
                        )));
                    }
                }
                match self.next()? {
                    Tok::Op("|") => continue,
                    Tok::Op(")") => break,
                    other => {
                        return Err(self.error(format!(
                            "`case` at line {line}: expected `)` after a pattern (found {})",
                            other.describe()
                        )));
                    }
                }
            }
            let body = self.list()?;
            arms.push(Arm {
                line: arm_line,
                patterns,
                body,
            });
            match self.peek()? {
                Tok::Op(";;" | ";&" | ";;&") => {
                    self.next()?;
                }
                t if t.is_word("esac") => {}
                Tok::Eof => {
                    return Err(self.error(format!("`case` at line {line} without `esac`")));
                }
                other => {
                    return Err(self.error(format!(
                        "`case` at line {line}: expected `;;` or `esac` (found {})",
                        other.describe()
                    )));
                }
            }
        }
        self.depth -= 1;
        Ok(Command::Case {
            line,
            subject,
            arms,
        })
    }

    /// Skips to the matching close parenthesis; `open` parentheses are already consumed.
    fn skip_balanced(&mut self, open: usize, what: &str) -> Result<()> {
        let start_line = self.line;
        let mut depth = open;
        while let Some(c) = self.peek_char(0) {
            self.pos += 1;
            match c {
                '\\' => {
                    if self.peek_char(0) == Some('\n') {
                        self.line += 1;
                    }
                    self.pos += 1;
                }
                '\n' => self.line += 1,
                '\'' => self.skip_until('\'', false, what, start_line)?,
                '"' => self.skip_until('"', true, what, start_line)?,
                '`' => self.skip_until('`', true, what, start_line)?,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        Err(ParseError {
            line: start_line,
            message: format!("unterminated {what} starting at line {start_line}"),
        })
    }

    /// Skips past the next unescaped `close` (the opening one is consumed).
    fn skip_until(
        &mut self,
        close: char,
        escapes: bool,
        what: &str,
        start_line: u32,
    ) -> Result<()> {
        while let Some(c) = self.peek_char(0) {
            self.pos += 1;
            if c == '\n' {
                self.line += 1;
            } else if c == '\\' && escapes {
                if self.peek_char(0) == Some('\n') {
                    self.line += 1;
                }
                self.pos += 1;
            } else if c == close {
                return Ok(());
            }
        }
        Err(ParseError {
            line: start_line,
            message: format!("unterminated quote in {what} starting at line {start_line}"),
        })
    }

    /// Reads one word. With a `terminator` (inside `${X:-…}`), blanks and operators are
    /// literal and the word ends at the unquoted terminator.
    fn word(&mut self, terminator: Option<char>) -> Result<Word> {
        let mut parts = Vec::new();
        if terminator.is_none()
            && self.peek_char(0) == Some('~')
            && self.peek_char(1).is_none_or(|c| c == '/' || is_meta(c))
        {
            self.pos += 1;
            parts.push(Part::Param {
                name: "HOME".to_string(),
                op: ParamOp::Plain,
                quoted: true,
                raw: "~".to_string(),
            });
        }
        while let Some(c) = self.peek_char(0) {
            match terminator {
                Some(t) if c == t => break,
                None if is_meta(c) => break,
                _ => {}
            }
            match c {
                '\\' => {
                    self.pos += 1;
                    match self.peek_char(0) {
                        Some('\n') => {
                            self.pos += 1;
                            self.line += 1;
                        }
                        Some(escaped) => {
                            self.pos += 1;
                            push_lit(&mut parts, &escaped.to_string(), true);
                        }
                        None => push_lit(&mut parts, "\\", true),
                    }
                }
                '\'' => {
                    let start_line = self.line;
                    self.pos += 1;
                    let start = self.pos;
                    while self.peek_char(0).is_some_and(|c| c != '\'') {
                        if self.peek_char(0) == Some('\n') {
                            self.line += 1;
                        }
                        self.pos += 1;
                    }
                    if self.pos >= self.src.len() {
                        return Err(ParseError {
                            line: start_line,
                            message: format!(
                                "unterminated single quote starting at line {start_line}"
                            ),
                        });
                    }
                    let text: String = self.src[start..self.pos].iter().collect();
                    self.pos += 1;
                    push_lit(&mut parts, &text, true);
                }
                '"' => {
                    self.pos += 1;
                    self.double_quoted(&mut parts)?;
                }
                '$' => self.dollar(&mut parts, false)?,
                '`' => {
                    let start = self.pos;
                    let start_line = self.line;
                    self.pos += 1;
                    self.skip_until('`', true, "backquote substitution", start_line)?;
                    let raw: String = self.src[start..self.pos].iter().collect();
                    parts.push(Part::Dynamic { quoted: false, raw });
                }
                '\n' => {
                    self.pos += 1;
                    self.line += 1;
                    push_lit(&mut parts, "\n", false);
                }
                other => {
                    self.pos += 1;
                    let mut buf = [0u8; 4];
                    push_lit(&mut parts, other.encode_utf8(&mut buf), false);
                }
            }
        }
        Ok(Word { parts })
    }

    /// The inside of `"…"`; the opening quote is consumed.
    fn double_quoted(&mut self, parts: &mut Vec<Part>) -> Result<()> {
        let start_line = self.line;
        // `""` is an empty field, not nothing.
        push_lit(parts, "", true);
        loop {
            let Some(c) = self.peek_char(0) else {
                return Err(ParseError {
                    line: start_line,
                    message: format!("unterminated double quote starting at line {start_line}"),
                });
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(());
                }
                '\\' => {
                    self.pos += 1;
                    match self.peek_char(0) {
                        Some('\n') => {
                            self.pos += 1;
                            self.line += 1;
                        }
                        Some(e @ ('$' | '`' | '"' | '\\')) => {
                            self.pos += 1;
                            push_lit(parts, &e.to_string(), true);
                        }
                        _ => push_lit(parts, "\\", true),
                    }
                }
                '$' => self.dollar(parts, true)?,
                '`' => {
                    let start = self.pos;
                    self.pos += 1;
                    self.skip_until('`', true, "backquote substitution", self.line)?;
                    let raw: String = self.src[start..self.pos].iter().collect();
                    parts.push(Part::Dynamic { quoted: true, raw });
                }
                other => {
                    if other == '\n' {
                        self.line += 1;
                    }
                    self.pos += 1;
                    let mut buf = [0u8; 4];
                    push_lit(parts, other.encode_utf8(&mut buf), true);
                }
            }
        }
    }

    /// A `$` expansion; the position is at the `$`.
    fn dollar(&mut self, parts: &mut Vec<Part>, quoted: bool) -> Result<()> {
        let start = self.pos;
        let raw = |p: &Parser| -> String { p.src[start..p.pos].iter().collect() };
        match self.peek_char(1) {
            Some('{') => {
                self.pos += 2;
                self.nest()?;
                let part = self.braced(quoted, start)?;
                self.depth -= 1;
                parts.push(part);
            }
            Some('(') => {
                self.pos += 2;
                let what = if self.peek_char(0) == Some('(') {
                    "arithmetic expansion"
                } else {
                    "command substitution"
                };
                self.skip_balanced(1, what)?;
                parts.push(Part::Dynamic {
                    quoted,
                    raw: raw(self),
                });
            }
            Some('\'') if !quoted => {
                self.pos += 2;
                let start_line = self.line;
                let mut text = String::new();
                loop {
                    match self.peek_char(0) {
                        None => {
                            return Err(ParseError {
                                line: start_line,
                                message: format!(
                                    "unterminated $'…' quote starting at line {start_line}"
                                ),
                            });
                        }
                        Some('\'') => {
                            self.pos += 1;
                            break;
                        }
                        Some('\\') => {
                            self.pos += 1;
                            let escaped = self.peek_char(0).unwrap_or('\\');
                            self.pos += 1;
                            text.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                        }
                        Some(c) => {
                            if c == '\n' {
                                self.line += 1;
                            }
                            self.pos += 1;
                            text.push(c);
                        }
                    }
                }
                push_lit(parts, &text, true);
            }
            Some('"') if !quoted => {
                self.pos += 2;
                self.double_quoted(parts)?;
            }
            Some(c) if is_name_start(c) => {
                self.pos += 1;
                while self.peek_char(0).is_some_and(is_name) {
                    self.pos += 1;
                }
                let name: String = self.src[start + 1..self.pos].iter().collect();
                parts.push(Part::Param {
                    name,
                    op: ParamOp::Plain,
                    quoted,
                    raw: raw(self),
                });
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.pos += 2;
                parts.push(Part::Param {
                    name: c.to_string(),
                    op: ParamOp::Plain,
                    quoted,
                    raw: raw(self),
                });
            }
            _ => {
                self.pos += 1;
                push_lit(parts, "$", quoted);
            }
        }
        Ok(())
    }

    /// The inside of `${…}`; `${` is consumed.
    fn braced(&mut self, quoted: bool, start: usize) -> Result<Part> {
        let start_line = self.line;
        let unterminated = |line| ParseError {
            line,
            message: format!("unterminated ${{…}} starting at line {line}"),
        };
        let first = self.peek_char(0).ok_or_else(|| unterminated(start_line))?;
        let name = if first == '#' && self.peek_char(1) != Some('}') || first == '!' {
            // Length or indirection.
            None
        } else if is_name_start(first) {
            let from = self.pos;
            while self.peek_char(0).is_some_and(is_name) {
                self.pos += 1;
            }
            Some(self.src[from..self.pos].iter().collect::<String>())
        } else if first.is_ascii_digit() {
            let from = self.pos;
            while self.peek_char(0).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            Some(self.src[from..self.pos].iter().collect())
        } else if "@*#?$!-".contains(first) {
            self.pos += 1;
            Some(first.to_string())
        } else {
            None
        };
        let raw = |p: &Parser| -> String { p.src[start..p.pos].iter().collect() };
        let Some(name) = name else {
            self.skip_braced(start_line)?;
            return Ok(Part::Param {
                name: String::new(),
                op: ParamOp::Other,
                quoted,
                raw: raw(self),
            });
        };
        let (colon, op) = match (self.peek_char(0), self.peek_char(1)) {
            (Some('}'), _) => {
                self.pos += 1;
                return Ok(Part::Param {
                    name,
                    op: ParamOp::Plain,
                    quoted,
                    raw: raw(self),
                });
            }
            (Some(':'), Some(op @ ('-' | '=' | '+' | '?'))) => {
                self.pos += 2;
                (true, op)
            }
            (Some(op @ ('-' | '=' | '+' | '?')), _) => {
                self.pos += 1;
                (false, op)
            }
            (None, _) => return Err(unterminated(start_line)),
            _ => {
                self.skip_braced(start_line)?;
                return Ok(Part::Param {
                    name,
                    op: ParamOp::Other,
                    quoted,
                    raw: raw(self),
                });
            }
        };
        let word = self.word(Some('}'))?;
        if self.peek_char(0) != Some('}') {
            return Err(unterminated(start_line));
        }
        self.pos += 1;
        let op = match op {
            '-' => ParamOp::Default { colon, word },
            '=' => ParamOp::Assign { colon, word },
            '+' => ParamOp::Alternative { colon, word },
            _ => ParamOp::Plain,
        };
        Ok(Part::Param {
            name,
            op,
            quoted,
            raw: raw(self),
        })
    }

    /// Skips to the `}` closing a `${…}` that is not evaluated.
    fn skip_braced(&mut self, start_line: u32) -> Result<()> {
        let mut depth = 1;
        while let Some(c) = self.peek_char(0) {
            self.pos += 1;
            match c {
                '\\' => self.pos += 1,
                '\n' => self.line += 1,
                '\'' => self.skip_until('\'', false, "${…}", start_line)?,
                '"' => self.skip_until('"', true, "${…}", start_line)?,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        Err(ParseError {
            line: start_line,
            message: format!("unterminated ${{…}} starting at line {start_line}"),
        })
    }
}

fn is_redirection(op: &str) -> bool {
    matches!(
        op,
        "<" | ">" | ">>" | "<<" | "<<-" | "<<<" | "<&" | ">&" | "<>" | ">|" | "&>" | "&>>"
    )
}

/// `NAME=value` → (NAME, value), when NAME is unquoted and valid.
fn split_assignment(word: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit {
        text,
        quoted: false,
    }) = word.parts.first()
    else {
        return None;
    };
    let (name, value) = text.split_once('=')?;
    if !is_identifier(name) {
        return None;
    }
    let mut parts = Vec::new();
    if !value.is_empty() {
        parts.push(Part::Lit {
            text: value.to_string(),
            quoted: false,
        });
    }
    parts.extend(word.parts[1..].iter().cloned());
    Some((name.to_string(), Word { parts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(list: &List, i: usize) -> (u32, Vec<String>) {
        match &list[i].first.0[0] {
            Command::Simple { line, words, .. } => {
                (*line, words.iter().map(Word::display).collect())
            }
            other => panic!("not simple: {other:?}"),
        }
    }

    #[test]
    fn words_quotes_and_expansions() {
        let list = parse("echo 'a b' \"c $X\" d\\ e ${Y:-/bin/z} $(date) `id` \\\n  f\n").unwrap();
        let (line, words) = simple(&list, 0);
        assert_eq!(line, 1);
        assert_eq!(
            words,
            [
                "echo",
                "a b",
                "c $X",
                "d e",
                "${Y:-/bin/z}",
                "$(date)",
                "`id`",
                "f"
            ]
        );
        let Command::Simple { words, .. } = &list[0].first.0[0] else {
            unreachable!()
        };
        assert!(matches!(
            &words[4].parts[0],
            Part::Param { name, op: ParamOp::Default { colon: true, word }, .. }
                if name == "Y" && word.literal().as_deref() == Some("/bin/z")
        ));
    }

    #[test]
    fn lines_are_counted_through_heredocs_and_continuations() {
        let src = "a\ncat <<EOF\nx\ny\nEOF\nb \\\nc\nd '\n'\ne\n";
        let list = parse(src).unwrap();
        let lines: Vec<u32> = (0..list.len()).map(|i| simple(&list, i).0).collect();
        assert_eq!(lines, [1, 2, 6, 8, 10]);
    }

    #[test]
    fn compound_commands() {
        let src = "f() { exec a; }\nif x; then y; elif z; then w; else v; fi\n\
                   case $1 in\n  a|b) one ;;\n  *) two\nesac\nwhile true; do sleep 1; done\n\
                   for i in 1 2; do echo $i; done\n( sub ) && { grp; } || [[ a && b ]]\n";
        let list = parse(src).unwrap();
        assert!(matches!(&list[0].first.0[0], Command::Function { name, .. } if name == "f"));
        assert!(
            matches!(&list[1].first.0[0], Command::If { branches, otherwise: Some(_), .. } if branches.len() == 2)
        );
        assert!(
            matches!(&list[2].first.0[0], Command::Case { arms, .. } if arms.len() == 2 && arms[1].line == 5)
        );
        assert!(matches!(&list[3].first.0[0], Command::Loop { .. }));
        assert!(matches!(&list[4].first.0[0], Command::For { var, .. } if var == "i"));
        assert_eq!(list[5].rest.len(), 2);
    }

    #[test]
    fn errors_name_the_construct_and_line() {
        let cases = [
            (
                "echo 'abc\n",
                "line 1: unterminated single quote starting at line 1",
            ),
            (
                "\necho \"abc\n",
                "line 2: unterminated double quote starting at line 2",
            ),
            ("if true; then\n  x\n", "`if` at line 1 without `fi`"),
            ("case a in\n x) y ;;\n", "`case` at line 1 without `esac`"),
            ("echo $(date\n", "unterminated command substitution"),
            ("fi\n", "unexpected `fi`"),
        ];
        for (src, expected) in cases {
            let err = parse(src).unwrap_err().to_string();
            assert!(err.contains(expected), "{src:?}: {err}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "{ ".repeat(10_000) + &"}".repeat(10_000);
        let err = parse(&deep).unwrap_err();
        assert!(err.message.contains("nesting deeper than"), "{err}");
        let braces = "${A:-".repeat(10_000);
        assert!(parse(&braces).is_err());
        let parens = "(".repeat(10_000);
        assert!(parse(&parens).is_err());
    }
}
