//! Databases an earlier store wrote open as they are: nothing re-applied, nothing lost, and a
//! new database is laid out exactly as those were. The fixtures are what the store at b47e39d
//! (before each module declared its own migrations, when the advisory module's SQLite schema
//! was the catalog's) wrote: one image with its artifact, cache entry, result and run, two
//! advisories with KEV, EPSS and an import, two VEX documents with an import, two unknowns
//! (one resolved). `store-b47e39d.db.zst` is its embedded catalog file itself (created with
//! 512-byte pages to keep it small, its WAL checkpointed); `store-b47e39d.postgres.sql.zst` its
//! PostgreSQL database, by `pg_dump --inserts --no-owner --no-privileges --no-comments`
//! (psql's `\restrict` lines removed). Both zstd-compressed data (`zstd -dc` shows them).

use super::PgDatabase;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{AssertSqlSafe, PgPool};
use std::path::Path;
use stella_store::{Store, StoreConfig, UnknownFilter, keys};

const SQLITE_BEFORE: &[u8] = include_bytes!("data/store-b47e39d.db.zst");
const POSTGRES_BEFORE: &[u8] = include_bytes!("data/store-b47e39d.postgres.sql.zst");

/// The feed snapshot of the fixtures' content, as the old store computed and stored it.
const FIXTURE_FEED_SNAPSHOT: &str =
    "sha256:598c5797716a5a7363ea2ae49e92622b7f91291ae40fbeb6bcc2e4e3eec85612";

/// What a database is, apart from its rows: its schema objects, one line each, and its
/// migration ledgers' rows (ledger, version, when applied).
#[derive(Debug, PartialEq)]
struct Layout {
    objects: Vec<String>,
    ledgers: Vec<(String, i64, String)>,
}

impl Layout {
    /// The ledgers' versions without their times: what a new database must match.
    fn versions(&self) -> Vec<(String, i64)> {
        self.ledgers
            .iter()
            .map(|(l, v, _)| (l.clone(), *v))
            .collect()
    }
}

/// One query over the ledger tables `names`: (ledger, version, when applied), in order.
fn ledgers_sql(names: &[String], applied_at: &str) -> AssertSqlSafe<String> {
    let each: Vec<String> = names
        .iter()
        .map(|name| format!("SELECT '{name}', version, {applied_at} FROM {name}"))
        .collect();
    AssertSqlSafe(format!("{} ORDER BY 1, 2", each.join(" UNION ALL ")))
}

async fn sqlite_pool(dir: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("catalog.db"))
        .create_if_missing(true);
    SqlitePool::connect_with(options).await.unwrap()
}

async fn sqlite_layout(dir: &Path) -> Layout {
    let pool = sqlite_pool(dir).await;
    let objects = sqlx::query_scalar(
        "SELECT type || ' ' || name || ' ON ' || tbl_name || ': ' || coalesce(sql, '')
         FROM sqlite_master ORDER BY type, name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%_schema_migrations' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let ledgers = sqlx::query_as(ledgers_sql(&names, "applied_at"))
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    Layout { objects, ledgers }
}

const SCHEMAS: &str = "('scanner', 'vuln', 'vex', 'policy')";

async fn postgres_layout(url: &str) -> Layout {
    let pool = PgPool::connect(url).await.unwrap();
    let names = ["policy", "scanner", "vex", "vuln"].map(|s| format!("{s}.schema_migrations"));
    let ledgers = sqlx::query_as(ledgers_sql(&names, "applied_at::text"))
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut objects: Vec<String> = Vec::new();
    for sql in [
        "SELECT concat_ws(' ', 'column', table_schema, table_name, column_name, data_type, is_nullable,
             column_default, collation_name)
         FROM information_schema.columns WHERE table_schema IN ",
        "SELECT concat_ws(' ', 'index', schemaname, tablename, indexname, indexdef)
         FROM pg_indexes WHERE schemaname IN ",
        "SELECT concat_ws(' ', 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid))
         FROM pg_constraint WHERE connamespace::regnamespace::text IN ",
        "SELECT concat_ws(' ', 'sequence', sequence_schema, sequence_name, data_type)
         FROM information_schema.sequences WHERE sequence_schema IN ",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("{sql}{SCHEMAS}")))
            .fetch_all(&pool)
            .await
            .unwrap();
        objects.extend(rows);
    }
    pool.close().await;
    objects.sort();
    Layout { objects, ledgers }
}

