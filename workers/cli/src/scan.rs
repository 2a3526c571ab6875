//! `stella scan`.

use crate::{Exit, Failure, Reason};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use stella_acquire::Platform;
use stella_scan::{Event, Options};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: a registry reference (`registry/repo:tag`, `…@sha256:…`), an OCI layout
    /// directory (optionally `dir:tag`) or a docker-archive tar.
    pub(crate) image: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::CyclonedxJson)]
    pub(crate) format: Format,
    /// `inventory`: everything installed; `usage`: only what the entrypoint runs and loads
    /// (EntryTrace closure, linked libraries, the packages its interpreter loads).
    #[arg(long, value_enum, default_value_t = View::Inventory)]
    pub(crate) view: View,
    /// Write the output here instead of stdout.
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
    /// Platform to select from a multi-platform image.
    #[arg(long, default_value = "linux/amd64")]
    pub(crate) platform: String,
    /// Layers read in parallel (default: the number of CPUs).
    #[arg(long)]
    pub(crate) parallelism: Option<usize>,
    /// Never draw progress bars.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Where the catalog (SQLite) and the artifact store (a directory) live.
    #[arg(long, env = "STELLA_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Keep the whole catalog — images, artifacts, results, advisories, VEX, unknowns — in
    /// PostgreSQL (`postgres://…`) instead of the embedded SQLite file
    /// (`$STELLA_DATABASE_URL` is read too).
    #[arg(
        long = "catalog-url",
        visible_alias = "database-url",
        env = "STELLA_CATALOG_URL",
        value_name = "URL"
    )]
    pub(crate) catalog_url: Option<String>,
    /// Read every layer even when its analysis is cached.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Talk to the registry over plain HTTP (only for registries on a trusted network).
    #[arg(long)]
    pub(crate) insecure_registry: bool,
    /// Exit with code 6 when a vulnerability at or above this severity is found.
    #[arg(long, value_enum)]
    pub(crate) fail_on: Option<Threshold>,
    /// Extra registry credentials: a Kubernetes `.dockerconfigjson` (or Docker config.json)
    /// file; `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` is always read.
    #[arg(long, value_name = "FILE")]
    pub(crate) registry_auth_file: Vec<PathBuf>,
    /// Evaluate this policy (a `Policy` manifest or its spec, YAML or JSON) over the findings
    /// after VEX: prints the verdict and exits 7 on FAIL.
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
    /// VEX provider trust weights and accepted justifications (YAML or JSON); default: vendor
    /// 1.0, distribution 0.85, third party 0.5, every justification accepted.
    #[arg(long, value_name = "FILE")]
    pub(crate) vex_trust: Option<PathBuf>,
    /// Write the proof bundle (manifest, proof ledger, report, pinned inputs) of the verdict
    /// here; `stella replay` recomputes it. Needs `--policy`.
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub(crate) bundle: Option<PathBuf>,
    /// The namespace the image runs in, for the policy's `namespaces` matchers.
    #[arg(long)]
    pub(crate) namespace: Option<String>,
    /// The environment (`prod`, `dev`, …), for the policy's `environments` matchers.
    #[arg(long = "env")]
    pub(crate) environment: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum View {
    Inventory,
    Usage,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    CyclonedxJson,
    /// CycloneDX 1.6 protobuf (`cyclonedx.v1_6.Bom`, binary): the same content as the JSON.
    CyclonedxProtobuf,
    SpdxJson,
    /// Packages and vulnerabilities, for people.
    Table,
    /// Vulnerabilities as canonical JSON, for machines.
    FindingsJson,
    /// The policy report (`--policy`): every finding's decision, the deciding rule, the score
    /// breakdown and the verdict, as canonical JSON.
    ReportJson,
}

/// Severity thresholds for `--fail-on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum Threshold {
    Low,
    Medium,
    High,
    Critical,
}

