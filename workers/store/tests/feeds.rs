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

/// A row of `feed` tests: advisory `id` of source `osv` about `package` in Debian 12.
const IMAGE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// A BOM-Index of `IMAGE` with these purls and match keys.
pub(crate) fn index(purls: &[&str], keys: Option<&[&str]>) -> stella_sbom::bomindex::BomIndex {
    use stella_sbom::bomindex::{BomIndex, Header, MAGIC, VERSION};
    BomIndex {
        header: Header {
            magic: MAGIC,
            version: VERSION,
            image_digest: IMAGE.into(),
            created_at: None,
        },
        purls: purls.iter().map(|p| p.to_string()).collect(),
        components: Default::default(),
        used_by_entrypoint: None,
        match_keys: keys.map(|k| k.iter().map(|k| k.to_string()).collect()),
    }
}

fn row<'a>(id: &'a str, body: &'a str, keys: &'a [(String, String)]) -> AdvisoryRow<'a> {
    AdvisoryRow {
        id,
        source: "osv",
        modified: "2026-01-01",
        body,
        keys,
    }
}

fn debian(package: &str) -> Vec<(String, String)> {
    vec![("Debian:12".to_string(), package.to_string())]
}

/// Walks one database through the syncs of two feeds and checks each delta.
async fn resyncs(db: &AdvisoryDb) {
    let (openssl, zlib, curl) = (debian("openssl"), debian("zlib"), debian("curl"));
    let start = db.feed_snapshot().await.unwrap();
    // First sync of feed a: two advisories.
    let first = db
        .sync_feed(
            "ns/a",
            &[
                row("CVE-1", "{\"v\":1}", &openssl),
                row("CVE-2", "{\"v\":1}", &zlib),
            ],
        )
        .await
        .unwrap();
    let delta = first.delta.clone().expect("a change");
    assert_eq!(delta.from_snapshot, start);
    assert_eq!(delta.to_snapshot, first.snapshot);
    assert_eq!(delta.body.added, ["CVE-1", "CVE-2"]);
    assert_eq!(delta.body.keys, ["Debian:12/openssl", "Debian:12/zlib"]);
    assert!(delta.body.removed.is_empty() && delta.body.changed.is_empty());
    // The same truth again: nothing changes, nothing is logged.
    let again = db
        .sync_feed(
            "ns/a",
            &[
                row("CVE-2", "{\"v\":1}", &zlib),
                row("CVE-1", "{\"v\":1}", &openssl),
            ],
        )
        .await
        .unwrap();
    assert_eq!(again.snapshot, first.snapshot);
    assert_eq!(
        again.feed_snapshot, first.feed_snapshot,
        "order does not matter"
    );
    assert_eq!(again.delta, None);
    // Feed b also holds CVE-2.
    db.sync_feed("ns/b", &[row("CVE-2", "{\"v\":1}", &zlib)])
        .await
        .unwrap();
    // Upstream removed CVE-2 from a, changed CVE-1 to name curl, and added CVE-3.
    let resync = db
        .sync_feed(
            "ns/a",
            &[
                row("CVE-1", "{\"v\":2}", &curl),
                row("CVE-3", "{\"v\":1}", &zlib),
            ],
        )
        .await
        .unwrap();
    let delta = resync.delta.clone().expect("a change");
    assert_eq!(delta.body.added, ["CVE-3"]);
    assert_eq!(delta.body.changed, ["CVE-1"]);
    assert!(delta.body.removed.is_empty(), "feed b still holds CVE-2");
    assert_eq!(
        delta.body.keys,
        ["Debian:12/curl", "Debian:12/openssl", "Debian:12/zlib"],
        "old and new keys of the changed one"
    );
    let ids = |bodies: Vec<String>| bodies.len();
    assert_eq!(
        ids(db.advisory_bodies().await.unwrap()),
        3,
        "{:?}",
        db.advisory_bodies().await.unwrap()
    );
    // Feed b drops CVE-2: now nobody holds it, so it leaves the store.
    let dropped = db.sync_feed("ns/b", &[]).await.unwrap();
    let delta = dropped.delta.clone().expect("a change");
    assert_eq!(delta.body.removed, ["CVE-2"]);
    assert_eq!(delta.body.keys, ["Debian:12/zlib"]);
    assert!(
        db.advisories_for(&zlib)
            .await
            .unwrap()
            .iter()
            .all(|b| b == "{\"v\":1}"),
        "CVE-3 names zlib still"
    );
    assert_eq!(ids(db.advisory_bodies().await.unwrap()), 2);
    // Changes since the first sync: the union of the two deltas after it (feed b's first
    // sync held nothing new, so it changed nothing).
    let since = db.changes_since(&first.snapshot).await.unwrap().unwrap();
    assert_eq!(since.deltas, 2);
    assert!(since.touches(IMAGE, Some(&index(&[], Some(&["Debian:12/curl"])))));
    assert!(!since.touches(IMAGE, Some(&index(&[], Some(&["Debian:12/bash"])))));
    assert!(since.touches(IMAGE, None), "no index: touched");
    assert!(
        since.touches(IMAGE, Some(&index(&[], None))),
        "unknown keys are touched"
    );
    assert!(!since.signals);
    // From the current snapshot: nothing; from one never seen: the log cannot say.
    let now = db.feed_snapshot().await.unwrap();
    assert_eq!(db.changes_since(&now).await.unwrap().unwrap().deltas, 0);
    assert_eq!(db.changes_since("sha256:0000").await.unwrap(), None);
    // KEV is a signal: every image may be touched.
    db.put_kev(&[kev("CVE-1")]).await.unwrap();
    let since = db.changes_since(&now).await.unwrap().unwrap();
    assert!(since.signals && since.touches(IMAGE, Some(&index(&[], Some(&[])))));
    // The log lists each delta in order.
    let log = db.feed_deltas(0, 100).await.unwrap();
    let feeds: Vec<&str> = log.iter().map(|d| d.feed.as_str()).collect();
    assert_eq!(feeds, ["ns/a", "ns/a", "ns/b", "signals"]);
    assert!(
        log.windows(2)
            .all(|w| w[0].to_snapshot == w[1].from_snapshot)
    );
    // Removing a feed removes what only it held.
    let removed = db.remove_feed("ns/a").await.unwrap();
    assert_eq!(removed.delta.unwrap().body.removed, ["CVE-1", "CVE-3"]);
    assert!(db.advisory_bodies().await.unwrap().is_empty());
    // Feed state round-trips.
    let state = stella_store::FeedState {
        feed: "ns/c".into(),
        snapshot: first.feed_snapshot.clone(),
        records: 2,
        rejected: 1,
        etag: Some("\"abc\"".into()),
        last_modified: None,
        synced_at: "2026-12-02T00:00:00Z".into(),
    };
    db.put_feed_state(&state).await.unwrap();
    assert_eq!(db.feed_state("ns/c").await.unwrap(), Some(state));
    assert_eq!(db.feed_state("ns/none").await.unwrap(), None);
}

