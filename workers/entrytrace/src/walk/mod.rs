//! The walk: from the image config's argv through scripts, wrappers and launchers to the
//! programs that end up running. Every decision is recorded as a hop, a terminal or an
//! unknown; nothing from the image is executed.
//!
//! This module owns the [`Tracer`] of one trace (what it has recorded, the budget that bounds
//! hostile scripts, the scripts and functions being walked); its jobs are split by file:
//! [`record`] (hops, terminals, unknowns, files), [`program`] (a program name to a file and
//! what runs it), [`wrappers`] (`env`, `tini`/`gosu`…, `run-parts`), [`script`] (shell code
//! entering the walk: `sh`, script files, `source`, `eval`), [`flow`] (lists and compound
//! commands), [`simple`] (simple commands and builtins), [`state`] (what the shell knows) and
//! [`expand`] (words to fields).

mod expand;
mod flow;
mod program;
mod record;
mod script;
mod simple;
mod state;
mod wrappers;

pub(crate) use expand::{Field, texts};
pub(crate) use program::Inv;
pub(crate) use state::State;

use crate::model::{Hop, Options, Terminal, Unknown};
use state::Function;
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
}
