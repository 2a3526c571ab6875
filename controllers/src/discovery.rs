//! Workload discovery: watches Pods in the selected namespaces, resolves each to the workload
//! that runs it (ReplicaSet → Deployment, Job → CronJob, StatefulSet, DaemonSet…), and keeps
//! one Scan per distinct image digest cluster-wide in the operator's namespace — named from
//! the digest, labelled with the workloads that run it. Scans of images no longer running are
//! collected after a TTL. Pure selection and naming here; the loop at the bottom does the I/O.

use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use stella_crds::discovered::{ANNOTATION_PULL_SECRETS, Discovered, LABEL_DISCOVERED};
pub use stella_crds::discovered::{
    ANNOTATION_UNUSED_SINCE, ANNOTATION_WORKLOADS, OPT_OUT_LABEL, WORKLOAD_LABEL_PREFIX, Workload,
    scan_name,
};
use stella_crds::scan::v1alpha1::Scan;

const MANAGER: &str = "stella-discovery";

/// Which namespaces are watched and how discovered Scans are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Namespace the Scans are created in (the operator's own).
    pub namespace: String,
    /// Namespace globs (`*`, `?`) to include; empty means all.
    pub include: Vec<String>,
    /// Namespace globs to leave out (wins over `include`).
    pub exclude: Vec<String>,
    /// Collect a discovered Scan this long after its image stopped running.
    pub gc_ttl: Duration,
    /// Policy for discovered Scans.
    pub policy_ref: Option<String>,
    /// Registries (host[:port]) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
}

/// The controller owner of an object: (kind, name).
pub type Owner = (String, String);
/// Answers "who owns (namespace, kind, name)?".
pub type OwnerOf<'a> = &'a dyn Fn(&str, &str, &str) -> Option<Owner>;
/// Known owners by (namespace, kind, name); `None`: looked up, has none.
type Owners = HashMap<Workload, Option<Owner>>;

/// One image digest running in the cluster, and who runs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Running {
    /// `repository@sha256:…`.
    pub image: String,
    pub workloads: BTreeSet<Workload>,
    /// Pull secrets of the pods running it: (namespace, name).
    pub pull_secrets: BTreeSet<(String, String)>,
}

/// `*` matches any run of characters, `?` one character.
pub use stella_model::glob;

fn opted_out(labels: &BTreeMap<String, String>) -> bool {
    labels
        .get(OPT_OUT_LABEL)
        .is_some_and(|v| matches!(v.as_str(), "false" | "disabled" | "off"))
}

/// Whether a namespace is watched.
pub fn namespace_selected(
    settings: &Settings,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    (settings.include.is_empty() || settings.include.iter().any(|g| glob(g, name)))
        && !settings.exclude.iter().any(|g| glob(g, name))
        && !opted_out(labels)
}

/// The digest-pinned images a pod runs: from its container statuses' `imageID` (what the node
/// actually pulled), else from a spec image already pinned by digest.
pub fn pod_images(pod: &Pod) -> Vec<(String, String)> {
    let mut found = BTreeMap::new();
    let status = pod.status.as_ref();
    for statuses in [
        status.and_then(|s| s.init_container_statuses.as_ref()),
        status.and_then(|s| s.container_statuses.as_ref()),
        status.and_then(|s| s.ephemeral_container_statuses.as_ref()),
    ]
    .into_iter()
    .flatten()
    {
        for s in statuses {
            if let Some(pinned) = pinned(&s.image_id).or_else(|| pinned(&s.image)) {
                found.insert(pinned.0, pinned.1);
            }
        }
    }
    if let Some(spec) = &pod.spec {
        for image in spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .filter_map(|c| c.image.as_deref())
        {
            if let Some((digest, image)) = pinned(image) {
                found.entry(digest).or_insert(image);
            }
        }
    }
    found.into_iter().collect()
}

/// (digest, `repository@digest`) of a reference pinned by digest, with runtime prefixes
/// (`docker-pullable://`, `docker://`) removed.
fn pinned(reference: &str) -> Option<(String, String)> {
    let reference = reference
        .strip_prefix("docker-pullable://")
        .or_else(|| reference.strip_prefix("docker://"))
        .unwrap_or(reference);
    let parsed = stella_acquire::Reference::parse(reference).ok()?;
    let digest = parsed.digest.as_ref()?.to_string();
    scan_name(&digest)?;
    Some((
        digest.clone(),
        format!("{}@{digest}", parsed.repository_url()),
    ))
}

