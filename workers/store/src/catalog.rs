//! The catalog: what was scanned, where its artifacts are, the results of scans under pinned
//! inputs and the worker's runs. Per-module isolation as the seeds require: on SQLite every
//! table carries the `scanner_` prefix, on PostgreSQL the module has the `scanner` schema
//! (migrated under `pg_try_advisory_lock(hashtext('scanner'))`). Migrations are forward-only
//! and recorded; every query is written once for both backends ([`crate::db`]).

use crate::db::{Pool, with_pool};
use crate::migrate::{Migration, Migrations};
use crate::{Error, Result};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::path::Path;
use std::str::FromStr;

/// The catalog's migrations: the `scanner_` tables of the embedded file, the `scanner` schema
/// on PostgreSQL.
pub(crate) const MIGRATIONS: Migrations =
    Migrations::new("scanner", SQLITE_MIGRATIONS, PG_MIGRATIONS);

/// Forward-only migrations of the embedded file's `scanner_` tables, applied in order, each
/// once. Versions 2, 3 and 5 of this ledger are the advisory module's ([`crate::advisories`]).
const SQLITE_MIGRATIONS: &[Migration] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS scanner_images (
        digest TEXT PRIMARY KEY,
        config_digest TEXT NOT NULL,
        name TEXT NOT NULL,
        os TEXT NOT NULL,
        architecture TEXT NOT NULL,
        created TEXT,
        analyzer_version TEXT NOT NULL,
        components INTEGER NOT NULL,
        last_scanned TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS scanner_layers (
        digest TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        media_type TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS scanner_image_layers (
        image_digest TEXT NOT NULL REFERENCES scanner_images(digest) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        layer_digest TEXT NOT NULL REFERENCES scanner_layers(digest),
        PRIMARY KEY (image_digest, position)
    );
    CREATE TABLE IF NOT EXISTS scanner_artifacts (
        key TEXT PRIMARY KEY,
        image_digest TEXT NOT NULL,
        kind TEXT NOT NULL,
        format TEXT NOT NULL,
        view TEXT,
        digest TEXT NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS scanner_artifacts_by_image ON scanner_artifacts(image_digest);
    CREATE TABLE IF NOT EXISTS scanner_cache_entries (
        layer_digest TEXT NOT NULL,
        analyzer_version TEXT NOT NULL,
        key TEXT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (layer_digest, analyzer_version)
    );",
    ),
    (
        4,
        // Scan results under pinned inputs, and the worker's runs.
        "CREATE TABLE IF NOT EXISTS scanner_results (
        image_digest TEXT NOT NULL,
        analyzer_version TEXT NOT NULL,
        feed_snapshot TEXT NOT NULL,
        policy_digest TEXT NOT NULL,
        image_ref TEXT NOT NULL,
        vex_snapshot TEXT,
        verdict TEXT,
        count_critical INTEGER NOT NULL,
        count_high INTEGER NOT NULL,
        count_medium INTEGER NOT NULL,
        count_low INTEGER NOT NULL,
        count_none INTEGER NOT NULL,
        count_unknown INTEGER NOT NULL,
        count_suppressed INTEGER NOT NULL,
        components INTEGER NOT NULL,
        report_key TEXT,
        finished_at TEXT NOT NULL,
        finished_order TEXT NOT NULL,
        PRIMARY KEY (image_digest, analyzer_version, feed_snapshot, policy_digest)
    );
    CREATE INDEX IF NOT EXISTS scanner_results_by_time ON scanner_results(image_digest, finished_order);
    CREATE TABLE IF NOT EXISTS scanner_runs (
        run_id TEXT PRIMARY KEY,
        image_digest TEXT,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        message TEXT NOT NULL,
        finished_at TEXT NOT NULL
    );",
    ),
];

