//! What Notify sends, checked against the published schemas in the shared fixtures: every
//! Teams card (one event, the most findings, a digest, a custom template) against the Adaptive
//! Cards 1.5 schema (draft-06), and every CloudEvent (each kind's shape) against the
//! CloudEvents 1.0 JSON schema. Skipped, with the reason, where the fixtures are absent.

use serde_json::Value;
use stella_notify::Template;
use stella_notify::event::{Data, Event, Finding, Payload, RESCAN_DELTA, Scope};
use stella_notify::render::Message;
use stella_notify::template::{Custom, apply};

fn schema(path: &str) -> Option<jsonschema::Validator> {
    let dir = stella_e2e::services::fixtures("schemas")?;
    let schema: Value = serde_json::from_slice(&std::fs::read(dir.join(path)).unwrap()).unwrap();
    Some(jsonschema::validator_for(&schema).unwrap())
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn event(findings: usize) -> Event {
    Event::new(
        RESCAN_DELTA,
        "/stella-ops/operator",
        "sha256:aa",
        "prod",
        chrono::DateTime::UNIX_EPOCH,
        Data {
            scope: Scope {
                namespace: "prod".into(),
                image: "registry.example/prod/web:1".into(),
                repository: "registry.example/prod/web".into(),
                digest: "sha256:aa".into(),
                workloads: vec!["Deployment/web".into()],
                ..Scope::default()
            },
            payload: Payload {
                previous_verdict: Some("PASS".into()),
                verdict: Some("FAIL".into()),
                findings: Some(
                    (0..findings)
                        .map(|i| Finding {
                            id: format!("CVE-2026-{i:05}"),
                            severity: ["Critical", "High", "Medium", "Low"][i % 4].into(),
                            package: format!("pkg:deb/debian/lib{i}@1.0"),
                            fixed: if i % 2 == 0 {
                                "1.1".into()
                            } else {
                                String::new()
                            },
                            kev: i % 5 == 0,
                            link: "https://osv.dev/vulnerability/CVE-2026-00001".into(),
                            ..Finding::default()
                        })
                        .collect(),
                ),
                link: "https://stella.example/api/v1/scanner/scans/prod/web".into(),
                ..Payload::default()
            },
        },
    )
}

#[test]
fn teams_cards_are_valid_adaptive_cards_1_5() {
    let Some(validator) = schema("adaptive-cards-1.5/adaptive-card.json") else {
        return;
    };
    let one = event(3);
    let many = event(200);
    let f = |e: &Event| e.data.payload.findings.clone().unwrap_or_default();
    let messages = vec![
        Message::of_event(&one, &f(&one), "prod/r", Template::Concise),
        Message::of_event(&many, &f(&many), "prod/r", Template::Detailed),
        Message::of_digest(
            &[(one.clone(), f(&one)), (many.clone(), f(&many))],
            "prod/r",
            "hourly",
            Template::Concise,
        ),
        apply(
            &Custom {
                title: Some("{{ findings | length }} new".into()),
                body: "{% for f in findings %}{{ f.id }}\n{% endfor %}".into(),
            },
            &Message::of_event(&one, &f(&one), "prod/r", Template::Concise),
            std::slice::from_ref(&one),
        )
        .unwrap(),
    ];
    for message in &messages {
        let teams = message.teams();
        assert_eq!(teams["type"], "message");
        let card = &teams["attachments"][0]["content"];
        let found = errors(&validator, card);
        assert!(found.is_empty(), "{}: {found:#?}", message.title);
    }
    // The validator does reject a card that breaks the schema.
    let mut broken = messages[0].teams()["attachments"][0]["content"].clone();
    broken["body"][0]["weight"] = "Heaviest".into();
    assert!(!errors(&validator, &broken).is_empty());
}

#[test]
fn every_event_is_a_valid_cloudevent() {
    let Some(validator) = schema("cloudevents-1.0/cloudevents.json") else {
        return;
    };
    for kind in stella_notify::event::KINDS {
        let mut e = event(2);
        e.kind = kind.to_string();
        let value = serde_json::to_value(&e).unwrap();
        let found = errors(&validator, &value);
        assert!(found.is_empty(), "{kind}: {found:#?}");
        assert_eq!(value["specversion"], "1.0");
        assert_eq!(value["datacontenttype"], "application/json");
    }
    let mut broken = serde_json::to_value(event(1)).unwrap();
    broken["specversion"] = Value::Null;
    broken["id"] = "".into();
    assert!(!errors(&validator, &broken).is_empty());
}
