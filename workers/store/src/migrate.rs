//! Forward-only migrations, applied in order and each once, recorded per module: on SQLite in
//! `<prefix>_schema_migrations` under the file's write lock (`BEGIN IMMEDIATE`, taken only when
//! something is pending), on PostgreSQL in `<schema>.schema_migrations` under
//! `pg_try_advisory_lock(hashtext('<schema>'))`, so that concurrent starters do not race. Each
//! module declares its [`Migrations`] for both backends beside its code; this runs them.

use crate::Result;
use crate::db::{Pool, with_pool};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use std::time::Duration;

/// One migration: its version in the ledger and its SQL. Once released, neither changes.
pub(crate) type Migration = (i64, &'static str);

/// A module's forward-only migrations on both backends.
pub(crate) struct Migrations {
    /// The module: its tables' prefix on SQLite (`<module>_…`), its schema on PostgreSQL.
    module: &'static str,
    /// The prefix of the `<prefix>_schema_migrations` ledger that records the SQLite
    /// migrations: the module's own, unless history placed them in another module's (then
    /// the versions are shared, and no two modules may use the same one).
    sqlite_ledger: &'static str,
    sqlite: &'static [Migration],
    postgres: &'static [Migration],
}

impl Migrations {
    /// `module`'s migrations, each backend's recorded in the module's own ledger.
    pub(crate) const fn new(
        module: &'static str,
        sqlite: &'static [Migration],
        postgres: &'static [Migration],
    ) -> Migrations {
        Migrations {
            module,
            sqlite_ledger: module,
            sqlite,
            postgres,
        }
    }

    /// The same, with the SQLite migrations recorded in the ledger of the module `prefix`.
    pub(crate) const fn in_sqlite_ledger_of(self, prefix: &'static str) -> Migrations {
        Migrations {
            sqlite_ledger: prefix,
            ..self
        }
    }

    /// Applies the migrations `pool` has not recorded yet.
    pub(crate) async fn apply(&self, pool: &Pool) -> Result<()> {
        match pool {
            Pool::Sqlite(pool) => sqlite(pool, self.sqlite_ledger, self.sqlite).await,
            Pool::Postgres(pool) => postgres(pool, self.module, self.postgres).await,
        }
    }

    /// The versions the module's ledger records, in order; from a ledger the module shares
    /// with the ledger's owner, only the module's own.
    pub(crate) async fn applied(&self, pool: &Pool) -> Result<Vec<i64>> {
        let (ledger, own) = match pool {
            Pool::Sqlite(_) => (self.sqlite_ledger, self.sqlite),
            Pool::Postgres(_) => (self.module, self.postgres),
        };
        let sql = pool.sql(
            ledger,
            format!("SELECT version FROM {ledger}_schema_migrations ORDER BY version"),
        );
        let mut versions: Vec<i64> =
            with_pool!(pool, |p| sqlx::query_scalar(sql).fetch_all(p).await?);
        if ledger != self.module {
            versions.retain(|v| own.iter().any(|(version, _)| version == v));
        }
        Ok(versions)
    }
}

/// Applies `migrations` to the SQLite database, recording them in `<prefix>_schema_migrations`
/// (`prefix` is one of our module prefixes, never user input).
async fn sqlite(pool: &SqlitePool, prefix: &'static str, migrations: &[Migration]) -> Result<()> {
    let ledger = format!("{prefix}_schema_migrations");
    if !sqlite_pending(pool, &ledger, migrations).await? {
        return Ok(());
    }
    // The write lock first (`BEGIN IMMEDIATE`): concurrent openers with something to apply
    // queue for it (the busy timeout) instead of each reading the ledger and then failing
    // to upgrade its read to a write ("database is locked").
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {ledger} (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )))
    .execute(&mut *tx)
    .await?;
    for (version, sql) in migrations {
        let applied: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT version FROM {ledger} WHERE version = ?"
        )))
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        if applied.is_some() {
            continue;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {ledger} (version, applied_at) VALUES (?, datetime('now'))"
        )))
        .bind(version)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the SQLite `ledger` lacks any of `migrations` (or is not there): a read, so that
/// opening an up-to-date database never waits for the write lock.
async fn sqlite_pending(pool: &SqlitePool, ledger: &str, migrations: &[Migration]) -> Result<bool> {
    let exists: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1")
            .bind(ledger)
            .fetch_optional(pool)
            .await?;
    if exists.is_none() {
        return Ok(true);
    }
    let applied: Vec<i64> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT version FROM {ledger}")))
            .fetch_all(pool)
            .await?;
    Ok(migrations
        .iter()
        .any(|(version, _)| !applied.contains(version)))
}

/// Applies `migrations` to the PostgreSQL schema `schema` once, whoever gets the advisory lock;
/// others wait for it (up to a minute).
async fn postgres(pool: &PgPool, schema: &'static str, migrations: &[Migration]) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let started = std::time::Instant::now();
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await?;
        if locked {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(crate::Error::Catalog(sqlx::Error::PoolTimedOut));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result: Result<()> = async {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());"
        )))
        .execute(&mut *conn)
        .await?;
        for (version, sql) in migrations {
            let applied: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT version FROM {schema}.schema_migrations WHERE version = $1"
            )))
            .bind(version)
            .fetch_optional(&mut *conn)
            .await?;
            if applied.is_some() {
                continue;
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"
            )))
            .bind(version)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(schema)
        .execute(&mut *conn)
        .await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module's migrations, as the store opens them.
    const MODULES: [&Migrations; 4] = [
        &crate::catalog::MIGRATIONS,
        &crate::advisories::MIGRATIONS,
        &crate::vex::MIGRATIONS,
        &crate::unknowns::MIGRATIONS,
    ];

    #[test]
    fn versions_increase_and_a_shared_ledger_never_has_one_twice() {
        for m in MODULES {
            for list in [m.sqlite, m.postgres] {
                assert!(!list.is_empty(), "{}", m.module);
                assert!(list.windows(2).all(|w| w[0].0 < w[1].0), "{}", m.module);
            }
        }
        let mut sqlite: Vec<(&str, i64)> = MODULES
            .iter()
            .flat_map(|m| m.sqlite.iter().map(|(v, _)| (m.sqlite_ledger, *v)))
            .collect();
        sqlite.sort();
        let total = sqlite.len();
        sqlite.dedup();
        assert_eq!(
            sqlite.len(),
            total,
            "a version used twice in one ledger: {sqlite:?}"
        );
        // Each PostgreSQL schema is its module's alone.
        let mut schemas: Vec<&str> = MODULES.iter().map(|m| m.module).collect();
        schemas.sort();
        schemas.dedup();
        assert_eq!(schemas.len(), MODULES.len());
    }
}