/// Forward-only migrations of the `scanner` schema on PostgreSQL. Text keys sort bytewise
/// (`COLLATE "C"`), as SQLite sorts them, so both backends list in the same order.
const PG_MIGRATIONS: &[Migration] = &[(
    1,
    r#"CREATE TABLE IF NOT EXISTS scanner.images (
        digest TEXT COLLATE "C" PRIMARY KEY,
        config_digest TEXT NOT NULL,
        name TEXT NOT NULL,
        os TEXT NOT NULL,
        architecture TEXT NOT NULL,
        created TEXT,
        analyzer_version TEXT NOT NULL,
        components BIGINT NOT NULL,
        last_scanned TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS scanner.layers (
        digest TEXT COLLATE "C" PRIMARY KEY,
        size BIGINT NOT NULL,
        media_type TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS scanner.image_layers (
        image_digest TEXT COLLATE "C" NOT NULL REFERENCES scanner.images(digest) ON DELETE CASCADE,
        position BIGINT NOT NULL,
        layer_digest TEXT COLLATE "C" NOT NULL REFERENCES scanner.layers(digest),
        PRIMARY KEY (image_digest, position)
    );
    CREATE TABLE IF NOT EXISTS scanner.artifacts (
        key TEXT COLLATE "C" PRIMARY KEY,
        image_digest TEXT COLLATE "C" NOT NULL,
        kind TEXT NOT NULL,
        format TEXT NOT NULL,
        view TEXT,
        digest TEXT NOT NULL,
        size BIGINT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS artifacts_by_image ON scanner.artifacts(image_digest);
    CREATE TABLE IF NOT EXISTS scanner.cache_entries (
        layer_digest TEXT NOT NULL,
        analyzer_version TEXT NOT NULL,
        key TEXT NOT NULL,
        size BIGINT NOT NULL,
        PRIMARY KEY (layer_digest, analyzer_version)
    );
    CREATE TABLE IF NOT EXISTS scanner.results (
        image_digest TEXT COLLATE "C" NOT NULL,
        analyzer_version TEXT COLLATE "C" NOT NULL,
        feed_snapshot TEXT COLLATE "C" NOT NULL,
        policy_digest TEXT COLLATE "C" NOT NULL,
        image_ref TEXT NOT NULL,
        vex_snapshot TEXT,
        verdict TEXT,
        count_critical BIGINT NOT NULL,
        count_high BIGINT NOT NULL,
        count_medium BIGINT NOT NULL,
        count_low BIGINT NOT NULL,
        count_none BIGINT NOT NULL,
        count_unknown BIGINT NOT NULL,
        count_suppressed BIGINT NOT NULL,
        components BIGINT NOT NULL,
        report_key TEXT COLLATE "C",
        finished_at TEXT NOT NULL,
        finished_order TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (image_digest, analyzer_version, feed_snapshot, policy_digest)
    );
    CREATE INDEX IF NOT EXISTS results_by_time ON scanner.results(image_digest, finished_order);
    CREATE TABLE IF NOT EXISTS scanner.runs (
        run_id TEXT COLLATE "C" PRIMARY KEY,
        image_digest TEXT,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        message TEXT NOT NULL,
        finished_at TEXT NOT NULL
    );"#,
)];

/// A scanned image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRow {
    pub digest: String,
    pub config_digest: String,
    pub name: String,
    pub os: String,
    pub architecture: String,
    pub created: Option<String>,
    pub analyzer_version: String,
    pub components: i64,
    /// (blob digest, size, media type), bottom layer first.
    pub layers: Vec<(String, i64, String)>,
}

/// A stored artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactRow {
    pub key: String,
    pub image_digest: String,
    pub kind: String,
    pub format: String,
    pub view: Option<String>,
    pub digest: String,
    pub size: i64,
}