#[tokio::test]
async fn a_resync_is_the_feeds_whole_truth_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    resyncs(&store.advisories).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resync_is_the_feeds_whole_truth_in_postgres() {
    let Some(pg) = PgDatabase::create("store") else {
        return;
    };
    let db = AdvisoryDb::connect_postgres(&pg.url).await.unwrap();
    resyncs(&db).await;
    drop(db);
    drop(pg);
}

#[tokio::test]
async fn imported_advisories_belong_to_the_import_feed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::open_embedded(dir.path()).await.unwrap().advisories;
    advisories(&db, r#"{"id":"CVE-2"}"#).await;
    // A FeedSource that held CVE-1 too and drops it does not remove the imported one.
    let keys = keys();
    db.sync_feed("ns/a", &[row("CVE-1", r#"{"id":"CVE-1"}"#, &keys)])
        .await
        .unwrap();
    let dropped = db.sync_feed("ns/a", &[]).await.unwrap();
    assert_eq!(dropped.delta, None, "the import still holds it");
    assert_eq!(db.advisory_bodies().await.unwrap().len(), 2);
}

/// A reporter's events are committed with the delta they report; a write that logs no delta
/// reports nothing; a second reporter is refused; a separate advisory database cannot report.
async fn deltas_are_reported(store: &Store) {
    let db = &store.advisories;
    let reporter: stella_store::DeltaReporter = std::sync::Arc::new(|delta| {
        vec![stella_store::OutboxEvent {
            event_id: format!("feed-{}", delta.to_snapshot),
            kind: "feeds.snapshot.changed".into(),
            namespace: String::new(),
            time: delta.at.clone(),
            body: serde_json::json!({"feed": delta.feed, "added": delta.body.added}).to_string(),
        }]
    });
    assert!(db.report_deltas(reporter.clone()));
    assert!(!db.report_deltas(reporter), "one reporter");
    let keys = keys();
    let sync = db
        .sync_feed("ns/a", &[row("CVE-1", r#"{"id":"CVE-1"}"#, &keys)])
        .await
        .unwrap();
    let again = db
        .sync_feed("ns/a", &[row("CVE-1", r#"{"id":"CVE-1"}"#, &keys)])
        .await
        .unwrap();
    assert_eq!(again.delta, None);
    let events = store.notify.events_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1, "one event for the one delta");
    assert_eq!(events[0].1.event_id, format!("feed-{}", sync.snapshot));
    assert!(events[0].1.body.contains("CVE-1"));
}

#[tokio::test]
async fn feed_deltas_are_reported_in_their_transaction_in_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    deltas_are_reported(&Store::open_embedded(dir.path()).await.unwrap()).await;
    let Some(pg) = PgDatabase::create("store") else {
        return;
    };
    let store = Store::open(&stella_store::StoreConfig {
        data_dir: dir.path().join("pg"),
        catalog_url: Some(pg.url.clone()),
        object_store_url: None,
    })
    .await
    .unwrap();
    deltas_are_reported(&store).await;
    let separate = AdvisoryDb::connect_postgres(&pg.url).await.unwrap();
    assert!(!separate.report_deltas(std::sync::Arc::new(|_| Vec::new())));
}

/// Advisories stored with keys as their feed spelled them (before keys followed each
/// ecosystem's name comparison) are re-keyed when the store opens, so candidates meet them.
async fn old_keys_are_normalised(open: impl AsyncFn() -> AdvisoryDb) {
    let db = open().await;
    let old = vec![
        (
            "PyPI".to_string(),
            "Products.PluggableAuthService".to_string(),
        ),
        ("NuGet".to_string(), "Newtonsoft.Json".to_string()),
        ("npm".to_string(), "JSONStream".to_string()),
    ];
    db.sync_feed("ns/old", &[row("GHSA-1", r#"{"id":"GHSA-1"}"#, &old)])
        .await
        .unwrap();
    drop(db);
    let db = open().await;
    for (ecosystem, package) in [
        ("PyPI", "products-pluggableauthservice"),
        ("NuGet", "newtonsoft.json"),
        ("npm", "JSONStream"),
    ] {
        let found = db
            .advisories_for(&[(ecosystem.to_string(), package.to_string())])
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{ecosystem}/{package}");
    }
    assert!(
        db.advisories_for(&[("npm".into(), "jsonstream".into())])
            .await
            .unwrap()
            .is_empty(),
        "npm names are case-sensitive"
    );
}

#[tokio::test]
async fn stored_keys_are_normalised_on_open_in_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    old_keys_are_normalised(async || Store::open_embedded(&path).await.unwrap().advisories).await;
    let Some(pg) = PgDatabase::create("store") else {
        return;
    };
    let url = pg.url.clone();
    old_keys_are_normalised(async || AdvisoryDb::connect_postgres(&url).await.unwrap()).await;
}
