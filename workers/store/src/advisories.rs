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
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

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
    (
        6,
        // Which feed holds which advisory (replace-on-resync removes only a feed's own), the
        // delta of every change of the snapshot, and each feed's sync state.
        FEEDS_SQLITE,
    ),
    (
        7,
        // The VEX module's state digest, part of the feed snapshot (one row).
        "CREATE TABLE IF NOT EXISTS vuln_vex_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        digest TEXT NOT NULL
    );",
    ),
];

/// The feed tables (SQLite): membership, the delta log, per-feed state. Advisories stored
/// before feeds existed belong to the `import` feed (`stella feeds import`).
const FEEDS_SQLITE: &str = "CREATE TABLE IF NOT EXISTS vuln_feed_members (
        feed TEXT NOT NULL,
        id TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (feed, id, source)
    );
    CREATE INDEX IF NOT EXISTS vuln_feed_members_by_advisory ON vuln_feed_members(id, source);
    INSERT OR IGNORE INTO vuln_feed_members (feed, id, source)
        SELECT 'import', id, source FROM vuln_advisories;
    CREATE TABLE IF NOT EXISTS vuln_feed_deltas (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        feed TEXT NOT NULL,
        from_snapshot TEXT NOT NULL,
        to_snapshot TEXT NOT NULL,
        at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS vuln_feed_deltas_by_to ON vuln_feed_deltas(to_snapshot);
    CREATE TABLE IF NOT EXISTS vuln_feeds (
        feed TEXT PRIMARY KEY,
        snapshot TEXT NOT NULL,
        records INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        etag TEXT,
        last_modified TEXT,
        synced_at TEXT NOT NULL
    );";

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
    (
        4,
        "CREATE TABLE IF NOT EXISTS vuln.feed_members (
        feed TEXT NOT NULL,
        id TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (feed, id, source)
    );
    CREATE INDEX IF NOT EXISTS feed_members_by_advisory ON vuln.feed_members(id, source);
    INSERT INTO vuln.feed_members (feed, id, source)
        SELECT 'import', id, source FROM vuln.advisories ON CONFLICT DO NOTHING;
    CREATE TABLE IF NOT EXISTS vuln.feed_deltas (
        seq BIGSERIAL PRIMARY KEY,
        feed TEXT NOT NULL,
        from_snapshot TEXT NOT NULL,
        to_snapshot TEXT NOT NULL,
        at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS feed_deltas_by_to ON vuln.feed_deltas(to_snapshot);
    CREATE TABLE IF NOT EXISTS vuln.feeds (
        feed TEXT PRIMARY KEY,
        snapshot TEXT NOT NULL,
        records BIGINT NOT NULL,
        rejected BIGINT NOT NULL,
        etag TEXT,
        last_modified TEXT,
        synced_at TEXT NOT NULL
    );",
    ),
    (
        5,
        "CREATE TABLE IF NOT EXISTS vuln.vex_state (
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
#[derive(Clone)]
pub struct AdvisoryDb {
    pool: Pool,
    /// In the catalog's database (so Notify's outbox is in reach of its transactions).
    beside: bool,
    /// Builds the events that report a logged feed delta, committed with it.
    reporter: Arc<OnceLock<DeltaReporter>>,
}

impl std::fmt::Debug for AdvisoryDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryDb")
            .field("pool", &self.pool)
            .field("beside", &self.beside)
            .field("reporting", &self.reporter.get().is_some())
            .finish()
    }
}

