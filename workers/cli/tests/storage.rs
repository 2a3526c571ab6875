//! The `stella` commands select their storage the same way: `--catalog-url` (or its older name
//! `--database-url`, or `$STELLA_CATALOG_URL`) puts the whole catalog — images, artifacts,
//! advisories, VEX, unknowns — in PostgreSQL, and every command reads it back from there.

use super::{PgDatabase, stella, test_image};

#[test]
fn every_command_shares_the_postgres_catalog() {
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let Some(pg) = PgDatabase::create("cli") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let target = format!("{}:bookworm", dir.join("oci").display());
    let run = |args: &[&str], catalog: Option<&str>| {
        let mut command = stella();
        command
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("STELLA_CATALOG_URL")
            .env_remove("STELLA_DATABASE_URL");
        if let Some(url) = catalog {
            command.env("STELLA_CATALOG_URL", url);
        }
        command.output().unwrap()
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The older flag name still works and now moves the whole catalog.
    let sbom = ok(run(
        &["scan", &target, "--quiet", "--database-url", &pg.url],
        None,
    ));
    let sbom: serde_json::Value = serde_json::from_str(&sbom).unwrap();
    let digest = sbom["metadata"]["component"]["bom-ref"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !data.path().join("catalog.db").exists(),
        "no embedded catalog was created"
    );
    let query = [
        "index",
        "query",
        "--prefix",
        "pkg:deb/debian/dash",
        "--format",
        "json",
    ];
    let found: serde_json::Value = serde_json::from_str(&ok(run(&query, Some(&pg.url)))).unwrap();
    assert_eq!(found["images"][0]["digest"], digest.as_str(), "{found}");
    // The embedded catalog of the same data directory knows nothing of it.
    let embedded = run(&query, None);
    assert!(!embedded.status.success());
    assert!(
        String::from_utf8_lossy(&embedded.stderr).contains("no image"),
        "{}",
        String::from_utf8_lossy(&embedded.stderr)
    );
    // `--catalog-url` is the flag's name.
    run(
        &["scan", &target, "--quiet", "--catalog-url", &pg.url],
        None,
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let image = runtime.block_on(async {
        stella_store::Catalog::connect_postgres(&pg.url)
            .await
            .unwrap()
            .image(&digest)
            .await
            .unwrap()
    });
    assert_eq!(image.map(|i| i.layers.len()), Some(3));
}
