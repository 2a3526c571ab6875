//! VEX statements stored and read back, in the embedded SQLite catalog and in PostgreSQL:
//! conflicting statements all kept, one import one transaction, re-import idempotent, the
//! snapshot hash the same from either database.

use stella_store::{Store, VexDb};

fn documents() -> Vec<stella_vex::Document> {
    let vendor = serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://vendor.example/vex/1",
        "author": "Vendor", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
        "statements": [
            {"vulnerability": {"name": "CVE-2024-1"}, "products": [{"@id": "pkg:deb/debian/openssl@3"}],
             "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
            {"vulnerability": {"name": "CVE-2024-2"}, "products": [{"@id": "pkg:deb/debian/openssl@3"}, {"@id": "pkg:deb/debian/curl@8"}],
             "status": "fixed"}
        ]
    });
    let scanner = serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://scanner.example/vex/9",
        "author": "Scanner", "timestamp": "2024-02-01T00:00:00Z", "version": 1,
        "statements": [
            {"vulnerability": {"name": "CVE-2024-1"}, "products": [{"@id": "pkg:deb/debian/openssl@3"}],
             "status": "affected", "action_statement": "upgrade"}
        ]
    });
    [vendor, scanner]
        .iter()
        .map(|v| stella_vex::parse(v.to_string().as_bytes()).unwrap())
        .collect()
}

async fn round_trip(db: &VexDb) -> String {
    let docs = documents();
    let batch: Vec<(&stella_vex::Document, &str)> = docs.iter().map(|d| (d, "test")).collect();
    assert_eq!(db.put_documents(&batch).await.unwrap(), 4);
    assert_eq!(
        db.put_documents(&batch).await.unwrap(),
        0,
        "re-importing the same documents adds nothing"
    );
    let stored = db.vex_statements().await.unwrap();
    let mut expected: Vec<stella_vex::Statement> =
        docs.iter().flat_map(|d| d.statements.clone()).collect();
    expected.sort_by(|a, b| {
        (
            &a.vulnerability.id,
            a.product.as_str(),
            &a.source.document_digest,
            a.source.index,
        )
            .cmp(&(
                &b.vulnerability.id,
                b.product.as_str(),
                &b.source.document_digest,
                b.source.index,
            ))
    });
    assert_eq!(
        stored, expected,
        "bodies read back equal to what was parsed"
    );
    let conflicting = db.vex_statements_for("CVE-2024-1").await.unwrap();
    assert_eq!(conflicting.len(), 2, "both sides of the conflict are kept");
    let counts = db.statement_counts().await.unwrap();
    let shown: Vec<(String, Vec<(String, i64)>)> = counts
        .into_iter()
        .map(|c| (c.provider, c.by_status))
        .collect();
    assert_eq!(
        shown,
        [
            ("Scanner".to_string(), vec![("affected".to_string(), 1)]),
            (
                "Vendor".to_string(),
                vec![("fixed".to_string(), 2), ("not_affected".to_string(), 1)]
            ),
        ]
    );
    db.record_import("a.json, b.json", 4, 1).await.unwrap();
    let (origin, at, accepted, rejected) = db.last_import().await.unwrap().unwrap();
    assert_eq!(
        (origin.as_str(), accepted, rejected),
        ("a.json, b.json", 4, 1)
    );
    assert!(at.ends_with('Z') && at.len() == 20, "{at}");
    let hash = stella_vex::snapshot_hash(&stored);
    resync(db, &docs).await;
    hash
}

