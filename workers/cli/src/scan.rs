//! `stella scan`.

use crate::{Exit, Failure, Reason, fail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use stella_acquire::Platform;
use stella_scan::Event;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: a registry reference (`registry/repo:tag`, `…@sha256:…`), an OCI layout
    /// directory (optionally `dir:tag`), a docker-archive tar, or an existing SBOM to match
    /// without an image (`sbom:FILE`: CycloneDX 1.4–1.6, SPDX 2.3 or SPDX 3.0.1 JSON).
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
    /// No progress bars, warnings or notes: stderr keeps errors, the gate's and the verdict's
    /// messages, what was signed or logged, and the "no advisory data" warning.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Never draw progress bars (warnings and notes are still printed).
    #[arg(long)]
    pub(crate) no_progress: bool,
    #[command(flatten)]
    pub(crate) storage: stella_store::StorageArgs,
    /// Read every layer even when its analysis is cached.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Talk to the registry over plain HTTP (only for registries on a trusted network).
    #[arg(long)]
    pub(crate) insecure_registry: bool,
    /// Exit with `--exit-code` (default 6) when a reported vulnerability is at or above this
    /// severity.
    #[arg(long, value_enum, ignore_case = true)]
    pub(crate) fail_on: Option<Threshold>,
    /// The exit code when a reported vulnerability remains (after VEX, the ignore file,
    /// `--severity` and `--ignore-unfixed`; with `--fail-on`, one at or above it). Checked
    /// before the policy verdict: when it trips, its code wins over 7.
    #[arg(long, value_name = "N")]
    pub(crate) exit_code: Option<u8>,
    /// Report only these severities (comma-separated: critical,high,medium,low,none,unknown).
    #[arg(long, value_enum, value_delimiter = ',', ignore_case = true)]
    pub(crate) severity: Vec<SeverityName>,
    /// Report only vulnerabilities with a fixed version.
    #[arg(long, visible_alias = "only-fixed")]
    pub(crate) ignore_unfixed: bool,
    /// The ignore file (YAML: entries of `id` and/or `purl`, `expires`, `justification`):
    /// entries in force hide their findings and, with `--policy`, are waivers the report and
    /// proof record. Default: `.stellaignore` in the current directory, when there is one.
    #[arg(long, value_name = "FILE")]
    pub(crate) ignore_file: Option<PathBuf>,
    /// VEX documents (OpenVEX, CSAF VEX, CycloneDX VEX; files, directories or zips) applied to
    /// this scan beside the imported ones, without importing them.
    #[arg(long, value_name = "PATH")]
    pub(crate) vex: Vec<PathBuf>,
    /// List findings VEX quiets (`not_affected`, `fixed`), marked as suppressed, instead of
    /// hiding them.
    #[arg(long)]
    pub(crate) show_suppressed: bool,
    /// Let `--exit-code` / `--fail-on` pass when the catalog holds no advisory data (by
    /// default a gate with nothing checked fails).
    #[arg(long)]
    pub(crate) allow_no_advisories: bool,
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
    /// Judge as at this instant (RFC 3339, kept to whole seconds): waivers expire against it
    /// and the report records it; default now. The same image, feeds, VEX, policy and instant
    /// give a byte-identical report — the one the operator stored when it re-evaluated.
    #[arg(long, value_name = "RFC3339")]
    pub(crate) evaluated_at: Option<String>,
    /// Sign the outputs with this private key (PKCS#8 / SEC1 PEM or a cosign key file): DSSE
    /// envelopes of in-toto statements for the SBOM, the vulnerabilities, and with
    /// `--policy` the verdict report (and with `--bundle` the proof root), stored at
    /// `attest/<artifact sha256>.dsse.json`.
    #[arg(long, value_name = "FILE")]
    pub(crate) attest_key: Option<PathBuf>,
    /// The environment variable holding an encrypted key's password.
    #[arg(long, default_value = "COSIGN_PASSWORD")]
    pub(crate) key_password_env: String,
    /// Also write the envelopes here, as `<kind>.dsse.json` (sbom, vulns, report, proof).
    #[arg(long, value_name = "DIR", requires = "attest_key")]
    pub(crate) attest_out: Option<PathBuf>,
    /// With `--attest-key`: log the envelopes to a Rekor v2 log, each Sigstore bundle stored
    /// at `attest/<artifact sha256>.sigstore.json` (and written to `--attest-out`).
    #[command(flatten)]
    pub(crate) rekor: crate::attest::RekorArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum View {
    Inventory,
    Usage,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    /// CycloneDX 1.6 JSON.
    CyclonedxJson,
    /// CycloneDX 1.5 JSON, for tools that do not read 1.6.
    #[value(name = "cyclonedx-json@1.5")]
    CyclonedxJson15,
    /// CycloneDX 1.6 protobuf (`cyclonedx.v1_6.Bom`, binary): the same content as the JSON.
    CyclonedxProtobuf,
    /// SPDX 3.0.1 JSON-LD.
    SpdxJson,
    /// SPDX 2.3 JSON, for tools that do not read SPDX 3.
    #[value(name = "spdx-json@2.3")]
    SpdxJson23,
    /// Packages and vulnerabilities, for people.
    Table,
    /// Vulnerabilities as canonical JSON, for machines.
    FindingsJson,
    /// The policy report (`--policy`): every finding's decision, the deciding rule, the score
    /// breakdown and the verdict, as canonical JSON.
    ReportJson,
    /// SARIF 2.1.0 (GitHub code scanning and other SARIF readers): a rule per vulnerability,
    /// a result per finding at the package's database or manifest in the image.
    Sarif,
}

/// Severities for `--severity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SeverityName {
    Critical,
    High,
    Medium,
    Low,
    None,
    Unknown,
}

