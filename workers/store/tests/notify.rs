//! Notify's outbox and deliveries on both backends: an event is stored once whatever the
//! number of emits; a result and its events commit together; a plan is recorded once per
//! idempotency key and moves the cursor with it; a throttle window suppresses (and records)
//! what falls inside it; a lease keeps two dispatchers off one delivery and a dead holder's
//! lease runs out; only the holder records the outcome; a digest folds its group once.

use stella_e2e::services::PgDatabase;
use stella_store::{
    DeliveryRow, MAX_EVENT_BODY, OutboxEvent, Outcome, ResultRow, Store, StoreConfig,
};

fn event(id: &str) -> OutboxEvent {
    OutboxEvent {
        event_id: id.into(),
        kind: "scanner.report.ready".into(),
        namespace: "prod".into(),
        time: "2026-12-01T00:00:00.000Z".into(),
        body: serde_json::json!({"id": id}).to_string(),
    }
}

fn delivery(id: &str, event: &str, group: &str, status: &str, due: &str) -> DeliveryRow {
    DeliveryRow {
        id: id.into(),
        event_id: event.into(),
        rule: "prod/criticals".into(),
        action: 0,
        channel: "prod/slack".into(),
        target: String::new(),
        status: status.into(),
        reason: "matched".into(),
        group_key: group.into(),
        members: "[]".into(),
        attempts: 0,
        last_error: String::new(),
        created_at: "2026-12-01T00:00:00.000Z".into(),
        next_attempt_at: due.into(),
        sent_at: String::new(),
    }
}

fn result(digest: &str) -> ResultRow {
    ResultRow {
        image_digest: digest.into(),
        image_ref: "registry.example/app:1".into(),
        analyzer_version: "a1".into(),
        feed_snapshot: "sha256:feeds".into(),
        vex_snapshot: Some("sha256:vex".into()),
        policy_digest: Some("sha256:policy".into()),
        verdict: Some("FAIL".into()),
        critical: 1,
        high: 0,
        medium: 0,
        low: 0,
        none: 0,
        unknown: 0,
        suppressed: 0,
        components: 3,
        report_key: None,
        finished_at: "2026-12-01T00:00:00Z".into(),
    }
}

