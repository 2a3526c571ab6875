//! The VEX module's storage (Excititor's `vex` data): every statement of every imported
//! document, conflicting ones included — nothing is overwritten. Per-module isolation as for
//! advisories: `vex_` tables and their own `vex_schema_migrations` on SQLite (the embedded
//! catalog file), the `vex` schema on PostgreSQL, migrated under
//! `pg_try_advisory_lock(hashtext('vex'))`. A statement's identity is (document digest,
//! statement index), so re-importing a document adds nothing. Each query is written once for
//! both backends ([`crate::db`]).

use crate::advisories::VexScope;
use crate::db::{Pool, with_pool};
use crate::migrate::{Migration, Migrations};
use crate::{Catalog, Result};
use std::collections::BTreeSet;
use stella_vex::{Document, Statement};

/// The VEX module's migrations, in its own ledger on either backend.
pub(crate) const MIGRATIONS: Migrations = Migrations::new("vex", SQLITE_MIGRATIONS, PG_MIGRATIONS);

/// Forward-only migrations of the `vex_` tables on SQLite.
const SQLITE_MIGRATIONS: &[Migration] = &[
    (
    1,
    "CREATE TABLE IF NOT EXISTS vex_documents (
        digest TEXT PRIMARY KEY,
        format TEXT NOT NULL,
        document_id TEXT,
        provider TEXT NOT NULL,
        origin TEXT NOT NULL,
        statements INTEGER NOT NULL,
        imported_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS vex_statements (
        document_digest TEXT NOT NULL REFERENCES vex_documents(digest),
        statement_index INTEGER NOT NULL,
        vulnerability TEXT NOT NULL,
        product TEXT NOT NULL,
        status TEXT NOT NULL,
        justification TEXT,
        provider TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (document_digest, statement_index)
    );
    CREATE INDEX IF NOT EXISTS vex_statements_by_vulnerability ON vex_statements(vulnerability, product);
    CREATE TABLE IF NOT EXISTS vex_imports (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        origin TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        accepted INTEGER NOT NULL,
        rejected INTEGER NOT NULL
    );",
    ),
    (
        2,
        // The trust weight an origin (a FeedSource) gives the statements it stored.
        "CREATE TABLE IF NOT EXISTS vex_origin_weights (
        origin TEXT PRIMARY KEY,
        weight REAL NOT NULL
    );",
    ),
];

/// Forward-only migrations of the `vex` schema on PostgreSQL.
const PG_MIGRATIONS: &[Migration] = &[
    (
    1,
    "CREATE TABLE IF NOT EXISTS vex.documents (
        digest TEXT PRIMARY KEY,
        format TEXT NOT NULL,
        document_id TEXT,
        provider TEXT NOT NULL,
        origin TEXT NOT NULL,
        statements BIGINT NOT NULL,
        imported_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS vex.statements (
        document_digest TEXT NOT NULL REFERENCES vex.documents(digest),
        statement_index BIGINT NOT NULL,
        vulnerability TEXT NOT NULL,
        product TEXT NOT NULL,
        status TEXT NOT NULL,
        justification TEXT,
        provider TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (document_digest, statement_index)
    );
    CREATE INDEX IF NOT EXISTS statements_by_vulnerability ON vex.statements(vulnerability, product);
    CREATE TABLE IF NOT EXISTS vex.imports (
        id BIGSERIAL PRIMARY KEY,
        origin TEXT NOT NULL,
        imported_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        accepted BIGINT NOT NULL,
        rejected BIGINT NOT NULL
    );",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS vex.origin_weights (
        origin TEXT PRIMARY KEY,
        weight DOUBLE PRECISION NOT NULL
    );",
    ),
];

/// Where VEX statements live: the catalog's database, or a PostgreSQL database of their own.
#[derive(Clone, Debug)]
pub struct VexDb {
    pool: Pool,
}

