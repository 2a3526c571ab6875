//! Simple commands: assignments, declarations, the builtins that change what the shell knows
//! (`set --`, `shift`, `cd`, `read`, …), `exec`, function calls, and the programs a script
//! hands over to.

use super::expand::Field;
use super::flow::{Ctx, Flow};
use super::program::Inv;
use super::state::{Args, Function, State, Val};
use super::{MAX_ALTERNATIVES, Tracer};
use crate::image;
use crate::model::{HopKind, Location, Reason};
use crate::shell::{self, Part, Word};
use std::rc::Rc;

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

impl Tracer<'_> {
    pub(super) fn walk_simple(
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
        let Some(first) = self.first_known("command", &argv, at) else {
            return Flow::Next;
        };
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
        let Some(first) = self.first_known("command", &argv, at) else {
            return Flow::Next;
        };
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
}
