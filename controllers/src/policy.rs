//! The Policy controller (leader only): every Policy validated with the policy engine's own
//! loader — the one `stella scan --policy`, the worker, the Scan controller and the webhook
//! load policies with — and its status written: the digest every verdict it decides carries,
//! the rule count, every error with its location, and the conditions Flux and Argo CD read
//! (`Ready`, `Valid`, `Stalled`, each with `observedGeneration`). An invalid Policy also gets a
//! Warning Event. A Policy only changes when someone edits it, so nothing is requeued.
//!
//! dereference (nothing: a Policy refers to nothing the controller reads) → validate (pure) →
//! build (pure: the status) → update_status (server-side apply, only when it changed).

use crate::conditions::{self, Desired, Status, VALID};
use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Instant;
use stella_crds::policy::v1alpha1::{Policy, PolicyStatus};

/// The field manager of the status.
pub const MANAGER: &str = "stella-operator";
/// `Stalled` (kstatus): the Policy cannot be used as written; it waits for an edit.
pub const STALLED: &str = "Stalled";
/// At most this many errors are listed in the status (the CRD's bound); the count says more.
const MAX_ERRORS: usize = 32;

/// What the Policy controller needs.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// The catalog, whose Notify outbox `policy.changed` goes to.
    pub store: stella_store::Store,
    pub metrics: Arc<Metrics>,
    pub reporter: Reporter,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// Errors that stop a reconcile (the Policy's own problems are its status, not errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write the Policy status: {0}")]
    UpdateStatus(#[source] kube::Error),
    #[error("failed to record the policy.changed event: {0}")]
    Outbox(#[source] stella_store::Error),
}

/// What validation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validated {
    /// The policy loads: its digest and rule count.
    Valid { digest: String, rules: u32 },
    /// It does not: every problem, located (`rules[3].expires: …`).
    Invalid {
        reason: &'static str,
        errors: Vec<String>,
    },
}

/// Validates a Policy as every consumer loads it: its spec as JSON through
/// [`stella_policy::load_str`].
pub fn validate(policy: &Policy) -> Validated {
    let json = match serde_json::to_string(&policy.spec) {
        Ok(json) => json,
        Err(error) => {
            return Validated::Invalid {
                reason: "InvalidPolicy",
                errors: vec![error.to_string()],
            };
        }
    };
    match stella_policy::load_str(&json) {
        Ok(loaded) => Validated::Valid {
            digest: loaded.digest,
            rules: u32::try_from(loaded.spec.rules.len()).unwrap_or(u32::MAX),
        },
        Err(issues) => Validated::Invalid {
            reason: "InvalidPolicy",
            errors: issues.0.iter().map(ToString::to_string).collect(),
        },
    }
}

/// The status `validated` describes for `generation`, its conditions merged into `current`'s.
pub fn build(
    current: Option<&PolicyStatus>,
    generation: Option<i64>,
    validated: &Validated,
    now: &Time,
) -> PolicyStatus {
    let old = current.cloned().unwrap_or_default();
    let (digest, rule_count, errors, wanted): (_, _, _, Vec<Desired>) = match validated {
        Validated::Valid { digest, rules } => {
            let message = format!("{rules} rules; digest {digest}");
            (
                Some(digest.clone()),
                *rules,
                vec![],
                vec![
                    conditions::ready("Valid", message.clone()),
                    conditions::condition(VALID, Status::True, "Valid", message),
                    conditions::condition(STALLED, Status::False, "Valid", "the policy loads"),
                ],
            )
        }
        Validated::Invalid { reason, errors } => {
            let message = summary(errors);
            let mut listed: Vec<String> = errors.to_vec();
            if errors.len() > MAX_ERRORS {
                listed.truncate(MAX_ERRORS - 1);
                listed.push(format!("… and {} more", errors.len() - (MAX_ERRORS - 1)));
            }
            (
                None,
                0,
                listed
                    .into_iter()
                    .map(|e| crate::events::truncate(&e, 1024))
                    .collect(),
                vec![
                    conditions::not_ready(reason, message.clone()),
                    conditions::condition(VALID, Status::False, reason, message.clone()),
                    conditions::condition(STALLED, Status::True, reason, message),
                ],
            )
        }
    };
    PolicyStatus {
        digest,
        rule_count,
        errors,
        conditions: conditions::merge(&old.conditions, &wanted, generation, now),
        observed_generation: generation,
    }
}

fn summary(errors: &[String]) -> String {
    match errors {
        [] => "the policy does not load".into(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more; see status.errors)", rest.len()),
    }
}

