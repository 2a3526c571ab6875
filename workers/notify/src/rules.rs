//! Rules: which events a NotifyRule matches, and what the dispatcher plans for a match — one
//! delivery per event × rule × action under an idempotency key, throttled or waiting for its
//! digest window as the action says.
//!
//! Visibility: a rule sees the events of its own namespace and the cluster-wide ones (feeds,
//! policies); a rule in the platform namespace (the operator's own) sees every namespace's
//! events. `match.namespaces` narrows further, by glob.
//!
//! Throttle key: rule × action × event kind × subject (the image digest for image events),
//! so one image flapping in one rule is one message per window, while other images still
//! get theirs.

use crate::event::{Event, Finding};
use chrono::{DateTime, Datelike, Duration, DurationRound, Utc};
use sha2::{Digest, Sha256};
use stella_model::{Severity, glob};
use stella_store::DeliveryRow;

/// A digest window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Hourly,
    Daily,
    Weekly,
}

impl Period {
    /// The end of the window `at` falls in (UTC: the next hour, midnight, or Monday 00:00).
    pub fn window_end(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let hour = at.duration_trunc(Duration::hours(1)).unwrap_or(at);
        match self {
            Period::Hourly => hour + Duration::hours(1),
            Period::Daily => at.duration_trunc(Duration::days(1)).unwrap_or(at) + Duration::days(1),
            Period::Weekly => {
                let day = at.duration_trunc(Duration::days(1)).unwrap_or(at);
                let from_monday = i64::from(day.weekday().num_days_from_monday());
                day - Duration::days(from_monday) + Duration::days(7)
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
        }
    }
}

/// One action of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// `<namespace>/<name>` of the NotifyChannel.
    pub channel: String,
    /// Overrides the channel's default target.
    pub target: Option<String>,
    /// `concise` (default) or `detailed`.
    pub template: Template,
    /// A custom title and body ([`crate::template`]), checked when the rule was applied.
    pub custom: Option<std::sync::Arc<crate::template::Custom>>,
    pub throttle: Option<std::time::Duration>,
    pub digest: Option<Period>,
}

/// The built-in message layouts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Template {
    /// Verdict, image and the five most severe findings.
    #[default]
    Concise,
    /// Every finding the event carries (up to the channel's size limits).
    Detailed,
}

impl Template {
    pub fn parse(key: &str) -> Option<Template> {
        match key {
            "concise" => Some(Template::Concise),
            "detailed" => Some(Template::Detailed),
            _ => None,
        }
    }

    /// How many findings a message lists before "and N more".
    pub fn findings_shown(self) -> usize {
        match self {
            Template::Concise => 5,
            Template::Detailed => 40,
        }
    }
}

/// A NotifyRule as the dispatcher applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// `<namespace>/<name>`.
    pub id: String,
    pub namespace: String,
    /// The rule lives in the platform namespace: it sees every namespace's events.
    pub cluster_wide: bool,
    pub kinds: Vec<String>,
    pub min_severity: Option<Severity>,
    pub namespaces: Vec<String>,
    pub repositories: Vec<String>,
    /// `PASS`, `WARN`, `FAIL`.
    pub verdicts: Vec<String>,
    pub kev_only: bool,
    pub include_accepted_justifications: bool,
    pub actions: Vec<Action>,
    pub enabled: bool,
}