impl SeverityName {
    fn severity(self) -> stella_model::Severity {
        match self {
            SeverityName::Critical => stella_model::Severity::Critical,
            SeverityName::High => stella_model::Severity::High,
            SeverityName::Medium => stella_model::Severity::Medium,
            SeverityName::Low => stella_model::Severity::Low,
            SeverityName::None => stella_model::Severity::None,
            SeverityName::Unknown => stella_model::Severity::Unknown,
        }
    }
}

/// Severity thresholds for `--fail-on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum Threshold {
    Low,
    Medium,
    High,
    Critical,
}

impl Threshold {
    fn severity(self) -> stella_model::Severity {
        match self {
            Threshold::Low => stella_model::Severity::Low,
            Threshold::Medium => stella_model::Severity::Medium,
            Threshold::High => stella_model::Severity::High,
            Threshold::Critical => stella_model::Severity::Critical,
        }
    }
}

/// What [`inventory`] needs of the command line: the image and how to read it.
#[derive(Clone, Debug)]
pub(crate) struct Source<'a> {
    pub(crate) image: &'a str,
    pub(crate) platform: &'a str,
    pub(crate) insecure_registry: bool,
    pub(crate) registry_auth_files: &'a [PathBuf],
    pub(crate) parallelism: Option<usize>,
    pub(crate) no_cache: bool,
    /// No notes on stderr.
    pub(crate) quiet: bool,
    /// No progress bars.
    pub(crate) no_progress: bool,
}

