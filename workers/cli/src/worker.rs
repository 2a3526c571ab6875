//! `stella-worker`: the scan an operator's Job runs. It is `stella scan`'s pipeline (acquire →
//! analyze → record SBOMs, BOM-Index and catalog rows → match advisories → VEX → policy →
//! unknowns), non-interactive, plus the canonical inventory (for the REST API's diffs and
//! reports), the result under its pinned inputs (feed snapshot,
//! analyzer version, policy digest) and the run's row keyed by the Job's name. Every run ends
//! with one JSON line — on stdout and in the termination log — that says how it ended, which
//! the controller reads when the catalog cannot tell it; progress goes to stderr as plain lines.
//!
//! The flow: parse the flags, check them ([`Config::check`], pure), open the storage, scan,
//! record the run, report.

use crate::{ExitClass, Failure, Reason};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use stella_store::{RunRow, Store, StoreConfig};

/// Scratch space and the embedded default storage when `--data-dir` is not given.
pub const DEFAULT_DATA_DIR: &str = "/tmp/stella";

/// Where Kubernetes reads a container's termination message.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

/// Kubernetes keeps at most this many bytes of a termination message.
const TERMINATION_MESSAGE_BYTES: usize = 4096;

/// The Job's command line and environment (the controller builds exactly this).
#[derive(Debug, Parser)]
#[command(
    name = "stella-worker",
    version,
    about = "Scan one image for the Stella Ops operator: SBOMs and index to the object store, rows to the catalog, one JSON line saying how it ended"
)]
pub struct Args {
    /// The image: `registry/repo@sha256:…` or `registry/repo:tag`.
    #[arg(long, value_name = "REFERENCE")]
    pub image: String,
    /// The run's id (the Job's name): the catalog's run row is keyed by it.
    #[arg(long, value_name = "ID")]
    pub run_id: String,
    /// Platform to select from a multi-platform image.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH")]
    pub platform: String,
    /// Talk to the registry over plain HTTP.
    #[arg(long)]
    pub insecure_registry: bool,
    /// Registry credentials: a mounted `kubernetes.io/dockerconfigjson` file (repeatable).
    #[arg(long, value_name = "PATH")]
    pub registry_auth_file: Vec<PathBuf>,
    /// The policy to evaluate: a `Policy` object (as `kubectl get -o json` prints it) or its
    /// spec, YAML or JSON. `$STELLA_POLICY` may hold the same text instead.
    #[arg(long, value_name = "PATH")]
    pub policy_file: Option<PathBuf>,
    /// The namespace the image runs in, for the policy's `namespaces` matchers.
    #[arg(long)]
    pub namespace: Option<String>,
    /// The environment, for the policy's `environments` matchers.
    #[arg(long)]
    pub environment: Option<String>,
    /// A workload running the image, `<namespace>/<Kind>/<name>` (repeatable): the result's
    /// events go to each such namespace, naming its workloads.
    #[arg(long = "workload", value_name = "NS/KIND/NAME")]
    pub workloads: Vec<String>,
    /// Write the result's in-toto statements (SBOM, vulnerabilities, report, proof) for the
    /// operator's signer; the worker holds no key.
    #[arg(long)]
    pub attest: bool,
    /// Trust build-time SBOMs signed by these public keys (PEM blocks, one after another):
    /// a signed SBOM of the image found among its referrers is its inventory, and no layer is
    /// pulled (`Scan.spec.trustBuildTimeSboms`).
    #[arg(
        long,
        env = "STELLA_TRUSTED_SBOM_KEYS",
        value_name = "PEM",
        hide_env_values = true
    )]
    pub trusted_sbom_keys: Option<String>,
    /// Where the final JSON line is also written, when its directory exists.
    #[arg(long, default_value = DEFAULT_TERMINATION_LOG, value_name = "PATH")]
    pub termination_log: PathBuf,
    /// Storage: the catalog (PostgreSQL, or the embedded SQLite file under the data
    /// directory), the artifacts (S3, or `objects/` under it) and scratch space (verified
    /// blobs). The data directory (default `/tmp/stella`) is the only place the worker writes
    /// besides the termination log.
    #[command(flatten)]
    pub storage: stella_store::StorageArgs,
}

/// Where the policy comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    File(PathBuf),
    /// `$STELLA_POLICY`'s text.
    Text(String),
}

