//! Storage behind one interface: the catalog (images, layers, artifacts, cache entries, scan
//! results, worker runs), the advisory, VEX and unknowns databases, and the artifact object
//! store. The embedded default is SQLite plus a local directory under the data directory;
//! PostgreSQL and S3 plug in behind the same [`Store`] ([`Store::open`] with a
//! [`StoreConfig`]) without the scanner knowing.
//!
//! Object keys follow the seeds' layout: `layers/<digest>/…`, `images/<digest>/…`,
//! `indexes/<digest>/…`.

mod advisories;
mod artifacts;
mod catalog;
#[cfg(feature = "clap")]
mod cli;
mod db;
mod fragments;
mod impact;
mod imports;
mod migrate;
mod notify;
mod scheduler;
mod unknowns;
mod vex;

pub use advisories::{
    AdvisoryDb, AdvisoryRow, Changes, DeltaBody, DeltaReporter, EMPTY_FEED_SNAPSHOT, FeedDelta,
    FeedState, FeedSync, IMPORT_FEED, VexScope, advisory_rows, feed_snapshot_of,
    prepare_advisories,
};
pub use artifacts::{Artifact, image_artifacts};
pub use catalog::{ArtifactRow, Catalog, ImageRow, RUN_OUTCOMES, ResultRow, RunRow, VERDICTS};
#[cfg(feature = "clap")]
pub use cli::StorageArgs;
pub use fragments::ObjectFragmentCache;
pub use impact::BOM_INDEX_KIND;

/// The catalog's artifact kind of an image's canonical inventory (`stella-sbom`'s `Inventory`
/// as JSON, at [`keys::inventory`]): what diffs and reports are computed from.
pub const INVENTORY_KIND: &str = "inventory";
/// The catalog's artifact kind of a policy report (canonical JSON, at [`keys::report`]).
pub const REPORT_KIND: &str = "report";
pub use notify::{DeliveryRow, MAX_EVENT_BODY, NotifyDb, OutboxEvent, Outcome, check_event};
pub use scheduler::{MAX_RUN_BODY, SchedulerDb, SchedulerRunRow};
pub use unknowns::{StoredUnknown, UnknownFilter, UnknownRow, UnknownsDb};
pub use vex::{ProviderCounts, VEX_IMPORT_FEED, VexDb, VexSync};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors of storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalog: {0}")]
    Catalog(#[from] sqlx::Error),
    #[error("object store: {0}")]
    Objects(#[from] object_store::Error),
    #[error("failed to prepare the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid object key {0:?}")]
    Key(String),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("catalog {url}: {reason}")]
    CatalogUrl { url: String, reason: String },
    #[error("object store {url}: {reason}")]
    ObjectStoreUrl { url: String, reason: String },
    #[error("the catalog lists {key} but the object store has no such object")]
    MissingObject { key: String },
    #[error("{key}: {source}")]
    BomIndex {
        key: String,
        source: stella_sbom::bomindex::Error,
    },
    #[error("{key}: the BOM-Index describes {found}, not the image it is stored under")]
    BomIndexImage { key: String, found: String },
}