/// Builds the outbox events (Notify's `feeds.snapshot.changed`) that report a feed delta.
pub type DeltaReporter = Arc<dyn Fn(&FeedDelta) -> Vec<crate::OutboxEvent> + Send + Sync>;

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
        let mut db = AdvisoryDb::open(catalog.pool.clone()).await?;
        db.beside = true;
        Ok(db)
    }

    async fn open(pool: Pool) -> Result<AdvisoryDb> {
        MIGRATIONS.apply(&pool).await?;
        let db = AdvisoryDb {
            pool,
            beside: false,
            reporter: Default::default(),
        };
        db.normalize_keys().await?;
        Ok(db)
    }

    /// Re-keys advisories stored before match keys followed each ecosystem's name comparison
    /// ([`stella_advisories::matching::package_key`]: PyPI's PEP 503, NuGet's and crates.io's
    /// case-insensitivity), so they meet the candidates' keys without a re-import. Idempotent,
    /// and a no-op once done (one indexed scan of those ecosystems' keys).
    async fn normalize_keys(&self) -> Result<()> {
        let select = self.sql(
            "SELECT DISTINCT ecosystem, package FROM vuln_affected
             WHERE ecosystem IN ('PyPI', 'NuGet', 'crates.io')",
        );
        let copy = self.sql(
            "INSERT INTO vuln_affected (ecosystem, package, advisory_id, source)
             SELECT ecosystem, $1, advisory_id, source FROM vuln_affected
             WHERE ecosystem = $2 AND package = $3
             ON CONFLICT DO NOTHING",
        );
        let delete = self.sql("DELETE FROM vuln_affected WHERE ecosystem = $1 AND package = $2");
        let keys: Vec<(String, String)> =
            with_pool!(&self.pool, |p| sqlx::query_as(select).fetch_all(p).await?);
        let stale: Vec<(String, String, String)> = keys
            .into_iter()
            .filter_map(|(ecosystem, package)| {
                let key =
                    stella_advisories::matching::package_key(&ecosystem, &package).into_owned();
                (key != package).then_some((key, ecosystem, package))
            })
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            for (key, ecosystem, package) in &stale {
                sqlx::query(copy.clone())
                    .bind(key)
                    .bind(ecosystem)
                    .bind(package)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(delete.clone())
                    .bind(ecosystem)
                    .bind(package)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// From now on every feed write that logs a delta also appends `reporter`'s events to
    /// Notify's outbox in the same transaction (this handle and its clones). Only where the
    /// advisories are in the catalog's database; `false` otherwise, or when a reporter is set
    /// already.
    pub fn report_deltas(&self, reporter: DeltaReporter) -> bool {
        self.beside && self.reporter.set(reporter).is_ok()
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
            None => Ok(self.write(Change::Nothing).await?.snapshot),
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

    /// Stores (or replaces) advisories in one transaction, as the [`IMPORT_FEED`]'s: a feed
    /// import is one commit, not one per record (20,000 single-record commits took 20 s on
    /// SQLite). An advisory stored with the same body is left as it is.
    pub async fn put_advisories(&self, rows: &[AdvisoryRow<'_>]) -> Result<()> {
        self.write(Change::Advisories {
            feed: IMPORT_FEED,
            rows,
            replace: false,
        })
        .await
        .map(drop)
    }

    /// One sync of `feed` (a FeedSource's `namespace/name`): `rows` are its whole truth now.
    /// Its advisories that `rows` no longer hold leave its membership, and leave the store
    /// when no other feed holds them; new and changed ones are written; unchanged ones are
    /// left alone. One transaction; the snapshot and, when it changed, the delta come back.
    pub async fn sync_feed(&self, feed: &str, rows: &[AdvisoryRow<'_>]) -> Result<FeedSync> {
        let written = self
            .write(Change::Advisories {
                feed,
                rows,
                replace: true,
            })
            .await?;
        Ok(FeedSync {
            snapshot: written.snapshot,
            feed_snapshot: feed_snapshot_of(rows),
            delta: written.delta,
        })
    }

    /// Records the VEX module's state ([`crate::VexDb::state_digest`]) in the feed snapshot
    /// after `feed` changed VEX statements or their trust: the snapshot changes with it, and
    /// the delta names the products (`scopes`) whose decisions may have changed — or, when
    /// `wide`, says any image may be touched. The snapshot and, when it changed, the delta
    /// come back.
    pub async fn record_vex(
        &self,
        feed: &str,
        digest: &str,
        scopes: &[VexScope],
        wide: bool,
    ) -> Result<FeedSync> {
        let written = self
            .write(Change::Vex {
                feed,
                digest,
                scopes,
                wide,
            })
            .await?;
        Ok(FeedSync {
            snapshot: written.snapshot,
            feed_snapshot: digest.to_string(),
            delta: written.delta,
        })
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
        self.write(Change::Signals(Box::new(statements)))
            .await
            .map(drop)
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
        self.write(Change::Signals(Box::new(statements)))
            .await
            .map(drop)
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

    /// For each of these (ecosystem, package) keys, the bodies of the advisories that name it
    /// (a key no advisory names is absent). One query per 500 keys, as
    /// [`AdvisoryDb::advisories_for`].
    pub async fn advisories_by_key(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<((String, String), String)>> {
        let sql = self.pool.sql_per_dialect(
            "vuln",
            "SELECT f.ecosystem, f.package, a.body FROM json_each($1) k
             JOIN vuln_affected f ON f.ecosystem = json_extract(k.value, '$[0]') AND f.package = json_extract(k.value, '$[1]')
             JOIN vuln_advisories a ON a.id = f.advisory_id AND a.source = f.source",
            "SELECT f.ecosystem, f.package, a.body FROM jsonb_array_elements(CAST($1 AS jsonb)) k
             JOIN vuln_affected f ON f.ecosystem = k.value->>0 AND f.package = k.value->>1
             JOIN vuln_advisories a ON a.id = f.advisory_id AND a.source = f.source",
        );
        let mut out = Vec::new();
        for chunk in keys.chunks(500) {
            let json = serde_json::to_string(chunk).unwrap_or_default();
            let rows: Vec<(String, String, String)> =
                with_pool!(&self.pool, |p| sqlx::query_as(sql.clone())
                    .bind(&json)
                    .fetch_all(p)
                    .await?);
            out.extend(rows.into_iter().map(|(e, p, b)| ((e, p), b)));
        }
        Ok(out)
    }

    /// Bodies of the advisories that name any of these (ecosystem, package) keys, sorted.
    /// One query per 500 keys (a JSON list parameter), not one per key: an image's few
    /// hundred packages are one round trip.
    pub async fn advisories_for(&self, keys: &[(String, String)]) -> Result<Vec<String>> {
        let sql = self.pool.sql_per_dialect(
            "vuln",
            "SELECT a.body FROM json_each($1) k
             JOIN vuln_affected f ON f.ecosystem = json_extract(k.value, '$[0]') AND f.package = json_extract(k.value, '$[1]')
             JOIN vuln_advisories a ON a.id = f.advisory_id AND a.source = f.source",
            "SELECT a.body FROM jsonb_array_elements(CAST($1 AS jsonb)) k
             JOIN vuln_affected f ON f.ecosystem = k.value->>0 AND f.package = k.value->>1
             JOIN vuln_advisories a ON a.id = f.advisory_id AND a.source = f.source",
        );
        let mut bodies = std::collections::BTreeSet::new();
        for chunk in keys.chunks(500) {
            let json = serde_json::to_string(chunk).unwrap_or_default();
            let rows: Vec<String> = with_pool!(&self.pool, |p| sqlx::query_scalar(sql.clone())
                .bind(&json)
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

    /// Runs one feed write in one transaction that holds the feeds' write lock
    /// ([`feed_write_lock`]): the change, then the snapshot of the content as that
    /// transaction sees it, stored before the commit and returned — with the delta, logged in
    /// the same transaction, when the snapshot changed.
    async fn write(&self, change: Change<'_>) -> Result<Written> {
        let (begin, lock) = feed_write_lock(&self.pool);
        let [advisories, kev, epss] = [
            r#"SELECT id, source, modified, body FROM vuln_advisories ORDER BY id COLLATE "C", source COLLATE "C""#,
            r#"SELECT cve, date_added, ransomware FROM vuln_kev ORDER BY cve COLLATE "C""#,
            r#"SELECT cve, epss, percentile, score_date FROM vuln_epss ORDER BY cve COLLATE "C""#,
        ]
        .map(|sql| self.sql(sql));
        let current = self.sql("SELECT digest FROM vuln_feed_snapshot WHERE id = 1");
        let vex_state = self.sql("SELECT digest FROM vuln_vex_state WHERE id = 1");
        let put_vex_state = self.sql(
            "INSERT INTO vuln_vex_state (id, digest) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET digest = excluded.digest",
        );
        let store = self.sql(
            "INSERT INTO vuln_feed_snapshot (id, digest) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET digest = excluded.digest",
        );
        let sql = FeedSql::new(self);
        let outbox = crate::notify::outbox_insert(&self.pool);
        let reporter = self.reporter.get().cloned();
        let (change_feed, signals) = match &change {
            Change::Advisories { feed, .. } => (feed.to_string(), false),
            Change::Vex { feed, wide, .. } => (feed.to_string(), *wide),
            Change::Signals(_) => ("signals".to_string(), true),
            Change::Nothing => (String::new(), false),
        };
        let logs = !matches!(change, Change::Nothing);
        Ok(with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(begin).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let before: Option<String> =
                sqlx::query_scalar(current).fetch_optional(&mut *tx).await?;
            let mut delta = DeltaBody {
                signals,
                ..DeltaBody::default()
            };
            match change {
                Change::Nothing => {}
                Change::Vex { digest, scopes, .. } => {
                    sqlx::query(put_vex_state.clone())
                        .bind(digest)
                        .execute(&mut *tx)
                        .await?;
                    delta.vex = scopes.to_vec();
                }
                Change::Signals(statements) => {
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
                }
                Change::Advisories {
                    feed,
                    rows,
                    replace,
                } => {
                    // The last row of each (id, source) is the one that counts.
                    let latest: BTreeMap<(&str, &str), &AdvisoryRow> =
                        rows.iter().map(|r| ((r.id, r.source), r)).collect();
                    let members: HashSet<(String, String)> =
                        sqlx::query_as::<_, (String, String)>(sql.members.clone())
                            .bind(feed)
                            .fetch_all(&mut *tx)
                            .await?
                            .into_iter()
                            .collect();
                    let pairs: Vec<[&str; 2]> = latest.keys().map(|&(i, s)| [i, s]).collect();
                    let mut stored: HashMap<(String, String), String> = HashMap::new();
                    for chunk in pairs.chunks(500) {
                        let json = serde_json::to_string(chunk).unwrap_or_default();
                        let found: Vec<(String, String, String)> =
                            sqlx::query_as(sql.stored.clone())
                                .bind(json)
                                .fetch_all(&mut *tx)
                                .await?;
                        stored.extend(found.into_iter().map(|(i, s, b)| ((i, s), b)));
                    }
                    for (&(id, source), row) in &latest {
                        let pair = (id.to_string(), source.to_string());
                        let old = stored.get(&pair);
                        if old.is_some_and(|body| body == row.body) {
                            // Unchanged: nothing to write.
                        } else {
                            if old.is_some() {
                                let keys: Vec<(String, String)> = sqlx::query_as(sql.keys.clone())
                                    .bind(id)
                                    .bind(source)
                                    .fetch_all(&mut *tx)
                                    .await?;
                                delta.touch(keys.iter());
                                delta.changed.push(id.to_string());
                            } else {
                                delta.added.push(id.to_string());
                            }
                            delta.touch(row.keys.iter());
                            sqlx::query(sql.upsert.clone())
                                .bind(id)
                                .bind(source)
                                .bind(row.modified)
                                .bind(row.body)
                                .execute(&mut *tx)
                                .await?;
                            sqlx::query(sql.clear.clone())
                                .bind(id)
                                .bind(source)
                                .execute(&mut *tx)
                                .await?;
                            for (ecosystem, package) in row.keys {
                                sqlx::query(sql.key.clone())
                                    .bind(ecosystem)
                                    .bind(package)
                                    .bind(id)
                                    .bind(source)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                        }
                        if !members.contains(&pair) {
                            sqlx::query(sql.join.clone())
                                .bind(feed)
                                .bind(id)
                                .bind(source)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    let gone = members.iter().filter(|(i, s)| {
                        replace && !latest.contains_key(&(i.as_str(), s.as_str()))
                    });
                    for (id, source) in gone {
                        sqlx::query(sql.leave.clone())
                            .bind(feed)
                            .bind(id)
                            .bind(source)
                            .execute(&mut *tx)
                            .await?;
                        let others: i64 = sqlx::query_scalar(sql.holders.clone())
                            .bind(id)
                            .bind(source)
                            .fetch_one(&mut *tx)
                            .await?;
                        if others == 0 {
                            let keys: Vec<(String, String)> = sqlx::query_as(sql.keys.clone())
                                .bind(id)
                                .bind(source)
                                .fetch_all(&mut *tx)
                                .await?;
                            delta.touch(keys.iter());
                            delta.removed.push(id.clone());
                            sqlx::query(sql.clear.clone())
                                .bind(id)
                                .bind(source)
                                .execute(&mut *tx)
                                .await?;
                            sqlx::query(sql.delete.clone())
                                .bind(id)
                                .bind(source)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
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
            // Then the VEX state (`["vex", digest]`), once VEX has been recorded.
            let vex: Option<String> = sqlx::query_scalar(vex_state)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(vex) = vex {
                line(serde_json::json!(["vex", vex]));
            }
            let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
            sqlx::query(store).bind(&digest).execute(&mut *tx).await?;
            let mut logged = None;
            if logs && before.as_deref() != Some(digest.as_str()) {
                delta.finish();
                let from = before.unwrap_or_default();
                let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let body = serde_json::to_string(&delta).unwrap_or_default();
                let seq: i64 = sqlx::query_scalar(sql.log.clone())
                    .bind(&change_feed)
                    .bind(&from)
                    .bind(&digest)
                    .bind(&at)
                    .bind(&body)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(sql.prune.clone())
                    .bind(seq - DELTA_LOG_KEPT)
                    .execute(&mut *tx)
                    .await?;
                let written = FeedDelta {
                    seq,
                    feed: change_feed.clone(),
                    from_snapshot: from,
                    to_snapshot: digest.clone(),
                    at,
                    body: delta,
                };
                // The events that report the delta, in its transaction (one that the outbox
                // refuses is logged and left out: it would fail every sync).
                let events = reporter.as_ref().map(|r| r(&written)).unwrap_or_default();
                for e in &events {
                    if let Err(error) = crate::notify::check_event(e) {
                        tracing::error!(%error, "feed delta event not recorded");
                        continue;
                    }
                    crate::notify::insert_event!(outbox, e)
                        .execute(&mut *tx)
                        .await?;
                }
                logged = Some(written);
            }
            tx.commit().await?;
            Written {
                snapshot: digest,
                delta: logged,
            }
        }))
    }

    /// The deltas logged after `seq` (oldest first, at most `limit`).
    pub async fn feed_deltas(&self, after: i64, limit: i64) -> Result<Vec<FeedDelta>> {
        let sql = self.sql(
            "SELECT seq, feed, from_snapshot, to_snapshot, at, body FROM vuln_feed_deltas
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        );
        let rows: Vec<(i64, String, String, String, String, String)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql)
                .bind(after)
                .bind(limit)
                .fetch_all(p)
                .await?);
        rows.into_iter()
            .map(|(seq, feed, from_snapshot, to_snapshot, at, body)| {
                Ok(FeedDelta {
                    seq,
                    feed,
                    from_snapshot,
                    to_snapshot,
                    at,
                    body: serde_json::from_str(&body)
                        .map_err(|e| crate::Error::Catalog(sqlx::Error::Decode(Box::new(e))))?,
                })
            })
            .collect()
    }

    /// The newest logged delta, if any.
    pub async fn last_feed_delta(&self) -> Result<Option<FeedDelta>> {
        let sql = self.sql("SELECT MAX(seq) FROM vuln_feed_deltas");
        let last: Option<i64> =
            with_pool!(&self.pool, |p| sqlx::query_scalar(sql).fetch_one(p).await?);
        match last {
            Some(seq) => Ok(self.feed_deltas(seq - 1, 1).await?.pop()),
            None => Ok(None),
        }
    }

    /// What changed from the snapshot `from` to the current one: the union of the logged
    /// deltas since the content was last `from`. `None` when the log cannot say (`from` was
    /// never logged, or its deltas were pruned): then anything may have changed.
    pub async fn changes_since(&self, from: &str) -> Result<Option<Changes>> {
        let now = self.feed_snapshot().await?;
        if now == from {
            return Ok(Some(Changes::default()));
        }
        let anchor_sql =
            self.sql("SELECT COALESCE(MAX(seq), -1) FROM vuln_feed_deltas WHERE to_snapshot = $1");
        let first_sql = self
            .sql("SELECT COALESCE(MIN(seq), -1) FROM vuln_feed_deltas WHERE from_snapshot = $1");
        let (anchor, first): (i64, i64) = with_pool!(&self.pool, |p| (
            sqlx::query_scalar(anchor_sql)
                .bind(from)
                .fetch_one(p)
                .await?,
            sqlx::query_scalar(first_sql)
                .bind(from)
                .fetch_one(p)
                .await?,
        ));
        let after = match (anchor, first) {
            (a, _) if a >= 0 => a,
            (_, f) if f >= 0 => f - 1,
            _ => return Ok(None),
        };
        let mut changes = Changes::default();
        let mut cursor = after;
        loop {
            let page = self.feed_deltas(cursor, 1000).await?;
            let Some(last) = page.last() else { break };
            cursor = last.seq;
            for delta in &page {
                changes.deltas += 1;
                changes.signals |= delta.body.signals;
                changes.keys.extend(delta.body.keys.iter().cloned());
                changes.vex.extend(delta.body.vex.iter().cloned());
            }
        }
        // The log must reach the current snapshot; a gap means it cannot say.
        Ok((changes.deltas > 0).then_some(changes))
    }

    /// Each feed's sync state, by feed.
    pub async fn feed_states(&self) -> Result<Vec<FeedState>> {
        let sql = self.sql(
            r#"SELECT feed, snapshot, records, rejected, etag, last_modified, synced_at
             FROM vuln_feeds ORDER BY feed COLLATE "C""#,
        );
        let rows: Vec<FeedStateRow> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql).fetch_all(p).await?);
        Ok(rows.into_iter().map(FeedState::from).collect())
    }

    /// One feed's sync state.
    pub async fn feed_state(&self, feed: &str) -> Result<Option<FeedState>> {
        Ok(self
            .feed_states()
            .await?
            .into_iter()
            .find(|s| s.feed == feed))
    }

    /// Records a feed's sync state (after a sync, or a `304 Not Modified`).
    pub async fn put_feed_state(&self, state: &FeedState) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO vuln_feeds (feed, snapshot, records, rejected, etag, last_modified, synced_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (feed) DO UPDATE SET snapshot = excluded.snapshot, records = excluded.records,
                 rejected = excluded.rejected, etag = excluded.etag,
                 last_modified = excluded.last_modified, synced_at = excluded.synced_at",
        );
        with_pool!(&self.pool, |p| {
            sqlx::query(sql)
                .bind(&state.feed)
                .bind(&state.snapshot)
                .bind(state.records as i64)
                .bind(state.rejected as i64)
                .bind(&state.etag)
                .bind(&state.last_modified)
                .bind(&state.synced_at)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Forgets a feed: its advisories that no other feed holds leave the store (a sync with
    /// nothing), and its state goes.
    pub async fn remove_feed(&self, feed: &str) -> Result<FeedSync> {
        let sync = self.sync_feed(feed, &[]).await?;
        let sql = self.sql("DELETE FROM vuln_feeds WHERE feed = $1");
        with_pool!(&self.pool, |p| {
            sqlx::query(sql).bind(feed).execute(p).await?;
        });
        Ok(sync)
    }
}

/// Each advisory's canonical JSON body and its `(ecosystem, package)` match keys, what
/// [`advisory_rows`] lends out as rows.
pub fn prepare_advisories(
    advisories: &[stella_advisories::Advisory],
) -> Vec<(String, Vec<(String, String)>)> {
    advisories
        .iter()
        .map(|advisory| {
            let keys = advisory
                .affected
                .iter()
                // Keyed as candidates are: by the ecosystem's own name comparison.
                .map(|a| {
                    let package =
                        stella_advisories::matching::package_key(&a.ecosystem, &a.package);
                    (a.ecosystem.clone(), package.into_owned())
                })
                .collect();
            (serde_json::to_string(advisory).unwrap_or_default(), keys)
        })
        .collect()
}

/// The rows of `advisories` with their [`prepare_advisories`] bodies and keys.
pub fn advisory_rows<'a>(
    advisories: &'a [stella_advisories::Advisory],
    prepared: &'a [(String, Vec<(String, String)>)],
) -> Vec<AdvisoryRow<'a>> {
    advisories
        .iter()
        .zip(prepared)
        .map(|(advisory, (body, keys))| AdvisoryRow {
            id: &advisory.id,
            source: &advisory.source,
            modified: &advisory.modified,
            body,
            keys,
        })
        .collect()
}

/// The feed [`AdvisoryDb::put_advisories`] (`stella feeds import`) writes as.
pub const IMPORT_FEED: &str = "import";

/// How many deltas the log keeps: older ones are pruned (a Scan pinned to a snapshot older
/// than the log is simply re-evaluated).
const DELTA_LOG_KEPT: i64 = 10_000;

/// What a feed write does.
enum Change<'a> {
    /// Nothing: compute (and store) the snapshot.
    Nothing,
    /// KEV or EPSS statements: exploit signals, which can touch any finding.
    Signals(Statements<'a>),
    /// Advisories of `feed`; with `replace`, its whole truth.
    Advisories {
        feed: &'a str,
        rows: &'a [AdvisoryRow<'a>],
        replace: bool,
    },
    /// `feed` changed VEX statements or their weights: the VEX module's new state digest,
    /// and what it may touch.
    Vex {
        feed: &'a str,
        digest: &'a str,
        scopes: &'a [VexScope],
        wide: bool,
    },
}

/// What a write left: the snapshot, and the delta when it changed.
struct Written {
    snapshot: String,
    delta: Option<FeedDelta>,
}

/// What one sync of a feed did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSync {
    /// The snapshot of all feeds after it.
    pub snapshot: String,
    /// The snapshot of this feed's records alone ([`feed_snapshot_of`]).
    pub feed_snapshot: String,
    /// What changed in the combined snapshot; `None` when nothing did.
    pub delta: Option<FeedDelta>,
}

/// One logged change of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedDelta {
    /// Position in the log.
    pub seq: i64,
    /// The feed whose write made it (`import`, `signals` for KEV / EPSS, a FeedSource's
    /// `namespace/name`).
    pub feed: String,
    pub from_snapshot: String,
    pub to_snapshot: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    #[serde(flatten)]
    pub body: DeltaBody,
}

/// What a delta says: advisory ids added, removed, changed, and the `ecosystem/package` keys
/// they touch (old and new forms), each sorted; the products of VEX statements added, removed
/// or reweighted; `signals` when KEV or EPSS changed, or a VEX change too wide to list (any
/// image may be touched).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaBody {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vex: Vec<VexScope>,
    #[serde(default)]
    pub signals: bool,
}

impl DeltaBody {
    fn touch<'k>(&mut self, keys: impl Iterator<Item = &'k (String, String)>) {
        self.keys
            .extend(keys.map(|(ecosystem, package)| format!("{ecosystem}/{package}")));
    }

    fn finish(&mut self) {
        for list in [
            &mut self.added,
            &mut self.removed,
            &mut self.changed,
            &mut self.keys,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        self.vex.sort_unstable();
        self.vex.dedup();
    }
}

/// The union of deltas between two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// `ecosystem/package` keys touched.
    pub keys: BTreeSet<String>,
    /// VEX products whose decisions may have changed.
    pub vex: BTreeSet<VexScope>,
    /// KEV or EPSS changed: any image's findings may have.
    pub signals: bool,
    /// How many deltas were joined.
    pub deltas: usize,
}

impl Changes {
    /// Whether the image `image_digest`, indexed by `index`, may have new findings or VEX
    /// decisions: a touched match key, or a VEX product that applies to the image or one of
    /// its purls. Without an index, or without match keys in it (a version 1 index), any
    /// change may touch it.
    pub fn touches(
        &self,
        image_digest: &str,
        index: Option<&stella_sbom::bomindex::BomIndex>,
    ) -> bool {
        let Some(index) = index else {
            return self.deltas > 0;
        };
        let by_keys = match &index.match_keys {
            _ if self.signals => true,
            None => self.deltas > 0,
            Some(keys) => keys.iter().any(|k| self.keys.contains(k)),
        };
        by_keys
            || self.vex.iter().any(|scope| {
                index.purls.iter().any(|purl| {
                    stella_vex::purl::applies(
                        &scope.product,
                        &scope.subcomponents,
                        Some(image_digest),
                        purl,
                    )
                })
            })
    }
}

/// What a VEX statement is about, as a delta names it: its product and subcomponents.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct VexScope {
    pub product: stella_vex::Product,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcomponents: Vec<String>,
}

impl VexScope {
    /// The scope of `statement`.
    pub fn of(statement: &stella_vex::Statement) -> VexScope {
        VexScope {
            product: statement.product.clone(),
            subcomponents: statement.subcomponents.clone(),
        }
    }
}

/// A feed's sync state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedState {
    pub feed: String,
    /// [`FeedSync::feed_snapshot`] of the last sync.
    pub snapshot: String,
    pub records: u64,
    pub rejected: u64,
    /// The validators of the last `200` (for `If-None-Match` / `If-Modified-Since`).
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// RFC 3339, UTC.
    pub synced_at: String,
}

type FeedStateRow = (
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    String,
);

impl From<FeedStateRow> for FeedState {
    fn from(
        (feed, snapshot, records, rejected, etag, last_modified, synced_at): FeedStateRow,
    ) -> FeedState {
        FeedState {
            feed,
            snapshot,
            records: records.max(0) as u64,
            rejected: rejected.max(0) as u64,
            etag,
            last_modified,
            synced_at,
        }
    }
}

/// The snapshot of one feed's records: a header line, then `[id, source, modified, body]` per
/// record in (id, source) order — the same records give the same value however they came.
pub fn feed_snapshot_of(rows: &[AdvisoryRow<'_>]) -> String {
    let latest: BTreeMap<(&str, &str), &AdvisoryRow> =
        rows.iter().map(|r| ((r.id, r.source), r)).collect();
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"stella-feed-source-snapshot/1\n");
    for row in latest.values() {
        hasher.update(
            serde_json::json!([row.id, row.source, row.modified, row.body])
                .to_string()
                .as_bytes(),
        );
        hasher.update(b"\n");
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// The statements of an advisory write, in the pool's dialect.
struct FeedSql {
    members: SqlStr,
    stored: SqlStr,
    keys: SqlStr,
    upsert: SqlStr,
    clear: SqlStr,
    key: SqlStr,
    join: SqlStr,
    leave: SqlStr,
    holders: SqlStr,
    delete: SqlStr,
    log: SqlStr,
    prune: SqlStr,
}

impl FeedSql {
    fn new(db: &AdvisoryDb) -> FeedSql {
        FeedSql {
            members: db.sql("SELECT id, source FROM vuln_feed_members WHERE feed = $1"),
            // The stored bodies of a JSON array of [id, source] pairs.
            stored: db.pool.sql_per_dialect(
                "vuln",
                "SELECT a.id, a.source, a.body FROM json_each($1) j JOIN vuln_advisories a
                 ON a.id = json_extract(j.value, '$[0]') AND a.source = json_extract(j.value, '$[1]')",
                "SELECT a.id, a.source, a.body FROM jsonb_array_elements(CAST($1 AS jsonb)) j
                 JOIN vuln_advisories a ON a.id = j.value->>0 AND a.source = j.value->>1",
            ),
            keys: db.sql(
                "SELECT ecosystem, package FROM vuln_affected WHERE advisory_id = $1 AND source = $2",
            ),
            upsert: db.sql(
                "INSERT INTO vuln_advisories (id, source, modified, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id, source) DO UPDATE SET modified = excluded.modified, body = excluded.body",
            ),
            clear: db.sql("DELETE FROM vuln_affected WHERE advisory_id = $1 AND source = $2"),
            key: db.sql(
                "INSERT INTO vuln_affected (ecosystem, package, advisory_id, source) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            ),
            join: db.sql(
                "INSERT INTO vuln_feed_members (feed, id, source) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            ),
            leave: db.sql(
                "DELETE FROM vuln_feed_members WHERE feed = $1 AND id = $2 AND source = $3",
            ),
            holders: db
                .sql("SELECT COUNT(*) FROM vuln_feed_members WHERE id = $1 AND source = $2"),
            delete: db.sql("DELETE FROM vuln_advisories WHERE id = $1 AND source = $2"),
            log: db.sql(
                "INSERT INTO vuln_feed_deltas (feed, from_snapshot, to_snapshot, at, body)
                 VALUES ($1, $2, $3, $4, $5) RETURNING seq",
            ),
            prune: db.sql("DELETE FROM vuln_feed_deltas WHERE seq <= $1"),
        }
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
