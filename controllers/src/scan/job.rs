//! The worker Job (and the pull-credentials Secret mounted into it) for one attempt of one
//! Scan: pure builders, so what the cluster runs is pinned by snapshot tests.

use super::plan::Inputs;
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvFromSource, EnvVar, KeyToPath,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret,
    SecretEnvSource, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use stella_crds::scan::v1alpha1::Scan;

/// Label on every worker Job and its pods (with `app.kubernetes.io/managed-by`).
pub const COMPONENT: &str = "worker";
pub const MANAGED_BY: &str = "stella-operator";
pub const LABEL_SCAN_NAMESPACE: &str = "stella-ops.org/scan-namespace";
pub const LABEL_SCAN_NAME: &str = "stella-ops.org/scan-name";
pub const LABEL_SCAN_UID: &str = "stella-ops.org/scan-uid";
/// `namespace/name` of the Job's Scan. An annotation, because a label value holds at most 63
/// characters and a discovered Scan's name (`sha256-<hex>`) has 71: the Job watch maps a Job to
/// its Scan by this.
pub const ANNOTATION_SCAN: &str = "stella-ops.org/scan";
/// Selects the worker Jobs the operator created.
pub const WORKER_SELECTOR: &str =
    "app.kubernetes.io/component=worker,app.kubernetes.io/managed-by=stella-operator";
/// Where the pull credentials are mounted in the worker.
pub const REGISTRY_AUTH_DIR: &str = "/var/run/secrets/stella/registry";
const DOCKERCONFIGJSON: &str = ".dockerconfigjson";

/// How worker Jobs are shaped (the operator's flags / the `stella-worker` ConfigMap).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Namespace the Jobs run in (the operator's own).
    pub namespace: String,
    pub image: String,
    pub service_account: String,
    pub backoff_limit: i32,
    pub active_deadline_seconds: i64,
    pub ttl_seconds_after_finished: i32,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    /// Secret with the storage settings (`STELLA_CATALOG_URL`, `STELLA_OBJECT_STORE`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), passed as environment.
    pub storage_secret: Option<String>,
}

/// What one attempt scans.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt<'a> {
    pub scan: &'a Scan,
    /// `repository@sha256:…`: the worker scans exactly the resolved digest.
    pub pinned_image: String,
    pub attempt: u32,
    /// The inputs the attempt's result will be pinned to.
    pub inputs: &'a Inputs,
    /// The policy spec as JSON text, when the Scan names one.
    pub policy: Option<String>,
    /// Whether pull credentials are mounted (a Secret is created beside the Job).
    pub credentials: bool,
}

/// `stella-scan-<hash>`: stable per Scan uid, generation, pinned image, inputs and attempt, so
/// a reconcile that crashed between creating the Job and writing the status finds the same Job
/// again, while a rescan (a new digest, feed snapshot, policy, analyzer or spec) is a new Job —
/// never the finished Job of the run before, which stays until its TTL.
pub fn job_name(attempt: &Attempt<'_>) -> String {
    let scan = attempt.scan;
    let uid = scan.metadata.uid.as_deref().unwrap_or_default();
    let generation = scan.metadata.generation.unwrap_or_default();
    let Inputs {
        analyzer_version,
        feed_snapshot,
        policy_digest,
    } = attempt.inputs;
    let key = format!(
        "{uid}/{generation}/{}/{analyzer_version}/{feed_snapshot}/{}/{}",
        attempt.pinned_image,
        policy_digest.as_deref().unwrap_or_default(),
        attempt.attempt
    );
    format!(
        "stella-scan-{}",
        &hex::encode(Sha256::digest(key.as_bytes()))[..16]
    )
}

/// The Scan a worker Job belongs to, for the Job watch: the [`ANNOTATION_SCAN`] annotation, or
/// the labels of Jobs an earlier version made.
pub fn scan_of(job: &Job) -> Option<(String, String)> {
    let metadata = &job.metadata;
    if let Some((namespace, name)) = metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_SCAN))
        .and_then(|v| v.split_once('/'))
        .filter(|(namespace, name)| !namespace.is_empty() && !name.is_empty())
    {
        return Some((namespace.to_string(), name.to_string()));
    }
    let labels = metadata.labels.as_ref()?;
    Some((
        labels.get(LABEL_SCAN_NAMESPACE)?.clone(),
        labels.get(LABEL_SCAN_NAME)?.clone(),
    ))
}

/// The name of the credentials Secret of a Job.
pub fn secret_name(job_name: &str) -> String {
    format!("{job_name}-registry")
}

