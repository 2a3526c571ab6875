//! The install manifests: `kubectl kustomize` renders them, they hold the security properties we
//! promise, every container runs what its image and binary accept (arguments and environment
//! parsed by the binary's own clap definition, ports and probes where it listens, images that
//! are built here), and `kubectl apply --dry-run=server` of every rendered object succeeds
//! against the API server.

use crate::crds::install_crds;
use crate::{cluster, repo_root, run};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use stella_e2e::compat::{adapt_to_server, supports_cel};

const OVERLAYS: [&str; 3] = [
    "config/default",
    "config/overlays/admission-dry-run",
    "config/overlays/admission-enforce",
];

/// Renders a kustomization into its objects.
fn render(dir: &str) -> Vec<Value> {
    let yaml =
        run(Command::new("kubectl")
            .args(["kustomize", &repo_root().join(dir).display().to_string()]));
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&yaml).unwrap_or_else(|e| panic!("{dir}: {e}"));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| o["kind"] == kind)
}

/// Everything that templates Pods.
fn workloads(objects: &[Value]) -> impl Iterator<Item = &Value> {
    objects.iter().filter(|o| {
        matches!(
            o["kind"].as_str(),
            Some("Deployment" | "StatefulSet" | "DaemonSet" | "Job")
        )
    })
}

/// A pod template's init and regular containers.
fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(move |key| pod[key].as_array().into_iter().flatten())
}

