//! The embedded store on a real SQLite file and a real directory.

use stella_layerfs::{EntryKind, Fragment, FragmentCache, FragmentEntry};
use stella_store::{ArtifactRow, ImageRow, ObjectFragmentCache, Store, keys, object_key};

fn image(digest: &str) -> ImageRow {
    ImageRow {
        digest: digest.into(),
        config_digest: format!("sha256:{}", "cc".repeat(32)),
        name: "example/app:1".into(),
        os: "linux".into(),
        architecture: "amd64".into(),
        created: Some("2024-01-01T00:00:00Z".into()),
        analyzer_version: "v1".into(),
        components: 3,
        layers: vec![
            (
                format!("sha256:{}", "01".repeat(32)),
                10,
                "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            ),
            (
                format!("sha256:{}", "02".repeat(32)),
                20,
                "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            ),
        ],
    }
}

#[tokio::test]
async fn catalog_round_trips_and_migrations_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    store.catalog.record_image(&image(&digest)).await.unwrap();
    store.catalog.record_image(&image(&digest)).await.unwrap();
    assert_eq!(
        store.catalog.image(&digest).await.unwrap(),
        Some(image(&digest))
    );
    assert_eq!(store.catalog.image("sha256:none").await.unwrap(), None);

    let key = keys::image_artifact(&digest, "inventory", "cdx.json");
    store.put(&key, b"{}".to_vec()).await.unwrap();
    let row = ArtifactRow {
        key: key.clone(),
        image_digest: digest.clone(),
        kind: "sbom".into(),
        format: "cyclonedx-json".into(),
        view: Some("inventory".into()),
        digest: "sha256:x".into(),
        size: 2,
    };
    store.catalog.record_artifact(&row).await.unwrap();
    assert_eq!(store.catalog.artifacts(&digest).await.unwrap(), vec![row]);
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"{}"[..]));
    assert!(dir.path().join("objects").join(&key).is_file());
    drop(store);

    // Reopening applies no migration twice and keeps the data.
    let store = Store::open_embedded(dir.path()).await.unwrap();
    assert_eq!(
        store.catalog.migrations().await.unwrap(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    assert!(store.catalog.image(&digest).await.unwrap().is_some());
}

#[test]
fn object_keys_cannot_escape() {
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../../b",
        "a//b",
        "a/./b",
        "a\\b",
    ] {
        assert!(object_key(bad).is_err(), "{bad:?}");
    }
    assert!(object_key("layers/sha256:ab/fragment.v1.bin.zst").is_ok());
}

#[test]
fn fragments_cache_through_the_store_and_garbage_reads_as_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(Store::open_embedded(dir.path())).unwrap();
    let mut fragment = Fragment::default();
    fragment.entries.push(FragmentEntry {
        path: "etc/os-release".into(),
        kind: EntryKind::File {
            size: 9,
            mode: 0o644,
        },
    });
    fragment
        .files
        .insert("etc/os-release".into(), serde_bytes_buf(b"ID=debian"));
    let cache = ObjectFragmentCache::new(store.clone(), runtime.handle().clone());
    let layer = format!("sha256:{}", "0f".repeat(32));
    assert_eq!(cache.get(&layer, "v1"), None);
    cache.put(&layer, "v1", &fragment);
    assert_eq!(cache.get(&layer, "v1"), Some(fragment.clone()));
    assert_eq!(
        cache.get(&layer, "v2"),
        None,
        "another analyzer version is a miss"
    );
    // Corrupt the cached object: a miss, not a crash.
    let key = keys::layer_fragment(&layer, "v1");
    std::fs::write(
        dir.path().join("objects").join(&key),
        b"\x28\xb5\x2f\xfd garbage",
    )
    .unwrap();
    assert_eq!(cache.get(&layer, "v1"), None);
    assert_eq!(
        ObjectFragmentCache::decode(&ObjectFragmentCache::encode(&fragment).unwrap()),
        Some(fragment)
    );
}

