//! Notify's durable state: the event outbox every component writes to (in the same
//! transaction as the change it reports, where the change is a catalog row), the dispatcher's
//! cursor over it, the deliveries it planned (one per event × rule × action, keyed by that
//! idempotency key so a replayed event never plans twice), and the throttle windows.
//! `notify_<table>` in the embedded catalog, the `notify` schema in PostgreSQL.
//!
//! Delivery states: `pending` (due at `next_attempt_at`, leased while a dispatcher sends it),
//! `sent`, `dead` (attempts exhausted or a permanent error; `last_error` says why),
//! `throttled` (suppressed by the action's throttle window: audit only), `digest` (waiting
//! for its digest window to close), `coalesced` (folded into a digest delivery).

use crate::db::{Pool, with_pool};
use crate::migrate::{Migration, Migrations};
use crate::{Catalog, Error, Result};

pub(crate) const MIGRATIONS: Migrations =
    Migrations::new("notify", SQLITE_MIGRATIONS, PG_MIGRATIONS);

const SQLITE_MIGRATIONS: &[Migration] = &[(
    1,
    "CREATE TABLE IF NOT EXISTS notify_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        namespace TEXT NOT NULL,
        time TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS notify_cursors (
        name TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS notify_deliveries (
        id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        rule TEXT NOT NULL,
        action INTEGER NOT NULL,
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        group_key TEXT NOT NULL,
        members TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT NOT NULL,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        lease_owner TEXT NOT NULL,
        lease_until TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS notify_deliveries_due ON notify_deliveries(status, next_attempt_at);
    CREATE INDEX IF NOT EXISTS notify_deliveries_by_rule ON notify_deliveries(rule, created_at);
    CREATE INDEX IF NOT EXISTS notify_deliveries_by_group ON notify_deliveries(group_key, status);
    CREATE TABLE IF NOT EXISTS notify_throttle (
        key TEXT PRIMARY KEY,
        until TEXT NOT NULL
    );",
)];

const PG_MIGRATIONS: &[Migration] = &[(
    1,
    r#"CREATE TABLE IF NOT EXISTS notify.outbox (
        seq BIGSERIAL PRIMARY KEY,
        event_id TEXT COLLATE "C" NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        namespace TEXT NOT NULL,
        time TEXT COLLATE "C" NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS notify.cursors (
        name TEXT PRIMARY KEY,
        seq BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS notify.deliveries (
        id TEXT COLLATE "C" PRIMARY KEY,
        event_id TEXT COLLATE "C" NOT NULL,
        rule TEXT COLLATE "C" NOT NULL,
        action BIGINT NOT NULL,
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        group_key TEXT COLLATE "C" NOT NULL,
        members TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        last_error TEXT NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL,
        next_attempt_at TEXT COLLATE "C" NOT NULL,
        sent_at TEXT NOT NULL,
        lease_owner TEXT NOT NULL,
        lease_until TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX IF NOT EXISTS deliveries_due ON notify.deliveries(status, next_attempt_at);
    CREATE INDEX IF NOT EXISTS deliveries_by_rule ON notify.deliveries(rule, created_at);
    CREATE INDEX IF NOT EXISTS deliveries_by_group ON notify.deliveries(group_key, status);
    CREATE TABLE IF NOT EXISTS notify.throttle (
        key TEXT COLLATE "C" PRIMARY KEY,
        until TEXT COLLATE "C" NOT NULL
    );"#,
)];

/// Largest event body stored (the emitters bound their payloads; this is the guard).
pub const MAX_EVENT_BODY: usize = 1 << 20;

/// One event as the outbox keeps it: its envelope as JSON plus the columns the dispatcher
/// selects by. The id is the envelope's, derived from what the event reports, so an event
/// emitted twice (a retried reconcile, a restart) is stored once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEvent {
    pub event_id: String,
    /// `scanner.report.ready`, …
    pub kind: String,
    /// The Kubernetes namespace the event belongs to (`""`: cluster-wide).
    pub namespace: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The whole envelope (CloudEvents 1.0 JSON).
    pub body: String,
}

/// A delivery the dispatcher planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The idempotency key: one per event × rule × action (a digest: per window).
    pub id: String,
    pub event_id: String,
    /// `<namespace>/<name>` of the NotifyRule.
    pub rule: String,
    /// The action's index in the rule.
    pub action: i64,
    /// `<namespace>/<name>` of the NotifyChannel.
    pub channel: String,
    /// The action's target override (`""`: the channel's default).
    pub target: String,
    pub status: String,
    /// Why it was planned so: `matched`, `throttled: …`, `digest: …`.
    pub reason: String,
    /// The throttle or digest key it was planned under (`""`: none).
    pub group_key: String,
    /// A digest's events, as a JSON array of event ids (`[]` otherwise).
    pub members: String,
    pub attempts: i64,
    pub last_error: String,
    pub created_at: String,
    pub next_attempt_at: String,
    /// `""` until sent.
    pub sent_at: String,
}

/// What a send came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered at this time.
    Sent { at: String },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        error: String,
        next_attempt_at: String,
    },
    /// Failed for good (attempts exhausted, or an error no retry can fix).
    Dead { error: String },
    /// Not attempted (the channel's rate limit, or its configuration not yet known): due
    /// again at `next_attempt_at`, the attempt not counted.
    Defer {
        reason: String,
        next_attempt_at: String,
    },
}

