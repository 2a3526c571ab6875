//! The unknowns registry's table: `policy_unknowns` in the embedded catalog (the policy
//! module's prefix), `policy.unknowns` in PostgreSQL (its schema, migrated under
//! `pg_try_advisory_lock(hashtext('policy'))`). Each scan records its unknowns; a rescan
//! updates what it sees again and keeps a resolution or an escalation, which only people
//! change.

use crate::db::{Pool, with_pool};
use crate::migrate::{Migration, Migrations};
use crate::{Catalog, Result};
use sqlx::Row;

/// The registry's migrations, in the policy module's ledger on either backend.
pub(crate) const MIGRATIONS: Migrations =
    Migrations::new("policy", SQLITE_MIGRATIONS, PG_MIGRATIONS);

const SQLITE_MIGRATIONS: &[Migration] = &[(
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

/// The same table in the `policy` schema; ids sort bytewise as on SQLite.
const PG_MIGRATIONS: &[Migration] = &[(
    1,
    r#"CREATE TABLE IF NOT EXISTS policy.unknowns (
        id TEXT COLLATE "C" PRIMARY KEY,
        image_digest TEXT NOT NULL,
        subject TEXT NOT NULL,
        score DOUBLE PRECISION NOT NULL,
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
    CREATE INDEX IF NOT EXISTS unknowns_by_band ON policy.unknowns(band, score);
    CREATE INDEX IF NOT EXISTS unknowns_by_image ON policy.unknowns(image_digest);"#,
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

/// The registry, in the catalog's database.
#[derive(Clone, Debug)]
pub struct UnknownsDb {
    pool: Pool,
}

impl UnknownsDb {
    /// The table in the catalog's database (its SQLite file, or the `policy` schema beside
    /// the catalog's in PostgreSQL), migrated.
    pub async fn embedded(catalog: &Catalog) -> Result<UnknownsDb> {
        MIGRATIONS.apply(&catalog.pool).await?;
        Ok(UnknownsDb {
            pool: catalog.pool.clone(),
        })
    }

    fn sql(&self, sql: &'static str) -> sqlx::SqlStr {
        self.pool.sql("policy", sql)
    }

    /// Applied migration versions of the registry.
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        MIGRATIONS.applied(&self.pool).await
    }

    /// Records one scan of `image_digest` (one transaction): new unknowns open, known ones get
    /// the new score and body and keep their triage state, and open or escalated ones of the
    /// image the scan no longer finds are resolved as `not-observed`. `now` is RFC 3339.
    pub async fn record(&self, image_digest: &str, rows: &[UnknownRow], now: &str) -> Result<()> {
        let seen: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let open_sql = self
            .sql("SELECT id FROM policy_unknowns WHERE image_digest = $1 AND status <> 'resolved'");
        let resolve_sql = self.pool.sql_per_dialect(
            "policy",
            "UPDATE policy_unknowns SET status = 'resolved', resolution = 'not-observed',
                 justification = $1, resolved_at = $2 WHERE id IN (SELECT value FROM json_each($3))",
            "UPDATE policy_unknowns SET status = 'resolved', resolution = 'not-observed',
                 justification = $1, resolved_at = $2
             WHERE id IN (SELECT jsonb_array_elements_text(CAST($3 AS jsonb)))",
        );
        // One statement per 500 rows (a JSON list parameter), not one per row.
        let upsert_sql = self.pool.sql_per_dialect(
            "policy",
            "INSERT INTO policy_unknowns (id, image_digest, subject, score, band, body, first_seen, last_seen)
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                    CAST(json_extract(value, '$[3]') AS REAL), json_extract(value, '$[4]'),
                    json_extract(value, '$[5]'), $2, $2
             FROM json_each($1) WHERE true
             ON CONFLICT (id) DO UPDATE SET score = excluded.score, band = excluded.band,
                 body = excluded.body, last_seen = excluded.last_seen",
            "INSERT INTO policy_unknowns (id, image_digest, subject, score, band, body, first_seen, last_seen)
             SELECT r->>0, r->>1, r->>2, CAST(r->>3 AS DOUBLE PRECISION), r->>4, r->>5, $2, $2
             FROM jsonb_array_elements(CAST($1 AS jsonb)) r
             ON CONFLICT (id) DO UPDATE SET score = excluded.score, band = excluded.band,
                 body = excluded.body, last_seen = excluded.last_seen",
        );
        // The last row of an id wins, as one upsert after another would.
        let mut latest: std::collections::BTreeMap<&str, &UnknownRow> = Default::default();
        for r in rows {
            latest.insert(r.id.as_str(), r);
        }
        let rows: Vec<serde_json::Value> = latest
            .values()
            .map(|r| serde_json::json!([r.id, r.image_digest, r.subject, r.score, r.band, r.body]))
            .collect();
        with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            let open: Vec<String> = sqlx::query_scalar(open_sql)
                .bind(image_digest)
                .fetch_all(&mut *tx)
                .await?;
            let gone: Vec<&String> = open
                .iter()
                .filter(|id| !seen.contains(id.as_str()))
                .collect();
            for chunk in gone.chunks(500) {
                sqlx::query(resolve_sql.clone())
                    .bind(format!("a rescan at {now} no longer finds it"))
                    .bind(now)
                    .bind(serde_json::to_string(chunk).unwrap_or_default())
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in rows.chunks(500) {
                sqlx::query(upsert_sql.clone())
                    .bind(serde_json::to_string(chunk).unwrap_or_default())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Unknowns by score (highest first), then id.
    pub async fn list(&self, filter: &UnknownFilter) -> Result<Vec<StoredUnknown>> {
        let sql = self.sql(
            "SELECT id, image_digest, subject, score, band, body, status, first_seen, last_seen,
                 resolution, justification, resolved_at, escalated_at
             FROM policy_unknowns
             WHERE (CAST($1 AS TEXT) IS NULL OR band = $1) AND (CAST($2 AS TEXT) IS NULL OR image_digest = $2)
               AND ($3 OR status <> 'resolved')
             ORDER BY score DESC, id",
        );
        with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(filter.band.as_deref())
            .bind(filter.image_digest.as_deref())
            .bind(filter.all)
            .fetch_all(p)
            .await?
            .iter()
            .map(stored)
            .collect())
    }

    /// One unknown by id.
    pub async fn get(&self, id: &str) -> Result<Option<StoredUnknown>> {
        let sql = self.sql(
            "SELECT id, image_digest, subject, score, band, body, status, first_seen, last_seen,
                 resolution, justification, resolved_at, escalated_at
             FROM policy_unknowns WHERE id = $1",
        );
        with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(id)
            .fetch_optional(p)
            .await?
            .as_ref()
            .map(stored)
            .transpose())
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
        let sql = self.sql(
            "UPDATE policy_unknowns SET status = 'resolved', resolution = $1, justification = $2,
                 resolved_at = $3 WHERE id = $4",
        );
        let done = with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(resolution)
            .bind(justification)
            .bind(now)
            .bind(id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(done == 1)
    }

    /// Marks an unknown escalated (its image is due a rescan). `false` when there is no such
    /// unknown or it is resolved.
    pub async fn escalate(&self, id: &str, now: &str) -> Result<bool> {
        let sql = self.sql(
            "UPDATE policy_unknowns SET status = 'escalated', escalated_at = $1
             WHERE id = $2 AND status <> 'resolved'",
        );
        let done = with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(now)
            .bind(id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(done == 1)
    }
}

/// A [`StoredUnknown`] from either backend's row.
fn stored<R>(row: &R) -> Result<StoredUnknown>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    f64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
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