/// The outcome of a finished scan of one image under pinned inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultRow {
    pub image_digest: String,
    /// The reference the scan was asked for (`registry/repo:tag`, `…@sha256:…`).
    pub image_ref: String,
    pub analyzer_version: String,
    /// `sha256:<hex>`: [`crate::AdvisoryDb::feed_snapshot`] at scan time.
    pub feed_snapshot: String,
    /// `sha256:<hex>` of the VEX statements, when VEX was applied.
    pub vex_snapshot: Option<String>,
    /// The evaluated policy's digest (`stella_policy::canonical::digest`); `None`: no policy.
    pub policy_digest: Option<String>,
    /// `PASS`, `WARN` or `FAIL` when a policy was evaluated.
    pub verdict: Option<String>,
    /// Findings by severity after VEX.
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub none: i64,
    pub unknown: i64,
    /// Findings VEX suppressed.
    pub suppressed: i64,
    pub components: i64,
    /// Object key of the canonical policy report JSON, when stored.
    pub report_key: Option<String>,
    /// RFC 3339 (UTC, e.g. `2026-11-28T08:00:00Z`).
    pub finished_at: String,
}

/// One worker run (a Job), as the worker reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    /// The Job's name.
    pub run_id: String,
    /// The scanned image, when the run got as far as resolving it.
    pub image_digest: Option<String>,
    /// `succeeded` or `failed`.
    pub outcome: String,
    /// A CamelCase machine reason (`Completed`, `Unreachable`, `Unauthorized`,
    /// `ImageNotFound`, `CorruptImage`, `InvalidPolicy`, `StorageUnavailable`, `Internal`):
    /// what the Scan's condition shows.
    pub reason: String,
    pub message: String,
    /// RFC 3339.
    pub finished_at: String,
}

/// A run's outcomes.
pub const RUN_OUTCOMES: [&str; 2] = ["succeeded", "failed"];
/// A policy verdict's values.
pub const VERDICTS: [&str; 3] = ["PASS", "WARN", "FAIL"];

/// The catalog database: the embedded SQLite file or PostgreSQL.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub(crate) pool: Pool,
}

/// The columns [`result_row`] reads, in its order.
macro_rules! result_columns {
    () => {
        "image_digest, image_ref, analyzer_version, feed_snapshot, policy_digest, vex_snapshot, verdict, \
         count_critical, count_high, count_medium, count_low, count_none, count_unknown, count_suppressed, \
         components, report_key, finished_at"
    };
}

