//! The EntryTrace input (image config, options) and output (the trace) types.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The parts of an OCI image config EntryTrace reads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `Entrypoint` (exec form; the shell form is `["/bin/sh", "-c", "…"]`).
    pub entrypoint: Vec<String>,
    /// `Cmd`: appended to the entrypoint, or the whole command when there is none.
    pub cmd: Vec<String>,
    /// `Env`, as `KEY=value`.
    pub env: Vec<String>,
    /// `WorkingDir`; `/` when absent.
    pub working_dir: Option<String>,
}

/// Limits of a trace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Deepest chain of hops, includes and function calls followed (default 64).
    pub max_depth: usize,
    /// Whether `run-parts DIR` follows the executables of DIR (default true).
    pub follow_run_parts: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_depth: 64,
            follow_run_parts: true,
        }
    }
}

/// How far resolution got.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Terminal programs found and nothing left unresolved.
    Resolved,
    /// Terminal programs found, and some constructs left unresolved.
    PartiallyResolved,
    /// No terminal program found.
    Unresolved,
}

impl Outcome {
    /// The metric label (`entrytrace_resolutions_total{outcome}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Resolved => "resolved",
            Outcome::PartiallyResolved => "partially-resolved",
            Outcome::Unresolved => "unresolved",
        }
    }
}

/// Where a hop or an unknown was decided: the image config, or a line of a file in the image.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Absolute path in the image; `None` for the image config (ENTRYPOINT/CMD).
    pub file: Option<String>,
    /// 1-based line in `file`.
    pub line: Option<u32>,
}

impl Location {
    /// The image config.
    pub fn config() -> Location {
        Location::default()
    }

    /// Line `line` of `file`.
    pub fn at(file: impl Into<String>, line: u32) -> Location {
        Location {
            file: Some(file.into()),
            line: Some(line),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (None, _) => f.write_str("config"),
            (Some(file), Some(line)) => write!(f, "{file}:{line}"),
            (Some(file), None) => f.write_str(file),
        }
    }
}

/// How one program or file leads to the next.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum HopKind {
    /// ENTRYPOINT/CMD's program.
    Entrypoint,
    /// `exec CMD`, and the programs `env`/`command` hand over to.
    Exec,
    /// `source FILE` / `. FILE`.
    Source,
    /// An executable of a `run-parts` directory.
    RunParts,
    /// A `#!` script's interpreter.
    Interpreter,
    /// What an interpreter or wrapper starts: a shell's script, `java -jar`'s jar, `python -m`'s
    /// module, `node`'s script, `tini`/`gosu`'s program.
    Launcher,
    /// A program invoked without `exec` where it decides what runs: the last command of a
    /// script, a backgrounded command, `run-parts` itself.
    Call,
}

/// A branch taken on the way to a hop: both sides of every `if` and `case` are followed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Choice {
    /// The `if`, `elif`, `else`, `case` arm or command with alternative arguments.
    pub at: Location,
    /// `then`, `elif`, `else`, `case <pattern>)`, or `argv alternative <k> of <n>`.
    pub branch: String,
}

/// One step from a program or script to the next.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hop {
    pub from: Location,
    pub kind: HopKind,
    /// The argv as resolved (unknown expansions kept as written, e.g. `$JAVA_OPTS`).
    pub command: Vec<String>,
    /// Absolute path of the target in the image, after symlinks.
    pub path: String,
    /// Branches taken to reach this hop, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
}

/// What kind of program a terminal is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum TerminalKind {
    /// A binary, or any file that is not a `#!` script as far as the capture shows.
    Executable,
    /// A `#!` script not handed to a known launcher (a shell script that runs no further
    /// program, a perl or ruby script).
    Script,
    /// `java -jar X.jar`.
    Jar,
    /// `java -cp … Main` / `java -m mod/Main`: `path` is the class (or module/class) name.
    JavaClass,
    /// A module the Python interpreter runs (`-m`) or a console script imports.
    PythonModule,
    /// A Python script.
    PythonScript,
    /// A Node.js script.
    NodeScript,
}

/// A program that ends up running.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Terminal {
    /// Absolute path in the image (for `java-class`, the class name).
    pub path: String,
    pub kind: TerminalKind,
    pub argv: Vec<String>,
    /// The interpreter that runs it (absolute path in the image), for scripts, jars, classes
    /// and modules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
}

/// Why something could not be resolved.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A command cannot be located in the image root or on `PATH`.
    CommandNotFound,
    /// A `source`/`.`/`run-parts`/script target is missing (or its content was not captured).
    MissingFile,
    /// A command or path depends on a variable with no known value, or on a command
    /// substitution.
    DynamicEnvironmentReference,
    /// The depth limit was reached, or a cycle (a script sourcing itself, a function calling
    /// itself) was found.
    RecursionLimitReached,
    /// A `run-parts` directory has no executable entries.
    RunPartsEmpty,
    /// The jar of `java -jar` is missing.
    JarNotFound,
    /// The module of `python -m` (or a console script's import) is missing.
    ModuleNotFound,
    /// A script is not valid shell (unterminated quote, `if` without `fi`, nesting too deep).
    ParseError,
}

impl Reason {
    /// The metric label (`entrytrace_unresolved_total{reason}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CommandNotFound => "CommandNotFound",
            Reason::MissingFile => "MissingFile",
            Reason::DynamicEnvironmentReference => "DynamicEnvironmentReference",
            Reason::RecursionLimitReached => "RecursionLimitReached",
            Reason::RunPartsEmpty => "RunPartsEmpty",
            Reason::JarNotFound => "JarNotFound",
            Reason::ModuleNotFound => "ModuleNotFound",
            Reason::ParseError => "ParseError",
        }
    }
}

/// A construct left unresolved, never guessed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Unknown {
    pub reason: Reason,
    pub detail: String,
    pub from: Location,
}

/// What a container runs, and how it gets there.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub outcome: Outcome,
    /// In the order they were found.
    pub hops: Vec<Hop>,
    /// The programs that end up running, in the order they were found.
    pub terminals: Vec<Terminal>,
    pub unknowns: Vec<Unknown>,
    /// Sorted absolute paths of every file the chain touches: scripts, sourced files,
    /// interpreters, programs, jars, Python module files and their package directories.
    pub files: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_display_as_config_or_file_line() {
        assert_eq!(Location::config().to_string(), "config");
        assert_eq!(
            Location::at("/docker-entrypoint.sh", 12).to_string(),
            "/docker-entrypoint.sh:12"
        );
    }

    #[test]
    fn enums_serialise_as_documented() {
        let json = serde_json::to_string(&(
            Outcome::PartiallyResolved,
            HopKind::RunParts,
            TerminalKind::JavaClass,
            Reason::DynamicEnvironmentReference,
        ))
        .unwrap();
        assert_eq!(
            json,
            r#"["partially-resolved","run-parts","java-class","DynamicEnvironmentReference"]"#
        );
    }
}
