//! Starting a program: its name resolved to a file in the image (`PATH`, relative paths,
//! symlinks), then followed by what it is: a shell, a wrapper, a language launcher, a `#!`
//! script's interpreter, or a terminal executable.

use super::Tracer;
use super::expand::{Field, texts};
use super::state::State;
use crate::image::{self, File};
use crate::model::{Choice, HopKind, Location, Reason, TerminalKind};

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

impl Tracer<'_> {
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
        if self.dynamic("command", first, &inv.from) {
            return;
        }
        let file = match self.find_program(&first.text, inv.env) {
            Ok(file) => file,
            Err(miss) => {
                self.missed(miss, Reason::CommandNotFound, &inv.from);
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
        let abs = self.path_arg(inv, arg, what)?;
        let Some(file) = image::file(self.fs, &abs) else {
            let detail = format!("{what} {abs} is not in the image");
            self.unknown(missing, detail, inv.from.clone());
            return None;
        };
        self.launched(inv, &file);
        Some(file)
    }

    /// The absolute path a launcher's argument names: `None` (after recording why) when it
    /// depends on a run-time value or on an unknown working directory.
    pub(crate) fn path_arg(&mut self, inv: &Inv<'_>, arg: &Field, what: &str) -> Option<String> {
        if self.dynamic(what, arg, &inv.from) {
            return None;
        }
        match inv.env.absolute(&arg.text) {
            Ok(abs) => Some(abs),
            Err(why) => {
                let detail = format!("relative {what} `{}` depends on {why}", arg.text);
                self.unknown(
                    Reason::DynamicEnvironmentReference,
                    detail,
                    inv.from.clone(),
                );
                None
            }
        }
    }

    /// Records the file a launcher runs, and the launcher hop to it unless this is the
    /// interpreter of that `#!` script (the script is already hopped to).
    pub(crate) fn launched(&mut self, inv: &Inv<'_>, file: &File) {
        self.touch(file);
        if inv.script.as_deref() != Some(file.resolved.as_str()) {
            self.hop(inv, HopKind::Launcher, texts(&inv.argv), &file.resolved);
        }
    }

    /// Records why a program or a sourced file was not found: `not_found` when it is not in
    /// the image, a dynamic reference when where to look depends on a run-time value.
    pub(super) fn missed(&mut self, miss: Miss, not_found: Reason, from: &Location) {
        match miss {
            Miss::NotFound(detail) => self.unknown(not_found, detail, from.clone()),
            Miss::Dynamic(detail) => {
                self.unknown(Reason::DynamicEnvironmentReference, detail, from.clone());
            }
        }
    }

    /// The interpreter or wrapper itself is what runs (no script, no program to hand over to).
    pub(crate) fn interpreter_alone(&mut self, inv: &Inv<'_>, interpreter: &File) {
        self.terminal(
            interpreter.resolved.clone(),
            TerminalKind::Executable,
            texts(&inv.argv),
            None,
        );
    }
}

/// `python`, `python3`, `python3.11`, `python2.7`.
fn is_python(name: &str) -> bool {
    name.strip_prefix("python")
        .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}
