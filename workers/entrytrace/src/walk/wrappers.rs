//! Programs that start the program their arguments name: `env`, the init and user-switching
//! wrappers (`tini`, `dumb-init`, `gosu`, `su-exec`, `nohup`, `setsid`) and `run-parts`.

use super::Tracer;
use super::expand::Field;
use super::program::Inv;
use super::state::Val;
use crate::image::{self, File};
use crate::model::{HopKind, Reason};
use crate::shell;

impl Tracer<'_> {
    /// `env [-i] [-u NAME] [-C DIR] [-S 'string'] [NAME=value…] [COMMAND…]`.
    pub(super) fn env(&mut self, inv: &Inv<'_>, env_file: &File, argv: &[Field]) {
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
    pub(super) fn wrapper(&mut self, inv: &Inv<'_>, wrapper: &File, argv: &[Field], name: &str) {
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
    pub(super) fn run_parts(&mut self, inv: &Inv<'_>, run_parts: &File, argv: &[Field]) {
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
        if self.dynamic("run-parts directory", dir, &inv.from) {
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
}
