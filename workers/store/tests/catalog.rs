//! Every catalog method on both backends — the embedded SQLite file and a real PostgreSQL —
//! with the same assertions: images, artifacts, cache entries, scan results under pinned
//! inputs, worker runs, forgetting an image; migrations applied once however many start
//! together; garbage refused with a clear error.

use super::{PgDatabase, image};
use stella_store::{
    ArtifactRow, Catalog, Error, ResultRow, RunRow, Store, StoreConfig, UnknownFilter, UnknownRow,
    keys,
};

fn digest(byte: &str) -> String {
    format!("sha256:{}", byte.repeat(32))
}

fn artifact(image_digest: &str, view: &str) -> ArtifactRow {
    ArtifactRow {
        key: keys::image_artifact(image_digest, view, "cdx.json"),
        image_digest: image_digest.into(),
        kind: "sbom".into(),
        format: "cyclonedx-json".into(),
        view: Some(view.into()),
        digest: digest("5a"),
        size: 2,
    }
}

pub(crate) fn result(image_digest: &str, policy: Option<&str>, finished_at: &str) -> ResultRow {
    ResultRow {
        image_digest: image_digest.into(),
        image_ref: "registry.example/app:1".into(),
        analyzer_version: "analyzers-7".into(),
        feed_snapshot: digest("fe"),
        vex_snapshot: Some(digest("7e")),
        policy_digest: policy.map(Into::into),
        verdict: policy.map(|_| "FAIL".into()),
        critical: 1,
        high: 2,
        medium: 3,
        low: 4,
        none: 5,
        unknown: 6,
        suppressed: 7,
        components: 120,
        report_key: policy.map(|_| format!("images/{image_digest}/report.json")),
        finished_at: finished_at.into(),
    }
}

fn run(run_id: &str, image_digest: Option<&str>) -> RunRow {
    RunRow {
        run_id: run_id.into(),
        image_digest: image_digest.map(Into::into),
        outcome: "failed".into(),
        reason: "Unreachable".into(),
        message: "registry.example: connection refused".into(),
        finished_at: "2026-11-28T08:00:00Z".into(),
    }
}

