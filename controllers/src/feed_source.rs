//! The FeedSource controller (leader only): syncs each feed on its cadence into the catalog.
//!
//! A sync downloads the source (conditionally: `If-None-Match` / `If-Modified-Since` from the
//! last `200`, so an unchanged feed costs one `304`), reads it with [`stella_feeds`] — the
//! reader `stella feeds import` uses — and stores it as the feed's **whole truth**
//! ([`stella_store::AdvisoryDb::sync_feed`]): what upstream removed leaves the catalog, a
//! withdrawn record is kept as withdrawn (matching skips it), and the delta of the combined
//! snapshot is logged in the same transaction. The Scan controller, polling the snapshot,
//! re-evaluates only the images whose match keys the delta touches.
//!
//! A source that answers garbage, breaks off, answers 4xx, redirects off its host or sends
//! more than the cap leaves the previous snapshot in force: the status says why (`Stalled`
//! for what waits for an edit, `Ready=False` with retries and backoff for what may pass), and
//! a Warning Event is recorded. A sync that reads no valid record never replaces a feed.
//!
//! dereference (the auth Secret, the last validators) → validate (pure) → fetch and read →
//! apply (the catalog) → build (pure: the status) → update_status (server-side apply).
//! A FeedSource that is deleted has its records removed by a sweep ([`sweep`]).

use crate::conditions::{self, Desired, SYNCED, Status};
use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stella_crds::feed_source::v1alpha1::{
    FeedDeltaSummary, FeedFormat, FeedSource, FeedSourceSpec, FeedSourceStatus, ProviderTrust,
    TrustTier,
};
pub use stella_feeds::http::Limits;
use stella_feeds::http::{self, Fetched, Validators};
use stella_store::{AdvisoryRow, FeedState, FeedSync, Store};

/// The field manager of the status.
pub const MANAGER: &str = "stella-operator";
/// `Reconciling` (kstatus): a sync is under way.
pub const RECONCILING: &str = "Reconciling";
/// `Stalled` (kstatus): the source is unusable as written; it waits for an edit (or for the
/// source to come back: it is still tried on its cadence).
pub const STALLED: &str = "Stalled";
/// The cadence of a `url` feed without one.
pub const DEFAULT_CADENCE: Duration = Duration::from_secs(6 * 3600);
/// The shortest cadence honoured (a typo like `1s` must not hammer an upstream).
pub const MIN_CADENCE: Duration = Duration::from_secs(60);
/// The prefix of a FeedSource's feed name in the catalog (`feedsource/<name>`).
pub const FEED_PREFIX: &str = "feedsource/";
/// The annotation that asks for a sync now (`kubectl annotate feedsource osv
/// stella-ops.org/sync-now=$(date +%s) --overwrite`): a value the status has not honoured yet.
pub const SYNC_NOW: &str = "stella-ops.org/sync-now";
/// Rejections listed in the status (the CRD's bound).
const MAX_REJECTIONS: usize = 10;

/// What the FeedSource controller needs.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub reporter: Reporter,
    /// The operator's namespace: where a cluster-scoped FeedSource's Secret is read.
    pub namespace: String,
    pub limits: Limits,
    /// The directory `file://` offline kits must be in (the operator's mounted kits); `None`:
    /// `file://` kits are refused.
    pub kit_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Errors that stop a reconcile (a source's own problems are its status, not errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write the FeedSource status: {0}")]
    UpdateStatus(#[source] kube::Error),
    #[error("failed to store the feed: {0}")]
    Store(#[source] stella_store::Error),
}

/// The feed name in the catalog of the FeedSource `name`.
pub fn feed_name(name: &str) -> String {
    format!("{FEED_PREFIX}{name}")
}

/// A FeedSource as a sync uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    /// What is downloaded.
    pub url: String,
    /// The registry reference of an `oci://` kit.
    pub oci: Option<OciKit>,
    /// The path of a `file://` kit (checked against the kit directory when read).
    pub file: Option<std::path::PathBuf>,
    /// The pinned manifest digest of an offline kit (imported once).
    pub kit_digest: Option<String>,
    pub cadence: Duration,
    pub format: FeedFormat,
    pub ecosystems: Vec<String>,
    /// A VEX feed's trust weight (`spec.trust`, its tier's weight when it names none).
    pub weight: Option<f64>,
}

/// An offline kit stored as an OCI artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciKit {
    /// `registry/repository@sha256:…` (the artifact's manifest digest).
    pub reference: stella_acquire::Reference,
    /// Plain HTTP to the registry.
    pub insecure: bool,
}

/// Fetches the kit zip of an OCI artifact: its manifest by the pinned digest (verified), then
/// its one layer (verified against the manifest's digest, at most `max_bytes`).
pub async fn fetch_oci(kit: &OciKit, max_bytes: u64) -> Result<Vec<u8>, Problem> {
    use stella_acquire::Error as E;
    let url = format!(
        "oci://{}/{}",
        kit.reference.registry, kit.reference.repository
    );
    let problem = |e: E| {
        let (reason, transient) = match &e {
            E::Unreachable { .. } => ("Unreachable", true),
            E::Registry { status, .. } if *status >= 500 || *status == 429 => ("HTTPError", true),
            E::DigestMismatch { .. } => ("DigestMismatch", false),
            E::SizeMismatch { .. } => ("TooLarge", false),
            E::Auth { .. } => ("Unauthorized", false),
            _ => ("HTTPError", false),
        };
        Problem {
            reason,
            message: format!("{url}: {e}"),
            transient,
        }
    };
    let client =
        stella_acquire::RegistryClient::new(Default::default(), kit.insecure).map_err(problem)?;
    let digest = kit
        .reference
        .digest
        .as_ref()
        .map(|d| d.to_string())
        .unwrap_or_default();
    let (bytes, _, _) = client
        .manifest(&kit.reference, &digest)
        .await
        .map_err(problem)?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Problem::stalled(
            "NotAKit",
            format!("{url}: the artifact's manifest is not JSON: {e}"),
        )
    })?;
    let layers = manifest
        .get("layers")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    let [layer] = layers.as_slice() else {
        return Err(Problem::stalled(
            "NotAKit",
            format!(
                "{url}: an offline kit artifact has exactly one layer (the kit zip), this one has {}",
                layers.len()
            ),
        ));
    };
    let layer_digest = layer
        .get("digest")
        .and_then(|d| d.as_str())
        .and_then(|d| stella_acquire::Digest::parse(d).ok())
        .ok_or_else(|| {
            Problem::stalled("NotAKit", format!("{url}: the layer has no sha256 digest"))
        })?;
    let dir = tempfile::tempdir().map_err(|e| Problem {
        reason: "Internal",
        message: format!("scratch space: {e}"),
        transient: true,
    })?;
    let path = client
        .download(&kit.reference, &layer_digest, max_bytes, dir.path())
        .await
        .map_err(problem)?;
    std::fs::read(&path).map_err(|e| Problem {
        reason: "Internal",
        message: format!("{}: {e}", path.display()),
        transient: true,
    })
}

