//! The container images of a Pod or of anything that templates Pods (Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Job, CronJob), as admission requests and watches deliver them.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use serde_json::Value;

/// Errors reading a workload object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported kind {group}/{kind}: only Pods and pod-template owners carry images")]
    UnsupportedKind { group: String, kind: String },
    #[error("failed to decode {kind}: {source}")]
    Decode {
        kind: String,
        source: serde_json::Error,
    },
    #[error("{kind} has no pod template")]
    NoPodTemplate { kind: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which list of the pod spec a container is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContainerKind {
    Init,
    Container,
    Ephemeral,
}

/// One container's image.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerImage {
    pub kind: ContainerKind,
    /// Container name.
    pub container: String,
    /// Image reference exactly as written in the spec.
    pub image: String,
}

/// The pod spec of a workload object of kind `kind` in API group `group` (`""` for core).
pub fn pod_spec(group: &str, kind: &str, object: &Value) -> Result<PodSpec> {
    // Decoded as the current version of the kind: older served versions (batch/v1beta1
    // CronJobs on Kubernetes 1.20, say) carry the same pod template under the same path.
    fn decode<T: serde::de::DeserializeOwned + k8s_openapi::Resource>(
        kind: &str,
        object: &Value,
    ) -> Result<T> {
        let mut object = object.clone();
        if let Some(map) = object.as_object_mut()
            && map.contains_key("apiVersion")
        {
            map.insert("apiVersion".into(), Value::String(T::API_VERSION.into()));
        }
        T::deserialize(&object).map_err(|source| Error::Decode {
            kind: kind.to_string(),
            source,
        })
    }
    let missing = || Error::NoPodTemplate {
        kind: kind.to_string(),
    };
    let template_spec = |t: Option<k8s_openapi::api::core::v1::PodTemplateSpec>| {
        t.and_then(|t| t.spec).ok_or_else(missing)
    };
    match (group, kind) {
        ("", "Pod") => decode::<Pod>(kind, object)?.spec.ok_or_else(missing),
        ("apps", "Deployment") => {
            template_spec(Some(decode::<Deployment>(kind, object)?.spec.template))
        }
        ("apps", "StatefulSet") => {
            template_spec(Some(decode::<StatefulSet>(kind, object)?.spec.template))
        }
        ("apps", "DaemonSet") => {
            template_spec(Some(decode::<DaemonSet>(kind, object)?.spec.template))
        }
        ("apps", "ReplicaSet") => template_spec(decode::<ReplicaSet>(kind, object)?.spec.template),
        ("batch", "Job") => template_spec(decode::<Job>(kind, object)?.spec.map(|s| s.template)),
        ("batch", "CronJob") => template_spec(
            decode::<CronJob>(kind, object)?
                .spec
                .job_template
                .spec
                .map(|s| s.template),
        ),
        _ => Err(Error::UnsupportedKind {
            group: group.to_string(),
            kind: kind.to_string(),
        }),
    }
}

/// Every image of a pod spec: init containers, containers, ephemeral containers, in that
/// order, each list in spec order.
pub fn images(spec: &PodSpec) -> Vec<ContainerImage> {
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (ContainerKind::Init, &c.name, &c.image));
    let main = spec
        .containers
        .iter()
        .map(|c| (ContainerKind::Container, &c.name, &c.image));
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| (ContainerKind::Ephemeral, &c.name, &c.image));
    init.chain(main)
        .chain(ephemeral)
        .filter_map(|(kind, name, image)| {
            image
                .as_ref()
                .filter(|i| !i.trim().is_empty())
                .map(|image| ContainerImage {
                    kind,
                    container: name.clone(),
                    image: image.clone(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {
        "initContainers": [{"name": "migrate", "image": "registry.example.com/app/migrate:1.4"}],
        "containers": [
            {"name": "web", "image": "registry.example.com/app/web@sha256:aaaa"},
            {"name": "sidecar", "image": "envoyproxy/envoy:v1.31.0"}
        ]}})
    }

    #[test]
    fn an_older_served_version_reads_the_same_template() {
        let cronjob = json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template()}}}});
        let spec = pod_spec("batch", "CronJob", &cronjob).unwrap();
        assert_eq!(spec.containers.len(), 2);
        assert_eq!(spec.init_containers.unwrap()[0].name, "migrate");
    }

    #[test]
    fn every_pod_template_owner_yields_its_images_in_order() {
        let cases = [
            (
                "apps",
                "Deployment",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}}),
            ),
            (
                "apps",
                "StatefulSet",
                json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
                "spec": {"serviceName": "s", "selector": {"matchLabels": {"app": "web"}}, "template": template()}}),
            ),
            (
                "apps",
                "DaemonSet",
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}}),
            ),
            (
                "apps",
                "ReplicaSet",
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}}),
            ),
            (
                "batch",
                "Job",
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                "spec": {"template": template()}}),
            ),
            (
                "batch",
                "CronJob",
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
                "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template()}}}}),
            ),
            (
                "",
                "Pod",
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": template()["spec"]}),
            ),
        ];
        for (group, kind, object) in cases {
            let spec = pod_spec(group, kind, &object).unwrap_or_else(|e| panic!("{kind}: {e}"));
            let found: Vec<_> = images(&spec)
                .into_iter()
                .map(|i| (i.kind, i.container, i.image))
                .collect();
            assert_eq!(
                found,
                [
                    (
                        ContainerKind::Init,
                        "migrate".into(),
                        "registry.example.com/app/migrate:1.4".into()
                    ),
                    (
                        ContainerKind::Container,
                        "web".into(),
                        "registry.example.com/app/web@sha256:aaaa".into()
                    ),
                    (
                        ContainerKind::Container,
                        "sidecar".into(),
                        "envoyproxy/envoy:v1.31.0".into()
                    ),
                ],
                "{kind}"
            );
        }
    }

    #[test]
    fn ephemeral_containers_count_and_blank_images_do_not() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "app", "image": " "}],
            "ephemeralContainers": [{"name": "debugger", "image": "busybox:1.36"}]}});
        let spec = pod_spec("", "Pod", &pod).unwrap();
        let found = images(&spec);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, ContainerKind::Ephemeral);
    }

    #[test]
    fn garbage_and_other_kinds_are_clear_errors() {
        assert!(matches!(
            pod_spec("", "Service", &json!({})),
            Err(Error::UnsupportedKind { .. })
        ));
        assert!(matches!(
            pod_spec("", "Pod", &json!({"spec": {"containers": "nope"}})),
            Err(Error::Decode { .. })
        ));
        assert!(matches!(
            pod_spec("", "Pod", &json!({"metadata": {}})),
            Err(Error::NoPodTemplate { .. })
        ));
        assert!(matches!(
            pod_spec(
                "batch",
                "CronJob",
                &json!({"spec": {"schedule": "x", "jobTemplate": {}}})
            ),
            Err(Error::NoPodTemplate { .. })
        ));
        let wide = json!({"spec": {"template": {"spec": {"containers": vec![json!(7); 100_000]}}}});
        assert!(matches!(
            pod_spec("apps", "Deployment", &wide),
            Err(Error::Decode { .. })
        ));
    }
}
