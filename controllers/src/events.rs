//! Events about cluster-scoped objects (Policy, FeedSource): one way to publish them.

use kube::runtime::events::{Event, Recorder, Reporter};

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
