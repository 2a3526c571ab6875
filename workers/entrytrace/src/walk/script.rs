//! Shell code entering the walk: a shell's command line (`sh script`, `sh -c 'string'`), a
//! script file run as a new process, `.`/`source` and `eval` in the current shell.

use super::Tracer;
use super::expand::{Field, texts};
use super::flow::{Ctx, Flow, Origin};
use super::program::{Inv, Miss};
use super::state::State;
use crate::image::{self, File};
use crate::model::{Hop, HopKind, Location, Reason, TerminalKind};
use crate::shell::{self, List};
use std::rc::Rc;

impl Tracer<'_> {
    /// `sh [options] script [args]`, `sh -c 'string' [name args]`, or an interactive shell.
    pub(super) fn shell(&mut self, inv: &Inv<'_>, shell: &File, argv: &[Field]) {
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

    /// `. FILE` / `source FILE`: the file is read by the current shell.
    pub(super) fn source(
        &mut self,
        args: &[Field],
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
        at: &Location,
    ) -> Flow {
        let Some(target) = self.first_known("sourced file", args, at) else {
            return Flow::Next;
        };
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
            Err(miss) => {
                self.missed(miss, Reason::MissingFile, at);
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
    pub(super) fn eval(
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
}