impl Rule {
    /// Whether the rule matches `event`, and if so the event's findings that pass its
    /// finding selectors (an event without findings passes them when it matches otherwise).
    pub fn matches(&self, event: &Event) -> Option<Vec<Finding>> {
        if !self.enabled || !self.kinds.contains(&event.kind) {
            return None;
        }
        let visible =
            self.cluster_wide || event.namespace.is_empty() || event.namespace == self.namespace;
        if !visible {
            return None;
        }
        let scope = &event.data.scope;
        let namespace = if scope.namespace.is_empty() {
            &event.namespace
        } else {
            &scope.namespace
        };
        if !self.namespaces.is_empty() && !self.namespaces.iter().any(|g| glob(g, namespace)) {
            return None;
        }
        if !self.repositories.is_empty()
            && !self.repositories.iter().any(|g| glob(g, &scope.repository))
        {
            return None;
        }
        let payload = &event.data.payload;
        if !self.verdicts.is_empty() {
            let verdict = payload.verdict.as_deref()?;
            if !self
                .verdicts
                .iter()
                .any(|v| v.eq_ignore_ascii_case(verdict))
            {
                return None;
            }
        }
        let Some(findings) = payload.findings.as_ref() else {
            // Selectors on findings cannot hold for an event that carries none.
            return (self.min_severity.is_none() && !self.kev_only).then(Vec::new);
        };
        let kept: Vec<Finding> = findings
            .iter()
            .filter(|f| self.include_accepted_justifications || !f.accepted_by_vex())
            .filter(|f| !self.kev_only || f.kev)
            .filter(|f| {
                self.min_severity
                    .is_none_or(|min| f.severity().rank() >= min.rank() && f.severity().rank() > 0)
            })
            .cloned()
            .collect();
        if kept.is_empty() && (self.min_severity.is_some() || self.kev_only || !findings.is_empty())
        {
            return None;
        }
        Some(kept)
    }
}