/// The workload behind a pod: its controller owner, one level further for ReplicaSets owned
/// by a Deployment and Jobs owned by a CronJob (`owner_of` answers those lookups).
pub fn workload_of(pod: &Pod, owner_of: OwnerOf<'_>) -> Workload {
    let namespace = pod.namespace().unwrap_or_default();
    let owner = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| pod.owner_references().first());
    let Some(owner) = owner else {
        return (namespace, "Pod".into(), pod.name_any());
    };
    let (mut kind, mut name) = (owner.kind.clone(), owner.name.clone());
    if matches!(kind.as_str(), "ReplicaSet" | "Job")
        && let Some((parent_kind, parent_name)) = owner_of(&namespace, &kind, &name)
    {
        kind = parent_kind;
        name = parent_name;
    }
    (namespace, kind, name)
}

/// Images running in selected namespaces, by digest.
pub fn running(
    settings: &Settings,
    pods: &[Arc<Pod>],
    namespace_labels: &dyn Fn(&str) -> BTreeMap<String, String>,
    owner_of: OwnerOf<'_>,
) -> BTreeMap<String, Running> {
    let mut by_digest: BTreeMap<String, Running> = BTreeMap::new();
    for pod in pods {
        let namespace = pod.namespace().unwrap_or_default();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed"))
            || pod.metadata.deletion_timestamp.is_some()
            || opted_out(pod.labels())
            || !namespace_selected(settings, &namespace, &namespace_labels(&namespace))
        {
            continue;
        }
        let workload = workload_of(pod, owner_of);
        let secrets: Vec<(String, String)> = pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.as_ref())
            .into_iter()
            .flatten()
            .filter(|r| !r.name.is_empty())
            .map(|r| (namespace.clone(), r.name.clone()))
            .collect();
        for (digest, image) in pod_images(pod) {
            let entry = by_digest.entry(digest).or_insert_with(|| Running {
                image,
                ..Default::default()
            });
            entry.workloads.insert(workload.clone());
            entry.pull_secrets.extend(secrets.iter().cloned());
        }
    }
    by_digest
}

/// The label key of a workload (`workload.stella-ops.org/deployment.web`), when it fits.
/// The Scan discovery keeps for a running digest (what it applies; other fields are the
/// controller's or the user's).
pub fn desired_scan(settings: &Settings, digest: &str, running: &Running) -> Option<Scan> {
    let registry = stella_acquire::Reference::parse(&running.image)
        .ok()?
        .registry;
    Discovered {
        namespace: &settings.namespace,
        image: &running.image,
        digest,
        workloads: &running.workloads,
        pull_secrets: &running.pull_secrets,
        policy_ref: settings.policy_ref.as_deref(),
        insecure_registry: settings.insecure_registries.iter().any(|r| r == &registry),
    }
    .scan()
}

/// What collection does to a discovered Scan whose image is not running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collect {
    /// Running again (or still): drop the unused-since mark.
    Unmark,
    /// Just stopped running: mark it with this time.
    Mark(String),
    /// Unused for longer than the TTL.
    Delete,
    Keep,
}

/// The collection step for a discovered Scan at `now` (RFC 3339).
pub fn collect(
    scan: &Scan,
    running: bool,
    now: k8s_openapi::jiff::Timestamp,
    ttl: Duration,
) -> Collect {
    let since = scan.annotations().get(ANNOTATION_UNUSED_SINCE);
    match (running, since) {
        (true, Some(_)) => Collect::Unmark,
        (true, None) => Collect::Keep,
        (false, None) => Collect::Mark(now.to_string()),
        (false, Some(since)) => match since.parse::<k8s_openapi::jiff::Timestamp>() {
            Ok(since) if now.as_second() - since.as_second() >= ttl.as_secs() as i64 => {
                Collect::Delete
            }
            Ok(_) => Collect::Keep,
            // An unreadable mark is replaced by a fresh one.
            Err(_) => Collect::Mark(now.to_string()),
        },
    }
}

