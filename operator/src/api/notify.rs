//! Notify's endpoints (seed 001 §7.7): `GET /api/v1/notify/deliveries` (the delivery records:
//! why each message was sent, throttled, coalesced or dead-lettered) and `POST
//! /api/v1/notify/test {"channel": "<namespace>/<name>", "target"?}` (a test message sent
//! through a channel now, resolved from the API server as the NotifyChannel controller does,
//! so every replica answers).
//!
//! Deliveries need `get notifyrules` on the rule asked for, `list notifyrules` in the
//! namespace asked for, or `list notifyrules` cluster-wide; a test send needs `update
//! notifychannels` on the channel.

use super::auth::Access;
use super::input::{self, quoted};
use super::{ApiState, Error, api_server_failure, json_response, respond, store_failure};
use serde::Deserialize;
use serde_json::json;
use stella_crds::notify::v1alpha1::NotifyChannel;
use stella_notify::send::Sent;
use warp::http::StatusCode;
use warp::reply::Response;

/// Most deliveries listed at once.
pub(super) const MAX_DELIVERIES: u32 = 500;
/// The statuses a delivery can be in.
const STATUSES: [&str; 6] = [
    "pending",
    "sent",
    "dead",
    "throttled",
    "digest",
    "coalesced",
];
/// Longest test target.
const MAX_TARGET: usize = 512;

/// `GET notify/deliveries?namespace=&rule=<namespace>/<name>&status=&limit=`: newest first.
pub(crate) async fn deliveries(
    query: Option<Vec<(String, String)>>,
    authorization: Option<String>,
    state: ApiState,
) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            let params = input::params(query, &["namespace", "rule", "status", "limit"])?;
            let namespace = params.get("namespace").map(input::namespace).transpose()?;
            let rule = params.get("rule").map(qualified).transpose()?;
            let status = params
                .get("status")
                .map(|s| {
                    STATUSES.iter().find(|k| **k == s).copied().ok_or_else(|| {
                        Error::BadRequest(format!(
                            "status {} is not one of {}",
                            quoted(s),
                            STATUSES.join(", ")
                        ))
                    })
                })
                .transpose()?;
            let limit = params.limit(100, MAX_DELIVERIES)?;
            let access = match (&rule, &namespace) {
                (Some((ns, name)), _) => Access::notify("get", "notifyrules", Some(ns), Some(name)),
                (None, Some(ns)) => Access::notify("list", "notifyrules", Some(ns), None),
                (None, None) => Access::notify("list", "notifyrules", None, None),
            };
            state.reviews.authorize(&caller, access).await?;
            let rule_id = rule.map(|(ns, name)| format!("{ns}/{name}"));
            let rows = state
                .store
                .notify
                .deliveries(namespace.as_deref(), rule_id.as_deref(), status, limit)
                .await
                .map_err(store_failure)?;
            let optional = |s: &str| (!s.is_empty()).then(|| s.to_string());
            let items: Vec<_> = rows
                .iter()
                .map(|d| {
                    json!({
                        "id": d.id,
                        "eventId": d.event_id,
                        "rule": d.rule,
                        "action": d.action,
                        "channel": d.channel,
                        "target": optional(&d.target),
                        "status": d.status,
                        "reason": d.reason,
                        "attempts": d.attempts,
                        "lastError": optional(&d.last_error),
                        "createdAt": d.created_at,
                        "nextAttemptAt": (d.status == "pending" || d.status == "digest")
                            .then(|| d.next_attempt_at.clone()),
                        "sentAt": optional(&d.sent_at),
                        "events": serde_json::from_str::<Vec<String>>(&d.members)
                            .unwrap_or_default().len().max(1),
                    })
                })
                .collect();
            let body = json!({"items": items, "count": items.len()});
            Ok(json_response(StatusCode::OK, body.to_string()))
        }
        .await,
    )
}

/// The test-send body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    channel: String,
    #[serde(default)]
    target: Option<String>,
}