/// Reads a `file://` kit: the path must resolve (symlinks followed, as Secret and ConfigMap
/// volumes use them) inside `dir`, be a regular file, and hold at most `max_bytes`.
pub fn read_kit_file(
    path: &std::path::Path,
    dir: Option<&std::path::Path>,
    max_bytes: u64,
) -> Result<Vec<u8>, Problem> {
    use std::io::Read;
    let shown = path.display();
    let Some(dir) = dir else {
        return Err(Problem::stalled(
            "InvalidSpec",
            format!("{shown}: this operator reads no file:// kits (no --offline-kit-dir)"),
        ));
    };
    let unreadable = |e: std::io::Error| Problem {
        reason: "Unreadable",
        message: format!("{shown}: {e}"),
        // A volume may not be mounted yet.
        transient: e.kind() == std::io::ErrorKind::NotFound,
    };
    let root = dir.canonicalize().map_err(unreadable)?;
    let resolved = path.canonicalize().map_err(unreadable)?;
    if !resolved.starts_with(&root) {
        return Err(Problem::stalled(
            "InvalidSpec",
            format!(
                "{shown} resolves to {}, outside the offline kit directory {}",
                resolved.display(),
                root.display()
            ),
        ));
    }
    let file = std::fs::File::open(&resolved).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(Problem::stalled(
            "InvalidSpec",
            format!("{shown} is not a file"),
        ));
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Problem::stalled(
            "TooLarge",
            format!("{shown} is larger than {max_bytes} bytes"),
        ));
    }
    Ok(bytes)
}

/// Why a FeedSource cannot be synced as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
    /// Whether trying again later may succeed without an edit.
    pub transient: bool,
}

impl Problem {
    fn stalled(reason: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            reason,
            message: message.into(),
            transient: false,
        }
    }
}

/// Validates a FeedSource's spec (what the API server's schema cannot: Kubernetes before 1.25
/// ignores the CEL rules).
pub fn validate(spec: &FeedSourceSpec) -> Result<Validated, Problem> {
    let (url, kit_digest, insecure) = match (&spec.url, &spec.offline_kit) {
        (Some(url), None) => (url.clone(), None, false),
        (None, Some(kit)) => (
            kit.url.clone(),
            Some(kit.manifest_digest.clone()),
            kit.insecure_registry,
        ),
        _ => {
            return Err(Problem::stalled(
                "InvalidSpec",
                "exactly one of url and offlineKit is required",
            ));
        }
    };
    let oci = match url.strip_prefix("oci://") {
        Some(_) if kit_digest.is_none() => {
            return Err(Problem::stalled(
                "InvalidSpec",
                "oci:// sources are offline kits: set offlineKit, not url",
            ));
        }
        Some(reference) => {
            let parsed = stella_acquire::Reference::parse(reference).map_err(|e| {
                Problem::stalled("InvalidSpec", format!("offlineKit.url {url:?}: {e}"))
            })?;
            if parsed.digest.is_none() {
                return Err(Problem::stalled(
                    "InvalidSpec",
                    format!(
                        "offlineKit.url {url:?}: pin the artifact by digest (oci://registry/repository@sha256:…)"
                    ),
                ));
            }
            Some(OciKit {
                reference: parsed,
                insecure,
            })
        }
        None => None,
    };
    let file = match url.strip_prefix("file://") {
        Some(_) if kit_digest.is_none() => {
            return Err(Problem::stalled(
                "InvalidSpec",
                "file:// sources are offline kits: set offlineKit, not url",
            ));
        }
        Some(path) if !path.starts_with('/') => {
            return Err(Problem::stalled(
                "InvalidSpec",
                format!("offlineKit.url {url:?}: file:// takes an absolute path"),
            ));
        }
        Some(path) => Some(std::path::PathBuf::from(path)),
        None => None,
    };
    if oci.is_none()
        && file.is_none()
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(Problem::stalled(
            "InvalidSpec",
            format!("{url}: only http(s) URLs are fetched"),
        ));
    }
    if let Some(digest) = &kit_digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Problem::stalled(
                "InvalidSpec",
                format!("offlineKit.manifestDigest {digest:?} is not sha256:<64 hex>"),
            ));
        }
    }
    let cadence = match (&spec.cadence, &kit_digest) {
        (Some(_), Some(_)) => {
            return Err(Problem::stalled(
                "InvalidSpec",
                "an offline kit is imported once; cadence applies to url feeds",
            ));
        }
        (Some(text), None) => parse_cadence(text)
            .map_err(|e| Problem::stalled("InvalidCadence", format!("cadence {text:?}: {e}")))?,
        (None, _) => DEFAULT_CADENCE,
    };
    let weight = match &spec.trust {
        None => None,
        Some(_) if !is_vex(spec.format) => {
            return Err(Problem::stalled(
                "InvalidSpec",
                "trust weighs VEX statements: it applies to openvex, csaf and cyclonedx-vex feeds",
            ));
        }
        Some(trust) => Some(trust_weight(trust).ok_or_else(|| {
            Problem::stalled(
                "InvalidSpec",
                format!("trust.weight {:?} is not in [0, 1]", trust.weight),
            )
        })?),
    };
    Ok(Validated {
        url,
        oci,
        file,
        kit_digest,
        cadence: cadence.max(MIN_CADENCE),
        format: spec.format,
        ecosystems: spec.ecosystems.clone(),
        weight,
    })
}

fn is_vex(format: FeedFormat) -> bool {
    matches!(
        format,
        FeedFormat::Openvex | FeedFormat::Csaf | FeedFormat::CyclonedxVex
    )
}

/// The weight a VEX feed's trust gives its statements: its own, else its tier's category
/// weight in the consensus defaults (vendor 1.0, distro 0.85, the others 0.5). `None` when
/// the weight is not a number in [0, 1].
pub fn trust_weight(trust: &ProviderTrust) -> Option<f64> {
    use stella_vex::TrustCategory as C;
    let weight = trust.weight.unwrap_or_else(|| {
        let category = match trust.tier {
            TrustTier::Vendor => C::Vendor,
            TrustTier::Distro => C::Distribution,
            TrustTier::Platform | TrustTier::Hub | TrustTier::Attestation => C::ThirdParty,
        };
        stella_vex::TrustConfig::default().categories[&category]
    });
    (weight.is_finite() && (0.0..=1.0).contains(&weight)).then_some(weight)
}

