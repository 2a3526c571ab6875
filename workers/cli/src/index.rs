//! `stella index`: questions answered from the BOM-Index sidecars `stella scan` stores per image
//! (`indexes/<digest>/bom-index.bin`), without reading any SBOM.

use crate::{Exit, fail};
use std::io::Write;

/// The subcommands, with the storage flags.
pub(crate) type Args = crate::WithStorage<Command>;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List the scanned images containing any of the given packages, by exact purl
    /// (`--purl`) or purl prefix (`--prefix`), from the BOM-Index of every image in the
    /// catalog: digest and name, sorted by digest.
    ///
    /// Exit codes: 0 with or without matches; 2 when no package is given or no image in the
    /// data directory has a BOM-Index (scan images first); 1 when a stored index cannot be
    /// read.
    Query(QueryArgs),
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("packages").required(true).multiple(true).args(["purl", "prefix"]))]
pub(crate) struct QueryArgs {
    /// An exact purl as the SBOM carries it, qualifiers included
    /// (`pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12`). Repeatable.
    #[arg(long, value_name = "PURL")]
    purl: Vec<String>,
    /// A purl prefix: every purl starting with it matches, compared byte by byte
    /// (`pkg:npm/lodash@` is every lodash version; `pkg:deb/debian/openssl` also matches
    /// `openssl-provider-legacy`; `pkg:deb/debian/` is every Debian package). Repeatable.
    #[arg(long, value_name = "PREFIX")]
    prefix: Vec<String>,
    /// Only images whose entrypoint uses the package (the components flagged
    /// `stellaops:usedByEntrypoint`).
    #[arg(long)]
    used_by_entrypoint: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Format {
    /// Digest and name per image, for people.
    Table,
    /// Canonical JSON (`{"images": [{"digest", "name"}]}`), for machines.
    Json,
}

pub(crate) fn run(args: Args) -> Exit {
    let Command::Query(query) = args.command;
    let storage = args.storage.config(stella_store::default_data_dir);
    let data_dir = storage.data_dir.clone();
    let (runtime, store) = match crate::open_store(&storage) {
        Ok(x) => x,
        Err((exit, message)) => return fail(exit, &message),
    };
    let impact = match runtime.block_on(store.impact_index()) {
        Ok(impact) => impact,
        Err(e) => {
            return fail(
                Exit::Failure,
                &format!(
                    "failed to read the BOM-Indexes in {}: {e}",
                    data_dir.display()
                ),
            );
        }
    };
    if impact.images().is_empty() {
        return fail(
            Exit::Usage,
            &format!(
                "no image in {} has a BOM-Index: `stella scan` stores one per image",
                data_dir.display()
            ),
        );
    }
    let purls: Vec<&str> = query.purl.iter().map(String::as_str).collect();
    let prefixes: Vec<&str> = query.prefix.iter().map(String::as_str).collect();
    let digests = impact.query(&purls, &prefixes, query.used_by_entrypoint);
    let mut images = Vec::with_capacity(digests.len());
    for digest in digests {
        let name = match runtime.block_on(store.catalog.image(&digest)) {
            Ok(row) => row.map(|r| r.name).unwrap_or_default(),
            Err(e) => return fail(Exit::Failure, &format!("failed to read the catalog: {e}")),
        };
        images.push((digest, name));
    }
    let rendered = match query.format {
        Format::Table => table(&images, impact.images().len()),
        Format::Json => stella_sbom::canonical::to_string_pretty(&serde_json::json!({
            "images": images
                .iter()
                .map(|(digest, name)| serde_json::json!({"digest": digest, "name": name}))
                .collect::<Vec<_>>(),
        })),
    };
    if let Err(e) = std::io::stdout().lock().write_all(rendered.as_bytes()) {
        return fail(Exit::Failure, &format!("failed to write output: {e}"));
    }
    Exit::Ok
}

fn table(images: &[(String, String)], indexed: usize) -> String {
    if images.is_empty() {
        return format!("no match among {indexed} indexed images\n");
    }
    let mut rows = vec![["DIGEST".to_string(), "NAME".into()]];
    rows.extend(
        images
            .iter()
            .map(|(digest, name)| [digest.clone(), name.clone()]),
    );
    crate::scan::columns(&rows)
}
