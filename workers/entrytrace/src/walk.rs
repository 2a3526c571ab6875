//! The walk: from the image config's argv through scripts, wrappers and launchers to the
//! programs that end up running. Every decision is recorded as a hop, a terminal or an
//! unknown; nothing from the image is executed.

use crate::image::{self, File};
use crate::model::{
    Choice, Config, Hop, HopKind, Location, Options, Reason, Terminal, TerminalKind, Unknown,
};
use crate::shell::{self, AndOr, Command, List, ParamOp, Part, Word};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use stella_layerfs::Filesystem;

/// Most argument lists a command is followed with (`"$@"` after branches that `set --`).
const MAX_ALTERNATIVES: usize = 8;
/// Most commands walked in one trace: bounds the work of hostile scripts (functions calling
/// each other twice per level, thousands of `run-parts` entries).
const MAX_STEPS: usize = 100_000;
/// Deepest nesting of compound commands across the whole chain being walked.
const MAX_WALK_NESTING: usize = 128;
/// Most values of a `for` loop followed.
const MAX_LOOP_VALUES: usize = 64;

/// Builtins that are not commands to resolve.
const BUILTINS: &[&str] = &[
    ":",
    "true",
    "false",
    "echo",
    "printf",
    "test",
    "[",
    "trap",
    "umask",
    "ulimit",
    "wait",
    "hash",
    "type",
    "alias",
    "unalias",
    "times",
    "jobs",
    "fg",
    "bg",
    "kill",
    "shopt",
    "let",
    "break",
    "continue",
    "builtin",
    "caller",
    "enable",
    "help",
    "history",
    "logout",
    "disown",
    "suspend",
    "complete",
    "compgen",
    "dirs",
    "bind",
    "ulimit",
    "command_not_found_handle",
];

/// Builtins whose arguments are assignments (`export X=1`).
const DECLARATIONS: &[&str] = &["export", "readonly", "local", "declare", "typeset"];

/// One word after expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Field {
    /// The text, with unknown parts as written (`$JAVA_OPTS`).
    pub(crate) text: String,
    /// Why the text is not known, when it is not: "`$X`, which is not set in the image".
    pub(crate) dynamic: Option<String>,
    /// Whether it holds unquoted `*`, `?` or `[`.
    glob: bool,
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

/// A variable's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Val {
    Known(String),
    /// Why it is not known, as a clause: "is assigned from `$(id -u)` at /x.sh:3".
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Var {
    val: Val,
    exported: bool,
}

/// The positional parameters: the possible argument lists.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Args {
    Known(Vec<Vec<Field>>),
    Unknown(String),
}

#[derive(Debug)]
struct Function {
    body: Rc<Command>,
    origin: Origin,
}

/// What a shell knows while walking a script.
#[derive(Clone, Debug)]
pub(crate) struct State {
    vars: BTreeMap<String, Var>,
    arg0: String,
    args: Args,
    cwd: Val,
    functions: BTreeMap<String, Rc<Function>>,
}

impl State {
    /// The environment of the image config: `Env` (exported) and `WorkingDir`.
    pub(crate) fn from_config(config: &Config) -> State {
        let mut vars = BTreeMap::new();
        for entry in &config.env {
            if let Some((name, value)) = entry.split_once('=') {
                vars.insert(
                    name.to_string(),
                    Var {
                        val: Val::Known(value.to_string()),
                        exported: true,
                    },
                );
            }
        }
        // Docker sets PATH when the image does not.
        vars.entry("PATH".to_string()).or_insert_with(|| Var {
            val: Val::Known(image::DEFAULT_PATH.to_string()),
            exported: true,
        });
        let cwd = config
            .working_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(|d| image::join("/", d))
            .unwrap_or_else(|| "/".to_string());
        State {
            vars,
            arg0: String::new(),
            args: Args::Known(vec![Vec::new()]),
            cwd: Val::Known(cwd),
            functions: BTreeMap::new(),
        }
    }

    /// The state a new process starts with: exported variables and the working directory.
    fn child(&self, arg0: String, args: Vec<Field>) -> State {
        State {
            vars: self
                .vars
                .iter()
                .filter(|(_, v)| v.exported)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            arg0,
            args: Args::Known(vec![args]),
            cwd: self.cwd.clone(),
            functions: BTreeMap::new(),
        }
    }

    fn set(&mut self, name: &str, val: Val) {
        let exported = self.vars.get(name).is_some_and(|v| v.exported);
        self.vars.insert(name.to_string(), Var { val, exported });
    }

    fn export(&mut self, name: &str, val: Option<Val>) {
        let val = val
            .or_else(|| self.vars.get(name).map(|v| v.val.clone()))
            .unwrap_or(Val::Known(String::new()));
        self.vars.insert(
            name.to_string(),
            Var {
                val,
                exported: true,
            },
        );
    }

    /// The working directory, or why it is not known.
    pub(crate) fn cwd(&self) -> Result<&str, String> {
        match &self.cwd {
            Val::Known(cwd) => Ok(cwd),
            Val::Unknown(why) => Err(format!("the working directory, which {why}")),
        }
    }

    /// A known variable's value.
    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        match self.vars.get(name).map(|v| &v.val) {
            Some(Val::Known(value)) => Some(value),
            _ => None,
        }
    }

    /// Resolves `path` against the working directory.
    pub(crate) fn absolute(&self, path: &str) -> Result<String, String> {
        if path.starts_with('/') {
            Ok(image::join("/", path))
        } else {
            self.cwd().map(|cwd| image::join(cwd, path))
        }
    }

    /// The `PATH` directories, absolute, or why they are not known.
    fn path_dirs(&self) -> Result<Vec<String>, String> {
        let path = match self.vars.get("PATH").map(|v| &v.val) {
            None => image::DEFAULT_PATH,
            Some(Val::Known(path)) => path,
            Some(Val::Unknown(why)) => return Err(format!("`$PATH`, which {why}")),
        };
        path.split(':')
            .map(|dir| self.absolute(if dir.is_empty() { "." } else { dir }))
            .collect()
    }
}

/// Merges the states of branches: values that agree are kept; a variable set to the same value
/// by some branches and left unset by the others keeps that value (the `[ -n "$X" ] || X=…`
/// idiom, like `${X:-…}`); anything else becomes unknown. Argument lists are collected.
fn merge(states: Vec<State>) -> State {
    let mut iter = states.into_iter();
    let mut merged = iter.next().expect("merge of at least one state");
    let rest: Vec<State> = iter.collect();
    if rest.is_empty() {
        return merged;
    }
    let names: BTreeSet<String> = std::iter::once(&merged)
        .chain(&rest)
        .flat_map(|s| s.vars.keys().cloned())
        .collect();
    let mut vars = BTreeMap::new();
    for name in names {
        let values: Vec<Option<&Var>> = std::iter::once(&merged)
            .chain(&rest)
            .map(|s| s.vars.get(&name))
            .collect();
        let exported = values.iter().flatten().any(|v| v.exported);
        let present: Vec<&Val> = values.iter().flatten().map(|v| &v.val).collect();
        let agree = present.iter().all(|v| *v == present[0]);
        let val = if agree && (present.len() == values.len() || matches!(present[0], Val::Known(_)))
        {
            present[0].clone()
        } else {
            Val::Unknown("is assigned differently in different branches".to_string())
        };
        vars.insert(name, Var { val, exported });
    }
    merged.vars = vars;
    for state in &rest {
        merged.args = match (&merged.args, &state.args) {
            (Args::Known(a), Args::Known(b)) => {
                let mut all = a.clone();
                for list in b {
                    if !all.contains(list) {
                        all.push(list.clone());
                    }
                }
                if all.len() > MAX_ALTERNATIVES {
                    Args::Unknown(format!(
                        "has more than {MAX_ALTERNATIVES} possible values across branches"
                    ))
                } else {
                    Args::Known(all)
                }
            }
            (Args::Unknown(why), _) | (_, Args::Unknown(why)) => Args::Unknown(why.clone()),
        };
        if merged.cwd != state.cwd {
            merged.cwd = Val::Unknown("differs between branches".to_string());
        }
        for (name, function) in &state.functions {
            merged.functions.insert(name.clone(), function.clone());
        }
    }
    merged
}

