//! The configuration file (`stella.yaml`) and `STELLA_*` environment overrides.
//!
//! Precedence, highest first: a flag on the command line, its `STELLA_<FLAG>` environment
//! variable (`--fail-on` → `STELLA_FAIL_ON`, `--data-dir` → `STELLA_DATA_DIR`), the
//! configuration file, the built-in default. The file is `--config FILE`, else
//! `$STELLA_CONFIG`, else `stella.yaml` in the current directory when there is one; it maps
//! each command to its flags by their long names:
//!
//! ```yaml
//! scan:
//!   format: sarif
//!   severity: [critical, high]
//!   ignore-unfixed: true
//!   exit-code: 1
//! ```
//!
//! Applied to clap's command before parsing: file values become the flags' defaults, and every
//! flag without an environment variable of its own gets `STELLA_<FLAG>`; clap then resolves
//! the precedence itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The commands whose flags take `STELLA_*` variables and file values.
const CONFIGURABLE: [&str; 4] = ["scan", "report", "diff", "sbom"];

/// `command` with the configuration file's values as defaults and `STELLA_*` variables on the
/// configurable commands' flags. Errors name the file and where in it.
pub(crate) fn apply(command: clap::Command, args: &[OsString]) -> Result<clap::Command, String> {
    let mut command = command;
    for name in CONFIGURABLE {
        command = command.mut_subcommand(name, with_environment);
    }
    let Some(path) = config_path(args) else {
        return Ok(command);
    };
    let text = read(&path)?;
    let document = parse(&path, &text)?;
    let shown = path.display().to_string();
    let serde_json::Value::Object(commands) = document else {
        return Err(format!(
            "{shown}: expected a mapping of commands (`scan:`, `sbom:`, …) to their flags"
        ));
    };
    for (name, flags) in commands {
        if !CONFIGURABLE.contains(&name.as_str()) {
            return Err(format!(
                "{shown}: {name}: not a configurable command (expected one of: {})",
                CONFIGURABLE.join(", ")
            ));
        }
        let serde_json::Value::Object(flags) = flags else {
            return Err(format!(
                "{shown}: {name}: expected a mapping of flags to values"
            ));
        };
        let subcommand = command
            .find_subcommand(&name)
            .cloned()
            .expect("configurable commands exist");
        let mut defaults = Vec::new();
        for (flag, value) in flags {
            let at = format!("{shown}: {name}.{flag}");
            let arg = subcommand
                .get_arguments()
                .find(|a| a.get_long() == Some(flag.as_str()))
                .ok_or_else(|| format!("{at}: no such flag (see stella {name} --help)"))?;
            let values = scalars(&value).ok_or_else(|| {
                format!("{at}: expected a string, number, boolean or a list of them")
            })?;
            let multiple = arg.get_num_args().is_some_and(|n| n.max_values() > 1)
                || matches!(arg.get_action(), clap::ArgAction::Append);
            if values.len() != 1 && !multiple {
                return Err(format!("{at}: takes one value, not a list"));
            }
            defaults.push((arg.get_id().clone(), values));
        }
        command = command.mut_subcommand(&name, |mut sub| {
            for (id, values) in defaults {
                sub = sub.mut_arg(id, |a| a.default_values(values));
            }
            sub
        });
    }
    Ok(command)
}

/// Every flag with a long name and no variable of its own reads `STELLA_<FLAG>`.
fn with_environment(mut command: clap::Command) -> clap::Command {
    let ids: Vec<(clap::Id, String)> = command
        .get_arguments()
        .filter(|a| a.get_env().is_none() && !a.is_positional())
        .filter_map(|a| {
            let long = a.get_long()?;
            (long != "help" && long != "version" && long != "config").then(|| {
                (
                    a.get_id().clone(),
                    format!("STELLA_{}", long.to_ascii_uppercase().replace('-', "_")),
                )
            })
        })
        .collect();
    for (id, variable) in ids {
        command = command.mut_arg(id, |a| a.env(variable));
    }
    command
}

/// `--config FILE` (or `--config=FILE`), else `$STELLA_CONFIG`, else `./stella.yaml` when it
/// exists.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(value) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(value));
        }
    }
    if let Some(path) = std::env::var_os("STELLA_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let default = PathBuf::from("stella.yaml");
    default.is_file().then_some(default)
}

fn read(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "{shown}: {} bytes, more than the {MAX_CONFIG_BYTES} a configuration file may have",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{shown}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// YAML (or JSON) under the policy loader's budgets, errors with line:column.
fn parse(path: &Path, text: &str) -> Result<serde_json::Value, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 16;
    budget.max_nodes = 10_000;
    budget.max_aliases = 64;
    budget.max_anchors = 64;
    budget.max_documents = 1;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options::<serde_json::Value>(text, options).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        let message = e.without_snippet().to_string();
        let first = message.lines().next().unwrap_or_default().to_string();
        format!("{}{at}: {first}", path.display())
    })
}

/// A scalar or a list of scalars as clap values.
fn scalars(value: &serde_json::Value) -> Option<Vec<String>> {
    let one = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        serde_json::Value::Array(items) => items.iter().map(one).collect(),
        other => one(other).map(|v| vec![v]),
    }
}
