//! Forward-only migrations, applied in order and each once, recorded per module: on SQLite in
//! `<prefix>_schema_migrations`, on PostgreSQL in `<schema>.schema_migrations` under
//! `pg_try_advisory_lock(hashtext('<schema>'))` so that concurrent starters do not race.

use crate::Result;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use std::time::Duration;

/// Applies `migrations` to the SQLite database, recording them in `<prefix>_schema_migrations`
/// (`prefix` is one of our module prefixes, never user input).
pub(crate) async fn sqlite(
    pool: &SqlitePool,
    prefix: &'static str,
    migrations: &[(i64, &str)],
) -> Result<()> {
    let ledger = format!("{prefix}_schema_migrations");
    let mut tx = pool.begin().await?;
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

/// Applies `migrations` to the PostgreSQL schema `schema` once, whoever gets the advisory lock;
/// others wait for it (up to a minute).
pub(crate) async fn postgres(
    pool: &PgPool,
    schema: &'static str,
    migrations: &[(i64, &str)],
) -> Result<()> {
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