/// Runs discovery until `shutdown` resolves: a sync shortly after pods change, collection
/// every `gc_every`.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    gc_every: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (ns_store, ns_writer) = reflector::store::<Namespace>();
    let pods = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .applied_objects();
    let namespaces = watcher(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(ns_writer)
    .applied_objects();
    let (changed_tx, mut changed_rx) = tokio::sync::mpsc::channel::<()>(1);
    let feed = {
        let changed_tx = changed_tx.clone();
        async move {
            let mut events = std::pin::pin!(futures::stream::select(
                pods.map(|r| r.map(|_| ())),
                namespaces.map(|r| r.map(|_| ())),
            ));
            while let Some(event) = events.next().await {
                if let Err(error) = event {
                    tracing::warn!(%error, "discovery watch error");
                }
                let _ = changed_tx.try_send(());
            }
        }
    };
    let feed = tokio::spawn(feed);
    let mut owners: Owners = HashMap::new();
    let mut gc = tokio::time::interval(gc_every);
    gc.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut ready = false;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(()) = changed_rx.recv() => {
                // Debounce bursts (a rollout changes many pods at once).
                tokio::time::sleep(Duration::from_millis(500)).await;
                while changed_rx.try_recv().is_ok() {}
                if !ready {
                    ready = pod_store.wait_until_ready().await.is_ok() && ns_store.wait_until_ready().await.is_ok();
                }
                if let Err(error) = sync(&client, &settings, &metrics, &pod_store, &ns_store, &mut owners, false).await {
                    tracing::warn!(%error, "discovery sync failed");
                    metrics.failed("discovery", "Kube");
                }
            }
            _ = gc.tick() => {
                if ready && let Err(error) = sync(&client, &settings, &metrics, &pod_store, &ns_store, &mut owners, true).await {
                    tracing::warn!(%error, "discovery collection failed");
                    metrics.failed("discovery", "Kube");
                }
            }
        }
    }
    feed.abort();
}

/// Resolves ReplicaSet → Deployment and Job → CronJob owners (cached per object).
async fn owner_lookup(
    client: &Client,
    owners: &mut Owners,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Option<(String, String)> {
    let key = (namespace.to_string(), kind.to_string(), name.to_string());
    if let Some(known) = owners.get(&key) {
        return known.clone();
    }
    let metadata = match kind {
        "ReplicaSet" => {
            Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(client.clone(), namespace)
                .get_metadata_opt(name)
                .await
                .ok()
                .flatten()
                .map(|m| m.metadata)
        }
        "Job" => Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), namespace)
            .get_metadata_opt(name)
            .await
            .ok()
            .flatten()
            .map(|m| m.metadata),
        _ => None,
    };
    let parent = metadata.and_then(|m| {
        m.owner_references?
            .into_iter()
            .find(|o| o.controller == Some(true))
            .map(|o| (o.kind, o.name))
    });
    if owners.len() > 50_000 {
        owners.clear();
    }
    owners.insert(key, parent.clone());
    parent
}

