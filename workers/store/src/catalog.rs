//! The catalog: what was scanned and where its artifacts are. Per-module isolation as the
//! seeds require: on SQLite every table carries the `scanner_` prefix (on PostgreSQL the
//! module gets its own schema). Migrations are forward-only and recorded.

use crate::Result;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::path::Path;
use std::str::FromStr;

/// Forward-only migrations of the scanner module, applied in order, each once.
const MIGRATIONS: &[(i64, &str)] = &[
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
        2,
        // The advisory module (Concelier): `vuln_` tables, its own prefix on SQLite.
        "CREATE TABLE IF NOT EXISTS vuln_advisories (
        id TEXT NOT NULL,
        source TEXT NOT NULL,
        modified TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (id, source)
    );
    CREATE TABLE IF NOT EXISTS vuln_affected (
        ecosystem TEXT NOT NULL,
        package TEXT NOT NULL,
        advisory_id TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (ecosystem, package, advisory_id, source)
    );
    CREATE TABLE IF NOT EXISTS vuln_imports (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        origin TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        accepted INTEGER NOT NULL,
        rejected INTEGER NOT NULL
    );",
    ),
    (
        3,
        // Exploit signals beside the advisories: CISA KEV and FIRST EPSS.
        "CREATE TABLE IF NOT EXISTS vuln_kev (
        cve TEXT PRIMARY KEY,
        date_added TEXT NOT NULL,
        ransomware INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS vuln_epss (
        cve TEXT PRIMARY KEY,
        epss REAL NOT NULL,
        percentile REAL NOT NULL,
        score_date TEXT
    );",
    ),
];

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

/// The catalog database.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub(crate) pool: SqlitePool,
}

impl Catalog {
    /// Opens (creating and migrating) a SQLite catalog.
    pub async fn open_sqlite(path: &Path) -> Result<Catalog> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let catalog = Catalog { pool };
        catalog.migrate().await?;
        Ok(catalog)
    }

    async fn migrate(&self) -> Result<()> {
        crate::migrate::sqlite(&self.pool, "scanner", MIGRATIONS).await
    }

    /// Versions of the applied migrations.
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT version FROM scanner_schema_migrations ORDER BY version")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Records (or refreshes) an image, its layers and their order.
    pub async fn record_image(&self, image: &ImageRow) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO scanner_images (digest, config_digest, name, os, architecture, created, analyzer_version, components, last_scanned)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, datetime('now'))
             ON CONFLICT(digest) DO UPDATE SET name = excluded.name, analyzer_version = excluded.analyzer_version,
                 components = excluded.components, last_scanned = excluded.last_scanned",
        )
        .bind(&image.digest)
        .bind(&image.config_digest)
        .bind(&image.name)
        .bind(&image.os)
        .bind(&image.architecture)
        .bind(&image.created)
        .bind(&image.analyzer_version)
        .bind(image.components)
        .execute(&mut *tx)
        .await?;
        for (position, (digest, size, media_type)) in image.layers.iter().enumerate() {
            sqlx::query("INSERT INTO scanner_layers (digest, size, media_type) VALUES (?, ?, ?) ON CONFLICT(digest) DO NOTHING")
                .bind(digest)
                .bind(size)
                .bind(media_type)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO scanner_image_layers (image_digest, position, layer_digest) VALUES (?, ?, ?)
                 ON CONFLICT(image_digest, position) DO UPDATE SET layer_digest = excluded.layer_digest",
            )
            .bind(&image.digest)
            .bind(position as i64)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The image with this digest, if scanned.
    pub async fn image(&self, digest: &str) -> Result<Option<ImageRow>> {
        let Some(row) = sqlx::query("SELECT digest, config_digest, name, os, architecture, created, analyzer_version, components FROM scanner_images WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let layers = sqlx::query(
            "SELECT l.digest, l.size, l.media_type FROM scanner_image_layers il JOIN scanner_layers l ON l.digest = il.layer_digest
             WHERE il.image_digest = ? ORDER BY il.position",
        )
        .bind(digest)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
        Ok(Some(ImageRow {
            digest: row.get(0),
            config_digest: row.get(1),
            name: row.get(2),
            os: row.get(3),
            architecture: row.get(4),
            created: row.get(5),
            analyzer_version: row.get(6),
            components: row.get(7),
            layers,
        }))
    }

    /// Records an artifact (replacing one under the same key).
    pub async fn record_artifact(&self, artifact: &ArtifactRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO scanner_artifacts (key, image_digest, kind, format, view, digest, size) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(key) DO UPDATE SET digest = excluded.digest, size = excluded.size",
        )
        .bind(&artifact.key)
        .bind(&artifact.image_digest)
        .bind(&artifact.kind)
        .bind(&artifact.format)
        .bind(&artifact.view)
        .bind(&artifact.digest)
        .bind(artifact.size)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Artifacts of an image, ordered by key.
    pub async fn artifacts(&self, image_digest: &str) -> Result<Vec<ArtifactRow>> {
        let rows = sqlx::query("SELECT key, image_digest, kind, format, view, digest, size FROM scanner_artifacts WHERE image_digest = ? ORDER BY key")
            .bind(image_digest)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(artifact_row).collect())
    }

    /// Artifacts of one kind over every image in the catalog, ordered by image digest (rows
    /// of images no longer in the catalog are left out).
    pub async fn artifacts_of_kind(&self, kind: &str) -> Result<Vec<ArtifactRow>> {
        let rows = sqlx::query(
            "SELECT a.key, a.image_digest, a.kind, a.format, a.view, a.digest, a.size
             FROM scanner_artifacts a JOIN scanner_images i ON i.digest = a.image_digest
             WHERE a.kind = ? ORDER BY a.image_digest, a.key",
        )
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
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
        sqlx::query(
            "INSERT INTO scanner_cache_entries (layer_digest, analyzer_version, key, size) VALUES (?, ?, ?, ?)
             ON CONFLICT(layer_digest, analyzer_version) DO UPDATE SET key = excluded.key, size = excluded.size",
        )
        .bind(layer_digest)
        .bind(analyzer_version)
        .bind(key)
        .bind(size)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The object key of a cached fragment, if recorded.
    pub async fn cache_entry(
        &self,
        layer_digest: &str,
        analyzer_version: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT key FROM scanner_cache_entries WHERE layer_digest = ? AND analyzer_version = ?",
        )
        .bind(layer_digest)
        .bind(analyzer_version)
        .fetch_optional(&self.pool)
        .await?)
    }
}

fn artifact_row(r: sqlx::sqlite::SqliteRow) -> ArtifactRow {
    ArtifactRow {
        key: r.get(0),
        image_digest: r.get(1),
        kind: r.get(2),
        format: r.get(3),
        view: r.get(4),
        digest: r.get(5),
        size: r.get(6),
    }
}
