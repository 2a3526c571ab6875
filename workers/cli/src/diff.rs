//! `stella diff <old> <new>`: what changed between two images, package by package.

use crate::Exit;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The old image (any form `stella scan` takes).
    old: String,
    /// The new image.
    new: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the output here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Platform to select from multi-platform images.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// Never draw progress bars.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    storage: stella_store::StorageArgs,
    /// Talk to registries over plain HTTP (only for registries on a trusted network).
    #[arg(long)]
    insecure_registry: bool,
    /// Extra registry credentials (a Kubernetes `.dockerconfigjson` or Docker config.json).
    #[arg(long, value_name = "FILE")]
    registry_auth_file: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Format {
    /// The changes, for people.
    Table,
    /// Canonical JSON, for machines.
    Json,
}

pub(crate) fn run(args: Args) -> Exit {
    let storage = args.storage.config(stella_store::default_data_dir);
    let data_dir = storage.data_dir.clone();
    let (runtime, store) = match crate::open_store(&storage) {
        Ok(x) => x,
        Err((exit, message)) => return crate::fail(exit, &message),
    };
    let mut inventories = Vec::new();
    for image in [&args.old, &args.new] {
        let source = crate::scan::Source {
            image,
            platform: &args.platform,
            insecure_registry: args.insecure_registry,
            registry_auth_files: &args.registry_auth_file,
            parallelism: None,
            no_cache: false,
            quiet: args.quiet,
            no_progress: args.quiet,
        };
        match crate::scan::inventory(&source, &data_dir, &runtime, &store) {
            Ok(inventory) => inventories.push(inventory),
            Err(failure) => return failure.report(),
        }
    }
    let diff = stella_sbom::diff::diff(
        &inventories[0],
        &inventories[1],
        &stella_advisories::matching::compare,
    );
    let rendered = match args.format {
        Format::Json => stella_sbom::canonical::to_string_pretty(
            &serde_json::to_value(&diff).unwrap_or_default(),
        ),
        Format::Table => table(&diff),
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, rendered.as_bytes()),
        None => std::io::stdout().lock().write_all(rendered.as_bytes()),
    };
    if let Err(e) = written {
        return crate::fail(Exit::Failure, &format!("failed to write output: {e}"));
    }
    Exit::Ok
}

fn table(diff: &stella_sbom::diff::Diff) -> String {
    let mut out = format!(
        "{} → {}\n{} shared layers; {} added, {} removed, {} version changed, {} metadata changed\n",
        diff.old_image,
        diff.new_image,
        diff.shared_layers,
        diff.summary["added"],
        diff.summary["removed"],
        diff.summary["version_changed"],
        diff.summary["metadata_changed"],
    );
    if diff.changes.is_empty() {
        return out;
    }
    let mut rows = vec![[
        "CHANGE".to_string(),
        "PACKAGE".into(),
        "OLD".into(),
        "NEW".into(),
        "LAYER".into(),
        "USED".into(),
    ]];
    for c in &diff.changes {
        let change = match (c.kind.as_str(), &c.direction) {
            ("version_changed", Some(d)) => d.clone(),
            ("metadata_changed", _) => format!("metadata ({})", c.fields.join(", ")),
            (kind, _) => kind.to_string(),
        };
        rows.push([
            change,
            c.name.clone(),
            c.old_version.clone().unwrap_or_else(|| "-".into()),
            c.new_version.clone().unwrap_or_else(|| "-".into()),
            c.layer_digest
                .as_deref()
                .and_then(|d| d.get(7..19))
                .unwrap_or("-")
                .to_string(),
            match (c.old_used_by_entrypoint, c.new_used_by_entrypoint) {
                (false, false) => "-",
                (true, true) => "yes",
                (false, true) => "now",
                (true, false) => "was",
            }
            .into(),
        ]);
    }
    out.push_str(&crate::scan::columns(&rows));
    out
}