/// The checked configuration of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub image: String,
    pub run_id: String,
    pub platform: String,
    pub insecure_registry: bool,
    pub registry_auth_files: Vec<PathBuf>,
    pub policy: Option<PolicySource>,
    pub namespace: Option<String>,
    pub environment: Option<String>,
    /// `<namespace>/<Kind>/<name>` of the workloads running the image.
    pub workloads: Vec<String>,
    /// Write the statements for the signer.
    pub attest: bool,
    /// Keys whose build-time SBOMs are trusted.
    pub trusted_sbom_keys: Vec<stella_attest::PublicKey>,
    pub storage: StoreConfig,
}

/// Flags that cannot make a run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("--run-id must not be empty")]
    EmptyRunId,
    #[error(
        "--image {0:?} is not a registry reference (registry/repo:tag or registry/repo@sha256:…)"
    )]
    NotAReference(String),
    #[error("both --policy-file and $STELLA_POLICY name a policy: give one")]
    TwoPolicies,
    #[error("--trusted-sbom-keys ($STELLA_TRUSTED_SBOM_KEYS): {0}")]
    TrustedKey(String),
}

/// The `PUBLIC KEY` PEM blocks of `text`, one after another.
fn public_keys(text: &str) -> Result<Vec<stella_attest::PublicKey>, ConfigError> {
    const END: &str = "-----END PUBLIC KEY-----";
    let mut keys = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let end = rest
            .find(END)
            .ok_or_else(|| ConfigError::TrustedKey("a PEM block without its END line".into()))?
            + END.len();
        let key = stella_attest::PublicKey::from_pem(&rest[..end])
            .map_err(|e| ConfigError::TrustedKey(format!("key {}: {e}", keys.len() + 1)))?;
        keys.push(key);
        rest = rest[end..].trim_start();
    }
    if keys.len() > 8 {
        return Err(ConfigError::TrustedKey(format!(
            "{} keys, at most 8",
            keys.len()
        )));
    }
    Ok(keys)
}

impl Config {
    /// Checks the flags (and `$STELLA_POLICY`'s text, passed in): a registry reference, a run
    /// id, at most one policy source. Empty environment values count as unset.
    pub fn check(args: &Args, policy_env: Option<String>) -> Result<Config, ConfigError> {
        let set = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        if args.run_id.trim().is_empty() {
            return Err(ConfigError::EmptyRunId);
        }
        let image = args.image.trim();
        if stella_pipeline::ImageSource::reference(image).is_err() {
            return Err(ConfigError::NotAReference(image.to_string()));
        }
        let policy = match (
            &args.policy_file,
            policy_env.filter(|t| !t.trim().is_empty()),
        ) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoPolicies),
            (Some(path), None) => Some(PolicySource::File(path.clone())),
            (None, Some(text)) => Some(PolicySource::Text(text)),
            (None, None) => None,
        };
        Ok(Config {
            image: image.to_string(),
            run_id: args.run_id.clone(),
            platform: args.platform.clone(),
            insecure_registry: args.insecure_registry,
            registry_auth_files: args.registry_auth_file.clone(),
            policy,
            namespace: set(&args.namespace),
            environment: set(&args.environment),
            workloads: args.workloads.clone(),
            attest: args.attest,
            trusted_sbom_keys: match &args.trusted_sbom_keys {
                Some(text) => public_keys(text)?,
                None => Vec::new(),
            },
            storage: args.storage.config(|| PathBuf::from(DEFAULT_DATA_DIR)),
        })
    }
}

/// How a run ended: the final JSON line, the run row's outcome, the exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub reason: Reason,
    pub message: String,
    pub image_digest: Option<String>,
    /// `PASS`, `WARN` or `FAIL` when a policy was evaluated.
    pub verdict: Option<String>,
}

impl Report {
    fn failed(failure: Failure, image_digest: Option<String>) -> Report {
        Report {
            reason: failure.reason,
            message: failure.message,
            image_digest,
            verdict: None,
        }
    }

    /// `succeeded` or `failed`.
    pub fn outcome(&self) -> &'static str {
        if self.reason == Reason::Completed {
            "succeeded"
        } else {
            "failed"
        }
    }

    /// The final line: `{"outcome":"succeeded","reason":"Completed","imageDigest":"sha256:…",
    /// "verdict":"PASS"}` or `{"outcome":"failed","reason":"Unreachable","message":"…"}`,
    /// within Kubernetes' 4096 bytes of termination message (a long message is shortened).
    pub fn json_line(&self) -> String {
        let mut line = Line {
            outcome: self.outcome(),
            reason: self.reason.as_str(),
            image_digest: self.image_digest.as_deref(),
            verdict: self.verdict.as_deref(),
            message: None,
        };
        if self.reason == Reason::Completed {
            return line.to_string();
        }
        // Escapes can make the JSON longer than the text: shorten until it fits.
        let mut room = TERMINATION_MESSAGE_BYTES.saturating_sub(line.to_string().len() + 16);
        loop {
            line.message = Some(shorten(&self.message, room));
            let text = line.to_string();
            if text.len() <= TERMINATION_MESSAGE_BYTES || room == 0 {
                return text;
            }
            room /= 2;
        }
    }
}