impl<'a> Source<'a> {
    fn of(args: &'a Args) -> Source<'a> {
        Source {
            image: &args.image,
            platform: &args.platform,
            insecure_registry: args.insecure_registry,
            registry_auth_files: &args.registry_auth_file,
            parallelism: args.parallelism,
            no_cache: args.no_cache,
            quiet: args.quiet,
            no_progress: args.quiet || args.no_progress,
        }
    }
}

/// Acquires and analyses `source.image` (cached layers reused) with progress bars on a
/// terminal, stores what a scan stores, and returns the inventory.
pub(crate) fn inventory(
    source: &Source,
    data_dir: &Path,
    runtime: &tokio::runtime::Runtime,
    store: &stella_store::Store,
) -> Result<stella_sbom::Inventory, Failure> {
    let platform: Platform = source
        .platform
        .parse()
        .map_err(|e: stella_acquire::Error| {
            Failure::new(Reason::InvalidArguments, e.to_string())
        })?;
    if let Some(file) = source.image.strip_prefix("sbom:") {
        let imported = runtime.block_on(stella_pipeline::imported::import_file(
            store,
            Path::new(file),
        ))?;
        if !source.quiet {
            eprintln!(
                "{file}: {} ({} components read{})",
                imported.format,
                imported.inventory.components.len(),
                if imported.skipped_count > 0 {
                    format!(", {} left out", imported.skipped_count)
                } else {
                    String::new()
                }
            );
        }
        return Ok(imported.inventory);
    }
    let image_source = stella_pipeline::ImageSource::parse(source.image)?;
    let options = stella_pipeline::AcquireOptions {
        platform,
        registry_auth_files: source.registry_auth_files.to_vec(),
        insecure_registry: source.insecure_registry,
        ..stella_pipeline::AcquireOptions::new(data_dir)
    };
    let image = stella_pipeline::acquire(&image_source, source.image, &options, runtime.handle())?;
    let bars = Bars::new(
        !source.no_progress && std::io::stderr().is_terminal(),
        &image,
    );
    let progress = |event: Event| bars.on(event);
    let analyze = stella_pipeline::AnalyzeOptions {
        parallelism: source.parallelism,
        no_cache: source.no_cache,
        progress: Some(&progress),
    };
    let inventory =
        stella_pipeline::analyze(store, &image, source.image, &analyze, runtime.handle())?;
    bars.finish();
    Ok(inventory)
}

pub(crate) fn run(args: Args) -> Exit {
    let storage = args.storage.config(stella_store::default_data_dir);
    let data_dir = storage.data_dir.clone();
    let (runtime, store) = match crate::open_store(&storage) {
        Ok(x) => x,
        Err((exit, message)) => return fail(exit, &message),
    };
    // The evaluation's flags are checked before the image is read: a typo costs no scan.
    let (inputs, ignore) = match evaluate_inputs(&args) {
        Ok(x) => x,
        Err(failure) => return failure.report(),
    };
    let signer = match &args.attest_key {
        Some(key) => match (crate::attest::KeyArgs {
            key: key.clone(),
            key_password_env: args.key_password_env.clone(),
        })
        .load()
        {
            Ok(signer) => Some(signer),
            Err(message) => return fail(Exit::Usage, &message),
        },
        None => None,
    };
    if args.rekor.rekor_url.is_some() && signer.is_none() {
        return fail(
            Exit::Usage,
            "--rekor-url logs signed envelopes: give --attest-key",
        );
    }
    let log = match args.rekor.open() {
        Ok(log) => log,
        Err(message) => return fail(Exit::Usage, &message),
    };
    let evaluated_at = inputs.evaluated_at;
    let inventory = match inventory(&Source::of(&args), &data_dir, &runtime, &store) {
        Ok(inventory) => inventory,
        Err(failure) => return failure.report(),
    };
    if !args.quiet {
        for error in &inventory.errors {
            eprintln!("warning: {error}");
        }
    }
    let data = match runtime.block_on(advisory_data(&store, evaluated_at)) {
        Ok(data) => data,
        Err(failure) => return failure.report(),
    };
    // Said whatever --quiet asks: a report must never pass for "no vulnerabilities" unchecked.
    if let Some(warning) = data.warning() {
        eprintln!("warning: {warning}");
    }
    let evaluation = match runtime.block_on(stella_pipeline::evaluate(&store, inventory, inputs)) {
        Ok(evaluation) => evaluation,
        Err(e) => return Failure::from(e).report(),
    };
    let mut bundle = None;
    if let (Some(path), Some(policy)) = (&args.bundle, &evaluation.policy) {
        let bytes = stella_verdict::bundle::write(&policy.inputs, &policy.evaluation);
        if let Err(e) = std::fs::write(path, &bytes) {
            return fail(Exit::Failure, &format!("{}: {e}", path.display()));
        }
        bundle = Some((path, bytes));
    }
    if let Err(e) = runtime.block_on(stella_pipeline::record(&store, &evaluation)) {
        return fail(Exit::Failure, &e.to_string());
    }
    let report = evaluation.report();
    let inventory = match args.view {
        View::Inventory => std::borrow::Cow::Borrowed(&evaluation.inventory),
        View::Usage => std::borrow::Cow::Owned(evaluation.inventory.usage_view()),
    };
    let filters = stella_verdict::present::Filters {
        severities: args.severity.iter().map(|s| s.severity()).collect(),
        ignore_unfixed: args.ignore_unfixed,
        show_suppressed: args.show_suppressed,
        ignore: ignore.as_ref().map(|(_, file)| file),
        at: evaluated_at,
    };
    let selection = stella_verdict::present::select(
        evaluation
            .findings
            .iter()
            .zip(&evaluation.vex)
            .filter(|(f, _)| args.view == View::Inventory || f.used_by_entrypoint)
            .map(|(f, c)| (f, c.as_ref())),
        &filters,
    );
    if !args.quiet {
        notes(&selection, ignore.as_ref(), evaluated_at);
    }
    let rendered: Vec<u8> = match args.format {
        Format::CyclonedxJson => stella_sbom::cyclonedx::to_json(&inventory).into_bytes(),
        Format::CyclonedxJson15 => stella_sbom::cyclonedx::to_json_1_5(&inventory).into_bytes(),
        Format::CyclonedxProtobuf => stella_sbom::cyclonedx_pb::to_protobuf(&inventory),
        Format::SpdxJson => stella_sbom::spdx::to_json(&inventory).into_bytes(),
        Format::SpdxJson23 => stella_sbom::spdx2::to_json(&inventory).into_bytes(),
        Format::Table => {
            let mut text = table(&inventory, &selection, &data, args.show_suppressed);
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
        Format::FindingsJson => findings_json(&inventory, &selection, &data).into_bytes(),
        Format::Sarif => {
            stella_verdict::present::sarif(&inventory, &selection, &data, env!("CARGO_PKG_VERSION"))
                .into_bytes()
        }
    };
    if let Some(signer) = &signer {
        let signed = Signed {
            args: &args,
            evaluation: &evaluation,
            inventory: &inventory,
            rendered: &rendered,
            bundle: bundle.as_ref().map(|(p, b)| (p.as_path(), b.as_slice())),
            at: evaluated_at,
        };
        if let Err(failure) = signed.attest(signer.as_ref(), &runtime, &store) {
            return failure.report();
        }
    }
    let written = match &args.output {
        Some(path) => std::fs::write(path, &rendered),
        None => std::io::stdout().lock().write_all(&rendered),
    };
    if let Err(e) = written {
        return fail(Exit::Failure, &format!("failed to write output: {e}"));
    }
    if let (Some(log), Some(signer)) = (&log, &signer)
        && let Err(exit) = log_envelopes(log, signer.public(), &args, &evaluation, &runtime, &store)
    {
        return exit;
    }
    if let Some(exit) = gate(&args, &selection, &data) {
        return exit;
    }
    if let Some(report) = report {
        match report.verdict {
            stella_model::Verdict::Fail => {
                eprintln!(
                    "stella: policy verdict FAIL ({} failing findings, policy {})",
                    report.counts.fail, report.policy_digest
                );
                return Exit::PolicyFail;
            }
            stella_model::Verdict::Warn => {
                eprintln!(
                    "stella: policy verdict WARN ({} findings to look at)",
                    report.counts.warn
                );
            }
            stella_model::Verdict::Pass => {}
        }
    }
    Exit::Ok
}

/// `--rekor-url`: logs the image's envelopes signed by this key that are not logged yet, and
/// writes their bundles to `--attest-out`. The scan's result is stored whatever happens here.
fn log_envelopes(
    log: &stella_pipeline::transparency::Log,
    key: &stella_attest::PublicKey,
    args: &Args,
    evaluation: &stella_pipeline::Evaluation,
    runtime: &tokio::runtime::Runtime,
    store: &stella_store::Store,
) -> Result<(), Exit> {
    let digest = &evaluation.inventory.image.digest;
    let logged =
        runtime.block_on(async {
            let artifacts = store.catalog.artifacts(digest).await.map_err(|e| {
                stella_pipeline::Error::Storage {
                    what: "failed to read the image's artifacts".into(),
                    source: e,
                }
            })?;
            stella_pipeline::transparency::log_stored(store, digest, &artifacts, log, key).await
        });
    let logged = logged.map_err(|e| fail(crate::attest::log_exit(&e), &e.to_string()))?;
    for entry in &logged {
        let kind = entry.kind.as_deref().unwrap_or("envelope");
        if let Some(dir) = &args.attest_out {
            let path = dir.join(format!("{kind}.sigstore.json"));
            std::fs::write(&path, &entry.bundle)
                .map_err(|e| fail(Exit::Failure, &format!("{}: {e}", path.display())))?;
        }
        if let Some(index) = entry.log_index.filter(|_| entry.logged_now) {
            eprintln!(
                "logged {kind} in {} at index {index}{}",
                log.url(),
                if entry.checkpoint_verified {
                    ""
                } else {
                    " (checkpoint signature not verified: give --rekor-trusted-root or --rekor-public-key)"
                }
            );
        }
    }
    Ok(())
}

/// What `--attest-key` signs: the scan's outputs.
struct Signed<'a> {
    args: &'a Args,
    evaluation: &'a stella_pipeline::Evaluation,
    inventory: &'a stella_sbom::Inventory,
    /// The output as rendered (an SBOM when the format is a JSON SBOM).
    rendered: &'a [u8],
    bundle: Option<(&'a Path, &'a [u8])>,
    at: chrono::DateTime<chrono::Utc>,
}

impl Signed<'_> {
    /// Signs the SBOM (the output when it is a JSON SBOM, else the view's CycloneDX JSON),
    /// the vulnerabilities, the report and the proof; stores the envelopes and writes them to
    /// `--attest-out`.
    fn attest(
        &self,
        signer: &dyn stella_attest::Signer,
        runtime: &tokio::runtime::Runtime,
        store: &stella_store::Store,
    ) -> Result<(), Failure> {
        use stella_attest::statement::{CYCLONEDX, SPDX};
        let digest = &self.inventory.image.digest;
        let view = match self.args.view {
            View::Inventory => "inventory",
            View::Usage => "usage",
        };
        let cyclonedx;
        let (predicate_type, extension, sbom) = match self.args.format {
            Format::CyclonedxJson => (CYCLONEDX, "cdx.json", self.rendered),
            Format::SpdxJson | Format::SpdxJson23 => (SPDX, "spdx.json", self.rendered),
            _ => {
                cyclonedx = stella_sbom::cyclonedx::to_json(self.inventory).into_bytes();
                (CYCLONEDX, "cdx.json", cyclonedx.as_slice())
            }
        };
        let sbom_name = stella_store::keys::image_artifact(digest, view, extension);
        let report = self
            .evaluation
            .report()
            .map(|r| r.to_canonical_json().into_bytes());
        let report_name = report.as_ref().map(|bytes| {
            let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
            stella_store::keys::report_version(digest, &hex)
        });
        let bundle_name = self.bundle.map(|(path, _)| {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "proof-bundle.zip".into())
        });
        let outputs = stella_pipeline::attest::Outputs {
            sbom: stella_pipeline::attest::SbomArtifact {
                predicate_type,
                name: &sbom_name,
                bytes: sbom,
            },
            report: report_name.as_deref().zip(report.as_deref()),
            bundle: bundle_name.as_deref().zip(self.bundle.map(|(_, b)| b)),
            at: self.at,
        };
        let statements = stella_pipeline::attest::statements(self.evaluation, &outputs)?;
        let signed = stella_pipeline::attest::sign(&statements, signer)?;
        runtime.block_on(stella_pipeline::attest::store(store, digest, &signed))?;
        if let Some(dir) = &self.args.attest_out {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::new(Reason::Internal, format!("{}: {e}", dir.display())))?;
            for a in &signed {
                let path = dir.join(format!("{}.dsse.json", a.kind.as_str()));
                std::fs::write(&path, &a.envelope).map_err(|e| {
                    Failure::new(Reason::Internal, format!("{}: {e}", path.display()))
                })?;
            }
        }
        for a in &signed {
            eprintln!(
                "signed {}: {} (key {})",
                a.kind.as_str(),
                a.key,
                &signer.public().key_id()[..12]
            );
        }
        Ok(())
    }
}