/// `POST notify/test`: one test message through the channel, now (not through the outbox:
/// nothing is recorded, rate limits do not apply). 200 when the receiver took it, 502 with
/// the receiver's answer when it did not, 409 when the channel does not resolve.
pub(crate) async fn test(
    headers: warp::http::HeaderMap,
    body: impl futures::Stream<Item = Result<impl warp::Buf, warp::Error>>,
    authorization: Option<String>,
    state: ApiState,
) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            let body = input::body(&headers, body).await?;
            let request = parse(&body)?;
            let (namespace, name) = qualified(&request.channel)?;
            if let Some(target) = &request.target
                && (target.is_empty() || target.len() > MAX_TARGET || target.contains(['\r', '\n']))
            {
                return Err(Error::BadRequest(format!(
                    "target is 1 to {MAX_TARGET} characters on one line"
                )));
            }
            state
                .reviews
                .authorize(
                    &caller,
                    Access::notify("update", "notifychannels", Some(&namespace), Some(&name)),
                )
                .await?;
            let api: kube::Api<NotifyChannel> =
                kube::Api::namespaced(state.client.clone(), &namespace);
            let channel = api
                .get_opt(&name)
                .await
                .map_err(|e| api_server_failure("read the NotifyChannel", e))?
                .ok_or_else(|| {
                    Error::NotFound(format!("no NotifyChannel {namespace}/{name}"))
                })?;
            let resolved = stella_controllers::notify::resolve_channel(&state.client, &channel)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "reading a channel's Secret failed");
                    Error::Unavailable("the Kubernetes API server is unavailable (read the channel's Secret)".into())
                })?
                .map_err(|(reason, message)| {
                    Error::Conflict(format!(
                        "NotifyChannel {namespace}/{name} cannot be used ({reason}): {message}"
                    ))
                })?;
            let now = chrono::Utc::now();
            let event = stella_notify::Event::new(
                stella_notify::event::NOTIFY_TEST,
                "/stella-ops/operator/api",
                &resolved.id,
                &namespace,
                now,
                stella_notify::Data {
                    payload: stella_notify::Payload {
                        summary: format!("requested by {}", caller.user.username),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            );
            let message = stella_notify::render::Message {
                title: format!("Stella Ops test message for NotifyChannel {}", resolved.id),
                facts: vec![
                    ("Channel".into(), resolved.id.clone()),
                    ("Requested by".into(), caller.user.username.clone()),
                ],
                findings: vec![],
                more: 0,
                link: String::new(),
                rule: "(test send)".into(),
                custom: None,
            };
            let started = std::time::Instant::now();
            let sent = stella_notify::send::deliver(
                &resolved,
                &event.id,
                request.target.as_deref().unwrap_or_default(),
                &message,
                std::slice::from_ref(&event),
                false,
                now.timestamp(),
            )
            .await;
            let took = started.elapsed().as_millis() as u64;
            match sent {
                Sent::Ok => Ok(json_response(
                    StatusCode::OK,
                    json!({"channel": resolved.id, "status": "sent", "messageId": event.id, "durationMs": took})
                        .to_string(),
                )),
                Sent::Retry { error, .. } => Err(Error::DeliveryFailed {
                    message: error,
                    retryable: true,
                }),
                Sent::Dead { error } => Err(Error::DeliveryFailed {
                    message: error,
                    retryable: false,
                }),
            }
        }
        .await,
    )
}

/// `<namespace>/<name>`.
fn qualified(text: &str) -> Result<(String, String), Error> {
    let bad = || Error::BadRequest(format!("{} is not <namespace>/<name>", quoted(text)));
    let (namespace, name) = text.split_once('/').ok_or_else(bad)?;
    Ok((
        input::namespace(namespace).map_err(|_| bad())?,
        input::object_name(name).map_err(|_| bad())?,
    ))
}

/// The body: `{"channel": …, "target"?: …}` and nothing else.
fn parse(body: &[u8]) -> Result<TestRequest, Error> {
    input::json_object(
        body,
        "test request",
        "{\"channel\": \"<namespace>/<name>\", \"target\": \"…\"}",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bodies_are_checked() {
        assert_eq!(
            qualified("prod/slack").unwrap(),
            ("prod".to_string(), "slack".to_string())
        );
        for bad in ["prod", "/x", "prod/", "Prod/x", "prod/x/y", "../etc/passwd"] {
            assert!(qualified(bad).is_err(), "{bad}");
        }
        assert!(parse(br#"{"channel": "prod/slack"}"#).is_ok());
        for bad in [
            &br#"["prod/slack"]"#[..],
            br#"{"channel": "prod/slack", "extra": 1}"#,
            br#"{"channel": 7}"#,
            b"{",
            b"",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code(), "bad_request", "{e}");
        }
    }
}
