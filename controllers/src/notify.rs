//! The NotifyChannel and NotifyRule controllers and the dispatcher they feed (leader only).
//!
//! NotifyChannel: dereference (its Secret) → validate (pure: type, URL, the key) → build
//! (pure: the status, `Ready`/`Stalled` with the reason; never the secret) → register the
//! resolved channel with the dispatcher's [`Registry`] → update_status. A missing Secret is
//! retried every minute (a Secret created later is picked up).
//!
//! NotifyRule: validate (pure: throttle durations, templates, channel names) → register →
//! status with the delivery counts the catalog holds (`matched`, `delivered`, `throttled`,
//! `coalesced`, `failed`, `pending`, the last delivery), refreshed every 30 s. An invalid
//! rule is `Stalled` when applied — not at send time — and matches nothing.

use crate::conditions::{self, Desired, Status};
use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use stella_crds::notify::v1alpha1::{
    ChannelType, DigestPeriod, NotifyChannel, NotifyChannelStatus, NotifyRule, NotifyRuleStatus,
    SmtpSecurity,
};
use stella_notify::{Action as RuleAction, Channel, Kind, Period, Rule, Template};

/// `Stalled` (kstatus).
pub const STALLED: &str = "Stalled";
/// `Reconciling` (kstatus): always `False` once a channel or rule is resolved or refused —
/// both happen in one reconcile, so Flux and Argo CD see a settled object at once.
pub const RECONCILING: &str = "Reconciling";
const MANAGER: &str = crate::policy::MANAGER;

/// The rules and channels the dispatcher applies, kept by the controllers.
#[derive(Debug, Default)]
pub struct Registry {
    rules: RwLock<BTreeMap<String, Rule>>,
    channels: RwLock<BTreeMap<String, Channel>>,
}

impl Registry {
    pub fn set_rule(&self, id: &str, rule: Option<Rule>) {
        let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
        match rule {
            Some(rule) => rules.insert(id.to_string(), rule),
            None => rules.remove(id),
        };
    }

    pub fn set_channel(&self, id: &str, channel: Option<Channel>) {
        let mut channels = self.channels.write().unwrap_or_else(|e| e.into_inner());
        match channel {
            Some(channel) => channels.insert(id.to_string(), channel),
            None => channels.remove(id),
        };
    }
}