/// `--exit-code` / `--fail-on`: the exit when a reported, unquieted finding remains (at or
/// above `--fail-on` when given). `--exit-code 0` never trips.
fn gate(
    args: &Args,
    selection: &stella_verdict::present::Selection,
    data: &stella_verdict::present::AdvisoryData,
) -> Option<Exit> {
    let code = args
        .exit_code
        .or(args.fail_on.map(|_| Exit::Findings.code()))?;
    // Nothing checked is not a pass, unless the caller says it is.
    if data.unchecked() && !args.allow_no_advisories && code != 0 {
        eprintln!(
            "stella: the gate cannot pass: no advisory data was checked (--allow-no-advisories lets it)"
        );
        return Some(gate_exit(code));
    }
    let floor = args.fail_on.map(|t| t.severity().rank());
    let over = selection
        .open()
        .filter(|f| floor.is_none_or(|floor| f.severity.rank() >= floor))
        .count();
    if over == 0 || code == 0 {
        return None;
    }
    match args.fail_on {
        Some(threshold) => eprintln!(
            "stella: {over} vulnerabilities at or above {}",
            format!("{threshold:?}").to_lowercase()
        ),
        None => eprintln!("stella: {over} vulnerabilities reported"),
    }
    Some(gate_exit(code))
}

