//! The advisory module's storage (Concelier's `vuln` data): canonical advisory bodies and their
//! (ecosystem, package) match keys. Per-module isolation as the seeds require: `vuln_` tables
//! on SQLite (embedded default, same file as the catalog), the `vuln` schema on PostgreSQL,
//! whose forward-only migrations run under `pg_try_advisory_lock(hashtext('vuln'))` so that
//! concurrent starters do not race. Each query is written once for both backends
//! ([`crate::db`]).
//!
//! The feed snapshot ([`AdvisoryDb::feed_snapshot`]) is a digest of the whole content —
//! advisories, KEV, EPSS — kept in one row: every write recomputes it inside its own
//! transaction, and writes serialise (SQLite `BEGIN IMMEDIATE`, PostgreSQL a transaction
//! advisory lock), so the row always describes exactly the committed content.

use crate::db::{Pool, with_pool};
use crate::migrate::{Migration, Migrations};
use crate::{Catalog, Result};
use futures::TryStreamExt;
use sha2::Digest;
use sqlx::SqlStr;

/// The feed snapshot of a database without advisories, KEV or EPSS scores.
pub const EMPTY_FEED_SNAPSHOT: &str =
    "sha256:c84d3b70647e60a5f20dadbd030fbf575d0eda64f39669e52d1dedf44b4765f9";

/// First line of the hashed snapshot stream: its format version.
const SNAPSHOT_HEADER: &[u8] = b"stella-feed-snapshot/1\n";

/// The advisory module's migrations. On SQLite they are recorded in the catalog's ledger
/// (`scanner_schema_migrations`, versions 2, 3 and 5), where the embedded file has always
/// kept them; a new one takes that ledger's next free version.
pub(crate) const MIGRATIONS: Migrations =
    Migrations::new("vuln", SQLITE_MIGRATIONS, PG_MIGRATIONS).in_sqlite_ledger_of("scanner");

/// Forward-only migrations of the `vuln_` tables on SQLite.
const SQLITE_MIGRATIONS: &[Migration] = &[
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
    (
        5,
        // The advisory module's content digest, kept current by every import (one row).
        "CREATE TABLE IF NOT EXISTS vuln_feed_snapshot (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        digest TEXT NOT NULL
    );",
    ),
];

/// Forward-only migrations of the `vuln` schema on PostgreSQL.
const PG_MIGRATIONS: &[Migration] = &[
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

/// Where advisories live: the catalog's database, or a PostgreSQL database of their own.
#[derive(Clone, Debug)]
pub struct AdvisoryDb {
    pool: Pool,
}

/// A value a feed write binds.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Real(f64),
    Flag(bool),
}

use Value::{Flag, MaybeText, Real, Text};

/// One statement of a feed write and the values it binds, in order.
type Statement<'a> = (SqlStr, Vec<Value<'a>>);

/// A feed write's statements, made as they run (an import is many). Boxed: the write's
/// future stays `Send` without the closures that make them in its type.
type Statements<'a> = Box<dyn Iterator<Item = Statement<'a>> + Send + 'a>;

impl AdvisoryDb {
    /// Connects to PostgreSQL and brings the `vuln` schema up to date.
    pub async fn connect_postgres(url: &str) -> Result<AdvisoryDb> {
        AdvisoryDb::open(Pool::Postgres(crate::db::connect_postgres(url).await?)).await
    }

    /// The advisory module in the catalog's database, migrated: the `vuln_` tables of its
    /// SQLite file, or the `vuln` schema beside the `scanner` one.
    pub(crate) async fn beside(catalog: &Catalog) -> Result<AdvisoryDb> {
        AdvisoryDb::open(catalog.pool.clone()).await
    }

    async fn open(pool: Pool) -> Result<AdvisoryDb> {
        MIGRATIONS.apply(&pool).await?;
        Ok(AdvisoryDb { pool })
    }

    fn sql(&self, sql: &'static str) -> SqlStr {
        self.pool.sql("vuln", sql)
    }