/// Where the commands being walked come from.
#[derive(Clone, Debug)]
enum Origin {
    /// A script or sourced file (absolute path in the image).
    File(Rc<str>),
    /// A `sh -c` string or `eval`: every line is the location of that command.
    Inline(Location),
}

impl Origin {
    fn at(&self, line: u32) -> Location {
        match self {
            Origin::File(file) => Location::at(file.to_string(), line),
            Origin::Inline(location) => location.clone(),
        }
    }
}

/// The context of the commands being walked.
#[derive(Clone, Debug)]
struct Ctx {
    origin: Origin,
    choices: Vec<Choice>,
    depth: usize,
}

impl Ctx {
    fn choose(&self, at: Location, branch: String) -> Ctx {
        let mut ctx = self.clone();
        ctx.choices.push(Choice { at, branch });
        ctx
    }
}

/// How a command list ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Next,
    /// `return`: ends a function or a sourced file.
    Return,
    /// `exit` or `exec`: ends the script.
    Exit,
}

/// A program about to be started.
#[derive(Clone, Debug)]
pub(crate) struct Inv<'s> {
    pub(crate) argv: Vec<Field>,
    pub(crate) kind: HopKind,
    pub(crate) from: Location,
    /// The environment it starts with.
    pub(crate) env: &'s State,
    pub(crate) choices: Vec<Choice>,
    pub(crate) depth: usize,
    /// When this is a `#!` script's interpreter: the script (already hopped to).
    pub(crate) script: Option<String>,
}

impl<'s> Inv<'s> {
    /// What this program starts next.
    pub(crate) fn then(&self, argv: Vec<Field>, kind: HopKind) -> Inv<'s> {
        Inv {
            argv,
            kind,
            from: self.from.clone(),
            env: self.env,
            choices: self.choices.clone(),
            depth: self.depth + 1,
            script: None,
        }
    }
}

/// Why a program was not found.
pub(crate) enum Miss {
    NotFound(String),
    Dynamic(String),
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

/// Walks one trace.
pub(crate) struct Tracer<'a> {
    pub(crate) fs: &'a Filesystem,
    options: &'a Options,
    hops: Vec<Hop>,
    hop_set: BTreeSet<Hop>,
    terminals: Vec<Terminal>,
    terminal_set: BTreeSet<Terminal>,
    unknowns: Vec<Unknown>,
    unknown_set: BTreeSet<Unknown>,
    files: BTreeSet<String>,
    /// Terminals and unknowns reported, duplicates included: whether a script led anywhere.
    reported: usize,
    steps: usize,
    exhausted: bool,
    /// Alternatives dropped by the last expansion.
    truncated: bool,
    /// Scripts being walked (exec'd and sourced), outermost first.
    scripts: Vec<String>,
    /// Functions being called, outermost first.
    calls: Vec<Rc<Function>>,
    nesting: usize,
    /// Directories listed for Python's `sys.path`, by (directory, prefix).
    pub(crate) dir_cache: BTreeMap<(String, String), Vec<String>>,
}

/// The result of a walk, before the outcome is decided.
pub(crate) struct Walked {
    pub(crate) hops: Vec<Hop>,
    pub(crate) terminals: Vec<Terminal>,
    pub(crate) unknowns: Vec<Unknown>,
    pub(crate) files: BTreeSet<String>,
}