/// The exit of a tripped gate: 6 keeps its name, any other code is the caller's.
fn gate_exit(code: u8) -> Exit {
    match code {
        6 => Exit::Findings,
        code => Exit::Gate(code),
    }
}

/// What the filters hid, and ignore entries that expired: one note each, on stderr.
fn notes(
    selection: &stella_verdict::present::Selection,
    ignore: Option<&(PathBuf, stella_policy::IgnoreFile)>,
    at: chrono::DateTime<chrono::Utc>,
) {
    let mut hidden = Vec::new();
    if selection.vex_suppressed > 0 {
        hidden.push(format!(
            "{} quieted by VEX (--show-suppressed lists them)",
            selection.vex_suppressed
        ));
    }
    let ignored: usize = selection.ignored.values().sum();
    if let Some((path, _)) = ignore.filter(|_| ignored > 0) {
        hidden.push(format!("{ignored} ignored by {}", path.display()));
    }
    if selection.below_severity > 0 {
        hidden.push(format!("{} outside --severity", selection.below_severity));
    }
    if selection.unfixed > 0 {
        hidden.push(format!("{} without a fix", selection.unfixed));
    }
    if !hidden.is_empty() {
        eprintln!("note: findings not reported: {}", hidden.join(", "));
    }
    if let Some((path, file)) = ignore {
        for (index, entry) in file.expired(at) {
            let what = entry.id.as_deref().or(entry.purl.as_deref()).unwrap_or("?");
            eprintln!(
                "warning: {} entry {} ({what}) expired at {}: it no longer hides findings",
                path.display(),
                index + 1,
                entry.expires.as_deref().unwrap_or_default()
            );
        }
    }
}