/// A cadence: Go-style (`6h`, `1h30m`, `90s`, `1d`) or ISO 8601 (`PT6H`, `P1D`, `P1W`).
pub fn parse_cadence(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (iso, body) = match text.strip_prefix('P') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if body.is_empty() {
        return Err("empty".into());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut in_time = !iso;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if iso && c == 'T' && number.is_empty() {
            in_time = true;
            continue;
        }
        let mut unit = c.to_string();
        if !iso && c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap_or('s'));
        }
        let n: u64 = number
            .parse()
            .map_err(|_| format!("a number is missing before {unit:?}"))?;
        number.clear();
        let seconds = match (iso, in_time, unit.as_str()) {
            (false, _, "ms") => 0,
            (false, _, "s") | (true, true, "S") => 1,
            (false, _, "m") | (true, true, "M") => 60,
            (false, _, "h") | (true, true, "H") => 3600,
            (false, _, "d") | (true, false, "D") => 86_400,
            (true, false, "W") => 7 * 86_400,
            _ => return Err(format!("unknown unit {unit:?}")),
        };
        total = n
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or("too long")?;
    }
    if !number.is_empty() {
        return Err(format!("{number} has no unit"));
    }
    if total == 0 {
        return Err("zero".into());
    }
    Ok(Duration::from_secs(total))
}

/// What one sync came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored: the sync, and what was read.
    Synced {
        sync: Box<FeedSync>,
        records: u64,
        rejected: Vec<(String, String)>,
    },
    /// `304 Not Modified`, or a kit already imported: nothing to do.
    Unchanged,
    /// `spec.suspend`.
    Suspended,
    /// Not synced; the previous snapshot stays in force.
    Failed(Problem),
}

/// The status `outcome` leaves, its conditions merged into `current`'s.
pub fn build(
    current: Option<&FeedSourceStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    next: Option<&Time>,
    now: &Time,
) -> FeedSourceStatus {
    let old = current.cloned().unwrap_or_default();
    let mut status = FeedSourceStatus {
        conditions: vec![],
        observed_generation: generation,
        next_sync_time: next.cloned(),
        ..old.clone()
    };
    let wanted: Vec<Desired> = match outcome {
        Outcome::Synced {
            sync,
            records,
            rejected,
        } => {
            status.last_sync_time = Some(now.clone());
            status.last_successful_sync_time = Some(now.clone());
            status.snapshot_hash = Some(sync.feed_snapshot.clone());
            status.combined_snapshot = Some(sync.snapshot.clone());
            status.records = *records;
            status.rejected = rejected.len() as u64;
            status.rejections = rejected
                .iter()
                .take(MAX_REJECTIONS)
                .map(|(origin, reason)| {
                    crate::events::truncate(&format!("{origin}: {reason}"), 1024)
                })
                .collect();
            status.failures = 0;
            if let Some(delta) = &sync.delta {
                status.last_delta = Some(FeedDeltaSummary {
                    seq: delta.seq,
                    added: delta.body.added.len() as u64,
                    removed: delta.body.removed.len() as u64,
                    changed: delta.body.changed.len() as u64,
                    keys: delta.body.keys.len() as u64,
                    vex_products: delta.body.vex.len() as u64,
                });
            }
            let message = synced_message(*records, rejected.len(), sync);
            ok_conditions("Synced", message)
        }
        Outcome::Unchanged => {
            status.last_sync_time = Some(now.clone());
            status.last_successful_sync_time = Some(now.clone());
            status.failures = 0;
            let message = format!(
                "unchanged upstream; {} records, snapshot {}",
                status.records,
                status.snapshot_hash.as_deref().unwrap_or("none yet")
            );
            ok_conditions("Unchanged", message)
        }
        Outcome::Suspended => {
            status.next_sync_time = None;
            vec![
                conditions::ready("Suspended", "spec.suspend: not synced; the records stay"),
                conditions::condition(RECONCILING, Status::False, "Suspended", "suspended"),
                conditions::condition(STALLED, Status::False, "Suspended", "suspended"),
            ]
        }
        Outcome::Failed(problem) => {
            status.last_sync_time = Some(now.clone());
            status.failures = old.failures.saturating_add(1);
            let kept = match &old.snapshot_hash {
                Some(hash) => format!("; the previous snapshot {hash} stays in force"),
                None => String::new(),
            };
            let message = crate::events::truncate(&format!("{}{kept}", problem.message), 1024);
            let stalled = if problem.transient {
                Status::False
            } else {
                Status::True
            };
            vec![
                conditions::not_ready(problem.reason, message.clone()),
                conditions::condition(SYNCED, Status::False, problem.reason, message.clone()),
                conditions::condition(RECONCILING, Status::False, problem.reason, "not syncing"),
                conditions::condition(STALLED, stalled, problem.reason, message),
            ]
        }
    };
    status.conditions = conditions::merge(&old.conditions, &wanted, generation, now);
    status
}

fn ok_conditions(reason: &'static str, message: String) -> Vec<Desired> {
    vec![
        conditions::ready(reason, message.clone()),
        conditions::condition(SYNCED, Status::True, reason, message),
        conditions::condition(RECONCILING, Status::False, reason, "not syncing"),
        conditions::condition(STALLED, Status::False, reason, "the source is usable"),
    ]
}

fn synced_message(records: u64, rejected: usize, sync: &FeedSync) -> String {
    let change = match &sync.delta {
        Some(d) if !d.body.vex.is_empty() => {
            format!("VEX changed for {} products", d.body.vex.len())
        }
        Some(d) if d.body.signals && d.body.added.is_empty() && d.body.removed.is_empty() => {
            "changed; any image may be touched".into()
        }
        Some(d) => format!(
            "{} added, {} removed, {} changed",
            d.body.added.len(),
            d.body.removed.len(),
            d.body.changed.len()
        ),
        None => "no change".into(),
    };
    format!(
        "{records} records ({rejected} rejected); {change}; snapshot {}",
        sync.snapshot
    )
}