/// Statement counts of one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderCounts {
    pub provider: String,
    /// (status, count), by status name.
    pub by_status: Vec<(String, i64)>,
}

impl VexDb {
    /// The VEX module in the catalog's database, migrated: the `vex_` tables of the embedded
    /// SQLite file, or the `vex` schema beside the catalog's in PostgreSQL.
    pub async fn embedded(catalog: &Catalog) -> Result<VexDb> {
        VexDb::open(catalog.pool.clone()).await
    }

    /// Connects to PostgreSQL and brings the `vex` schema up to date.
    pub async fn connect_postgres(url: &str) -> Result<VexDb> {
        VexDb::open(Pool::Postgres(crate::db::connect_postgres(url).await?)).await
    }

    async fn open(pool: Pool) -> Result<VexDb> {
        MIGRATIONS.apply(&pool).await?;
        Ok(VexDb { pool })
    }

    fn sql(&self, sql: &'static str) -> sqlx::SqlStr {
        self.pool.sql("vex", sql)
    }

    /// Applied migration versions of the `vex` module.
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        MIGRATIONS.applied(&self.pool).await
    }

    /// Stores the documents of one import and all their statements in one transaction, each
    /// document with the origin it was read from. A document already stored (same digest) and
    /// its statements are left as they are. Returns how many statements were new.
    pub async fn put_documents(&self, documents: &[(&Document, &str)]) -> Result<u64> {
        // The import time: text on SQLite, the column's default `now()` on PostgreSQL.
        let document_sql = self.pool.sql_per_dialect(
            "vex",
            "INSERT INTO vex_documents (digest, format, document_id, provider, origin, statements, imported_at)
             VALUES ($1, $2, $3, $4, $5, $6, strftime('%Y-%m-%dT%H:%M:%SZ','now')) ON CONFLICT (digest) DO NOTHING",
            "INSERT INTO vex_documents (digest, format, document_id, provider, origin, statements)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (digest) DO NOTHING",
        );
        let statement_sql = self.sql(
            "INSERT INTO vex_statements (document_digest, statement_index, vulnerability, product, status, justification, provider, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (document_digest, statement_index) DO NOTHING",
        );
        let mut bodies = Vec::with_capacity(documents.len());
        for (document, _) in documents {
            let list: Vec<String> = document
                .statements
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<_, _>>()
                .map_err(|e| crate::Error::Catalog(sqlx::Error::Encode(Box::new(e))))?;
            bodies.push(list);
        }
        Ok(with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            let mut added = 0;
            for ((document, origin), bodies) in documents.iter().zip(&bodies) {
                sqlx::query(document_sql.clone())
                    .bind(&document.digest)
                    .bind(document.format.as_str())
                    .bind(&document.id)
                    .bind(document.provider.to_string())
                    .bind(*origin)
                    .bind(document.statements.len() as i64)
                    .execute(&mut *tx)
                    .await?;
                for (s, body) in document.statements.iter().zip(bodies) {
                    added += sqlx::query(statement_sql.clone())
                        .bind(&s.source.document_digest)
                        .bind(i64::from(s.source.index))
                        .bind(&s.vulnerability.id)
                        .bind(s.product.as_str())
                        .bind(s.status.as_str())
                        .bind(s.justification.map(|j| j.as_str()))
                        .bind(s.provider.to_string())
                        .bind(body)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
            }
            tx.commit().await?;
            added
        }))
    }

    /// A feed's whole truth: stores `documents` under `origin` (as [`VexDb::put_documents`]),
    /// then removes the documents `origin` held that are not among them, with their
    /// statements. Returns (statements added, documents removed). A document another origin
    /// stored first stays that origin's. Two transactions: a failure between them leaves the
    /// dropped documents until the next sync, never a document without its statements.
    pub async fn sync_documents(
        &self,
        origin: &str,
        documents: &[&Document],
    ) -> Result<(u64, u64)> {
        let pairs: Vec<(&Document, &str)> = documents.iter().map(|d| (*d, origin)).collect();
        let added = self.put_documents(&pairs).await?;
        let keep: Vec<&str> = documents.iter().map(|d| d.digest.as_str()).collect();
        let removed = self.remove_origin_except(origin, &keep).await?;
        Ok((added, removed))
    }

    /// Removes every document `origin` holds (a deleted FeedSource), with its statements and
    /// its weight. Returns how many documents went.
    pub async fn remove_origin(&self, origin: &str) -> Result<u64> {
        let removed = self.remove_origin_except(origin, &[]).await?;
        self.set_origin_weight(origin, None).await?;
        Ok(removed)
    }

    /// Sets (or with `None` clears) the trust weight `origin` gives the statements of the
    /// documents it stored. Returns whether it changed.
    pub async fn set_origin_weight(&self, origin: &str, weight: Option<f64>) -> Result<bool> {
        let current = self.sql("SELECT weight FROM vex_origin_weights WHERE origin = $1");
        let put = self.sql(
            "INSERT INTO vex_origin_weights (origin, weight) VALUES ($1, $2)
             ON CONFLICT (origin) DO UPDATE SET weight = excluded.weight",
        );
        let clear = self.sql("DELETE FROM vex_origin_weights WHERE origin = $1");
        Ok(with_pool!(&self.pool, |p| {
            let before: Option<f64> = sqlx::query_scalar(current.clone())
                .bind(origin)
                .fetch_optional(p)
                .await?;
            match weight {
                _ if before == weight => false,
                Some(w) => {
                    sqlx::query(put.clone())
                        .bind(origin)
                        .bind(w)
                        .execute(p)
                        .await?;
                    true
                }
                None => {
                    sqlx::query(clear.clone()).bind(origin).execute(p).await?;
                    true
                }
            }
        }))
    }

    /// The weight of each document whose origin has one ([`VexDb::set_origin_weight`]), by
    /// document digest: [`stella_vex::TrustConfig::documents`].
    pub async fn document_weights(&self) -> Result<std::collections::BTreeMap<String, f64>> {
        let sql = self.sql(
            "SELECT d.digest, w.weight FROM vex_documents d
             JOIN vex_origin_weights w ON w.origin = d.origin",
        );
        let rows: Vec<(String, f64)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql).fetch_all(p).await?);
        Ok(rows.into_iter().collect())
    }

    /// A digest of what the VEX consensus reads from here: every stored document (its
    /// digest and origin) and every origin weight, in byte order. It changes exactly when
    /// statements are added or removed or a weight changes.
    pub async fn state_digest(&self) -> Result<String> {
        use sha2::Digest;
        let documents =
            self.sql(r#"SELECT digest, origin FROM vex_documents ORDER BY digest COLLATE "C""#);
        let weights = self
            .sql(r#"SELECT origin, weight FROM vex_origin_weights ORDER BY origin COLLATE "C""#);
        let documents: Vec<(String, String)> =
            with_pool!(&self.pool, |p| sqlx::query_as(documents.clone())
                .fetch_all(p)
                .await?);
        let weights: Vec<(String, f64)> =
            with_pool!(&self.pool, |p| sqlx::query_as(weights.clone())
                .fetch_all(p)
                .await?);
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"stella-vex-state/1\n");
        for (digest, origin) in documents {
            hasher.update(serde_json::json!(["document", digest, origin]).to_string());
            hasher.update(b"\n");
        }
        for (origin, weight) in weights {
            hasher.update(serde_json::json!(["weight", origin, weight]).to_string());
            hasher.update(b"\n");
        }
        Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The scopes (product and subcomponents) of the statements `origin`'s documents hold.
    pub async fn scopes_of(&self, origin: &str) -> Result<BTreeSet<VexScope>> {
        let sql = self.sql(
            "SELECT s.body FROM vex_statements s
             JOIN vex_documents d ON d.digest = s.document_digest WHERE d.origin = $1",
        );
        let bodies: Vec<String> = with_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(origin)
            .fetch_all(p)
            .await?);
        bodies
            .iter()
            .map(|b| {
                serde_json::from_str::<Statement>(b)
                    .map(|s| VexScope::of(&s))
                    .map_err(|e| crate::Error::Catalog(sqlx::Error::Decode(Box::new(e))))
            })
            .collect()
    }

    async fn remove_origin_except(&self, origin: &str, keep: &[&str]) -> Result<u64> {
        let keep = serde_json::to_string(keep).unwrap_or_else(|_| "[]".into());
        let statements_sql = self.pool.sql_per_dialect(
            "vex",
            "DELETE FROM vex_statements WHERE document_digest IN (
                 SELECT digest FROM vex_documents WHERE origin = $1
                 AND digest NOT IN (SELECT value FROM json_each($2)))",
            "DELETE FROM vex_statements WHERE document_digest IN (
                 SELECT digest FROM vex_documents WHERE origin = $1
                 AND digest NOT IN (SELECT jsonb_array_elements_text(CAST($2 AS jsonb))))",
        );
        let documents_sql = self.pool.sql_per_dialect(
            "vex",
            "DELETE FROM vex_documents WHERE origin = $1 AND digest NOT IN (SELECT value FROM json_each($2))",
            "DELETE FROM vex_documents WHERE origin = $1
             AND digest NOT IN (SELECT jsonb_array_elements_text(CAST($2 AS jsonb)))",
        );
        Ok(with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            sqlx::query(statements_sql)
                .bind(origin)
                .bind(&keep)
                .execute(&mut *tx)
                .await?;
            let removed = sqlx::query(documents_sql)
                .bind(origin)
                .bind(&keep)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            removed
        }))
    }

    /// Every stored statement, ordered by (vulnerability, product, document digest, index):
    /// what scans match against and what the snapshot hash is computed over. A body that no
    /// longer reads as a statement is an error, not skipped.
    pub async fn vex_statements(&self) -> Result<Vec<Statement>> {
        self.select(None).await
    }

    /// The stored statements about one vulnerability id, in the same order.
    pub async fn vex_statements_for(&self, vulnerability: &str) -> Result<Vec<Statement>> {
        self.select(Some(vulnerability)).await
    }

    async fn select(&self, vulnerability: Option<&str>) -> Result<Vec<Statement>> {
        let sql = self.sql(
            r#"SELECT body FROM vex_statements WHERE CAST($1 AS TEXT) IS NULL OR vulnerability = $1
             ORDER BY vulnerability COLLATE "C", product COLLATE "C", document_digest COLLATE "C", statement_index"#,
        );
        let bodies: Vec<String> = with_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(vulnerability)
            .fetch_all(p)
            .await?);
        bodies
            .iter()
            .map(|b| {
                serde_json::from_str(b)
                    .map_err(|e| crate::Error::Catalog(sqlx::Error::Decode(Box::new(e))))
            })
            .collect()
    }

    /// Statement counts per provider and status, sorted by provider.
    pub async fn statement_counts(&self) -> Result<Vec<ProviderCounts>> {
        let sql = self.sql(
            r#"SELECT provider, status, COUNT(*) FROM vex_statements GROUP BY provider, status
             ORDER BY provider COLLATE "C", status COLLATE "C""#,
        );
        let rows: Vec<(String, String, i64)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql).fetch_all(p).await?);
        let mut out: Vec<ProviderCounts> = Vec::new();
        for (provider, status, count) in rows {
            match out.last_mut() {
                Some(last) if last.provider == provider => last.by_status.push((status, count)),
                _ => out.push(ProviderCounts {
                    provider,
                    by_status: vec![(status, count)],
                }),
            }
        }
        Ok(out)
    }

    /// Records an import: its origin and how many statements were accepted and rejected.
    pub async fn record_import(&self, origin: &str, accepted: i64, rejected: i64) -> Result<()> {
        crate::imports::record(&self.pool, "vex", origin, accepted, rejected).await
    }

    /// The last import: (origin, time (RFC 3339, UTC), accepted, rejected).
    pub async fn last_import(&self) -> Result<Option<(String, String, i64, i64)>> {
        crate::imports::last(&self.pool, "vex").await
    }
}