/// What the catalog holds to check against: counts and the last import.
async fn advisory_data(
    store: &stella_store::Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<stella_verdict::present::AdvisoryData, Failure> {
    let storage = |e: stella_store::Error| {
        Failure::new(
            Reason::StorageUnavailable,
            format!("failed to read the advisory catalog: {e}"),
        )
    };
    let total: i64 = store
        .advisories
        .advisory_counts()
        .await
        .map_err(storage)?
        .iter()
        .map(|(_, n)| n)
        .sum();
    let last = store.advisories.last_import().await.map_err(storage)?;
    Ok(stella_verdict::present::AdvisoryData::judge(
        total,
        last.as_ref().map(|(_, at, _, _)| at.as_str()),
        now,
    ))
}

/// `--format findings-json`: the reported findings; a VEX-suppressed one listed by
/// `--show-suppressed` carries `suppressedBy` (status, justification, provider);
/// `advisoryData` says what they were checked against.
fn findings_json(
    inventory: &stella_sbom::Inventory,
    selection: &stella_verdict::present::Selection,
    data: &stella_verdict::present::AdvisoryData,
) -> String {
    let findings: Vec<serde_json::Value> = selection
        .reported
        .iter()
        .map(|r| {
            let mut value = serde_json::to_value(r.finding).unwrap_or_default();
            if let Some(c) = r.suppressed_by {
                value["suppressedBy"] = serde_json::json!({
                    "status": c.status.map(|s| s.as_str()),
                    "justification": c.justification.map(|j| j.as_str()),
                    "provider": c.support.first().map(|claim| claim.statement.provider.name.as_str()),
                });
            }
            value
        })
        .collect();
    stella_sbom::canonical::to_string_pretty(&serde_json::json!({
        "image": inventory.image.digest,
        "findings": findings,
        "advisoryData": data,
    }))
}

/// `--ignore-file`, or `.stellaignore` in the current directory when there is one.
fn ignore_file(args: &Args) -> Result<Option<(PathBuf, stella_policy::IgnoreFile)>, Failure> {
    let invalid = |message: String| Failure::new(Reason::InvalidArguments, message);
    let (path, explicit) = match &args.ignore_file {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(".stellaignore"), false),
    };
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(invalid(format!("{}: {e}", path.display()))),
    };
    if !meta.is_file() {
        return Err(invalid(format!("{}: not a regular file", path.display())));
    }
    if meta.len() > stella_policy::MAX_IGNORE_BYTES as u64 {
        return Err(invalid(format!(
            "{}: {} bytes, more than the {} an ignore file may have",
            path.display(),
            meta.len(),
            stella_policy::MAX_IGNORE_BYTES
        )));
    }
    let text = std::fs::read(&path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))
        .and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| invalid(format!("{}: not UTF-8 text", path.display())))
        })?;
    let file = stella_policy::parse_ignore(&text)
        .map_err(|issues| invalid(format!("{}: invalid ignore file: {issues}", path.display())))?;
    Ok(Some((path, file)))
}