impl Catalog {
    /// Opens (creating and migrating) a SQLite catalog.
    pub async fn open_sqlite(path: &Path) -> Result<Catalog> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        // Switching a new file to WAL needs an exclusive lock that the busy timeout does not
        // wait for: openers racing on a brand-new file retry instead of failing "database is
        // locked".
        let mut attempt = 0u32;
        let pool = loop {
            match SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await
            {
                Err(sqlx::Error::Database(e)) if is_busy(e.as_ref()) && attempt < 100 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(
                        10 + 5 * u64::from(attempt),
                    ))
                    .await;
                }
                other => break other?,
            }
        };
        Catalog::open(Pool::Sqlite(pool)).await
    }

    /// Connects to PostgreSQL (`postgres://…`) and brings the `scanner` schema up to date.
    pub async fn connect_postgres(url: &str) -> Result<Catalog> {
        Catalog::postgres(crate::db::connect_postgres(url).await?).await
    }

    /// The catalog on an existing PostgreSQL pool, migrated.
    pub(crate) async fn postgres(pool: PgPool) -> Result<Catalog> {
        Catalog::open(Pool::Postgres(pool)).await
    }

    async fn open(pool: Pool) -> Result<Catalog> {
        MIGRATIONS.apply(&pool).await?;
        Ok(Catalog { pool })
    }

    /// Whether the catalog is in PostgreSQL (else the embedded SQLite file).
    pub fn is_postgres(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    fn sql(&self, sql: &'static str) -> sqlx::SqlStr {
        self.pool.sql("scanner", sql)
    }

    /// Versions of the applied migrations (on SQLite, the advisory module's too: they share
    /// the ledger).
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        MIGRATIONS.applied(&self.pool).await
    }

    /// Records (or refreshes) an image, its layers and their order.
    pub async fn record_image(&self, image: &ImageRow) -> Result<()> {
        check_digest("image digest", &image.digest)?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let image_sql = self.sql(
            "INSERT INTO scanner_images (digest, config_digest, name, os, architecture, created, analyzer_version, components, last_scanned)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (digest) DO UPDATE SET name = excluded.name, analyzer_version = excluded.analyzer_version,
                 components = excluded.components, last_scanned = excluded.last_scanned",
        );
        let layer_sql = self.sql(
            "INSERT INTO scanner_layers (digest, size, media_type) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
        );
        let link_sql = self.sql(
            "INSERT INTO scanner_image_layers (image_digest, position, layer_digest) VALUES ($1, $2, $3)
             ON CONFLICT (image_digest, position) DO UPDATE SET layer_digest = excluded.layer_digest",
        );
        with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            sqlx::query(image_sql)
                .bind(&image.digest)
                .bind(&image.config_digest)
                .bind(&image.name)
                .bind(&image.os)
                .bind(&image.architecture)
                .bind(&image.created)
                .bind(&image.analyzer_version)
                .bind(image.components)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            for (position, (digest, size, media_type)) in image.layers.iter().enumerate() {
                sqlx::query(layer_sql.clone())
                    .bind(digest)
                    .bind(size)
                    .bind(media_type)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(link_sql.clone())
                    .bind(&image.digest)
                    .bind(position as i64)
                    .bind(digest)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The image with this digest, if scanned.
    pub async fn image(&self, digest: &str) -> Result<Option<ImageRow>> {
        let image_sql = self.sql(
            "SELECT digest, config_digest, name, os, architecture, created, analyzer_version, components
             FROM scanner_images WHERE digest = $1",
        );
        let layers_sql = self.sql(
            "SELECT l.digest, l.size, l.media_type FROM scanner_image_layers il JOIN scanner_layers l ON l.digest = il.layer_digest
             WHERE il.image_digest = $1 ORDER BY il.position",
        );
        #[allow(clippy::type_complexity)]
        let (row, layers): (
            Option<(
                String,
                String,
                String,
                String,
                String,
                Option<String>,
                String,
                i64,
            )>,
            Vec<(String, i64, String)>,
        ) = with_pool!(&self.pool, |p| {
            let row = sqlx::query_as(image_sql)
                .bind(digest)
                .fetch_optional(p)
                .await?;
            let layers = sqlx::query_as(layers_sql).bind(digest).fetch_all(p).await?;
            (row, layers)
        });
        Ok(row.map(
            |(
                digest,
                config_digest,
                name,
                os,
                architecture,
                created,
                analyzer_version,
                components,
            )| {
                ImageRow {
                    digest,
                    config_digest,
                    name,
                    os,
                    architecture,
                    created,
                    analyzer_version,
                    components,
                    layers,
                }
            },
        ))
    }

    /// Records an artifact (replacing one under the same key).
    pub async fn record_artifact(&self, artifact: &ArtifactRow) -> Result<()> {
        check_digest("image digest", &artifact.image_digest)?;
        crate::object_key(&artifact.key)?;
        let sql = self.sql(
            "INSERT INTO scanner_artifacts (key, image_digest, kind, format, view, digest, size) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (key) DO UPDATE SET digest = excluded.digest, size = excluded.size",
        );
        with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(&artifact.key)
            .bind(&artifact.image_digest)
            .bind(&artifact.kind)
            .bind(&artifact.format)
            .bind(&artifact.view)
            .bind(&artifact.digest)
            .bind(artifact.size)
            .execute(p)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Artifacts of an image, ordered by key.
    pub async fn artifacts(&self, image_digest: &str) -> Result<Vec<ArtifactRow>> {
        let sql = self.sql(
            "SELECT key, image_digest, kind, format, view, digest, size FROM scanner_artifacts
             WHERE image_digest = $1 ORDER BY key",
        );
        let rows: Vec<ArtifactColumns> = with_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(image_digest)
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(artifact_row).collect())
    }

    /// Artifacts of one kind over every image in the catalog, ordered by image digest (rows
    /// of images no longer in the catalog are left out).
    pub async fn artifacts_of_kind(&self, kind: &str) -> Result<Vec<ArtifactRow>> {
        let sql = self.sql(
            "SELECT a.key, a.image_digest, a.kind, a.format, a.view, a.digest, a.size
             FROM scanner_artifacts a JOIN scanner_images i ON i.digest = a.image_digest
             WHERE a.kind = $1 ORDER BY a.image_digest, a.key",
        );
        let rows: Vec<ArtifactColumns> = with_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(kind)
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(artifact_row).collect())
    }

    /// Records a cached layer fragment.
    pub async fn record_cache_entry(
        &self,
        layer_digest: &str,
        analyzer_version: &str,
        key: &str,
        size: i64,
    ) -> Result<()> {
        check_digest("layer digest", layer_digest)?;
        crate::object_key(key)?;
        let sql = self.sql(
            "INSERT INTO scanner_cache_entries (layer_digest, analyzer_version, key, size) VALUES ($1, $2, $3, $4)
             ON CONFLICT (layer_digest, analyzer_version) DO UPDATE SET key = excluded.key, size = excluded.size",
        );
        with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(layer_digest)
            .bind(analyzer_version)
            .bind(key)
            .bind(size)
            .execute(p)
            .await
            .map(drop)?);
        Ok(())
    }

    /// The object key of a cached fragment, if recorded.
    pub async fn cache_entry(
        &self,
        layer_digest: &str,
        analyzer_version: &str,
    ) -> Result<Option<String>> {
        let sql = self.sql(
            "SELECT key FROM scanner_cache_entries WHERE layer_digest = $1 AND analyzer_version = $2",
        );
        Ok(with_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(layer_digest)
            .bind(analyzer_version)
            .fetch_optional(p)
            .await?))
    }

    /// Records the result of a scan, replacing the one under the same image, analyzer
    /// version, feed snapshot and policy digest (no policy and every policy are distinct).
    pub async fn record_result(&self, row: &ResultRow) -> Result<()> {
        self.record_result_with_events(row, &[]).await
    }

    /// [`Catalog::record_result`], and the events that report it appended to Notify's outbox
    /// in the same transaction: the result is never recorded without its events, nor an event
    /// without its result. An event id the outbox already holds is skipped.
    pub async fn record_result_with_events(
        &self,
        row: &ResultRow,
        events: &[crate::OutboxEvent],
    ) -> Result<()> {
        let order = check_result(row)?;
        for event in events {
            crate::notify::check_event(event)?;
        }
        let outbox = crate::notify::outbox_insert(&self.pool);
        let sql = self.sql(
            "INSERT INTO scanner_results (image_digest, image_ref, analyzer_version, feed_snapshot, policy_digest,
                 vex_snapshot, verdict, count_critical, count_high, count_medium, count_low, count_none,
                 count_unknown, count_suppressed, components, report_key, finished_at, finished_order)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
             ON CONFLICT (image_digest, analyzer_version, feed_snapshot, policy_digest) DO UPDATE SET
                 image_ref = excluded.image_ref, vex_snapshot = excluded.vex_snapshot, verdict = excluded.verdict,
                 count_critical = excluded.count_critical, count_high = excluded.count_high,
                 count_medium = excluded.count_medium, count_low = excluded.count_low,
                 count_none = excluded.count_none, count_unknown = excluded.count_unknown,
                 count_suppressed = excluded.count_suppressed, components = excluded.components,
                 report_key = excluded.report_key, finished_at = excluded.finished_at,
                 finished_order = excluded.finished_order",
        );
        with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            sqlx::query(sql)
                .bind(&row.image_digest)
                .bind(&row.image_ref)
                .bind(&row.analyzer_version)
                .bind(&row.feed_snapshot)
                .bind(row.policy_digest.as_deref().unwrap_or(""))
                .bind(&row.vex_snapshot)
                .bind(&row.verdict)
                .bind(row.critical)
                .bind(row.high)
                .bind(row.medium)
                .bind(row.low)
                .bind(row.none)
                .bind(row.unknown)
                .bind(row.suppressed)
                .bind(row.components)
                .bind(&row.report_key)
                .bind(&row.finished_at)
                .bind(&order)
                .execute(&mut *tx)
                .await?;
            for e in events {
                crate::notify::insert_event!(outbox, e)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The result of scanning `image_digest` with this analyzer version, feed snapshot and
    /// policy (`None`: the scan without a policy), if there is one.
    pub async fn result(
        &self,
        image_digest: &str,
        analyzer_version: &str,
        feed_snapshot: &str,
        policy_digest: Option<&str>,
    ) -> Result<Option<ResultRow>> {
        let sql = self.sql(concat!(
            "SELECT ",
            result_columns!(),
            " FROM scanner_results
             WHERE image_digest = $1 AND analyzer_version = $2 AND feed_snapshot = $3 AND policy_digest = $4",
        ));
        with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(image_digest)
            .bind(analyzer_version)
            .bind(feed_snapshot)
            .bind(policy_digest.unwrap_or(""))
            .fetch_optional(p)
            .await?
            .as_ref()
            .map(result_row)
            .transpose())
    }

    /// The newest result of `image_digest` (latest `finished_at`), under any inputs.
    pub async fn latest_result(&self, image_digest: &str) -> Result<Option<ResultRow>> {
        let sql = self.sql(concat!(
            "SELECT ",
            result_columns!(),
            " FROM scanner_results WHERE image_digest = $1
             ORDER BY finished_order DESC, analyzer_version DESC, feed_snapshot DESC, policy_digest DESC LIMIT 1",
        ));
        with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(image_digest)
            .fetch_optional(p)
            .await?
            .as_ref()
            .map(result_row)
            .transpose())
    }

    /// Records a worker run, replacing an earlier report under the same run id.
    pub async fn record_run(&self, row: &RunRow) -> Result<()> {
        check_run(row)?;
        let sql = self.sql(
            "INSERT INTO scanner_runs (run_id, image_digest, outcome, reason, message, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (run_id) DO UPDATE SET image_digest = excluded.image_digest, outcome = excluded.outcome,
                 reason = excluded.reason, message = excluded.message, finished_at = excluded.finished_at",
        );
        with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(&row.run_id)
            .bind(&row.image_digest)
            .bind(&row.outcome)
            .bind(&row.reason)
            .bind(&row.message)
            .bind(&row.finished_at)
            .execute(p)
            .await
            .map(drop)?);
        Ok(())
    }

    /// The run with this id, if reported.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRow>> {
        let sql = self.sql(
            "SELECT run_id, image_digest, outcome, reason, message, finished_at FROM scanner_runs WHERE run_id = $1",
        );
        let row: Option<(String, Option<String>, String, String, String, String)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql)
                .bind(run_id)
                .fetch_optional(p)
                .await?);
        Ok(row.map(
            |(run_id, image_digest, outcome, reason, message, finished_at)| RunRow {
                run_id,
                image_digest,
                outcome,
                reason,
                message,
                finished_at,
            },
        ))
    }

    /// Object keys the image's rows point at (its artifacts and stored reports), sorted.
    pub async fn object_keys(&self, image_digest: &str) -> Result<Vec<String>> {
        let sql = self.sql(
            "SELECT key FROM scanner_artifacts WHERE image_digest = $1
             UNION SELECT report_key FROM scanner_results WHERE image_digest = $1 AND report_key IS NOT NULL
             ORDER BY 1",
        );
        Ok(with_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(image_digest)
            .fetch_all(p)
            .await?))
    }

    /// Deletes the image's rows — the image, its layer links, artifacts and results; not the
    /// layers (other images share them) nor cached layer fragments — in one transaction, and
    /// returns the object keys its artifacts and reports had, sorted.
    pub async fn forget_image(&self, image_digest: &str) -> Result<Vec<String>> {
        check_digest("image digest", image_digest)?;
        let keys_sql = self.sql(
            "SELECT key FROM scanner_artifacts WHERE image_digest = $1
             UNION SELECT report_key FROM scanner_results WHERE image_digest = $1 AND report_key IS NOT NULL
             ORDER BY 1",
        );
        let deletes = [
            self.sql("DELETE FROM scanner_artifacts WHERE image_digest = $1"),
            self.sql("DELETE FROM scanner_results WHERE image_digest = $1"),
            self.sql("DELETE FROM scanner_image_layers WHERE image_digest = $1"),
            self.sql("DELETE FROM scanner_images WHERE digest = $1"),
        ];
        Ok(with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            let keys: Vec<String> = sqlx::query_scalar(keys_sql)
                .bind(image_digest)
                .fetch_all(&mut *tx)
                .await?;
            for sql in deletes {
                sqlx::query(sql)
                    .bind(image_digest)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            keys
        }))
    }
}

