//! Recording what the walk finds: hops, terminals and unknowns (each once, in the order first
//! met) and the files of the closure.

use super::{Field, Inv, Tracer};
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

    /// Whether `field`'s value is known only at run time; if so, records that `what` (a
    /// command, a script argument, a sourced file…) depends on it: "{what} `…` depends on …".
    pub(crate) fn dynamic(&mut self, what: &str, field: &Field, from: &Location) -> bool {
        let Some(why) = &field.dynamic else {
            return false;
        };
        let detail = format!("{what} `{}` depends on {why}", field.text);
        self.unknown(Reason::DynamicEnvironmentReference, detail, from.clone());
        true
    }

    /// The first of `fields` (a command's name, a sourced file) if there is one and it is
    /// known; when it depends on a run-time value, records why and gives `None`.
    pub(super) fn first_known<'f>(
        &mut self,
        what: &str,
        fields: &'f [Field],
        from: &Location,
    ) -> Option<&'f Field> {
        let first = fields.first()?;
        (!self.dynamic(what, first, from)).then_some(first)
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