fn labels(scan: &Scan) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "stella-worker".to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            COMPONENT.to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
    ]);
    for (key, value) in [
        (LABEL_SCAN_NAMESPACE, scan.metadata.namespace.as_deref()),
        (LABEL_SCAN_NAME, scan.metadata.name.as_deref()),
        (LABEL_SCAN_UID, scan.metadata.uid.as_deref()),
    ] {
        if let Some(value) = value.filter(|v| v.len() <= 63) {
            labels.insert(key.to_string(), value.to_string());
        }
    }
    labels
}

/// Most workloads a Scan's events name (the rest still run the image; the annotation lists
/// them all).
pub const MAX_EVENT_WORKLOADS: usize = 200;

/// Whether `scan` asks for its result to be signed (`spec.attest.enabled`).
pub fn attests(scan: &Scan) -> bool {
    scan.spec.attest.as_ref().is_some_and(|a| a.enabled)
}

/// The workloads a discovered Scan's annotation lists (`<namespace>/<Kind>/<name>`), at most
/// [`MAX_EVENT_WORKLOADS`]; none for a Scan a user wrote.
pub fn workloads(scan: &Scan) -> Vec<String> {
    use kube::ResourceExt;
    if !scan
        .labels()
        .contains_key(stella_crds::discovered::LABEL_DISCOVERED)
    {
        return Vec::new();
    }
    scan.annotations()
        .get(stella_crds::discovered::ANNOTATION_WORKLOADS)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|w| w.split('/').count() == 3 && w.split('/').all(|p| !p.is_empty()))
                .take(MAX_EVENT_WORKLOADS)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The worker Job. Owned by the Scan when both live in the same namespace; otherwise the
/// Scan's finalizer deletes it.
pub fn build(attempt: &Attempt<'_>, settings: &WorkerSettings) -> Job {
    let scan = attempt.scan;
    let name = job_name(attempt);
    let owner = (scan.metadata.namespace.as_deref() == Some(settings.namespace.as_str()))
        .then(|| owner_reference(scan))
        .flatten();
    let mut args = vec![
        "--image".to_string(),
        attempt.pinned_image.clone(),
        "--run-id".to_string(),
        name.clone(),
        "--platform".to_string(),
        scan.spec
            .platform
            .clone()
            .unwrap_or_else(|| "linux/amd64".into()),
    ];
    if let Some(namespace) = &scan.metadata.namespace {
        args.extend(["--namespace".to_string(), namespace.clone()]);
    }
    for workload in workloads(scan) {
        args.extend(["--workload".to_string(), workload]);
    }
    if scan.spec.insecure_registry {
        args.push("--insecure-registry".into());
    }
    if attests(scan) {
        // The worker writes the statements; the operator signs them.
        args.push("--attest".into());
    }
    let mut mounts = vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    }];
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("20Gi".into())),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if attempt.credentials {
        args.extend([
            "--registry-auth-file".to_string(),
            format!("{REGISTRY_AUTH_DIR}/{DOCKERCONFIGJSON}"),
        ]);
        mounts.push(VolumeMount {
            name: "registry".into(),
            mount_path: REGISTRY_AUTH_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(Volume {
            name: "registry".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret_name(&name)),
                items: Some(vec![KeyToPath {
                    key: DOCKERCONFIGJSON.into(),
                    path: DOCKERCONFIGJSON.into(),
                    mode: Some(0o400),
                    ..Default::default()
                }]),
                default_mode: Some(0o400),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let mut env = vec![EnvVar {
        name: "STELLA_DATA_DIR".into(),
        value: Some("/tmp/stella".into()),
        ..Default::default()
    }];
    if let Some(policy) = &attempt.policy {
        env.push(EnvVar {
            name: "STELLA_POLICY".into(),
            value: Some(policy.clone()),
            ..Default::default()
        });
    }
    if let Some(trust) = &scan.spec.trust_build_time_sboms {
        // Public keys only: nothing secret reaches the Job.
        env.push(EnvVar {
            name: "STELLA_TRUSTED_SBOM_KEYS".into(),
            value: Some(trust.public_keys.join("\n")),
            ..Default::default()
        });
    }
    let quantities = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.to_string())),
            ("memory".to_string(), Quantity(memory.to_string())),
        ])
    };
    let container = Container {
        name: "worker".into(),
        image: Some(settings.image.clone()),
        args: Some(args),
        env: Some(env),
        env_from: settings.storage_secret.as_ref().map(|name| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: name.clone(),
                    optional: Some(true),
                }),
                ..Default::default()
            }]
        }),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&settings.cpu_request, &settings.memory_request)),
            limits: Some(quantities(&settings.cpu_limit, &settings.memory_limit)),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let labels = labels(scan);
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([
                (
                    "stella-ops.org/image".to_string(),
                    attempt.pinned_image.clone(),
                ),
                (
                    ANNOTATION_SCAN.to_string(),
                    format!(
                        "{}/{}",
                        scan.metadata.namespace.as_deref().unwrap_or_default(),
                        scan.metadata.name.as_deref().unwrap_or_default()
                    ),
                ),
            ])),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(settings.backoff_limit),
            active_deadline_seconds: Some(settings.active_deadline_seconds),
            ttl_seconds_after_finished: Some(settings.ttl_seconds_after_finished),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(settings.service_account.clone()),
                    automount_service_account_token: Some(false),
                    restart_policy: Some("Never".into()),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        run_as_group: Some(65532),
                        fs_group: Some(65532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pull credentials of a Job: the referenced `imagePullSecrets` merged into one
/// `kubernetes.io/dockerconfigjson` (later secrets win per registry), owned by the Job so it
/// goes when the Job goes.
pub fn credentials_secret(job: &Job, merged_config: Vec<u8>) -> Secret {
    let name = job.metadata.name.clone().unwrap_or_default();
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&name)),
            namespace: job.metadata.namespace.clone(),
            labels: job.metadata.labels.clone(),
            owner_references: job.metadata.uid.as_ref().map(|uid| {
                vec![OwnerReference {
                    api_version: "batch/v1".into(),
                    kind: "Job".into(),
                    name,
                    uid: uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(
            DOCKERCONFIGJSON.to_string(),
            ByteString(merged_config),
        )])),
        ..Default::default()
    }
}

