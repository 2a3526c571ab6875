//! The feed snapshot: derived from the content alone — the same advisories, KEV and EPSS give
//! the same value in either backend and however often they are imported; any change of
//! content changes it; an empty database has a fixed value.

use super::PgDatabase;
use stella_advisories::exploits::{EpssScore, KevEntry};
use stella_store::{AdvisoryDb, AdvisoryRow, EMPTY_FEED_SNAPSHOT, Store};

fn keys() -> Vec<(String, String)> {
    vec![("Debian:12".to_string(), "openssl".to_string())]
}

async fn advisories(db: &AdvisoryDb, body_of_2: &str) {
    let keys = keys();
    let rows = [
        AdvisoryRow {
            id: "CVE-2",
            source: "osv",
            modified: "2026-01-01",
            body: body_of_2,
            keys: &keys,
        },
        AdvisoryRow {
            id: "CVE-1",
            source: "osv",
            modified: "2026-01-01",
            body: r#"{"id":"CVE-1"}"#,
            keys: &keys,
        },
    ];
    db.put_advisories(&rows).await.unwrap();
}

fn kev(cve: &str) -> KevEntry {
    KevEntry {
        cve: cve.into(),
        vendor: "v".into(),
        product: "p".into(),
        date_added: "2024-01-01".into(),
        ransomware: true,
    }
}

fn epss(cve: &str, score: f64) -> EpssScore {
    EpssScore {
        cve: cve.into(),
        epss: score,
        percentile: 0.25,
    }
}

/// Walks one database through imports and returns the snapshot after each step.
async fn snapshots(db: &AdvisoryDb) -> Vec<String> {
    let mut seen = vec![db.feed_snapshot().await.unwrap()];
    advisories(db, r#"{"id":"CVE-2"}"#).await;
    seen.push(db.feed_snapshot().await.unwrap());
    // The same import again: same content, same snapshot.
    advisories(db, r#"{"id":"CVE-2"}"#).await;
    seen.push(db.feed_snapshot().await.unwrap());
    db.put_kev(&[kev("CVE-1")]).await.unwrap();
    seen.push(db.feed_snapshot().await.unwrap());
    db.put_epss(&[epss("CVE-1", 0.1)], Some("2026-01-01"))
        .await
        .unwrap();
    seen.push(db.feed_snapshot().await.unwrap());
    db.put_epss(&[epss("CVE-1", 0.2)], Some("2026-01-01"))
        .await
        .unwrap();
    seen.push(db.feed_snapshot().await.unwrap());
    // Back to the earlier score: back to the earlier snapshot.
    db.put_epss(&[epss("CVE-1", 0.1)], Some("2026-01-01"))
        .await
        .unwrap();
    seen.push(db.feed_snapshot().await.unwrap());
    advisories(db, r#"{"id":"CVE-2","summary":"changed"}"#).await;
    seen.push(db.feed_snapshot().await.unwrap());
    // Recording an import changes no content.
    db.record_import("again", 2, 0).await.unwrap();
    seen.push(db.feed_snapshot().await.unwrap());
    seen
}

fn check(seen: &[String]) {
    assert_eq!(seen[0], EMPTY_FEED_SNAPSHOT, "the empty database");
    assert!(
        seen.iter()
            .all(|s| s.len() == 71 && s.starts_with("sha256:"))
    );
    assert_ne!(seen[1], seen[0], "advisories imported");
    assert_eq!(seen[2], seen[1], "the same import twice");
    assert_ne!(seen[3], seen[2], "KEV imported");
    assert_ne!(seen[4], seen[3], "EPSS imported");
    assert_ne!(seen[5], seen[4], "an EPSS score changed");
    assert_eq!(seen[6], seen[4], "the same content again");
    assert_ne!(seen[7], seen[6], "an advisory's body changed");
    assert_eq!(seen[8], seen[7], "an import record is not content");
}

#[tokio::test]
async fn feed_snapshots_follow_content_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    let seen = snapshots(&store.advisories).await;
    check(&seen);
    // Another database importing the same content in another order agrees.
    let other = tempfile::tempdir().unwrap();
    let db = Store::open_embedded(other.path()).await.unwrap().advisories;
    db.put_epss(&[epss("CVE-1", 0.1)], Some("2026-01-01"))
        .await
        .unwrap();
    db.put_kev(&[kev("CVE-1")]).await.unwrap();
    advisories(&db, r#"{"id":"CVE-2","summary":"changed"}"#).await;
    assert_eq!(db.feed_snapshot().await.unwrap(), seen[8]);
    // A database written before the snapshot row existed gets it computed once, the same.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        other.path().join("catalog.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("DELETE FROM vuln_feed_snapshot")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(db.feed_snapshot().await.unwrap(), seen[8]);
    drop(store);
    // Reopening keeps it.
    let store = Store::open_embedded(dir.path()).await.unwrap();
    assert_eq!(store.advisories.feed_snapshot().await.unwrap(), seen[8]);
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_snapshots_follow_content_in_postgres_and_agree_with_sqlite() {
    let Some(pg) = PgDatabase::create("store") else {
        return;
    };
    let db = AdvisoryDb::connect_postgres(&pg.url).await.unwrap();
    let seen = snapshots(&db).await;
    check(&seen);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open_embedded(dir.path()).await.unwrap();
    assert_eq!(
        snapshots(&sqlite.advisories).await,
        seen,
        "the same content gives the same snapshot in either backend"
    );
    // Concurrent imports serialise: the stored snapshot is that of the final content.
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.put_epss(&[epss(&format!("CVE-9{i}"), 0.5)], None)
                    .await
                    .unwrap();
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let concurrent = db.feed_snapshot().await.unwrap();
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    sqlx::query("DELETE FROM vuln.feed_snapshot")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        db.feed_snapshot().await.unwrap(),
        concurrent,
        "recomputed from scratch, the same"
    );
    drop(db);
    pool.close().await;
    drop(pg);
}
