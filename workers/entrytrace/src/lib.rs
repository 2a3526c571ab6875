//! EntryTrace: what a container runs, resolved from the image config's ENTRYPOINT and CMD
//! through shell scripts and language launchers to the terminal programs, inside the merged
//! image filesystem, without executing anything from the image.
//!
//! [`trace`] starts from `ENTRYPOINT ++ CMD` (CMD alone without an entrypoint), `Env` and
//! `WorkingDir`, and records every step as a [`Hop`] with the file and line (or `config`) that
//! decided it, the programs that end up running as [`Terminal`]s, and what could not be
//! resolved as [`Unknown`]s with a [`Reason`]. Nothing is guessed: a command or path that
//! depends on a value not known statically is recorded, not followed.
//!
//! Followed:
//! - Command lookup on `PATH` (default `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
//!   an `x` bit required) or as a path relative to the working directory; symlinks stay
//!   inside the image root (a `/bin/sh` → `busybox` link leads to `/bin/busybox`).
//! - `#!` scripts to their interpreter (`#!/usr/bin/env X`, `#!/bin/sh -e`); `busybox APPLET`.
//! - POSIX shell scripts (sh, bash, dash, ash, zsh, ksh as sh), parsed into an AST by a
//!   hand-written parser (see the `shell` module): variables from `Env`, assignments and
//!   `export`, `${X:-default}`/`${X:=default}`/`${X:+alt}`; `source`/`.` (variables carry
//!   over); `exec`; `command`; `env [-i] [-u X] [X=v] CMD`; `eval` of literal words; `cd`;
//!   `set --`/`shift`; functions (calls are followed into the body); both branches of every
//!   `if` and `case` (recorded as [`Choice`]s on the hops); loop bodies, `for` over literal
//!   words and globs in the image; `run-parts DIR` (every executable entry whose name
//!   run-parts accepts, sorted); `sh -c 'string'`. The last command of a script, and a
//!   command sent to the background, is followed like `exec`: `"$@"` expands to the script's
//!   arguments, so a `docker-entrypoint.sh` ending in `exec "$@"` continues into CMD. After
//!   branches that `set --` differently, every possible argument list is followed.
//! - Wrappers that start a program: `tini`, `dumb-init`, `gosu`, `su-exec`, `nohup`, `setsid`.
//! - `java [opts] -jar X.jar` (terminal: the jar), `java -cp … Main` and `java -m mod/Main`
//!   (terminal: the class name); `python [opts] -m module` (looked up as `__main__.py`,
//!   `__init__.py` or `module.py` on the `sys.path` the image shows: working directory,
//!   `PYTHONPATH`, a virtualenv next to the interpreter, `/usr/local/lib/python3*`,
//!   `/usr/lib/python3*`, their `site-packages`/`dist-packages`); `python script.py`, and for
//!   a pip console script the top-level module it imports; `node [opts] script` (with
//!   `.js`/`.mjs`/`.cjs`, or a directory's `package.json` `main` or `index.js`).
//!
//! Not followed, by design: commands in the middle of a script that run and return (`chown`,
//! `mkdir`, a setup script called without `exec`); the contents of command substitutions,
//! here-documents and `[[ … ]]`/`(( … ))` conditions (conditions are never evaluated: all
//! branches are followed); variables set by `read` or from command output (unknown);
//! `alias`; classes inside jars; `load_entry_point` console scripts of old setuptools. A
//! script that re-executes itself (`exec gosu user "$0" "$@"`) is not walked again; a script
//! that sources itself and a function that calls itself are [`Reason::RecursionLimitReached`].
//! Hostile scripts are bounded: nesting (48 levels per script), depth ([`Options::max_depth`]),
//! 100,000 commands walked per trace, 8 alternative argument lists per command.
//!
//! The capture side ([`wants_entry`], [`condense`]) tells the layer reader which file bytes
//! EntryTrace needs: text scripts up to 256 KiB. Bytes a [`stella_layerfs::Filesystem`] holds
//! for a path are only taken as a script when they start with `#!` (other analyzers may keep
//! condensed metadata of binaries); anything else is an executable.

mod capture;
mod image;
mod launch;
mod model;
mod shell;
mod walk;

pub use capture::{CAPTURE_VERSION, MAX_SCRIPT_BYTES, condense, wants_entry};
pub use model::{
    Choice, Config, Hop, HopKind, Location, Options, Outcome, Reason, Terminal, TerminalKind,
    Trace, Unknown,
};

use stella_layerfs::Filesystem;
use walk::{Field, Inv, State, Tracer};

/// Resolves what a container of the image runs.
pub fn trace(fs: &Filesystem, config: &Config, options: &Options) -> Trace {
    // Docker: CMD is appended to ENTRYPOINT, or is the whole command without one.
    let argv: Vec<Field> = config
        .entrypoint
        .iter()
        .chain(&config.cmd)
        .map(|a| Field::lit(a.as_str()))
        .collect();
    let mut tracer = Tracer::new(fs, options);
    if argv.is_empty() {
        tracer.unknown(
            Reason::CommandNotFound,
            "the image config has neither ENTRYPOINT nor CMD".to_string(),
            Location::config(),
        );
    } else {
        let state = State::from_config(config);
        tracer.run(Inv {
            argv,
            kind: HopKind::Entrypoint,
            from: Location::config(),
            env: &state,
            choices: Vec::new(),
            depth: 0,
            script: None,
        });
    }
    let walked = tracer.finish();
    let outcome = match (walked.terminals.is_empty(), walked.unknowns.is_empty()) {
        (true, _) => Outcome::Unresolved,
        (false, true) => Outcome::Resolved,
        (false, false) => Outcome::PartiallyResolved,
    };
    Trace {
        outcome,
        hops: walked.hops,
        terminals: walked.terminals,
        unknowns: walked.unknowns,
        files: walked.files.into_iter().collect(),
    }
}
