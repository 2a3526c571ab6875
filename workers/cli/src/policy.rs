//! `stella policy`: validate a policy file and print its digest, with every problem located
//! (`rules[3].action: …`, or `line:column` for syntax errors).

use crate::{Exit, fail};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Validate a policy (a `Policy` manifest or a bare spec, YAML or JSON) against the CRD
    /// schema and the DSL's semantic rules; print `valid, digest sha256:…`, or every problem
    /// with its location.
    ///
    /// Exit codes: 0 valid; 2 invalid or unreadable.
    Validate {
        /// The policy file.
        file: PathBuf,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the policy's digest (`sha256:` of its canonical JSON): the `policyDigest` of
    /// every verdict it decides. The same policy written differently has the same digest.
    ///
    /// Exit codes: 0; 2 invalid or unreadable.
    Digest {
        /// The policy file.
        file: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// One line per problem: `file: path: message` or `file:line:column: message`.
    Text,
    /// Canonical JSON: `{"valid", "digest"}` or `{"valid", "errors": [{"path" | "line",
    /// "column", "message"}]}`.
    Json,
}

pub(crate) fn run(args: Args) -> Exit {
    match args.command {
        Command::Validate { file, format } => match (load(&file, format), format) {
            (Ok(loaded), Format::Text) => {
                println!("valid, digest {}", loaded.digest);
                Exit::Ok
            }
            (Ok(loaded), Format::Json) => {
                let value = serde_json::json!({"valid": true, "digest": loaded.digest});
                println!("{}", stella_policy::canonical_json(&value));
                Exit::Ok
            }
            (Err(exit), _) => exit,
        },
        Command::Digest { file } => match load(&file, Format::Text) {
            Ok(loaded) => {
                println!("{}", loaded.digest);
                Exit::Ok
            }
            Err(exit) => exit,
        },
    }
}

/// Loads the policy, printing its problems (in `format`) when it is invalid.
fn load(file: &Path, format: Format) -> Result<stella_policy::Loaded, Exit> {
    match stella_policy::load_file(file) {
        Ok(loaded) => Ok(loaded),
        Err(stella_policy::Error::Invalid(issues)) => {
            match format {
                Format::Text => {
                    for issue in &issues.0 {
                        match issue.position {
                            Some((line, column)) => {
                                println!("{}:{line}:{column}: {}", file.display(), issue.message)
                            }
                            None => println!("{}: {issue}", file.display()),
                        }
                    }
                }
                Format::Json => {
                    let errors: Vec<serde_json::Value> = issues
                        .0
                        .iter()
                        .map(|issue| match issue.position {
                            Some((line, column)) => serde_json::json!({
                                "line": line, "column": column, "message": issue.message,
                            }),
                            None => serde_json::json!({
                                "path": issue.location(), "message": issue.message,
                            }),
                        })
                        .collect();
                    let value = serde_json::json!({"valid": false, "errors": errors});
                    println!("{}", stella_policy::canonical_json(&value));
                }
            }
            let count = issues.0.len();
            let plural = if count == 1 { "problem" } else { "problems" };
            Err(fail(
                Exit::Usage,
                &format!("{}: invalid policy, {count} {plural}", file.display()),
            ))
        }
        Err(e) => Err(fail(Exit::Usage, &e.to_string())),
    }
}
