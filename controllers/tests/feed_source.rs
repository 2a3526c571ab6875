//! The FeedSource controller against the real API server and a feed served on loopback
//! (real OSV records from the fixtures, changed between syncs): the first sync stores the
//! feed, an unchanged one costs a `304`, a resync is the feed's whole truth (what upstream
//! dropped leaves the catalog), and garbage, a 500, a truncated body and a redirect to
//! another host each keep the previous snapshot with a condition and a Warning Event. A
//! deleted FeedSource's records are swept.

use futures::FutureExt;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stella_controllers::feed_source::{self, Context, Limits, SYNC_NOW};
use stella_controllers::metrics::Metrics;
use stella_crds::feed_source::v1alpha1::FeedSource;
use stella_e2e::services::{Answer, FeedServer};

async fn wait(
    api: &Api<FeedSource>,
    name: &str,
    what: &str,
    check: impl Fn(&FeedSource) -> bool,
) -> FeedSource {
    let started = Instant::now();
    loop {
        if let Some(feed) = api.get_opt(name).await.unwrap()
            && check(&feed)
        {
            return feed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: not {what}: {:?}",
            api.get_opt(name).await.unwrap().and_then(|f| f.status)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition(feed: &FeedSource, type_: &str) -> Option<(String, String)> {
    feed.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// A kit (a zip with a digest manifest: also a feed body) of these fixture files.
fn kit(dir: &Path, name: &str, files: &[&Path]) -> Vec<u8> {
    let staged = dir.join(format!("{name}-files"));
    std::fs::create_dir_all(&staged).unwrap();
    for file in files {
        std::fs::copy(file, staged.join(file.file_name().unwrap())).unwrap();
    }
    let out = dir.join(format!("{name}.zip"));
    stella_feeds::build_kit(&[staged], &out).unwrap();
    std::fs::read(out).unwrap()
}

/// Asks for a sync now and waits until the status has honoured it.
async fn sync_now(api: &Api<FeedSource>, name: &str, value: &str) -> FeedSource {
    let patch = serde_json::json!({"metadata": {"annotations": {SYNC_NOW: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait(api, name, "synced on request", |f| {
        f.status
            .as_ref()
            .is_some_and(|s| s.sync_request.as_deref() == Some(value))
            && condition(f, "Reconciling").is_some_and(|(s, _)| s == "False")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_sync_as_their_whole_truth_and_bad_sources_keep_the_snapshot() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "stella_controllers=debug",
        ))
        .with_test_writer()
        .try_init();
    let Some(records) = stella_e2e::services::fixtures("advisories/osv-records") else {
        return;
    };
    let Some(cluster) = stella_e2e::cluster() else {
        return;
    };
    let client = cluster.client().await.unwrap();
    stella_e2e::install_crds(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let store = stella_store::Store::open_embedded(&dir.path().join("data"))
        .await
        .unwrap();
    let nginx = records.join("Debian/DSA-3029-1.json");
    let npm: Vec<_> = std::fs::read_dir(records.join("npm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    let mut npm = npm;
    npm.sort();
    let first = kit(dir.path(), "first", &[&nginx, &npm[0]]);
    let server = FeedServer::start(Answer::Body(first));
    let ctx = Context {
        client: client.clone(),
        store: store.clone(),
        metrics: Arc::new(Metrics::default()),
        reporter: "stella-operator".into(),
        namespace: "default".into(),
        kit_dir: Some(dir.path().join("kits")),
        limits: Limits {
            attempts: 1,
            backoff: Duration::from_millis(10),
            ..Limits::default()
        },
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(feed_source::run(ctx.clone(), stopped.map(|_| ())));
    let api: Api<FeedSource> = Api::all(client.clone());
    let name = format!("ftest-{}", std::process::id());
    let feed: FeedSource = serde_json::from_value(serde_json::json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "FeedSource",
        "metadata": {"name": name},
        "spec": {"format": "osv", "url": format!("{}/osv/all.zip", server.base), "cadence": "6h"},
    }))
    .unwrap();
    api.create(&PostParams::default(), &feed).await.unwrap();

    // The first sync: both records stored, Ready, the next sync in six hours.
    let synced = wait(&api, &name, "synced", |f| {
        condition(f, "Ready").is_some_and(|(s, _)| s == "True")
    })
    .await;
    let status = synced.status.clone().unwrap();
    assert_eq!(status.records, 2, "{status:?}");
    assert_eq!(condition(&synced, "Stalled").unwrap().0, "False");
    assert_eq!(status.observed_generation, synced.metadata.generation);
    let first_delta = status.last_delta.clone().expect("a delta");
    assert_eq!((first_delta.added, first_delta.removed), (2, 0));
    let combined = store.advisories.feed_snapshot().await.unwrap();
    assert_eq!(status.combined_snapshot.as_deref(), Some(combined.as_str()));
    let next = status.next_sync_time.clone().unwrap();
    let last = status.last_sync_time.clone().unwrap();
    let ahead = next.0.duration_since(last.0).as_secs();
    assert!((21_590..=21_610).contains(&ahead), "next sync in {ahead} s");
    let nginx_key = [("Debian:7".to_string(), "nginx".to_string())];
    assert_eq!(
        store
            .advisories
            .advisories_for(&nginx_key)
            .await
            .unwrap()
            .len(),
        1
    );

    // Unchanged upstream: a conditional request, answered 304.
    let unchanged = sync_now(&api, &name, "1").await;
    assert_eq!(
        condition(&unchanged, "Ready").unwrap(),
        ("True".into(), "Unchanged".into())
    );
    let (_, sent) = server.requests().last().cloned().unwrap();
    assert!(sent.is_some(), "If-None-Match sent");
    assert_eq!(store.advisories.feed_snapshot().await.unwrap(), combined);

    // Upstream drops the nginx record and adds another npm one: replaced, not merged.
    server.set(Answer::Body(kit(dir.path(), "second", &[&npm[0], &npm[1]])));
    let resynced = sync_now(&api, &name, "2").await;
    let status = resynced.status.clone().unwrap();
    assert_eq!(condition(&resynced, "Ready").unwrap().1, "Synced");
    let delta = status.last_delta.clone().unwrap();
    assert_eq!(
        (delta.added, delta.removed, delta.changed),
        (1, 1, 0),
        "{status:?}"
    );
    assert!(
        store
            .advisories
            .advisories_for(&nginx_key)
            .await
            .unwrap()
            .is_empty()
    );
    let log = store
        .advisories
        .feed_deltas(first_delta.seq, 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert!(
        log[0].body.keys.contains(&"Debian:7/nginx".to_string()),
        "{:?}",
        log[0]
    );
    let kept = store.advisories.feed_snapshot().await.unwrap();

    // Bad sources: each a condition and a Warning Event, the snapshot kept.
    let other_host = server.base.replace("127.0.0.1", "localhost");
    for (answer, request, reason, stalled) in [
        (
            Answer::Body(b"{garbage".to_vec()),
            "3",
            "NoValidRecords",
            "True",
        ),
        (Answer::Status(500), "4", "HTTPError", "False"),
        (
            Answer::Truncated(b"PK\x03\x04 half a zip".to_vec()),
            "5",
            "Truncated",
            "False",
        ),
        (
            Answer::Redirect(format!("{other_host}/osv/all.zip")),
            "6",
            "RedirectRefused",
            "True",
        ),
        (Answer::Status(404), "7", "HTTPError", "True"),
    ] {
        server.set(answer);
        let failed = sync_now(&api, &name, request).await;
        assert_eq!(
            condition(&failed, "Ready").unwrap(),
            ("False".into(), reason.into()),
            "{:?}",
            failed.status
        );
        assert_eq!(
            condition(&failed, "Stalled").unwrap().0,
            stalled,
            "{reason}"
        );
        let status = failed.status.clone().unwrap();
        assert_eq!(status.records, 2, "the previous records stay");
        assert_eq!(store.advisories.feed_snapshot().await.unwrap(), kept);
    }
    // The metrics: when the feed last synced, and the failures by reason.
    let text = ctx.metrics.render();
    let feed = feed_source::feed_name(&name);
    assert!(
        text.contains(&format!(
            "stella_feed_last_success_timestamp_seconds{{feed=\"{feed}\"}}"
        )) && text.contains(&format!("stella_feed_age_seconds{{feed=\"{feed}\"}}")),
        "{text}"
    );
    for reason in [
        "NoValidRecords",
        "HTTPError",
        "Truncated",
        "RedirectRefused",
    ] {
        assert!(
            text.contains(&format!(
                "stella_feed_sync_failures_total{{reason=\"{reason}\"}}"
            )),
            "{reason}: {text}"
        );
    }
    let events: Api<Event> = Api::all(client.clone());
    let started = Instant::now();
    loop {
        let reasons: Vec<String> = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
            .filter_map(|e| e.reason)
            .collect();
        if ["NoValidRecords", "HTTPError", "RedirectRefused", "Synced"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "events: {reasons:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An offline kit the operator's pod mounts (file://, inside the kit directory).
    std::fs::create_dir_all(dir.path().join("kits")).unwrap();
    let mounted = kit(dir.path(), "mounted", &[&npm[1]]);
    std::fs::write(dir.path().join("kits/mounted.zip"), &mounted).unwrap();
    let file_name = format!("{name}-file");
    let file_source: FeedSource = serde_json::from_value(serde_json::json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "FeedSource",
        "metadata": {"name": file_name},
        "spec": {"format": "osv", "offlineKit": {
            "url": format!("file://{}", dir.path().join("kits/mounted.zip").display()),
            "manifestDigest": stella_feeds::kit_manifest_digest(&mounted).unwrap()}},
    }))
    .unwrap();
    // A CRD schema just updated reaches the API server's validation a moment later.
    let started = Instant::now();
    while let Err(e) = api.create(&PostParams::default(), &file_source).await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "creating the file:// FeedSource: {e}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let imported = wait(&api, &file_name, "imported from the mounted file", |f| {
        condition(f, "Ready").is_some_and(|(s, _)| s == "True")
    })
    .await;
    assert_eq!(imported.status.unwrap().records, 1);
    api.delete(&file_name, &DeleteParams::default())
        .await
        .unwrap();

    // An offline kit as an OCI artifact in a real registry (Debian's docker-registry), pinned
    // by the artifact's digest and the kit's: imported once. A layer that is not the kit the
    // digest pins is refused.
    if let Some(registry) = stella_e2e::services::Registry::start() {
        let kit_bytes = kit(dir.path(), "oci", &[&npm[1]]);
        let kit_digest = stella_feeds::kit_manifest_digest(&kit_bytes).unwrap();
        let http = reqwest::Client::new();
        let push = |layer: Vec<u8>, tag: &'static str| {
            let (registry, http) = (&registry, http.clone());
            async move {
                let config = b"{}".to_vec();
                registry.blob(&http, "feeds/kit", &layer).await;
                registry.blob(&http, "feeds/kit", &config).await;
                registry
                    .manifest(&http, "feeds/kit", tag, &serde_json::json!({
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "artifactType": "application/vnd.stella-ops.kit.v1",
                        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": stella_e2e::services::sha256(&config), "size": config.len()},
                        "layers": [{"mediaType": "application/zip", "digest": stella_e2e::services::sha256(&layer), "size": layer.len()}],
                    }))
                    .await
            }
        };
        let artifact = push(kit_bytes.clone(), "2099-01-01").await;
        let oci_name = format!("{name}-oci");
        let source = |kit_url: String, digest: &str| -> FeedSource {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "stella-ops.org/v1alpha1", "kind": "FeedSource",
                "metadata": {"name": oci_name},
                "spec": {"format": "osv", "offlineKit": {"url": kit_url, "manifestDigest": digest, "insecureRegistry": true}},
            }))
            .unwrap()
        };
        let url = format!("oci://{}/feeds/kit@{artifact}", registry.host);
        api.create(&PostParams::default(), &source(url, &kit_digest))
            .await
            .unwrap();
        let imported = wait(&api, &oci_name, "imported from the registry", |f| {
            condition(f, "Ready").is_some_and(|(s, _)| s == "True")
        })
        .await;
        assert_eq!(imported.status.unwrap().records, 1);
        api.delete(&oci_name, &DeleteParams::default())
            .await
            .unwrap();
        while api.get_opt(&oci_name).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Another kit under the same pinned kit digest: the kit's own manifest differs.
        let other = push(kit(dir.path(), "other", &[&nginx]), "other").await;
        let url = format!("oci://{}/feeds/kit@{other}", registry.host);
        api.create(&PostParams::default(), &source(url, &kit_digest))
            .await
            .unwrap();
        let refused = wait(&api, &oci_name, "refused", |f| {
            condition(f, "Stalled").is_some_and(|(s, _)| s == "True")
        })
        .await;
        assert_eq!(condition(&refused, "Stalled").unwrap().1, "DigestMismatch");
        api.delete(&oci_name, &DeleteParams::default())
            .await
            .unwrap();
        // An artifact digest the registry does not hold.
        let url = format!(
            "oci://{}/feeds/kit@sha256:{}",
            registry.host,
            "0".repeat(64)
        );
        while api.get_opt(&oci_name).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        api.create(&PostParams::default(), &source(url, &kit_digest))
            .await
            .unwrap();
        let missing = wait(&api, &oci_name, "failed", |f| {
            condition(f, "Ready").is_some_and(|(s, r)| s == "False" && r != "Syncing")
        })
        .await;
        assert_eq!(
            condition(&missing, "Ready").unwrap().1,
            "HTTPError",
            "{:?}",
            missing.status
        );
        api.delete(&oci_name, &DeleteParams::default())
            .await
            .unwrap();
        while api.get_opt(&oci_name).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Deleted: the sweep removes what only it held.
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    let started = Instant::now();
    while api.get_opt(&name).await.unwrap().is_some() {
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let removed = feed_source::sweep(&ctx).await.unwrap();
    assert!(
        removed.contains(&feed_source::feed_name(&name)),
        "{removed:?}"
    );
    assert!(
        removed
            .iter()
            .all(|f| f.starts_with(&feed_source::feed_name(&name))),
        "only this test's feeds: {removed:?}"
    );
    assert!(store.advisories.advisory_bodies().await.unwrap().is_empty());

    let _ = stop.send(());
    let _ = task.await;
}
