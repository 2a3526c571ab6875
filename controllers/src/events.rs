//! What the controllers of cluster-scoped kinds (Policy, FeedSource, Schedule) share: one way
//! to publish an Event about such an object, one status write by server-side apply, one
//! backoff after a failed reconcile, and one way to bound a text.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use std::time::Duration;

/// Longest Event note kept.
pub const MAX_NOTE_CHARS: usize = 1000;

/// Publishes `event` about the cluster-scoped object `reference`. Kubernetes before 1.22
/// refuses an event about a cluster-scoped object unless the reference names the event's
/// namespace (`default`): then it is said there. A failure is logged, never an error (an
/// Event is a notice, not state).
pub async fn publish_cluster_scoped(
    client: &kube::Client,
    reporter: &Reporter,
    event: &Event,
    reference: k8s_openapi::api::core::v1::ObjectReference,
) {
    let recorder = Recorder::new(client.clone(), reporter.clone());
    let published = match recorder.publish(event, &reference).await {
        Err(kube::Error::Api(status)) if status.code == 422 => {
            let reference = k8s_openapi::api::core::v1::ObjectReference {
                namespace: Some("default".into()),
                ..reference
            };
            recorder.publish(event, &reference).await
        }
        other => other,
    };
    if let Err(error) = published {
        tracing::warn!(%error, reason = %event.reason, "failed to record an event");
    }
}

/// [`publish_cluster_scoped`] of an Event with this type, reason, action and note (the note
/// cut to [`MAX_NOTE_CHARS`]).
pub async fn publish_note(
    client: &kube::Client,
    reporter: &Reporter,
    reference: k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(truncate(note, MAX_NOTE_CHARS)),
        action: action.to_string(),
        secondary: None,
    };
    publish_cluster_scoped(client, reporter, &event, reference).await;
}

/// Writes `status` of the cluster-scoped `K` named `name` by server-side apply as `manager`
/// (forced: the controller owns its status). Untyped, so an object our types cannot read (an
/// `InvalidObject`) can still be told so.
pub async fn apply_status<K>(
    client: &kube::Client,
    manager: &str,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = ()>,
{
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    patch_status(&api, &resource, manager, name, status).await
}

/// [`apply_status`] of the namespaced `K` named `name` in `namespace`.
pub async fn apply_namespaced_status<K>(
    client: &kube::Client,
    manager: &str,
    namespace: &str,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = ()>,
{
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    patch_status(&api, &resource, manager, name, status).await
}

async fn patch_status(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
    manager: &str,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(drop)
}

/// What `error_policy` answers after a failed reconcile of a cluster-scoped object (the API
/// server or the catalog failed): try again after a jittered backoff.
pub fn retry_after_failure() -> Action {
    Action::requeue(
        crate::scan::error::backoff(4, crate::scan::error::jitter()).max(Duration::from_secs(1)),
    )
}

/// `text` cut to at most `max` characters (on a character boundary).
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_on_character_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("ééé", 2), "éé");
        assert_eq!(truncate("", 0), "");
    }
}