#[test]
fn manifests_render_with_least_privilege_and_locked_down_pods() {
    for dir in OVERLAYS {
        let objects = render(dir);
        let kinds: BTreeSet<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        for kind in [
            "Namespace",
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "Deployment",
            "StatefulSet",
            "Service",
            "ValidatingWebhookConfiguration",
            "NetworkPolicy",
            "PodDisruptionBudget",
        ] {
            assert!(kinds.contains(kind), "{dir}: no {kind}");
        }
        // Every pod we run (and the worker Jobs' pods) is selected by an ingress policy, and
        // both serving Deployments keep a replica through voluntary disruptions.
        let selected = |name: &str| {
            of_kind(&objects, "NetworkPolicy").any(|p| {
                p["spec"]["policyTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "Ingress"))
                    && p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == name
            })
        };
        for name in [
            "stella-operator",
            "stella-webhook",
            "stella-worker",
            "stella-postgres",
            "stella-s3",
        ] {
            assert!(
                selected(name),
                "{dir}: no ingress NetworkPolicy selects {name}"
            );
        }
        for name in ["stella-operator", "stella-webhook"] {
            assert!(
                of_kind(&objects, "PodDisruptionBudget").any(|p| p["spec"]["minAvailable"] == 1
                    && p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == name),
                "{dir}: no PodDisruptionBudget for {name}"
            );
        }
        // The worker's policy admits nothing; the storage admits only our own pods.
        let worker = of_kind(&objects, "NetworkPolicy")
            .find(|p| p["metadata"]["name"] == "stella-worker")
            .unwrap();
        assert!(worker["spec"]["ingress"].is_null(), "{dir}: {worker}");
        for name in ["stella-postgres", "stella-s3"] {
            let policy = of_kind(&objects, "NetworkPolicy")
                .find(|p| p["metadata"]["name"] == name)
                .unwrap();
            let from =
                &policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0];
            assert_eq!(
                from["values"],
                serde_json::json!(["stella-operator", "stella-webhook", "stella-worker"]),
                "{dir}: {name}"
            );
        }
        assert_eq!(
            of_kind(&objects, "CustomResourceDefinition").count(),
            7,
            "{dir}"
        );
        let accounts: BTreeSet<&str> = of_kind(&objects, "ServiceAccount")
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            accounts,
            BTreeSet::from([
                "stella-operator",
                "stella-worker",
                "stella-webhook",
                "stella-storage"
            ])
        );

        // Every namespaced object lands in stella-system.
        for object in &objects {
            let kind = object["kind"].as_str().unwrap();
            let namespaced = !matches!(
                kind,
                "Namespace"
                    | "CustomResourceDefinition"
                    | "ClusterRole"
                    | "ClusterRoleBinding"
                    | "ValidatingWebhookConfiguration"
            );
            if namespaced {
                assert_eq!(
                    object["metadata"]["namespace"], "stella-system",
                    "{dir}: {kind}"
                );
            }
        }

        // Every Service and container port names its protocol: server-side apply (Argo CD's and
        // Flux's, and ours) on Kubernetes before 1.21 refuses a port list keyed by
        // (port, protocol) whose elements omit the key ("associative list with keys has an
        // element that omits key field \"protocol\""), seen installing on the harness's node.
        for object in &objects {
            let name = object["metadata"]["name"].as_str().unwrap();
            let ports: Vec<&Value> = match object["kind"].as_str() {
                Some("Service") => object["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .collect(),
                _ => workloads(std::slice::from_ref(object))
                    .flat_map(|w| containers(&w["spec"]["template"]["spec"]))
                    .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                    .collect(),
            };
            for port in ports {
                assert!(
                    port["protocol"].is_string(),
                    "{dir}: {name}: port without protocol: {port}"
                );
            }
        }

        // No wildcard verbs or resources, and secrets are never listed or watched cluster-wide.
        for role in of_kind(&objects, "ClusterRole").chain(of_kind(&objects, "Role")) {
            let name = role["metadata"]["name"].as_str().unwrap();
            for rule in role["rules"].as_array().unwrap() {
                let strings = |key: &str| -> Vec<String> {
                    rule[key]
                        .as_array()
                        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                        .unwrap_or_default()
                };
                assert!(
                    !strings("verbs").contains(&"*".to_string()),
                    "{name}: wildcard verb"
                );
                assert!(
                    !strings("resources").contains(&"*".to_string()),
                    "{name}: wildcard resource"
                );
                if role["kind"] == "ClusterRole"
                    && strings("resources").contains(&"secrets".to_string())
                {
                    assert_eq!(
                        strings("verbs"),
                        ["get"],
                        "{name}: secrets beyond get, cluster-wide"
                    );
                }
            }
        }

        // Pods: resources, no privilege escalation, read-only root, non-root, no capabilities.
        for workload in workloads(&objects) {
            let name = workload["metadata"]["name"].as_str().unwrap();
            let pod = &workload["spec"]["template"]["spec"];
            assert!(
                pod["serviceAccountName"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("stella-")),
                "{name}"
            );
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
            assert_ne!(pod["securityContext"]["runAsUser"], 0, "{name}");
            for container in containers(pod) {
                let security = &container["securityContext"];
                assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
                assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
                assert_eq!(
                    security["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{name}"
                );
                assert!(security["capabilities"]["add"].is_null(), "{name}");
                assert!(security["runAsNonRoot"] != false, "{name}");
                assert_ne!(security["runAsUser"], 0, "{name}");
                for bound in ["requests", "limits"] {
                    assert!(
                        container["resources"][bound]["memory"].is_string(),
                        "{name}: no memory {bound}"
                    );
                    assert!(
                        container["resources"][bound]["cpu"].is_string(),
                        "{name}: no cpu {bound}"
                    );
                }
            }
        }

        // The webhook never sees the control plane or us, answers fast, and fails open.
        let webhook = of_kind(&objects, "ValidatingWebhookConfiguration")
            .next()
            .unwrap();
        for hook in webhook["webhooks"].as_array().unwrap() {
            assert_eq!(hook["failurePolicy"], "Ignore", "{dir}");
            assert!(hook["timeoutSeconds"].as_u64().unwrap() <= 10, "{dir}");
            let excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"].to_string();
            for ns in ["kube-system", "kube-node-lease", "stella-system"] {
                assert!(excluded.contains(ns), "{dir}: {ns} not excluded");
            }
            assert_eq!(
                hook["clientConfig"]["service"]["namespace"],
                "stella-system"
            );
        }
        let mode = of_kind(&objects, "Deployment")
            .find(|d| d["metadata"]["name"] == "stella-webhook")
            .map(|d| d["spec"]["template"]["spec"]["containers"][0]["args"].to_string())
            .unwrap();
        let expected = if dir.ends_with("enforce") {
            "--mode=enforce"
        } else {
            "--mode=dry-run"
        };
        assert!(mode.contains(expected), "{dir}: webhook args {mode}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_pass_server_side_dry_run() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client().await.unwrap();
    let cel = supports_cel(&client.apiserver_version().await.unwrap());
    // The CRDs and the namespace exist for real first, as `kubectl apply` would create them
    // before the objects that need them.
    install_crds(&client).await;
    let served: BTreeSet<String> = run(cluster.kubectl().arg("api-versions"))
        .lines()
        .map(str::to_string)
        .collect();

    for dir in OVERLAYS {
        let mut objects = render(dir);
        let namespace: Vec<Value> = of_kind(&objects, "Namespace").cloned().collect();
        apply(cluster, &namespace, false);

        let skipped = adapt_to_server(&mut objects, &served, cel)
            .unwrap_or_else(|unexpected| panic!("{dir}: not served: {unexpected:?}"));
        for entry in &skipped {
            eprintln!("{dir}: {entry} is not served by this API server; skipped");
        }
        let output = apply(cluster, &objects, true);
        let answered = output
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(answered, objects.len(), "{dir}:\n{output}");
    }
}

/// `kubectl apply` of these objects, for real or as a server-side dry run.
fn apply(cluster: &stella_e2e::TestCluster, objects: &[Value], dry_run: bool) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(file.path(), serde_json::to_vec(&list).unwrap()).unwrap();
    let mut command = cluster.kubectl();
    command.args(["apply", "-f"]).arg(file.path());
    if dry_run {
        command.arg("--dry-run=server");
    }
    run(&mut command)
}

/// The version every image of ours is tagged with: the workspace's (`make images` tags
/// `stella-ops/<name>:<version>` from the same Cargo.toml).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Environment our binaries read outside their clap definitions, and who reads it.
const READ_OUTSIDE_CLAP: [(&str, &str); 2] = [
    ("RUST_LOG", "tracing's EnvFilter"),
    (
        "AWS_",
        "the S3 client's credentials (object_store's AmazonS3Builder::from_env)",
    ),
];

/// The binary each product image runs: `ENTRYPOINT ["/usr/local/bin/<binary>"]` of the
/// Containerfile stage the image is named after (`stella-ops/<stage>`).
fn entrypoints() -> BTreeMap<String, String> {
    let path = repo_root().join("config/images/Containerfile");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut stage: Option<String> = None;
    let mut binaries = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(from) = line.strip_prefix("FROM ") {
            stage = from
                .split_once(" AS ")
                .map(|(_, name)| name.trim().to_string());
        } else if let Some(argv) = line.strip_prefix("ENTRYPOINT ") {
            let argv: Vec<String> = serde_json::from_str(argv).unwrap();
            let binary = argv[0].rsplit('/').next().unwrap().to_string();
            let stage = stage.clone().expect("ENTRYPOINT outside a named stage");
            binaries.insert(stage, binary);
        }
    }
    assert!(!binaries.is_empty(), "{}: no ENTRYPOINT", path.display());
    binaries
}

/// The trial storage images `config/images/build-storage.sh` builds (its `images=(…)` line).
fn storage_images() -> BTreeSet<String> {
    let path = repo_root().join("config/images/build-storage.sh");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("images=("))
        .unwrap_or_else(|| panic!("{}: no images=(…) line", path.display()));
    line.trim_end_matches(')')
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The clap definition a binary parses its command line and environment with.
fn clap_command(binary: &str) -> clap::Command {
    use clap::CommandFactory;
    match binary {
        "stella-operator" => stella_operator::cli::Cli::command(),
        "stella-webhook" => stella_webhook::cli::Cli::command(),
        "stella-worker" => stella_cli::worker::Args::command(),
        "stella" => stella_cli::command(),
        other => panic!("no clap definition known for {other}: add it to clap_command"),
    }
}

/// Every binary's clap definition is well formed (unique flags and groups, valid defaults):
/// clap's own debug assertions, which otherwise fire only when a subcommand is parsed.
#[test]
fn every_binary_command_line_is_well_formed() {
    for binary in [
        "stella",
        "stella-worker",
        "stella-operator",
        "stella-webhook",
    ] {
        clap_command(binary).debug_assert();
    }
}

/// The keys of a rendered ConfigMap or Secret and their values (a Secret's `data` is base64:
/// its values are not needed, only its keys), or None when no such object is rendered.
fn keys_of(objects: &[Value], kind: &str, name: &str) -> Option<BTreeMap<String, Option<String>>> {
    let object = of_kind(objects, kind).find(|o| o["metadata"]["name"] == name)?;
    let mut keys = BTreeMap::new();
    for (field, readable) in [("data", kind == "ConfigMap"), ("stringData", true)] {
        for (key, value) in object[field].as_object().into_iter().flatten() {
            let value = readable.then(|| value.as_str().unwrap().to_string());
            keys.insert(key.clone(), value);
        }
    }
    Some(keys)
}

/// A container's environment: each variable and its value when the manifests give it
/// (`value`, a ConfigMap or Secret key), None when only the cluster knows it (`fieldRef`).
/// Every object referenced without `optional: true` must be rendered.
fn environment(objects: &[Value], container: &Value, at: &str) -> BTreeMap<String, Option<String>> {
    let mut env = BTreeMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        assert!(source["prefix"].is_null(), "{at}: envFrom prefix");
        let (kind, reference) = if source["configMapRef"].is_object() {
            ("ConfigMap", &source["configMapRef"])
        } else {
            ("Secret", &source["secretRef"])
        };
        let name = reference["name"].as_str().unwrap();
        match keys_of(objects, kind, name) {
            Some(keys) => env.extend(keys),
            None => assert_eq!(
                reference["optional"], true,
                "{at}: envFrom {kind} {name} is not in the install"
            ),
        }
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().unwrap().to_string();
        let from = &variable["valueFrom"];
        let value = if let Some(value) = variable["value"].as_str() {
            Some(value.to_string())
        } else if from["fieldRef"].is_object() || from["resourceFieldRef"].is_object() {
            None
        } else {
            let (kind, reference) = if from["configMapKeyRef"].is_object() {
                ("ConfigMap", &from["configMapKeyRef"])
            } else {
                ("Secret", &from["secretKeyRef"])
            };
            let object = reference["name"].as_str().unwrap();
            let key = reference["key"].as_str().unwrap();
            let keys = keys_of(objects, kind, object)
                .unwrap_or_else(|| panic!("{at}: {name} from {kind} {object}, not in the install"));
            keys.get(key)
                .unwrap_or_else(|| panic!("{at}: {name} from {kind} {object}, which has no {key}"))
                .clone()
        };
        env.insert(name, value);
    }
    env
}

