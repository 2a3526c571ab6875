//! The advisory module's storage (Concelier's `vuln` data): canonical advisory bodies and their
//! (ecosystem, package) match keys. Per-module isolation as the seeds require: `vuln_` tables
//! on SQLite (embedded default, same file as the catalog), the `vuln` schema on PostgreSQL,
//! whose forward-only migrations run under `pg_try_advisory_lock(hashtext('vuln'))` so that
//! concurrent starters do not race.
//!
//! The feed snapshot ([`AdvisoryDb::feed_snapshot`]) is a digest of the whole content —
//! advisories, KEV, EPSS — kept in one row: every write recomputes it inside its own
//! transaction, and writes serialise (SQLite `BEGIN IMMEDIATE`, PostgreSQL a transaction
//! advisory lock), so the row always describes exactly the committed content.

use crate::db::Pool;
use crate::{Catalog, Result};
use futures::TryStreamExt;
use sha2::Digest;
use sqlx::postgres::{PgConnection, PgPool, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool};
use sqlx::{Row, Transaction};

/// The feed snapshot of a database without advisories, KEV or EPSS scores.
pub const EMPTY_FEED_SNAPSHOT: &str =
    "sha256:c84d3b70647e60a5f20dadbd030fbf575d0eda64f39669e52d1dedf44b4765f9";