/// The `Reconciling=True` status a sync starts with.
pub fn syncing(
    current: Option<&FeedSourceStatus>,
    generation: Option<i64>,
    now: &Time,
) -> FeedSourceStatus {
    let old = current.cloned().unwrap_or_default();
    let wanted = [conditions::condition(
        RECONCILING,
        Status::True,
        "Syncing",
        "downloading and reading the source",
    )];
    // `merge` keeps the other types as they are.
    let merged = conditions::merge(&old.conditions, &wanted, generation, now);
    FeedSourceStatus {
        conditions: merged,
        ..old
    }
}

/// When the next sync is due after `outcome`: the cadence after a success, a backoff that
/// doubles per failure (30 s, 1 min, … up to the cadence) after a transient failure, the
/// cadence after a stall (the source is tried again: it may come back); never for a kit once
/// imported or a suspended feed.
pub fn next_sync(
    outcome: &Outcome,
    validated: Option<&Validated>,
    failures: u32,
) -> Option<Duration> {
    let validated = validated?;
    match outcome {
        Outcome::Suspended => None,
        Outcome::Synced { .. } | Outcome::Unchanged if validated.kit_digest.is_some() => None,
        Outcome::Synced { .. } | Outcome::Unchanged => Some(validated.cadence),
        Outcome::Failed(p) if p.transient => {
            let backoff = Duration::from_secs(30).saturating_mul(1 << failures.min(16));
            Some(backoff.min(validated.cadence))
        }
        Outcome::Failed(_) => Some(validated.cadence),
    }
}

/// Reads a downloaded body in `format`: advisories (kept when they name one of `ecosystems`,
/// or all when it is empty) or rejections. KEV, EPSS and VEX formats are not advisories:
/// [`sync`] stores them its own way.
pub fn read_advisories(
    origin: &str,
    bytes: &[u8],
    ecosystems: &[String],
) -> Result<stella_feeds::Records, Problem> {
    let mut records = stella_feeds::Records::default();
    stella_feeds::read_document(origin, bytes, &mut records)
        .map_err(|e| Problem::stalled("Unreadable", format!("{origin}: {e}")))?;
    if !ecosystems.is_empty() {
        for advisory in &mut records.advisories {
            advisory
                .affected
                .retain(|a| ecosystems.contains(&a.ecosystem));
        }
        records
            .advisories
            .retain(|a| !a.affected.is_empty() || a.withdrawn.is_some());
    }
    Ok(records)
}

/// The name a download is read as: the URL's last path segment (its extension tells YAML,
/// `.zip`, `.csv.gz`).
fn origin_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    if path.ends_with('/') {
        format!("{path}feed.json")
    } else {
        path.to_string()
    }
}

/// One sync: download, read, store. Never replaces a feed with nothing read.
pub async fn sync(
    ctx: &Context,
    feed: &str,
    validated: &Validated,
    bearer: Option<&str>,
    last: Option<&FeedState>,
) -> Result<Outcome, Error> {
    let validators = match (last, &validated.kit_digest) {
        (Some(state), None) => Validators {
            etag: state.etag.clone(),
            last_modified: state.last_modified.clone(),
        },
        _ => Validators::default(),
    };
    let started = Instant::now();
    if let Some(path) = &validated.file {
        let read = read_kit_file(path, ctx.kit_dir.as_deref(), ctx.limits.max_bytes);
        ctx.metrics.feed_sync(started.elapsed());
        return match read {
            Ok(bytes) => store_fetched(ctx, feed, validated, bytes, Validators::default()).await,
            Err(problem) => Ok(Outcome::Failed(problem)),
        };
    }
    if let Some(kit) = &validated.oci {
        let fetched = fetch_oci(kit, ctx.limits.max_bytes).await;
        ctx.metrics.feed_sync(started.elapsed());
        return match fetched {
            Ok(bytes) => store_fetched(ctx, feed, validated, bytes, Validators::default()).await,
            Err(problem) => Ok(Outcome::Failed(problem)),
        };
    }
    let fetched = http::get(&validated.url, &validators, bearer, &ctx.limits).await;
    ctx.metrics.feed_sync(started.elapsed());
    let (bytes, validators) = match fetched {
        Ok(Fetched::NotModified) => return Ok(Outcome::Unchanged),
        Ok(Fetched::Body { bytes, validators }) => (bytes, validators),
        Err(e) => {
            let reason = match &e {
                http::Error::TooLarge { .. } => "TooLarge",
                http::Error::Redirect(_) => "RedirectRefused",
                http::Error::Status { .. } => "HTTPError",
                http::Error::Truncated(_) => "Truncated",
                _ => "Unreachable",
            };
            return Ok(Outcome::Failed(Problem {
                reason,
                message: format!("{}: {e}", validated.url),
                transient: e.is_transient(),
            }));
        }
    };
    store_fetched(ctx, feed, validated, bytes, validators).await
}