/// `--vex`: the statements of the documents given, read as `stella vex import` reads them.
fn vex_statements(paths: &[PathBuf], quiet: bool) -> Result<Vec<stella_vex::Statement>, Failure> {
    let mut collected = crate::vex::Collected::default();
    for path in paths {
        let (documents, rejected) = (collected.documents.len(), collected.rejected.len());
        crate::vex::collect(path, &stella_vex::Options::default(), &mut collected).map_err(
            |e| Failure::new(Reason::InvalidArguments, format!("{}: {e}", path.display())),
        )?;
        // A path that gives no document at all is a mistake, not a warning.
        if collected.documents.len() == documents {
            let why: Vec<String> = collected.rejected[rejected..]
                .iter()
                .map(|(origin, reason)| format!("{origin}: {reason}"))
                .collect();
            return Err(Failure::new(
                Reason::InvalidArguments,
                format!(
                    "{}: no VEX document read{}",
                    path.display(),
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", why.join("; "))
                    }
                ),
            ));
        }
    }
    if !quiet {
        for (origin, reason) in &collected.rejected {
            eprintln!("warning: {origin}: {reason}");
        }
    }
    Ok(collected
        .documents
        .into_iter()
        .flat_map(|(_, d)| d.statements)
        .collect())
}

/// The evaluation the flags ask for: `--policy` (with the ignore file's waivers), `--vex`,
/// `--vex-trust`, `--namespace`, `--env`.
#[allow(clippy::type_complexity)]
fn evaluate_inputs(
    args: &Args,
) -> Result<
    (
        stella_pipeline::EvaluateInputs,
        Option<(PathBuf, stella_policy::IgnoreFile)>,
    ),
    Failure,