fn rank(severity: &str) -> u8 {
    match severity {
        "Critical" => 4,
        "High" => 3,
        "Medium" => 2,
        "Low" => 1,
        _ => 0,
    }
}

/// Acquires and scans `args.image` (cached layers reused), records the result, and returns the
/// inventory.
pub(crate) fn inventory(
    args: &Args,
    data_dir: &Path,
    runtime: &tokio::runtime::Runtime,
    store: &stella_store::Store,
) -> Result<stella_sbom::Inventory, Failure> {
    let platform: Platform = args.platform.parse().map_err(|e: stella_acquire::Error| {
        Failure::new(Reason::InvalidArguments, e.to_string())
    })?;
    let image = open(args, &platform, data_dir, runtime)?;
    let cache = stella_store::ObjectFragmentCache::new(store.clone(), runtime.handle().clone());
    let bars = Bars::new(!args.quiet && std::io::stderr().is_terminal(), &image);
    let progress = |event: Event| bars.on(event);
    let mut options = Options {
        progress: Some(&progress),
        ..Options::default()
    };
    if !args.no_cache {
        options.cache = Some(&cache);
    }
    if let Some(p) = args.parallelism {
        options.parallelism = p.max(1);
    }
    // The scan blocks (it reads layers on threads and the cache blocks on the runtime), so it
    // runs outside the runtime's workers.
    let outcome =
        std::thread::scope(|scope| scope.spawn(|| stella_scan::scan(&image, &options)).join());
    let outcome = match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(stella_scan::Error::Acquire(e))) => {
            return Err(Failure::new(reason_for(&e), format!("{}: {e}", args.image)));
        }
        Ok(Err(e)) => {
            return Err(Failure::new(
                Reason::CorruptImage,
                format!("{}: {e}", args.image),
            ));
        }
        Err(_) => return Err(Failure::new(Reason::Internal, "the scan panicked")),
    };
    bars.finish();
    if let Err(e) = runtime.block_on(record(store, &image, &outcome.inventory)) {
        let place = if store.catalog.is_postgres() {
            "the catalog".to_string()
        } else {
            data_dir.display().to_string()
        };
        return Err(Failure::new(
            Reason::StorageUnavailable,
            format!("failed to store the results in {place}: {e}"),
        ));
    }
    Ok(outcome.inventory)
}