    /// The content digest of the feeds (`sha256:<hex>`): the same advisories, KEV catalog and
    /// EPSS scores give the same value in either backend, and any write that changes them
    /// changes it. Cheap: one stored row, kept current by every write (computed here once
    /// for a database written before the row existed). An empty database has
    /// [`EMPTY_FEED_SNAPSHOT`].
    pub async fn feed_snapshot(&self) -> Result<String> {
        let sql = self.sql("SELECT digest FROM vuln_feed_snapshot WHERE id = 1");
        let stored: Option<String> = with_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .fetch_optional(p)
            .await?);
        match stored {
            Some(digest) => Ok(digest),
            None => self.write(Box::new(std::iter::empty())).await,
        }
    }

    /// Applied migration versions of the `vuln` module (on SQLite, the embedded file's
    /// versions that created `vuln_` tables).
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        MIGRATIONS.applied(&self.pool).await
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
        let upsert = &self.sql(
            "INSERT INTO vuln_advisories (id, source, modified, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id, source) DO UPDATE SET modified = excluded.modified, body = excluded.body",
        );
        let clear = &self.sql("DELETE FROM vuln_affected WHERE advisory_id = $1 AND source = $2");
        let key = &self.sql(
            "INSERT INTO vuln_affected (ecosystem, package, advisory_id, source) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        );
        let statements = rows.iter().flat_map(|row| {
            let (id, source) = (Text(row.id), Text(row.source));
            [
                (
                    upsert.clone(),
                    vec![id, source, Text(row.modified), Text(row.body)],
                ),
                (clear.clone(), vec![id, source]),
            ]
            .into_iter()
            .chain(row.keys.iter().map(move |(ecosystem, package)| {
                (
                    key.clone(),
                    vec![Text(ecosystem), Text(package), id, source],
                )
            }))
        });
        self.write(Box::new(statements)).await.map(drop)
    }

    /// Replaces the KEV catalog (one transaction): a CVE is known exploited exactly when the
    /// latest catalog lists it.
    pub async fn put_kev(&self, entries: &[stella_advisories::exploits::KevEntry]) -> Result<()> {
        let insert =
            &self.sql("INSERT INTO vuln_kev (cve, date_added, ransomware) VALUES ($1, $2, $3)");
        let statements = std::iter::once((self.sql("DELETE FROM vuln_kev"), vec![])).chain(
            entries.iter().map(|e| {
                (
                    insert.clone(),
                    vec![Text(&e.cve), Text(&e.date_added), Flag(e.ransomware)],
                )
            }),
        );
        self.write(Box::new(statements)).await.map(drop)
    }

    /// Stores EPSS scores (one transaction), replacing older scores of the same CVEs.
    pub async fn put_epss(
        &self,
        scores: &[stella_advisories::exploits::EpssScore],
        score_date: Option<&str>,
    ) -> Result<()> {
        let upsert = &self.sql(
            "INSERT INTO vuln_epss (cve, epss, percentile, score_date) VALUES ($1, $2, $3, $4)
             ON CONFLICT (cve) DO UPDATE SET epss = excluded.epss,
                 percentile = excluded.percentile, score_date = excluded.score_date",
        );
        let statements = scores.iter().map(|s| {
            let values = vec![
                Text(&s.cve),
                Real(s.epss),
                Real(s.percentile),
                MaybeText(score_date),
            ];
            (upsert.clone(), values)
        });
        self.write(Box::new(statements)).await.map(drop)
    }

    /// KEV membership and EPSS score of each of `cves` that has either, by CVE.
    pub async fn exploit_signals(
        &self,
        cves: &[String],
    ) -> Result<std::collections::BTreeMap<String, (bool, Option<f64>)>> {
        // The CVEs go in as one JSON array parameter, which each dialect unpacks its own way.
        let kev_sql = self.pool.sql_per_dialect(
            "vuln",
            "SELECT cve FROM vuln_kev WHERE cve IN (SELECT value FROM json_each($1))",
            "SELECT cve FROM vuln_kev WHERE cve IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))",
        );
        let epss_sql = self.pool.sql_per_dialect(
            "vuln",
            "SELECT cve, epss FROM vuln_epss WHERE cve IN (SELECT value FROM json_each($1))",
            "SELECT cve, epss FROM vuln_epss WHERE cve IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))",
        );
        let mut out: std::collections::BTreeMap<String, (bool, Option<f64>)> = Default::default();
        for chunk in cves.chunks(500) {
            let json = serde_json::to_string(chunk).unwrap_or_default();
            let (kev, epss): (Vec<String>, Vec<(String, f64)>) = with_pool!(&self.pool, |p| (
                sqlx::query_scalar(kev_sql.clone())
                    .bind(&json)
                    .fetch_all(p)
                    .await?,
                sqlx::query_as(epss_sql.clone())
                    .bind(&json)
                    .fetch_all(p)
                    .await?,
            ));
            for cve in kev {
                out.entry(cve).or_default().0 = true;
            }
            for (cve, score) in epss {
                out.entry(cve).or_default().1 = Some(score);
            }
        }
        Ok(out)
    }

    /// Bodies of the advisories that name any of these (ecosystem, package) keys, sorted.
    pub async fn advisories_for(&self, keys: &[(String, String)]) -> Result<Vec<String>> {
        let sql = self.sql(
            "SELECT a.body FROM vuln_affected f JOIN vuln_advisories a ON a.id = f.advisory_id AND a.source = f.source
             WHERE f.ecosystem = $1 AND f.package = $2",
        );
        let mut bodies = std::collections::BTreeSet::new();
        for (ecosystem, package) in keys {
            let rows: Vec<String> = with_pool!(&self.pool, |p| sqlx::query_scalar(sql.clone())
                .bind(ecosystem)
                .bind(package)
                .fetch_all(p)
                .await?);
            bodies.extend(rows);
        }
        Ok(bodies.into_iter().collect())
    }

    /// Every advisory body, ordered by (id, source): the snapshot's content.
    pub async fn advisory_bodies(&self) -> Result<Vec<String>> {
        let sql = self
            .sql(r#"SELECT body FROM vuln_advisories ORDER BY id COLLATE "C", source COLLATE "C""#);
        Ok(with_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .fetch_all(p)
            .await?))
    }

    /// Advisory counts per source.
    pub async fn advisory_counts(&self) -> Result<Vec<(String, i64)>> {
        let sql = self
            .sql("SELECT source, COUNT(*) FROM vuln_advisories GROUP BY source ORDER BY source");
        Ok(with_pool!(&self.pool, |p| sqlx::query_as(sql)
            .fetch_all(p)
            .await?))
    }

    /// Records an import.
    pub async fn record_import(&self, origin: &str, accepted: i64, rejected: i64) -> Result<()> {
        crate::imports::record(&self.pool, "vuln", origin, accepted, rejected).await
    }

    /// The last import: (origin, time (RFC 3339, UTC), accepted, rejected).
    pub async fn last_import(&self) -> Result<Option<(String, String, i64, i64)>> {
        crate::imports::last(&self.pool, "vuln").await
    }

    /// Runs one feed write: `statements` in one transaction that holds the feeds' write lock
    /// ([`feed_write_lock`]), then the snapshot of the content as that transaction sees it,
    /// stored before the commit and returned.
    async fn write(&self, statements: Statements<'_>) -> Result<String> {
        let (begin, lock) = feed_write_lock(&self.pool);
        let [advisories, kev, epss] = [
            r#"SELECT id, source, modified, body FROM vuln_advisories ORDER BY id COLLATE "C", source COLLATE "C""#,
            r#"SELECT cve, date_added, ransomware FROM vuln_kev ORDER BY cve COLLATE "C""#,
            r#"SELECT cve, epss, percentile, score_date FROM vuln_epss ORDER BY cve COLLATE "C""#,
        ]
        .map(|sql| self.sql(sql));
        let store = self.sql(
            "INSERT INTO vuln_feed_snapshot (id, digest) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET digest = excluded.digest",
        );
        Ok(with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(begin).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            for (sql, values) in statements {
                let mut query = sqlx::query(sql);
                for value in values {
                    query = match value {
                        Text(v) => query.bind(v),
                        MaybeText(v) => query.bind(v),
                        Real(v) => query.bind(v),
                        Flag(v) => query.bind(v),
                    };
                }
                query.execute(&mut *tx).await?;
            }
            // The snapshot stream: the header, then one JSON array per advisory (`["advisory",
            // id, source, modified, body]`), KEV entry (`["kev", cve, dateAdded, ransomware]`)
            // and EPSS score (`["epss", cve, epss, percentile, scoreDate]`), each in bytewise
            // key order and on its own line.
            let mut hasher = sha2::Sha256::new();
            hasher.update(SNAPSHOT_HEADER);
            let mut line = |value: serde_json::Value| {
                hasher.update(value.to_string().as_bytes());
                hasher.update(b"\n");
            };
            {
                let mut rows = sqlx::query_as::<_, (String, String, String, String)>(advisories)
                    .fetch(&mut *tx);
                while let Some((id, source, modified, body)) = rows.try_next().await? {
                    line(serde_json::json!(["advisory", id, source, modified, body]));
                }
            }
            {
                let mut rows = sqlx::query_as::<_, (String, String, bool)>(kev).fetch(&mut *tx);
                while let Some((cve, date_added, ransomware)) = rows.try_next().await? {
                    line(serde_json::json!(["kev", cve, date_added, ransomware]));
                }
            }
            {
                let mut rows =
                    sqlx::query_as::<_, (String, f64, f64, Option<String>)>(epss).fetch(&mut *tx);
                while let Some((cve, epss, percentile, score_date)) = rows.try_next().await? {
                    line(serde_json::json!([
                        "epss", cve, epss, percentile, score_date
                    ]));
                }
            }
            let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
            sqlx::query(store).bind(&digest).execute(&mut *tx).await?;
            tx.commit().await?;
            digest
        }))
    }
}

/// How a feed write begins, the one step the dialects take differently: SQLite's `BEGIN
/// IMMEDIATE` takes the write lock first, so the snapshot computed before commit sees every
/// committed write; on PostgreSQL a transaction advisory lock serialises the feed writes.
/// (The statement that begins the transaction, and one to run first inside it.)
fn feed_write_lock(pool: &Pool) -> (&'static str, Option<&'static str>) {
    match pool {
        Pool::Sqlite(_) => ("BEGIN IMMEDIATE", None),
        Pool::Postgres(_) => (
            "BEGIN",
            Some("SELECT pg_advisory_xact_lock(hashtext('vuln.feed_snapshot'))"),
        ),
    }
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
