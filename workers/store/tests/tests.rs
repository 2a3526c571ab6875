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
    assert_eq!(store.catalog.migrations().await.unwrap(), [1, 2]);
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
