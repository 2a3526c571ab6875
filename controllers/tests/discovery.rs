//! Workload discovery against the API server: a running Pod of a Deployment becomes a Scan
//! named from its image digest and labelled with the Deployment; the Scan controller picks
//! it up (a worker Job); when the Pod is gone the Scan is collected after the TTL.

use crate::Harness;
use futures::FutureExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stella_controllers::discovery::{self, Settings};
use stella_crds::scan::v1alpha1::ScanPhase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_pods_become_scans_and_stopped_images_are_collected() {
    let Some(h) = Harness::start("discovery", 4).await else {
        return;
    };
    let app = crate::namespace(&h.client, "shop").await;
    let quiet = crate::namespace(&h.client, "quiet").await;
    let digest = h.registry.push_motd("shop/web", "1.0", "discovered").await;
    let image = format!("{}/shop/web@{digest}", h.registry.host);

    // A ReplicaSet owned by a Deployment, and its Pod (no controller-manager: made by hand).
    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-5d4", "namespace": app, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "0d3c2b1a-0000-4000-8000-000000000001", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "shop/web:1.0"}]}}},
    }))
    .unwrap();
    let rs = Api::<ReplicaSet>::namespaced(h.client.clone(), &app)
        .create(&PostParams::default(), &rs)
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(h.client.clone(), &app);
    let running_pod = |ns: &str, name: &str, owner: Option<(&str, String)>| -> Pod {
        let owners: Vec<serde_json::Value> = owner
            .into_iter()
            .map(|(name, uid)| serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": uid, "controller": true}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}, "ownerReferences": owners},
            "spec": {"containers": [{"name": "web", "image": format!("{}/shop/web:1.0", h.registry.host)}]},
        }))
        .unwrap()
    };
    let status = serde_json::json!({"status": {"phase": "Running", "containerStatuses": [{
        "name": "web", "image": format!("{}/shop/web:1.0", h.registry.host),
        "imageID": format!("docker-pullable://{image}"), "ready": true, "restartCount": 0,
        "state": {"running": {"startedAt": "2026-11-28T08:00:00Z"}},
    }]}});
    for (ns, name) in [(&app, "web-5d4-abcde"), (&quiet, "web-quiet")] {
        let api = Api::<Pod>::namespaced(h.client.clone(), ns);
        let owner = (ns == &app).then(|| ("web-5d4", rs.uid().unwrap()));
        api.create(&PostParams::default(), &running_pod(ns, name, owner))
            .await
            .unwrap();
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    let settings = Settings {
        namespace: h.namespace.clone(),
        include: vec![app.clone(), quiet.clone()],
        exclude: vec![quiet.clone()],
        gc_ttl: Duration::from_secs(1),
        policy_ref: None,
        insecure_registries: vec![h.registry.host.clone()],
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = Arc::new(stella_controllers::metrics::Metrics::default());
    let task = tokio::spawn(discovery::run(
        h.client.clone(),
        settings,
        metrics.clone(),
        Duration::from_secs(1),
        stopped.map(|_| ()),
    ));

    let name = format!("sha256-{}", &digest[7..]);
    let scan = h
        .wait(&name, "discovered", |s| {
            s.labels()
                .contains_key("workload.stella-ops.org/deployment.web")
        })
        .await;
    assert_eq!(scan.spec.image, image);
    assert!(scan.spec.insecure_registry);
    assert_eq!(scan.labels()["workload.stella-ops.org/deployment.web"], app);
    assert_eq!(
        scan.labels()[stella_controllers::scan::LABEL_DISCOVERED],
        "true"
    );
    assert_eq!(
        scan.annotations()[discovery::ANNOTATION_WORKLOADS],
        format!("{app}/Deployment/web"),
        "the excluded namespace's pod is not counted"
    );
    // Nobody wrote a Scan, yet the image is being scanned.
    h.wait(&name, "Scanning", |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.phase == Some(ScanPhase::Scanning))
    })
    .await;
    assert!(
        metrics
            .render()
            .contains("stella_discovery_scans_total{action=\"created\"} 1\n")
    );

    // The pod goes: marked unused, then collected after the TTL (the finalizer cleans up).
    pods.delete("web-5d4-abcde", &Default::default())
        .await
        .unwrap();
    let started = Instant::now();
    while h.scans().get_opt(&name).await.unwrap().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the unused Scan was not collected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(h.job_names().await.is_empty(), "its Job went with it");
    assert!(
        metrics
            .render()
            .contains("stella_discovery_scans_total{action=\"collected\"} 1\n")
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