/// `SELECT <every delivery column> FROM notify_deliveries <rest>`, in [`DeliveryTuple`]'s order.
macro_rules! delivery_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, event_id, rule, action, channel, target, status, reason, group_key, members, \
             attempts, last_error, created_at, next_attempt_at, sent_at FROM notify_deliveries ",
            $rest
        )
    };
}

/// Notify's tables, in the catalog's database.
#[derive(Clone, Debug)]
pub struct NotifyDb {
    pool: Pool,
}

type DeliveryTuple = (
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
);

fn delivery_of(t: DeliveryTuple) -> DeliveryRow {
    DeliveryRow {
        id: t.0,
        event_id: t.1,
        rule: t.2,
        action: t.3,
        channel: t.4,
        target: t.5,
        status: t.6,
        reason: t.7,
        group_key: t.8,
        members: t.9,
        attempts: t.10,
        last_error: t.11,
        created_at: t.12,
        next_attempt_at: t.13,
        sent_at: t.14,
    }
}

/// Whether the outbox takes `event` (id and body within their limits).
pub fn check_event(event: &OutboxEvent) -> Result<()> {
    if event.event_id.is_empty() || event.event_id.len() > 256 {
        return Err(Error::Invalid {
            field: "event id",
            reason: "empty or longer than 256 bytes".into(),
        });
    }
    if event.body.len() > MAX_EVENT_BODY {
        return Err(Error::Invalid {
            field: "event body",
            reason: format!("{} bytes (at most {MAX_EVENT_BODY})", event.body.len()),
        });
    }
    Ok(())
}

/// The outbox insert of one event (`$sql` from [`outbox_insert`], `$e` an [`OutboxEvent`]),
/// its values bound: run it on the transaction the event belongs to.
macro_rules! insert_event {
    ($sql:expr, $e:expr) => {
        sqlx::query($sql.clone())
            .bind(&$e.event_id)
            .bind(&$e.kind)
            .bind(&$e.namespace)
            .bind(&$e.time)
            .bind(&$e.body)
    };
}
pub(crate) use insert_event;

/// An outbox row as the queries select it: `event_id, kind, namespace, time, body`.
type EventTuple = (String, String, String, String, String);

fn event_of((event_id, kind, namespace, time, body): EventTuple) -> OutboxEvent {
    OutboxEvent {
        event_id,
        kind,
        namespace,
        time,
        body,
    }
}

/// The outbox insert, in the `notify` module's dialect of `pool`.
pub(crate) fn outbox_insert(pool: &Pool) -> sqlx::SqlStr {
    pool.sql(
        "notify",
        "INSERT INTO notify_outbox (event_id, kind, namespace, time, body) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (event_id) DO NOTHING",
    )
}

