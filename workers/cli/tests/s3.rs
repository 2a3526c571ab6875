//! `stella scan` with its artifacts in an S3-compatible store (moto's server on loopback):
//! the SBOMs, the usage view and the BOM-Index land in the bucket under the catalog's keys,
//! nothing in the local directory, and `stella index query` reads them back from S3.

use super::{stella, test_image};

#[path = "../../store/tests/moto.rs"]
pub(crate) mod moto;

#[test]
fn scan_artifacts_land_in_s3_where_the_catalog_says() {
    let Some(dir) = test_image("build-entry.sh", "entry") else {
        return;
    };
    let Some(moto) = moto::Moto::start("artifacts") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let url = moto.url("artifacts", "prod");
    let run = |args: &[&str]| {
        stella()
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .env("STELLA_OBJECT_STORE", &url)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    };
    let image = dir.join("image.tar");
    let out = run(&["scan", image.to_str().unwrap(), "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sbom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = sbom["metadata"]["component"]["bom-ref"]
        .as_str()
        .unwrap()
        .to_string();

    // The BOM-Index comes back from S3.
    let out = run(&[
        "index",
        "query",
        "--prefix",
        "pkg:deb/debian/python3",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["images"][0]["digest"], digest.as_str());

    // The stored SBOM is byte for byte what the scan printed, under the bucket's prefix.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bytes = rt.block_on(async {
        let other = tempfile::tempdir().unwrap();
        let bare = stella_store::Store::open_embedded(other.path())
            .await
            .unwrap()
            .with_s3_credentials(&moto.url("artifacts", ""), "test", "test")
            .unwrap();
        bare.get(&format!("prod/images/{digest}/inventory.cdx.json"))
            .await
            .unwrap()
    });
    assert_eq!(
        bytes.as_deref(),
        Some(
            &serde_json::to_vec_pretty(&sbom)
                .map(|mut v| {
                    v.push(b'\n');
                    v
                })
                .unwrap()[..]
        )
    );
    // Blobs and the catalog stay local; no artifact does.
    assert!(!data.path().join("objects/images").exists());

    // A bad store URL is a usage error, said clearly.
    let out = stella()
        .args(["scan", image.to_str().unwrap(), "--quiet", "--data-dir"])
        .arg(data.path())
        .env("STELLA_OBJECT_STORE", "s3://")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("names no bucket"));
}
