//! The import log each feed module keeps (`<module>_imports`: advisories and VEX): one row per
//! import with its origin, its time — the database's clock, read back as RFC 3339 UTC text —
//! and how many records it accepted and rejected.

use crate::Result;
use crate::db::{Pool, with_pool};

/// Records an import in `module`'s log.
pub(crate) async fn record(
    pool: &Pool,
    module: &'static str,
    origin: &str,
    accepted: i64,
    rejected: i64,
) -> Result<()> {
    // The time: text on SQLite, the column's `DEFAULT now()` on PostgreSQL.
    let sql = pool.sql(
        module,
        match pool {
            Pool::Sqlite(_) => format!(
                "INSERT INTO {module}_imports (origin, imported_at, accepted, rejected)
                 VALUES ($1, strftime('%Y-%m-%dT%H:%M:%SZ','now'), $2, $3)"
            ),
            Pool::Postgres(_) => format!(
                "INSERT INTO {module}_imports (origin, accepted, rejected) VALUES ($1, $2, $3)"
            ),
        },
    );
    with_pool!(pool, |p| {
        sqlx::query(sql)
            .bind(origin)
            .bind(accepted)
            .bind(rejected)
            .execute(p)
            .await?;
    });
    Ok(())
}

/// The last import in `module`'s log: (origin, time (RFC 3339, UTC), accepted, rejected).
pub(crate) async fn last(
    pool: &Pool,
    module: &'static str,
) -> Result<Option<(String, String, i64, i64)>> {
    let imported_at = match pool {
        Pool::Sqlite(_) => "imported_at",
        Pool::Postgres(_) => {
            r#"to_char(imported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"#
        }
    };
    let sql = pool.sql(
        module,
        format!(
            "SELECT origin, {imported_at}, accepted, rejected FROM {module}_imports ORDER BY id DESC LIMIT 1"
        ),
    );
    Ok(with_pool!(pool, |p| sqlx::query_as(sql)
        .fetch_optional(p)
        .await?))
}
