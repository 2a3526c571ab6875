//! The routes in-process (`warp::test`): malformed, truncated, mutated and huge bodies get an
//! HTTP error and never a panic; a governed request is decided; a registry that never answers
//! is cut off by the deadline with the policy's onError answer.

use super::*;
use crate::events::Sink;
use serde_json::{Value, json};

fn state(policies: Value, deadline: Duration, insecure: Vec<String>) -> Arc<State> {
    let metrics = Arc::new(Metrics::default());
    let policies: Vec<stella_crds::policy::v1alpha1::Policy> =
        serde_json::from_value(policies).unwrap();
    let dir = std::env::temp_dir().join(format!("stella-webhook-unit-{}", std::process::id()));
    let state = State {
        settings: Settings {
            deadline,
            cap_enforce: true,
            enforce_selector: None,
            scan_namespace: "stella-system".into(),
            insecure_registries: insecure.clone(),
        },
        policies: RwLock::new(Arc::new(PolicySet::default())),
        namespaces: Namespaces::Fixed(BTreeMap::from([(
            "shop".to_string(),
            BTreeMap::from([("env".to_string(), "prod".to_string())]),
        )])),
        kube: None,
        verdicts: Verdicts::new(
            false,
            None,
            "stella-system".into(),
            100,
            Duration::from_secs(10),
            metrics.clone(),
        ),
        registries: Registries::new(
            insecure,
            "linux/amd64".parse().unwrap(),
            100,
            Duration::from_secs(60),
            dir,
            metrics.clone(),
        ),
        metrics: metrics.clone(),
        events: Events::start(Sink::Discard, metrics),
        ready: AtomicBool::new(true),
    };
    state.set_policies(PolicySet::compile(&policies, |_| Default::default()));
    Arc::new(state)
}

fn enforce_unscanned_deny() -> Value {
    json!([{"apiVersion": "stella-ops.org/v1alpha1", "kind": "Policy", "metadata": {"name": "prod"},
        "spec": {"version": "1.0", "rules": [], "admission": {
            "mode": "enforce", "unscanned": "deny", "onError": "fail-closed",
            "namespaceSelector": {"matchLabels": {"env": "prod"}},
            "exemptions": [{"images": ["registry.example.com/base/*"], "reason": "base images are scanned upstream"}]}}}])
}

fn pod_review(uid: &str, images: &[&str]) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "shop", "operation": "CREATE",
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"containers": images.iter().enumerate().map(|(i, im)| json!({"name": format!("c{i}"), "image": im})).collect::<Vec<_>>()}}}})
}