/// A pull secret whose payload is not a docker config.
#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    #[error("{origin}: not a docker config: {source}")]
    NotJson {
        origin: String,
        source: serde_json::Error,
    },
    #[error("{origin}: \"auths\" is not an object")]
    AuthsNotAnObject { origin: String },
    #[error("{origin}: not a docker config object")]
    NotAnObject { origin: String },
}

/// Merges `kubernetes.io/dockerconfigjson` (or legacy `.dockercfg`) payloads into one
/// `{"auths": …}` document; later payloads win per registry.
pub fn merge_docker_configs(payloads: &[(&str, &[u8])]) -> Result<Vec<u8>, DockerConfigError> {
    let mut auths = serde_json::Map::new();
    for (origin, bytes) in payloads {
        let origin = origin.to_string();
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|source| DockerConfigError::NotJson {
                origin: origin.clone(),
                source,
            })?;
        let entries = match value.get("auths") {
            Some(serde_json::Value::Object(map)) => map.clone(),
            Some(_) => return Err(DockerConfigError::AuthsNotAnObject { origin }),
            None => match value {
                serde_json::Value::Object(map) => map,
                _ => return Err(DockerConfigError::NotAnObject { origin }),
            },
        };
        for (host, entry) in entries {
            auths.insert(host, entry);
        }
    }
    let mut document = serde_json::Map::new();
    document.insert("auths".into(), serde_json::Value::Object(auths));
    Ok(serde_json::to_vec(&serde_json::Value::Object(document))
        .expect("a JSON object of JSON values serialises"))
}