/// More scopes than this in one change make its delta wide (any image may be touched).
const MAX_SCOPES: usize = 10_000;

/// What one VEX write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VexSync {
    /// Statements new to the store.
    pub added: u64,
    /// Documents the origin no longer holds (a sync), removed with their statements.
    pub removed: u64,
    /// The origin's weight changed.
    pub reweighted: bool,
    /// The feed snapshot after it, and its delta when the VEX state changed it.
    pub sync: crate::FeedSync,
}

impl crate::Store {
    /// One sync of a VEX feed: `documents` are `origin`'s whole truth now (as
    /// [`VexDb::sync_documents`]) and `weight` the trust it gives them. When anything
    /// changed, the VEX state is recorded in the feed snapshot with the scopes of the
    /// statements that came, went or were reweighted ([`crate::AdvisoryDb::record_vex`]), so
    /// a Scan pinned to the old snapshot sees the change and impact selection finds the
    /// images it touches.
    pub async fn sync_vex(
        &self,
        origin: &str,
        documents: &[&Document],
        weight: Option<f64>,
    ) -> Result<VexSync> {
        let before = self.vex.scopes_of(origin).await?;
        let (added, removed) = self.vex.sync_documents(origin, documents).await?;
        let reweighted = self.vex.set_origin_weight(origin, weight).await?;
        let changed = added > 0 || removed > 0 || reweighted;
        let scopes = before.into_iter().chain(
            documents
                .iter()
                .flat_map(|d| d.statements.iter().map(VexScope::of)),
        );
        let sync = self.record_vex(origin, changed, scopes).await?;
        Ok(VexSync {
            added,
            removed,
            reweighted,
            sync,
        })
    }