/// The same checks against either backend.
async fn every_method(catalog: &Catalog) {
    let (a, b) = (digest("aa"), digest("bb"));

    // Images and their layers; recording twice refreshes, never duplicates.
    catalog.record_image(&image(&a)).await.unwrap();
    catalog.record_image(&image(&a)).await.unwrap();
    let mut other = image(&b);
    other.layers.truncate(1);
    catalog.record_image(&other).await.unwrap();
    assert_eq!(catalog.image(&a).await.unwrap(), Some(image(&a)));
    assert_eq!(catalog.image(&b).await.unwrap(), Some(other.clone()));
    assert_eq!(catalog.image(&digest("00")).await.unwrap(), None);

    // Artifacts, by key; of one kind over catalogued images only.
    for row in [artifact(&a, "usage"), artifact(&a, "inventory")] {
        catalog.record_artifact(&row).await.unwrap();
    }
    let mut replaced = artifact(&a, "usage");
    replaced.digest = digest("5b");
    replaced.size = 3;
    catalog.record_artifact(&replaced).await.unwrap();
    catalog
        .record_artifact(&artifact(&digest("cc"), "inventory"))
        .await
        .unwrap();
    assert_eq!(
        catalog.artifacts(&a).await.unwrap(),
        [artifact(&a, "inventory"), replaced.clone()]
    );
    catalog
        .record_artifact(&artifact(&b, "inventory"))
        .await
        .unwrap();
    let sboms: Vec<String> = catalog
        .artifacts_of_kind("sbom")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(
        sboms,
        [
            artifact(&a, "inventory").key,
            replaced.key.clone(),
            artifact(&b, "inventory").key
        ],
        "the uncatalogued image's artifact is left out"
    );

    // Cache entries.
    let layer = &image(&a).layers[0].0;
    assert_eq!(catalog.cache_entry(layer, "v1").await.unwrap(), None);
    let fragment = keys::layer_fragment(layer, "v1");
    catalog
        .record_cache_entry(layer, "v1", &fragment, 10)
        .await
        .unwrap();
    catalog
        .record_cache_entry(layer, "v1", &fragment, 11)
        .await
        .unwrap();
    assert_eq!(
        catalog.cache_entry(layer, "v1").await.unwrap(),
        Some(fragment.clone())
    );
    assert_eq!(catalog.cache_entry(layer, "v2").await.unwrap(), None);

    // Results under pinned inputs: no policy and each policy are distinct rows.
    let policy = digest("90");
    let plain = result(&a, None, "2026-11-28T08:00:00Z");
    let judged = result(&a, Some(&policy), "2026-11-28T09:00:00Z");
    catalog.record_result(&plain).await.unwrap();
    catalog.record_result(&judged).await.unwrap();
    let pinned = |policy: Option<&str>| {
        let policy = policy.map(str::to_string);
        let a = a.clone();
        async move {
            catalog
                .result(&a, "analyzers-7", &digest("fe"), policy.as_deref())
                .await
                .unwrap()
        }
    };
    assert_eq!(pinned(None).await, Some(plain.clone()));
    assert_eq!(pinned(Some(&policy)).await, Some(judged.clone()));
    assert_eq!(pinned(Some(&digest("91"))).await, None);
    assert_eq!(
        catalog
            .result(&a, "analyzers-8", &digest("fe"), None)
            .await
            .unwrap(),
        None,
        "another analyzer version is another result"
    );
    assert_eq!(
        catalog
            .result(&a, "analyzers-7", &digest("ff"), None)
            .await
            .unwrap(),
        None,
        "another feed snapshot is another result"
    );
    // Upsert: the same inputs again replace the row.
    let mut rescanned = plain.clone();
    rescanned.critical = 0;
    rescanned.vex_snapshot = None;
    rescanned.finished_at = "2026-11-28T08:30:00Z".into();
    catalog.record_result(&rescanned).await.unwrap();
    assert_eq!(pinned(None).await, Some(rescanned.clone()));
    // The newest by time, not by text: half a second past nine, and 09:45+01:00 = 08:45Z.
    assert_eq!(catalog.latest_result(&a).await.unwrap(), Some(judged));
    let mut later = result(&a, Some(&digest("92")), "2026-11-28T09:00:00.5Z");
    later.verdict = Some("PASS".into());
    catalog.record_result(&later).await.unwrap();
    let offset = result(&a, Some(&digest("93")), "2026-11-28T09:45:00+01:00");
    catalog.record_result(&offset).await.unwrap();
    assert_eq!(catalog.latest_result(&a).await.unwrap(), Some(later));
    assert_eq!(catalog.latest_result(&digest("00")).await.unwrap(), None);
    let of_b = result(&b, None, "2026-11-28T07:00:00Z");
    catalog.record_result(&of_b).await.unwrap();

    // Runs, upserted by id.
    catalog.record_run(&run("scan-a-1", None)).await.unwrap();
    let mut succeeded = run("scan-a-1", Some(&a));
    succeeded.outcome = "succeeded".into();
    succeeded.reason = "Completed".into();
    succeeded.message = String::new();
    catalog.record_run(&succeeded).await.unwrap();
    assert_eq!(
        catalog.run("scan-a-1").await.unwrap(),
        Some(succeeded.clone())
    );
    assert_eq!(catalog.run("scan-a-2").await.unwrap(), None);

    // Forgetting an image: its rows go, its object keys come back; the other image, shared
    // layers, cache entries and runs stay.
    let keys = catalog.forget_image(&a).await.unwrap();
    assert_eq!(
        keys,
        [
            artifact(&a, "inventory").key,
            format!("images/{a}/report.json"),
            replaced.key.clone(),
        ]
    );
    assert_eq!(catalog.image(&a).await.unwrap(), None);
    assert!(catalog.artifacts(&a).await.unwrap().is_empty());
    assert_eq!(pinned(None).await, None);
    assert_eq!(catalog.latest_result(&a).await.unwrap(), None);
    assert_eq!(catalog.image(&b).await.unwrap(), Some(other));
    assert_eq!(catalog.latest_result(&b).await.unwrap(), Some(of_b));
    assert_eq!(
        catalog.cache_entry(layer, "v1").await.unwrap(),
        Some(fragment)
    );
    assert_eq!(catalog.run("scan-a-1").await.unwrap(), Some(succeeded));
    assert!(catalog.forget_image(&a).await.unwrap().is_empty());
    // The image can be scanned again after it was forgotten.
    catalog.record_image(&image(&a)).await.unwrap();
    assert_eq!(catalog.image(&a).await.unwrap(), Some(image(&a)));
}