impl<'a> Tracer<'a> {
    pub(crate) fn new(fs: &'a Filesystem, options: &'a Options) -> Tracer<'a> {
        Tracer {
            fs,
            options,
            hops: Vec::new(),
            hop_set: BTreeSet::new(),
            terminals: Vec::new(),
            terminal_set: BTreeSet::new(),
            unknowns: Vec::new(),
            unknown_set: BTreeSet::new(),
            files: BTreeSet::new(),
            reported: 0,
            steps: 0,
            exhausted: false,
            truncated: false,
            scripts: Vec::new(),
            calls: Vec::new(),
            nesting: 0,
            dir_cache: BTreeMap::new(),
        }
    }

    pub(crate) fn finish(self) -> Walked {
        Walked {
            hops: self.hops,
            terminals: self.terminals,
            unknowns: self.unknowns,
            files: self.files,
        }
    }

    // ---- recording ------------------------------------------------------------------------

    pub(crate) fn unknown(&mut self, reason: Reason, detail: String, from: Location) {
        self.reported += 1;
        let unknown = Unknown {
            reason,
            detail,
            from,
        };
        if self.unknown_set.insert(unknown.clone()) {
            self.unknowns.push(unknown);
        }
    }

    pub(crate) fn terminal(
        &mut self,
        path: String,
        kind: TerminalKind,
        argv: Vec<String>,
        interpreter: Option<String>,
    ) {
        self.reported += 1;
        let terminal = Terminal {
            path,
            kind,
            argv,
            interpreter,
        };
        if self.terminal_set.insert(terminal.clone()) {
            self.terminals.push(terminal);
        }
    }

    pub(crate) fn hop(&mut self, inv: &Inv<'_>, kind: HopKind, command: Vec<String>, path: &str) {
        self.record_hop(Hop {
            from: inv.from.clone(),
            kind,
            command,
            path: path.to_string(),
            choices: inv.choices.clone(),
        });
    }

    fn record_hop(&mut self, hop: Hop) {
        if self.hop_set.insert(hop.clone()) {
            self.hops.push(hop);
        }
    }

    /// Records a file of the closure, and the symlink it was named by.
    pub(crate) fn touch(&mut self, file: &File) {
        self.files.insert(file.resolved.clone());
        if file.named != file.resolved && self.fs.node(file.named.trim_start_matches('/')).is_some()
        {
            self.files.insert(file.named.clone());
        }
    }

    pub(crate) fn touch_path(&mut self, path: &str) {
        self.files.insert(path.to_string());
    }

    // ---- programs -------------------------------------------------------------------------

    /// Finds a program: a name with `/` is a path (relative to the working directory), any
    /// other name is looked up on `PATH` and must have an `x` bit.
    pub(crate) fn find_program(&self, name: &str, env: &State) -> Result<File, Miss> {
        if name.is_empty() {
            return Err(Miss::NotFound("empty command name".to_string()));
        }
        if name.contains('/') {
            let abs = env.absolute(name).map_err(|why| {
                Miss::Dynamic(format!("relative command `{name}` depends on {why}"))
            })?;
            return image::file(self.fs, &abs)
                .ok_or_else(|| Miss::NotFound(format!("`{name}`: no file at {abs} in the image")));
        }
        let dirs = env.path_dirs().map_err(|why| {
            Miss::Dynamic(format!(
                "command `{name}` is looked up on PATH, which depends on {why}"
            ))
        })?;
        for dir in &dirs {
            let candidate = image::join(dir, name);
            if let Some(file) = image::file(self.fs, &candidate)
                && file.executable()
            {
                return Ok(file);
            }
        }
        Err(Miss::NotFound(format!(
            "`{name}` is not an executable file in any PATH directory ({})",
            dirs.join(":")
        )))
    }

    /// Starts a program: records the hop, then follows it by what it is.
    pub(crate) fn run(&mut self, inv: Inv<'_>) {
        if self.exhausted {
            return;
        }
        let Some(first) = inv.argv.first() else {
            return;
        };
        if inv.depth > self.options.max_depth {
            self.unknown(
                Reason::RecursionLimitReached,
                format!(
                    "depth limit of {} reached before `{}`",
                    self.options.max_depth,
                    texts(&inv.argv).join(" ")
                ),
                inv.from.clone(),
            );
            return;
        }
        if let Some(why) = &first.dynamic {
            let detail = format!("command `{}` depends on {why}", first.text);
            self.unknown(
                Reason::DynamicEnvironmentReference,
                detail,
                inv.from.clone(),
            );
            return;
        }
        let file = match self.find_program(&first.text, inv.env) {
            Ok(file) => file,
            Err(Miss::NotFound(detail)) => {
                self.unknown(Reason::CommandNotFound, detail, inv.from.clone());
                return;
            }
            Err(Miss::Dynamic(detail)) => {
                self.unknown(
                    Reason::DynamicEnvironmentReference,
                    detail,
                    inv.from.clone(),
                );
                return;
            }
        };
        self.touch(&file);
        self.hop(&inv, inv.kind, texts(&inv.argv), &file.resolved);
        // `busybox sh …` runs the applet named by the first argument.
        let offset = usize::from(
            image::basename(&first.text) == "busybox"
                && inv.argv.get(1).is_some_and(|a| a.dynamic.is_none()),
        );
        let argv = &inv.argv[offset..];
        let name = image::basename(&argv[0].text);
        match name {
            "sh" | "bash" | "dash" | "ash" | "zsh" | "ksh" | "mksh" => {
                self.shell(&inv, &file, argv);
            }
            "env" => self.env(&inv, &file, argv),
            "run-parts" => self.run_parts(&inv, &file, argv),
            "java" => self.java(&inv, &file, argv),
            "node" | "nodejs" => self.node(&inv, &file, argv),
            "tini" | "tini-static" | "dumb-init" | "gosu" | "su-exec" | "nohup" | "setsid" => {
                self.wrapper(&inv, &file, argv, name);
            }
            _ if is_python(name) => self.python(&inv, &file, argv),
            _ => match image::read(self.fs, &file.resolved) {
                Some(bytes) if bytes.starts_with(b"#!") => {
                    let line = bytes[2..].split(|b| *b == b'\n').next().unwrap_or_default();
                    let line = String::from_utf8_lossy(line).into_owned();
                    self.shebang(&inv, &file, &line);
                }
                // The interpreter of a `#!` script in a language not followed (perl, ruby):
                // the script is what runs.
                _ => match &inv.script {
                    Some(script) => self.terminal(
                        script.clone(),
                        TerminalKind::Script,
                        texts(&inv.argv),
                        Some(file.resolved.clone()),
                    ),
                    None => self.terminal(
                        file.resolved.clone(),
                        TerminalKind::Executable,
                        texts(&inv.argv),
                        None,
                    ),
                },
            },
        }
    }

    /// A `#!` script: its interpreter runs it.
    fn shebang(&mut self, inv: &Inv<'_>, script: &File, line: &str) {
        let line = line.trim();
        let (interpreter, arg) = match line.split_once([' ', '\t']) {
            Some((interpreter, arg)) => (interpreter, Some(arg.trim())),
            None => (line, None),
        };
        if interpreter.is_empty() {
            self.unknown(
                Reason::CommandNotFound,
                format!("{}: empty `#!` line", script.resolved),
                Location::at(script.resolved.clone(), 1),
            );
            return;
        }
        let interpreter = if interpreter.contains('/') {
            interpreter.to_string()
        } else {
            format!("./{interpreter}")
        };
        let mut argv = vec![Field::lit(interpreter)];
        if let Some(arg) = arg.filter(|a| !a.is_empty()) {
            argv.push(Field::lit(arg));
        }
        argv.push(Field::lit(script.named.clone()));
        argv.extend(inv.argv[1..].iter().cloned());
        let mut next = inv.then(argv, HopKind::Interpreter);
        next.from = Location::at(script.resolved.clone(), 1);
        next.script = Some(script.resolved.clone());
        self.run(next);
    }

    /// The script argument of an interpreter: `None` (after recording why) when it cannot be
    /// followed. The launcher hop is recorded unless this is the interpreter of a `#!` script.
    pub(crate) fn script_arg(
        &mut self,
        inv: &Inv<'_>,
        arg: &Field,
        what: &str,
        missing: Reason,
    ) -> Option<File> {
        if let Some(why) = &arg.dynamic {
            let detail = format!("{what} `{}` depends on {why}", arg.text);
            self.unknown(
                Reason::DynamicEnvironmentReference,
                detail,
                inv.from.clone(),
            );
            return None;
        }
        let abs = match inv.env.absolute(&arg.text) {
            Ok(abs) => abs,
            Err(why) => {
                let detail = format!("relative {what} `{}` depends on {why}", arg.text);
                self.unknown(
                    Reason::DynamicEnvironmentReference,
                    detail,
                    inv.from.clone(),
                );
                return None;
            }
        };
        let Some(file) = image::file(self.fs, &abs) else {
            let detail = format!("{what} {abs} is not in the image");
            self.unknown(missing, detail, inv.from.clone());
            return None;
        };
        self.touch(&file);
        if inv.script.as_deref() != Some(file.resolved.as_str()) {
            self.hop(inv, HopKind::Launcher, texts(&inv.argv), &file.resolved);
        }
        Some(file)
    }

    /// `sh [options] script [args]`, `sh -c 'string' [name args]`, or an interactive shell.
    fn shell(&mut self, inv: &Inv<'_>, shell: &File, argv: &[Field]) {
        let mut i = 1;
        let mut command_mode = false;
        while let Some(arg) = argv.get(i) {
            let t = arg.text.as_str();
            if arg.dynamic.is_some() {
                i += 1;
                continue;
            }
            match t {
                "--" | "-" => {
                    i += 1;
                    break;
                }
                "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file" => i += 2,
                _ if t.starts_with("--") => i += 1,
                _ if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 => {
                    command_mode |= t.starts_with('-') && t.contains('c');
                    // `-eo pipefail`: the option name follows.
                    i += 1 + usize::from(t[1..].contains(['o', 'O']));
                }
                _ => break,
            }
        }
        if command_mode {
            let Some(command) = argv.get(i) else {
                self.interpreter_alone(inv, shell);
                return;
            };
            if let Some(why) = &command.dynamic {
                let detail = format!("`{} -c` string depends on {why}", argv[0].text);
                self.unknown(
                    Reason::DynamicEnvironmentReference,
                    detail,
                    inv.from.clone(),
                );
                return;
            }
            let list = match shell::parse(&command.text) {
                Ok(list) => list,
                Err(error) => {
                    let detail = format!("`{} -c` string: {error}", argv[0].text);
                    self.unknown(Reason::ParseError, detail, inv.from.clone());
                    return;
                }
            };
            let arg0 = argv.get(i + 1).unwrap_or(&argv[0]).text.clone();
            let args = argv.get(i + 2..).unwrap_or_default().to_vec();
            let mut state = inv.env.child(arg0, args);
            let ctx = Ctx {
                origin: Origin::Inline(inv.from.clone()),
                choices: inv.choices.clone(),
                depth: inv.depth + 1,
            };
            let before = self.reported;
            self.walk_list(&list, &mut state, &ctx, true);
            if self.reported == before {
                self.interpreter_alone(inv, shell);
            }
            return;
        }
        let Some(arg) = argv.get(i) else {
            self.interpreter_alone(inv, shell);
            return;
        };
        let Some(script) = self.script_arg(inv, arg, "shell script", Reason::MissingFile) else {
            return;
        };
        let args = argv[i + 1..].to_vec();
        self.walk_script(inv, &script, arg.text.clone(), args, shell);
    }

    fn interpreter_alone(&mut self, inv: &Inv<'_>, interpreter: &File) {
        self.terminal(
            interpreter.resolved.clone(),
            TerminalKind::Executable,
            texts(&inv.argv),
            None,
        );
    }

    /// Walks a shell script run as a new process.
    fn walk_script(
        &mut self,
        inv: &Inv<'_>,
        script: &File,
        arg0: String,
        args: Vec<Field>,
        shell: &File,
    ) {
        let path = script.resolved.clone();
        if self.scripts.contains(&path) {
            // Re-executed while being walked (`exec gosu user "$0" "$@"`): its branches are
            // already followed.
            return;
        }
        let Some(list) = self.parse_file(&path, &inv.from) else {
            return;
        };
        let argv: Vec<String> = std::iter::once(arg0.clone())
            .chain(args.iter().map(|a| a.text.clone()))
            .collect();
        let mut state = inv.env.child(arg0, args);
        let ctx = Ctx {
            origin: Origin::File(Rc::from(path.as_str())),
            choices: inv.choices.clone(),
            depth: inv.depth + 1,
        };
        let before = self.reported;
        self.scripts.push(path.clone());
        self.walk_list(&list, &mut state, &ctx, true);
        self.scripts.pop();
        if self.reported == before {
            self.terminal(
                path,
                TerminalKind::Script,
                argv,
                Some(shell.resolved.clone()),
            );
        }
    }

    /// Reads and parses a shell file; records why not when it cannot.
    fn parse_file(&mut self, path: &str, from: &Location) -> Option<List> {
        let Some(bytes) = image::read(self.fs, path) else {
            self.unknown(
                Reason::MissingFile,
                format!(
                    "{path} is in the image but its content was not captured (not executable \
                     or a script by name, or larger than 256 KiB)"
                ),
                from.clone(),
            );
            return None;
        };
        match shell::parse(&String::from_utf8_lossy(bytes)) {
            Ok(list) => Some(list),
            Err(error) => {
                self.unknown(
                    Reason::ParseError,
                    format!("{path}: {}", error.message),
                    Location::at(path, error.line),
                );
                None
            }
        }
    }

    /// `env [-i] [-u NAME] [-C DIR] [-S 'string'] [NAME=value…] [COMMAND…]`.
    fn env(&mut self, inv: &Inv<'_>, env_file: &File, argv: &[Field]) {
        let mut state = inv.env.clone();
        let mut rest: Vec<Field> = Vec::new();
        let mut i = 1;
        while let Some(arg) = argv.get(i) {
            if arg.dynamic.is_some() {
                break;
            }
            let t = arg.text.as_str();
            match t {
                "-i" | "--ignore-environment" | "-" => state.vars.clear(),
                "-u" | "--unset" => {
                    if let Some(name) = argv.get(i + 1) {
                        state.vars.remove(&name.text);
                    }
                    i += 1;
                }
                "-C" | "--chdir" => {
                    if let Some(dir) = argv.get(i + 1) {
                        state.cwd = match (&dir.dynamic, state.absolute(&dir.text)) {
                            (None, Ok(abs)) => Val::Known(abs),
                            _ => Val::Unknown(format!("is set by `env -C {}`", dir.text)),
                        };
                    }
                    i += 1;
                }
                "--" => {
                    i += 1;
                    break;
                }
                _ if t.starts_with("-S") || t.starts_with("--split-string") => {
                    let string = match t.strip_prefix("--split-string").unwrap_or(&t[2..]) {
                        "" => {
                            i += 1;
                            argv.get(i).map(|a| a.text.as_str()).unwrap_or_default()
                        }
                        s => s.trim_start_matches('='),
                    };
                    rest.extend(string.split_whitespace().map(Field::lit));
                    i += 1;
                    break;
                }
                _ if t.starts_with('-') => {}
                _ => match t.split_once('=') {
                    Some((name, value)) if shell::is_identifier(name) => {
                        state.export(name, Some(Val::Known(value.to_string())));
                    }
                    _ => break,
                },
            }
            i += 1;
        }
        rest.extend(argv.get(i..).unwrap_or_default().iter().cloned());
        if rest.is_empty() {
            self.interpreter_alone(inv, env_file);
            return;
        }
        let next = Inv {
            argv: rest,
            kind: inv.kind,
            from: inv.from.clone(),
            env: &state,
            choices: inv.choices.clone(),
            depth: inv.depth + 1,
            script: inv.script.clone(),
        };
        self.run(next);
    }

    /// Programs that start another and stay out of the way: `tini`, `dumb-init`, `gosu`,
    /// `su-exec`, `nohup`, `setsid`.
    fn wrapper(&mut self, inv: &Inv<'_>, wrapper: &File, argv: &[Field], name: &str) {
        let mut i = 1;
        if matches!(name, "gosu" | "su-exec") {
            // The user spec.
            i = 2;
        } else {
            while let Some(arg) = argv.get(i) {
                match arg.text.as_str() {
                    "--" => {
                        i += 1;
                        break;
                    }
                    "-p" | "-e" | "-r" | "--rewrite" if name != "setsid" => i += 2,
                    t if t.starts_with('-') && arg.dynamic.is_none() => i += 1,
                    _ => break,
                }
            }
        }
        let rest = argv.get(i..).unwrap_or_default().to_vec();
        if rest.is_empty() {
            self.interpreter_alone(inv, wrapper);
            return;
        }
        self.run(inv.then(rest, HopKind::Launcher));
    }

    /// `run-parts [options] DIR`: every executable entry whose name run-parts accepts
    /// (`[A-Za-z0-9_-]+`, so `10-setup.sh` is skipped, as run-parts itself does), sorted.
    fn run_parts(&mut self, inv: &Inv<'_>, run_parts: &File, argv: &[Field]) {
        let mut extra = Vec::new();
        let mut i = 1;
        while let Some(arg) = argv.get(i) {
            let t = arg.text.as_str();
            match t {
                "--test" | "--list" => return,
                "-a" | "--arg" | "-u" | "--umask" => {
                    if t.starts_with("-a") || t == "--arg" {
                        extra.extend(argv.get(i + 1).cloned());
                    }
                    i += 2;
                }
                "--" => {
                    i += 1;
                    break;
                }
                _ if t.starts_with("--arg=") => {
                    extra.push(Field::lit(&t[6..]));
                    i += 1;
                }
                _ if t.starts_with('-') && arg.dynamic.is_none() => i += 1,
                _ => break,
            }
        }
        let Some(dir) = argv.get(i) else {
            self.interpreter_alone(inv, run_parts);
            return;
        };
        if let Some(why) = &dir.dynamic {
            let detail = format!("run-parts directory `{}` depends on {why}", dir.text);
            self.unknown(
                Reason::DynamicEnvironmentReference,
                detail,
                inv.from.clone(),
            );
            return;
        }
        let abs = match inv.env.absolute(&dir.text) {
            Ok(abs) => abs,
            Err(why) => {
                let detail = format!("run-parts directory `{}` depends on {why}", dir.text);
                self.unknown(
                    Reason::DynamicEnvironmentReference,
                    detail,
                    inv.from.clone(),
                );
                return;
            }
        };
        if image::dir(self.fs, &abs).is_none() {
            let detail = format!("run-parts directory {abs} is not in the image");
            self.unknown(Reason::MissingFile, detail, inv.from.clone());
            return;
        }
        if !self.options.follow_run_parts {
            return;
        }
        let entries: Vec<String> = image::children(self.fs, &abs)
            .into_iter()
            .filter(|name| {
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
            .map(|name| image::join(&abs, &name))
            .filter(|path| image::file(self.fs, path).is_some_and(|f| f.executable()))
            .collect();
        if entries.is_empty() {
            let detail = format!(
                "run-parts {abs}: no executable entries (run-parts only runs names made of \
                 [A-Za-z0-9_-])"
            );
            self.unknown(Reason::RunPartsEmpty, detail, inv.from.clone());
            return;
        }
        for entry in entries {
            let mut argv = vec![Field::lit(entry)];
            argv.extend(extra.iter().cloned());
            self.run(inv.then(argv, HopKind::RunParts));
        }
    }

    // ---- shell ----------------------------------------------------------------------------

    fn walk_list(&mut self, list: &List, state: &mut State, ctx: &Ctx, tail: bool) -> Flow {
        for (i, and_or) in list.iter().enumerate() {
            let flow = self.walk_and_or(and_or, state, ctx, tail && i + 1 == list.len());
            if flow != Flow::Next {
                return flow;
            }
        }
        Flow::Next
    }

    fn walk_and_or(&mut self, and_or: &AndOr, state: &mut State, ctx: &Ctx, tail: bool) -> Flow {
        if and_or.background {
            // Runs alongside the script: followed like the last command, in a subshell.
            let mut inner = state.clone();
            self.walk_pipeline(&and_or.first, &mut inner, ctx, true);
            for pipeline in &and_or.rest {
                self.walk_pipeline(pipeline, &mut inner, ctx, true);
            }
            return Flow::Next;
        }
        let flow = self.walk_pipeline(&and_or.first, state, ctx, tail && and_or.rest.is_empty());
        if and_or.rest.is_empty() || flow != Flow::Next {
            return flow;
        }
        // What follows `&&`/`||` may not run.
        let mut inner = state.clone();
        let mut last = Flow::Next;
        for (i, pipeline) in and_or.rest.iter().enumerate() {
            let tail = tail && i + 1 == and_or.rest.len();
            last = self.walk_pipeline(pipeline, &mut inner, ctx, tail);
            if last != Flow::Next {
                break;
            }
        }
        self.join(state, vec![(inner, last)], true)
    }

    fn walk_pipeline(
        &mut self,
        pipeline: &shell::Pipeline,
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
    ) -> Flow {
        match pipeline.0.as_slice() {
            [command] => self.walk_command(command, state, ctx, tail),
            commands => {
                // Each runs in a subshell.
                for (i, command) in commands.iter().enumerate() {
                    let mut inner = state.clone();
                    self.walk_command(command, &mut inner, ctx, tail && i + 1 == commands.len());
                }
                Flow::Next
            }
        }
    }

    /// Merges the states of the branches that continue (and the state before them when no
    /// branch may be taken) into `state`.
    fn join(&mut self, state: &mut State, outcomes: Vec<(State, Flow)>, fallthrough: bool) -> Flow {
        let all_return = outcomes.iter().all(|(_, f)| *f == Flow::Return);
        let mut continuing: Vec<State> = Vec::new();
        if fallthrough {
            continuing.push(state.clone());
        }
        continuing.extend(
            outcomes
                .into_iter()
                .filter(|(_, flow)| *flow == Flow::Next)
                .map(|(s, _)| s),
        );
        if continuing.is_empty() {
            return if all_return { Flow::Return } else { Flow::Exit };
        }
        *state = merge(continuing);
        Flow::Next
    }

    fn walk_command(
        &mut self,
        command: &Command,
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
    ) -> Flow {
        if self.exhausted {
            return Flow::Exit;
        }
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.exhausted = true;
            let line = command_line(command);
            self.unknown(
                Reason::RecursionLimitReached,
                format!("stopped after walking {MAX_STEPS} commands"),
                ctx.origin.at(line),
            );
            return Flow::Exit;
        }
        match command {
            Command::Simple {
                line,
                assignments,
                words,
            } => self.walk_simple(*line, assignments, words, state, ctx, tail),
            Command::Function { name, body, .. } => {
                let function = Function {
                    body: body.clone(),
                    origin: ctx.origin.clone(),
                };
                state.functions.insert(name.clone(), Rc::new(function));
                Flow::Next
            }
            Command::Test { .. } => Flow::Next,
            compound => {
                self.nesting += 1;
                let flow = if self.nesting > MAX_WALK_NESTING {
                    self.unknown(
                        Reason::RecursionLimitReached,
                        format!("compound commands nested deeper than {MAX_WALK_NESTING}"),
                        ctx.origin.at(command_line(compound)),
                    );
                    Flow::Next
                } else {
                    self.walk_compound(compound, state, ctx, tail)
                };
                self.nesting -= 1;
                flow
            }
        }
    }

    fn walk_compound(
        &mut self,
        command: &Command,
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
    ) -> Flow {
        match command {
            Command::Group {
                body,
                subshell: true,
                ..
            } => {
                let mut inner = state.clone();
                self.walk_list(body, &mut inner, ctx, tail);
                Flow::Next
            }
            Command::Group { body, .. } => self.walk_list(body, state, ctx, tail),
            Command::If {
                branches,
                otherwise,
                ..
            } => {
                let mut outcomes = Vec::new();
                for (k, branch) in branches.iter().enumerate() {
                    self.walk_list(&branch.condition, state, ctx, false);
                    let label = if k == 0 { "then" } else { "elif" };
                    let inner_ctx = ctx.choose(ctx.origin.at(branch.line), label.to_string());
                    let mut inner = state.clone();
                    let flow = self.walk_list(&branch.body, &mut inner, &inner_ctx, tail);
                    outcomes.push((inner, flow));
                }
                if let Some((line, body)) = otherwise {
                    let inner_ctx = ctx.choose(ctx.origin.at(*line), "else".to_string());
                    let mut inner = state.clone();
                    let flow = self.walk_list(body, &mut inner, &inner_ctx, tail);
                    outcomes.push((inner, flow));
                }
                self.join(state, outcomes, otherwise.is_none())
            }
            Command::Case { arms, .. } => {
                let mut outcomes = Vec::new();
                let mut catch_all = false;
                for arm in arms {
                    catch_all |= arm.patterns.iter().any(|p| {
                        matches!(p.parts.as_slice(), [Part::Lit { text, quoted: false }] if text == "*")
                    });
                    let pattern: Vec<String> = arm.patterns.iter().map(Word::display).collect();
                    let label = format!("case {})", pattern.join("|"));
                    let inner_ctx = ctx.choose(ctx.origin.at(arm.line), label);
                    let mut inner = state.clone();
                    let flow = self.walk_list(&arm.body, &mut inner, &inner_ctx, tail);
                    outcomes.push((inner, flow));
                }
                self.join(state, outcomes, !catch_all)
            }
            Command::Loop {
                condition, body, ..
            } => {
                let mut inner = state.clone();
                self.walk_list(condition, &mut inner, ctx, false);
                let flow = self.walk_list(body, &mut inner, ctx, tail);
                self.join(state, vec![(inner, flow)], true)
            }
            Command::For {
                line,
                var,
                words,
                body,
            } => {
                let location = ctx.origin.at(*line);
                let values = self.loop_values(words.as_deref(), state, &location);
                let mut outcomes = Vec::new();
                for value in values {
                    let mut inner = state.clone();
                    inner.set(var, value);
                    let flow = self.walk_list(body, &mut inner, ctx, tail);
                    outcomes.push((inner, flow));
                }
                self.join(state, outcomes, true)
            }
            Command::Simple { .. } | Command::Function { .. } | Command::Test { .. } => {
                unreachable!("walk_command handles simple commands, functions and tests")
            }
        }
    }

    /// The values a `for` loop variable takes: the words (globs expanded in the image), or one
    /// unknown value when they are not known.
    fn loop_values(
        &mut self,
        words: Option<&[Word]>,
        state: &mut State,
        at: &Location,
    ) -> Vec<Val> {
        let fields: Vec<Field> = match words {
            Some(words) => self
                .expand_words(words, state)
                .into_iter()
                .flatten()
                .collect(),
            None => match &state.args {
                Args::Known(lists) => lists.iter().flatten().cloned().collect(),
                Args::Unknown(why) => {
                    return vec![Val::Unknown(format!("iterates `$@`, which {why}"))];
                }
            },
        };
        let mut values = Vec::new();
        for field in fields {
            if let Some(why) = field.dynamic {
                return vec![Val::Unknown(format!(
                    "iterates `{}`, which depends on {why}",
                    field.text
                ))];
            }
            if field.glob {
                let matches = self.glob(&field.text, state);
                if matches.is_empty() {
                    values.push(field.text);
                } else {
                    values.extend(matches);
                }
            } else {
                values.push(field.text);
            }
        }
        if values.len() > MAX_LOOP_VALUES {
            self.unknown(
                Reason::DynamicEnvironmentReference,
                format!(
                    "for loop over {} values: only the first {MAX_LOOP_VALUES} are followed",
                    values.len()
                ),
                at.clone(),
            );
            values.truncate(MAX_LOOP_VALUES);
        }
        values.into_iter().map(Val::Known).collect()
    }

    /// Expands a glob whose wildcards are in the last component, in the image.
    fn glob(&self, pattern: &str, state: &State) -> Vec<String> {
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

    fn walk_simple(
        &mut self,
        line: u32,
        assignments: &[(String, Word)],
        words: &[Word],
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
    ) -> Flow {
        let location = ctx.origin.at(line);
        if let Some(first) = words.first().and_then(Word::literal)
            && DECLARATIONS.contains(&first.as_str())
        {
            self.declare(&first, &words[1..], state, &location);
            return Flow::Next;
        }
        if words.is_empty() {
            for (name, value) in assignments {
                let value = self.assigned(value, state, &location);
                state.set(name, value);
            }
            return Flow::Next;
        }
        let mut alternatives = self.expand_words(words, state);
        if std::mem::take(&mut self.truncated) {
            self.unknown(
                Reason::DynamicEnvironmentReference,
                format!(
                    "more than {MAX_ALTERNATIVES} possible argument lists; only the first \
                     {MAX_ALTERNATIVES} are followed"
                ),
                location.clone(),
            );
        }
        let env = if assignments.is_empty() {
            None
        } else {
            let mut env = state.clone();
            for (name, value) in assignments {
                let value = self.assigned(value, state, &location);
                env.export(name, Some(value));
            }
            Some(env)
        };
        if alternatives.len() == 1 {
            let argv = alternatives.pop().unwrap_or_default();
            return self.command(argv, env.as_ref(), state, ctx, tail, &location);
        }
        let count = alternatives.len();
        let mut outcomes = Vec::new();
        for (k, argv) in alternatives.into_iter().enumerate() {
            let label = format!("argv alternative {} of {count}", k + 1);
            let inner_ctx = ctx.choose(location.clone(), label);
            let mut inner = state.clone();
            let flow = self.command(argv, env.as_ref(), &mut inner, &inner_ctx, tail, &location);
            outcomes.push((inner, flow));
        }
        self.join(state, outcomes, false)
    }

    /// `export`, `readonly`, `local`, `declare`, `typeset`: assignments without field
    /// splitting.
    fn declare(&mut self, builtin: &str, words: &[Word], state: &mut State, at: &Location) {
        let mut export = builtin == "export";
        for word in words {
            if let Some(flags) = word.literal().filter(|w| w.starts_with('-')) {
                export |= flags.contains('x');
                continue;
            }
            let assignment = match word.parts.first() {
                Some(Part::Lit { text, .. }) => text.split_once('=').map(|(name, first)| {
                    let mut value = Word::default();
                    if !first.is_empty() {
                        value.parts.push(Part::Lit {
                            text: first.to_string(),
                            quoted: true,
                        });
                    }
                    value.parts.extend(word.parts[1..].iter().cloned());
                    (name.to_string(), value)
                }),
                _ => None,
            };
            match assignment {
                Some((name, value)) if shell::is_identifier(&name) => {
                    let value = self.assigned(&value, state, at);
                    if export {
                        state.export(&name, Some(value));
                    } else {
                        state.set(&name, value);
                    }
                }
                Some(_) => {}
                None => {
                    if let Some(name) = word.literal().filter(|n| shell::is_identifier(n)) {
                        if export {
                            state.export(&name, None);
                        } else if !state.vars.contains_key(&name) {
                            state.set(&name, Val::Known(String::new()));
                        }
                    }
                }
            }
        }
    }

    /// The value of an assignment.
    fn assigned(&mut self, word: &Word, state: &mut State, at: &Location) -> Val {
        match self.expand_string(word, state) {
            Ok(value) => Val::Known(value),
            Err(why) => Val::Unknown(format!(
                "is assigned `{}` at {at}, which depends on {why}",
                word.display()
            )),
        }
    }

    /// Runs one expanded simple command.
    fn command(
        &mut self,
        argv: Vec<Field>,
        env: Option<&State>,
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
        at: &Location,
    ) -> Flow {
        let Some(first) = argv.first() else {
            return Flow::Next;
        };
        if let Some(why) = &first.dynamic {
            let detail = format!("command `{}` depends on {why}", first.text);
            self.unknown(Reason::DynamicEnvironmentReference, detail, at.clone());
            return Flow::Next;
        }
        let name = first.text.clone();
        let args = &argv[1..];
        match name.as_str() {
            "exec" => {
                let mut i = 0;
                while let Some(arg) = args.get(i) {
                    match arg.text.as_str() {
                        "-a" => i += 2,
                        "-c" | "-l" | "-cl" | "-lc" => i += 1,
                        "--" => {
                            i += 1;
                            break;
                        }
                        _ => break,
                    }
                }
                let rest = args.get(i..).unwrap_or_default().to_vec();
                if rest.is_empty() {
                    // Only redirections.
                    return Flow::Next;
                }
                let inv = self.invocation(rest, HopKind::Exec, at, env.unwrap_or(state), ctx);
                self.run(inv);
                return Flow::Exit;
            }
            "." | "source" => return self.source(args, state, ctx, tail, at),
            "exit" => return Flow::Exit,
            "return" => return Flow::Return,
            "eval" => return self.eval(args, state, ctx, tail, at),
            "set" => {
                let start = args
                    .iter()
                    .position(|a| a.text == "--")
                    .map(|p| p + 1)
                    .or_else(|| {
                        args.first()
                            .filter(|a| !a.text.starts_with(['-', '+']))
                            .map(|_| 0)
                    });
                if let Some(start) = start {
                    state.args = Args::Known(vec![args[start..].to_vec()]);
                }
                return Flow::Next;
            }
            "shift" => {
                let n = args
                    .first()
                    .map_or(Some(1), |a| a.text.parse::<usize>().ok());
                state.args = match (n, &state.args) {
                    (Some(n), Args::Known(lists)) => Args::Known(
                        lists
                            .iter()
                            .map(|l| l.get(n..).unwrap_or_default().to_vec())
                            .collect(),
                    ),
                    (None, _) => Args::Unknown(format!("is shifted by an unknown count at {at}")),
                    (_, unknown) => unknown.clone(),
                };
                return Flow::Next;
            }
            "unset" => {
                let functions = args.iter().any(|a| a.text == "-f");
                for arg in args.iter().filter(|a| !a.text.starts_with('-')) {
                    if functions {
                        state.functions.remove(&arg.text);
                    } else {
                        state.vars.remove(&arg.text);
                    }
                }
                return Flow::Next;
            }
            _ => {}
        }
        if let Some(function) = state.functions.get(&name).cloned() {
            return self.call(&function, &name, &argv, state, ctx, tail, at);
        }
        match name.as_str() {
            "cd" | "pushd" => {
                let target = args
                    .iter()
                    .find(|a| !a.text.starts_with('-') || a.text == "-");
                state.cwd = match target {
                    None => match state.var("HOME") {
                        Some(home) => Val::Known(image::join("/", home)),
                        None => Val::Unknown(format!("is changed to `$HOME` at {at}")),
                    },
                    Some(dir) if dir.dynamic.is_some() || dir.text == "-" => {
                        Val::Unknown(format!("is changed to `{}` at {at}", dir.text))
                    }
                    Some(dir) => match state.absolute(&dir.text) {
                        Ok(abs) => Val::Known(abs),
                        Err(why) => Val::Unknown(format!("depends on {why}")),
                    },
                };
            }
            "popd" => state.cwd = Val::Unknown(format!("is changed by `popd` at {at}")),
            "read" | "getopts" | "mapfile" | "readarray" | "printf" => {
                self.read_vars(&name, args, state, at);
            }
            "command" => {
                if args
                    .first()
                    .is_some_and(|a| a.text == "-v" || a.text == "-V")
                {
                    return Flow::Next;
                }
                let skip = args
                    .iter()
                    .take_while(|a| a.text == "-p" || a.text == "--")
                    .count();
                let rest = args[skip..].to_vec();
                return self.program(rest, env, state, ctx, tail, at);
            }
            n if BUILTINS.contains(&n) => {}
            _ => return self.program(argv, env, state, ctx, tail, at),
        }
        Flow::Next
    }

    fn invocation<'s>(
        &self,
        argv: Vec<Field>,
        kind: HopKind,
        at: &Location,
        env: &'s State,
        ctx: &Ctx,
    ) -> Inv<'s> {
        Inv {
            argv,
            kind,
            from: at.clone(),
            env,
            choices: ctx.choices.clone(),
            depth: ctx.depth + 1,
            script: None,
        }
    }

    /// A program invoked without `exec`: followed when it decides what runs (the last command
    /// of a script, a background command, `run-parts`); commands that run and return
    /// (`chown`, `mkdir`) are not.
    fn program(
        &mut self,
        argv: Vec<Field>,
        env: Option<&State>,
        state: &State,
        ctx: &Ctx,
        tail: bool,
        at: &Location,
    ) -> Flow {
        let Some(first) = argv.first() else {
            return Flow::Next;
        };
        if let Some(why) = &first.dynamic {
            let detail = format!("command `{}` depends on {why}", first.text);
            self.unknown(Reason::DynamicEnvironmentReference, detail, at.clone());
            return Flow::Next;
        }
        let run_parts = image::basename(&first.text) == "run-parts"
            || (image::basename(&first.text) == "busybox"
                && argv.get(1).is_some_and(|a| a.text == "run-parts"));
        if tail || run_parts {
            let inv = self.invocation(argv, HopKind::Call, at, env.unwrap_or(state), ctx);
            self.run(inv);
        }
        Flow::Next
    }

    /// Variables set at run time: `read`, `getopts`, `mapfile`, `printf -v`.
    fn read_vars(&mut self, builtin: &str, args: &[Field], state: &mut State, at: &Location) {
        let why = format!("is set by `{builtin}` at {at}");
        let mut names = Vec::new();
        let mut i = 0;
        while let Some(arg) = args.get(i) {
            let t = arg.text.as_str();
            match builtin {
                "printf" => {
                    if t == "-v" {
                        names.extend(args.get(i + 1).map(|a| a.text.clone()));
                    }
                    break;
                }
                "getopts" => {
                    names.extend(args.get(1).map(|a| a.text.clone()));
                    break;
                }
                _ => {
                    if matches!(
                        t,
                        "-p" | "-d" | "-n" | "-N" | "-t" | "-u" | "-a" | "-C" | "-c"
                    ) {
                        if t == "-a" {
                            names.extend(args.get(i + 1).map(|a| a.text.clone()));
                        }
                        i += 1;
                    } else if !t.starts_with('-') {
                        names.push(t.to_string());
                    }
                }
            }
            i += 1;
        }
        if matches!(builtin, "mapfile" | "readarray") && names.is_empty() {
            names.push("MAPFILE".to_string());
        }
        if builtin == "read" && names.is_empty() {
            names.push("REPLY".to_string());
        }
        for name in names.into_iter().filter(|n| shell::is_identifier(n)) {
            state.set(&name, Val::Unknown(why.clone()));
        }
    }

    /// A call of a shell function: its body is walked with the call's arguments.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        function: &Rc<Function>,
        name: &str,
        argv: &[Field],
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
        at: &Location,
    ) -> Flow {
        if self.calls.iter().any(|f| Rc::ptr_eq(f, function)) {
            self.unknown(
                Reason::RecursionLimitReached,
                format!("function `{name}` calls itself"),
                at.clone(),
            );
            return Flow::Next;
        }
        if ctx.depth + 1 > self.options.max_depth {
            self.unknown(
                Reason::RecursionLimitReached,
                format!(
                    "depth limit of {} reached calling function `{name}`",
                    self.options.max_depth
                ),
                at.clone(),
            );
            return Flow::Next;
        }
        let saved = std::mem::replace(&mut state.args, Args::Known(vec![argv[1..].to_vec()]));
        let inner_ctx = Ctx {
            origin: function.origin.clone(),
            choices: ctx.choices.clone(),
            depth: ctx.depth + 1,
        };
        self.calls.push(function.clone());
        let flow = self.walk_command(&function.body, state, &inner_ctx, tail);
        self.calls.pop();
        state.args = saved;
        if flow == Flow::Exit {
            Flow::Exit
        } else {
            Flow::Next
        }
    }

    /// `. FILE` / `source FILE`: the file is read by the current shell.
    fn source(
        &mut self,
        args: &[Field],
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
        at: &Location,
    ) -> Flow {
        let Some(target) = args.first() else {
            return Flow::Next;
        };
        if let Some(why) = &target.dynamic {
            let detail = format!("sourced file `{}` depends on {why}", target.text);
            self.unknown(Reason::DynamicEnvironmentReference, detail, at.clone());
            return Flow::Next;
        }
        if ctx.depth + 1 > self.options.max_depth {
            let detail = format!(
                "depth limit of {} reached sourcing `{}`",
                self.options.max_depth, target.text
            );
            self.unknown(Reason::RecursionLimitReached, detail, at.clone());
            return Flow::Next;
        }
        let file = match self.find_sourced(&target.text, state) {
            Ok(file) => file,
            Err(Miss::NotFound(detail)) => {
                self.unknown(Reason::MissingFile, detail, at.clone());
                return Flow::Next;
            }
            Err(Miss::Dynamic(detail)) => {
                self.unknown(Reason::DynamicEnvironmentReference, detail, at.clone());
                return Flow::Next;
            }
        };
        if self.scripts.contains(&file.resolved) {
            let detail = format!(
                "{} is sourced while it is already being read (a cycle)",
                file.resolved
            );
            self.unknown(Reason::RecursionLimitReached, detail, at.clone());
            return Flow::Next;
        }
        self.touch(&file);
        let command: Vec<String> = std::iter::once(".".to_string())
            .chain(texts(args))
            .collect();
        self.record_hop(Hop {
            from: at.clone(),
            kind: HopKind::Source,
            command,
            path: file.resolved.clone(),
            choices: ctx.choices.clone(),
        });
        let Some(list) = self.parse_file(&file.resolved, at) else {
            return Flow::Next;
        };
        let inner_ctx = Ctx {
            origin: Origin::File(Rc::from(file.resolved.as_str())),
            choices: ctx.choices.clone(),
            depth: ctx.depth + 1,
        };
        self.scripts.push(file.resolved.clone());
        let flow = self.walk_list(&list, state, &inner_ctx, tail);
        self.scripts.pop();
        if flow == Flow::Exit {
            Flow::Exit
        } else {
            Flow::Next
        }
    }

    /// A sourced file: a path (relative to the working directory), or a name looked up on
    /// `PATH` and then in the working directory.
    fn find_sourced(&self, name: &str, state: &State) -> Result<File, Miss> {
        let dynamic = |why| Miss::Dynamic(format!("sourced file `{name}` depends on {why}"));
        if name.contains('/') {
            let abs = state.absolute(name).map_err(dynamic)?;
            return image::file(self.fs, &abs)
                .ok_or_else(|| Miss::NotFound(format!("sourced file {abs} is not in the image")));
        }
        let mut dirs = state.path_dirs().unwrap_or_default();
        dirs.push(state.cwd().map_err(dynamic)?.to_string());
        dirs.iter()
            .find_map(|dir| image::file(self.fs, &image::join(dir, name)))
            .ok_or_else(|| {
                Miss::NotFound(format!(
                    "sourced file `{name}` is not in any PATH directory or the working \
                     directory ({})",
                    dirs.join(":")
                ))
            })
    }

    /// `eval` of literal words is walked as a script; anything else is dynamic.
    fn eval(
        &mut self,
        args: &[Field],
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
        at: &Location,
    ) -> Flow {
        if let Some(arg) = args.iter().find(|a| a.dynamic.is_some()) {
            let detail = format!(
                "`eval` of `{}` depends on {}",
                arg.text,
                arg.dynamic.as_deref().unwrap_or_default()
            );
            self.unknown(Reason::DynamicEnvironmentReference, detail, at.clone());
            return Flow::Next;
        }
        let source = texts(args).join(" ");
        match shell::parse(&source) {
            Ok(list) => {
                let inner_ctx = Ctx {
                    origin: Origin::Inline(at.clone()),
                    choices: ctx.choices.clone(),
                    depth: ctx.depth,
                };
                self.walk_list(&list, state, &inner_ctx, tail)
            }
            Err(error) => {
                let detail = format!("`eval` string: {error}");
                self.unknown(Reason::ParseError, detail, at.clone());
                Flow::Next
            }
        }
    }

    // ---- expansion ------------------------------------------------------------------------

    fn expand_words(&mut self, words: &[Word], state: &mut State) -> Vec<Vec<Field>> {
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
            if next.len() > MAX_ALTERNATIVES {
                next.truncate(MAX_ALTERNATIVES);
                self.truncated = true;
            }
            alternatives = next;
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
                    if next.len() > MAX_ALTERNATIVES {
                        next.truncate(MAX_ALTERNATIVES);
                        self.truncated = true;
                    }
                    alternatives = next;
                }
            }
        }
        alternatives.into_iter().map(Fields::finish).collect()
    }

    /// A word expanded to one string (assignments, `${X:-word}`), or why it is not known.
    fn expand_string(&mut self, word: &Word, state: &mut State) -> Result<String, String> {
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
}

fn command_line(command: &Command) -> u32 {
    match command {
        Command::Simple { line, .. }
        | Command::Group { line, .. }
        | Command::If { line, .. }
        | Command::Case { line, .. }
        | Command::Loop { line, .. }
        | Command::For { line, .. }
        | Command::Function { line, .. }
        | Command::Test { line } => *line,
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

/// `python`, `python3`, `python3.11`, `python2.7`.
fn is_python(name: &str) -> bool {
    name.strip_prefix("python")
        .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}