/// The final line's fields, in this order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    outcome: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_digest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl std::fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `stella-worker`: runs the scan and reports; the process's exit code.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            // clap's message without its usage block, on one line.
            let message: Vec<String> = e
                .to_string()
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            let report = Report::failed(
                Failure::new(Reason::InvalidArguments, message.join(" ")),
                None,
            );
            let argv: Vec<String> = std::env::args().collect();
            emit(&report, &termination_log_of(&argv));
            return ExitCode::from(report.reason.exit_code());
        }
    };
    let report = match Config::check(&args, std::env::var("STELLA_POLICY").ok()) {
        Ok(config) => run(&config),
        Err(error) => {
            let message = error.to_string();
            log(&message);
            Report::failed(Failure::new(Reason::InvalidArguments, message), None)
        }
    };
    emit(&report, &args.termination_log);
    ExitCode::from(report.reason.exit_code())
}

/// The termination log a command line names even when the rest of it does not parse (the
/// last `--termination-log PATH` or `--termination-log=PATH`), else the default.
fn termination_log_of(argv: &[String]) -> PathBuf {
    let mut found = None;
    let mut words = argv.iter().skip(1);
    while let Some(word) = words.next() {
        if word == "--termination-log" {
            found = words.next().cloned();
        } else if let Some(path) = word.strip_prefix("--termination-log=") {
            found = Some(path.to_string());
        }
    }
    PathBuf::from(found.unwrap_or_else(|| DEFAULT_TERMINATION_LOG.into()))
}

fn log(line: &str) {
    eprintln!("stella-worker: {line}");
}

/// Prints the final line and writes it to the termination log when its directory exists.
fn emit(report: &Report, termination_log: &Path) {
    let line = report.json_line();
    println!("{line}");
    if termination_log.parent().is_some_and(Path::is_dir)
        && let Err(e) = std::fs::write(termination_log, &line)
    {
        log(&format!(
            "failed to write the termination log {}: {e}",
            termination_log.display()
        ));
    }
}

/// Runs one scan and records its run row when the catalog is reachable.
pub fn run(config: &Config) -> Report {
    log(&format!("run {}: scanning {}", config.run_id, config.image));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let failure = Failure::new(
                Reason::Internal,
                format!("failed to start the runtime: {e}"),
            );
            return Report::failed(failure, None);
        }
    };
    let store = match runtime.block_on(crate::open_configured(&config.storage)) {
        Ok(store) => store,
        Err(failure) => {
            log(&failure.message);
            return Report::failed(failure, None);
        }
    };
    let mut image_digest = None;
    let report = match scan_image(config, &runtime, &store, &mut image_digest) {
        Ok(report) => report,
        Err(failure) => {
            log(&failure.message);
            Report::failed(failure, image_digest)
        }
    };
    let row = RunRow {
        run_id: config.run_id.clone(),
        image_digest: report.image_digest.clone(),
        outcome: report.outcome().into(),
        reason: report.reason.as_str().into(),
        message: report.message.clone(),
        finished_at: now(),
    };
    match runtime.block_on(store.catalog.record_run(&row)) {
        Ok(()) => report,
        // A run nobody can read back has not succeeded.
        Err(e) => {
            let failure = Failure::new(
                Reason::StorageUnavailable,
                format!("failed to record run {}: {e}", config.run_id),
            );
            log(&failure.message);
            Report::failed(failure, report.image_digest)
        }
    }
}