/// The ports a parsed command line listens on (its `SocketAddr` arguments, defaults included).
fn listening_ports(matches: &clap::ArgMatches) -> BTreeSet<u16> {
    matches
        .ids()
        .filter_map(|id| {
            matches
                .try_get_one::<std::net::SocketAddr>(id.as_str())
                .ok()
                .flatten()
        })
        .map(|address| address.port())
        .collect()
}

/// Every container of ours in the install runs a binary that accepts its arguments and
/// environment (values included), listens where its ports and probes point, runs under a
/// ServiceAccount the install creates, and uses an image `make images` or
/// `config/images/build-storage.sh` builds, tagged with the workspace's version.
#[test]
fn containers_run_what_their_images_and_binaries_accept() {
    let entrypoints = entrypoints();
    let storage = storage_images();
    for dir in OVERLAYS {
        let objects = render(dir);
        let accounts: BTreeSet<&str> = of_kind(&objects, "ServiceAccount")
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        let mut checked = BTreeSet::new();
        for workload in workloads(&objects) {
            let workload_name = workload["metadata"]["name"].as_str().unwrap();
            let pod = &workload["spec"]["template"]["spec"];
            let account = pod["serviceAccountName"].as_str().unwrap_or("default");
            assert!(
                accounts.contains(account),
                "{dir}: {workload_name} runs as ServiceAccount {account}, which the install does not create"
            );
            for volume in pod["volumes"].as_array().into_iter().flatten() {
                for (field, kind, key) in [
                    ("secret", "Secret", "secretName"),
                    ("configMap", "ConfigMap", "name"),
                ] {
                    if let Some(name) = volume[field][key].as_str() {
                        assert!(
                            volume[field]["optional"] == true
                                || keys_of(&objects, kind, name).is_some(),
                            "{dir}: {workload_name} mounts {kind} {name}, which the install does not create"
                        );
                    }
                }
            }
            for container in containers(pod) {
                let at = format!(
                    "{dir}: {workload_name}/{}",
                    container["name"].as_str().unwrap()
                );
                let image = container["image"].as_str().unwrap();
                let (repository, tag) = image
                    .rsplit_once(':')
                    .unwrap_or_else(|| panic!("{at}: image {image} has no tag"));
                assert_eq!(tag, VERSION, "{at}: image {image}");
                let name = repository.strip_prefix("stella-ops/").unwrap_or_else(|| {
                    panic!("{at}: image {image} is not built here (stella-ops/…)")
                });
                let Some(binary) = entrypoints.get(name) else {
                    assert!(
                        storage.contains(name),
                        "{at}: image {image}: neither a Containerfile stage {:?} nor a storage image {storage:?}",
                        entrypoints.keys()
                    );
                    continue;
                };
                assert!(
                    container["command"].is_null(),
                    "{at}: command replaces the image's entrypoint {binary}"
                );
                checked.insert(binary.clone());
                let command = clap_command(binary);
                let args: Vec<String> = container["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect();
                let subcommand = command
                    .clone()
                    .try_get_matches_from(std::iter::once(binary.clone()).chain(args.clone()))
                    .unwrap_or_else(|e| panic!("{at}: {binary} {args:?}:\n{}", e.render()))
                    .subcommand_name()
                    .map(str::to_string);
                let definition = match &subcommand {
                    Some(name) => command.find_subcommand(name).unwrap().clone(),
                    None => command.clone(),
                };

                // Each variable is one of the binary's (its value then parsed as that flag
                // would be), or one it reads outside clap.
                let mut argv = std::iter::once(binary.clone())
                    .chain(args.clone())
                    .collect::<Vec<_>>();
                for (variable, value) in environment(&objects, container, &at) {
                    let argument = definition
                        .get_arguments()
                        .find(|a| a.get_env().is_some_and(|e| e == variable.as_str()));
                    let Some(argument) = argument else {
                        assert!(
                            READ_OUTSIDE_CLAP.iter().any(|(prefix, _)| variable
                                .strip_prefix(prefix)
                                .is_some_and(|rest| prefix.ends_with('_') || rest.is_empty())),
                            "{at}: sets {variable}, which {binary}{} does not read (its variables: {:?})",
                            subcommand
                                .as_ref()
                                .map(|s| format!(" {s}"))
                                .unwrap_or_default(),
                            definition
                                .get_arguments()
                                .filter_map(|a| a.get_env())
                                .collect::<Vec<_>>()
                        );
                        continue;
                    };
                    let long = argument.get_long().unwrap();
                    let Some(value) = value.filter(|v| !v.is_empty()) else {
                        continue;
                    };
                    if args
                        .iter()
                        .any(|a| a == &format!("--{long}") || a.starts_with(&format!("--{long}=")))
                    {
                        continue; // the flag wins over the variable
                    }
                    if argument.get_action().takes_values() {
                        argv.push(format!("--{long}={value}"));
                    } else {
                        assert!(
                            ["true", "false", "1", "0", "yes", "no", "on", "off"]
                                .contains(&value.as_str()),
                            "{at}: {variable}={value:?} is not a boolean"
                        );
                    }
                }
                let matches = command
                    .clone()
                    .try_get_matches_from(&argv)
                    .unwrap_or_else(|e| {
                        panic!("{at}: {argv:?} (the environment as flags):\n{}", e.render())
                    });
                let matches = match &subcommand {
                    Some(name) => matches.subcommand_matches(name).unwrap().clone(),
                    None => matches,
                };

                // Ports and probes point where the binary listens.
                let listening = listening_ports(&matches);
                let mut ports = BTreeMap::new();
                for port in container["ports"].as_array().into_iter().flatten() {
                    let number = port["containerPort"].as_u64().unwrap() as u16;
                    assert!(
                        listening.contains(&number),
                        "{at}: containerPort {number}, but {binary} listens on {listening:?}"
                    );
                    if let Some(name) = port["name"].as_str() {
                        ports.insert(name.to_string(), number);
                    }
                }
                // Probes are plain HTTP on `--metrics-addr`, at a path its help says is served
                // there (the crates' own tests request those paths).
                let probes_argument = definition
                    .get_arguments()
                    .find(|a| a.get_id() == "metrics_addr")
                    .unwrap_or_else(|| panic!("{at}: {binary} has no --metrics-addr"));
                let help = probes_argument
                    .get_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                let served: BTreeSet<&str> = help
                    .split(|c: char| c.is_whitespace() || ",()`".contains(c))
                    .map(|word| word.trim_end_matches('.'))
                    .filter(|word| word.starts_with('/'))
                    .collect();
                let probes_port = matches
                    .get_one::<std::net::SocketAddr>("metrics_addr")
                    .unwrap()
                    .port();
                for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                    let get = &container[probe]["httpGet"];
                    if get.is_null() {
                        assert!(container[probe].is_null(), "{at}: {probe} is not httpGet");
                        continue;
                    }
                    let number = match &get["port"] {
                        Value::String(name) => *ports.get(name).unwrap_or_else(|| {
                            panic!("{at}: {probe} port {name} is not a container port")
                        }),
                        other => other.as_u64().unwrap() as u16,
                    };
                    assert_eq!(
                        number, probes_port,
                        "{at}: {probe} on port {number}, but {binary} serves probes on --metrics-addr's {probes_port}"
                    );
                    assert!(
                        get["scheme"].is_null() || get["scheme"] == "HTTP",
                        "{at}: {probe}"
                    );
                    let path = get["path"].as_str().unwrap();
                    assert!(
                        served.contains(path),
                        "{at}: {probe} path {path} is not one --metrics-addr serves ({served:?})"
                    );
                }

                // The operator starts worker Jobs with the image `make images` tags.
                if let Ok(Some(worker)) = matches.try_get_one::<String>("worker_image") {
                    assert_eq!(worker, &format!("stella-ops/worker:{VERSION}"), "{at}");
                    assert!(entrypoints.contains_key("worker"));
                }
            }
        }
        assert_eq!(
            checked,
            BTreeSet::from(["stella-operator".to_string(), "stella-webhook".to_string()]),
            "{dir}: the binaries the install runs"
        );
    }
}

/// The operator's own default worker image is the one `make images` tags, so that an install
/// without the `stella-worker` ConfigMap still starts Jobs that run.
#[test]
fn operator_default_worker_image_is_the_built_one() {
    let command = clap_command("stella-operator");
    let run = command.find_subcommand("run").unwrap();
    let default = run
        .get_arguments()
        .find(|a| a.get_id() == "worker_image")
        .unwrap()
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert_eq!(default, [format!("stella-ops/worker:{VERSION}")]);
}
