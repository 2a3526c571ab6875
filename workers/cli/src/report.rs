//! `stella report` (an image's policy report) and `stella replay` (recompute a proof bundle,
//! prove its root, or show what another feed snapshot, other VEX or another policy changes).

use crate::{Exit, fail};
use std::io::Write;
use std::path::PathBuf;

/// `stella report`: the scan's policy report as canonical JSON.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    scan: crate::scan::Args,
}

pub(crate) fn report(args: ReportArgs) -> Exit {
    let mut scan = args.scan;
    if scan.policy.is_none() {
        return fail(Exit::Usage, "stella report needs --policy FILE");
    }
    scan.format = crate::scan::Format::ReportJson;
    scan.quiet = true;
    crate::scan::run(scan)
}

/// `stella replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// A proof bundle written by `stella scan --policy … --bundle FILE`.
    bundle: PathBuf,
    /// Replay against these advisories instead of the bundled ones (files, directories or
    /// zips, as `stella feeds import` reads them).
    #[arg(long, value_name = "PATH")]
    advisories: Vec<PathBuf>,
    /// Replay against the advisories imported in the data directory now (a feed update).
    #[arg(long, conflicts_with = "advisories")]
    current_feeds: bool,
    /// Replay against these VEX documents instead of the bundled statements.
    #[arg(long, value_name = "PATH")]
    vex: Vec<PathBuf>,
    /// Replay with this VEX trust configuration.
    #[arg(long, value_name = "FILE")]
    vex_trust: Option<PathBuf>,
    /// Replay with this policy.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where the catalog lives (for `--current-feeds`).
    #[command(flatten)]
    storage: stella_store::StorageArgs,
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Exit codes: 0 when the bundle replays to its recorded root (or, with overrides, always
/// after printing the changes); 8 when a bundle without overrides does not prove its root;
/// 2 for unreadable, tampered or malformed bundles and overrides; 1 otherwise.
pub(crate) fn replay(args: ReplayArgs) -> Exit {
    let bytes = match std::fs::read(&args.bundle) {
        Ok(b) => b,
        Err(e) => return fail(Exit::Usage, &format!("{}: {e}", args.bundle.display())),
    };
    let mut overrides = stella_verdict::bundle::Overrides::default();
    if !args.advisories.is_empty() {
        let mut records = stella_feeds::Records::default();
        for path in &args.advisories {
            if let Err(e) = stella_feeds::collect(path, &mut records) {
                return fail(Exit::Usage, &format!("{}: {e}", path.display()));
            }
        }
        for (origin, reason) in &records.rejected {
            eprintln!("warning: {origin}: {reason}");
        }
        overrides.advisories = Some(records.advisories);
    }
    if args.current_feeds {
        let storage = args.storage.config(stella_store::default_data_dir);
        let (runtime, store) = match crate::open_store(&storage) {
            Ok(x) => x,
            Err((exit, message)) => return fail(exit, &message),
        };
        let (inputs, _) = match stella_verdict::bundle::read(&bytes) {
            Ok(x) => x,
            Err(e) => return fail(Exit::Usage, &format!("{}: {e}", args.bundle.display())),
        };
        match runtime.block_on(stella_pipeline::advisories_for(&store, &inputs.inventory)) {
            Ok(a) => overrides.advisories = Some(a),
            Err(e) => return fail(Exit::Failure, &format!("failed to read advisories: {e}")),
        }
    }
    if !args.vex.is_empty() {
        let mut collected = crate::vex::Collected::default();
        for path in &args.vex {
            if let Err(e) =
                crate::vex::collect(path, &stella_vex::Options::default(), &mut collected)
            {
                return fail(Exit::Usage, &format!("{}: {e}", path.display()));
            }
        }
        for (origin, reason) in &collected.rejected {
            eprintln!("warning: {origin}: {reason}");
        }
        overrides.statements = Some(
            collected
                .documents
                .into_iter()
                .flat_map(|(_, d)| d.statements)
                .collect(),
        );
    }
    if let Some(path) = &args.vex_trust {
        match crate::vex::read_trust(path) {
            Ok(t) => overrides.trust = Some(t),
            Err(e) => return fail(Exit::Usage, &e),
        }
    }
    if let Some(path) = &args.policy {
        match stella_policy::load_file(path) {
            Ok(loaded) => overrides.policy = Some(loaded.spec),
            Err(e) => {
                return fail(
                    Exit::Usage,
                    &format!("{}: invalid policy\n{e}", path.display()),
                );
            }
        }
    }
    let with_overrides = !overrides.is_empty();
    let (replay, _) = match stella_verdict::bundle::replay(&bytes, overrides) {
        Ok(x) => x,
        Err(e) => return fail(Exit::Usage, &format!("{}: {e}", args.bundle.display())),
    };
    let rendered = match args.format {
        Format::Json => stella_sbom::canonical::to_string_pretty(
            &serde_json::to_value(&replay).unwrap_or_default(),
        ),
        Format::Table => table(&replay, with_overrides),
    };
    if let Err(e) = std::io::stdout().lock().write_all(rendered.as_bytes()) {
        return fail(Exit::Failure, &format!("failed to write output: {e}"));
    }
    if !with_overrides && !replay.proved {
        return fail(
            Exit::NotProved,
            "the recomputed root differs from the recorded one",
        );
    }
    Exit::Ok
}

fn table(replay: &stella_verdict::bundle::Replay, with_overrides: bool) -> String {
    let mut out = String::new();
    if !with_overrides {
        out.push_str(&format!(
            "{}: root {}\nverdict {}\n",
            if replay.proved {
                "proved"
            } else {
                "NOT PROVED"
            },
            replay.root,
            replay.verdict
        ));
        if !replay.proved {
            out.push_str(&format!("recorded root {}\n", replay.recorded_root));
        }
        return out;
    }
    out.push_str(&format!(
        "changed inputs: {}\nverdict {} → {}\nroot {} → {}\n",
        replay.changed_inputs.join(", "),
        replay.recorded_verdict,
        replay.verdict,
        replay.recorded_root,
        replay.root
    ));
    if replay.changes.is_empty() {
        out.push_str("no decision changes\n");
        return out;
    }
    let mut rows = vec![[
        "ID".to_string(),
        "PACKAGE".into(),
        "BEFORE".into(),
        "AFTER".into(),
    ]];
    for c in &replay.changes {
        rows.push([
            c.id.clone(),
            c.purl.clone(),
            c.before.clone().unwrap_or_else(|| "-".into()),
            c.after.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&crate::scan::columns(&rows));
    out
}