impl stella_notify::Directory for Registry {
    fn rules(&self) -> Vec<Rule> {
        self.rules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
    fn channel(&self, id: &str) -> Option<Channel> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

/// What the notify controllers need.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub store: stella_store::Store,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    /// The operator's own namespace: rules there see every namespace's events.
    pub platform_namespace: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// Errors that stop a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write the status: {0}")]
    UpdateStatus(#[source] kube::Error),
    #[error("failed to read the Secret: {0}")]
    Secret(#[source] kube::Error),
    #[error("failed to read the delivery counts: {0}")]
    Store(#[source] stella_store::Error),
}

fn id(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The rule the dispatcher applies, or every reason it cannot be applied as written.
pub fn rule_of(rule: &NotifyRule, platform_namespace: &str) -> Result<Rule, Vec<String>> {
    let namespace = rule.namespace().unwrap_or_default();
    let spec = &rule.spec;
    let mut errors = Vec::new();
    let mut actions = Vec::new();
    for (i, a) in spec.actions.iter().enumerate() {
        let template = match a.template.as_deref() {
            None => Template::Concise,
            Some(key) => Template::parse(key).unwrap_or_else(|| {
                errors.push(format!(
                    "actions[{i}].template: {key:?} is not a template (concise, detailed)"
                ));
                Template::Concise
            }),
        };
        let throttle = match a.throttle.as_deref() {
            None => None,
            Some(text) => match stella_notify::rules::parse_duration(text) {
                Some(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(7 * 86_400) => {
                    Some(d)
                }
                _ => {
                    errors.push(format!(
                        "actions[{i}].throttle: {text:?} is not a duration between 1s and 7d (5m, PT5M)"
                    ));
                    None
                }
            },
        };
        let custom = a.custom_template.as_ref().and_then(|t| {
            let custom = stella_notify::template::Custom {
                title: t.title.clone(),
                body: t.body.clone(),
            };
            match stella_notify::template::check(&custom) {
                Ok(()) => Some(Arc::new(custom)),
                Err(why) => {
                    errors.push(format!("actions[{i}].customTemplate: {why}"));
                    None
                }
            }
        });
        actions.push(RuleAction {
            channel: id(&namespace, &a.channel),
            target: a.target.clone(),
            template,
            custom,
            throttle,
            digest: a.digest.map(|d| match d {
                DigestPeriod::Hourly => Period::Hourly,
                DigestPeriod::Daily => Period::Daily,
                DigestPeriod::Weekly => Period::Weekly,
            }),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let m = &spec.match_;
    Ok(Rule {
        id: id(&namespace, &rule.name_any()),
        cluster_wide: namespace == platform_namespace,
        namespace,
        kinds: m
            .event_kinds
            .iter()
            .filter_map(|k| serde_json::to_value(k).ok()?.as_str().map(str::to_string))
            .collect(),
        min_severity: m
            .min_severity
            .map(|s| stella_model::Severity::parse(&format!("{s:?}"))),
        namespaces: m.namespaces.clone(),
        repositories: m.repositories.clone(),
        verdicts: m
            .verdicts
            .iter()
            .filter_map(|v| {
                serde_json::to_value(v)
                    .ok()?
                    .as_str()
                    .map(str::to_uppercase)
            })
            .collect(),
        kev_only: m.kev_only,
        include_accepted_justifications: m
            .vex
            .as_ref()
            .is_some_and(|v| v.include_accepted_justifications),
        actions,
        enabled: spec.enabled,
    })
}

/// The channel the dispatcher sends to, its secret (the key's bytes, when the channel names
/// one and it was found) resolved; or the reason it cannot be used (`reason`, `message`).
pub fn channel_of(
    channel: &NotifyChannel,
    secret: Option<&[u8]>,
) -> Result<Channel, (&'static str, String)> {
    let spec = &channel.spec;
    let timeout = stella_notify::rules::parse_duration(&spec.limits.timeout)
        .filter(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_secs(300))
        .ok_or((
            "InvalidSpec",
            format!(
                "limits.timeout {:?} is not between 100ms and 5m",
                spec.limits.timeout
            ),
        ))?;
    if spec.secret_ref.is_some() && secret.is_none() {
        return Err((
            "SecretNotFound",
            "the Secret or its key named by secretRef does not exist".into(),
        ));
    }
    let secret_text = || {
        secret
            .map(|s| String::from_utf8_lossy(s).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let mut email = None;
    let (kind, url, signing_secret) = match spec.type_ {
        ChannelType::Email => {
            let config = spec.email.as_ref().ok_or((
                "InvalidSpec",
                "an email channel needs email.smtpHost and email.from".to_string(),
            ))?;
            if config.username.is_some() && secret_text().is_none() {
                return Err((
                    "InvalidSpec",
                    "email.username is set but secretRef (the SMTP password) is not".into(),
                ));
            }
            if let Some(pem) = &config.ca_certificates
                && !pem.contains("-----BEGIN CERTIFICATE-----")
            {
                return Err((
                    "InvalidSpec",
                    "email.caCertificates holds no PEM certificate".into(),
                ));
            }
            email = Some(stella_notify::email::Smtp {
                host: config.smtp_host.clone(),
                port: config.smtp_port,
                from: config.from.clone(),
                username: config.username.clone(),
                password: config.username.as_ref().and_then(|_| secret_text()),
                security: match config.security {
                    SmtpSecurity::None => stella_notify::email::Security::None,
                    SmtpSecurity::Starttls => stella_notify::email::Security::StartTls,
                    SmtpSecurity::Tls => stella_notify::email::Security::Tls,
                },
                extra_roots_pem: config.ca_certificates.clone(),
            });
            let url = format!("smtp://{}:{}", config.smtp_host, config.smtp_port);
            (Kind::Email, url, None)
        }
        ChannelType::Slack | ChannelType::Teams => {
            let url = secret_text().or_else(|| spec.endpoint.clone()).ok_or((
                "InvalidSpec",
                "needs the incoming-webhook URL in secretRef (or endpoint)".to_string(),
            ))?;
            let kind = if spec.type_ == ChannelType::Slack {
                Kind::Slack
            } else {
                Kind::Teams
            };
            (kind, url, None)
        }
        ChannelType::Webhook => {
            let url = spec.endpoint.clone().ok_or((
                "InvalidSpec",
                "a webhook channel needs endpoint; secretRef holds its Standard Webhooks signing key".to_string(),
            ))?;
            (Kind::Webhook, url, secret.map(<[u8]>::to_vec))
        }
    };
    match reqwest_url_ok(&url) {
        _ if kind == Kind::Email => {}
        Ok(()) => {}
        // The URL may be the secret: never in the message.
        Err(why) => return Err(("InvalidURL", format!("the channel's URL {why}"))),
    }
    Ok(Channel {
        id: id(
            &channel.namespace().unwrap_or_default(),
            &channel.name_any(),
        ),
        kind,
        url,
        target: spec.target.clone(),
        email,
        signing_secret,
        timeout,
        per_minute: spec.limits.per_minute.max(1),
        max_attempts: spec.limits.max_attempts.max(1),
        allow_hosts: spec.allow_hosts.clone(),
        enabled: spec.enabled,
    })
}

/// Dereferences the channel's Secret (in the channel's namespace) and resolves it with
/// [`channel_of`]; `Err` only when the API server cannot be read.
pub async fn resolve_channel(
    client: &Client,
    channel: &NotifyChannel,
) -> Result<Result<Channel, (&'static str, String)>, Error> {
    let secret = match &channel.spec.secret_ref {
        None => None,
        Some(r) => {
            let namespace = channel.namespace().unwrap_or_default();
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
            secrets
                .get_opt(&r.name)
                .await
                .map_err(Error::Secret)?
                .and_then(|s| s.data?.get(&r.key).map(|b| b.0.clone()))
        }
    };
    Ok(channel_of(channel, secret.as_deref()))
}

fn reqwest_url_ok(url: &str) -> Result<(), &'static str> {
    let (scheme, rest) = url.split_once("://").ok_or("is not an absolute URL")?;
    if !matches!(scheme, "http" | "https") {
        return Err("is not http or https");
    }
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err("has no host");
    }
    Ok(())
}

/// The channel's status.
pub fn channel_status(
    current: Option<&NotifyChannelStatus>,
    generation: Option<i64>,
    resolved: &Result<Channel, (&'static str, String)>,
    now: &Time,
) -> NotifyChannelStatus {
    let old = current.cloned().unwrap_or_default();
    let wanted: Vec<Desired> = match resolved {
        Ok(c) => vec![
            conditions::ready(
                "Resolved",
                format!("{:?} channel ready", c.kind).to_lowercase(),
            ),
            conditions::condition(STALLED, Status::False, "Resolved", "the channel resolves"),
            conditions::condition(RECONCILING, Status::False, "Resolved", "resolved"),
        ],
        Err((reason, message)) => vec![
            conditions::not_ready(reason, message.clone()),
            conditions::condition(STALLED, Status::True, reason, message.clone()),
            conditions::condition(
                RECONCILING,
                Status::False,
                reason,
                "waits for an edit or its Secret",
            ),
        ],
    };
    NotifyChannelStatus {
        conditions: conditions::merge(&old.conditions, &wanted, generation, now),
        observed_generation: generation,
        ..old
    }
}

/// The rule's status: its validity and the catalog's delivery counts.
pub fn rule_status(
    current: Option<&NotifyRuleStatus>,
    generation: Option<i64>,
    validated: &Result<Rule, Vec<String>>,
    counts: &[(String, i64)],
    last_sent: &str,
    now: &Time,
) -> NotifyRuleStatus {
    let old = current.cloned().unwrap_or_default();
    let count = |s: &str| {
        counts
            .iter()
            .find(|(k, _)| k == s)
            .map_or(0, |(_, n)| *n)
            .max(0) as u64
    };
    let wanted: Vec<Desired> = match validated {
        Ok(rule) => vec![
            conditions::ready(
                "Valid",
                format!(
                    "{} action(s); {}",
                    rule.actions.len(),
                    if rule.enabled { "enabled" } else { "disabled" }
                ),
            ),
            conditions::condition(STALLED, Status::False, "Valid", "the rule applies"),
            conditions::condition(RECONCILING, Status::False, "Valid", "applied"),
        ],
        Err(errors) => {
            let message = crate::events::truncate(&errors.join("; "), 1024);
            vec![
                conditions::not_ready("InvalidSpec", message.clone()),
                conditions::condition(STALLED, Status::True, "InvalidSpec", message),
                conditions::condition(
                    RECONCILING,
                    Status::False,
                    "InvalidSpec",
                    "waits for an edit",
                ),
            ]
        }
    };
    let last = last_sent
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(Time);
    NotifyRuleStatus {
        matched: counts.iter().map(|(_, n)| (*n).max(0) as u64).sum(),
        delivered: count("sent"),
        throttled: count("throttled"),
        coalesced: count("coalesced"),
        failed: count("dead"),
        pending: count("pending") + count("digest"),
        last_delivery_time: last.or(old.last_delivery_time.clone()),
        last_matched_time: old.last_matched_time.clone(),
        conditions: conditions::merge(&old.conditions, &wanted, generation, now),
        observed_generation: generation,
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

async fn reconcile_channel(
    guard: Arc<DeserializeGuard<NotifyChannel>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let (namespace, name, generation) = match &guard.0 {
        Ok(c) => (
            c.namespace().unwrap_or_default(),
            c.name_any(),
            c.metadata.generation,
        ),
        Err(bad) => (
            bad.metadata.namespace.clone().unwrap_or_default(),
            bad.metadata.name.clone().unwrap_or_default(),
            bad.metadata.generation,
        ),
    };
    let key = id(&namespace, &name);
    let (current, resolved) = match &guard.0 {
        Err(bad) => (None, Err(("InvalidObject", bad.error.clone()))),
        Ok(channel) => (
            channel.status.clone(),
            resolve_channel(&ctx.client, channel).await?,
        ),
    };
    ctx.registry
        .set_channel(&key, resolved.as_ref().ok().cloned());
    let status = channel_status(current.as_ref(), generation, &resolved, &now());
    if current.as_ref() != Some(&status) {
        crate::events::apply_namespaced_status::<NotifyChannel>(
            &ctx.client,
            MANAGER,
            &namespace,
            &name,
            &status,
        )
        .await
        .map_err(Error::UpdateStatus)?;
    }
    // A Secret may appear or change: look again every minute.
    Ok(Action::requeue(Duration::from_secs(60)))
}

async fn reconcile_rule(
    guard: Arc<DeserializeGuard<NotifyRule>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let (namespace, name, generation) = match &guard.0 {
        Ok(r) => (
            r.namespace().unwrap_or_default(),
            r.name_any(),
            r.metadata.generation,
        ),
        Err(bad) => (
            bad.metadata.namespace.clone().unwrap_or_default(),
            bad.metadata.name.clone().unwrap_or_default(),
            bad.metadata.generation,
        ),
    };
    let key = id(&namespace, &name);
    let (current, validated) = match &guard.0 {
        Err(bad) => (None, Err(vec![bad.error.clone()])),
        Ok(rule) => (rule.status.clone(), rule_of(rule, &ctx.platform_namespace)),
    };
    ctx.registry
        .set_rule(&key, validated.as_ref().ok().cloned());
    let (counts, last) = ctx
        .store
        .notify
        .rule_counts(&key)
        .await
        .map_err(Error::Store)?;
    let status = rule_status(
        current.as_ref(),
        generation,
        &validated,
        &counts,
        &last,
        &now(),
    );
    if current.as_ref() != Some(&status) {
        crate::events::apply_namespaced_status::<NotifyRule>(
            &ctx.client,
            MANAGER,
            &namespace,
            &name,
            &status,
        )
        .await
        .map_err(Error::UpdateStatus)?;
    }
    Ok(Action::requeue(Duration::from_secs(30)))
}

/// Runs both controllers and the dispatcher until `shutdown` resolves.
pub async fn run<F>(ctx: Context, owner: String, shutdown: impl Fn() -> F)
where
    F: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    let ctx = Arc::new(ctx);
    let channels: Api<DeserializeGuard<NotifyChannel>> = Api::all(ctx.client.clone());
    let rules: Api<DeserializeGuard<NotifyRule>> = Api::all(ctx.client.clone());
    let channel_controller = Controller::new(channels, watcher::Config::default())
        .graceful_shutdown_on(shutdown())
        .run(
            reconcile_channel,
            |_, e: &Error, _| {
                tracing::warn!(error = %e, "notify channel reconcile failed");
                Action::requeue(Duration::from_secs(15))
            },
            ctx.clone(),
        )
        .for_each(|_| async {});
    let rule_controller = Controller::new(rules, watcher::Config::default())
        .graceful_shutdown_on(shutdown())
        .run(
            reconcile_rule,
            |_, e: &Error, _| {
                tracing::warn!(error = %e, "notify rule reconcile failed");
                Action::requeue(Duration::from_secs(15))
            },
            ctx.clone(),
        )
        .for_each(|_| async {});
    let dispatcher = stella_notify::Dispatcher::new(
        ctx.store.notify.clone(),
        ctx.registry.clone(),
        Arc::new(stella_notify::SystemClock),
        &owner,
    );
    let metrics = ctx.metrics.clone();
    let dispatch = async {
        // Give the controllers a moment to register what exists before the first pass.
        tokio::time::sleep(Duration::from_secs(2)).await;
        dispatcher
            .run(
                Duration::from_millis(500),
                |tick| metrics.notified(tick),
                shutdown(),
            )
            .await;
    };
    futures::join!(channel_controller, rule_controller, dispatch);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> NotifyRule {
        let mut r: NotifyRule = serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "NotifyRule",
            "metadata": {"name": "crit", "namespace": "prod"},
            "spec": serde_saphyr::from_str::<serde_json::Value>(yaml).unwrap(),
        }))
        .unwrap();
        r.metadata.generation = Some(2);
        r
    }

    fn channel(spec: serde_json::Value) -> NotifyChannel {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "NotifyChannel",
            "metadata": {"name": "slack", "namespace": "prod"}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn a_rule_can_name_exactly_the_kinds_the_product_emits() {
        use kube::CustomResourceExt;
        fn find<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v serde_json::Value> {
            match v {
                serde_json::Value::Object(m) => {
                    m.get(key).or_else(|| m.values().find_map(|c| find(c, key)))
                }
                serde_json::Value::Array(a) => a.iter().find_map(|c| find(c, key)),
                _ => None,
            }
        }
        let crd = serde_json::to_value(NotifyRule::crd()).unwrap();
        let kinds = find(&crd, "eventKinds").unwrap();
        let mut listed: Vec<&str> = kinds["items"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        listed.sort();
        let mut emitted = stella_notify::event::KINDS.to_vec();
        emitted.sort();
        assert_eq!(listed, emitted);
    }

    #[test]
    fn rules_convert_or_say_why_not() {
        let r = rule_of(
            &rule("match: {eventKinds: [scheduler.rescan.delta], minSeverity: High, verdicts: [FAIL], vex: {includeAcceptedJustifications: true}}\nactions: [{channel: slack, throttle: PT5M, template: detailed}]"),
            "stella-system",
        )
        .unwrap();
        assert_eq!(r.id, "prod/crit");
        assert_eq!(r.kinds, ["scheduler.rescan.delta"]);
        assert_eq!(r.min_severity, Some(stella_model::Severity::High));
        assert_eq!(r.verdicts, ["FAIL"]);
        assert!(r.include_accepted_justifications && !r.cluster_wide);
        assert_eq!(r.actions[0].channel, "prod/slack");
        assert_eq!(r.actions[0].throttle, Some(Duration::from_secs(300)));
        assert_eq!(r.actions[0].template, Template::Detailed);
        let errors = rule_of(&rule("match: {eventKinds: [scanner.report.ready]}\nactions: [{channel: a, template: fancy}, {channel: b, throttle: 0s}]"), "x").unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("actions[0].template") && errors[1].contains("actions[1].throttle")
        );
        let status = rule_status(None, Some(2), &Err(errors), &[], "", &now());
        assert_eq!(status.observed_generation, Some(2));
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == STALLED && c.status == "True")
        );
        let counts = vec![
            ("sent".to_string(), 3),
            ("throttled".to_string(), 2),
            ("dead".to_string(), 1),
            ("digest".to_string(), 4),
        ];
        let ok = rule_status(
            None,
            Some(2),
            &Ok(r),
            &counts,
            "2026-12-01T00:00:00.000Z",
            &now(),
        );
        assert_eq!(
            (
                ok.matched,
                ok.delivered,
                ok.throttled,
                ok.failed,
                ok.pending
            ),
            (10, 3, 2, 1, 4)
        );
        assert!(ok.last_delivery_time.is_some());
    }

    #[test]
    fn channels_resolve_without_leaking_the_secret() {
        let slack =
            channel(serde_json::json!({"type": "slack", "secretRef": {"name": "s", "key": "url"}}));
        let secret = b"https://hooks.slack.com/services/T000/B000/XXXX\n";
        let c = channel_of(&slack, Some(secret)).unwrap();
        assert_eq!(
            (c.kind, c.url.as_str()),
            (
                Kind::Slack,
                "https://hooks.slack.com/services/T000/B000/XXXX"
            )
        );
        assert!(!format!("{c:?}").contains("XXXX"), "Debug hides the URL");
        assert_eq!(channel_of(&slack, None).unwrap_err().0, "SecretNotFound");
        let (reason, message) = channel_of(&slack, Some(b"not a url with XXXX")).unwrap_err();
        assert_eq!(reason, "InvalidURL");
        assert!(!message.contains("XXXX"));
        let hook = channel(
            serde_json::json!({"type": "webhook", "endpoint": "https://example.org/hook", "secretRef": {"name": "s", "key": "k"}, "allowHosts": ["10.0.0.5"]}),
        );
        let c = channel_of(&hook, Some(b"whsec_abc")).unwrap();
        assert_eq!(
            (c.kind, c.signing_secret.as_deref(), c.allow_hosts.len()),
            (Kind::Webhook, Some(&b"whsec_abc"[..]), 1)
        );
        let email = channel(
            serde_json::json!({"type": "email", "email": {"smtpHost": "mail", "from": "a@b"}}),
        );
        let c = channel_of(&email, None).unwrap();
        let smtp = c.email.as_ref().unwrap();
        assert_eq!(
            (c.kind, smtp.port, smtp.security, c.url.as_str()),
            (
                Kind::Email,
                587,
                stella_notify::email::Security::StartTls,
                "smtp://mail:587"
            )
        );
        let authed = channel(
            serde_json::json!({"type": "email", "target": "sec@x.example",
            "secretRef": {"name": "s", "key": "password"},
            "email": {"smtpHost": "mail", "from": "a@b", "username": "u", "security": "tls", "smtpPort": 465}}),
        );
        let c = channel_of(&authed, Some(b"hunter2\n")).unwrap();
        let smtp = c.email.as_ref().unwrap();
        assert_eq!(
            (smtp.password.as_deref(), c.target.as_deref()),
            (Some("hunter2"), Some("sec@x.example"))
        );
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "Debug hides the password"
        );
        let no_password = channel(serde_json::json!({"type": "email",
            "email": {"smtpHost": "mail", "from": "a@b", "username": "u"}}));
        let (reason, message) = channel_of(&no_password, None).unwrap_err();
        assert_eq!(reason, "InvalidSpec", "{message}");
        let bad_ca = channel(serde_json::json!({"type": "email",
            "email": {"smtpHost": "mail", "from": "a@b", "caCertificates": "garbage"}}));
        assert_eq!(channel_of(&bad_ca, None).unwrap_err().0, "InvalidSpec");
        let status = channel_status(None, Some(1), &channel_of(&bad_ca, None), &now());
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "False")
        );
        // kstatus: settled (not reconciling), and stalled until an edit.
        for (type_, want) in [(RECONCILING, "False"), (STALLED, "True")] {
            assert!(
                status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == want),
                "{type_}: {:?}",
                status.conditions
            );
        }
    }
}