/// The delivery id of `event` × `rule` × action `index`: its idempotency key.
pub fn delivery_id(event_id: &str, rule: &str, index: usize) -> String {
    let mut h = Sha256::new();
    h.update(event_id.as_bytes());
    h.update([0]);
    h.update(rule.as_bytes());
    h.update([0]);
    h.update(index.to_string().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The id of the digest delivery of a digest group.
pub fn digest_id(group_key: &str) -> String {
    hex::encode(&Sha256::digest(group_key.as_bytes())[..16])
}

/// Times as the store compares them: RFC 3339, milliseconds, `Z`.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What the dispatcher plans for `event` against `rules` at `now`: the rows to record, each
/// with the end of the throttle window it opens (throttled actions only).
pub fn plan(
    event: &Event,
    rules: &[Rule],
    now: DateTime<Utc>,
) -> Vec<(DeliveryRow, Option<String>)> {
    let mut out = Vec::new();
    for rule in rules {
        let Some(findings) = rule.matches(event) else {
            continue;
        };
        for (index, action) in rule.actions.iter().enumerate() {
            let mut row = DeliveryRow {
                id: delivery_id(&event.id, &rule.id, index),
                event_id: event.id.clone(),
                rule: rule.id.clone(),
                action: index as i64,
                channel: action.channel.clone(),
                target: action.target.clone().unwrap_or_default(),
                status: "pending".into(),
                reason: format!(
                    "matched {} ({} finding(s) selected)",
                    event.kind,
                    findings.len()
                ),
                group_key: String::new(),
                members: "[]".into(),
                attempts: 0,
                last_error: String::new(),
                created_at: stamp(now),
                next_attempt_at: stamp(now),
                sent_at: String::new(),
            };
            let mut until = None;
            if let Some(period) = action.digest {
                let end = period.window_end(now);
                row.status = "digest".into();
                row.group_key = format!("digest:{}:{index}:{}", rule.id, stamp(end));
                row.reason = format!("{}; waiting for the {} digest", row.reason, period.as_str());
                row.next_attempt_at = stamp(end);
            } else if let Some(window) = action.throttle {
                row.group_key = format!(
                    "throttle:{}:{index}:{}:{}",
                    rule.id, event.kind, event.subject
                );
                let window = Duration::from_std(window).unwrap_or(Duration::zero());
                until = Some(stamp(now + window));
            }
            out.push((row, until));
        }
    }
    out
}

/// Parses `5m`, `1h30m`, `90s`, `250ms` or ISO 8601 (`PT5M`, `P1D`, `P1W`).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    if let Some(iso) = text.strip_prefix('P') {
        let (date, time) = iso.split_once('T').unwrap_or((iso, ""));
        let mut secs = 0u64;
        for (part, units) in [
            (date, &[('W', 604_800u64), ('D', 86_400)][..]),
            (time, &[('H', 3600), ('M', 60), ('S', 1)][..]),
        ] {
            let mut digits = String::new();
            for c in part.chars() {
                if c.is_ascii_digit() {
                    digits.push(c);
                } else {
                    let unit = units.iter().find(|(u, _)| *u == c)?.1;
                    secs = secs.checked_add(digits.parse::<u64>().ok()?.checked_mul(unit)?)?;
                    digits.clear();
                }
            }
            if !digits.is_empty() {
                return None;
            }
        }
        return (!iso.is_empty()).then_some(std::time::Duration::from_secs(secs));
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (std::time::Duration::from_millis(1), 2)
        } else {
            let secs = match rest.chars().next()? {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return None,
            };
            (std::time::Duration::from_secs(secs), 1)
        };
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
        rest = &rest[len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Data, Payload, REPORT_READY, RESCAN_DELTA, Scope};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn finding(id: &str, severity: &str, kev: bool, vex: &str) -> Finding {
        Finding {
            id: id.into(),
            severity: severity.into(),
            package: "pkg:deb/debian/openssl".into(),
            kev,
            vex_status: if vex.is_empty() {
                String::new()
            } else {
                "not_affected".into()
            },
            vex_justification: vex.into(),
            ..Finding::default()
        }
    }

    fn event(namespace: &str, verdict: &str, findings: Vec<Finding>) -> Event {
        Event::new(
            RESCAN_DELTA,
            "/stella-ops/operator",
            "sha256:img",
            namespace,
            at("2026-12-01T10:20:00Z"),
            Data {
                scope: Scope {
                    namespace: namespace.into(),
                    image: "registry.example/team/web:1".into(),
                    repository: "registry.example/team/web".into(),
                    digest: "sha256:img".into(),
                    ..Scope::default()
                },
                payload: Payload {
                    verdict: Some(verdict.into()),
                    findings: Some(findings),
                    ..Payload::default()
                },
            },
        )
    }

    fn rule() -> Rule {
        Rule {
            id: "prod-a/criticals".into(),
            namespace: "prod-a".into(),
            cluster_wide: false,
            kinds: vec![RESCAN_DELTA.into()],
            min_severity: Some(Severity::High),
            namespaces: vec!["prod-*".into()],
            repositories: vec!["registry.example/team/*".into()],
            verdicts: vec!["FAIL".into()],
            kev_only: false,
            include_accepted_justifications: false,
            actions: vec![Action {
                channel: "prod-a/slack".into(),
                target: None,
                template: Template::Concise,
                custom: None,
                throttle: Some(std::time::Duration::from_secs(300)),
                digest: None,
            }],
            enabled: true,
        }
    }

    #[test]
    fn selectors() {
        let r = rule();
        let crit = finding("CVE-1", "Critical", false, "");
        let low = finding("CVE-2", "Low", false, "");
        assert_eq!(
            r.matches(&event("prod-a", "FAIL", vec![crit.clone(), low.clone()])),
            Some(vec![crit.clone()])
        );
        assert_eq!(
            r.matches(&event("prod-a", "PASS", vec![crit.clone()])),
            None,
            "verdict"
        );
        assert_eq!(
            r.matches(&event("prod-a", "FAIL", vec![low.clone()])),
            None,
            "severity"
        );
        assert_eq!(
            r.matches(&event("prod-b", "FAIL", vec![crit.clone()])),
            None,
            "another namespace's event"
        );
        let mut wide = rule();
        wide.cluster_wide = true;
        assert!(
            wide.matches(&event("prod-b", "FAIL", vec![crit.clone()]))
                .is_some()
        );
        assert_eq!(
            wide.matches(&event("dev", "FAIL", vec![crit.clone()])),
            None,
            "namespace glob"
        );
        let mut other_kind = rule();
        other_kind.kinds = vec![REPORT_READY.into()];
        assert_eq!(
            other_kind.matches(&event("prod-a", "FAIL", vec![crit.clone()])),
            None
        );
        let mut repo = rule();
        repo.repositories = vec!["registry.example/other/*".into()];
        assert_eq!(
            repo.matches(&event("prod-a", "FAIL", vec![crit.clone()])),
            None
        );
        // KEV only, and the VEX gate.
        let mut kev = rule();
        kev.kev_only = true;
        let exploited = finding("CVE-3", "High", true, "");
        assert_eq!(
            kev.matches(&event(
                "prod-a",
                "FAIL",
                vec![crit.clone(), exploited.clone()]
            )),
            Some(vec![exploited])
        );
        let accepted = finding(
            "CVE-4",
            "Critical",
            false,
            "vulnerable_code_not_in_execute_path",
        );
        assert_eq!(
            r.matches(&event("prod-a", "FAIL", vec![accepted.clone()])),
            None
        );
        let mut gate = rule();
        gate.include_accepted_justifications = true;
        assert_eq!(
            gate.matches(&event("prod-a", "FAIL", vec![accepted.clone()])),
            Some(vec![accepted])
        );
        let mut off = rule();
        off.enabled = false;
        assert_eq!(off.matches(&event("prod-a", "FAIL", vec![crit])), None);
    }

    #[test]
    fn plans_are_keyed_throttled_and_windowed() {
        let r = rule();
        let e = event(
            "prod-a",
            "FAIL",
            vec![finding("CVE-1", "Critical", false, "")],
        );
        let now = at("2026-12-01T10:20:00Z");
        let planned = plan(&e, std::slice::from_ref(&r), now);
        assert_eq!(planned.len(), 1);
        let (row, until) = &planned[0];
        assert_eq!(row.id, delivery_id(&e.id, &r.id, 0));
        assert_eq!(
            plan(&e, std::slice::from_ref(&r), now + Duration::hours(1))[0]
                .0
                .id,
            row.id,
            "same key whenever planned"
        );
        assert_eq!(
            row.group_key,
            format!("throttle:prod-a/criticals:0:{RESCAN_DELTA}:sha256:img")
        );
        assert_eq!(until.as_deref(), Some("2026-12-01T10:25:00.000Z"));
        let mut digest = rule();
        digest.actions[0].throttle = None;
        digest.actions[0].digest = Some(Period::Hourly);
        let (row, until) = plan(&e, &[digest], now).remove(0);
        assert_eq!(
            (row.status.as_str(), row.next_attempt_at.as_str(), until),
            ("digest", "2026-12-01T11:00:00.000Z", None)
        );
    }

    #[test]
    fn windows() {
        let t = at("2026-12-02T10:20:00Z"); // a Wednesday
        assert_eq!(Period::Hourly.window_end(t), at("2026-12-02T11:00:00Z"));
        assert_eq!(Period::Daily.window_end(t), at("2026-12-03T00:00:00Z"));
        assert_eq!(Period::Weekly.window_end(t), at("2026-12-07T00:00:00Z"));
        assert_eq!(
            Period::Weekly.window_end(at("2026-12-07T00:00:00Z")),
            at("2026-12-14T00:00:00Z")
        );
    }

    #[test]
    fn durations_and_globs() {
        let s = std::time::Duration::from_secs;
        assert_eq!(parse_duration("5m"), Some(s(300)));
        assert_eq!(parse_duration("1h30m"), Some(s(5400)));
        assert_eq!(parse_duration("PT5M"), Some(s(300)));
        assert_eq!(parse_duration("P1DT2H"), Some(s(93_600)));
        assert_eq!(parse_duration("P1W"), Some(s(604_800)));
        assert_eq!(
            parse_duration("250ms"),
            Some(std::time::Duration::from_millis(250))
        );
        for bad in ["", "5", "m", "PT5", "5x", "P", "99999999999999999999s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert!(glob("prod-*", "prod-eu"));
        assert!(!glob("prod-*", "dev"));
        assert!(glob("a?c*", "abcdef"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acc"));
    }
}