/// What a sync does with the downloaded body: the kit's digest checked, then the records
/// stored by format, and the feed's state.
async fn store_fetched(
    ctx: &Context,
    feed: &str,
    validated: &Validated,
    bytes: Vec<u8>,
    validators: Validators,
) -> Result<Outcome, Error> {
    if let Some(pinned) = &validated.kit_digest {
        match stella_feeds::kit_manifest_digest(&bytes) {
            Ok(digest) if &digest == pinned => {}
            Ok(digest) => {
                return Ok(Outcome::Failed(Problem::stalled(
                    "DigestMismatch",
                    format!(
                        "the kit's manifest is {digest}, offlineKit.manifestDigest pins {pinned}"
                    ),
                )));
            }
            Err(e) => return Ok(Outcome::Failed(Problem::stalled("Unreadable", e))),
        }
    }
    let origin = origin_of(&validated.url);
    let state = |snapshot: String, records: u64, rejected: u64| FeedState {
        feed: feed.to_string(),
        snapshot,
        records,
        rejected,
        etag: validators.etag.clone(),
        last_modified: validators.last_modified.clone(),
        synced_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let outcome = match validated.format {
        FeedFormat::Kev | FeedFormat::Epss => {
            sync_signals(ctx, &origin, &bytes, validated.format).await?
        }
        FeedFormat::Openvex | FeedFormat::Csaf | FeedFormat::CyclonedxVex => {
            sync_vex(ctx, feed, &origin, &bytes, validated.weight).await?
        }
        _ => {
            let records = match read_advisories(&origin, &bytes, &validated.ecosystems) {
                Ok(r) => r,
                Err(problem) => return Ok(Outcome::Failed(problem)),
            };
            if records.advisories.is_empty() {
                let first = records
                    .rejected
                    .first()
                    .map(|(o, r)| format!(": {o}: {r}"))
                    .unwrap_or_default();
                return Ok(Outcome::Failed(Problem::stalled(
                    "NoValidRecords",
                    format!(
                        "{} held no record that could be read ({} rejected){first}",
                        validated.url,
                        records.rejected.len()
                    ),
                )));
            }
            let prepared = stella_store::prepare_advisories(&records.advisories);
            let rows: Vec<AdvisoryRow> =
                stella_store::advisory_rows(&records.advisories, &prepared);
            let sync = ctx
                .store
                .advisories
                .sync_feed(feed, &rows)
                .await
                .map_err(Error::Store)?;
            Outcome::Synced {
                sync: Box::new(sync),
                records: records.advisories.len() as u64,
                rejected: records.rejected,
            }
        }
    };
    if let Outcome::Synced {
        sync,
        records,
        rejected,
    } = &outcome
    {
        ctx.store
            .advisories
            .put_feed_state(&state(
                sync.feed_snapshot.clone(),
                *records,
                rejected.len() as u64,
            ))
            .await
            .map_err(Error::Store)?;
    }
    Ok(outcome)
}

/// KEV (replaces the catalog) or EPSS (updates scores).
async fn sync_signals(
    ctx: &Context,
    origin: &str,
    bytes: &[u8],
    format: FeedFormat,
) -> Result<Outcome, Error> {
    let name = match format {
        FeedFormat::Epss if !origin.ends_with(".csv") && !origin.ends_with(".csv.gz") => {
            if bytes.starts_with(&[0x1f, 0x8b]) {
                "epss.csv.gz"
            } else {
                "epss.csv"
            }
        }
        FeedFormat::Epss => origin,
        _ => "kev.json",
    };
    let signals = match stella_feeds::exploit_signals_of(name, bytes) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            return Ok(Outcome::Failed(Problem::stalled(
                "Unreadable",
                format!("{origin}: {e}"),
            )));
        }
        None => {
            return Ok(Outcome::Failed(Problem::stalled(
                "Unreadable",
                format!("{origin}: not a KEV catalog"),
            )));
        }
    };
    let db = &ctx.store.advisories;
    let records = match &signals {
        stella_feeds::Signals::Kev(kev) => {
            db.put_kev(&kev.entries).await.map_err(Error::Store)?;
            kev.entries.len()
        }
        stella_feeds::Signals::Epss(epss) => {
            db.put_epss(&epss.scores, epss.score_date.as_deref())
                .await
                .map_err(Error::Store)?;
            epss.scores.len()
        }
    };
    let snapshot = db.feed_snapshot().await.map_err(Error::Store)?;
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    );
    Ok(Outcome::Synced {
        sync: Box::new(FeedSync {
            snapshot,
            feed_snapshot: digest,
            delta: None,
        }),
        records: records as u64,
        rejected: vec![],
    })
}

/// A VEX document (OpenVEX, CSAF, CycloneDX VEX): the feed's whole truth, stored under the
/// feed's name with its trust weight (what an earlier sync stored and this one no longer
/// serves leaves with its statements). A change moves the feed snapshot, with a delta naming
/// the products it touches.
async fn sync_vex(
    ctx: &Context,
    feed: &str,
    origin: &str,
    bytes: &[u8],
    weight: Option<f64>,
) -> Result<Outcome, Error> {
    let document = match stella_vex::parse_with(bytes, &stella_vex::Options::default()) {
        Ok(d) => d,
        Err(e) => {
            return Ok(Outcome::Failed(Problem::stalled(
                "Unreadable",
                format!("{origin}: {e}"),
            )));
        }
    };
    let rejected: Vec<(String, String)> = document
        .rejected
        .iter()
        .map(|r| (origin.to_string(), r.to_string()))
        .collect();
    if document.statements.is_empty() {
        return Ok(Outcome::Failed(Problem::stalled(
            "NoValidRecords",
            format!("{origin} held no VEX statement that could be read"),
        )));
    }
    let synced = ctx
        .store
        .sync_vex(feed, &[&document], weight)
        .await
        .map_err(Error::Store)?;
    Ok(Outcome::Synced {
        sync: Box::new(FeedSync {
            feed_snapshot: document.digest.clone(),
            ..synced.sync
        }),
        records: document.statements.len() as u64,
        rejected,
    })
}

/// Runs the FeedSource controller, and the sweep of deleted ones, until `shutdown` resolves.
pub async fn run(
    ctx: Context,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let feeds: Api<DeserializeGuard<FeedSource>> = Api::all(ctx.client.clone());
    let sweeper = tokio::spawn(sweep_every(ctx.clone(), Duration::from_secs(60)));
    Controller::new(feeds, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::new(ctx))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "feedsource reconcile ended with an error");
            }
        })
        .await;
    sweeper.abort();
}

async fn sweep_every(ctx: Context, every: Duration) {
    loop {
        if let Err(error) = sweep(&ctx).await {
            tracing::warn!(%error, "feed sweep failed");
        }
        tokio::time::sleep(every).await;
    }
}

/// Removes from the catalog the records of FeedSources that no longer exist (only what no
/// other feed holds). Returns the feeds removed.
pub async fn sweep(ctx: &Context) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let api: Api<DeserializeGuard<FeedSource>> = Api::all(ctx.client.clone());
    let existing: std::collections::BTreeSet<String> = api
        .list_metadata(&Default::default())
        .await?
        .items
        .iter()
        .filter_map(|m| m.metadata.name.as_deref().map(feed_name))
        .collect();
    let mut removed = Vec::new();
    for state in ctx.store.advisories.feed_states().await? {
        if state.feed.starts_with(FEED_PREFIX) && !existing.contains(&state.feed) {
            let sync = ctx.store.advisories.remove_feed(&state.feed).await?;
            ctx.store.remove_vex_origin(&state.feed).await?;
            ctx.metrics.feed_removed(&state.feed);
            tracing::info!(feed = %state.feed, snapshot = %sync.snapshot, "feed removed: its FeedSource is gone");
            removed.push(state.feed);
        }
    }
    Ok(removed)
}

/// One reconcile.
pub async fn reconcile(
    guard: Arc<DeserializeGuard<FeedSource>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&guard, &ctx).await;
    ctx.metrics.reconciled("feedsource", started.elapsed());
    if result.is_err() {
        ctx.metrics.failed("feedsource", "Sync");
    }
    result
}