/// A feed's resync replaces what it held: a document it no longer serves leaves with its
/// statements; another origin's documents stay.
async fn resync(db: &VexDb, docs: &[stella_vex::Document]) {
    let before = db.vex_statements().await.unwrap().len();
    let (added, removed) = db
        .sync_documents("feedsource/vendor", &[&docs[0]])
        .await
        .unwrap();
    assert_eq!(
        (added, removed),
        (0, 0),
        "stored before under another origin: kept as it is"
    );
    let third = stella_vex::parse(
        serde_json::json!({
            "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://vendor.example/vex/3",
            "author": "Vendor", "timestamp": "2024-03-01T00:00:00Z", "version": 1,
            "statements": [{"vulnerability": {"name": "CVE-2024-3"}, "products": [{"@id": "pkg:npm/left-pad@1"}], "status": "fixed"}]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        db.sync_documents("feedsource/vendor", &[&third])
            .await
            .unwrap(),
        (1, 0)
    );
    assert_eq!(db.vex_statements().await.unwrap().len(), before + 1);
    // The next sync no longer serves it: gone, with its statement; the others stay.
    assert_eq!(
        db.sync_documents("feedsource/vendor", &[]).await.unwrap(),
        (0, 1)
    );
    assert_eq!(db.vex_statements().await.unwrap().len(), before);
    assert!(
        db.vex_statements_for("CVE-2024-3")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.remove_origin("feedsource/none").await.unwrap(), 0);
}

#[tokio::test]
async fn vex_statements_round_trip_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    let db = VexDb::embedded(&store.catalog).await.unwrap();
    let hash = round_trip(&db).await;
    let all: Vec<stella_vex::Statement> =
        documents().into_iter().flat_map(|d| d.statements).collect();
    assert_eq!(hash, stella_vex::snapshot_hash(&all));
    drop(store);
    // Reopening applies no migration twice and keeps the statements.
    let store = Store::open_embedded(dir.path()).await.unwrap();
    let db = VexDb::embedded(&store.catalog).await.unwrap();
    assert_eq!(db.migrations().await.unwrap(), [1, 2]);
    assert_eq!(db.vex_statements().await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn vex_statements_round_trip_in_postgres_with_schema_isolation() {
    let Some(pg) = super::PgDatabase::create("store") else {
        return;
    };
    let dbs = super::at_once(4, || {
        let url = pg.url.clone();
        async move { VexDb::connect_postgres(&url).await }
    })
    .await;
    let db = &dbs[0];
    assert_eq!(db.migrations().await.unwrap(), [1, 2]);
    let hash = round_trip(db).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    let sqlite = VexDb::embedded(&store.catalog).await.unwrap();
    assert_eq!(
        hash,
        round_trip(&sqlite).await,
        "same snapshot from either database"
    );
    let tables = super::pg_tables(&pg.url).await;
    assert_eq!(
        tables,
        [
            "vex.documents",
            "vex.imports",
            "vex.origin_weights",
            "vex.schema_migrations",
            "vex.statements"
        ]
    );
    drop(dbs);
    drop(pg);
}

fn openvex(id: &str, purl: &str, status: &str) -> stella_vex::Document {
    let body = serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": id,
        "author": "Vendor", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2024-7"}, "products": [{"@id": purl}],
                        "status": status, "justification": "component_not_present"}]
    });
    stella_vex::parse(body.to_string().as_bytes()).unwrap()
}