async fn round_trip(store: &Store) {
    let db = &store.notify;
    // The outbox: one row per id, however often it is emitted.
    assert_eq!(db.append(&[event("e1"), event("e2")]).await.unwrap(), 2);
    assert_eq!(db.append(&[event("e1")]).await.unwrap(), 0, "replayed");
    let mut big = event("big");
    big.body = "x".repeat(MAX_EVENT_BODY + 1);
    assert!(
        db.append(&[big])
            .await
            .unwrap_err()
            .to_string()
            .contains("event body")
    );
    assert!(db.append(&[event("")]).await.is_err());
    assert_eq!(
        db.outbox_len().await.unwrap(),
        2,
        "the refused batch wrote nothing"
    );
    // A result and its event commit together; a refused event refuses the result too.
    let digest = format!("sha256:{}", "a".repeat(64));
    store
        .catalog
        .record_result_with_events(&result(&digest), &[event("e3")])
        .await
        .unwrap();
    assert!(
        store
            .catalog
            .latest_result(&digest)
            .await
            .unwrap()
            .is_some()
    );
    let other = format!("sha256:{}", "b".repeat(64));
    let mut bad = event("e4");
    bad.body = "x".repeat(MAX_EVENT_BODY + 1);
    assert!(
        store
            .catalog
            .record_result_with_events(&result(&other), &[bad])
            .await
            .is_err()
    );
    assert!(store.catalog.latest_result(&other).await.unwrap().is_none());
    let events = db.events_after(0, 10).await.unwrap();
    let ids: Vec<&str> = events.iter().map(|(_, e)| e.event_id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2", "e3"]);
    assert_eq!(db.events_after(events[1].0, 10).await.unwrap().len(), 1);
    assert_eq!(
        db.events(&["e3".into(), "nope".into(), "e1".into()])
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["e3", "e1"]
    );

    // Planning: once per key, the cursor with it; the throttle window suppresses the second.
    let now = "2026-12-01T00:00:00.000Z";
    let until = "2026-12-01T00:05:00.000Z";
    let planned = vec![
        (
            delivery("d1", "e1", "t:img", "pending", now),
            Some(until.to_string()),
        ),
        (
            delivery("d2", "e2", "t:img", "pending", now),
            Some(until.to_string()),
        ),
        (delivery("d3", "e3", "", "pending", now), None),
    ];
    let recorded = db.plan("main", events[2].0, now, &planned).await.unwrap();
    let statuses: Vec<(&str, &str)> = recorded
        .iter()
        .map(|d| (d.id.as_str(), d.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [("d1", "pending"), ("d2", "throttled"), ("d3", "pending")]
    );
    assert!(recorded[1].reason.contains("throttled"));
    assert_eq!(db.cursor("main").await.unwrap(), events[2].0);
    assert_eq!(db.cursor("other").await.unwrap(), 0);
    assert!(
        db.plan("main", events[2].0, now, &planned)
            .await
            .unwrap()
            .is_empty(),
        "re-planned: nothing new"
    );
    // After the window, the same key opens a new one.
    let later = "2026-12-01T00:06:00.000Z";
    let again = vec![(
        delivery("d4", "e4", "t:img", "pending", later),
        Some("2026-12-01T00:11:00.000Z".into()),
    )];
    assert_eq!(
        db.plan("main", events[2].0, later, &again).await.unwrap()[0].status,
        "pending"
    );

    // Leases: the first dispatcher takes what is due, the second nothing; after the lease
    // runs out the second takes over, and the first may no longer record an outcome.
    let lease = "2026-12-01T00:07:00.000Z";
    let a = db.claim_due("a", later, lease, 10).await.unwrap();
    assert_eq!(
        a.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["d1", "d3", "d4"]
    );
    assert!(
        db.claim_due("b", later, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let sent = Outcome::Sent { at: later.into() };
    assert!(db.complete("d1", "a", &sent).await.unwrap());
    assert!(
        !db.complete("d1", "a", &sent).await.unwrap(),
        "already sent"
    );
    let retry = Outcome::Retry {
        error: "HTTP 500".into(),
        next_attempt_at: "2026-12-01T00:06:30.000Z".into(),
    };
    assert!(db.complete("d3", "a", &retry).await.unwrap());
    let expired = "2026-12-01T00:07:30.000Z";
    let b = db
        .claim_due("b", expired, "2026-12-01T00:08:30.000Z", 10)
        .await
        .unwrap();
    assert_eq!(
        b.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["d4", "d3"],
        "due order: d4 (00:06) before d3's retry (00:06:30)"
    );
    assert_eq!(b[1].attempts, 1);
    assert_eq!(b[1].last_error, "HTTP 500");
    assert!(
        !db.complete("d4", "a", &sent).await.unwrap(),
        "a lost its lease"
    );
    let defer = Outcome::Defer {
        reason: "rate limit".into(),
        next_attempt_at: expired.into(),
    };
    assert!(db.complete("d4", "b", &defer).await.unwrap());
    assert_eq!(
        db.delivery("d4").await.unwrap().unwrap().attempts,
        0,
        "a deferral is no attempt"
    );
    assert!(
        db.complete(
            "d3",
            "b",
            &Outcome::Dead {
                error: "gave up".into()
            }
        )
        .await
        .unwrap()
    );
    let dead = db.delivery("d3").await.unwrap().unwrap();
    assert_eq!((dead.status.as_str(), dead.attempts), ("dead", 2));

    // Digests: waiting deliveries fold into one, once.
    let window = "2026-12-01T01:00:00.000Z";
    let digest_group = "digest:prod/criticals:0:2026-12-01T01";
    let waiting = vec![
        (delivery("g1", "e1", digest_group, "digest", window), None),
        (delivery("g2", "e2", digest_group, "digest", window), None),
    ];
    db.plan("main", events[2].0, later, &waiting).await.unwrap();
    assert!(
        db.due_digests(later).await.unwrap().is_empty(),
        "window still open"
    );
    let due = db.due_digests(window).await.unwrap();
    assert_eq!(due.len(), 2);
    let mut folded = delivery("g", "e1", digest_group, "pending", window);
    folded.members = r#"["e1","e2"]"#.into();
    assert_eq!(db.coalesce(&folded).await.unwrap(), 2);
    assert_eq!(
        db.coalesce(&folded).await.unwrap(),
        0,
        "closed twice: folded once"
    );
    assert!(db.due_digests(window).await.unwrap().is_empty());
    assert_eq!(
        db.delivery("g").await.unwrap().unwrap().members,
        r#"["e1","e2"]"#
    );

    let (counts, last) = db.rule_counts("prod/criticals").await.unwrap();
    let count = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    assert_eq!(
        (
            count("sent"),
            count("throttled"),
            count("dead"),
            count("coalesced"),
            count("pending")
        ),
        (1, 1, 1, 2, 2)
    );
    assert_eq!(last, later);
    assert_eq!(
        db.deliveries(None, Some("prod/criticals"), Some("dead"), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(db.deliveries(None, None, None, 3).await.unwrap().len(), 3);
    assert!(
        db.deliveries(None, Some("other/rule"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // By namespace: the rules in `prod`, not those of a namespace whose name starts alike.
    assert_eq!(
        db.deliveries(Some("prod"), None, None, 10)
            .await
            .unwrap()
            .len(),
        db.deliveries(None, None, None, 10).await.unwrap().len()
    );
    assert!(
        db.deliveries(Some("pro"), None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn outbox_and_deliveries_in_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&Store::open_embedded(dir.path()).await.unwrap()).await;
    let Some(db) = PgDatabase::create("store") else {
        return;
    };
    let store = Store::open(&StoreConfig {
        data_dir: dir.path().join("pg"),
        catalog_url: Some(db.url.clone()),
        object_store_url: None,
    })
    .await
    .unwrap();
    round_trip(&store).await;
}
