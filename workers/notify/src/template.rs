//! Custom message templates: Jinja syntax rendered by `minijinja` in a sandbox. Why minijinja:
//! it is pure Rust with no file or network access (no loader is configured, and without its
//! `multi_template` feature `include`, `import` and `extends` do not exist), it bounds work by
//! *fuel* (every instruction costs one; a template that loops or recurses without end runs
//! out) and recursion depth, and its syntax is the one people know from Ansible, Salt and
//! dbt. Output is bounded too: a render that writes more than [`MAX_OUTPUT`] bytes stops.
//!
//! A rule's template is compiled and rendered against a sample event with the most findings
//! an event carries when the rule is applied ([`check`]), so a syntax error, an endless loop
//! or a huge expansion makes the rule `Stalled` then — not at send time. A render that still
//! fails on a real event (data-dependent) falls back to the built-in message, with a warning
//! in the operator's log.
//!
//! The context: `title`, `facts` (list of `[name, value]`), `findings` (each `id`,
//! `severity`, `package`, `installed`, `fixed`, `kev`, `vexStatus`, `link`), `more`, `link`,
//! `rule`, and `event` (the whole CloudEvent; a digest's first) and `events` (a digest's).

use crate::event::{Data, Event, Finding, MAX_FINDINGS, Payload, Scope};
use crate::render::Message;
use serde::Serialize;

/// Instructions a render may execute.
pub const FUEL: u64 = 200_000;
/// Bytes a render may write.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Nesting (macros, loops, includes of blocks) a render may reach.
pub const RECURSION: usize = 32;

/// A rule action's own title and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Custom {
    /// `None`: the built-in title.
    pub title: Option<String>,
    pub body: String,
}

#[derive(Serialize)]
struct Context<'a> {
    title: &'a str,
    facts: &'a [(String, String)],
    findings: &'a [Finding],
    more: u64,
    link: &'a str,
    rule: &'a str,
    event: Option<&'a Event>,
    events: &'a [Event],
}

/// A writer that refuses past [`MAX_OUTPUT`].
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT {
            return Err(std::io::Error::other("output limit"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn environment() -> minijinja::Environment<'static> {
    // The built-in filters, tests and `range` (bounded to 100,000 items by minijinja, as
    // is string repetition), and nothing that reaches outside the context.
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION);
    env
}

fn render_one(
    env: &minijinja::Environment<'static>,
    source: &str,
    ctx: &Context<'_>,
) -> Result<String, String> {
    let template = env.template_from_str(source).map_err(describe)?;
    let mut out = Bounded(Vec::new());
    match template.render_captured_to(ctx, &mut out) {
        Ok(_) => Ok(String::from_utf8_lossy(&out.0).into_owned()),
        Err(e) if e.kind() == minijinja::ErrorKind::WriteFailure => {
            Err(format!("the template writes more than {MAX_OUTPUT} bytes"))
        }
        Err(e) => Err(describe(e)),
    }
}

fn describe(e: minijinja::Error) -> String {
    let what = match e.kind() {
        minijinja::ErrorKind::OutOfFuel => {
            format!("the template runs past its budget of {FUEL} steps (an endless or huge loop?)")
        }
        _ => e
            .detail()
            .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind())),
    };
    match e.line() {
        Some(line) => format!("line {line}: {what}"),
        None => what,
    }
}

/// `message` with the custom title and body rendered in (`events`: what it was made from).
pub fn apply(custom: &Custom, message: &Message, events: &[Event]) -> Result<Message, String> {
    let env = environment();
    let ctx = Context {
        title: &message.title,
        facts: &message.facts,
        findings: &message.findings,
        more: message.more,
        link: &message.link,
        rule: &message.rule,
        event: events.first(),
        events,
    };
    let mut out = message.clone();
    if let Some(title) = &custom.title {
        let title = render_one(&env, title, &ctx)?;
        out.title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    out.custom = Some(render_one(&env, &custom.body, &ctx)?);
    Ok(out)
}

/// Compiles the template and renders it against a sample event with [`MAX_FINDINGS`]
/// findings: `Err` with the line and the reason when it does not compile, fails, runs out of
/// fuel or writes too much.
pub fn check(custom: &Custom) -> Result<(), String> {
    let findings: Vec<Finding> = (0..MAX_FINDINGS)
        .map(|i| Finding {
            id: format!("CVE-2026-{i:05}"),
            severity: "Critical".into(),
            package: format!("pkg:deb/debian/package-{i}@1.0"),
            installed: "1.0".into(),
            fixed: "1.1".into(),
            kev: i % 7 == 0,
            link: format!("https://osv.dev/vulnerability/CVE-2026-{i:05}"),
            ..Finding::default()
        })
        .collect();
    let event = Event::new(
        crate::event::RESCAN_DELTA,
        "/stella-ops/operator",
        "sha256:sample",
        "sample",
        chrono::DateTime::UNIX_EPOCH,
        Data {
            scope: Scope {
                namespace: "sample".into(),
                image: "registry.example/sample/app:1".into(),
                repository: "registry.example/sample/app".into(),
                digest: "sha256:sample".into(),
                workloads: vec!["Deployment/app".into()],
                object: "Scan/app".into(),
                ..Scope::default()
            },
            payload: Payload {
                summary: "sample".into(),
                verdict: Some("FAIL".into()),
                previous_verdict: Some("PASS".into()),
                findings: Some(findings.clone()),
                ..Payload::default()
            },
        },
    );
    let message = Message::of_event(
        &event,
        &findings,
        "sample/rule",
        crate::rules::Template::Detailed,
    );
    let message = Message {
        findings,
        ..message
    };
    apply(custom, &message, std::slice::from_ref(&event)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(body: &str) -> Custom {
        Custom {
            title: None,
            body: body.into(),
        }
    }

    #[test]
    fn a_template_renders_the_message_it_is_given() {
        let t = Custom {
            title: Some("{{ findings | length }} new in {{ event.data.scope.image }}".into()),
            body: "{% for f in findings[:2] %}{{ f.id }} ({{ f.severity }}) fixed in {{ f.fixed }}\n{% endfor %}and {{ findings | length - 2 }} more".into(),
        };
        assert_eq!(check(&t), Ok(()));
    }

    #[test]
    fn syntax_errors_loops_and_expansions_are_refused_with_the_reason() {
        let syntax = check(&custom("{% for f in findings %}{{ f.id }")).unwrap_err();
        assert!(syntax.contains("line 1"), "{syntax}");
        let endless = check(&custom(
            "{% for a in range(10000) %}{% for b in range(10000) %}{{ a }}{% endfor %}{% endfor %}",
        ))
        .unwrap_err();
        assert!(
            endless.contains("budget") || endless.contains("more than"),
            "{endless}"
        );
        let huge = check(&custom("{{ 'x' * 100000000 }}")).unwrap_err();
        assert!(!huge.is_empty());
        let recursion = check(&custom(
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        ));
        assert!(recursion.is_err(), "{recursion:?}");
        // No file access: there is no loader, and no include.
        let include = check(&custom("{% include '/etc/passwd' %}")).unwrap_err();
        assert!(!include.is_empty());
        let unknown = check(&custom("{{ 'x' | urlencode }}")).unwrap_err();
        assert!(
            unknown.contains("urlencode") || unknown.contains("filter"),
            "{unknown}"
        );
    }
}