/// A VEX feed's syncs change the feed snapshot and log deltas naming the products they
/// touch; its weight reaches the documents it stored; nothing changed, nothing logged.
async fn vex_changes_reach_the_feed_snapshot(store: &Store) {
    let image = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let index = |purl: &str| super::feeds::index(&[purl], Some(&[]));
    let start = store.advisories.feed_snapshot().await.unwrap();
    let doc = openvex(
        "https://vendor.example/vex/7",
        "pkg:npm/left-pad",
        "not_affected",
    );
    let synced = store
        .sync_vex("feedsource/vendor", &[&doc], Some(0.9))
        .await
        .unwrap();
    assert_eq!(
        (synced.added, synced.removed, synced.reweighted),
        (1, 0, true)
    );
    let delta = synced
        .sync
        .delta
        .expect("the VEX state changed the snapshot");
    assert_eq!(delta.feed, "feedsource/vendor");
    assert_eq!(
        serde_json::to_value(&delta.body.vex).unwrap(),
        serde_json::json!([{"product": "pkg:npm/left-pad"}])
    );
    assert_ne!(synced.sync.snapshot, start);
    let since = store
        .advisories
        .changes_since(&start)
        .await
        .unwrap()
        .unwrap();
    assert!(since.touches(image, Some(&index("pkg:npm/left-pad@1.3.0"))));
    assert!(!since.touches(image, Some(&index("pkg:npm/right-pad@1.0.0"))));
    assert_eq!(
        store.vex.document_weights().await.unwrap(),
        [(doc.digest.clone(), 0.9)].into()
    );
    // The same sync again: nothing changed, no delta, the same snapshot.
    let again = store
        .sync_vex("feedsource/vendor", &[&doc], Some(0.9))
        .await
        .unwrap();
    assert_eq!(
        (again.added, again.removed, again.reweighted),
        (0, 0, false)
    );
    assert!(again.sync.delta.is_none());
    assert_eq!(again.sync.snapshot, synced.sync.snapshot);
    // A new weight alone is a change.
    let reweighted = store
        .sync_vex("feedsource/vendor", &[&doc], Some(0.5))
        .await
        .unwrap();
    assert!(reweighted.reweighted && reweighted.sync.delta.is_some());
    // Another document replaces it: both products are named.
    let next = openvex(
        "https://vendor.example/vex/8",
        "pkg:npm/right-pad",
        "affected",
    );
    let replaced = store
        .sync_vex("feedsource/vendor", &[&next], Some(0.5))
        .await
        .unwrap();
    assert_eq!((replaced.added, replaced.removed), (1, 1));
    let products: Vec<String> = replaced
        .sync
        .delta
        .unwrap()
        .body
        .vex
        .iter()
        .map(|s| s.product.as_str().to_string())
        .collect();
    assert_eq!(products, ["pkg:npm/left-pad", "pkg:npm/right-pad"]);
    // An import is recorded too, as `vex-import`.
    let imported = store
        .import_vex(&[(
            &openvex("https://x.example/1", "pkg:pypi/django", "fixed"),
            "x.json",
        )])
        .await
        .unwrap();
    assert_eq!(
        imported.sync.delta.unwrap().feed,
        stella_store::VEX_IMPORT_FEED
    );
    // The FeedSource goes: its statements and its weight go, and that is a change.
    let before = store.advisories.feed_snapshot().await.unwrap();
    let removed = store.remove_vex_origin("feedsource/vendor").await.unwrap();
    assert_eq!((removed.removed, removed.reweighted), (1, true));
    assert!(removed.sync.delta.is_some());
    assert!(store.vex.document_weights().await.unwrap().is_empty());
    let since = store
        .advisories
        .changes_since(&before)
        .await
        .unwrap()
        .unwrap();
    assert!(since.touches(image, Some(&index("pkg:npm/right-pad@2"))));
}

#[tokio::test]
async fn vex_changes_reach_the_feed_snapshot_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    vex_changes_reach_the_feed_snapshot(&store).await;
}

/// A document about more products than a delta lists: the delta says any image may be
/// touched instead of naming them.
#[tokio::test]
async fn a_vex_change_too_wide_to_list_touches_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    let statements: Vec<serde_json::Value> = (0..10_001)
        .map(|n| {
            serde_json::json!({"vulnerability": {"name": "CVE-2024-9"},
            "products": [{"@id": format!("pkg:npm/p{n}")}], "status": "fixed"})
        })
        .collect();
    let body = serde_json::json!({"@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://wide.example/1", "author": "Wide", "timestamp": "2024-01-01T00:00:00Z",
        "version": 1, "statements": statements});
    let doc = stella_vex::parse(body.to_string().as_bytes()).unwrap();
    let start = store.advisories.feed_snapshot().await.unwrap();
    let synced = store
        .sync_vex("feedsource/wide", &[&doc], None)
        .await
        .unwrap();
    let delta = synced.sync.delta.unwrap();
    assert!(delta.body.signals && delta.body.vex.is_empty());
    let since = store
        .advisories
        .changes_since(&start)
        .await
        .unwrap()
        .unwrap();
    let image = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    assert!(since.touches(
        image,
        Some(&super::feeds::index(&["pkg:pypi/x@1"], Some(&[])))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn vex_changes_reach_the_feed_snapshot_in_postgres() {
    let Some(pg) = super::PgDatabase::create("store") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&stella_store::StoreConfig {
        data_dir: dir.path().to_path_buf(),
        catalog_url: Some(pg.url.clone()),
        object_store_url: None,
    })
    .await
    .unwrap();
    vex_changes_reach_the_feed_snapshot(&store).await;
    drop(store);
    drop(pg);
}
