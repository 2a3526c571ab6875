//! The two catalog backends behind one pool type, and the dialect step between them. Queries
//! are written once: `$n` placeholders (SQLite reads them as numbered parameters),
//! `<module>_<table>` names, which on PostgreSQL become `<module>.<table>` — each module its
//! own schema there, its own table prefix in the embedded file (seed: per-module isolation) —
//! and `COLLATE "C"` where the order must be bytewise. The few statements the dialects really
//! write differently come in pairs ([`Pool::sql_per_dialect`]).

use crate::{Error, Result};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqlitePool;
use sqlx::{SqlSafeStr, SqlStr};
use std::borrow::Cow;
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

/// How a write transaction begins on each backend. SQLite: `BEGIN IMMEDIATE`, which takes the
/// write lock at once and so waits (the busy timeout) for another process's writer; a
/// deferred `BEGIN` that reads first and then writes cannot wait — it fails "database is
/// locked" when another connection wrote in between, which is what concurrent `stella scan`
/// runs into one data directory met. PostgreSQL: `BEGIN`.
pub(crate) trait WriteBegin {
    const BEGIN: &'static str;
}

impl WriteBegin for SqlitePool {
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
}

impl WriteBegin for PgPool {
    const BEGIN: &'static str = "BEGIN";
}

/// The statement that begins a write transaction on `pool`'s backend ([`WriteBegin`]).
pub(crate) fn write_begin<P: WriteBegin>(_pool: &P) -> &'static str {
    P::BEGIN
}

/// PostgreSQL's bytewise collation as queries spell it. SQLite's default collation (`BINARY`)
/// already compares bytewise, and SQLite has no `"C"`.
const BYTEWISE: &str = " COLLATE \"C\"";

impl Pool {
    /// `sql` in this backend's dialect: on PostgreSQL, `<module>_` table prefixes name the
    /// module's schema; on SQLite, `COLLATE "C"` goes (its default order is already bytewise).
    /// `module` is one of ours and `sql` our text (a constant, or one built from module
    /// names), never user input.
    pub(crate) fn sql(&self, module: &str, sql: impl Into<Cow<'static, str>>) -> SqlStr {
        let sql = sql.into();
        let translated = match self {
            Pool::Sqlite(_) if !sql.contains(BYTEWISE) => {
                return sqlx::AssertSqlSafe(sql).into_sql_str();
            }
            Pool::Sqlite(_) => sql.replace(BYTEWISE, ""),
            Pool::Postgres(_) => sql.replace(&format!("{module}_"), &format!("{module}.")),
        };
        sqlx::AssertSqlSafe(Arc::<str>::from(translated)).into_sql_str()
    }

    /// [`Pool::sql`] of a statement the two dialects really write differently (time as text,
    /// a list parameter): this backend's of the two, both written with `<module>_` names.
    pub(crate) fn sql_per_dialect(
        &self,
        module: &str,
        sqlite: &'static str,
        postgres: &'static str,
    ) -> SqlStr {
        match self {
            Pool::Sqlite(_) => self.sql(module, sqlite),
            Pool::Postgres(_) => self.sql(module, postgres),
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

    #[tokio::test]
    async fn one_statement_in_either_dialect() {
        let sqlite = Pool::Sqlite(SqlitePool::connect_lazy("sqlite::memory:").unwrap());
        let postgres = Pool::Postgres(
            PgPoolOptions::new()
                .connect_lazy("postgres://db/x")
                .unwrap(),
        );
        let sql = r#"SELECT body FROM vuln_advisories a JOIN vuln_affected f ON a.id = f.advisory_id ORDER BY a.id COLLATE "C""#;
        assert_eq!(
            sqlite.sql("vuln", sql).as_str(),
            "SELECT body FROM vuln_advisories a JOIN vuln_affected f ON a.id = f.advisory_id ORDER BY a.id"
        );
        assert_eq!(
            postgres.sql("vuln", sql).as_str(),
            r#"SELECT body FROM vuln.advisories a JOIN vuln.affected f ON a.id = f.advisory_id ORDER BY a.id COLLATE "C""#
        );
        assert_eq!(postgres.sql_per_dialect("vex", "a", "b").as_str(), "b");
        assert_eq!(sqlite.sql_per_dialect("vex", "a", "b").as_str(), "a");
    }

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
