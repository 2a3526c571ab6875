//! The scheduler's runs on both backends: written when a run starts and again when it ends,
//! listed newest first per Schedule, bounded.

use stella_e2e::services::PgDatabase;
use stella_store::{MAX_RUN_BODY, SchedulerRunRow, Store, StoreConfig};

fn run(id: &str, schedule: &str, state: &str, at: &str) -> SchedulerRunRow {
    SchedulerRunRow {
        run_id: id.into(),
        schedule: schedule.into(),
        state: state.into(),
        started_at: at.into(),
        body: serde_json::json!({"id": id, "state": state}).to_string(),
    }
}

async fn round_trip(store: &Store) {
    let db = &store.scheduler;
    db.put_run(&run(
        "nightly-1",
        "nightly",
        "Running",
        "2026-12-01T02:00:00Z",
    ))
    .await
    .unwrap();
    let done = run("nightly-1", "nightly", "Completed", "2026-12-01T02:00:00Z");
    db.put_run(&done).await.unwrap();
    db.put_run(&run(
        "nightly-2",
        "nightly",
        "Running",
        "2026-12-02T02:00:00Z",
    ))
    .await
    .unwrap();
    db.put_run(&run("weekly-1", "weekly", "Failed", "2026-12-02T03:00:00Z"))
        .await
        .unwrap();
    assert_eq!(db.run("nightly-1").await.unwrap(), Some(done), "replaced");
    assert_eq!(db.run("nope").await.unwrap(), None);
    let ids = |rows: Vec<SchedulerRunRow>| rows.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.runs("nightly", 10).await.unwrap()),
        ["nightly-2", "nightly-1"]
    );
    assert_eq!(ids(db.runs("nightly", 1).await.unwrap()), ["nightly-2"]);
    assert!(db.runs("other", 10).await.unwrap().is_empty());
    // Hostile sizes are refused with the field named, nothing written.
    let mut big = run("big-1", "nightly", "Running", "2026-12-03T00:00:00Z");
    big.body = "x".repeat(MAX_RUN_BODY + 1);
    assert!(
        db.put_run(&big)
            .await
            .unwrap_err()
            .to_string()
            .contains("run body")
    );
    let mut nameless = run("", "nightly", "Running", "2026-12-03T00:00:00Z");
    assert!(
        db.put_run(&nameless)
            .await
            .unwrap_err()
            .to_string()
            .contains("run id")
    );
    nameless.run_id = "r".repeat(257);
    assert!(db.put_run(&nameless).await.is_err());
    assert_eq!(db.runs("nightly", 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn runs_round_trip_in_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&Store::open_embedded(dir.path()).await.unwrap()).await;
    let Some(db) = PgDatabase::create("store") else {
        return;
    };
    let store = Store::open(&StoreConfig {
        data_dir: dir.path().join("pg"),
        catalog_url: Some(db.url.clone()),
        object_store_url: None,
    })
    .await
    .unwrap();
    round_trip(&store).await;
}
