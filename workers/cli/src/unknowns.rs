//! `stella unknowns`: the registry of what scans could not classify (seed §4C) — list by band,
//! show one with its score breakdown, resolve with a justification, escalate for a rescan.
//! `stella scan` records each image's unknowns.

use crate::{Exit, fail};
use std::io::Write;
use stella_store::{StoredUnknown, UnknownFilter};

/// The subcommands, with the storage flags.
pub(crate) type Args = crate::WithStorage<Command>;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Open and escalated unknowns, highest score first.
    List {
        /// Only this band: HOT (score ≥ 0.70, triage within 24 h), WARM (≥ 0.40, 7 days),
        /// COLD (30 days).
        #[arg(long)]
        band: Option<String>,
        /// Only this image (`sha256:…`).
        #[arg(long)]
        image: Option<String>,
        /// Include resolved unknowns.
        #[arg(long)]
        all: bool,
        #[arg(long, short, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One unknown: reasons, evidence, blast radius, score breakdown and triage state (JSON).
    Show { id: String },
    /// Close an unknown with what was found and why it is acceptable.
    Resolve {
        id: String,
        /// What resolved it (`vex-imported`, `accepted-risk`, `false-positive`, …).
        #[arg(long)]
        resolution: String,
        /// Why: recorded with the resolution.
        #[arg(long)]
        justification: String,
    },
    /// Mark an unknown for attention: its image is due a rescan with fresh evidence.
    Escalate { id: String },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

pub(crate) fn run(args: Args) -> Exit {
    let storage = args.storage.config(stella_store::default_data_dir);
    let (runtime, store) = match crate::open_store(&storage) {
        Ok(x) => x,
        Err((exit, message)) => return fail(exit, &message),
    };
    let db = store.unknowns;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let output = match args.command {
        Command::List {
            band,
            image,
            all,
            format,
        } => {
            let band = match band.as_deref().map(stella_verdict::Band::parse) {
                Some(None) => {
                    return fail(Exit::Usage, "--band must be HOT, WARM or COLD");
                }
                Some(Some(band)) => Some(band.as_str().to_string()),
                None => None,
            };
            let filter = UnknownFilter {
                band,
                image_digest: image,
                all,
            };
            match runtime.block_on(db.list(&filter)) {
                Ok(list) => match format {
                    Format::Table => table(&list),
                    Format::Json => stella_sbom::canonical::to_string_pretty(&serde_json::json!({
                        "items": list.iter().map(json).collect::<Vec<_>>(),
                    })),
                },
                Err(e) => return fail(Exit::Failure, &format!("unknowns registry: {e}")),
            }
        }
        Command::Show { id } => match runtime.block_on(db.get(&id)) {
            Ok(Some(u)) => stella_sbom::canonical::to_string_pretty(&json(&u)),
            Ok(None) => return fail(Exit::Usage, &format!("no unknown {id}")),
            Err(e) => return fail(Exit::Failure, &format!("unknowns registry: {e}")),
        },
        Command::Resolve {
            id,
            resolution,
            justification,
        } => {
            if justification.trim().is_empty() {
                return fail(Exit::Usage, "--justification must say why");
            }
            match runtime.block_on(db.resolve(&id, &resolution, &justification, &now)) {
                Ok(true) => format!("{id} resolved at {now}\n"),
                Ok(false) => return fail(Exit::Usage, &format!("no unknown {id}")),
                Err(e) => return fail(Exit::Failure, &format!("unknowns registry: {e}")),
            }
        }
        Command::Escalate { id } => match runtime.block_on(db.escalate(&id, &now)) {
            Ok(true) => format!("{id} escalated at {now}: its image is due a rescan\n"),
            Ok(false) => {
                return fail(
                    Exit::Usage,
                    &format!("no open unknown {id} (resolved ones stay resolved)"),
                );
            }
            Err(e) => return fail(Exit::Failure, &format!("unknowns registry: {e}")),
        },
    };
    if let Err(e) = std::io::stdout().lock().write_all(output.as_bytes()) {
        return fail(Exit::Failure, &format!("failed to write output: {e}"));
    }
    Exit::Ok
}

fn json(u: &StoredUnknown) -> serde_json::Value {
    let mut body: serde_json::Value = serde_json::from_str(&u.row.body).unwrap_or_default();
    body["status"] = serde_json::Value::String(u.status.clone());
    body["firstSeen"] = serde_json::Value::String(u.first_seen.clone());
    body["lastSeen"] = serde_json::Value::String(u.last_seen.clone());
    for (key, value) in [
        ("resolution", &u.resolution),
        ("justification", &u.justification),
        ("resolvedAt", &u.resolved_at),
        ("escalatedAt", &u.escalated_at),
    ] {
        if let Some(value) = value {
            body[key] = serde_json::Value::String(value.clone());
        }
    }
    body
}

fn table(list: &[StoredUnknown]) -> String {
    if list.is_empty() {
        return "no unknowns\n".into();
    }
    let mut rows = vec![[
        "ID".to_string(),
        "BAND".into(),
        "SCORE".into(),
        "STATUS".into(),
        "REASONS".into(),
        "SUBJECT".into(),
    ]];
    for u in list {
        let body: serde_json::Value = serde_json::from_str(&u.row.body).unwrap_or_default();
        let reasons: Vec<&str> = body["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str())
            .collect();
        rows.push([
            u.row.id.clone(),
            u.row.band.clone(),
            format!("{:.2}", u.row.score),
            u.status.clone(),
            reasons.join(","),
            u.row.subject.clone(),
        ]);
    }
    crate::scan::columns(&rows)
}
