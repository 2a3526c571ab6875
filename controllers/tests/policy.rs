//! The Policy controller against the real API server: a valid Policy gets its digest (the one
//! every consumer computes), rule count and `Ready`; an invalid one — which Kubernetes 1.20
//! accepts, its CEL rules unknown there — gets every error with its location, `Stalled` and
//! a Warning Event; fixing it makes it Ready again.

use futures::FutureExt;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stella_controllers::metrics::Metrics;
use stella_controllers::policy::{self, Context};
use stella_crds::policy::v1alpha1::Policy;

async fn wait(
    api: &Api<Policy>,
    name: &str,
    what: &str,
    check: impl Fn(&Policy) -> bool,
) -> Policy {
    let started = Instant::now();
    loop {
        if let Some(policy) = api.get_opt(name).await.unwrap()
            && check(&policy)
        {
            return policy;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: not {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition(policy: &Policy, type_: &str) -> Option<(String, String)> {
    policy
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_validated_into_their_status() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "stella_controllers=debug",
        ))
        .with_test_writer()
        .try_init();
    let Some(cluster) = stella_e2e::cluster() else {
        return;
    };
    let client = cluster.client().await.unwrap();
    stella_e2e::install_crds(&client).await;
    let data = tempfile::tempdir().unwrap();
    let store = stella_store::Store::open_embedded(data.path())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(policy::run(
        Context {
            client: client.clone(),
            store: store.clone(),
            metrics: Arc::new(Metrics::default()),
            reporter: "stella-operator".into(),
        },
        stopped.map(|_| ()),
    ));
    let api: Api<Policy> = Api::all(client.clone());
    let prefix = format!("ptest-{}", std::process::id());

    // Valid: the sample.
    let mut sample: Policy = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/samples/policy.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let valid = format!("{prefix}-valid");
    sample.metadata.name = Some(valid.clone());
    let created = api.create(&PostParams::default(), &sample).await.unwrap();
    let expected = stella_policy::load_str(&serde_json::to_string(&created.spec).unwrap())
        .unwrap()
        .digest;
    let ready = wait(&api, &valid, "Ready", |p| {
        condition(p, "Ready").is_some_and(|(s, _)| s == "True")
    })
    .await;
    let status = ready.status.unwrap();
    assert_eq!(status.digest.as_deref(), Some(expected.as_str()));
    assert_eq!(status.rule_count, 5);
    assert_eq!(status.observed_generation, ready.metadata.generation);
    // Reported to Notify's outbox: `policy.changed`, with the digest.
    let outbox = store.notify.events_after(0, 100).await.unwrap();
    let changed: Vec<_> = outbox
        .iter()
        .filter(|(_, e)| e.kind == "policy.changed" && e.body.contains(&valid))
        .collect();
    assert_eq!(changed.len(), 1, "{outbox:?}");
    assert!(changed[0].1.body.contains(&expected));

    // Invalid as Kubernetes 1.20 lets it through: escalate without a target, a rule named twice.
    let invalid = format!("{prefix}-invalid");
    let bad: Policy = serde_json::from_value(serde_json::json!({
        "apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy",
        "metadata": {"name": invalid},
        "spec": {"version": "1.0", "rules": [
            {"name": "up", "severity": ["High"], "action": "escalate"},
            {"name": "up", "severity": ["Low"], "action": "ignore"},
        ]},
    }))
    .unwrap();
    api.create(&PostParams::default(), &bad).await.unwrap();
    let stalled = wait(&api, &invalid, "Stalled", |p| {
        condition(p, "Stalled").is_some_and(|(s, _)| s == "True")
    })
    .await;
    let status = stalled.status.clone().unwrap();
    assert_eq!(
        condition(&stalled, "Ready"),
        Some(("False".into(), "InvalidPolicy".into()))
    );
    assert_eq!(status.digest, None);
    assert!(!status.errors.is_empty(), "{status:?}");
    assert!(
        status.errors.iter().all(|e| e.contains("rules[")),
        "{:?}",
        status.errors
    );
    // The Event follows the status write (events.k8s.io, in `default` for a cluster-scoped
    // object).
    let started = Instant::now();
    loop {
        let events = Api::<Event>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap();
        let found = events.items.iter().any(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(invalid.as_str())
                && e.reason.as_deref() == Some("InvalidPolicy")
                && e.type_.as_deref() == Some("Warning")
        });
        if found {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no InvalidPolicy Event for {invalid}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("policy errors: {:?}", status.errors);

    // Fixed: Ready, with the digest of the fixed spec.
    api.patch(
        &invalid,
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({"spec": {"rules": [{"name": "up", "severity": ["High"], "action": "escalate", "escalateTo": "Critical"}]}})),
    )
    .await
    .unwrap();
    let fixed = wait(&api, &invalid, "Ready after the fix", |p| {
        condition(p, "Ready").is_some_and(|(s, _)| s == "True")
    })
    .await;
    let status = fixed.status.unwrap();
    assert!(status.errors.is_empty());
    assert_eq!(status.rule_count, 1);
    assert_eq!(status.observed_generation, fixed.metadata.generation);

    for name in [&valid, &invalid] {
        api.delete(name, &Default::default()).await.unwrap();
    }
    let _ = stop.send(());
    let _ = task.await;
}