type ArtifactColumns = (String, String, String, String, Option<String>, String, i64);

fn artifact_row(
    (key, image_digest, kind, format, view, digest, size): ArtifactColumns,
) -> ArtifactRow {
    ArtifactRow {
        key,
        image_digest,
        kind,
        format,
        view,
        digest,
        size,
    }
}

/// A [`ResultRow`] from the [`result_columns`] of either backend's row.
fn result_row<R>(r: &R) -> Result<ResultRow>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let policy_digest: String = r.try_get(4)?;
    Ok(ResultRow {
        image_digest: r.try_get(0)?,
        image_ref: r.try_get(1)?,
        analyzer_version: r.try_get(2)?,
        feed_snapshot: r.try_get(3)?,
        policy_digest: Some(policy_digest).filter(|d| !d.is_empty()),
        vex_snapshot: r.try_get(5)?,
        verdict: r.try_get(6)?,
        critical: r.try_get(7)?,
        high: r.try_get(8)?,
        medium: r.try_get(9)?,
        low: r.try_get(10)?,
        none: r.try_get(11)?,
        unknown: r.try_get(12)?,
        suppressed: r.try_get(13)?,
        components: r.try_get(14)?,
        report_key: r.try_get(15)?,
        finished_at: r.try_get(16)?,
    })
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        reason: reason.into(),
    }
}

