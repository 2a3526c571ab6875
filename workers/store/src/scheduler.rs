//! The scheduler's runs: `scheduler_runs` in the embedded catalog (the scheduler module's
//! prefix), `scheduler.runs` in PostgreSQL (its schema, migrated under
//! `pg_try_advisory_lock(hashtext('scheduler'))`). A Schedule's status keeps its last ten runs;
//! this keeps every run with its deltas, for `GET /api/v1/scheduler/runs/{id}`.

use crate::db::{Pool, with_pool};
use crate::migrate::{Migration, Migrations};
use crate::{Catalog, Error, Result};

/// The runs' migrations, in the scheduler module's ledger on either backend.
pub(crate) const MIGRATIONS: Migrations =
    Migrations::new("scheduler", SQLITE_MIGRATIONS, PG_MIGRATIONS);

const SQLITE_MIGRATIONS: &[Migration] = &[(
    1,
    "CREATE TABLE IF NOT EXISTS scheduler_runs (
        run_id TEXT PRIMARY KEY,
        schedule TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS scheduler_runs_by_schedule ON scheduler_runs(schedule, started_at);",
)];

/// The same table in the `scheduler` schema; ids sort bytewise as on SQLite.
const PG_MIGRATIONS: &[Migration] = &[(
    1,
    r#"CREATE TABLE IF NOT EXISTS scheduler.runs (
        run_id TEXT COLLATE "C" PRIMARY KEY,
        schedule TEXT COLLATE "C" NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT COLLATE "C" NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS runs_by_schedule ON scheduler.runs(schedule, started_at);"#,
)];

/// Largest run body stored (the deltas it lists are bounded by the writer; this is the guard).
pub const MAX_RUN_BODY: usize = 4 << 20;

/// One run as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerRunRow {
    pub run_id: String,
    /// The Schedule's name.
    pub schedule: String,
    /// `Running`, `Completed`, `Failed`, `Cancelled`.
    pub state: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// The whole run as JSON (stats, deltas, reason).
    pub body: String,
}

/// The runs, in the catalog's database.
#[derive(Clone, Debug)]
pub struct SchedulerDb {
    pool: Pool,
}

impl SchedulerDb {
    /// The table in the catalog's database (its SQLite file, or the `scheduler` schema beside
    /// the catalog's in PostgreSQL), migrated.
    pub async fn embedded(catalog: &Catalog) -> Result<SchedulerDb> {
        MIGRATIONS.apply(&catalog.pool).await?;
        Ok(SchedulerDb {
            pool: catalog.pool.clone(),
        })
    }

    fn sql(&self, sql: &'static str) -> sqlx::SqlStr {
        self.pool.sql("scheduler", sql)
    }

    /// Applied migration versions of the module.
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        MIGRATIONS.applied(&self.pool).await
    }

    /// Records a run, replacing what was stored under its id (a run is written when it starts
    /// and again when it ends).
    pub async fn put_run(&self, row: &SchedulerRunRow) -> Result<()> {
        if row.run_id.is_empty() || row.run_id.len() > 256 {
            return Err(Error::Invalid {
                field: "run id",
                reason: format!(
                    "{:?} is empty or longer than 256 bytes",
                    row.run_id.chars().take(64).collect::<String>()
                ),
            });
        }
        if row.body.len() > MAX_RUN_BODY {
            return Err(Error::Invalid {
                field: "run body",
                reason: format!("{} bytes (at most {MAX_RUN_BODY})", row.body.len()),
            });
        }
        let sql = self.sql(
            "INSERT INTO scheduler_runs (run_id, schedule, state, started_at, body)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (run_id) DO UPDATE SET schedule = excluded.schedule, state = excluded.state,
                 started_at = excluded.started_at, body = excluded.body",
        );
        with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(&row.run_id)
            .bind(&row.schedule)
            .bind(&row.state)
            .bind(&row.started_at)
            .bind(&row.body)
            .execute(p)
            .await
            .map(drop)?);
        Ok(())
    }

    /// The run with this id.
    pub async fn run(&self, run_id: &str) -> Result<Option<SchedulerRunRow>> {
        let sql = self.sql(
            "SELECT run_id, schedule, state, started_at, body FROM scheduler_runs WHERE run_id = $1",
        );
        let row: Option<(String, String, String, String, String)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql)
                .bind(run_id)
                .fetch_optional(p)
                .await?);
        Ok(row.map(row_of))
    }

    /// A Schedule's runs, newest first, at most `limit`.
    pub async fn runs(&self, schedule: &str, limit: u32) -> Result<Vec<SchedulerRunRow>> {
        let sql = self.sql(
            "SELECT run_id, schedule, state, started_at, body FROM scheduler_runs WHERE schedule = $1
             ORDER BY started_at DESC, run_id DESC LIMIT $2",
        );
        let rows: Vec<(String, String, String, String, String)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql)
                .bind(schedule)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?);
        Ok(rows.into_iter().map(row_of).collect())
    }
}

fn row_of(
    (run_id, schedule, state, started_at, body): (String, String, String, String, String),
) -> SchedulerRunRow {
    SchedulerRunRow {
        run_id,
        schedule,
        state,
        started_at,
        body,
    }
}