fn serde_bytes_buf(b: &[u8]) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(b.to_vec())
}

/// A fresh PostgreSQL database per test (the harness's; skips outside CI without a server).
use stella_e2e::services::PgDatabase;

/// `n` starters at once, as `n` processes would start: what each returned, in order.
async fn at_once<T, F>(n: usize, start: impl Fn() -> F) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = stella_store::Result<T>> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(start())).collect();
    let mut started = Vec::new();
    for handle in handles {
        started.push(handle.await.unwrap().unwrap());
    }
    started
}

/// The tables of the PostgreSQL database at `url` (`schema.table`), sorted.
async fn pg_tables(url: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let tables = sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    tables
}

#[tokio::test(flavor = "multi_thread")]
async fn advisories_in_postgres_with_schema_isolation_and_locked_migrations() {
    use stella_store::AdvisoryDb;
    let Some(db) = PgDatabase::create("store") else {
        return;
    };
    // Eight processes' worth of concurrent starters: the advisory lock lets one migrate.
    let dbs = at_once(8, || {
        let url = db.url.clone();
        async move { AdvisoryDb::connect_postgres(&url).await }
    })
    .await;
    let advisories = &dbs[0];
    assert_eq!(advisories.migrations().await.unwrap(), [1, 2, 3, 4, 5]);
    let keys = vec![
        ("Debian:12".to_string(), "openssl".to_string()),
        ("Debian:12".to_string(), "libssl3".to_string()),
    ];
    advisories
        .put_advisory("CVE-1", "osv", "2026-01-01", r#"{"id":"CVE-1"}"#, &keys)
        .await
        .unwrap();
    advisories
        .put_advisory(
            "CVE-1",
            "osv",
            "2026-01-02",
            r#"{"id":"CVE-1","v":2}"#,
            &keys[..1],
        )
        .await
        .unwrap();
    advisories
        .put_advisory(
            "CVE-2",
            "debian-tracker",
            "2026-01-01",
            r#"{"id":"CVE-2"}"#,
            &keys[1..],
        )
        .await
        .unwrap();
    assert_eq!(
        advisories.advisories_for(&keys[..1]).await.unwrap(),
        [r#"{"id":"CVE-1","v":2}"#]
    );
    assert_eq!(
        advisories.advisories_for(&keys[1..]).await.unwrap(),
        [r#"{"id":"CVE-2"}"#],
        "replaced keys are gone"
    );
    assert_eq!(
        advisories.advisory_counts().await.unwrap(),
        [("debian-tracker".to_string(), 1), ("osv".to_string(), 1)]
    );
    advisories.record_import("test", 2, 0).await.unwrap();
    let (origin, at, accepted, _) = advisories.last_import().await.unwrap().unwrap();
    assert_eq!((origin.as_str(), accepted), ("test", 2));
    assert!(at.ends_with('Z') && at.len() == 20, "{at}");
    // The module's tables live in its own schema, nowhere else.
    let tables = pg_tables(&db.url).await;
    assert_eq!(
        tables,
        [
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
            "vuln.vex_state"
        ]
    );
    drop(dbs);
    drop(db);
}
mod catalog;
mod feeds;
mod impact;
mod notify;
mod scheduler;
mod upgrade;
mod vex;

/// KEV and EPSS in both backends: the catalog replaces KEV wholesale, EPSS updates per CVE.
async fn exploit_signals_round_trip(db: &stella_store::AdvisoryDb) {
    use stella_advisories::exploits::{EpssScore, KevEntry};
    let kev = |cve: &str| KevEntry {
        cve: cve.into(),
        vendor: "v".into(),
        product: "p".into(),
        date_added: "2024-01-01".into(),
        ransomware: false,
    };
    db.put_kev(&[kev("CVE-2024-0001"), kev("CVE-2024-0002")])
        .await
        .unwrap();
    db.put_kev(&[kev("CVE-2024-0002")]).await.unwrap();
    let score = |cve: &str, epss: f64| EpssScore {
        cve: cve.into(),
        epss,
        percentile: 0.5,
    };
    db.put_epss(
        &[score("CVE-2024-0001", 0.1), score("CVE-2024-0003", 0.3)],
        None,
    )
    .await
    .unwrap();
    db.put_epss(&[score("CVE-2024-0001", 0.7)], Some("2024-06-01"))
        .await
        .unwrap();
    let ids: Vec<String> = ["CVE-2024-0001", "CVE-2024-0002", "CVE-2024-0004"]
        .map(String::from)
        .to_vec();
    let signals = db.exploit_signals(&ids).await.unwrap();
    assert_eq!(signals.len(), 2, "{signals:?}");
    assert_eq!(signals["CVE-2024-0001"], (false, Some(0.7)));
    assert_eq!(signals["CVE-2024-0002"], (true, None));
}

#[tokio::test(flavor = "multi_thread")]
async fn exploit_signals_in_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let store = stella_store::Store::open_embedded(dir.path())
        .await
        .unwrap();
    exploit_signals_round_trip(&store.advisories).await;
    let Some(db) = PgDatabase::create("store") else {
        return;
    };
    let pg = stella_store::AdvisoryDb::connect_postgres(&db.url)
        .await
        .unwrap();
    exploit_signals_round_trip(&pg).await;
    drop(pg);
    drop(db);
}

#[cfg(feature = "s3")]
#[path = "moto.rs"]
mod moto;
#[cfg(feature = "s3")]
use moto::Moto;

#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread")]
async fn artifacts_round_trip_through_an_s3_server() {
    let Some(moto) = Moto::start("stella") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = stella_store::Store::open_embedded(dir.path())
        .await
        .unwrap()
        .with_s3_credentials(&moto.url("stella", "team-a"), "test", "test")
        .unwrap();
    store
        .put("images/sha256:ab/inventory.cdx.json", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store
            .get("images/sha256:ab/inventory.cdx.json")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"{}"[..])
    );
    assert_eq!(store.get("images/sha256:ab/none").await.unwrap(), None);
    // Under the prefix in the bucket (read back through a store on the bare bucket), nothing
    // in the local directory.
    let other = tempfile::tempdir().unwrap();
    let bare = stella_store::Store::open_embedded(other.path())
        .await
        .unwrap()
        .with_s3_credentials(&moto.url("stella", ""), "test", "test")
        .unwrap();
    assert_eq!(
        bare.get("team-a/images/sha256:ab/inventory.cdx.json")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"{}"[..])
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("objects"))
            .unwrap()
            .count(),
        0
    );
    // `Store::open` selects S3 from the configuration (unsigned requests: moto accepts them).
    let configured = stella_store::Store::open(&stella_store::StoreConfig {
        data_dir: other.path().join("configured"),
        catalog_url: None,
        object_store_url: Some(format!(
            "{}&skip_signature=true",
            moto.url("stella", "configured")
        )),
    })
    .await
    .unwrap();
    configured
        .put("images/sha256:cd/report.json", b"[]".to_vec())
        .await
        .unwrap();
    assert_eq!(
        bare.get("configured/images/sha256:cd/report.json")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"[]"[..])
    );
    assert!(!other.path().join("configured/objects").exists());
    // Anonymous access (public buckets) is a URL option.
    assert!(
        stella_store::Store::open_embedded(dir.path())
            .await
            .unwrap()
            .with_s3("s3://public?region=us-east-1&skip_signature=true")
            .is_ok()
    );
    // Bad URLs are clear errors.
    for (url, why) in [
        ("http://bucket", "must start with s3://"),
        ("s3://", "names no bucket"),
        ("s3://b?colour=blue", "unknown parameter"),
        ("s3://b?allow_http=maybe", "true or false"),
        ("s3://b?skip_signature=yes", "true or false"),
    ] {
        let err = stella_store::Store::open_embedded(dir.path())
            .await
            .unwrap()
            .with_s3(url)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{url}: {err}");
    }
}