async fn reconcile_inner(
    guard: &DeserializeGuard<FeedSource>,
    ctx: &Context,
) -> Result<Action, Error> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let source = match &guard.0 {
        Ok(source) => source,
        Err(invalid) => {
            let name = invalid.metadata.name.clone().unwrap_or_default();
            let outcome = Outcome::Failed(Problem::stalled("InvalidObject", invalid.error.clone()));
            let status = build(None, invalid.metadata.generation, &outcome, None, &now);
            update_status(ctx, guard, &name, None, &status, &outcome).await?;
            return Ok(Action::await_change());
        }
    };
    let name = source.name_any();
    let generation = source.metadata.generation;
    let current = source.status.as_ref();
    // The age gauge from what the status says (also after an operator restart).
    if let Some(at) = current.and_then(|s| s.last_successful_sync_time.as_ref()) {
        ctx.metrics
            .feed_succeeded(&feed_name(&name), at.0.as_second());
    }
    if source.spec.suspend {
        let outcome = Outcome::Suspended;
        let status = build(current, generation, &outcome, None, &now);
        update_status(ctx, guard, &name, current, &status, &outcome).await?;
        return Ok(Action::await_change());
    }
    let validated = match validate(&source.spec) {
        Ok(v) => v,
        Err(problem) => {
            let outcome = Outcome::Failed(problem);
            let status = build(current, generation, &outcome, None, &now);
            update_status(ctx, guard, &name, current, &status, &outcome).await?;
            return Ok(Action::await_change());
        }
    };
    // Not due yet: wait for the time the status names (an edit, or a new sync-now request,
    // is due at once).
    let same_generation = current.and_then(|s| s.observed_generation) == generation;
    let request = source
        .annotations()
        .get(SYNC_NOW)
        .map(|v| crate::events::truncate(v, 64));
    let requested = request.is_some() && request != current.and_then(|s| s.sync_request.clone());
    if same_generation
        && !requested
        && let Some(next) = current.and_then(|s| s.next_sync_time.as_ref())
    {
        let remaining = next.0.duration_since(now.0);
        if remaining.is_positive() {
            return Ok(Action::requeue(
                Duration::try_from(remaining).unwrap_or(Duration::from_secs(1)),
            ));
        }
    }
    let imported_kit = validated.kit_digest.is_some()
        && same_generation
        && !requested
        && current.is_some_and(|s| s.last_successful_sync_time.is_some());
    if imported_kit {
        return Ok(Action::await_change());
    }
    // dereference: the credentials, the last validators.
    let bearer = match read_secret(ctx, &source.spec).await {
        Ok(b) => b,
        Err(problem) => {
            let outcome = Outcome::Failed(problem);
            let next = next_sync(
                &outcome,
                Some(&validated),
                current.map_or(0, |s| s.failures),
            );
            let at = next.map(|d| later(&now, d));
            let mut status = build(current, generation, &outcome, at.as_ref(), &now);
            status.sync_request = request.or(status.sync_request);
            update_status(ctx, guard, &name, current, &status, &outcome).await?;
            return Ok(next.map_or_else(Action::await_change, Action::requeue));
        }
    };
    let feed = feed_name(&name);
    let last = ctx
        .store
        .advisories
        .feed_state(&feed)
        .await
        .map_err(Error::Store)?;
    // A sync changed since the last one (an edit): no validators, fetch in full.
    let last = last.filter(|_| same_generation);
    let syncing_status = syncing(current, generation, &now);
    update_status(
        ctx,
        guard,
        &name,
        current,
        &syncing_status,
        &Outcome::Unchanged,
    )
    .await?;
    let outcome = sync(ctx, &feed, &validated, bearer.as_deref(), last.as_ref()).await?;
    let failures = current.map_or(0, |s| s.failures);
    let next = next_sync(&outcome, Some(&validated), failures);
    let at = next.map(|d| later(&now, d));
    let mut status = build(
        Some(&syncing_status),
        generation,
        &outcome,
        at.as_ref(),
        &now,
    );
    status.sync_request = request.or(status.sync_request);
    update_status(ctx, guard, &name, Some(&syncing_status), &status, &outcome).await?;
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

fn later(now: &Time, after: Duration) -> Time {
    let span = k8s_openapi::jiff::SignedDuration::try_from(after).unwrap_or_default();
    Time(now.0.checked_add(span).unwrap_or(now.0))
}

/// The bearer token of `spec.authSecretRef`, from the operator's namespace.
async fn read_secret(ctx: &Context, spec: &FeedSourceSpec) -> Result<Option<String>, Problem> {
    let Some(reference) = &spec.auth_secret_ref else {
        return Ok(None);
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let secret = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|e| Problem {
            reason: "SecretUnreadable",
            message: format!("Secret {}/{}: {e}", ctx.namespace, reference.name),
            transient: true,
        })?;
    let Some(secret) = secret else {
        return Err(Problem::stalled(
            "SecretNotFound",
            format!("Secret {}/{} does not exist", ctx.namespace, reference.name),
        ));
    };
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .ok_or_else(|| {
            Problem::stalled(
                "SecretKeyNotFound",
                format!(
                    "Secret {}/{} has no key {:?}",
                    ctx.namespace, reference.name, reference.key
                ),
            )
        })?;
    let token = String::from_utf8(value.0.clone())
        .map_err(|_| Problem::stalled("InvalidSecret", "the token is not UTF-8"))?;
    Ok(Some(token.trim().to_string()))
}

async fn update_status(
    ctx: &Context,
    guard: &DeserializeGuard<FeedSource>,
    name: &str,
    current: Option<&FeedSourceStatus>,
    status: &FeedSourceStatus,
    outcome: &Outcome,
) -> Result<(), Error> {
    if let Outcome::Failed(problem) = outcome {
        ctx.metrics.feed_failed(problem.reason);
    }
    if current == Some(status) {
        return Ok(());
    }
    crate::events::apply_status::<FeedSource>(&ctx.client, MANAGER, name, status)
        .await
        .map_err(Error::UpdateStatus)?;
    if let Some(at) = &status.last_successful_sync_time {
        ctx.metrics
            .feed_succeeded(&feed_name(name), at.0.as_second());
    }
    let event = match outcome {
        Outcome::Synced {
            sync,
            records,
            rejected,
        } if sync.delta.is_some() => {
            tracing::info!(feed = %name, records, snapshot = %sync.snapshot, "feed synced");
            Some((
                EventType::Normal,
                "Synced",
                synced_message(*records, rejected.len(), sync),
            ))
        }
        Outcome::Failed(problem) => {
            tracing::warn!(feed = %name, reason = problem.reason, message = %problem.message, "feed sync failed");
            Some((EventType::Warning, problem.reason, problem.message.clone()))
        }
        _ => None,
    };
    if let Some((type_, reason, note)) = event {
        publish(ctx, guard, type_, reason, &note).await;
    }
    Ok(())
}

