//! Command-line surface of `stella-operator` (in the library so that tests can check the
//! install manifests' arguments against it).

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Serve(#[from] crate::serve::Error),
    #[error("failed to render the CRDs: {0}")]
    Render(#[from] serde_saphyr::ser::Error),
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("generated CRDs differ from the committed files: {}", .0.join(", "))]
    Stale(Vec<String>),
}

/// A result of a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.display().to_string();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// Stella Ops operator: reconciles Scan, Schedule, Policy, NotifyRule, NotifyChannel,
/// SymbolSource and FeedSource resources (group stella-ops.org).
#[derive(Debug, Parser)]
#[command(name = "stella-operator", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator: campaign for leadership on a Lease, serve /healthz, /readyz and
    /// /metrics, release the lease on SIGTERM.
    Run(Box<crate::serve::RunArgs>),
    /// Print the CustomResourceDefinitions generated from the Rust types, or write them
    /// one file per kind (`config/crd/bases/<group>_<plural>.yaml`).
    Crd {
        /// Directory to write into (the files it owns are replaced). Prints all CRDs as one
        /// multi-document YAML stream to stdout when absent.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Fail instead of writing when a file would change (for CI).
        #[arg(long, requires = "out")]
        check: bool,
    },
}

impl Cli {
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Run(args) => Ok(crate::serve::run(*args)?),
            Command::Crd { out: None, .. } => {
                let mut stdout = std::io::stdout().lock();
                for crd in stella_crds::all() {
                    stdout
                        .write_all(stella_crds::render_yaml(&crd)?.as_bytes())
                        .map_err(io("write", Path::new("stdout")))?;
                }
                Ok(())
            }
            Command::Crd {
                out: Some(dir),
                check,
            } => write_crds(&dir, check),
        }
    }
}

fn write_crds(dir: &Path, check: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let mut stale = Vec::new();
    for crd in stella_crds::all() {
        let path = dir.join(stella_crds::file_name(&crd));
        let yaml = stella_crds::render_yaml(&crd)?;
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == yaml {
            continue;
        }
        if check {
            stale.push(path.display().to_string());
        } else {
            std::fs::write(&path, yaml).map_err(io("write", &path))?;
            eprintln!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        return Err(Error::Stale(stale));
    }
    Ok(())
}