/// Runs the Policy controller until `shutdown` resolves.
pub async fn run(
    ctx: Context,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let policies: Api<DeserializeGuard<Policy>> = Api::all(ctx.client.clone());
    Controller::new(policies, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::new(ctx))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "policy reconcile ended with an error");
            }
        })
        .await;
}

/// One reconcile: a Policy our types cannot read is reported in its status like any other
/// invalid one.
pub async fn reconcile(
    guard: Arc<DeserializeGuard<Policy>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let (name, generation, current, validated) = match &guard.0 {
        Ok(policy) => (
            policy.name_any(),
            policy.metadata.generation,
            policy.status.clone(),
            validate(policy),
        ),
        Err(invalid) => (
            invalid.metadata.name.clone().unwrap_or_default(),
            invalid.metadata.generation,
            None,
            Validated::Invalid {
                reason: "InvalidObject",
                errors: vec![invalid.error.clone()],
            },
        ),
    };
    let status = build(current.as_ref(), generation, &validated, &now);
    let result = update_status(&ctx, &guard, &name, current.as_ref(), &status, &validated).await;
    ctx.metrics.reconciled("policy", started.elapsed());
    if result.is_err() {
        ctx.metrics.failed("policy", "UpdateStatus");
    }
    result.map(|()| Action::await_change())
}

async fn update_status(
    ctx: &Context,
    guard: &DeserializeGuard<Policy>,
    name: &str,
    current: Option<&PolicyStatus>,
    status: &PolicyStatus,
    validated: &Validated,
) -> Result<(), Error> {
    if current == Some(status) {
        return Ok(());
    }
    // Reported before the status moves on: a failed status write retries the reconcile,
    // which reports the same change (the same event id), stored once.
    if let Some(event) = changed_event(name, current, status) {
        ctx.store
            .notify
            .append(&[event.to_outbox()])
            .await
            .map_err(Error::Outbox)?;
    }
    crate::events::apply_status::<Policy>(&ctx.client, MANAGER, name, status)
        .await
        .map_err(Error::UpdateStatus)?;
    match validated {
        Validated::Valid { digest, rules } => {
            tracing::info!(policy = %name, %digest, rules, "policy valid");
        }
        Validated::Invalid { reason, errors } => {
            tracing::warn!(policy = %name, reason, errors = errors.len(), "policy invalid");
            crate::events::publish_note(
                &ctx.client,
                &ctx.reporter,
                guard.object_ref(&()),
                EventType::Warning,
                reason,
                "Validate",
                &summary(errors),
            )
            .await;
        }
    }
    Ok(())
}

/// `policy.changed` when `status` gives the Policy a digest other than the one it had (a
/// first valid version included): cluster-wide, the Policy's name as subject, the digest
/// before and after and the rule count. Its id is derived from the change, not the time.
pub fn changed_event(
    name: &str,
    current: Option<&PolicyStatus>,
    status: &PolicyStatus,
) -> Option<stella_notify::Event> {
    use serde_json::json;
    let digest = status.digest.as_deref()?;
    let previous = current.and_then(|c| c.digest.as_deref());
    if previous == Some(digest) {
        return None;
    }
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("policy".to_string(), json!(name));
    attributes.insert("digest".to_string(), json!(digest));
    attributes.insert("previousDigest".to_string(), json!(previous));
    attributes.insert("rules".to_string(), json!(status.rule_count));
    attributes.insert("generation".to_string(), json!(status.observed_generation));
    Some(stella_notify::Event::new(
        stella_notify::event::POLICY_CHANGED,
        crate::scan::reevaluate::EVENT_SOURCE,
        name,
        "",
        chrono::Utc::now(),
        stella_notify::Data {
            scope: stella_notify::Scope {
                object: format!("Policy/{name}"),
                ..Default::default()
            },
            payload: stella_notify::Payload {
                summary: match previous {
                    Some(p) => format!("Policy {name}: {p} → {digest}"),
                    None => format!("Policy {name} is valid: digest {digest}"),
                },
                attributes,
                ..Default::default()
            },
        },
    ))
}