/// Garbage is refused with an error naming the field; large values are data.
async fn garbage(catalog: &Catalog) {
    let a = digest("aa");
    let refused = |e: Error, field: &str| {
        let text = e.to_string();
        assert!(
            matches!(e, Error::Invalid { .. }) && text.contains(field),
            "{field}: {text}"
        );
    };
    refused(
        catalog.record_run(&run("", Some(&a))).await.unwrap_err(),
        "run id: must not be empty",
    );
    refused(
        catalog.record_run(&run("  ", None)).await.unwrap_err(),
        "run id",
    );
    refused(
        catalog.record_run(&run("r", Some(""))).await.unwrap_err(),
        "image digest: must not be empty",
    );
    let mut bad = run("r", None);
    bad.outcome = "maybe".into();
    refused(catalog.record_run(&bad).await.unwrap_err(), "outcome");
    let mut bad = run("r", None);
    bad.reason = "connection refused".into();
    refused(catalog.record_run(&bad).await.unwrap_err(), "reason");
    let mut bad = run("r", None);
    bad.finished_at = "yesterday".into();
    refused(catalog.record_run(&bad).await.unwrap_err(), "finished at");

    let ok = result(&a, Some(&digest("90")), "2026-11-28T08:00:00Z");
    type Breakage = Box<dyn Fn(&mut ResultRow)>;
    let cases: Vec<(&str, Breakage)> = vec![
        (
            "image digest: must not be empty",
            Box::new(|r| r.image_digest.clear()),
        ),
        (
            "image digest",
            Box::new(|r| r.image_digest = "../../etc".into()),
        ),
        ("feed snapshot", Box::new(|r| r.feed_snapshot.clear())),
        ("analyzer version", Box::new(|r| r.analyzer_version.clear())),
        ("image reference", Box::new(|r| r.image_ref.clear())),
        (
            "policy digest",
            Box::new(|r| r.policy_digest = Some("".into())),
        ),
        ("verdict", Box::new(|r| r.verdict = Some("MAYBE".into()))),
        (
            "verdict: a verdict needs the policy",
            Box::new(|r| r.policy_digest = None),
        ),
        ("high count", Box::new(|r| r.high = -1)),
        ("finished at", Box::new(|r| r.finished_at = "".into())),
        (
            "invalid object key",
            Box::new(|r| r.report_key = Some("/etc/passwd".into())),
        ),
    ];
    for (field, break_it) in cases {
        let mut bad = ok.clone();
        break_it(&mut bad);
        let e = catalog.record_result(&bad).await.unwrap_err();
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    refused(catalog.forget_image("").await.unwrap_err(), "image digest");
    // Nothing of the refused rows was stored.
    assert_eq!(catalog.latest_result(&a).await.unwrap(), None);
    assert_eq!(catalog.run("r").await.unwrap(), None);

    // Keys longer than any index holds are refused; other oversized strings are data,
    // stored and read back whole.
    refused(
        catalog
            .record_run(&run(&"r".repeat(1025), None))
            .await
            .unwrap_err(),
        "run id: 1025 bytes, more than the 1024 allowed",
    );
    let mut big = run(&"r".repeat(1024), Some(&a));
    big.message = "ü".repeat(500_000);
    catalog.record_run(&big).await.unwrap();
    assert_eq!(catalog.run(&big.run_id).await.unwrap(), Some(big));
    let mut big = ok.clone();
    big.image_ref = format!("registry.example/{}:1", "x".repeat(100_000));
    catalog.record_result(&big).await.unwrap();
    assert_eq!(catalog.latest_result(&a).await.unwrap(), Some(big));
    // Quotes and SQL in values are values.
    let sneaky = run("x'); DROP TABLE scanner_runs; --", None);
    catalog.record_run(&sneaky).await.unwrap();
    assert_eq!(catalog.run(&sneaky.run_id).await.unwrap(), Some(sneaky));
}

#[tokio::test]
async fn every_catalog_method_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    assert!(!store.catalog.is_postgres());
    every_method(&store.catalog).await;
    let other = tempfile::tempdir().unwrap();
    garbage(&Store::open_embedded(other.path()).await.unwrap().catalog).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_catalog_method_on_postgres() {
    let Some(db) = PgDatabase::create("store") else {
        return;
    };
    let catalog = Catalog::connect_postgres(&db.url).await.unwrap();
    assert!(catalog.is_postgres());
    every_method(&catalog).await;
    drop(catalog);
    drop(db);
    let Some(db) = PgDatabase::create("store") else {
        return;
    };
    garbage(&Catalog::connect_postgres(&db.url).await.unwrap()).await;
    drop(db);
}

#[tokio::test]
async fn sqlite_migrations_apply_once_and_concurrent_openers_agree() {
    let dir = tempfile::tempdir().unwrap();
    super::at_once(6, || {
        let path = dir.path().to_path_buf();
        async move { Store::open_embedded(&path).await }
    })
    .await;
    for _ in 0..2 {
        let store = Store::open_embedded(dir.path()).await.unwrap();
        assert_eq!(
            store.catalog.migrations().await.unwrap(),
            [1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            store.advisories.migrations().await.unwrap(),
            [2, 3, 5, 6, 7]
        );
        assert_eq!(store.vex.migrations().await.unwrap(), [1, 2]);
        assert_eq!(store.unknowns.migrations().await.unwrap(), [1]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_postgres_database_holds_every_module_in_its_schema() {
    let Some(db) = PgDatabase::create("store") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        data_dir: dir.path().join("scratch"),
        catalog_url: Some(db.url.clone()),
        object_store_url: None,
    };
    // Eight starters at once: each module's advisory lock lets one of them migrate it.
    let mut stores = super::at_once(8, || {
        let config = config.clone();
        async move { Store::open(&config).await }
    })
    .await;
    stores.push(Store::open(&config).await.unwrap());
    let store = &stores[0];
    assert!(store.catalog.is_postgres());
    assert_eq!(store.catalog.migrations().await.unwrap(), [1]);
    assert_eq!(
        store.advisories.migrations().await.unwrap(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(store.vex.migrations().await.unwrap(), [1, 2]);
    assert_eq!(store.unknowns.migrations().await.unwrap(), [1]);
    assert_eq!(store.scheduler.migrations().await.unwrap(), [1]);
    assert_eq!(store.notify.migrations().await.unwrap(), [1]);
    assert!(
        !dir.path().join("scratch/catalog.db").exists(),
        "no embedded catalog beside PostgreSQL"
    );
    let tables = super::pg_tables(&db.url).await;
    assert_eq!(
        tables,
        [
            "notify.cursors",
            "notify.deliveries",
            "notify.outbox",
            "notify.schema_migrations",
            "notify.throttle",
            "policy.schema_migrations",
            "policy.unknowns",
            "scanner.artifacts",
            "scanner.cache_entries",
            "scanner.image_layers",
            "scanner.images",
            "scanner.layers",
            "scanner.results",
            "scanner.runs",
            "scanner.schema_migrations",
            "scheduler.runs",
            "scheduler.schema_migrations",
            "vex.documents",
            "vex.imports",
            "vex.origin_weights",
            "vex.schema_migrations",
            "vex.statements",
            "vuln.advisories",
            "vuln.affected",
            "vuln.epss",
            "vuln.feed_deltas",
            "vuln.feed_members",
            "vuln.feed_snapshot",
            "vuln.feeds",
            "vuln.imports",
            "vuln.kev",
            "vuln.schema_migrations",
            "vuln.vex_state",
        ]
    );
    // What one store writes, another reads: they are one database.
    store
        .catalog
        .record_run(&run("shared", None))
        .await
        .unwrap();
    assert!(stores[8].catalog.run("shared").await.unwrap().is_some());
    unknowns_round_trip(&stores[3]).await;
    drop(stores);
    drop(db);
}

#[tokio::test]
async fn unknowns_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    unknowns_round_trip(&Store::open_embedded(dir.path()).await.unwrap()).await;
}

/// The registry's record / list / get / resolve / escalate, the same on both backends.
async fn unknowns_round_trip(store: &Store) {
    let a = digest("aa");
    let unknown = |id: &str, score: f64, band: &str| UnknownRow {
        id: id.into(),
        image_digest: a.clone(),
        subject: format!("pkg:deb/debian/{id}"),
        score,
        band: band.into(),
        body: format!(r#"{{"id":"{id}"}}"#),
    };
    let db = &store.unknowns;
    db.record(
        &a,
        &[unknown("u1", 0.9, "HOT"), unknown("u2", 0.5, "WARM")],
        "2026-11-28T08:00:00Z",
    )
    .await
    .unwrap();
    let ids = |list: Vec<stella_store::StoredUnknown>| -> Vec<String> {
        list.into_iter().map(|u| u.row.id).collect()
    };
    let all = UnknownFilter::default();
    assert_eq!(ids(db.list(&all).await.unwrap()), ["u1", "u2"]);
    let hot = UnknownFilter {
        band: Some("HOT".into()),
        ..UnknownFilter::default()
    };
    assert_eq!(ids(db.list(&hot).await.unwrap()), ["u1"]);
    assert!(db.escalate("u2", "2026-11-28T08:01:00Z").await.unwrap());
    assert!(
        db.resolve("u1", "false-positive", "checked", "2026-11-28T08:02:00Z")
            .await
            .unwrap()
    );
    assert!(!db.escalate("u1", "2026-11-28T08:03:00Z").await.unwrap());
    assert_eq!(ids(db.list(&all).await.unwrap()), ["u2"]);
    // A rescan that no longer sees u2 resolves it as not observed; u1 keeps its resolution.
    db.record(&a, &[unknown("u1", 0.95, "HOT")], "2026-11-29T08:00:00Z")
        .await
        .unwrap();
    let u2 = db.get("u2").await.unwrap().unwrap();
    assert_eq!(
        (u2.status.as_str(), u2.resolution.as_deref()),
        ("resolved", Some("not-observed"))
    );
    let u1 = db.get("u1").await.unwrap().unwrap();
    assert_eq!(
        (u1.status.as_str(), u1.row.score, u1.last_seen.as_str()),
        ("resolved", 0.95, "2026-11-29T08:00:00Z")
    );
    let everything = UnknownFilter {
        image_digest: Some(a.clone()),
        all: true,
        ..UnknownFilter::default()
    };
    assert_eq!(ids(db.list(&everything).await.unwrap()), ["u1", "u2"]);
    assert_eq!(db.get("u3").await.unwrap(), None);
}

#[tokio::test]
async fn forgetting_an_image_removes_its_objects_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    let (a, b) = (digest("aa"), digest("bb"));
    for d in [&a, &b] {
        store.catalog.record_image(&image(d)).await.unwrap();
        let row = artifact(d, "inventory");
        store.put(&row.key, b"{}".to_vec()).await.unwrap();
        store.catalog.record_artifact(&row).await.unwrap();
    }
    let judged = result(&a, Some(&digest("90")), "2026-11-28T08:00:00Z");
    let report = judged.report_key.clone().unwrap();
    store.put(&report, b"{}".to_vec()).await.unwrap();
    store.catalog.record_result(&judged).await.unwrap();
    // An object the catalog lists but the store already lost counts as removed.
    let lost = artifact(&a, "usage");
    store.catalog.record_artifact(&lost).await.unwrap();
    assert_eq!(store.forget_image(&a).await.unwrap(), 3);
    let objects = dir.path().join("objects");
    assert!(!objects.join(&report).exists());
    assert!(!objects.join(artifact(&a, "inventory").key).exists());
    assert!(objects.join(artifact(&b, "inventory").key).exists());
    assert_eq!(store.catalog.image(&a).await.unwrap(), None);
    assert_eq!(store.catalog.latest_result(&a).await.unwrap(), None);
    assert_eq!(store.forget_image(&a).await.unwrap(), 0);
    assert!(store.forget_image("").await.is_err());
}

#[tokio::test]
async fn storage_urls_that_name_nothing_usable_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open = |catalog: Option<&str>, objects: Option<&str>| {
        let config = StoreConfig {
            data_dir: dir.path().to_path_buf(),
            catalog_url: catalog.map(Into::into),
            object_store_url: objects.map(Into::into),
        };
        async move { Store::open(&config).await.map(drop) }
    };
    let e = open(Some("mysql://root:hunter2@db/stella"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("postgres://") && !e.contains("hunter2"), "{e}");
    let e = open(None, Some("file:///tmp/objects"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("file:///tmp/objects"), "{e}");
    // A server that is not there: a connection error, not a hang.
    let e = open(Some("postgres://nobody@127.0.0.1:1/none"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Catalog(_)), "{e}");
    open(None, None).await.unwrap();
}
