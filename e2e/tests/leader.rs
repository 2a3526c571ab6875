//! Leader election on a real Lease: one candidate holds it, the other follows; the holder
//! dies and the other takes over within the lease duration; a graceful release hands over at
//! once; racing candidates never both lead.

use super::{cluster, run, unique_namespace};
use std::time::{Duration, Instant};
use stella_operator::leader::{Attempt, Config, Elector};

fn config(namespace: &str, identity: &str) -> Config {
    Config {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
        ..Config::new(namespace, "stella-operator", identity)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_leads_and_the_other_takes_over_when_it_dies() {
    let Some(cluster) = cluster() else {
        return;
    };
    let namespace = unique_namespace("leader");
    run(cluster.kubectl().args(["create", "namespace", &namespace]));
    let client = cluster.client().await.unwrap();
    let a = Elector::new(client.clone(), config(&namespace, "operator-a"));
    let b = Elector::new(client.clone(), config(&namespace, "operator-b"));
    let now = k8s_openapi::jiff::Timestamp::now;

    // Steps: a creates the lease and leads; b follows; a renews.
    assert_eq!(
        a.try_acquire_or_renew(now()).await.unwrap(),
        Attempt::Leader
    );
    assert_eq!(
        b.try_acquire_or_renew(now()).await.unwrap(),
        Attempt::Follower {
            holder: "operator-a".into()
        }
    );
    assert_eq!(
        a.try_acquire_or_renew(now()).await.unwrap(),
        Attempt::Leader
    );

    // The campaign loops: a leads; kill it (its task stops renewing, no release); b takes
    // over once the lease has expired, within the lease duration plus a retry.
    let (a_tx, mut a_rx) = tokio::sync::watch::channel(false);
    let a_task = tokio::spawn(a.clone().run(a_tx, std::future::pending()));
    a_rx.wait_for(|leading| *leading).await.unwrap();
    let (b_tx, mut b_rx) = tokio::sync::watch::channel(false);
    let (b_stop, b_stopped) = tokio::sync::oneshot::channel::<()>();
    let b_task = tokio::spawn(b.clone().run(b_tx, async {
        let _ = b_stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!*b_rx.borrow(), "b must not lead while a renews");
    a_task.abort();
    let killed = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), b_rx.wait_for(|leading| *leading))
        .await
        .expect("b took over")
        .unwrap();
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_millis(3_000 + 300 + 1_000),
        "takeover took {took:?}"
    );
    let lease: k8s_openapi::api::coordination::v1::Lease =
        kube::Api::namespaced(client.clone(), &namespace)
            .get("stella-operator")
            .await
            .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("operator-b"));
    assert_eq!(spec.lease_transitions, Some(1));
    // The old holder, back, is a follower now.
    assert_eq!(
        a.try_acquire_or_renew(now()).await.unwrap(),
        Attempt::Follower {
            holder: "operator-b".into()
        }
    );

    // Graceful shutdown releases: a takes over at its next try, without waiting.
    b_stop.send(()).unwrap();
    b_task.await.unwrap();
    assert!(!*b_rx.borrow());
    assert_eq!(
        a.try_acquire_or_renew(now()).await.unwrap(),
        Attempt::Leader
    );

    // Racing for an expired lease: exactly one wins.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let c = Elector::new(client.clone(), config(&namespace, "operator-c"));
    let d = Elector::new(client.clone(), config(&namespace, "operator-d"));
    let (rc, rd) = tokio::join!(c.try_acquire_or_renew(now()), d.try_acquire_or_renew(now()));
    let leaders = [rc.unwrap(), rd.unwrap()]
        .iter()
        .filter(|r| **r == Attempt::Leader)
        .count();
    assert_eq!(leaders, 1);
    run(cluster
        .kubectl()
        .args(["delete", "namespace", &namespace, "--wait=false"]));
}