impl NotifyDb {
    /// The tables in the catalog's database, migrated.
    pub async fn embedded(catalog: &Catalog) -> Result<NotifyDb> {
        MIGRATIONS.apply(&catalog.pool).await?;
        Ok(NotifyDb {
            pool: catalog.pool.clone(),
        })
    }

    fn sql(&self, sql: &'static str) -> sqlx::SqlStr {
        self.pool.sql("notify", sql)
    }

    /// Applied migration versions of the module.
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        MIGRATIONS.applied(&self.pool).await
    }

    /// Appends events to the outbox in one transaction; an id already there is skipped.
    /// Returns how many were new.
    pub async fn append(&self, events: &[OutboxEvent]) -> Result<u64> {
        for event in events {
            check_event(event)?;
        }
        let sql = outbox_insert(&self.pool);
        Ok(with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            let mut added = 0;
            for e in events {
                added += insert_event!(sql, e)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            added
        }))
    }

    /// The outbox's events after `seq`, oldest first, at most `limit`, with their sequence.
    pub async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, OutboxEvent)>> {
        let sql = self.sql(
            "SELECT seq, event_id, kind, namespace, time, body FROM notify_outbox WHERE seq > $1
             ORDER BY seq LIMIT $2",
        );
        let rows: Vec<(i64, String, String, String, String, String)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql)
                .bind(seq)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?);
        Ok(rows
            .into_iter()
            .map(|(seq, event_id, kind, namespace, time, body)| {
                (seq, event_of((event_id, kind, namespace, time, body)))
            })
            .collect())
    }

    /// The events with these ids (those the outbox has), in the order asked.
    pub async fn events(&self, ids: &[String]) -> Result<Vec<OutboxEvent>> {
        // The ids go in as one JSON array parameter per 500, which each dialect unpacks its
        // own way; the answer comes back in the order asked.
        let sql = self.pool.sql_per_dialect(
            "notify",
            "SELECT event_id, kind, namespace, time, body FROM notify_outbox
             WHERE event_id IN (SELECT value FROM json_each($1))",
            "SELECT event_id, kind, namespace, time, body FROM notify_outbox
             WHERE event_id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))",
        );
        let mut found: std::collections::HashMap<String, OutboxEvent> =
            std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let json = serde_json::to_string(chunk).unwrap_or_default();
            let rows: Vec<EventTuple> = with_pool!(&self.pool, |p| sqlx::query_as(sql.clone())
                .bind(&json)
                .fetch_all(p)
                .await?);
            for row in rows {
                let event = event_of(row);
                found.insert(event.event_id.clone(), event);
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// How many events the outbox holds.
    pub async fn outbox_len(&self) -> Result<i64> {
        let sql = self.sql("SELECT COUNT(*) FROM notify_outbox");
        Ok(with_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .fetch_one(p)
            .await?))
    }

    /// The dispatcher cursor `name`: the last outbox sequence it planned (0: none).
    pub async fn cursor(&self, name: &str) -> Result<i64> {
        let sql = self.sql("SELECT seq FROM notify_cursors WHERE name = $1");
        let seq: Option<i64> = with_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(name)
            .fetch_optional(p)
            .await?);
        Ok(seq.unwrap_or(0))
    }

    /// Records what the dispatcher planned for the events through `seq`, and moves its cursor
    /// there, in one transaction: a crash before it re-plans the same events, and the
    /// idempotency keys keep them from being planned twice. A throttled delivery (its
    /// `group_key` a throttle key whose window is open at `now`) is recorded as `throttled`;
    /// a pending one with a throttle key opens that key's window until `throttle_until`.
    pub async fn plan(
        &self,
        cursor: &str,
        seq: i64,
        now: &str,
        planned: &[(DeliveryRow, Option<String>)],
    ) -> Result<Vec<DeliveryRow>> {
        let insert = self.sql("INSERT INTO notify_deliveries (id, event_id, rule, action, channel, target, status, reason, group_key,
                 members, attempts, last_error, created_at, next_attempt_at, sent_at, lease_owner, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, '', '')
             ON CONFLICT (id) DO NOTHING");
        let throttle = self.sql(
            "INSERT INTO notify_throttle (key, until) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE notify_throttle.until <= $3
             RETURNING key",
        );
        let set_cursor = self.sql(
            "INSERT INTO notify_cursors (name, seq) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        );
        Ok(with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            let mut recorded = Vec::with_capacity(planned.len());
            for (row, throttle_until) in planned {
                let mut row = row.clone();
                if let Some(until) = throttle_until {
                    let won: Option<String> = sqlx::query_scalar(throttle.clone())
                        .bind(&row.group_key)
                        .bind(until)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if won.is_none() {
                        row.status = "throttled".into();
                        row.reason = format!("throttled: {} (window open)", row.group_key);
                    }
                }
                let added = sqlx::query(insert.clone())
                    .bind(&row.id)
                    .bind(&row.event_id)
                    .bind(&row.rule)
                    .bind(row.action)
                    .bind(&row.channel)
                    .bind(&row.target)
                    .bind(&row.status)
                    .bind(&row.reason)
                    .bind(&row.group_key)
                    .bind(&row.members)
                    .bind(row.attempts)
                    .bind(&row.last_error)
                    .bind(&row.created_at)
                    .bind(&row.next_attempt_at)
                    .bind(&row.sent_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if added == 1 {
                    recorded.push(row);
                }
            }
            sqlx::query(set_cursor)
                .bind(cursor)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            recorded
        }))
    }

    /// Leases up to `limit` pending deliveries due at `now` to `owner` until `lease_until`:
    /// a delivery another dispatcher holds (its lease not yet expired) is skipped, so two
    /// replicas never send the same one; one whose holder died is taken over once its lease
    /// runs out.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: &str,
        lease_until: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>> {
        let sql = self.pool.sql_per_dialect(
            "notify",
            "UPDATE notify_deliveries SET lease_owner = $1, lease_until = $2
             WHERE id IN (SELECT id FROM notify_deliveries
                 WHERE status = 'pending' AND next_attempt_at <= $3 AND lease_until <= $3
                 ORDER BY next_attempt_at, id LIMIT $4)
             RETURNING id, event_id, rule, action, channel, target, status, reason, group_key, members,
                 attempts, last_error, created_at, next_attempt_at, sent_at",
            r#"UPDATE notify_deliveries SET lease_owner = $1, lease_until = $2
             WHERE id IN (SELECT id FROM notify_deliveries
                 WHERE status = 'pending' AND next_attempt_at <= $3 COLLATE "C" AND lease_until <= $3 COLLATE "C"
                 ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING id, event_id, rule, action, channel, target, status, reason, group_key, members,
                 attempts, last_error, created_at, next_attempt_at, sent_at"#,
        );
        let rows: Vec<DeliveryTuple> = with_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?);
        let mut rows: Vec<DeliveryRow> = rows.into_iter().map(delivery_of).collect();
        rows.sort_by(|a, b| (&a.next_attempt_at, &a.id).cmp(&(&b.next_attempt_at, &b.id)));
        Ok(rows)
    }

    /// Records what sending a leased delivery came to. Only its lease holder may (`false`:
    /// the lease was lost to another dispatcher, which now owns the outcome).
    pub async fn complete(&self, id: &str, owner: &str, outcome: &Outcome) -> Result<bool> {
        let (status, error, next, sent, counted) = match outcome {
            Outcome::Sent { at } => ("sent", "", "", at.as_str(), 1_i64),
            Outcome::Retry {
                error,
                next_attempt_at,
            } => ("pending", error.as_str(), next_attempt_at.as_str(), "", 1),
            Outcome::Dead { error } => ("dead", error.as_str(), "", "", 1),
            Outcome::Defer {
                reason,
                next_attempt_at,
            } => ("pending", reason.as_str(), next_attempt_at.as_str(), "", 0),
        };
        let sql = self.sql(
            "UPDATE notify_deliveries SET status = $1, last_error = $2, attempts = attempts + $7,
                 next_attempt_at = CASE WHEN $3 = '' THEN next_attempt_at ELSE $3 END,
                 sent_at = $4, lease_owner = '', lease_until = ''
             WHERE id = $5 AND lease_owner = $6 AND status = 'pending'",
        );
        let updated = with_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(status)
            .bind(truncate(error, 2048))
            .bind(next)
            .bind(sent)
            .bind(id)
            .bind(owner)
            .bind(counted)
            .execute(p)
            .await?
            .rows_affected());
        Ok(updated == 1)
    }

    /// The digest groups whose window closed by `now` and that still hold waiting events.
    pub async fn due_digests(&self, now: &str) -> Result<Vec<DeliveryRow>> {
        let sql = self.sql(delivery_select!(
            "WHERE status = 'digest' AND next_attempt_at <= $1
             ORDER BY group_key, created_at, id"
        ));
        let rows: Vec<DeliveryTuple> = with_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(now)
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(delivery_of).collect())
    }

    /// Folds a digest group's waiting deliveries into `digest` (one pending delivery whose
    /// `members` lists their events), in one transaction. The digest's id is derived from
    /// its group, so closing a window twice plans it once.
    pub async fn coalesce(&self, digest: &DeliveryRow) -> Result<u64> {
        let mark = self.sql(
            "UPDATE notify_deliveries SET status = 'coalesced', reason = $1
             WHERE group_key = $2 AND status = 'digest'",
        );
        let insert = self.sql(
            "INSERT INTO notify_deliveries (id, event_id, rule, action, channel, target, status, reason, group_key,
                 members, attempts, last_error, created_at, next_attempt_at, sent_at, lease_owner, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, 0, '', $10, $11, '', '', '')
             ON CONFLICT (id) DO NOTHING",
        );
        let reason = format!("coalesced into digest {}", digest.id);
        Ok(with_pool!(&self.pool, |p| {
            let mut tx = p.begin_with(crate::db::write_begin(p)).await?;
            let folded = sqlx::query(mark)
                .bind(&reason)
                .bind(&digest.group_key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(insert)
                .bind(&digest.id)
                .bind(&digest.event_id)
                .bind(&digest.rule)
                .bind(digest.action)
                .bind(&digest.channel)
                .bind(&digest.target)
                .bind(&digest.reason)
                .bind(format!("{}#sent", digest.group_key))
                .bind(&digest.members)
                .bind(&digest.created_at)
                .bind(&digest.next_attempt_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            folded
        }))
    }

    /// Deliveries, newest first, at most `limit`; of the rules in one namespace, of one rule
    /// (`<namespace>/<name>`) and in one status where given.
    pub async fn deliveries(
        &self,
        namespace: Option<&str>,
        rule: Option<&str>,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>> {
        let sql = self.sql(delivery_select!(
            "WHERE ($1 = '' OR rule = $1) AND ($2 = '' OR status = $2)
               AND ($4 = '' OR substr(rule, 1, length($4)) = $4)
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ));
        let prefix = namespace.map(|n| format!("{n}/")).unwrap_or_default();
        let rows: Vec<DeliveryTuple> = with_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(rule.unwrap_or(""))
            .bind(status.unwrap_or(""))
            .bind(i64::from(limit))
            .bind(prefix.as_str())
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(delivery_of).collect())
    }

    /// The delivery with this id.
    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRow>> {
        let sql = self.sql(delivery_select!("WHERE id = $1"));
        let row: Option<DeliveryTuple> = with_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(p)
            .await?);
        Ok(row.map(delivery_of))
    }

    /// A rule's deliveries counted by status, and its latest delivery's time (`""`: none).
    pub async fn rule_counts(&self, rule: &str) -> Result<(Vec<(String, i64)>, String)> {
        let counts = self.sql(
            "SELECT status, COUNT(*) FROM notify_deliveries WHERE rule = $1 GROUP BY status ORDER BY status",
        );
        let last = self
            .sql("SELECT MAX(sent_at) FROM notify_deliveries WHERE rule = $1 AND status = 'sent'");
        let (counts, last): (Vec<(String, i64)>, Option<String>) = with_pool!(&self.pool, |p| {
            let counts = sqlx::query_as(counts).bind(rule).fetch_all(p).await?;
            let last = sqlx::query_scalar(last).bind(rule).fetch_one(p).await?;
            (counts, last)
        });
        Ok((counts, last.unwrap_or_default()))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
