//! The two catalog backends behind one pool type, and the one dialect step between them.
//! Queries are written once: `$n` placeholders (SQLite reads them as numbered parameters) and
//! `<module>_<table>` names, which on PostgreSQL become `<module>.<table>` — each module its
//! own schema there, its own table prefix in the embedded file (seed: per-module isolation).

use crate::{Error, Result};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqlitePool;
use sqlx::{SqlSafeStr, SqlStr};
use std::sync::Arc;
use std::time::Duration;

/// A connection pool of either backend.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the backend's pool (or anything else matched by the arm):
/// the body is compiled once per backend, so generic sqlx calls type-check against each.
macro_rules! with_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

impl Pool {
    /// `sql` in this backend's dialect: on PostgreSQL, `<module>_` table prefixes name the
    /// module's schema. `module` is one of ours and `sql` a constant, never user input.
    pub(crate) fn sql(&self, module: &str, sql: &'static str) -> SqlStr {
        match self {
            Pool::Sqlite(_) => sql.into_sql_str(),
            Pool::Postgres(_) => {
                let translated: Arc<str> = sql
                    .replace(&format!("{module}_"), &format!("{module}."))
                    .into();
                sqlx::AssertSqlSafe(translated).into_sql_str()
            }
        }
    }
}

/// Connects to PostgreSQL (`postgres://…` or `postgresql://…`).
pub(crate) async fn connect_postgres(url: &str) -> Result<PgPool> {
    if !is_postgres_url(url) {
        return Err(Error::CatalogUrl {
            url: redact(url),
            reason: "must start with postgres:// or postgresql://".into(),
        });
    }
    Ok(PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?)
}

/// Whether `url` names a PostgreSQL server.
pub(crate) fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let slash = if rest.contains('/') { "/" } else { "" };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{slash}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/stella"),
            "postgres://app:***@db:5432/stella"
        );
        assert_eq!(
            redact("postgres://app@db/stella"),
            "postgres://app@db/stella"
        );
        assert_eq!(redact("postgres://db"), "postgres://db");
        assert_eq!(redact("not a url"), "not a url");
    }
}
