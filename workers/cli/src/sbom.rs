//! `stella sbom`: the SBOM of a root filesystem at build time, for a file (`--rootfs DIR`) or as
//! a BuildKit SBOM generator (`--buildkit`, moby/buildkit `docs/attestations/sbom-protocol.md`).

use crate::{Exit, Failure, Reason, fail};
use std::path::{Path, PathBuf};

/// Arguments of `stella sbom`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The root filesystem to scan: a build stage's output, an unpacked image. Read only;
    /// nothing in it is executed, and symlinks resolve inside it.
    #[arg(long, value_name = "DIR", required_unless_present = "buildkit")]
    rootfs: Option<PathBuf>,
    /// Run as a BuildKit SBOM generator: scan `$BUILDKIT_SCAN_SOURCE` and each directory in
    /// `$BUILDKIT_SCAN_SOURCE_EXTRAS`, and write for each an in-toto statement with its SPDX
    /// 2.3 document to `$BUILDKIT_SCAN_DESTINATION/<name>.spdx.json`.
    #[arg(long, conflicts_with_all = ["rootfs", "format", "output", "name"])]
    buildkit: bool,
    /// SBOM format.
    #[arg(long, short, value_enum, default_value_t = SbomFormat::SpdxJson23)]
    format: SbomFormat,
    /// Write the SBOM here (default: stdout).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// What the SBOM calls the filesystem (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// OCI architecture of the filesystem (default: this machine's).
    #[arg(long)]
    arch: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SbomFormat {
    /// SPDX 2.3 JSON (what BuildKit and Docker's tools read).
    #[value(name = "spdx-json@2.3")]
    SpdxJson23,
    /// SPDX 3.0.1 JSON-LD.
    SpdxJson,
    /// CycloneDX 1.6 JSON.
    CyclonedxJson,
}

const SCAN_DESTINATION: &str = "BUILDKIT_SCAN_DESTINATION";
const SCAN_SOURCE: &str = "BUILDKIT_SCAN_SOURCE";
const SCAN_SOURCE_EXTRAS: &str = "BUILDKIT_SCAN_SOURCE_EXTRAS";

/// `stella sbom`.
pub(crate) fn run(args: Args) -> Exit {
    let result = match &args.rootfs {
        Some(rootfs) if !args.buildkit => one(&args, rootfs),
        _ => buildkit(&args),
    };
    match result {
        Ok(()) => Exit::Ok,
        Err(failure) => failure.report(),
    }
}

/// `--rootfs DIR`: one SBOM to a file or stdout.
fn one(args: &Args, rootfs: &Path) -> Result<(), Failure> {
    let inventory = analyze(rootfs, args.name.clone(), args.arch.clone())?;
    report_degraded(&inventory);
    let rendered = match args.format {
        SbomFormat::SpdxJson23 => stella_sbom::spdx2::to_json(&inventory),
        SbomFormat::SpdxJson => stella_sbom::spdx::to_json(&inventory),
        SbomFormat::CyclonedxJson => stella_sbom::cyclonedx::to_json(&inventory),
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, &rendered)
            .map_err(|e| format!("failed to write {}: {e}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .lock()
                .write_all(rendered.as_bytes())
                .map_err(|e| format!("failed to write the SBOM: {e}"))
        }
    };
    written.map_err(|m| Failure::new(Reason::Internal, m))?;
    eprintln!(
        "{}: {} components ({})",
        inventory.image.name,
        inventory.components.len(),
        inventory.image.digest
    );
    Ok(())
}

/// `--buildkit`: the generator protocol. The main target and every extra one, each into
/// `<destination>/<target name>.spdx.json` as an in-toto statement without subject (BuildKit
/// adds the image's) whose predicate is the SPDX 2.3 document.
fn buildkit(args: &Args) -> Result<(), Failure> {
    let usage = |m: String| Failure::new(Reason::InvalidArguments, m);
    let required =
        |name: &str| -> Result<PathBuf, Failure> {
            let value = std::env::var_os(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            usage(format!(
                "--buildkit needs {name} (BuildKit sets {SCAN_SOURCE} and {SCAN_DESTINATION}); \
                 outside BuildKit use --rootfs DIR"
            ))
        })?;
            let path = PathBuf::from(value);
            if !path.is_dir() {
                return Err(usage(format!(
                    "{name}={}: no such directory",
                    path.display()
                )));
            }
            Ok(path)
        };
    let destination = required(SCAN_DESTINATION)?;
    let mut targets = vec![required(SCAN_SOURCE)?];
    // Optional: unset, empty or missing means no extras (the protocol's rule).
    if let Some(extras) = std::env::var_os(SCAN_SOURCE_EXTRAS).filter(|v| !v.is_empty())
        && let Ok(entries) = std::fs::read_dir(&extras)
    {
        let mut extra: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        extra.sort();
        targets.extend(extra);
    }
    let mut names = std::collections::BTreeSet::new();
    for target in &targets {
        let name = target_name(target);
        if !names.insert(name.clone()) {
            return Err(usage(format!(
                "two targets are named {name:?}: scan names must be unique"
            )));
        }
        let inventory = analyze(target, Some(name.clone()), args.arch.clone())?;
        report_degraded(&inventory);
        let statement = serde_json::json!({
            "_type": stella_attest::statement::STATEMENT_TYPE,
            "predicateType": stella_attest::statement::SPDX,
            "predicate": stella_sbom::spdx2::document(&inventory),
        });
        let path = destination.join(format!("{name}.spdx.json"));
        std::fs::write(&path, stella_sbom::canonical::to_string_pretty(&statement)).map_err(
            |e| {
                Failure::new(
                    Reason::Internal,
                    format!("failed to write {}: {e}", path.display()),
                )
            },
        )?;
        eprintln!(
            "{name}: {} components → {}",
            inventory.components.len(),
            path.display()
        );
    }
    Ok(())
}

/// A target's name: the last component of its path (BuildKit's rule), made safe as a file name.
fn target_name(path: &Path) -> String {
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        format!("rootfs{name}")
    } else {
        name
    }
}

fn analyze(
    path: &Path,
    name: Option<String>,
    arch: Option<String>,
) -> Result<stella_sbom::Inventory, Failure> {
    if !path.is_dir() {
        return Err(Failure::new(
            Reason::InvalidArguments,
            format!("{}: no such directory", path.display()),
        ));
    }
    let created = source_date_epoch()?;
    let rootfs = stella_pipeline::Rootfs {
        path,
        name: name.unwrap_or_else(|| target_name(path)),
        architecture: arch.unwrap_or_else(host_architecture),
        created,
    };
    Ok(stella_pipeline::analyze_rootfs(&rootfs)?)
}

/// `SOURCE_DATE_EPOCH` (reproducible-builds.org): the build's time, so rebuilt SBOMs agree.
fn source_date_epoch() -> Result<Option<String>, Failure> {
    let Some(value) = std::env::var_os("SOURCE_DATE_EPOCH").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let value = value.to_string_lossy();
    value
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .ok_or_else(|| {
            Failure::new(
                Reason::InvalidArguments,
                format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"),
            )
        })
}

/// This machine's architecture as OCI names it.
fn host_architecture() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
    .to_string()
}

/// What could not be read is said, not hidden: the SBOM is still written.
fn report_degraded(inventory: &stella_sbom::Inventory) {
    for error in &inventory.errors {
        let _ = fail(
            Exit::Ok,
            &format!("{}: degraded: {error}", inventory.image.name),
        );
    }
}