/// Everything the old store wrote, read back through today's.
async fn reads_what_the_old_store_wrote(store: &Store) {
    let digest = |b: &str| format!("sha256:{}", b.repeat(32));
    let a = digest("aa");
    let image = store.catalog.image(&a).await.unwrap().unwrap();
    assert_eq!((image.components, image.layers.len()), (3, 2));
    assert_eq!(store.catalog.artifacts(&a).await.unwrap().len(), 1);
    // The old advisories are the `import` feed's: a FeedSource's first sync removes none.
    let advisories = store.advisories.advisory_bodies().await.unwrap().len();
    let sync = store.advisories.sync_feed("ns/new", &[]).await.unwrap();
    assert_eq!(sync.delta, None);
    assert_eq!(
        store.advisories.advisory_bodies().await.unwrap().len(),
        advisories
    );
    let layer = &image.layers[0].0;
    assert_eq!(
        store.catalog.cache_entry(layer, "v1").await.unwrap(),
        Some(keys::layer_fragment(layer, "v1"))
    );
    let result = store
        .catalog
        .result(&a, "analyzers-7", &digest("fe"), Some(&digest("90")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (result.verdict.as_deref(), result.critical),
        (Some("FAIL"), 1)
    );
    let run = store.catalog.run("scan-app-1").await.unwrap().unwrap();
    assert_eq!(run.outcome, "succeeded");

    let advisories = &store.advisories;
    assert_eq!(
        advisories
            .advisories_for(&[("Debian:12".into(), "openssl".into())])
            .await
            .unwrap(),
        [r#"{"id":"CVE-2024-1"}"#, r#"{"id":"CVE-2024-2"}"#]
    );
    assert_eq!(
        advisories.advisory_counts().await.unwrap(),
        [("debian-tracker".to_string(), 1), ("osv".to_string(), 1)]
    );
    let signals = advisories
        .exploit_signals(&["CVE-2024-1".into(), "CVE-2024-2".into()])
        .await
        .unwrap();
    assert_eq!(signals["CVE-2024-1"], (true, None));
    assert_eq!(signals["CVE-2024-2"], (false, Some(0.25)));
    assert_eq!(
        advisories.feed_snapshot().await.unwrap(),
        FIXTURE_FEED_SNAPSHOT
    );
    let (origin, at, accepted, rejected) = advisories.last_import().await.unwrap().unwrap();
    assert_eq!((origin.as_str(), accepted, rejected), ("osv.zip", 2, 0));
    assert!(
        at.starts_with("2026-12-01T") && at.ends_with('Z') && at.len() == 20,
        "{at}"
    );

    assert_eq!(store.vex.vex_statements().await.unwrap().len(), 4);
    assert_eq!(
        store
            .vex
            .vex_statements_for("CVE-2024-1")
            .await
            .unwrap()
            .len(),
        2
    );
    let (origin, _, accepted, _) = store.vex.last_import().await.unwrap().unwrap();
    assert_eq!((origin.as_str(), accepted), ("vendor.json", 3));

    let all = UnknownFilter {
        all: true,
        ..UnknownFilter::default()
    };
    let unknowns: Vec<(String, String)> = store
        .unknowns
        .list(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.row.id, u.status))
        .collect();
    assert_eq!(
        unknowns,
        [
            ("u1".to_string(), "open".to_string()),
            ("u2".to_string(), "resolved".to_string())
        ]
    );
}

/// The migrations an old database has after opening: its own plus the feed tables (the
/// advisory module's SQLite version 6, PostgreSQL version 4; and the VEX state, 7 and 5), which hold the advisories it
/// had as the `import` feed's.
async fn migrations_now(store: &Store, postgres: bool) {
    let (catalog, advisories): (&[i64], &[i64]) = if postgres {
        (&[1], &[1, 2, 3, 4, 5])
    } else {
        (&[1, 2, 3, 4, 5, 6, 7], &[2, 3, 5, 6, 7])
    };
    assert_eq!(store.catalog.migrations().await.unwrap(), catalog);
    assert_eq!(store.advisories.migrations().await.unwrap(), advisories);
    assert_eq!(store.vex.migrations().await.unwrap(), [1, 2]);
    assert_eq!(store.unknowns.migrations().await.unwrap(), [1]);
}

/// The SQLite fixture as `dir/catalog.db`.
async fn restore_sqlite(dir: &Path) {
    std::fs::write(
        dir.join("catalog.db"),
        zstd::decode_all(SQLITE_BEFORE).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn an_embedded_catalog_from_before_opens_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    restore_sqlite(dir.path()).await;
    let before = sqlite_layout(dir.path()).await;
    assert_eq!(before.ledgers.len(), 7, "{:?}", before.ledgers);
    let store = Store::open_embedded(dir.path()).await.unwrap();
    migrations_now(&store, false).await;
    reads_what_the_old_store_wrote(&store).await;
    drop(store);
    only_the_feed_tables_were_added(&before, &sqlite_layout(dir.path()).await);
    // Today's snapshot of the old content is the one the old store stored.
    let pool = sqlite_pool(dir.path()).await;
    sqlx::query("DELETE FROM vuln_feed_snapshot")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = Store::open_embedded(dir.path()).await.unwrap();
    assert_eq!(
        store.advisories.feed_snapshot().await.unwrap(),
        FIXTURE_FEED_SNAPSHOT
    );
}

/// Opening an old database kept its ledger rows (times too) and its objects, and added only
/// the feed tables', the VEX state's and weights', and the scheduler's and notify's migrations and objects.
fn only_the_feed_tables_were_added(before: &Layout, after: &Layout) {
    let kept: Vec<_> = after
        .ledgers
        .iter()
        .filter(|row| before.ledgers.contains(row))
        .collect();
    assert_eq!(kept.len(), before.ledgers.len(), "the old ledger rows stay");
    let added: Vec<(String, i64)> = after
        .ledgers
        .iter()
        .filter(|row| !before.ledgers.contains(row))
        .map(|(l, v, _)| (l.clone(), *v))
        .collect();
    // The old modules gain three migrations (the feed tables, the VEX state in the feed
    // snapshot, the VEX origin weights); the scheduler and notify modules are new and bring their own
    // ledgers (the PostgreSQL layout lists only the old modules' schemas).
    let (scheduler, old): (Vec<_>, Vec<_>) = added
        .iter()
        .partition(|(l, _)| l.starts_with("scheduler") || l.starts_with("notify"));
    assert_eq!(
        old.len(),
        3,
        "the feed tables, the VEX state and weights ({added:?})"
    );
    assert!(scheduler.len() <= 2, "{added:?}");
    assert!(before.objects.iter().all(|o| after.objects.contains(o)));
    let new: Vec<&String> = after
        .objects
        .iter()
        .filter(|o| !before.objects.contains(o))
        .collect();
    assert!(
        !new.is_empty()
            && new.iter().all(|o| o.contains("feed")
                || o.contains("scheduler")
                || o.contains("notify")
                || o.contains("vex")),
        "only feed, VEX and scheduler objects are new: {new:?}"
    );
}

#[tokio::test]
async fn a_new_embedded_catalog_is_laid_out_as_an_upgraded_one() {
    let old = tempfile::tempdir().unwrap();
    restore_sqlite(old.path()).await;
    drop(Store::open_embedded(old.path()).await.unwrap());
    let new = tempfile::tempdir().unwrap();
    drop(Store::open_embedded(new.path()).await.unwrap());
    let (old, new) = (
        sqlite_layout(old.path()).await,
        sqlite_layout(new.path()).await,
    );
    assert_eq!(new.objects, old.objects);
    assert_eq!(new.versions(), old.versions());
}

#[tokio::test]
async fn an_embedded_catalog_from_before_the_feed_snapshot_row_gets_its_table() {
    // As a store before the catalog's version 5 left it: the advisory module's migration
    // lands in the same ledger, as version 5.
    let dir = tempfile::tempdir().unwrap();
    restore_sqlite(dir.path()).await;
    let full = {
        let upgraded = tempfile::tempdir().unwrap();
        restore_sqlite(upgraded.path()).await;
        drop(Store::open_embedded(upgraded.path()).await.unwrap());
        sqlite_layout(upgraded.path()).await
    };
    let pool = sqlite_pool(dir.path()).await;
    sqlx::raw_sql(
        "DELETE FROM scanner_schema_migrations WHERE version = 5; DROP TABLE vuln_feed_snapshot;",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let store = Store::open_embedded(dir.path()).await.unwrap();
    migrations_now(&store, false).await;
    assert_eq!(
        store.advisories.feed_snapshot().await.unwrap(),
        FIXTURE_FEED_SNAPSHOT
    );
    drop(store);
    let upgraded = sqlite_layout(dir.path()).await;
    assert_eq!(upgraded.objects, full.objects);
    assert_eq!(upgraded.versions(), full.versions());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_database_from_before_opens_as_it_is() {
    let Some(db) = PgDatabase::create("store") else {
        return;
    };
    let pool = PgPool::connect(&db.url).await.unwrap();
    let dump = String::from_utf8(zstd::decode_all(POSTGRES_BEFORE).unwrap()).unwrap();
    sqlx::raw_sql(AssertSqlSafe(dump))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let before = postgres_layout(&db.url).await;
    assert_eq!(before.ledgers.len(), 6, "{:?}", before.ledgers);
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        data_dir: dir.path().to_path_buf(),
        catalog_url: Some(db.url.clone()),
        object_store_url: None,
    };
    let store = Store::open(&config).await.unwrap();
    migrations_now(&store, true).await;
    reads_what_the_old_store_wrote(&store).await;
    drop(store);
    let before = {
        let after = postgres_layout(&db.url).await;
        only_the_feed_tables_were_added(&before, &after);
        after
    };

    // A new database is laid out as the old one.
    let Some(fresh) = PgDatabase::create("store") else {
        return;
    };
    let store = Store::open(&StoreConfig {
        catalog_url: Some(fresh.url.clone()),
        ..config
    })
    .await
    .unwrap();
    drop(store);
    let new = postgres_layout(&fresh.url).await;
    assert_eq!(new.objects, before.objects);
    assert_eq!(new.versions(), before.versions());
    drop(fresh);
    drop(db);
}