/// An OCI digest: `algorithm:encoded`, the algorithm `[a-z0-9]+([+._-][a-z0-9]+)*`, the
/// encoded part `[a-zA-Z0-9=_-]+`.
pub(crate) fn check_digest(field: &'static str, digest: &str) -> Result<()> {
    check_key_text(field, digest)?;
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(invalid(
            field,
            format!("{digest:.80?} is not a digest (algorithm:hex)"),
        ));
    };
    let separator = |c: char| matches!(c, '+' | '.' | '_' | '-');
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(separator).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    if !(algorithm_ok && encoded_ok) {
        return Err(invalid(
            field,
            format!("{digest:.80?} is not a digest (algorithm:hex)"),
        ));
    }
    Ok(())
}

/// Longest key text (ids, digests, versions): what every index of either backend holds.
const MAX_KEY_BYTES: usize = 1024;

/// Text that is (part of) a row's identity: not blank, at most [`MAX_KEY_BYTES`].
fn check_key_text(field: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_KEY_BYTES {
        return Err(invalid(
            field,
            format!(
                "{} bytes, more than the {MAX_KEY_BYTES} allowed",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// `at` (RFC 3339) as fixed-width UTC with nanoseconds: text that sorts as time does.
fn sortable_time(field: &'static str, at: &str) -> Result<String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(at).map_err(|e| {
        invalid(
            field,
            format!("{at:.80?} is not an RFC 3339 time (2026-11-28T08:00:00Z): {e}"),
        )
    })?;
    Ok(parsed
        .with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string())
}

/// Checks a result before it is stored; returns its sortable finish time.
fn check_result(row: &ResultRow) -> Result<String> {
    check_digest("image digest", &row.image_digest)?;
    if row.image_ref.trim().is_empty() {
        return Err(invalid("image reference", "must not be empty"));
    }
    check_key_text("analyzer version", &row.analyzer_version)?;
    check_digest("feed snapshot", &row.feed_snapshot)?;
    if let Some(vex) = &row.vex_snapshot {
        check_digest("VEX snapshot", vex)?;
    }
    if let Some(policy) = &row.policy_digest {
        check_digest("policy digest", policy)?;
    }
    match (&row.verdict, &row.policy_digest) {
        (Some(verdict), _) if !VERDICTS.contains(&verdict.as_str()) => {
            return Err(invalid(
                "verdict",
                format!("{verdict:.80?} is not one of PASS, WARN, FAIL"),
            ));
        }
        (Some(_), None) => {
            return Err(invalid("verdict", "a verdict needs the policy's digest"));
        }
        _ => {}
    }
    for (field, count) in [
        ("critical count", row.critical),
        ("high count", row.high),
        ("medium count", row.medium),
        ("low count", row.low),
        ("none count", row.none),
        ("unknown count", row.unknown),
        ("suppressed count", row.suppressed),
        ("components", row.components),
    ] {
        if count < 0 {
            return Err(invalid(field, format!("{count} is negative")));
        }
    }
    if let Some(key) = &row.report_key {
        crate::object_key(key)?;
    }
    sortable_time("finished at", &row.finished_at)
}

/// A Kubernetes condition reason: `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`, at most 1024.
fn check_reason(reason: &str) -> Result<()> {
    let bytes = reason.as_bytes();
    let ok = bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes.len() <= 1024
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':'))
        && bytes
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if !ok {
        return Err(invalid(
            "reason",
            format!("{reason:.80?} is not a CamelCase machine reason (e.g. Unreachable)"),
        ));
    }
    Ok(())
}

fn check_run(row: &RunRow) -> Result<()> {
    check_key_text("run id", &row.run_id)?;
    if let Some(digest) = &row.image_digest {
        check_digest("image digest", digest)?;
    }
    if !RUN_OUTCOMES.contains(&row.outcome.as_str()) {
        return Err(invalid(
            "outcome",
            format!("{:.80?} is not one of succeeded, failed", row.outcome),
        ));
    }
    check_reason(&row.reason)?;
    sortable_time("finished at", &row.finished_at).map(drop)
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), primary or extended.
fn is_busy(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.code()
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_follow_the_oci_grammar() {
        for good in [
            "sha256:abcdef0123",
            "sha512:AbC=_-",
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        ] {
            assert!(check_digest("d", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "SHA256:ab",
            "sha256:a b",
            "a..b:c",
        ] {
            assert!(check_digest("d", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn finish_times_sort_as_time_does() {
        let a = sortable_time("t", "2026-11-28T08:00:00Z").unwrap();
        let b = sortable_time("t", "2026-11-28T08:00:00.5Z").unwrap();
        let c = sortable_time("t", "2026-11-28T08:30:00+01:00").unwrap();
        assert!(a < b && c < a, "{a} {b} {c}");
        assert!(sortable_time("t", "yesterday").is_err());
    }

    #[test]
    fn reasons_are_condition_reasons() {
        for good in ["Completed", "ImageNotFound", "A", "Storage_Unavailable"] {
            assert!(check_reason(good).is_ok(), "{good}");
        }
        for bad in ["", "image not found", "1Bad", "Trailing:", "Ünicode"] {
            assert!(check_reason(bad).is_err(), "{bad:?}");
        }
    }
}