/// A failed status write: retried with a jittered backoff.
pub fn error_policy(
    _guard: Arc<DeserializeGuard<Policy>>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(%error, "policy reconcile failed");
    crate::events::retry_after_failure()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::READY;

    fn policy(spec: serde_json::Value) -> Policy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy",
            "metadata": {"name": "p", "generation": 3}, "spec": spec,
        }))
        .unwrap()
    }

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap())
    }

    #[test]
    fn a_valid_policy_gets_the_digest_every_consumer_computes() {
        let sample: Policy = serde_saphyr::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../config/samples/policy.yaml"
            ))
            .unwrap(),
        )
        .unwrap();
        let validated = validate(&sample);
        // The Scan controller's and the webhook's way: the spec as JSON, loaded.
        let expected =
            stella_policy::load_str(&serde_json::to_string(&sample.spec).unwrap()).unwrap();
        assert_eq!(
            validated,
            Validated::Valid {
                digest: expected.digest.clone(),
                rules: 5
            }
        );
        let status = build(None, Some(3), &validated, &at(10));
        assert_eq!(status.digest.as_deref(), Some(expected.digest.as_str()));
        assert_eq!(status.rule_count, 5);
        assert!(status.errors.is_empty());
        assert_eq!(status.observed_generation, Some(3));
        let types: Vec<(&str, &str)> = status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            [("Ready", "True"), ("Stalled", "False"), ("Valid", "True")]
        );
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
        // Built again from its own status: identical, so nothing is written twice.
        assert_eq!(build(Some(&status), Some(3), &validated, &at(99)), status);
    }

    #[test]
    fn an_invalid_policy_lists_every_error_with_its_location_and_stalls() {
        let bad = policy(serde_json::json!({"version": "1.0", "rules": [
            {"name": "late", "severity": ["Critical"], "action": "ignore", "expires": "not-a-date"},
            {"name": "up", "severity": ["High"], "action": "escalate"},
        ]}));
        let Validated::Invalid { reason, errors } = validate(&bad) else {
            panic!("an invalid policy validated");
        };
        assert_eq!(reason, "InvalidPolicy");
        assert!(errors.len() >= 2, "{errors:?}");
        assert!(
            errors.iter().any(|e| e.contains("rules[0].expires")),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e.contains("rules[1]")), "{errors:?}");
        let status = build(
            None,
            Some(3),
            &Validated::Invalid {
                reason,
                errors: errors.clone(),
            },
            &at(10),
        );
        assert_eq!(status.digest, None);
        assert_eq!(status.errors, errors);
        let stalled = status
            .conditions
            .iter()
            .find(|c| c.type_ == STALLED)
            .unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "InvalidPolicy")
        );
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.status, "False");
        assert!(ready.message.contains("rules["), "{}", ready.message);
        // Fixed: Ready again, the transition times move, the errors go.
        let fixed = build(
            Some(&status),
            Some(4),
            &validate(&policy(serde_json::json!({"version": "1.0", "rules": []}))),
            &at(20),
        );
        assert!(fixed.errors.is_empty());
        let ready = fixed.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.clone()),
            ("True", at(20))
        );
    }

    #[test]
    fn errors_are_bounded_as_the_crd_allows() {
        let errors: Vec<String> = (0..100)
            .map(|i| format!("rules[{i}].name: {}", "x".repeat(2000)))
            .collect();
        let status = build(
            None,
            Some(1),
            &Validated::Invalid {
                reason: "InvalidPolicy",
                errors,
            },
            &at(1),
        );
        assert_eq!(status.errors.len(), MAX_ERRORS);
        assert!(
            status.errors.last().unwrap().starts_with("… and 69 more"),
            "{:?}",
            status.errors.last()
        );
        assert!(status.errors.iter().all(|e| e.chars().count() <= 1024));
    }

    #[test]
    fn a_new_digest_is_reported_once() {
        let status = |digest: Option<&str>| PolicyStatus {
            digest: digest.map(str::to_string),
            rule_count: 2,
            ..PolicyStatus::default()
        };
        let first = changed_event("prod", None, &status(Some("sha256:a"))).unwrap();
        assert_eq!(first.kind, stella_notify::event::POLICY_CHANGED);
        assert_eq!(
            (first.subject.as_str(), first.namespace.as_str()),
            ("prod", "")
        );
        let again = changed_event("prod", None, &status(Some("sha256:a"))).unwrap();
        assert_eq!(again.id, first.id, "the same change is the same event");
        assert!(
            changed_event(
                "prod",
                Some(&status(Some("sha256:a"))),
                &status(Some("sha256:a"))
            )
            .is_none()
        );
        let next = changed_event(
            "prod",
            Some(&status(Some("sha256:a"))),
            &status(Some("sha256:b")),
        )
        .unwrap();
        assert_eq!(next.data.payload.attributes["previousDigest"], "sha256:a");
        assert!(
            changed_event("prod", Some(&status(Some("sha256:a"))), &status(None)).is_none(),
            "an invalid edit is not a new policy"
        );
    }
}