/// First line of the hashed snapshot stream: its format version.
const SNAPSHOT_HEADER: &[u8] = b"stella-feed-snapshot/1\n";

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
    (
        3,
        "CREATE TABLE IF NOT EXISTS vuln.feed_snapshot (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        digest TEXT NOT NULL
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
        AdvisoryDb::postgres(crate::db::connect_postgres(url).await?).await
    }

    /// The `vuln` schema on an existing PostgreSQL pool, migrated.
    pub(crate) async fn postgres(pool: PgPool) -> Result<AdvisoryDb> {
        crate::migrate::postgres(&pool, "vuln", PG_MIGRATIONS).await?;
        Ok(AdvisoryDb::Postgres(pool))
    }

    /// The advisory module in the catalog's database: the `vuln_` tables of its SQLite file
    /// (migrated with the catalog), or the `vuln` schema beside the `scanner` one.
    pub(crate) async fn beside(catalog: &Catalog) -> Result<AdvisoryDb> {
        match &catalog.pool {
            Pool::Sqlite(pool) => Ok(AdvisoryDb::Sqlite(pool.clone())),
            Pool::Postgres(pool) => AdvisoryDb::postgres(pool.clone()).await,
        }
    }

    /// The content digest of the feeds (`sha256:<hex>`): the same advisories, KEV catalog and
    /// EPSS scores give the same value in either backend, and any write that changes them
    /// changes it. Cheap: one stored row, kept current by every write (computed here once
    /// for a database written before the row existed). An empty database has
    /// [`EMPTY_FEED_SNAPSHOT`].
    pub async fn feed_snapshot(&self) -> Result<String> {
        let stored: Option<String> = match self {
            AdvisoryDb::Sqlite(pool) => {
                sqlx::query_scalar("SELECT digest FROM vuln_feed_snapshot WHERE id = 1")
                    .fetch_optional(pool)
                    .await?
            }
            AdvisoryDb::Postgres(pool) => {
                sqlx::query_scalar("SELECT digest FROM vuln.feed_snapshot WHERE id = 1")
                    .fetch_optional(pool)
                    .await?
            }
        };
        if let Some(digest) = stored {
            return Ok(digest);
        }
        Ok(match self {
            AdvisoryDb::Sqlite(pool) => commit_sqlite(begin_sqlite(pool).await?).await?,
            AdvisoryDb::Postgres(pool) => commit_postgres(begin_postgres(pool).await?).await?,
        })
    }

    /// Applied migration versions of the `vuln` module (on SQLite, the embedded file's
    /// versions that created `vuln_` tables).
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        Ok(match self {
            AdvisoryDb::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT version FROM scanner_schema_migrations WHERE version IN (2, 3, 5) ORDER BY version",
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
            ($tx:expr, $commit:ident) => {{
                let mut tx = $tx;
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
                $commit(tx).await?;
            }};
        }
        match self {
            AdvisoryDb::Sqlite(pool) => write_all!(begin_sqlite(pool).await?, commit_sqlite),
            AdvisoryDb::Postgres(pool) => {
                write_all!(begin_postgres(pool).await?, commit_postgres)
            }
        }
        Ok(())
    }

    /// Bodies of the advisories that name any of these (ecosystem, package) keys, sorted.
    /// Replaces the KEV catalog (one transaction): a CVE is known exploited exactly when the
    /// latest catalog lists it.
    pub async fn put_kev(&self, entries: &[stella_advisories::exploits::KevEntry]) -> Result<()> {
        macro_rules! write {
            ($tx:expr, $commit:ident, $delete:expr, $insert:expr) => {{
                let mut tx = $tx;
                sqlx::query($delete).execute(&mut *tx).await?;
                for e in entries {
                    sqlx::query($insert)
                        .bind(&e.cve)
                        .bind(&e.date_added)
                        .bind(e.ransomware)
                        .execute(&mut *tx)
                        .await?;
                }
                $commit(tx).await?;
            }};
        }
        match self {
            AdvisoryDb::Sqlite(pool) => write!(
                begin_sqlite(pool).await?,
                commit_sqlite,
                "DELETE FROM vuln_kev",
                "INSERT INTO vuln_kev (cve, date_added, ransomware) VALUES (?, ?, ?)"
            ),
            AdvisoryDb::Postgres(pool) => write!(
                begin_postgres(pool).await?,
                commit_postgres,
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
            ($tx:expr, $commit:ident, $insert:expr) => {{
                let mut tx = $tx;
                for s in scores {
                    sqlx::query($insert)
                        .bind(&s.cve)
                        .bind(s.epss)
                        .bind(s.percentile)
                        .bind(score_date)
                        .execute(&mut *tx)
                        .await?;
                }
                $commit(tx).await?;
            }};
        }
        match self {
            AdvisoryDb::Sqlite(pool) => write!(
                begin_sqlite(pool).await?,
                commit_sqlite,
                "INSERT INTO vuln_epss (cve, epss, percentile, score_date) VALUES (?, ?, ?, ?)
                 ON CONFLICT(cve) DO UPDATE SET epss = excluded.epss,
                     percentile = excluded.percentile, score_date = excluded.score_date"
            ),
            AdvisoryDb::Postgres(pool) => write!(
                begin_postgres(pool).await?,
                commit_postgres,
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

/// A feed write on SQLite: `BEGIN IMMEDIATE` takes the write lock first, so the snapshot
/// computed before commit sees every committed write.
async fn begin_sqlite(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// A feed write on PostgreSQL, serialised with the others by a transaction advisory lock.
async fn begin_postgres(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('vuln.feed_snapshot'))")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Stores the snapshot of the content as this transaction sees it, commits, and returns it.
async fn commit_sqlite(mut tx: Transaction<'static, Sqlite>) -> Result<String> {
    let digest = snapshot_sqlite(&mut tx).await?;
    sqlx::query(
        "INSERT INTO vuln_feed_snapshot (id, digest) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET digest = excluded.digest",
    )
    .bind(&digest)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(digest)
}

async fn commit_postgres(mut tx: Transaction<'static, Postgres>) -> Result<String> {
    let digest = snapshot_postgres(&mut tx).await?;
    sqlx::query(
        "INSERT INTO vuln.feed_snapshot (id, digest) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET digest = excluded.digest",
    )
    .bind(&digest)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(digest)
}

/// Hashes the snapshot stream: the header, then one JSON array per advisory
/// (`["advisory", id, source, modified, body]`), KEV entry (`["kev", cve, dateAdded,
/// ransomware]`) and EPSS score (`["epss", cve, epss, percentile, scoreDate]`), each in
/// bytewise key order and on its own line.
macro_rules! snapshot {
    ($conn:expr, $advisories:expr, $kev:expr, $epss:expr) => {{
        let mut hasher = sha2::Sha256::new();
        hasher.update(SNAPSHOT_HEADER);
        let mut line = |value: serde_json::Value| {
            hasher.update(value.to_string().as_bytes());
            hasher.update(b"\n");
        };
        {
            let mut rows = sqlx::query_as::<_, (String, String, String, String)>($advisories)
                .fetch(&mut *$conn);
            while let Some((id, source, modified, body)) = rows.try_next().await? {
                line(serde_json::json!(["advisory", id, source, modified, body]));
            }
        }
        {
            let mut rows = sqlx::query_as::<_, (String, String, bool)>($kev).fetch(&mut *$conn);
            while let Some((cve, date_added, ransomware)) = rows.try_next().await? {
                line(serde_json::json!(["kev", cve, date_added, ransomware]));
            }
        }
        {
            let mut rows =
                sqlx::query_as::<_, (String, f64, f64, Option<String>)>($epss).fetch(&mut *$conn);
            while let Some((cve, epss, percentile, score_date)) = rows.try_next().await? {
                line(serde_json::json!([
                    "epss", cve, epss, percentile, score_date
                ]));
            }
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }};
}

async fn snapshot_sqlite(conn: &mut SqliteConnection) -> Result<String> {
    Ok(snapshot!(
        conn,
        "SELECT id, source, modified, body FROM vuln_advisories ORDER BY id, source",
        "SELECT cve, date_added, ransomware FROM vuln_kev ORDER BY cve",
        "SELECT cve, epss, percentile, score_date FROM vuln_epss ORDER BY cve"
    ))
}

async fn snapshot_postgres(conn: &mut PgConnection) -> Result<String> {
    Ok(snapshot!(
        conn,
        r#"SELECT id, source, modified, body FROM vuln.advisories ORDER BY id COLLATE "C", source COLLATE "C""#,
        r#"SELECT cve, date_added, ransomware FROM vuln.kev ORDER BY cve COLLATE "C""#,
        r#"SELECT cve, epss, percentile, score_date FROM vuln.epss ORDER BY cve COLLATE "C""#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_snapshot_is_the_header_alone() {
        let digest = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(SNAPSHOT_HEADER))
        );
        assert_eq!(digest, EMPTY_FEED_SNAPSHOT);
    }
}
