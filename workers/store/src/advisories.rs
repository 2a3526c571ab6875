//! The advisory module's storage (Concelier's `vuln` data): canonical advisory bodies and their
//! (ecosystem, package) match keys. Per-module isolation as the seeds require: `vuln_` tables
//! on SQLite (embedded default, same file as the catalog), the `vuln` schema on PostgreSQL,
//! whose forward-only migrations run under `pg_try_advisory_lock(hashtext('vuln'))` so that
//! concurrent starters do not race.

use crate::Result;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqlitePool;
use std::time::Duration;

/// Forward-only migrations of the `vuln` schema on PostgreSQL.
const PG_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS vuln.advisories (
        id TEXT NOT NULL,
        source TEXT NOT NULL,
        modified TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (id, source)
    );
    CREATE TABLE IF NOT EXISTS vuln.affected (
        ecosystem TEXT NOT NULL,
        package TEXT NOT NULL,
        advisory_id TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (ecosystem, package, advisory_id, source)
    );
    CREATE TABLE IF NOT EXISTS vuln.imports (
        id BIGSERIAL PRIMARY KEY,
        origin TEXT NOT NULL,
        imported_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        accepted BIGINT NOT NULL,
        rejected BIGINT NOT NULL
    );",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS vuln.kev (
        cve TEXT PRIMARY KEY,
        date_added TEXT NOT NULL,
        ransomware BOOLEAN NOT NULL
    );
    CREATE TABLE IF NOT EXISTS vuln.epss (
        cve TEXT PRIMARY KEY,
        epss DOUBLE PRECISION NOT NULL,
        percentile DOUBLE PRECISION NOT NULL,
        score_date TEXT
    );",
    ),
];

/// One advisory to store: its canonical JSON body and its `(ecosystem, package)` match keys.
#[derive(Debug, Clone, Copy)]
pub struct AdvisoryRow<'a> {
    pub id: &'a str,
    pub source: &'a str,
    pub modified: &'a str,
    pub body: &'a str,
    pub keys: &'a [(String, String)],
}

