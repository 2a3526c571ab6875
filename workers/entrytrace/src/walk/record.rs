//! Recording what the walk finds: hops, terminals and unknowns (each once, in the order first
//! met) and the files of the closure.

use super::{Inv, Tracer};
use crate::image::File;
use crate::model::{Hop, HopKind, Location, Reason, Terminal, TerminalKind, Unknown};

impl Tracer<'_> {
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

    pub(super) fn record_hop(&mut self, hop: Hop) {
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
}
