//! What a shell knows while walking a script: variables, the positional parameters, the
//! working directory and functions, and how the states of branches merge.

use super::MAX_ALTERNATIVES;
use super::expand::Field;
use super::flow::Origin;
use crate::image;
use crate::model::Config;
use crate::shell::Command;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// A variable's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Val {
    Known(String),
    /// Why it is not known, as a clause: "is assigned from `$(id -u)` at /x.sh:3".
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Var {
    pub(super) val: Val,
    pub(super) exported: bool,
}

/// The positional parameters: the possible argument lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Args {
    Known(Vec<Vec<Field>>),
    Unknown(String),
}

#[derive(Debug)]
pub(super) struct Function {
    pub(super) body: Rc<Command>,
    pub(super) origin: Origin,
}

/// What a shell knows while walking a script.
#[derive(Clone, Debug)]
pub(crate) struct State {
    pub(super) vars: BTreeMap<String, Var>,
    pub(super) arg0: String,
    pub(super) args: Args,
    pub(super) cwd: Val,
    pub(super) functions: BTreeMap<String, Rc<Function>>,
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
    pub(super) fn child(&self, arg0: String, args: Vec<Field>) -> State {
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

    pub(super) fn set(&mut self, name: &str, val: Val) {
        let exported = self.vars.get(name).is_some_and(|v| v.exported);
        self.vars.insert(name.to_string(), Var { val, exported });
    }

    pub(super) fn export(&mut self, name: &str, val: Option<Val>) {
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
    pub(super) fn path_dirs(&self) -> Result<Vec<String>, String> {
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
pub(super) fn merge(states: Vec<State>) -> State {
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