> {
    let ignore = ignore_file(args)?;
    let policy = match &args.policy {
        Some(path) => {
            let loaded = stella_pipeline::load_policy_file(path)?;
            Some(match &ignore {
                Some((ignore_path, file)) => {
                    loaded.with_waivers(file.rules()).map_err(|issues| {
                        Failure::new(
                            Reason::InvalidPolicy,
                            format!(
                                "{} with the waivers of {}: {issues}",
                                path.display(),
                                ignore_path.display()
                            ),
                        )
                    })?
                }
                None => loaded,
            })
        }
        None => None,
    };
    let trust = match &args.vex_trust {
        Some(path) => {
            crate::vex::read_trust(path).map_err(|e| Failure::new(Reason::InvalidArguments, e))?
        }
        None => stella_vex::TrustConfig::default(),
    };
    let mut inputs = stella_pipeline::EvaluateInputs {
        trust,
        namespace: args.namespace.clone(),
        environment: args.environment.clone(),
        ..stella_pipeline::EvaluateInputs::now(policy)
    };
    if let Some(text) = &args.evaluated_at {
        use chrono::Timelike;
        let at = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
            Failure::new(
                Reason::InvalidArguments,
                format!("--evaluated-at {text:?} is not an RFC 3339 time ({e})"),
            )
        })?;
        let at = at.with_timezone(&chrono::Utc);
        inputs.evaluated_at = at.with_nanosecond(0).unwrap_or(at);
    }
    inputs.statements = vex_statements(&args.vex, args.quiet)?;
    Ok((inputs, ignore))
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
    selection: &stella_verdict::present::Selection,
    data: &stella_verdict::present::AdvisoryData,
    show_suppressed: bool,
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
    let mut sorted: Vec<_> = selection.reported.iter().collect();
    sorted.sort_by(|a, b| {
        let (a, b) = (a.finding, b.finding);
        b.severity
            .rank()
            .cmp(&a.severity.rank())
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.package.cmp(&b.package))
    });
    let open = selection.open().count();
    if data.unchecked() {
        out.push_str("\nVulnerabilities: not checked: no advisory data (stella feeds sync, or stella feeds import …)\n");
        return out;
    }
    out.push_str(&format!("\n{open} vulnerabilities"));
    if open < sorted.len() {
        out.push_str(&format!(", {} suppressed by VEX", sorted.len() - open));
    }
    if let Some(warning) = data.warning() {
        out.push_str(&format!(" ({warning})"));
    }
    out.push('\n');
    if !sorted.is_empty() {
        let mut rows = vec![[
            "SEVERITY".to_string(),
            "ID".into(),
            "PACKAGE".into(),
            "INSTALLED".into(),
            "FIXED".into(),
            "LAYER".into(),
            if show_suppressed { "VEX" } else { "" }.into(),
        ]];
        for reported in sorted {
            let f = reported.finding;
            let vex = reported
                .suppressed_by
                .and_then(|c| c.status)
                .map(|s| s.as_str())
                .unwrap_or_default();
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
                f.severity.to_string(),
                f.id.clone(),
                f.package.clone(),
                f.installed.clone(),
                fixed,
                layer,
                vex.into(),
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