pub(crate) fn run(args: Args) -> Exit {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(stella_store::default_data_dir);
    let (runtime, store) = match crate::open_store(Some(&data_dir), args.catalog_url.as_deref()) {
        Ok(x) => x,
        Err((exit, message)) => return fail(exit, &message),
    };
    let inventory = match inventory(&args, &data_dir, &runtime, &store) {
        Ok(inventory) => inventory,
        Err(failure) => return failure.report(),
    };
    for error in &inventory.errors {
        eprintln!("warning: {error}");
    }
    let advisories = match runtime.block_on(advisories_for(&store, &inventory)) {
        Ok(a) => a,
        Err(e) => return fail(Exit::Failure, &format!("failed to read advisories: {e}")),
    };
    let findings = stella_verdict::matching::match_inventory(&inventory, &advisories);
    let policy = match args.policy.as_deref().map(load_policy).transpose() {
        Ok(policy) => policy,
        Err(failure) => return failure.report(),
    };
    let judged = verdict(&args, &store, &inventory, advisories, &findings, policy);
    let verdict = match runtime.block_on(judged) {
        Ok(v) => v,
        Err(failure) => return failure.report(),
    };
    if let (Some(path), Some((inputs, evaluation))) = (&args.bundle, &verdict.evaluation) {
        let bytes = stella_verdict::bundle::write(inputs, evaluation);
        if let Err(e) = std::fs::write(path, bytes) {
            return fail(Exit::Failure, &format!("{}: {e}", path.display()));
        }
    }
    if let Err(e) = runtime.block_on(record_unknowns(&store, &inventory, &findings, &verdict)) {
        return fail(
            Exit::Failure,
            &format!("failed to record the unknowns: {e}"),
        );
    }
    let report = verdict.evaluation.as_ref().map(|(_, e)| &e.report);
    let (inventory, findings) = match args.view {
        View::Inventory => (inventory, findings),
        View::Usage => (
            inventory.usage_view(),
            findings
                .into_iter()
                .filter(|f| f.used_by_entrypoint)
                .collect(),
        ),
    };
    let rendered: Vec<u8> = match args.format {
        Format::CyclonedxJson => stella_sbom::cyclonedx::to_json(&inventory).into_bytes(),
        Format::CyclonedxProtobuf => stella_sbom::cyclonedx_pb::to_protobuf(&inventory),
        Format::SpdxJson => stella_sbom::spdx::to_json(&inventory).into_bytes(),
        Format::Table => {
            let mut text = table(&inventory, &findings);
            if let Some(report) = report {
                text.push_str(&verdict_table(report));
            }
            text.into_bytes()
        }
        Format::ReportJson => match report {
            Some(report) => {
                let value = serde_json::to_value(report).unwrap_or_default();
                stella_sbom::canonical::to_string_pretty(&value).into_bytes()
            }
            None => return fail(Exit::Usage, "--format report-json needs --policy"),
        },
        Format::FindingsJson => stella_sbom::canonical::to_string_pretty(&serde_json::json!({
            "image": inventory.image.digest,
            "findings": serde_json::to_value(&findings).unwrap_or_default(),
        }))
        .into_bytes(),
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, &rendered),
        None => std::io::stdout().lock().write_all(&rendered),
    };
    if let Err(e) = written {
        return fail(Exit::Failure, &format!("failed to write output: {e}"));
    }
    if let Some(threshold) = args.fail_on {
        let floor = rank(match threshold {
            Threshold::Low => "Low",
            Threshold::Medium => "Medium",
            Threshold::High => "High",
            Threshold::Critical => "Critical",
        });
        let over = findings
            .iter()
            .filter(|f| rank(&f.severity) >= floor)
            .count();
        if over > 0 {
            eprintln!("stella: {over} vulnerabilities at or above {threshold:?}");
            return Exit::Findings;
        }
    }
    if let Some(report) = report {
        let verdict = serde_json::to_value(report.verdict).unwrap_or_default();
        match verdict.as_str().unwrap_or_default() {
            "FAIL" => {
                eprintln!(
                    "stella: policy verdict FAIL ({} failing findings, policy {})",
                    report.counts.fail, report.policy_digest
                );
                return Exit::PolicyFail;
            }
            "WARN" => {
                eprintln!(
                    "stella: policy verdict WARN ({} findings to look at)",
                    report.counts.warn
                );
            }
            _ => {}
        }
    }
    Exit::Ok
}

/// What VEX and the policy say of the findings.
pub(crate) struct Verdict {
    /// VEX consensus per finding, in findings order.
    pub(crate) vex: Vec<Option<stella_vex::Consensus>>,
    /// `sha256:` of the stored VEX statements ([`stella_vex::snapshot_hash`]), when any are.
    pub(crate) vex_snapshot: Option<String>,
    /// KEV / EPSS of the findings' ids.
    pub(crate) exploits: std::collections::BTreeMap<String, stella_verdict::evaluate::Exploit>,
    /// With `--policy`: the pinned inputs and their evaluation.
    pub(crate) evaluation: Option<(
        stella_verdict::evaluate::Inputs,
        stella_verdict::evaluate::Evaluation,
    )>,
}

/// Reads and checks a policy file (`--policy`).
pub(crate) fn load_policy(path: &Path) -> Result<stella_policy::Loaded, Failure> {
    stella_policy::load_file(path).map_err(|e| {
        Failure::new(
            Reason::InvalidPolicy,
            format!("{}: invalid policy\n{e}", path.display()),
        )
    })
}

