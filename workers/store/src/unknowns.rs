//! The unknowns registry's table (`policy_unknowns` in the embedded catalog; the policy
//! module's prefix). Each scan records its unknowns; a rescan updates what it sees again and
//! keeps a resolution or an escalation, which only people change.

use crate::{Catalog, Result};
use sqlx::Row;
use sqlx::sqlite::SqlitePool;

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE IF NOT EXISTS policy_unknowns (
        id TEXT PRIMARY KEY,
        image_digest TEXT NOT NULL,
        subject TEXT NOT NULL,
        score REAL NOT NULL,
        band TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        resolution TEXT,
        justification TEXT,
        resolved_at TEXT,
        escalated_at TEXT
    );
    CREATE INDEX IF NOT EXISTS policy_unknowns_by_band ON policy_unknowns(band, score);
    CREATE INDEX IF NOT EXISTS policy_unknowns_by_image ON policy_unknowns(image_digest);",
)];

/// One unknown as a scan records it.
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownRow {
    pub id: String,
    pub image_digest: String,
    pub subject: String,
    pub score: f64,
    pub band: String,
    /// The whole unknown as JSON (reasons, details, breakdown).
    pub body: String,
}

/// An unknown with its triage state.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredUnknown {
    pub row: UnknownRow,
    /// `open`, `escalated` or `resolved`.
    pub status: String,
    pub first_seen: String,
    pub last_seen: String,
    pub resolution: Option<String>,
    pub justification: Option<String>,
    pub resolved_at: Option<String>,
    pub escalated_at: Option<String>,
}

/// Which unknowns to list.
#[derive(Clone, Debug, Default)]
pub struct UnknownFilter {
    pub band: Option<String>,
    pub image_digest: Option<String>,
    /// Include resolved ones.
    pub all: bool,
}

/// The registry over the embedded catalog.
#[derive(Clone, Debug)]
pub struct UnknownsDb {
    pool: SqlitePool,
}

impl UnknownsDb {
    /// The table in the catalog's SQLite file, migrated.
    pub async fn embedded(catalog: &Catalog) -> Result<UnknownsDb> {
        let pool = catalog.pool.clone();
        crate::migrate::sqlite(&pool, "policy", MIGRATIONS).await?;
        Ok(UnknownsDb { pool })
    }

    /// Records one scan of `image_digest` (one transaction): new unknowns open, known ones get
    /// the new score and body and keep their triage state, and open or escalated ones of the
    /// image the scan no longer finds are resolved as `not-observed`. `now` is RFC 3339.
    pub async fn record(&self, image_digest: &str, rows: &[UnknownRow], now: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let seen: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let open: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM policy_unknowns WHERE image_digest = ? AND status <> 'resolved'",
        )
        .bind(image_digest)
        .fetch_all(&mut *tx)
        .await?;
        for id in open.iter().filter(|id| !seen.contains(id.as_str())) {
            sqlx::query(
                "UPDATE policy_unknowns SET status = 'resolved', resolution = 'not-observed',
                     justification = ?, resolved_at = ? WHERE id = ?",
            )
            .bind(format!("a rescan at {now} no longer finds it"))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        for r in rows {
            sqlx::query(
                "INSERT INTO policy_unknowns (id, image_digest, subject, score, band, body, first_seen, last_seen)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(id) DO UPDATE SET score = excluded.score, band = excluded.band,
                     body = excluded.body, last_seen = excluded.last_seen",
            )
            .bind(&r.id)
            .bind(&r.image_digest)
            .bind(&r.subject)
            .bind(r.score)
            .bind(&r.band)
            .bind(&r.body)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Unknowns by score (highest first), then id.
    pub async fn list(&self, filter: &UnknownFilter) -> Result<Vec<StoredUnknown>> {
        let rows = sqlx::query(
            "SELECT * FROM policy_unknowns
             WHERE (?1 IS NULL OR band = ?1) AND (?2 IS NULL OR image_digest = ?2)
               AND (?3 OR status <> 'resolved')
             ORDER BY score DESC, id",
        )
        .bind(filter.band.as_deref())
        .bind(filter.image_digest.as_deref())
        .bind(filter.all)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored).collect()
    }

    /// One unknown by id.
    pub async fn get(&self, id: &str) -> Result<Option<StoredUnknown>> {
        let row = sqlx::query("SELECT * FROM policy_unknowns WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored).transpose()
    }

    /// Marks an unknown resolved, with the resolution and its justification. `false` when
    /// there is no such unknown.
    pub async fn resolve(
        &self,
        id: &str,
        resolution: &str,
        justification: &str,
        now: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE policy_unknowns SET status = 'resolved', resolution = ?, justification = ?,
                 resolved_at = ? WHERE id = ?",
        )
        .bind(resolution)
        .bind(justification)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks an unknown escalated (its image is due a rescan). `false` when there is no such
    /// unknown or it is resolved.
    pub async fn escalate(&self, id: &str, now: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE policy_unknowns SET status = 'escalated', escalated_at = ?
             WHERE id = ? AND status <> 'resolved'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn stored(row: &sqlx::sqlite::SqliteRow) -> Result<StoredUnknown> {
    Ok(StoredUnknown {
        row: UnknownRow {
            id: row.try_get("id")?,
            image_digest: row.try_get("image_digest")?,
            subject: row.try_get("subject")?,
            score: row.try_get("score")?,
            band: row.try_get("band")?,
            body: row.try_get("body")?,
        },
        status: row.try_get("status")?,
        first_seen: row.try_get("first_seen")?,
        last_seen: row.try_get("last_seen")?,
        resolution: row.try_get("resolution")?,
        justification: row.try_get("justification")?,
        resolved_at: row.try_get("resolved_at")?,
        escalated_at: row.try_get("escalated_at")?,
    })
}