async fn sync(
    client: &Client,
    settings: &Settings,
    metrics: &Metrics,
    pods: &Store<Pod>,
    namespaces: &Store<Namespace>,
    owners: &mut Owners,
    collect_unused: bool,
) -> Result<(), kube::Error> {
    let started = std::time::Instant::now();
    let pods = pods.state();
    // Owner lookups first (async), then the pure selection over the answers.
    for pod in &pods {
        for owner in pod.owner_references() {
            if matches!(owner.kind.as_str(), "ReplicaSet" | "Job") {
                owner_lookup(
                    client,
                    owners,
                    &pod.namespace().unwrap_or_default(),
                    &owner.kind,
                    &owner.name,
                )
                .await;
            }
        }
    }
    let namespace_labels = |name: &str| {
        namespaces
            .get(&reflector::ObjectRef::new(name))
            .map(|ns| ns.labels().clone())
            .unwrap_or_default()
    };
    let owner_of = |ns: &str, kind: &str, name: &str| {
        owners
            .get(&(ns.to_string(), kind.to_string(), name.to_string()))
            .cloned()
            .flatten()
    };
    let running = running(settings, &pods, &namespace_labels, &owner_of);

    let scans: Api<Scan> = Api::namespaced(client.clone(), &settings.namespace);
    let existing = scans
        .list(&ListParams::default().labels(&format!("{LABEL_DISCOVERED}=true")))
        .await?;
    let existing: BTreeMap<String, Scan> = existing
        .items
        .into_iter()
        .map(|s| (s.name_any(), s))
        .collect();
    for (digest, image) in &running {
        let Some(wanted) = desired_scan(settings, digest, image) else {
            continue;
        };
        let name = wanted.name_any();
        let current = existing.get(&name);
        let up_to_date = current.is_some_and(|c| {
            c.spec.image == wanted.spec.image
                && c.spec.policy_ref == wanted.spec.policy_ref
                && c.spec.insecure_registry == wanted.spec.insecure_registry
                && c.labels() == wanted.labels()
                && c.annotations().get(ANNOTATION_WORKLOADS)
                    == wanted.annotations().get(ANNOTATION_WORKLOADS)
                && c.annotations().get(ANNOTATION_PULL_SECRETS)
                    == wanted.annotations().get(ANNOTATION_PULL_SECRETS)
        });
        if let Some(current) = current
            && collect(
                current,
                true,
                k8s_openapi::jiff::Timestamp::now(),
                settings.gc_ttl,
            ) == Collect::Unmark
        {
            let patch =
                serde_json::json!({"metadata": {"annotations": {ANNOTATION_UNUSED_SINCE: null}}});
            scans
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        if up_to_date {
            continue;
        }
        let mut patch = serde_json::to_value(&wanted).unwrap_or_default();
        patch["apiVersion"] = "stella-ops.org/v1alpha1".into();
        patch["kind"] = "Scan".into();
        if let Some(object) = patch.as_object_mut() {
            object.remove("status");
        }
        scans
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        metrics.discovery(if current.is_some() {
            "updated"
        } else {
            "created"
        });
        tracing::info!(scan = %name, image = %image.image, workloads = image.workloads.len(), "discovered image");
    }
    if collect_unused {
        let now = k8s_openapi::jiff::Timestamp::now();
        for (name, scan) in &existing {
            let is_running = scan
                .name_any()
                .strip_prefix("sha256-")
                .is_some_and(|hex| running.contains_key(&format!("sha256:{hex}")));
            match collect(scan, is_running, now, settings.gc_ttl) {
                Collect::Keep | Collect::Unmark => {}
                Collect::Mark(at) => {
                    let patch = serde_json::json!({"metadata": {"annotations": {ANNOTATION_UNUSED_SINCE: at}}});
                    scans
                        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                }
                Collect::Delete => {
                    match scans.delete(name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(status)) if status.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                    metrics.discovery("collected");
                    tracing::info!(scan = %name, "collected: image no longer running");
                }
            }
        }
    }
    metrics.reconciled("discovery", started.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            namespace: "stella-system".into(),
            include: vec![],
            exclude: vec!["kube-*".into(), "stella-system".into()],
            gc_ttl: Duration::from_secs(3600),
            policy_ref: Some("baseline".into()),
            insecure_registries: vec!["127.0.0.1:5000".into()],
        }
    }

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn pod(ns: &str, name: &str, owner: Option<(&str, &str)>, image_ids: &[&str]) -> Arc<Pod> {
        let statuses: Vec<serde_json::Value> = image_ids
            .iter()
            .enumerate()
            .map(|(i, id)| serde_json::json!({"name": format!("c{i}"), "image": "ignored:latest", "imageID": id, "ready": true, "restartCount": 0}))
            .collect();
        let owners: Vec<serde_json::Value> = owner
            .into_iter()
            .map(|(kind, name)| serde_json::json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}))
            .collect();
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": ns, "ownerReferences": owners},
                "spec": {"containers": [{"name": "c0", "image": "ignored:latest"}], "imagePullSecrets": [{"name": "regcred"}]},
                "status": {"phase": "Running", "containerStatuses": statuses},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn one_scan_per_digest_with_its_workloads() {
        let pods = vec![
            pod(
                "shop",
                "web-5d4-abc",
                Some(("ReplicaSet", "web-5d4")),
                &[&format!("docker-pullable://127.0.0.1:5000/shop/web@{D1}")],
            ),
            pod(
                "shop",
                "web-5d4-def",
                Some(("ReplicaSet", "web-5d4")),
                &[&format!("127.0.0.1:5000/shop/web@{D1}")],
            ),
            pod(
                "batch",
                "nightly-1-xyz",
                Some(("Job", "nightly-1")),
                &[
                    &format!("docker.io/library/busybox@{D2}"),
                    &format!("127.0.0.1:5000/shop/web@{D1}"),
                ],
            ),
            pod(
                "kube-system",
                "dns",
                None,
                &[
                    "docker.io/coredns/coredns@sha256:3333333333333333333333333333333333333333333333333333333333333333",
                ],
            ),
            // Not pinned: a locally built image without a repo digest.
            pod(
                "shop",
                "local",
                None,
                &["sha256:4444444444444444444444444444444444444444444444444444444444444444"],
            ),
        ];
        let owner_of = |_: &str, kind: &str, name: &str| match (kind, name) {
            ("ReplicaSet", "web-5d4") => Some(("Deployment".to_string(), "web".to_string())),
            ("Job", "nightly-1") => Some(("CronJob".to_string(), "nightly".to_string())),
            _ => None,
        };
        let running = running(&settings(), &pods, &|_| BTreeMap::new(), &owner_of);
        assert_eq!(running.keys().collect::<Vec<_>>(), [D1, D2]);
        let web = &running[D1];
        assert_eq!(web.image, format!("127.0.0.1:5000/shop/web@{D1}"));
        assert_eq!(
            web.workloads.iter().cloned().collect::<Vec<_>>(),
            [
                (
                    "batch".to_string(),
                    "CronJob".to_string(),
                    "nightly".to_string()
                ),
                (
                    "shop".to_string(),
                    "Deployment".to_string(),
                    "web".to_string()
                ),
            ]
        );
        let scan = desired_scan(&settings(), D1, web).unwrap();
        assert_eq!(scan.name_any(), format!("sha256-{}", &D1[7..]));
        assert_eq!(scan.namespace().as_deref(), Some("stella-system"));
        assert_eq!(
            scan.labels()["workload.stella-ops.org/deployment.web"],
            "shop"
        );
        assert_eq!(
            scan.labels()["workload.stella-ops.org/cronjob.nightly"],
            "batch"
        );
        assert_eq!(scan.labels()[LABEL_DISCOVERED], "true");
        assert_eq!(
            scan.annotations()[ANNOTATION_WORKLOADS],
            "batch/CronJob/nightly,shop/Deployment/web"
        );
        assert_eq!(
            scan.annotations()[ANNOTATION_PULL_SECRETS],
            "batch/regcred,shop/regcred"
        );
        assert!(
            scan.spec.insecure_registry,
            "127.0.0.1:5000 is listed as plain HTTP"
        );
        assert_eq!(scan.spec.policy_ref.as_deref(), Some("baseline"));
        let busybox = desired_scan(&settings(), D2, &running[D2]).unwrap();
        assert_eq!(
            busybox.spec.image,
            format!("docker.io/library/busybox@{D2}")
        );
        assert!(!busybox.spec.insecure_registry);
    }

    #[test]
    fn opt_out_by_pod_or_namespace_label() {
        let mut opted: Pod = (*pod("shop", "a", None, &[&format!("r.example/a@{D1}")])).clone();
        opted.metadata.labels = Some(BTreeMap::from([(
            OPT_OUT_LABEL.to_string(),
            "false".to_string(),
        )]));
        let pods = vec![
            Arc::new(opted),
            pod("quiet", "b", None, &[&format!("r.example/b@{D2}")]),
        ];
        let ns_labels = |ns: &str| {
            if ns == "quiet" {
                BTreeMap::from([(OPT_OUT_LABEL.to_string(), "disabled".to_string())])
            } else {
                BTreeMap::new()
            }
        };
        assert!(running(&settings(), &pods, &ns_labels, &|_, _, _| None).is_empty());
        let include_only = Settings {
            include: vec!["team-*".into()],
            ..settings()
        };
        assert!(!namespace_selected(&include_only, "shop", &BTreeMap::new()));
        assert!(namespace_selected(
            &include_only,
            "team-a",
            &BTreeMap::new()
        ));
    }

    #[test]
    fn hostile_references_make_no_scan() {
        for id in [
            "docker-pullable://../../etc@sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "r.example/a@sha256:short",
            "r.example/a@sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "",
            &"x".repeat(5000),
        ] {
            let p = pod("shop", "p", None, &[id]);
            assert!(pod_images(&p).is_empty(), "{id:.80}");
        }
    }

    #[test]
    fn collection_marks_then_deletes_after_the_ttl() {
        let ttl = Duration::from_secs(3600);
        let t0: k8s_openapi::jiff::Timestamp = "2026-11-28T08:00:00Z".parse().unwrap();
        let mut scan = desired_scan(
            &settings(),
            D1,
            &Running {
                image: format!("r.example/a@{D1}"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(collect(&scan, true, t0, ttl), Collect::Keep);
        assert_eq!(
            collect(&scan, false, t0, ttl),
            Collect::Mark("2026-11-28T08:00:00Z".into())
        );
        scan.annotations_mut().insert(
            ANNOTATION_UNUSED_SINCE.into(),
            "2026-11-28T08:00:00Z".into(),
        );
        let later = |s: i64| k8s_openapi::jiff::Timestamp::from_second(t0.as_second() + s).unwrap();
        assert_eq!(collect(&scan, false, later(3599), ttl), Collect::Keep);
        assert_eq!(collect(&scan, false, later(3600), ttl), Collect::Delete);
        assert_eq!(collect(&scan, true, later(7200), ttl), Collect::Unmark);
        scan.annotations_mut()
            .insert(ANNOTATION_UNUSED_SINCE.into(), "garbage".into());
        assert!(matches!(collect(&scan, false, t0, ttl), Collect::Mark(_)));
    }
}