impl Error {
    /// Whether the catalog could not be reached at all (nothing answered in time, or the
    /// connection failed): worth waiting for when a server starts beside us.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Catalog(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_))
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a [`Store`] keeps things.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreConfig {
    /// Scratch space and the embedded default: `catalog.db` and `objects/` live here unless
    /// the URLs below move them.
    pub data_dir: PathBuf,
    /// `postgres://…` or `postgresql://…`: the catalog, advisories, VEX and unknowns in
    /// PostgreSQL (schemas `scanner`, `vuln`, `vex`, `policy`); `None`: `data_dir/catalog.db`.
    pub catalog_url: Option<String>,
    /// `s3://<bucket>[/<prefix>][?…]` (see [`Store::with_s3`]): artifacts in an S3-compatible
    /// store; `None`: `data_dir/objects`.
    pub object_store_url: Option<String>,
}

/// The catalog, the advisory, VEX and unknowns databases, and the object store together.
#[derive(Clone, Debug)]
pub struct Store {
    pub catalog: Catalog,
    pub advisories: AdvisoryDb,
    pub vex: VexDb,
    pub unknowns: UnknownsDb,
    pub scheduler: SchedulerDb,
    pub notify: NotifyDb,
    pub objects: Arc<dyn ObjectStore>,
}

impl Store {
    /// Opens the storage `config` selects, creating and migrating what is missing: the
    /// embedded SQLite catalog or PostgreSQL (one pool shared by every module, each migrated
    /// under its own advisory lock), and the local directory or S3.
    pub async fn open(config: &StoreConfig) -> Result<Store> {
        let objects: Arc<dyn ObjectStore> = match config.object_store_url.as_deref() {
            Some(url) => object_store_at(url)?,
            None => local_objects(&config.data_dir)?,
        };
        let (catalog, advisories) = match config.catalog_url.as_deref() {
            Some(url) if db::is_postgres_url(url) => {
                let catalog = Catalog::postgres(db::connect_postgres(url).await?).await?;
                let advisories = AdvisoryDb::beside(&catalog).await?;
                (catalog, advisories)
            }
            Some(url) => {
                return Err(Error::CatalogUrl {
                    url: db::redact(url),
                    reason: "must start with postgres:// or postgresql:// (leave it unset for the embedded catalog)".into(),
                });
            }
            None => {
                create_dir(&config.data_dir)?;
                let catalog = Catalog::open_sqlite(&config.data_dir.join("catalog.db")).await?;
                let advisories = AdvisoryDb::beside(&catalog).await?;
                (catalog, advisories)
            }
        };
        Ok(Store {
            vex: VexDb::embedded(&catalog).await?,
            unknowns: UnknownsDb::embedded(&catalog).await?,
            scheduler: SchedulerDb::embedded(&catalog).await?,
            notify: NotifyDb::embedded(&catalog).await?,
            catalog,
            advisories,
            objects,
        })
    }

    /// The embedded default under `data_dir`: `catalog.db` (SQLite) and `objects/` (a local
    /// directory object store). Created when absent.
    pub async fn open_embedded(data_dir: &Path) -> Result<Store> {
        Store::open(&StoreConfig {
            data_dir: data_dir.to_path_buf(),
            ..StoreConfig::default()
        })
        .await
    }

    /// Forgets an image: the objects its rows point at (SBOMs, index, report), then its
    /// catalog rows ([`Catalog::forget_image`]). Objects go first, so a failure leaves rows
    /// to retry with, never rows pointing at deleted objects. Returns how many objects were
    /// removed (absent ones count as removed).
    pub async fn forget_image(&self, image_digest: &str) -> Result<usize> {
        catalog::check_digest("image digest", image_digest)?;
        let keys = self.catalog.object_keys(image_digest).await?;
        for key in &keys {
            match self.objects.delete(&object_key(key)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let listed = self.catalog.forget_image(image_digest).await?;
        // Rows a concurrent scan added between the two steps: their objects go too.
        let mut removed = keys.len();
        for key in listed.iter().filter(|k| !keys.contains(k)) {
            match self.objects.delete(&object_key(key)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }

    /// Keeps artifacts in an S3-compatible object store instead of the local directory: `url`
    /// is `s3://<bucket>[/<prefix>][?endpoint=<url>&region=<region>&allow_http=true&skip_signature=true]`;
    /// credentials come from the usual `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN` environment. Nothing is written until the first artifact.
    #[cfg(feature = "s3")]
    pub fn with_s3(mut self, url: &str) -> Result<Store> {
        self.objects = s3(url, None)?;
        Ok(self)
    }

    /// [`Store::with_s3`] with explicit credentials (access key id, secret access key).
    #[cfg(feature = "s3")]
    pub fn with_s3_credentials(mut self, url: &str, key_id: &str, secret: &str) -> Result<Store> {
        self.objects = s3(url, Some((key_id, secret)))?;
        Ok(self)
    }

    /// Keeps advisories in PostgreSQL (`vuln` schema) instead of the embedded catalog.
    pub async fn with_postgres_advisories(mut self, url: &str) -> Result<Store> {
        self.advisories = AdvisoryDb::connect_postgres(url).await?;
        Ok(self)
    }

    /// Writes bytes under `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = object_key(key)?;
        self.objects.put(&path, bytes.into()).await?;
        Ok(())
    }

    /// Reads the bytes under `key`, `None` when absent.
    pub async fn get(&self, key: &str) -> Result<Option<bytes::Bytes>> {
        let path = object_key(key)?;
        match self.objects.get(&path).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
        path: dir.display().to_string(),
        source,
    })
}

/// The local-directory object store `data_dir/objects`, created when absent.
fn local_objects(data_dir: &Path) -> Result<Arc<dyn ObjectStore>> {
    let dir = data_dir.join("objects");
    create_dir(&dir)?;
    Ok(Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(&dir)?,
    ))
}

/// The object store a URL names: `s3://…` (with the `s3` feature).
fn object_store_at(url: &str) -> Result<Arc<dyn ObjectStore>> {
    #[cfg(feature = "s3")]
    if url.starts_with("s3://") {
        return s3(url, None);
    }
    Err(Error::ObjectStoreUrl {
        url: url.to_string(),
        reason: if cfg!(feature = "s3") {
            "must start with s3://".into()
        } else {
            "this build has no S3 support (the store's s3 feature)".into()
        },
    })
}

/// An S3 object store from its `s3://` URL (see [`Store::with_s3`]).
#[cfg(feature = "s3")]
fn s3(url: &str, credentials: Option<(&str, &str)>) -> Result<Arc<dyn ObjectStore>> {
    let bad = |why: &str| Error::ObjectStoreUrl {
        url: url.to_string(),
        reason: why.to_string(),
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("must start with s3://"))?;
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    if bucket.is_empty() {
        return Err(bad("names no bucket"));
    }
    let flag = |value: &str| match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(bad(&format!("{other:?} must be true or false"))),
    };
    // https endpoints: rustls with the workspace's one provider (ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some((key_id, secret)) = credentials {
        builder = builder
            .with_access_key_id(key_id)
            .with_secret_access_key(secret);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        builder = match key {
            "endpoint" => builder.with_endpoint(value),
            "region" => builder.with_region(value),
            "allow_http" => builder.with_allow_http(flag(value)?),
            // Unsigned requests: public buckets and local test servers.
            "skip_signature" => builder.with_skip_signature(flag(value)?),
            other => {
                return Err(bad(&format!(
                    "unknown parameter {other:?} (endpoint, region, allow_http, skip_signature)"
                )));
            }
        };
    }
    let store: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
    let prefix = prefix.trim_matches('/');
    Ok(if prefix.is_empty() {
        store
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(
            store,
            object_key(prefix)?,
        ))
    })
}