/// With trusted keys: the image's signed build-time SBOM among its referrers, adopted as its
/// inventory (nothing pulled, nothing analysed); `None` when there is none, none verifies, or
/// the registry cannot list them (said in the log: the layers are analysed instead).
fn trusted_sbom(
    config: &Config,
    source: &stella_pipeline::ImageSource,
    image: &stella_acquire::Image,
    runtime: &tokio::runtime::Runtime,
    store: &Store,
) -> Result<Option<stella_sbom::Inventory>, Failure> {
    let stella_pipeline::ImageSource::Registry(reference) = source else {
        return Ok(None);
    };
    if config.trusted_sbom_keys.is_empty() {
        return Ok(None);
    }
    let credentials = stella_acquire::Credentials::load(&config.registry_auth_files)
        .map_err(|e| Failure::new(Reason::InvalidArguments, e.to_string()))?;
    let client = stella_acquire::RegistryClient::new(credentials, config.insecure_registry)
        .map_err(|e| Failure::new(Reason::Internal, e.to_string()))?;
    let search = match runtime.block_on(stella_pipeline::buildtime::find_trusted(
        &client,
        reference,
        image,
        &config.trusted_sbom_keys,
    )) {
        Ok(search) => search,
        Err(e) => {
            log(&format!(
                "build-time SBOMs: cannot list the referrers ({e}): analysing the layers"
            ));
            return Ok(None);
        }
    };
    for rejected in &search.rejected {
        log(&format!("build-time SBOM not trusted: {rejected}"));
    }
    let Some(trusted) = search.trusted else {
        log("no trusted build-time SBOM: analysing the layers");
        return Ok(None);
    };
    log(&format!(
        "inventory from the build-time SBOM {} ({}, {} components, signed by key {}): no layer pulled",
        trusted.envelope_digest,
        trusted.imported.format,
        trusted.imported.inventory.components.len(),
        &trusted.key_id[..12.min(trusted.key_id.len())]
    ));
    Ok(Some(runtime.block_on(
        stella_pipeline::buildtime::adopt(store, image, trusted),
    )?))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The pipeline for one registry image: acquire and analyze (SBOMs, index and inventory to
/// the object store), evaluate, record the unknowns and the result. Sets `image_digest` as
/// soon as the image is known, so a later failure still names it.
fn scan_image(
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    image_digest: &mut Option<String>,
) -> Result<Report, Failure> {
    let policy = match &config.policy {
        Some(PolicySource::File(path)) => Some(stella_pipeline::load_policy_file(path)?),
        Some(PolicySource::Text(text)) => {
            Some(stella_pipeline::load_policy_text("$STELLA_POLICY", text)?)
        }
        None => None,
    };
    if let Some(policy) = &policy {
        log(&format!("policy {}", policy.digest));
    }
    let source = stella_pipeline::ImageSource::reference(&config.image)?;
    let platform = config
        .platform
        .parse()
        .map_err(|e: stella_acquire::Error| {
            Failure::new(Reason::InvalidArguments, e.to_string())
        })?;
    let acquire = stella_pipeline::AcquireOptions {
        platform,
        registry_auth_files: config.registry_auth_files.clone(),
        insecure_registry: config.insecure_registry,
        ..stella_pipeline::AcquireOptions::new(&config.storage.data_dir)
    };
    let image = stella_pipeline::acquire(&source, &config.image, &acquire, runtime.handle())?;
    let inventory = match trusted_sbom(config, &source, &image, runtime, store)? {
        Some(inventory) => inventory,
        None => stella_pipeline::analyze(
            store,
            &image,
            &config.image,
            &stella_pipeline::AnalyzeOptions::default(),
            runtime.handle(),
        )?,
    };
    let digest = inventory.image.digest.clone();
    *image_digest = Some(digest.clone());
    log(&format!(
        "{digest}: {} components in {} layers, SBOMs, index and inventory stored",
        inventory.components.len(),
        inventory.image.layers.len()
    ));
    for error in &inventory.errors {
        log(&format!("warning: {error}"));
    }
    let inputs = stella_pipeline::EvaluateInputs {
        namespace: config.namespace.clone(),
        environment: config.environment.clone(),
        ..stella_pipeline::EvaluateInputs::now(policy)
    };
    let at = inputs.evaluated_at;
    let evaluation = runtime.block_on(stella_pipeline::evaluate(store, inventory, inputs))?;
    log(&format!(
        "{} findings against feed snapshot {}",
        evaluation.findings.len(),
        evaluation.feed_snapshot
    ));
    runtime.block_on(stella_pipeline::record(store, &evaluation))?;
    // The statements before the result: the operator signs them when it sees the result.
    if config.attest {
        let statements =
            runtime.block_on(stella_pipeline::attest::prepare(store, &evaluation, at))?;
        runtime.block_on(stella_pipeline::attest::store_unsigned(
            store,
            &evaluation.inventory.image.digest,
            &statements,
        ))?;
        log(&format!(
            "{} statements written for the signer",
            statements.len()
        ));
    }
    // The result, and the `scanner.report.ready` event that reports it, in one transaction.
    let row = runtime.block_on(stella_pipeline::record_result_reporting(
        store,
        &evaluation,
        &config.image,
        &stella_pipeline::EventContext::per_namespace(
            "/stella-ops/worker",
            config.namespace.as_deref().unwrap_or_default(),
            "",
            &config.workloads,
        ),
    ))?;
    if let Some(report) = evaluation.report() {
        log(&format!(
            "verdict {} ({} fail, {} warn, {} quieted by VEX)",
            report.verdict, report.counts.fail, report.counts.warn, report.counts.vex_suppressed
        ));
    }
    let message = format!(
        "{} components; findings after VEX: {} critical, {} high, {} medium, {} low, {} none, {} unknown; {} suppressed by VEX",
        row.components,
        row.critical,
        row.high,
        row.medium,
        row.low,
        row.none,
        row.unknown,
        row.suppressed
    );
    log(&message);
    Ok(Report {
        reason: Reason::Completed,
        message,
        image_digest: Some(digest),
        verdict: row.verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec![
            "stella-worker",
            "--image",
            "registry.example/app@sha256:0123456789012345678901234567890123456789012345678901234567890123",
            "--run-id",
            "scan-app-1",
        ];
        argv.extend(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn flags_become_a_checked_config() {
        let config = Config::check(
            &args(&[
                "--policy-file",
                "/etc/stella/policy.json",
                "--namespace",
                "team-a",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            config.policy,
            Some(PolicySource::File("/etc/stella/policy.json".into()))
        );
        assert_eq!(config.namespace.as_deref(), Some("team-a"));
        assert_eq!(config.storage.data_dir, PathBuf::from("/tmp/stella"));
        let from_env = Config::check(&args(&[]), Some("rules: []".into())).unwrap();
        assert_eq!(
            from_env.policy,
            Some(PolicySource::Text("rules: []".into()))
        );
        // An empty variable is no policy.
        assert_eq!(
            Config::check(&args(&[]), Some(" ".into())).unwrap().policy,
            None
        );
    }

    #[test]
    fn bad_flags_are_refused_with_the_reason() {
        let both = Config::check(
            &args(&["--policy-file", "p.yaml"]),
            Some("rules: []".into()),
        );
        assert!(both.unwrap_err().to_string().contains("give one"));
        let mut local = args(&[]);
        local.image = "/var/lib/image.tar".into();
        assert!(
            Config::check(&local, None)
                .unwrap_err()
                .to_string()
                .contains("not a registry reference")
        );
        let mut blank = args(&[]);
        blank.run_id = " ".into();
        assert!(
            Config::check(&blank, None)
                .unwrap_err()
                .to_string()
                .contains("--run-id")
        );
    }

    #[test]
    fn the_final_line_is_one_json_object_within_kubernetes_limits() {
        let ok = Report {
            reason: Reason::Completed,
            message: "120 components".into(),
            image_digest: Some("sha256:ab".into()),
            verdict: Some("FAIL".into()),
        };
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&ok.json_line()).unwrap(),
            serde_json::json!({"outcome": "succeeded", "reason": "Completed",
                "imageDigest": "sha256:ab", "verdict": "FAIL"})
        );
        for message in ["x".repeat(10_000), "\"\u{1}é".repeat(5_000)] {
            let failed = Report {
                reason: Reason::Unreachable,
                message: message.clone(),
                image_digest: None,
                verdict: None,
            };
            let line = failed.json_line();
            assert!(line.len() <= 4096 && !line.contains('\n'), "{}", line.len());
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(value["outcome"], "failed");
            assert_eq!(value["reason"], "Unreachable");
            let kept = value["message"].as_str().unwrap();
            assert!(kept.ends_with('…') && message.starts_with(kept.trim_end_matches('…')));
        }
    }

    #[test]
    fn the_termination_log_is_found_in_a_command_line_that_does_not_parse() {
        let argv =
            |words: &[&str]| -> Vec<String> { words.iter().map(|w| w.to_string()).collect() };
        assert_eq!(
            termination_log_of(&argv(&["w", "--bogus", "--termination-log", "/t/log"])),
            PathBuf::from("/t/log")
        );
        assert_eq!(
            termination_log_of(&argv(&["w", "--termination-log=/t/x"])),
            PathBuf::from("/t/x")
        );
        assert_eq!(
            termination_log_of(&argv(&["w", "--image"])),
            PathBuf::from(DEFAULT_TERMINATION_LOG)
        );
    }

    #[test]
    fn reasons_have_the_cli_exit_classes() {
        for (reason, code) in [
            (Reason::Completed, 0),
            (Reason::Unreachable, 3),
            (Reason::Unauthorized, 4),
            (Reason::CorruptImage, 5),
            (Reason::InvalidPolicy, 2),
            (Reason::InvalidArguments, 2),
            (Reason::ImageNotFound, 2),
            (Reason::StorageUnavailable, 1),
            (Reason::Internal, 1),
        ] {
            assert_eq!(reason.exit_code(), code, "{reason:?}");
        }
    }
}