/// Loads the VEX statements and decides, under `policy` when there is one.
pub(crate) async fn verdict(
    args: &Args,
    store: &stella_store::Store,
    inventory: &stella_sbom::Inventory,
    advisories: Vec<stella_advisories::Advisory>,
    findings: &[stella_advisories::matching::Finding],
    policy: Option<stella_policy::Loaded>,
) -> Result<Verdict, Failure> {
    let statements =
        store.vex.vex_statements().await.map_err(|e| {
            Failure::new(Reason::StorageUnavailable, format!("VEX statements: {e}"))
        })?;
    let vex_snapshot = (!statements.is_empty()).then(|| stella_vex::snapshot_hash(&statements));
    let trust = match &args.vex_trust {
        Some(path) => {
            crate::vex::read_trust(path).map_err(|e| Failure::new(Reason::InvalidArguments, e))?
        }
        None => stella_vex::TrustConfig::default(),
    };
    let vex = stella_verdict::evaluate::vex_decisions(
        &statements,
        &trust,
        &inventory.image.digest,
        findings,
    );
    let ids: Vec<String> = findings
        .iter()
        .flat_map(|f| std::iter::once(&f.id).chain(&f.aliases).cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let exploits: std::collections::BTreeMap<String, stella_verdict::evaluate::Exploit> = store
        .advisories
        .exploit_signals(&ids)
        .await
        .map_err(|e| Failure::new(Reason::StorageUnavailable, format!("KEV / EPSS: {e}")))?
        .into_iter()
        .map(|(id, (kev, epss))| (id, stella_verdict::evaluate::Exploit { kev, epss }))
        .collect();
    let Some(loaded) = policy else {
        return Ok(Verdict {
            vex,
            vex_snapshot,
            exploits,
            evaluation: None,
        });
    };
    // Only the statements about this image's packages are pinned (and bundled).
    let purls: std::collections::BTreeSet<&str> = inventory
        .components
        .iter()
        .map(|c| c.package.purl.as_str())
        .collect();
    let statements = statements
        .into_iter()
        .filter(|s| {
            purls
                .iter()
                .any(|p| s.applies(Some(&inventory.image.digest), p))
        })
        .collect();
    let inputs = stella_verdict::evaluate::Inputs {
        inventory: inventory.clone(),
        advisories,
        statements,
        trust,
        exploits: exploits.clone(),
        policy: loaded.spec,
        // Whole seconds: the manifest records the time at that precision, and a replay must
        // evaluate waivers at exactly the recorded instant.
        evaluated_at: {
            use chrono::Timelike;
            let now = chrono::Utc::now();
            now.with_nanosecond(0).unwrap_or(now)
        },
        namespace: args.namespace.clone(),
        environment: args.environment.clone(),
    };
    let evaluation = stella_verdict::evaluate::evaluate(&inputs);
    Ok(Verdict {
        vex,
        vex_snapshot,
        exploits,
        evaluation: Some((inputs, evaluation)),
    })
}

/// The verdict under the package and vulnerability tables.
fn verdict_table(report: &stella_policy::Report) -> String {
    let verdict = serde_json::to_value(report.verdict).unwrap_or_default();
    let mut out = format!(
        "\nVerdict: {} (policy {}; {} fail, {} warn, {} deferred, {} ignored, {} quieted by VEX)\n",
        verdict.as_str().unwrap_or_default(),
        report.policy_digest,
        report.counts.fail,
        report.counts.warn,
        report.counts.deferred,
        report.counts.ignored,
        report.counts.vex_suppressed,
    );
    let mut rows = vec![[
        "DECISION".to_string(),
        "ID".into(),
        "PACKAGE".into(),
        "SEVERITY".into(),
        "SCORE".into(),
        "RULE".into(),
    ]];
    for d in &report.findings {
        let outcome = serde_json::to_value(d.outcome).unwrap_or_default();
        let severity = serde_json::to_value(d.severity).unwrap_or_default();
        rows.push([
            outcome.as_str().unwrap_or_default().to_string(),
            d.id.clone(),
            d.purl.clone(),
            severity.as_str().unwrap_or_default().to_string(),
            format!("{:.1}", d.score.score),
            d.rule
                .clone()
                .unwrap_or_else(|| format!("{:?}", d.decided_by).to_lowercase()),
        ]);
    }
    out.push_str(&columns(&rows));
    for w in &report.expired_waivers {
        out.push_str(&format!(
            "expired waiver: rule {:?} ({} findings) expired {}\n",
            w.rule, w.findings, w.expires
        ));
    }
    out
}

/// Derives the image's unknowns (seed §4C) and records them in the registry: every open
/// finding no VEX statement speaks of, or VEX disputes, degraded databases, EntryTrace and
/// ELF gaps.
pub(crate) async fn record_unknowns(
    store: &stella_store::Store,
    inventory: &stella_sbom::Inventory,
    findings: &[stella_advisories::matching::Finding],
    verdict: &Verdict,
) -> stella_store::Result<Vec<stella_verdict::Unknown>> {
    let exploit = |f: &stella_advisories::matching::Finding| {
        stella_verdict::evaluate::exploit_of(&verdict.exploits, f)
    };
    // Open: not quieted by VEX or waived by the policy.
    let closed: std::collections::BTreeSet<(&str, &str)> = verdict
        .evaluation
        .iter()
        .flat_map(|(_, e)| &e.report.findings)
        .filter(|d| {
            !matches!(
                d.outcome,
                stella_policy::Outcome::Fail
                    | stella_policy::Outcome::Warn
                    | stella_policy::Outcome::Deferred
            )
        })
        .map(|d| (d.id.as_str(), d.purl.as_str()))
        .collect();
    let inputs: Vec<stella_verdict::FindingInput> = findings
        .iter()
        .zip(&verdict.vex)
        .map(|(finding, consensus)| stella_verdict::FindingInput {
            finding,
            vex: stella_verdict::evaluate::vex_state(consensus.as_ref()),
            open: !closed.contains(&(finding.id.as_str(), finding.purl.as_str()))
                && !consensus.as_ref().and_then(|c| c.status).is_some_and(|s| {
                    matches!(
                        s,
                        stella_vex::Status::NotAffected | stella_vex::Status::Fixed
                    )
                }),
            kev: exploit(finding).kev,
            epss: exploit(finding).epss,
        })
        .collect();
    let context = stella_verdict::Context {
        inventory,
        runs_as_root: stella_verdict::runs_as_root(inventory.image.user.as_deref()),
        containment: stella_verdict::Containment::default(),
        orphan_vex: &[],
    };
    let unknowns = stella_verdict::derive(&context, &inputs);
    let rows: Vec<stella_store::UnknownRow> = unknowns
        .iter()
        .map(|u| stella_store::UnknownRow {
            id: u.id.clone(),
            image_digest: u.image_digest.clone(),
            subject: u.subject.clone(),
            score: u.score,
            band: u.band.as_str().into(),
            body: serde_json::to_string(u).unwrap_or_default(),
        })
        .collect();
    let db = &store.unknowns;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    db.record(&inventory.image.digest, &rows, &now).await?;
    Ok(unknowns)
}

/// The imported advisories that could speak of the inventory's packages.
pub(crate) async fn advisories_for(
    store: &stella_store::Store,
    inventory: &stella_sbom::Inventory,
) -> stella_store::Result<Vec<stella_advisories::Advisory>> {
    let keys = stella_verdict::matching::keys(&stella_verdict::matching::candidates(inventory));
    Ok(store
        .advisories
        .advisories_for(&keys)
        .await?
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .collect())
}

/// Stores the SBOMs (CycloneDX JSON and protobuf, SPDX; inventory view; CycloneDX JSON and
/// protobuf of the usage view) and the BOM-Index
/// sidecar, and records the image and its artifacts in the catalog.
async fn record(
    store: &stella_store::Store,
    image: &stella_acquire::Image,
    inventory: &stella_sbom::Inventory,
) -> stella_store::Result<()> {
    let digest = &inventory.image.digest;
    for artifact in stella_store::image_artifacts(inventory) {
        store.store_artifact(digest, artifact).await?;
    }
    store
        .catalog
        .record_image(&stella_store::ImageRow {
            digest: digest.clone(),
            config_digest: inventory.image.config_digest.clone(),
            name: inventory.image.name.clone(),
            os: inventory.image.os.clone(),
            architecture: inventory.image.architecture.clone(),
            created: inventory.image.created.clone(),
            analyzer_version: inventory.analyzer_version.clone(),
            components: inventory.components.len() as i64,
            layers: image
                .layers
                .iter()
                .map(|l| (l.digest.to_string(), l.size as i64, l.media_type.clone()))
                .collect(),
        })
        .await
}

use crate::fail;

/// `dir:tag` → (dir, tag) when `dir` exists and the whole string does not.
fn split_tag(image: &str) -> (PathBuf, Option<String>) {
    if !Path::new(image).exists()
        && let Some((dir, tag)) = image.rsplit_once(':')
        && Path::new(dir).is_dir()
    {
        return (PathBuf::from(dir), Some(tag.to_string()));
    }
    (PathBuf::from(image), None)
}

/// Opens the image: a local layout or archive when the argument names an existing path,
/// otherwise a registry reference.
fn open(
    args: &Args,
    platform: &Platform,
    data_dir: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<stella_acquire::Image, Failure> {
    let (path, tag) = split_tag(&args.image);
    let result = if path.is_dir() {
        stella_acquire::layout::open(&path, tag.as_deref(), platform)
    } else if path.exists() {
        stella_acquire::open_local(&path, platform)
    } else {
        let looks_local = args.image.starts_with('/')
            || args.image.starts_with('.')
            || args.image.ends_with(".tar");
        let reference = match stella_acquire::Reference::parse(&args.image) {
            Ok(r) if !looks_local => r,
            _ => {
                return Err(Failure::new(
                    Reason::InvalidArguments,
                    format!(
                        "{}: no such OCI layout directory or image tar, nor a valid image reference",
                        args.image
                    ),
                ));
            }
        };
        let credentials = stella_acquire::Credentials::load(&args.registry_auth_file)
            .map_err(|e| Failure::new(Reason::InvalidArguments, e.to_string()))?;
        let client = stella_acquire::RegistryClient::new(credentials, args.insecure_registry)
            .map_err(|e| Failure::new(Reason::Internal, e.to_string()))?;
        let blobs = data_dir.join("blobs");
        runtime.block_on(std::sync::Arc::new(client).open(
            &reference,
            platform,
            &blobs,
            runtime.handle().clone(),
        ))
    };
    result.map_err(|e| Failure::new(reason_for(&e), format!("{}: {e}", args.image)))
}

/// The failure class of an acquisition error.
fn reason_for(e: &stella_acquire::Error) -> Reason {
    use stella_acquire::Error as E;
    match e {
        E::UnknownSource { .. } => Reason::InvalidArguments,
        E::NoMatchingPlatform { .. } | E::Registry { status: 404, .. } => Reason::ImageNotFound,
        E::Unreachable { .. } => Reason::Unreachable,
        E::Auth { .. } => Reason::Unauthorized,
        E::Io { .. } => Reason::StorageUnavailable,
        E::Registry { .. } => Reason::RegistryError,
        _ => Reason::CorruptImage,
    }
}

/// Progress bars on a terminal, one per layer; nothing otherwise.
struct Bars {
    multi: Option<MultiProgress>,
    layers: Mutex<Vec<Option<ProgressBar>>>,
}

impl Bars {
    fn new(enabled: bool, image: &stella_acquire::Image) -> Bars {
        let multi = enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Bars {
            multi,
            layers: Mutex::new(vec![None; image.layers.len()]),
        }
    }

    fn on(&self, event: Event) {
        let Some(multi) = &self.multi else { return };
        let mut layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::LayerStarted {
                index,
                digest,
                size,
            } => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!(
                    "layer {} {} ({} MB)",
                    index + 1,
                    &digest[7..19],
                    size / 1_000_000
                ));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                layers[index] = Some(bar);
            }
            Event::LayerDone {
                index,
                cached,
                uncompressed_bytes,
            } => {
                let bar = layers[index]
                    .take()
                    .unwrap_or_else(|| multi.add(ProgressBar::new_spinner()));
                let how = if cached {
                    "cached".to_string()
                } else {
                    format!("{} MB read", uncompressed_bytes / 1_000_000)
                };
                bar.finish_with_message(format!("layer {} done ({how})", index + 1));
            }
            Event::Analyzing => {
                let _ = multi.println("analyzing");
            }
        }
    }

    fn finish(&self) {
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

fn table(
    inventory: &stella_sbom::Inventory,
    findings: &[stella_advisories::matching::Finding],
) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "VERSION".into(),
        "TYPE".into(),
        "LAYER".into(),
        "USED".into(),
    ]];
    for c in &inventory.components {
        let layer = c
            .layer_digest
            .as_deref()
            .map(|d| d[7..19].to_string())
            .unwrap_or_else(|| "-".into());
        let kind = format!("{:?}", c.package.ecosystem).to_lowercase();
        rows.push([
            c.package.name.clone(),
            c.package.version.clone(),
            kind,
            layer,
            if c.used_by_entrypoint { "yes" } else { "-" }.into(),
        ]);
    }
    let distro = inventory
        .distro
        .as_ref()
        .and_then(|d| d.pretty_name.clone())
        .unwrap_or_else(|| "unknown OS".into());
    let mut out = format!(
        "{} ({}) — {}, {} packages\n",
        inventory.image.name,
        inventory.image.digest,
        distro,
        inventory.components.len()
    );
    out.push_str(&columns(&rows));
    if let Some(trace) = &inventory.entry_trace {
        out.push_str(&format!("\nEntrypoint ({}):\n", trace.outcome.as_str()));
        let mut rows = vec![["FROM".to_string(), "HOP".into(), "PATH".into()]];
        for hop in &trace.hops {
            let kind = serde_json::to_value(hop.kind).unwrap_or_default();
            rows.push([
                hop.from.to_string(),
                kind.as_str().unwrap_or_default().to_string(),
                hop.path.clone(),
            ]);
        }
        out.push_str(&columns(&rows));
        for unknown in &trace.unknowns {
            out.push_str(&format!(
                "unresolved: {} at {}: {}\n",
                unknown.reason.as_str(),
                unknown.from,
                unknown.detail
            ));
        }
    }
    let mut sorted: Vec<_> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        rank(&b.severity)
            .cmp(&rank(&a.severity))
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.package.cmp(&b.package))
    });
    out.push_str(&format!("\n{} vulnerabilities\n", findings.len()));
    if !sorted.is_empty() {
        let mut rows = vec![[
            "SEVERITY".to_string(),
            "ID".into(),
            "PACKAGE".into(),
            "INSTALLED".into(),
            "FIXED".into(),
            "LAYER".into(),
        ]];
        for f in sorted {
            let layer = f
                .layer_digest
                .as_deref()
                .map(|d| d[7..19].to_string())
                .unwrap_or_else(|| "-".into());
            let fixed = match f.status.as_str() {
                "fixed" => f.fixed.join(", "),
                "will-not-fix" => "(will not fix)".to_string(),
                "fix-deferred" => "(fix deferred)".to_string(),
                _ => "(no fix)".to_string(),
            };
            rows.push([
                f.severity.clone(),
                f.id.clone(),
                f.package.clone(),
                f.installed.clone(),
                fixed,
                layer,
            ]);
        }
        out.push_str(&columns(&rows));
    }
    out
}

pub(crate) fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
