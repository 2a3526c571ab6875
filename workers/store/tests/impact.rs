//! BOM-Indexes stored per image and read back, for the catalogued images, as one impact index.

use super::image;
use std::collections::BTreeSet;
use stella_sbom::bomindex::{BomIndex, Header, MAGIC, VERSION};
use stella_store::{ArtifactRow, BOM_INDEX_KIND, Error, Store, keys};

fn index(digest: &str, purls: &[&str], used: bool) -> BomIndex {
    let components: std::collections::BTreeMap<u32, roaring::RoaringBitmap> = (0..purls.len())
        .map(|i| (i as u32, std::iter::once(i as u32).collect()))
        .collect();
    BomIndex {
        header: Header {
            magic: MAGIC,
            version: VERSION,
            image_digest: digest.into(),
            created_at: None,
        },
        purls: purls.iter().map(|p| p.to_string()).collect(),
        used_by_entrypoint: used.then(|| components.clone()),
        components,
        // Images whose entrypoint is unknown here also have no match keys (as a version 1
        // index would); the others name theirs.
        match_keys: (!used).then(|| {
            let keys: BTreeSet<String> = purls
                .iter()
                .map(|p| {
                    let name = p.split('@').next().unwrap().rsplit('/').next().unwrap();
                    format!("Debian:12/{name}")
                })
                .collect();
            keys.into_iter().collect()
        }),
    }
}

async fn put(store: &Store, digest: &str, bytes: Vec<u8>) -> String {
    let key = keys::bom_index(digest);
    let size = bytes.len() as i64;
    store.put(&key, bytes).await.unwrap();
    store
        .catalog
        .record_artifact(&ArtifactRow {
            key: key.clone(),
            image_digest: digest.into(),
            kind: BOM_INDEX_KIND.into(),
            format: "stella-bomindex".into(),
            view: None,
            digest: "sha256:unchecked".into(),
            size,
        })
        .await
        .unwrap();
    key
}

#[tokio::test]
async fn stored_indexes_of_catalogued_images_answer_impact_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    assert!(store.impact_index().await.unwrap().images().is_empty());

    let (a, b, gone) = (
        format!("sha256:{}", "aa".repeat(32)),
        format!("sha256:{}", "bb".repeat(32)),
        format!("sha256:{}", "cc".repeat(32)),
    );
    assert_eq!(
        keys::bom_index(&a),
        format!("indexes/sha256:{}/bom-index.bin", "aa".repeat(32))
    );
    for (digest, purls, used) in [
        (
            &a,
            &["pkg:deb/debian/openssl@3.0.11", "pkg:npm/lodash@4.17.21"][..],
            false,
        ),
        (&b, &["pkg:deb/debian/openssl@3.0.13"][..], true),
        (&gone, &["pkg:deb/debian/openssl@1.1.1"][..], true),
    ] {
        put(&store, digest, index(digest, purls, used).to_bytes()).await;
    }
    // `gone` has an index but is not in the catalog: not part of the impact index.
    store.catalog.record_image(&image(&a)).await.unwrap();
    store.catalog.record_image(&image(&b)).await.unwrap();

    let impact = store.impact_index().await.unwrap();
    assert_eq!(impact.images(), [a.clone(), b.clone()]);
    // By advisory key: `a` names lodash; `b` has no keys, so any key may touch it.
    assert_eq!(
        impact.query_keys(&["Debian:12/lodash"]),
        [a.clone(), b.clone()]
    );
    assert_eq!(
        impact.query_keys(&["Debian:12/zlib"]),
        std::slice::from_ref(&b)
    );
    assert_eq!(
        impact.query(&[], &["pkg:deb/debian/openssl@"], false),
        [a.clone(), b.clone()]
    );
    assert_eq!(
        impact.query(&[], &["pkg:deb/debian/openssl@"], true),
        [b.as_str()]
    );
    assert_eq!(
        impact.query(&["pkg:npm/lodash@4.17.21"], &[], false),
        [a.as_str()]
    );

    // A corrupt index is an error naming it, not a silently smaller answer.
    let key = put(&store, &b, b"STELLA-BOMIDX\0\x01".to_vec()).await;
    match store.impact_index().await {
        Err(Error::BomIndex { key: k, .. }) => assert_eq!(k, key),
        other => panic!("{other:?}"),
    }
    // So is one describing another image, and one the object store lost.
    put(&store, &b, index(&a, &["pkg:x/y@1"], false).to_bytes()).await;
    let e = store.impact_index().await.unwrap_err();
    assert!(matches!(e, Error::BomIndexImage { .. }), "{e}");
    std::fs::remove_file(dir.path().join("objects").join(&key)).unwrap();
    let e = store.impact_index().await.unwrap_err();
    assert!(matches!(e, Error::MissingObject { .. }), "{e}");
    assert!(e.to_string().contains(&key), "{e}");
}