/// Where advisories live.
#[derive(Clone, Debug)]
pub enum AdvisoryDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl AdvisoryDb {
    /// Connects to PostgreSQL and brings the `vuln` schema up to date.
    pub async fn connect_postgres(url: &str) -> Result<AdvisoryDb> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        crate::migrate::postgres(&pool, "vuln", PG_MIGRATIONS).await?;
        Ok(AdvisoryDb::Postgres(pool))
    }

    /// Applied migration versions of the `vuln` module.
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        Ok(match self {
            AdvisoryDb::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT version FROM scanner_schema_migrations WHERE version = 2",
                )
                .fetch_all(pool)
                .await?
            }
            AdvisoryDb::Postgres(pool) => {
                sqlx::query_scalar("SELECT version FROM vuln.schema_migrations ORDER BY version")
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// Stores (or replaces) one advisory: its canonical JSON body and its match keys.
    pub async fn put_advisory(
        &self,
        id: &str,
        source: &str,
        modified: &str,
        body: &str,
        keys: &[(String, String)],
    ) -> Result<()> {
        self.put_advisories(&[AdvisoryRow {
            id,
            source,
            modified,
            body,
            keys,
        }])
        .await
    }

    /// Stores (or replaces) advisories in one transaction: a feed import is one commit, not one
    /// per record (20,000 single-record commits took 20 s on SQLite).
    pub async fn put_advisories(&self, rows: &[AdvisoryRow<'_>]) -> Result<()> {
        // The two dialects differ in placeholders, schema separator and "ignore" syntax only.
        let (upsert, clear, key) = match self {
            AdvisoryDb::Sqlite(_) => (
                "INSERT INTO vuln_advisories (id, source, modified, body) VALUES (?, ?, ?, ?)
                 ON CONFLICT(id, source) DO UPDATE SET modified = excluded.modified, body = excluded.body",
                "DELETE FROM vuln_affected WHERE advisory_id = ? AND source = ?",
                "INSERT OR IGNORE INTO vuln_affected (ecosystem, package, advisory_id, source) VALUES (?, ?, ?, ?)",
            ),
            AdvisoryDb::Postgres(_) => (
                "INSERT INTO vuln.advisories (id, source, modified, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id, source) DO UPDATE SET modified = excluded.modified, body = excluded.body",
                "DELETE FROM vuln.affected WHERE advisory_id = $1 AND source = $2",
                "INSERT INTO vuln.affected (ecosystem, package, advisory_id, source) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            ),
        };
        macro_rules! write_all {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                for row in rows {
                    sqlx::query(upsert)
                        .bind(row.id)
                        .bind(row.source)
                        .bind(row.modified)
                        .bind(row.body)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(clear)
                        .bind(row.id)
                        .bind(row.source)
                        .execute(&mut *tx)
                        .await?;
                    for (ecosystem, package) in row.keys {
                        sqlx::query(key)
                            .bind(ecosystem)
                            .bind(package)
                            .bind(row.id)
                            .bind(row.source)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
            }};
        }
        match self {
            AdvisoryDb::Sqlite(pool) => write_all!(pool),
            AdvisoryDb::Postgres(pool) => write_all!(pool),
        }
        Ok(())
    }

    /// Bodies of the advisories that name any of these (ecosystem, package) keys, sorted.
    /// Replaces the KEV catalog (one transaction): a CVE is known exploited exactly when the
    /// latest catalog lists it.
    pub async fn put_kev(&self, entries: &[stella_advisories::exploits::KevEntry]) -> Result<()> {
        macro_rules! write {
            ($pool:expr, $delete:expr, $insert:expr) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query($delete).execute(&mut *tx).await?;
                for e in entries {
                    sqlx::query($insert)
                        .bind(&e.cve)
                        .bind(&e.date_added)
                        .bind(e.ransomware)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }};
        }
        match self {
            AdvisoryDb::Sqlite(pool) => write!(
                pool,
                "DELETE FROM vuln_kev",
                "INSERT INTO vuln_kev (cve, date_added, ransomware) VALUES (?, ?, ?)"
            ),
            AdvisoryDb::Postgres(pool) => write!(
                pool,
                "DELETE FROM vuln.kev",
                "INSERT INTO vuln.kev (cve, date_added, ransomware) VALUES ($1, $2, $3)"
            ),
        }
        Ok(())
    }

    /// Stores EPSS scores (one transaction), replacing older scores of the same CVEs.
    pub async fn put_epss(
        &self,
        scores: &[stella_advisories::exploits::EpssScore],
        score_date: Option<&str>,
    ) -> Result<()> {
        macro_rules! write {
            ($pool:expr, $insert:expr) => {{
                let mut tx = $pool.begin().await?;
                for s in scores {
                    sqlx::query($insert)
                        .bind(&s.cve)
                        .bind(s.epss)
                        .bind(s.percentile)
                        .bind(score_date)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }};
        }
        match self {
            AdvisoryDb::Sqlite(pool) => write!(
                pool,
                "INSERT INTO vuln_epss (cve, epss, percentile, score_date) VALUES (?, ?, ?, ?)
                 ON CONFLICT(cve) DO UPDATE SET epss = excluded.epss,
                     percentile = excluded.percentile, score_date = excluded.score_date"
            ),
            AdvisoryDb::Postgres(pool) => write!(
                pool,
                "INSERT INTO vuln.epss (cve, epss, percentile, score_date) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (cve) DO UPDATE SET epss = excluded.epss,
                     percentile = excluded.percentile, score_date = excluded.score_date"
            ),
        }
        Ok(())
    }

    /// KEV membership and EPSS score of each of `cves` that has either, by CVE.
    pub async fn exploit_signals(
        &self,
        cves: &[String],
    ) -> Result<std::collections::BTreeMap<String, (bool, Option<f64>)>> {
        let mut out: std::collections::BTreeMap<String, (bool, Option<f64>)> = Default::default();
        for chunk in cves.chunks(500) {
            let list: Vec<String> = chunk.to_vec();
            let (kev, epss): (Vec<String>, Vec<(String, f64)>) = match self {
                AdvisoryDb::Sqlite(pool) => {
                    let json = serde_json::to_string(&list).unwrap_or_default();
                    let kev = sqlx::query_scalar(
                        "SELECT cve FROM vuln_kev WHERE cve IN (SELECT value FROM json_each(?))",
                    )
                    .bind(&json)
                    .fetch_all(pool)
                    .await?;
                    let epss = sqlx::query_as(
                        "SELECT cve, epss FROM vuln_epss WHERE cve IN (SELECT value FROM json_each(?))",
                    )
                    .bind(&json)
                    .fetch_all(pool)
                    .await?;
                    (kev, epss)
                }
                AdvisoryDb::Postgres(pool) => {
                    let kev = sqlx::query_scalar("SELECT cve FROM vuln.kev WHERE cve = ANY($1)")
                        .bind(&list)
                        .fetch_all(pool)
                        .await?;
                    let epss =
                        sqlx::query_as("SELECT cve, epss FROM vuln.epss WHERE cve = ANY($1)")
                            .bind(&list)
                            .fetch_all(pool)
                            .await?;
                    (kev, epss)
                }
            };
            for cve in kev {
                out.entry(cve).or_default().0 = true;
            }
            for (cve, score) in epss {
                out.entry(cve).or_default().1 = Some(score);
            }
        }
        Ok(out)
    }

    pub async fn advisories_for(&self, keys: &[(String, String)]) -> Result<Vec<String>> {
        let mut bodies = std::collections::BTreeSet::new();
        for (ecosystem, package) in keys {
            let rows: Vec<String> = match self {
                AdvisoryDb::Sqlite(pool) => {
                    sqlx::query_scalar(
                        "SELECT a.body FROM vuln_affected f JOIN vuln_advisories a ON a.id = f.advisory_id AND a.source = f.source
                         WHERE f.ecosystem = ? AND f.package = ?",
                    )
                    .bind(ecosystem)
                    .bind(package)
                    .fetch_all(pool)
                    .await?
                }
                AdvisoryDb::Postgres(pool) => {
                    sqlx::query_scalar(
                        "SELECT a.body FROM vuln.affected f JOIN vuln.advisories a ON a.id = f.advisory_id AND a.source = f.source
                         WHERE f.ecosystem = $1 AND f.package = $2",
                    )
                    .bind(ecosystem)
                    .bind(package)
                    .fetch_all(pool)
                    .await?
                }
            };
            bodies.extend(rows);
        }
        Ok(bodies.into_iter().collect())
    }

    /// Every advisory body, ordered by (id, source): the snapshot's content.
    pub async fn advisory_bodies(&self) -> Result<Vec<String>> {
        Ok(match self {
            AdvisoryDb::Sqlite(pool) => {
                sqlx::query_scalar("SELECT body FROM vuln_advisories ORDER BY id, source")
                    .fetch_all(pool)
                    .await?
            }
            AdvisoryDb::Postgres(pool) => sqlx::query_scalar(
                "SELECT body FROM vuln.advisories ORDER BY id COLLATE \"C\", source COLLATE \"C\"",
            )
            .fetch_all(pool)
            .await?,
        })
    }

    /// Advisory counts per source.
    pub async fn advisory_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            match self {
                AdvisoryDb::Sqlite(pool) => sqlx::query(
                    "SELECT source, COUNT(*) FROM vuln_advisories GROUP BY source ORDER BY source",
                )
                .fetch_all(pool)
                .await?,
                AdvisoryDb::Postgres(pool) => {
                    return Ok(sqlx::query(
                    "SELECT source, COUNT(*) FROM vuln.advisories GROUP BY source ORDER BY source",
                )
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect());
                }
            };
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records an import.
    pub async fn record_import(&self, origin: &str, accepted: i64, rejected: i64) -> Result<()> {
        match self {
            AdvisoryDb::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO vuln_imports (origin, imported_at, accepted, rejected) VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ','now'), ?, ?)",
                )
                .bind(origin)
                .bind(accepted)
                .bind(rejected)
                .execute(pool)
                .await?;
            }
            AdvisoryDb::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO vuln.imports (origin, accepted, rejected) VALUES ($1, $2, $3)",
                )
                .bind(origin)
                .bind(accepted)
                .bind(rejected)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// The last import: (origin, time (RFC 3339, UTC), accepted, rejected).
    pub async fn last_import(&self) -> Result<Option<(String, String, i64, i64)>> {
        Ok(match self {
            AdvisoryDb::Sqlite(pool) => sqlx::query("SELECT origin, imported_at, accepted, rejected FROM vuln_imports ORDER BY id DESC LIMIT 1")
                .fetch_optional(pool)
                .await?
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
            AdvisoryDb::Postgres(pool) => sqlx::query(
                "SELECT origin, to_char(imported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), accepted, rejected
                 FROM vuln.imports ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
        })
    }
}
