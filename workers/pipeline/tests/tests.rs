//! The pipeline end to end on the real Debian test image (built from Debian's packages by
//! `e2e/images/build-debian.sh`): acquire → analyze → evaluate → record → record_result, with
//! advisories and a policy in an embedded store, and the failure classes of bad sources.

use std::path::PathBuf;
use stella_pipeline::{
    AcquireOptions, AnalyzeOptions, EvaluateInputs, ImageSource, Reason, acquire, analyze,
    evaluate, load_policy_text, record, record_result,
};
use stella_store::Store;

/// The cached test image's OCI layout, built when missing; `None` (skipped, loudly) where it
/// cannot be built here, a failure under CI.
fn debian_image() -> Option<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e/images/build-debian.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .unwrap();
    if !output.status.success() {
        let why = format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!stella_e2e::services::required(), "{why}");
        stella_e2e::services::skip(&why);
        return None;
    }
    let cache = std::env::var_os("STELLA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/stella"));
    Some(cache.join("images/debian-bookworm"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An OSV record for `dash` (every installed version is below the fix).
fn dash_advisory(id: &str, vector: &str) -> stella_advisories::Advisory {
    stella_advisories::osv::from_value(&serde_json::json!({
        "id": id, "modified": "2099-01-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": vector}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99:1"}]}]}]
    }))
    .unwrap()
}

async fn import(store: &Store, advisories: &[stella_advisories::Advisory]) {
    for advisory in advisories {
        let keys: Vec<(String, String)> = advisory
            .affected
            .iter()
            .map(|a| (a.ecosystem.clone(), a.package.clone()))
            .collect();
        store
            .advisories
            .put_advisory(
                &advisory.id,
                &advisory.source,
                &advisory.modified,
                &serde_json::to_string(advisory).unwrap(),
                &keys,
            )
            .await
            .unwrap();
    }
}

#[test]
fn an_image_is_analyzed_judged_and_recorded() {
    let Some(image_dir) = debian_image() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let store = runtime.block_on(Store::open_embedded(data.path())).unwrap();
    runtime.block_on(import(
        &store,
        &[
            dash_advisory(
                "CVE-2099-3001",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            ),
            dash_advisory(
                "CVE-2099-3002",
                "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N",
            ),
        ],
    ));

    let name = format!("{}:bookworm", image_dir.join("oci").display());
    let source = ImageSource::parse(&name).unwrap();
    assert!(matches!(&source, ImageSource::Layout { tag: Some(t), .. } if t == "bookworm"));
    let image = acquire(
        &source,
        &name,
        &AcquireOptions::new(data.path()),
        runtime.handle(),
    )
    .unwrap();
    let inventory = analyze(
        &store,
        &image,
        &name,
        &AnalyzeOptions::default(),
        runtime.handle(),
    )
    .unwrap();
    let digest = inventory.image.digest.clone();
    assert!(
        inventory
            .components
            .iter()
            .any(|c| c.package.name == "dash")
    );
    // What a scan stores: the SBOMs, the index and the inventory, each listed with its digest.
    let kinds: std::collections::BTreeSet<String> = runtime
        .block_on(store.catalog.artifacts(&digest))
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(
        kinds,
        ["bom-index", "inventory", "sbom"]
            .map(String::from)
            .into_iter()
            .collect()
    );

    let policy = load_policy_text(
        "the test",
        "version: \"1.0\"\nrules:\n  - {name: block-critical, severity: [Critical], action: block}\n",
    )
    .unwrap();
    let policy_digest = policy.digest.clone();
    let evaluation = runtime
        .block_on(evaluate(
            &store,
            inventory.clone(),
            EvaluateInputs::now(Some(policy)),
        ))
        .unwrap();
    let mut ids: Vec<(&str, &str)> = evaluation
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.severity.as_str()))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [("CVE-2099-3001", "Critical"), ("CVE-2099-3002", "Medium")]
    );
    let counts = evaluation.counts();
    assert_eq!(
        (counts.critical, counts.medium, counts.suppressed),
        (1, 1, 0)
    );
    assert_eq!(evaluation.verdict(), Some(stella_model::Verdict::Fail));
    assert_eq!(
        evaluation.feed_snapshot,
        runtime.block_on(store.advisories.feed_snapshot()).unwrap()
    );
    assert!(
        !evaluation.unknowns.is_empty(),
        "open findings without VEX are unknowns"
    );

    runtime.block_on(record(&store, &evaluation)).unwrap();
    let row = runtime
        .block_on(record_result(&store, &evaluation, "debian:bookworm"))
        .unwrap();
    assert_eq!(row.verdict.as_deref(), Some("FAIL"));
    assert_eq!((row.critical, row.medium), (1, 1));
    assert_eq!(row.policy_digest.as_deref(), Some(policy_digest.as_str()));
    let latest = runtime
        .block_on(store.catalog.latest_result(&digest))
        .unwrap()
        .unwrap();
    assert_eq!(latest.report_key, row.report_key);
    let report = runtime
        .block_on(store.get(row.report_key.as_deref().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(
        report.as_ref(),
        evaluation.report().unwrap().to_canonical_json().as_bytes()
    );

    // Recorded with its event context: the result and its `scanner.report.ready` event in
    // one transaction; recording the same result again is the same event, stored once.
    let context = stella_pipeline::EventContext {
        source: "/stella-ops/test".into(),
        namespace: "prod".into(),
        object: "Scan/web".into(),
        ..Default::default()
    };
    for _ in 0..2 {
        runtime
            .block_on(stella_pipeline::record_result_reporting(
                &store,
                &evaluation,
                "registry.example/team/web:1",
                std::slice::from_ref(&context),
            ))
            .unwrap();
    }
    let outbox = runtime.block_on(store.notify.events_after(0, 10)).unwrap();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let event = stella_notify::Event::from_outbox(&outbox[0].1).unwrap();
    assert_eq!(event.kind, "scanner.report.ready");
    assert_eq!(
        (event.namespace.as_str(), event.subject.as_str()),
        ("prod", digest.as_str())
    );
    assert_eq!(event.data.scope.repository, "registry.example/team/web");
    assert_eq!(event.data.scope.object, "Scan/web");
    assert_eq!(event.data.payload.verdict.as_deref(), Some("FAIL"));
    let findings = event.data.payload.findings.as_ref().unwrap();
    assert_eq!(
        (findings[0].id.as_str(), findings[0].severity.as_str()),
        ("CVE-2099-3001", "Critical"),
        "most severe first"
    );
    assert_eq!(
        findings[0].link,
        "https://osv.dev/vulnerability/CVE-2099-3001"
    );
    assert_eq!(event.data.payload.counts["Critical"], 1);

    // The same inputs at the same instant give the same report and proof root.
    let again = runtime
        .block_on(evaluate(
            &store,
            inventory.clone(),
            EvaluateInputs {
                evaluated_at: evaluation.policy.as_ref().unwrap().inputs.evaluated_at,
                ..EvaluateInputs::now(evaluation.policy.as_ref().map(|p| stella_policy::Loaded {
                    spec: p.inputs.policy.clone(),
                    digest: p.digest.clone(),
                    kind: stella_policy::DocumentKind::Spec,
                }))
            },
        ))
        .unwrap();
    let first_policy = evaluation.policy.as_ref().unwrap().inputs.policy.clone();
    let first_digest = evaluation.policy.as_ref().unwrap().digest.clone();
    let first_at = evaluation.policy.as_ref().unwrap().inputs.evaluated_at;
    let (first, second) = (
        evaluation.policy.unwrap().evaluation,
        again.policy.unwrap().evaluation,
    );
    assert_eq!(first.root, second.root);
    assert_eq!(
        first.report.to_canonical_json(),
        second.report.to_canonical_json()
    );

    // Through a shared cache: the same report, from the first use and the cached reads; a
    // new advisory moves the snapshot, and the cache with it.
    let cache = stella_pipeline::EvaluationCache::default();
    let at = |cache: &stella_pipeline::EvaluationCache| {
        runtime
            .block_on(stella_pipeline::evaluate_with(
                &store,
                cache,
                inventory.clone(),
                EvaluateInputs {
                    evaluated_at: first_at,
                    ..EvaluateInputs::now(Some(stella_policy::Loaded {
                        spec: first_policy.clone(),
                        digest: first_digest.clone(),
                        kind: stella_policy::DocumentKind::Spec,
                    }))
                },
            ))
            .unwrap()
    };
    for _ in 0..2 {
        let cached = at(&cache);
        assert_eq!(
            cached.report().unwrap().to_canonical_json(),
            first.report.to_canonical_json()
        );
    }
    runtime.block_on(import(
        &store,
        &[dash_advisory(
            "CVE-2099-3003",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
        )],
    ));
    let moved = at(&cache);
    assert_eq!(moved.findings.len(), 3, "the cache follows the snapshot");
    assert_eq!(
        moved.report().unwrap().to_canonical_json(),
        at(&stella_pipeline::EvaluationCache::default())
            .report()
            .unwrap()
            .to_canonical_json()
    );

    // VEX from two feeds that disagree: the weights their FeedSources give them decide, and
    // the pinned trust carries exactly those documents' weights.
    let openvex = |id: &str, author: &str, status: &str| {
        let mut statement = serde_json::json!({"vulnerability": {"name": "CVE-2099-3001"},
            "products": [{"@id": "pkg:deb/debian/dash"}], "status": status});
        if status == "not_affected" {
            statement["justification"] = "vulnerable_code_not_present".into();
        }
        let body = serde_json::json!({"@context": "https://openvex.dev/ns/v0.2.0", "@id": id,
            "author": author, "timestamp": "2099-01-01T00:00:00Z", "version": 1,
            "statements": [statement]});
        stella_vex::parse(body.to_string().as_bytes()).unwrap()
    };
    let vendor = openvex("https://vendor.example/1", "Vendor", "not_affected");
    let hub = openvex("https://hub.example/1", "Hub", "affected");
    let judge = |vendor_weight: f64| {
        runtime
            .block_on(store.sync_vex("feedsource/vendor", &[&vendor], Some(vendor_weight)))
            .unwrap();
        runtime
            .block_on(evaluate(
                &store,
                inventory.clone(),
                EvaluateInputs::now(Some(
                    load_policy_text("the test", "version: \"1.0\"\nrules: []\n").unwrap(),
                )),
            ))
            .unwrap()
    };
    runtime
        .block_on(store.sync_vex("feedsource/hub", &[&hub], Some(0.3)))
        .unwrap();
    let trusted = judge(0.9);
    assert_eq!(trusted.counts().suppressed, 1, "vendor 0.9 over hub 0.3");
    assert_eq!(trusted.counts().critical, 0);
    let pinned = &trusted.policy.as_ref().unwrap().inputs.trust.documents;
    assert_eq!(
        pinned,
        &[(vendor.digest.clone(), 0.9), (hub.digest.clone(), 0.3)].into()
    );
    let doubted = judge(0.1);
    assert_eq!(doubted.counts().suppressed, 0, "hub 0.3 over vendor 0.1");
    assert_eq!(doubted.counts().critical, 1);
}

#[test]
fn sources_that_name_nothing_fail_with_their_class() {
    let data = tempfile::tempdir().unwrap();
    let runtime = runtime();
    for missing in ["/nonexistent/image.tar", "./image", "image.tar"] {
        let e = ImageSource::parse(missing).unwrap_err();
        assert_eq!(e.reason(), Reason::InvalidArguments, "{missing}");
        assert!(
            e.to_string().contains("no such OCI layout directory"),
            "{e}"
        );
    }
    // A registry reference only where a worker is given one.
    let tar = data.path().join("image.tar");
    std::fs::write(&tar, b"not an image").unwrap();
    assert!(ImageSource::reference(tar.to_str().unwrap()).is_err());
    assert!(matches!(
        ImageSource::parse("registry.example/app:1").unwrap(),
        ImageSource::Registry(_)
    ));
    // A file that is not an image is a corrupt image, said with its name.
    let source = ImageSource::parse(tar.to_str().unwrap()).unwrap();
    let e = acquire(
        &source,
        "image.tar",
        &AcquireOptions::new(data.path()),
        runtime.handle(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("image.tar: "), "{e}");
    assert!(
        matches!(e.reason(), Reason::CorruptImage | Reason::InvalidArguments),
        "{:?}",
        e.reason()
    );
    // A registry nobody listens on is unreachable.
    let source = ImageSource::parse("127.0.0.1:9/app:1").unwrap();
    let options = AcquireOptions {
        insecure_registry: true,
        ..AcquireOptions::new(data.path())
    };
    let e = acquire(&source, "127.0.0.1:9/app:1", &options, runtime.handle()).unwrap_err();
    assert_eq!(e.reason(), Reason::Unreachable, "{e}");
    // A policy that does not load says where it came from and every problem.
    let e = load_policy_text("$STELLA_POLICY", "version: \"2.0\"\nrules: [{}]\n").unwrap_err();
    assert_eq!(e.reason(), Reason::InvalidPolicy);
    assert!(
        e.to_string()
            .starts_with("$STELLA_POLICY: invalid policy\n"),
        "{e}"
    );
}

/// What analysis-only work reads back: no inventory listed is `None`; a listed one that is
/// gone is a storage failure; garbage or a truncated inventory is `CorruptInventory`, never a
/// panic or an empty inventory.
#[test]
fn stored_inventories_that_are_missing_or_corrupt_say_so() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(Store::open_embedded(dir.path())).unwrap();
    let digest = format!("sha256:{}", "c".repeat(64));
    let row = |key: &str| stella_store::ArtifactRow {
        key: key.to_string(),
        image_digest: digest.clone(),
        kind: stella_store::INVENTORY_KIND.into(),
        format: "inventory-json".into(),
        view: None,
        digest: format!("sha256:{}", "d".repeat(64)),
        size: 1,
    };
    let read = |rows: &[stella_store::ArtifactRow]| {
        runtime.block_on(stella_pipeline::stored_inventory(&store, rows))
    };
    assert!(read(&[]).unwrap().is_none(), "nothing listed: no inventory");
    let key = stella_store::keys::inventory(&digest);
    let missing = read(&[row(&key)]).unwrap_err();
    assert_eq!(missing.reason(), Reason::StorageUnavailable, "{missing}");
    let valid = br#"{"image":{"digest":"sha256:x"},"components":[]}"#;
    for bytes in [
        &b"not json at all"[..],
        &valid[..valid.len() / 2],
        b"",
        b"\xff\xfe\x00",
    ] {
        runtime.block_on(store.put(&key, bytes.to_vec())).unwrap();
        let error = read(&[row(&key)]).unwrap_err();
        assert!(
            matches!(error, stella_pipeline::Error::CorruptInventory { .. }),
            "{bytes:?}: {error}"
        );
        assert!(error.to_string().contains(&key), "{error}");
    }
}

/// The signer signs a stored statement only when the artifacts it binds are, byte for byte,
/// what it says and what the catalog recorded; a statement about another image, naming no
/// artifact of the image, or that does not parse is refused.
#[test]
fn the_signer_rehashes_what_statements_bind_before_signing() {
    use stella_attest::statement::{self, Statement, Subject};
    use stella_pipeline::attest::{Refusal, sign_stored, store_unsigned};
    let runtime = runtime();
    let (key, _) = stella_attest::SigningKey::generate(stella_attest::Algorithm::Ed25519).unwrap();
    let image = format!("sha256:{}", "1".repeat(64));
    let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#.to_vec();
    let sbom_key = stella_store::keys::image_artifact(&image, "inventory", "cdx.json");
    let sha = stella_e2e::services::sha256(&sbom);
    let statement = |about: &str, name: &str, digest: &str| {
        Statement::new(
            vec![
                Subject::sha256("registry.example/app", about),
                Subject::sha256(name, digest),
            ],
            statement::CYCLONEDX,
            serde_json::json!({"bomFormat": "CycloneDX"}),
        )
    };
    // A fresh store holding the SBOM, and `statements` waiting beside it.
    let setup = |statements: Vec<Statement>| {
        let data = tempfile::tempdir().unwrap();
        let store = runtime.block_on(Store::open_embedded(data.path())).unwrap();
        runtime
            .block_on(store.store_artifact(
                &image,
                stella_store::Artifact {
                    key: sbom_key.clone(),
                    kind: "sbom",
                    format: "cyclonedx-json",
                    view: Some("inventory"),
                    bytes: sbom.clone(),
                },
            ))
            .unwrap();
        runtime
            .block_on(store_unsigned(&store, &image, &statements))
            .unwrap();
        (data, store)
    };
    let sign = |store: &Store| {
        let artifacts = runtime.block_on(store.catalog.artifacts(&image)).unwrap();
        runtime.block_on(sign_stored(store, &image, &artifacts, &key))
    };

    // Good: signed once, stored, and not again.
    let (_d, store) = setup(vec![statement(&image, &sbom_key, &sha)]);
    let signed = sign(&store).unwrap();
    assert_eq!(signed.len(), 1);
    let stored = runtime
        .block_on(store.get(&signed[0].key))
        .unwrap()
        .unwrap();
    let verified = stella_attest::verify(
        &stored,
        &[stella_attest::Signer::public(&key).clone()],
        &stella_attest::Expect::default(),
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(verified.statement.subject[1].name, sbom_key);
    assert!(sign(&store).unwrap().is_empty(), "already signed");

    // The SBOM's bytes changed after the statement was written.
    let (_d, store) = setup(vec![statement(&image, &sbom_key, &sha)]);
    runtime
        .block_on(store.put(&sbom_key, b"{\"tampered\":true}".to_vec()))
        .unwrap();
    assert!(matches!(sign(&store), Err(Refusal::Tampered { .. })));
    // A statement naming a digest the bytes do not have.
    let (_d, store) = setup(vec![statement(&image, &sbom_key, &"0".repeat(64))]);
    assert!(matches!(sign(&store), Err(Refusal::Tampered { .. })));
    // About another image; naming a path that is no artifact of the image (never read).
    let other = format!("sha256:{}", "2".repeat(64));
    let (_d, store) = setup(vec![statement(&other, &sbom_key, &sha)]);
    assert!(matches!(sign(&store), Err(Refusal::OtherImage { .. })));
    let (_d, store) = setup(vec![statement(&image, "../../../etc/passwd", &sha)]);
    let refusal = sign(&store).unwrap_err();
    assert!(
        matches!(refusal, Refusal::UnknownArtifact { .. }),
        "{refusal}"
    );
    assert_eq!(refusal.reason(), "UnknownArtifact");
    // Garbage where a statement should be.
    let (_d, store) = setup(vec![statement(&image, &sbom_key, &sha)]);
    let rows = runtime.block_on(store.catalog.artifacts(&image)).unwrap();
    let row = rows.iter().find(|a| a.kind == "statement").unwrap();
    runtime
        .block_on(store.put(&row.key, b"\x00garbage".to_vec()))
        .unwrap();
    assert!(matches!(sign(&store), Err(Refusal::Invalid { .. })));
}

/// What matching reads of a package: the fields an imported SBOM must give back.
type Matched = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn matched(inventory: &stella_sbom::Inventory) -> std::collections::BTreeSet<Matched> {
    inventory
        .components
        .iter()
        .filter(|c| !c.package.purl.starts_with("bin:"))
        .map(|c| {
            let p = &c.package;
            (
                p.purl.clone(),
                p.name.clone(),
                p.version.clone(),
                p.arch.clone(),
                p.source_name.clone(),
                p.source_version.clone(),
            )
        })
        .collect()
}

/// Our three SBOM formats of the real Debian image read back into the packages, versions,
/// architectures and source packages matching uses, and the distribution; a real third-party
/// SBOM (syft's CycloneDX 1.4 of an Alpine image, from grype's test data) read too; and what
/// is not an SBOM refused with why.
#[test]
fn sboms_read_back_into_what_matching_uses() {
    use stella_pipeline::imported::import_sbom;
    let Some(image_dir) = debian_image() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let store = runtime.block_on(Store::open_embedded(data.path())).unwrap();
    let name = format!("{}:bookworm", image_dir.join("oci").display());
    let image = acquire(
        &ImageSource::parse(&name).unwrap(),
        &name,
        &AcquireOptions::new(data.path()),
        runtime.handle(),
    )
    .unwrap();
    let inventory = analyze(
        &store,
        &image,
        &name,
        &AnalyzeOptions::default(),
        runtime.handle(),
    )
    .unwrap();
    let want = matched(&inventory);
    assert!(
        want.iter()
            .any(|m| m.1 == "libc6" && m.4.as_deref() == Some("glibc"))
    );
    for (format, bytes) in [
        ("CycloneDX 1.6", stella_sbom::cyclonedx::to_json(&inventory)),
        ("SPDX 2.3", stella_sbom::spdx2::to_json(&inventory)),
        ("SPDX 3.0.1", stella_sbom::spdx::to_json(&inventory)),
    ] {
        let read = import_sbom(bytes.as_bytes(), "sbom.json", inventory.image.clone()).unwrap();
        assert_eq!(read.format, format);
        assert_eq!(matched(&read.inventory), want, "{format}");
        assert_eq!(read.skipped_count, 0, "{format}: {:?}", read.skipped);
        assert_eq!(
            read.inventory.distro.as_ref().unwrap().id,
            "debian",
            "{format}"
        );
        // Wrapped in an in-toto statement (BuildKit's generator output) it reads the same.
        let statement = serde_json::json!({"_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://spdx.dev/Document",
            "predicate": serde_json::from_str::<serde_json::Value>(&bytes).unwrap()});
        let wrapped = import_sbom(
            statement.to_string().as_bytes(),
            "s",
            inventory.image.clone(),
        )
        .unwrap();
        assert_eq!(matched(&wrapped.inventory), want, "{format} in a statement");
    }

    if let Some(dir) =
        stella_e2e::services::fixtures("schemas/in-toto-dsse/grype-syft-attestations")
    {
        use base64::Engine;
        let envelope: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("alpine.cdx.att.json")).unwrap())
                .unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        let read = import_sbom(&payload, "alpine.cdx.att.json", inventory.image.clone()).unwrap();
        assert_eq!(read.format, "CycloneDX 1.4");
        assert_eq!(read.inventory.components.len(), 14);
        let distro = read.inventory.distro.unwrap();
        assert_eq!(
            (distro.id.as_str(), distro.version_id.as_deref()),
            ("alpine", Some("3.15.4"))
        );
        let keys = read
            .inventory
            .components
            .iter()
            .find(|c| c.package.name == "alpine-keys")
            .unwrap();
        assert_eq!(keys.package.ecosystem, stella_analyzers::Ecosystem::Apk);
        assert_eq!(keys.package.version, "2.4-r1");
        assert_eq!(keys.package.arch.as_deref(), Some("x86_64"));
        assert_eq!(keys.package.source_name.as_deref(), Some("alpine-keys"));
    }

    // Not SBOMs, or SBOMs we do not read: refused with why; components without a purl counted.
    for (bytes, why) in [
        (&b"\x00garbage"[..], "not JSON"),
        (br#"{"hello": 1}"#, "neither a CycloneDX"),
        (
            br#"{"bomFormat": "CycloneDX", "specVersion": "1.2"}"#,
            "1.4 to 1.6",
        ),
    ] {
        let e = import_sbom(bytes, "x", inventory.image.clone()).unwrap_err();
        assert!(e.contains(why), "{e}");
    }
    let partial = serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [
        {"type": "library", "name": "a", "version": "1"},
        {"type": "library", "name": "b", "purl": "pkg:gem/b@1"},
        {"type": "library", "name": "c", "purl": "pkg:npm/%40scope/c@2.0.0"},
        {"type": "library", "name": "d", "purl": "not a purl"},
    ]});
    let read = import_sbom(partial.to_string().as_bytes(), "x", inventory.image.clone()).unwrap();
    assert_eq!(read.skipped_count, 3, "{:?}", read.skipped);
    assert_eq!(read.inventory.components.len(), 1);
    assert_eq!(read.inventory.components[0].package.name, "@scope/c");
    assert!(read.inventory.errors[0].contains("3 components"));
}