    /// An import (`stella vex import`): `documents` stored beside what is there, each with
    /// its origin, and the VEX state recorded in the feed snapshot when statements were new.
    pub async fn import_vex(&self, documents: &[(&Document, &str)]) -> Result<VexSync> {
        let added = self.vex.put_documents(documents).await?;
        let scopes = documents
            .iter()
            .flat_map(|(d, _)| d.statements.iter().map(VexScope::of));
        let sync = self.record_vex(VEX_IMPORT_FEED, added > 0, scopes).await?;
        Ok(VexSync {
            added,
            removed: 0,
            reweighted: false,
            sync,
        })
    }

    /// Removes what `origin` holds (a deleted FeedSource), its weight too, and records the
    /// change: a sync with nothing.
    pub async fn remove_vex_origin(&self, origin: &str) -> Result<VexSync> {
        self.sync_vex(origin, &[], None).await
    }

    async fn record_vex(
        &self,
        feed: &str,
        changed: bool,
        scopes: impl Iterator<Item = VexScope>,
    ) -> Result<crate::FeedSync> {
        if !changed {
            // Nothing to rehash: the snapshot stands.
            let snapshot = self.advisories.feed_snapshot().await?;
            return Ok(crate::FeedSync {
                snapshot,
                feed_snapshot: self.vex.state_digest().await?,
                delta: None,
            });
        }
        let scopes: BTreeSet<VexScope> = scopes.collect();
        let wide = scopes.len() > MAX_SCOPES;
        let scopes: Vec<VexScope> = if wide {
            vec![]
        } else {
            scopes.into_iter().collect()
        };
        let digest = self.vex.state_digest().await?;
        self.advisories
            .record_vex(feed, &digest, &scopes, wide)
            .await
    }
}

/// The feed `stella vex import` records its changes as.
pub const VEX_IMPORT_FEED: &str = "vex-import";