async fn post(state: &Arc<State>, body: Vec<u8>) -> (u16, Value) {
    let response = warp::test::request()
        .method("POST")
        .path("/validate")
        .header("content-length", body.len())
        .body(body)
        .reply(&admission_routes(state.clone()))
        .await;
    let value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (response.status().as_u16(), value)
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn decides_exempt_and_unscanned_images_without_a_registry() {
    let state = state(enforce_unscanned_deny(), Duration::from_secs(2), vec![]);
    let pinned = format!("registry.example.com/shop/web@{DIGEST}");
    let (status, value) = post(
        &state,
        serde_json::to_vec(&pod_review("u1", &[&pinned])).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(value["response"]["uid"], "u1");
    assert_eq!(value["response"]["allowed"], false);
    let message = value["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("has not been scanned (policy prod: unscanned images are denied)"),
        "{message}"
    );
    // Exempt by image pattern: no registry is reachable at registry.example.com, and none is asked.
    let (_, value) = post(
        &state,
        serde_json::to_vec(&pod_review("u2", &["registry.example.com/base/debian:12"])).unwrap(),
    )
    .await;
    assert_eq!(value["response"]["allowed"], true);
    assert_eq!(state.metrics.registry_calls("resolve"), 0);
    // Another namespace is not governed.
    let mut other = pod_review("u3", &[&pinned]);
    other["request"]["namespace"] = json!("dev");
    let (_, value) = post(&state, serde_json::to_vec(&other).unwrap()).await;
    assert_eq!(value["response"]["allowed"], true);
    let text = state.metrics.render();
    assert!(
        text.contains("namespace=\"shop\",decision=\"deny\",reason=\"unscanned\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("namespace=\"shop\",decision=\"allow\",reason=\"exempt\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("namespace=\"dev\",decision=\"allow\",reason=\"not-governed\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_registry_that_never_answers_meets_the_deadline_with_on_error() {
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    let state = state(
        enforce_unscanned_deny(),
        Duration::from_millis(300),
        vec![host.clone()],
    );
    let started = Instant::now();
    let (status, value) = post(
        &state,
        serde_json::to_vec(&pod_review("u9", &[&format!("{host}/shop/web:1.0")])).unwrap(),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        elapsed < Duration::from_millis(1500),
        "answered after {elapsed:?}"
    );
    assert_eq!(value["response"]["allowed"], false, "fail-closed");
    let message = value["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("no decision within 300 ms") && message.contains("onError fail-closed"),
        "{message}"
    );
    drop(silent);
}

/// A small deterministic generator (xorshift): the same mutations on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[tokio::test]
async fn garbage_truncation_mutation_and_huge_bodies_never_crash() {
    let state = state(enforce_unscanned_deny(), Duration::from_millis(500), vec![]);
    let routes = admission_routes(state.clone());
    let pinned = format!("registry.example.com/shop/web@{DIGEST}");
    let seeds: Vec<Vec<u8>> = vec![
        serde_json::to_vec(&pod_review("s1", &[&pinned, "registry.example.com/base/x:1"])).unwrap(),
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "s2", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}, "namespace": "shop",
            "operation": "UPDATE", "object": {"spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "a", "image": pinned}]}}}},
            "oldObject": {"spec": {"template": {}}}}})).unwrap(),
    ];
    let tokens: [&[u8]; 12] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"null",
        b"\\u0000",
        b"1e999",
        b"\xff\xfe",
        b"\"image\":{}",
    ];
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let (mut ok, mut errors) = (0, 0);
    for i in 0..3000 {
        let mut body = seeds[i % seeds.len()].clone();
        match rng.below(5) {
            0 => body.truncate(rng.below(body.len())),
            1 => {
                for _ in 0..=rng.below(8) {
                    let at = rng.below(body.len());
                    body[at] = rng.next() as u8;
                }
            }
            2 => {
                let at = rng.below(body.len());
                let token = tokens[rng.below(tokens.len())];
                body.splice(at..at, token.iter().copied());
            }
            3 => {
                let at = rng.below(body.len());
                let len = rng.below(body.len() - at);
                body.drain(at..at + len);
            }
            _ => body = (0..rng.below(512)).map(|_| rng.next() as u8).collect(),
        }
        let response = warp::test::request()
            .method("POST")
            .path("/validate")
            .header("content-length", body.len())
            .body(body)
            .reply(&routes)
            .await;
        match response.status().as_u16() {
            200 => {
                let value: Value =
                    serde_json::from_slice(response.body()).expect("a 200 carries a review");
                assert!(value["response"]["allowed"].is_boolean());
                ok += 1;
            }
            400 => errors += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok > 100 && errors > 1000, "ok {ok}, errors {errors}");

    let huge = vec![b' '; (review::MAX_BODY + 1) as usize];
    let response = warp::test::request()
        .method("POST")
        .path("/validate")
        .header("content-length", huge.len())
        .body(huge)
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 413);
    let wrong_method = warp::test::request()
        .method("GET")
        .path("/validate")
        .reply(&routes)
        .await;
    assert_eq!(wrong_method.status(), 405);
    let nowhere = warp::test::request()
        .method("POST")
        .path("/other")
        .header("content-length", 2)
        .body("{}")
        .reply(&routes)
        .await;
    assert_eq!(nowhere.status(), 404);
    assert!(
        state
            .metrics
            .render()
            .contains("stella_webhook_rejected_requests_total{code=\"413\"} 1")
    );
}

#[tokio::test]
async fn the_enforce_selector_keeps_other_namespaces_in_dry_run() {
    let mut st = Arc::try_unwrap(state(
        enforce_unscanned_deny(),
        Duration::from_secs(2),
        vec![],
    ))
    .unwrap();
    st.settings.enforce_selector =
        Some(crate::policy::parse_selector("stella-ops.org/enforce=true").unwrap());
    let st = Arc::new(st);
    let pinned = format!("registry.example.com/shop/web@{DIGEST}");
    let (_, value) = post(
        &st,
        serde_json::to_vec(&pod_review("u1", &[&pinned])).unwrap(),
    )
    .await;
    assert_eq!(value["response"]["allowed"], true);
    let warning = value["response"]["warnings"][0].as_str().unwrap();
    assert!(
        warning
            .starts_with("stella-ops: dry-run, would deny: image registry.example.com/shop/web@"),
        "{warning}"
    );
}
