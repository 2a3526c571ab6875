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
    assert_eq!(db.migrations().await.unwrap(), [1]);
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
    assert_eq!(db.migrations().await.unwrap(), [1]);
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
            "vex.schema_migrations",
            "vex.statements"
        ]
    );
    drop(dbs);
    drop(pg);
}