/// Records an Event about a cluster-scoped FeedSource (in `default` for K8s before 1.22).
async fn publish(
    ctx: &Context,
    guard: &DeserializeGuard<FeedSource>,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    crate::events::publish_note(
        &ctx.client,
        &ctx.reporter,
        guard.object_ref(&()),
        type_,
        reason,
        "Sync",
        note,
    )
    .await;
}

/// A failed reconcile (the catalog or the API server): retried with a jittered backoff.
pub fn error_policy(
    _guard: Arc<DeserializeGuard<FeedSource>>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(%error, "feedsource reconcile failed");
    crate::events::retry_after_failure()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::READY;

    #[test]
    fn file_kits_are_read_only_from_inside_the_kit_directory() {
        let root = tempfile::tempdir().unwrap();
        let kits = root.path().join("kits");
        std::fs::create_dir_all(kits.join("..data")).unwrap();
        std::fs::write(kits.join("..data/kit.zip"), b"PK kit").unwrap();
        // A ConfigMap volume's layout: the visible name is a symlink into `..data`.
        std::os::unix::fs::symlink("..data/kit.zip", kits.join("kit.zip")).unwrap();
        std::fs::write(root.path().join("secret"), b"operator token").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), kits.join("escape.zip")).unwrap();
        let read = |path: std::path::PathBuf, max: u64| read_kit_file(&path, Some(&kits), max);
        assert_eq!(read(kits.join("kit.zip"), 1 << 20).unwrap(), b"PK kit");
        for hostile in [
            kits.join("../secret"),
            kits.join("escape.zip"),
            std::path::PathBuf::from("/etc/passwd"),
        ] {
            let problem = read(hostile.clone(), 1 << 20).unwrap_err();
            assert_eq!(problem.reason, "InvalidSpec", "{hostile:?}: {problem:?}");
            assert!(!problem.transient);
        }
        assert_eq!(
            read(kits.join("kit.zip"), 3).unwrap_err().reason,
            "TooLarge"
        );
        assert_eq!(
            read(kits.join(".."), 1 << 20).unwrap_err().reason,
            "InvalidSpec"
        );
        assert_eq!(
            read(kits.clone(), 1 << 20).unwrap_err().reason,
            "InvalidSpec",
            "a directory"
        );
        let missing = read(kits.join("not-yet.zip"), 1 << 20).unwrap_err();
        assert_eq!((missing.reason, missing.transient), ("Unreadable", true));
        let none = read_kit_file(&kits.join("kit.zip"), None, 1 << 20).unwrap_err();
        assert_eq!(none.reason, "InvalidSpec");
        // The spec side: only offline kits, only absolute paths.
        let spec = |v: serde_json::Value| -> FeedSourceSpec { serde_json::from_value(v).unwrap() };
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(validate(&spec(serde_json::json!({"format": "osv", "offlineKit": {"url": "file:///var/lib/stella/kits/k.zip", "manifestDigest": digest}}))).is_ok());
        assert_eq!(
            validate(&spec(
                serde_json::json!({"format": "osv", "url": "file:///var/lib/stella/kits/k.zip"})
            ))
            .unwrap_err()
            .reason,
            "InvalidSpec"
        );
        assert_eq!(validate(&spec(serde_json::json!({"format": "osv", "offlineKit": {"url": "file://relative/k.zip", "manifestDigest": digest}}))).unwrap_err().reason, "InvalidSpec");
    }

    fn spec(value: serde_json::Value) -> FeedSourceSpec {
        serde_json::from_value(value).unwrap()
    }

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap())
    }

    #[test]
    fn trust_weighs_vex_feeds_only_with_the_tiers_default() {
        let vex = |trust: serde_json::Value| {
            validate(&spec(serde_json::json!({"format": "openvex",
                "url": "https://vendor.example/vex.json", "trust": trust})))
        };
        assert_eq!(
            vex(serde_json::json!({"tier": "vendor", "weight": 0.3}))
                .unwrap()
                .weight,
            Some(0.3)
        );
        assert_eq!(
            vex(serde_json::json!({"tier": "vendor"})).unwrap().weight,
            Some(1.0)
        );
        assert_eq!(
            vex(serde_json::json!({"tier": "distro"})).unwrap().weight,
            Some(0.85)
        );
        assert_eq!(
            vex(serde_json::json!({"tier": "hub"})).unwrap().weight,
            Some(0.5)
        );
        assert_eq!(
            vex(serde_json::json!({"tier": "hub", "weight": 0.0}))
                .unwrap()
                .weight,
            Some(0.0)
        );
        for bad in [1.5, -0.1, f64::NAN] {
            let problem = validate(&FeedSourceSpec {
                trust: Some(ProviderTrust {
                    tier: TrustTier::Hub,
                    weight: Some(bad),
                }),
                ..spec(serde_json::json!({"format": "csaf", "url": "https://x.example/c.json"}))
            })
            .unwrap_err();
            assert_eq!(problem.reason, "InvalidSpec", "{bad}");
        }
        let advisories = validate(&spec(serde_json::json!({"format": "osv",
            "url": "https://osv.example/all.zip", "trust": {"tier": "distro"}})))
        .unwrap_err();
        assert!(advisories.message.contains("VEX"), "{}", advisories.message);
        let none = validate(&spec(
            serde_json::json!({"format": "openvex", "url": "https://v.example/x.json"}),
        ));
        assert_eq!(none.unwrap().weight, None);
    }

    #[test]
    fn cadences_read_both_spellings() {
        for (text, seconds) in [
            ("6h", 21_600),
            ("1h30m", 5_400),
            ("90s", 90),
            ("1d", 86_400),
            ("PT6H", 21_600),
            ("PT1H30M", 5_400),
            ("P1D", 86_400),
            ("P1W", 604_800),
            ("P1DT12H", 129_600),
        ] {
            assert_eq!(
                parse_cadence(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        for bad in [
            "",
            "6",
            "h",
            "6x",
            "PT",
            "P1H",
            "0s",
            "99999999999999999999d",
            "PT1D",
        ] {
            assert!(parse_cadence(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn validation_says_what_is_wrong() {
        let ok = validate(&spec(
            serde_json::json!({"format": "osv", "url": "https://x/all.zip"}),
        ))
        .unwrap();
        assert_eq!(ok.cadence, DEFAULT_CADENCE);
        let fast = validate(&spec(
            serde_json::json!({"format": "osv", "url": "https://x/a.json", "cadence": "1s"}),
        ))
        .unwrap();
        assert_eq!(
            fast.cadence, MIN_CADENCE,
            "a cadence below a minute is a minute"
        );
        for (value, reason) in [
            (serde_json::json!({"format": "osv"}), "InvalidSpec"),
            (
                serde_json::json!({"format": "osv", "url": "https://x", "cadence": "soon"}),
                "InvalidCadence",
            ),
            (
                serde_json::json!({"format": "osv", "url": "file:///etc/passwd"}),
                "InvalidSpec",
            ),
            (
                serde_json::json!({"format": "osv", "offlineKit": {"url": "oci://r/k@sha256:aa", "manifestDigest": format!("sha256:{}", "a".repeat(64))}}),
                "InvalidSpec",
            ),
            (
                serde_json::json!({"format": "osv", "offlineKit": {"url": "oci://registry.example/feeds/kit:latest", "manifestDigest": format!("sha256:{}", "a".repeat(64))}}),
                "InvalidSpec",
            ),
            (
                serde_json::json!({"format": "osv", "url": format!("oci://registry.example/feeds/kit@sha256:{}", "a".repeat(64))}),
                "InvalidSpec",
            ),
            (
                serde_json::json!({"format": "osv", "offlineKit": {"url": "https://x/k.zip", "manifestDigest": "sha256:short"}}),
                "InvalidSpec",
            ),
        ] {
            let problem = validate(&spec(value.clone())).unwrap_err();
            assert_eq!(problem.reason, reason, "{value}");
            assert!(!problem.transient);
        }
    }

    fn synced() -> Outcome {
        Outcome::Synced {
            sync: Box::new(FeedSync {
                snapshot: format!("sha256:{}", "1".repeat(64)),
                feed_snapshot: format!("sha256:{}", "2".repeat(64)),
                delta: None,
            }),
            records: 3,
            rejected: (0..20)
                .map(|i| (format!("f{i}.json"), "bad".to_string()))
                .collect(),
        }
    }

    fn condition<'a>(status: &'a FeedSourceStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn a_sync_then_a_failure_keeps_the_snapshot_and_says_why() {
        let status = build(None, Some(2), &synced(), Some(&at(100)), &at(10));
        assert_eq!(condition(&status, READY), ("True", "Synced"));
        assert_eq!(condition(&status, STALLED), ("False", "Synced"));
        assert_eq!(condition(&status, RECONCILING), ("False", "Synced"));
        assert_eq!(status.records, 3);
        assert_eq!(status.rejected, 20);
        assert_eq!(status.rejections.len(), MAX_REJECTIONS);
        assert_eq!(status.next_sync_time, Some(at(100)));
        assert_eq!(status.observed_generation, Some(2));
        let transient = Outcome::Failed(Problem {
            reason: "HTTPError",
            message: "https://x: HTTP 503".into(),
            transient: true,
        });
        let failed = build(Some(&status), Some(2), &transient, None, &at(20));
        assert_eq!(
            failed.snapshot_hash, status.snapshot_hash,
            "the snapshot stays"
        );
        assert_eq!(failed.records, 3);
        assert_eq!(failed.failures, 1);
        assert_eq!(condition(&failed, READY), ("False", "HTTPError"));
        assert_eq!(
            condition(&failed, STALLED),
            ("False", "HTTPError"),
            "it may pass"
        );
        let ready = failed.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert!(
            ready.message.contains("stays in force"),
            "{}",
            ready.message
        );
        let garbage = Outcome::Failed(Problem::stalled("NoValidRecords", "nothing"));
        let stalled = build(Some(&failed), Some(2), &garbage, None, &at(30));
        assert_eq!(stalled.failures, 2);
        assert_eq!(condition(&stalled, STALLED), ("True", "NoValidRecords"));
        // Syncing again: Reconciling, the rest as it was.
        let syncing = syncing(Some(&stalled), Some(2), &at(40));
        assert_eq!(condition(&syncing, RECONCILING), ("True", "Syncing"));
        assert_eq!(condition(&syncing, STALLED), ("True", "NoValidRecords"));
        // Recovered.
        let ok = build(Some(&syncing), Some(2), &synced(), None, &at(50));
        assert_eq!(ok.failures, 0);
        assert_eq!(condition(&ok, READY), ("True", "Synced"));
    }

    #[test]
    fn retries_back_off_up_to_the_cadence() {
        let validated = validate(&spec(
            serde_json::json!({"format": "osv", "url": "https://x/a.json", "cadence": "10m"}),
        ))
        .unwrap();
        let transient = Outcome::Failed(Problem {
            reason: "HTTPError",
            message: String::new(),
            transient: true,
        });
        let waits: Vec<u64> = (0..7)
            .map(|f| {
                next_sync(&transient, Some(&validated), f)
                    .unwrap()
                    .as_secs()
            })
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(
            next_sync(&synced(), Some(&validated), 0),
            Some(Duration::from_secs(600))
        );
        assert_eq!(next_sync(&Outcome::Suspended, Some(&validated), 0), None);
        let kit = validate(&spec(serde_json::json!({"format": "osv", "offlineKit": {"url": "https://x/k.zip", "manifestDigest": format!("sha256:{}", "a".repeat(64))}}))).unwrap();
        assert_eq!(
            next_sync(&synced(), Some(&kit), 0),
            None,
            "a kit is imported once"
        );
    }

    #[test]
    fn ecosystems_filter_what_is_kept() {
        let osv = serde_json::json!({
            "id": "X-1", "modified": "2026-01-01T00:00:00Z",
            "affected": [
                {"package": {"ecosystem": "npm", "name": "a"}, "versions": ["1"]},
                {"package": {"ecosystem": "PyPI", "name": "b"}, "versions": ["1"]}
            ]
        });
        let bytes = serde_json::to_vec(&osv).unwrap();
        let all = read_advisories("x.json", &bytes, &[]).unwrap();
        assert_eq!(all.advisories[0].affected.len(), 2);
        let npm = read_advisories("x.json", &bytes, &["npm".into()]).unwrap();
        assert_eq!(npm.advisories[0].affected.len(), 1);
        let none = read_advisories("x.json", &bytes, &["Go".into()]).unwrap();
        assert!(none.advisories.is_empty());
        let garbage = read_advisories("x.json", b"\x00garbage", &[]).unwrap();
        assert!(garbage.advisories.is_empty() && garbage.rejected.len() == 1);
    }
}