fn owner_reference(scan: &Scan) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "stella-ops.org/v1alpha1".into(),
        kind: "Scan".into(),
        name: scan.metadata.name.clone()?,
        uid: scan.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::fixtures::{observed, worker_settings};

    fn scan(namespace: &str) -> Scan {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": "web", "namespace": namespace, "uid": "7c0e5a3e-0000-4000-8000-000000000001"},
            "spec": {"image": "registry.example/shop/web:1.0", "platform": "linux/arm64", "insecureRegistry": true},
        }))
        .unwrap()
    }

    /// Compares with `src/scan/testdata/<name>`; `STELLA_UPDATE_GOLDEN=1` rewrites it.
    fn golden(name: &str, value: &serde_json::Value) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/scan/testdata")
            .join(name);
        let text = serde_json::to_string_pretty(value).unwrap() + "\n";
        if std::env::var_os("STELLA_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (STELLA_UPDATE_GOLDEN=1 writes it)", path.display())
        });
        assert_eq!(text, expected, "{} changed", path.display());
    }

    #[test]
    fn worker_job_snapshot() {
        let scan = scan("stella-system");
        let attempt = Attempt {
            scan: &scan,
            pinned_image: "registry.example/shop/web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            attempt: 2,
            inputs: &observed().inputs,
            policy: Some("{\"rules\":[]}".into()),
            credentials: true,
        };
        let job = build(&attempt, &worker_settings("stella-system"));
        golden("worker-job.json", &serde_json::to_value(&job).unwrap());
        assert_eq!(job.metadata.name, Some(job_name(&attempt)));
    }

    #[test]
    fn a_job_name_is_stable_per_run_and_new_for_each_rescan_or_retry() {
        let scan = scan("stella-system");
        let inputs = observed().inputs;
        let attempt = Attempt {
            scan: &scan,
            pinned_image: "registry.example/shop/web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            attempt: 1,
            inputs: &inputs,
            policy: None,
            credentials: false,
        };
        // A reconcile that crashed before writing the status finds the same Job again.
        assert_eq!(job_name(&attempt), job_name(&attempt.clone()));
        let name = job_name(&attempt);
        assert!(
            name.starts_with("stella-scan-") && name.len() == 28,
            "{name}"
        );
        // A retry, a new digest, new feeds, a new policy, a new analyzer, an edited spec: each
        // a new Job, never the finished Job of the run before.
        let retry = Attempt {
            attempt: 2,
            ..attempt.clone()
        };
        let digest = Attempt {
            pinned_image: "registry.example/shop/web@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
            ..attempt.clone()
        };
        let feeds = Inputs {
            feed_snapshot: "sha256:new".into(),
            ..inputs.clone()
        };
        let policy = Inputs {
            policy_digest: None,
            ..inputs.clone()
        };
        let analyzer = Inputs {
            analyzer_version: "a2".into(),
            ..inputs.clone()
        };
        let mut edited = scan.clone();
        edited.metadata.generation = Some(2);
        let names = [
            job_name(&retry),
            job_name(&digest),
            job_name(&Attempt {
                inputs: &feeds,
                ..attempt.clone()
            }),
            job_name(&Attempt {
                inputs: &policy,
                ..attempt.clone()
            }),
            job_name(&Attempt {
                inputs: &analyzer,
                ..attempt.clone()
            }),
            job_name(&Attempt {
                scan: &edited,
                ..attempt.clone()
            }),
        ];
        for other in &names {
            assert_ne!(other, &name);
        }
        assert_eq!(
            names
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            names.len()
        );
    }

    #[test]
    fn a_job_maps_back_to_its_scan_even_when_the_name_cannot_be_a_label() {
        // A discovered Scan: `sha256-<hex>`, 71 characters, too long for a label value.
        let mut discovered = scan("stella-system");
        let long = format!("sha256-{}", "a".repeat(64));
        discovered.metadata.name = Some(long.clone());
        let inputs = observed().inputs;
        let job = build(
            &Attempt {
                scan: &discovered,
                pinned_image: "registry.example/shop/web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
                attempt: 1,
                inputs: &inputs,
                policy: None,
                credentials: false,
            },
            &worker_settings("stella-system"),
        );
        assert!(
            !job.metadata
                .labels
                .as_ref()
                .unwrap()
                .contains_key(LABEL_SCAN_NAME)
        );
        assert_eq!(scan_of(&job), Some(("stella-system".into(), long)));
        // A Job an earlier version made: labels only.
        let mut labelled = job.clone();
        labelled.metadata.annotations = None;
        assert_eq!(scan_of(&labelled), None);
        labelled.metadata.labels.as_mut().unwrap().extend([
            (LABEL_SCAN_NAMESPACE.to_string(), "shop".to_string()),
            (LABEL_SCAN_NAME.to_string(), "web".to_string()),
        ]);
        assert_eq!(scan_of(&labelled), Some(("shop".into(), "web".into())));
    }

    #[test]
    fn jobs_of_scans_elsewhere_carry_labels_not_owner_references() {
        let scan = scan("shop");
        let attempt = Attempt {
            scan: &scan,
            pinned_image: "registry.example/shop/web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            attempt: 1,
            inputs: &observed().inputs,
            policy: None,
            credentials: false,
        };
        let job = build(&attempt, &worker_settings("stella-system"));
        assert!(
            job.metadata.owner_references.is_none(),
            "no cross-namespace owner"
        );
        let labels = job.metadata.labels.unwrap();
        assert_eq!(labels[LABEL_SCAN_NAMESPACE], "shop");
        assert_eq!(labels[LABEL_SCAN_NAME], "web");
        let pod = job.spec.unwrap().template.spec.unwrap();
        let args = pod.containers[0].args.clone().unwrap();
        assert!(
            !args.iter().any(|a| a.contains("registry-auth")),
            "no credentials, no mount"
        );
        assert_eq!(pod.volumes.unwrap().len(), 1);
    }

    #[test]
    fn pull_secrets_merge_later_wins_and_garbage_is_refused() {
        let a = br#"{"auths":{"r.example":{"auth":"YTpi"},"other.example":{"auth":"eDp5"}}}"#;
        let b = br#"{"r.example":{"auth":"Yzpk"}}"#; // legacy .dockercfg
        let merged: serde_json::Value =
            serde_json::from_slice(&merge_docker_configs(&[("ns/a", a), ("ns/b", b)]).unwrap())
                .unwrap();
        assert_eq!(merged["auths"]["r.example"]["auth"], "Yzpk");
        assert_eq!(merged["auths"]["other.example"]["auth"], "eDp5");
        for garbage in [&b"not json"[..], b"[1,2]", br#"{"auths":[]}"#, b""] {
            let error = merge_docker_configs(&[("ns/bad", garbage)])
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("ns/bad: "), "{error}");
        }
    }
}