/// Validates an object key: relative, `/`-separated, no empty, `.` or `..` segments, at most
/// 1024 bytes (S3's limit).
pub fn object_key(key: &str) -> Result<ObjectPath> {
    let valid = !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\'));
    if !valid {
        return Err(Error::Key(key.to_string()));
    }
    ObjectPath::parse(key).map_err(|_| Error::Key(key.to_string()))
}

/// The default data directory: `$XDG_DATA_HOME/stella`, else `~/.local/share/stella`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("stella")
}

/// Object keys of an image's artifacts.
pub mod keys {
    /// `images/<digest>/<view>.<format-extension>`.
    pub fn image_artifact(image_digest: &str, view: &str, extension: &str) -> String {
        format!("images/{image_digest}/{view}.{extension}")
    }

    /// `images/<digest>/inventory.json`: the image's canonical inventory.
    pub fn inventory(image_digest: &str) -> String {
        image_artifact(image_digest, "inventory", "json")
    }

    /// `images/<digest>/report.json`: the canonical policy report of the image's last scan
    /// under a policy.
    pub fn report(image_digest: &str) -> String {
        format!("images/{image_digest}/report.json")
    }

    /// `images/<digest>/reports/<hex>.json`: one version of the image's policy report, by
    /// the SHA-256 of its canonical JSON (history: the previous one is a re-evaluation's
    /// baseline).
    pub fn report_version(image_digest: &str, report_sha256_hex: &str) -> String {
        format!("images/{image_digest}/reports/{report_sha256_hex}.json")
    }

    /// `images/<digest>/deltas/<hex>.json`: what the report version `<hex>` changed against
    /// the one before it.
    pub fn delta(image_digest: &str, report_sha256_hex: &str) -> String {
        format!("images/{image_digest}/deltas/{report_sha256_hex}.json")
    }

    /// `indexes/<digest>/bom-index.bin`: the image's BOM-Index sidecar.
    pub fn bom_index(image_digest: &str) -> String {
        format!("indexes/{image_digest}/bom-index.bin")
    }

    /// `layers/<digest>/fragment.<analyzer version>.bin.zst`.
    pub fn layer_fragment(layer_digest: &str, analyzer_version: &str) -> String {
        let version: String = analyzer_version
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("layers/{layer_digest}/fragment.{version}.bin.zst")
    }
}
