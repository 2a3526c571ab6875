//! Messages people read: one [`Message`] from an event (or a digest of many), rendered as
//! Slack Block Kit, a Teams Adaptive Card 1.5, plain text, or a CloudEvents body for generic
//! webhooks. Every rendering is size-bounded: findings past the template's count become
//! "and N more", and text is cut to the receiver's published limits (Slack: 50 blocks, 150
//! characters in a header, 3,000 in a section).

use crate::event::{Event, Finding};
use crate::rules::Template;
use serde_json::{Value, json};

/// Slack's limits (Block Kit reference).
pub const SLACK_MAX_BLOCKS: usize = 50;
pub const SLACK_HEADER_CHARS: usize = 150;
pub const SLACK_SECTION_CHARS: usize = 3000;

/// What a message says, whatever the channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub title: String,
    /// One line per fact: image, digest, namespaces, workloads, verdict.
    pub facts: Vec<(String, String)>,
    pub findings: Vec<Finding>,
    /// Findings not listed.
    pub more: u64,
    pub link: String,
    /// The rule that fired.
    pub rule: String,
    /// A custom template's rendered body, which replaces the facts and findings.
    pub custom: Option<String>,
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

impl Message {
    /// The message of one event, its findings those the rule selected.
    pub fn of_event(
        event: &Event,
        findings: &[Finding],
        rule: &str,
        template: Template,
    ) -> Message {
        let scope = &event.data.scope;
        let payload = &event.data.payload;
        let verdict = match (&payload.previous_verdict, &payload.verdict) {
            (Some(before), Some(now)) if before != now => format!("{before} → {now}"),
            (_, Some(now)) => now.clone(),
            _ => String::new(),
        };
        let what = match event.kind.as_str() {
            crate::event::RESCAN_DELTA => "Findings changed",
            crate::event::REPORT_READY => "Report ready",
            crate::event::SCAN_COMPLETED => "Scan completed",
            crate::event::ADMISSION => "Admission decision",
            crate::event::FEEDS_CHANGED => "Feeds changed",
            crate::event::POLICY_CHANGED => "Policy changed",
            _ => event.kind.as_str(),
        };
        let about = if scope.image.is_empty() {
            &event.subject
        } else {
            &scope.image
        };
        let mut title = format!("{what}: {about}");
        if !verdict.is_empty() {
            title = format!("{title} — {verdict}");
        }
        let mut facts = Vec::new();
        let mut fact = |k: &str, v: &str| {
            if !v.is_empty() {
                facts.push((k.to_string(), v.to_string()));
            }
        };
        fact("Image", &scope.image);
        fact("Digest", &scope.digest);
        fact(
            "Namespace",
            if scope.namespace.is_empty() {
                &event.namespace
            } else {
                &scope.namespace
            },
        );
        fact("Workloads", &scope.workloads.join(", "));
        fact("Verdict", &verdict);
        fact("Object", &scope.object);
        fact("Summary", &payload.summary);
        let shown = template.findings_shown();
        let more = findings.len().saturating_sub(shown) as u64 + payload.more_findings;
        Message {
            title,
            facts,
            findings: findings.iter().take(shown).cloned().collect(),
            more,
            link: payload.link.clone(),
            rule: rule.to_string(),
            custom: None,
        }
    }

    /// One message for a digest of events: a line per event, its most severe findings.
    pub fn of_digest(
        events: &[(Event, Vec<Finding>)],
        rule: &str,
        period: &str,
        template: Template,
    ) -> Message {
        let images: std::collections::BTreeSet<&str> = events
            .iter()
            .map(|(e, _)| {
                if e.data.scope.image.is_empty() {
                    e.subject.as_str()
                } else {
                    e.data.scope.image.as_str()
                }
            })
            .collect();
        let mut all: Vec<Finding> = events.iter().flat_map(|(_, f)| f.iter().cloned()).collect();
        all.sort_by(|a, b| {
            b.severity()
                .rank()
                .cmp(&a.severity().rank())
                .then_with(|| a.id.cmp(&b.id))
        });
        all.dedup_by(|a, b| a.id == b.id && a.package == b.package);
        let shown = template.findings_shown();
        let mut facts = vec![
            ("Events".to_string(), events.len().to_string()),
            ("Images".to_string(), images.len().to_string()),
        ];
        let listed: Vec<&str> = images.iter().take(10).copied().collect();
        let mut list = listed.join(", ");
        if images.len() > listed.len() {
            list = format!("{list} and {} more", images.len() - listed.len());
        }
        facts.push(("Which".into(), list));
        Message {
            title: format!(
                "{} digest: {} event(s) across {} image(s)",
                capitalise(period),
                events.len(),
                images.len()
            ),
            facts,
            more: all.len().saturating_sub(shown) as u64,
            findings: all.into_iter().take(shown).collect(),
            link: String::new(),
            rule: rule.to_string(),
            custom: None,
        }
    }

    fn finding_line(f: &Finding) -> String {
        let fix = if f.fixed.is_empty() {
            "no fix yet".to_string()
        } else {
            format!("fixed in {}", f.fixed)
        };
        let kev = if f.kev { " · KEV" } else { "" };
        format!("{} {} in {} ({fix}{kev})", f.severity, f.id, f.package)
    }

    /// Plain text (e-mail bodies, logs).
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.title);
        if let Some(custom) = &self.custom {
            out.push_str(custom.trim_end());
            out.push('\n');
            if !self.link.is_empty() {
                out.push_str(&format!("\nReport: {}\n", self.link));
            }
            out.push_str(&format!("\nSent by NotifyRule {}\n", self.rule));
            return out;
        }
        for (k, v) in &self.facts {
            out.push_str(&format!("{k}: {v}\n"));
        }
        if !self.findings.is_empty() {
            out.push('\n');
            for f in &self.findings {
                out.push_str(&format!("- {}", Self::finding_line(f)));
                if !f.link.is_empty() {
                    out.push_str(&format!(" <{}>", f.link));
                }
                out.push('\n');
            }
        }
        if self.more > 0 {
            out.push_str(&format!("… and {} more\n", self.more));
        }
        if !self.link.is_empty() {
            out.push_str(&format!("\nReport: {}\n", self.link));
        }
        out.push_str(&format!("\nSent by NotifyRule {}\n", self.rule));
        out
    }

    /// HTML (the e-mail alternative to [`text`](Message::text)): every value escaped, links
    /// only `http(s)`.
    pub fn html(&self) -> String {
        let mut out = format!(
            "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<h2>{}</h2>\n",
            escape_html(&self.title)
        );
        if let Some(custom) = &self.custom {
            out.push_str(&format!(
                "<pre style=\"font-family:inherit;white-space:pre-wrap\">{}</pre>\n",
                escape_html(custom.trim_end())
            ));
        }
        if self.custom.is_none() && !self.facts.is_empty() {
            out.push_str("<table>\n");
            for (k, v) in &self.facts {
                out.push_str(&format!(
                    "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
                    escape_html(k),
                    escape_html(v)
                ));
            }
            out.push_str("</table>\n");
        }
        if self.custom.is_none() && !self.findings.is_empty() {
            out.push_str("<ul>\n");
            for f in &self.findings {
                out.push_str(&format!("<li>{}", escape_html(&Self::finding_line(f))));
                if let Some(link) = web_link(&f.link) {
                    out.push_str(&format!(" <a href=\"{}\">advisory</a>", escape_html(link)));
                }
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
        }
        if self.more > 0 && self.custom.is_none() {
            out.push_str(&format!("<p>… and {} more</p>\n", self.more));
        }
        if let Some(link) = web_link(&self.link) {
            out.push_str(&format!(
                "<p><a href=\"{}\">Open report</a></p>\n",
                escape_html(link)
            ));
        }
        out.push_str(&format!(
            "<p style=\"color:#666\">Sent by NotifyRule {}</p>\n</body></html>\n",
            escape_html(&self.rule)
        ));
        out
    }

    /// Slack incoming-webhook body: Block Kit within Slack's limits, with `text` as the
    /// notification fallback.
    pub fn slack(&self) -> Value {
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": cut(&self.title, SLACK_HEADER_CHARS)}}),
        ];
        if let Some(custom) = &self.custom {
            // The custom body, as plain mrkdwn sections of at most 3,000 characters.
            let chars: Vec<char> = escape_mrkdwn(custom.trim_end()).chars().collect();
            for chunk in chars.chunks(SLACK_SECTION_CHARS).take(SLACK_MAX_BLOCKS - 3) {
                let text: String = chunk.iter().collect();
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
            }
            if !self.link.is_empty() {
                blocks.push(json!({"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open report"}, "url": self.link}]}));
            }
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&format!("NotifyRule {}", escape_mrkdwn(&self.rule)), SLACK_SECTION_CHARS)}]}));
            return json!({"text": cut(&self.title, SLACK_SECTION_CHARS), "blocks": blocks});
        }
        let facts: String = self
            .facts
            .iter()
            .map(|(k, v)| format!("*{}:* {}\n", escape_mrkdwn(k), escape_mrkdwn(v)))
            .collect();
        if !facts.is_empty() {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&facts, SLACK_SECTION_CHARS)}}));
        }
        // Findings: one section per few lines, never past the block limit (3 kept for the rest).
        let mut chunk = String::new();
        let mut sections = Vec::new();
        for f in &self.findings {
            let mut line = format!("• {}", escape_mrkdwn(&Self::finding_line(f)));
            if !f.link.is_empty() {
                line = format!("{line} <{}|advisory>", f.link.replace(['<', '>', '|'], ""));
            }
            line.push('\n');
            if chunk.chars().count() + line.chars().count() > SLACK_SECTION_CHARS {
                sections.push(std::mem::take(&mut chunk));
            }
            chunk.push_str(&cut(&line, SLACK_SECTION_CHARS));
        }
        if !chunk.is_empty() {
            sections.push(chunk);
        }
        let room = SLACK_MAX_BLOCKS - blocks.len() - 3;
        let mut more = self.more;
        if sections.len() > room {
            more += sections[room..]
                .iter()
                .map(|s| s.lines().count() as u64)
                .sum::<u64>();
            sections.truncate(room);
        }
        for s in sections {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": s}}));
        }
        if more > 0 {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("… and {more} more")}}));
        }
        if !self.link.is_empty() {
            blocks.push(json!({"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open report"}, "url": self.link}]}));
        }
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&format!("NotifyRule {}", escape_mrkdwn(&self.rule)), SLACK_SECTION_CHARS)}]}));
        json!({"text": cut(&self.title, SLACK_SECTION_CHARS), "blocks": blocks})
    }

    /// Teams Workflows webhook body: a message with one Adaptive Card 1.5 attachment.
    pub fn teams(&self) -> Value {
        let mut body = vec![
            json!({"type": "TextBlock", "text": self.title, "weight": "Bolder", "size": "Medium", "wrap": true}),
        ];
        if let Some(custom) = &self.custom {
            body.push(json!({"type": "TextBlock", "text": custom.trim_end(), "wrap": true}));
        }
        if self.custom.is_none() && !self.facts.is_empty() {
            body.push(json!({"type": "FactSet", "facts": self.facts.iter().map(|(k, v)| json!({"title": k, "value": v})).collect::<Vec<_>>()}));
        }
        for f in self.findings.iter().filter(|_| self.custom.is_none()) {
            body.push(json!({"type": "TextBlock", "text": Self::finding_line(f), "wrap": true, "color": match f.severity() {
                stella_model::Severity::Critical | stella_model::Severity::High => "Attention",
                stella_model::Severity::Medium => "Warning",
                _ => "Default",
            }}));
        }
        if self.more > 0 && self.custom.is_none() {
            body.push(json!({"type": "TextBlock", "text": format!("… and {} more", self.more), "isSubtle": true, "wrap": true}));
        }
        body.push(json!({"type": "TextBlock", "text": format!("NotifyRule {}", self.rule), "isSubtle": true, "size": "Small", "wrap": true}));
        let mut card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": body,
        });
        if !self.link.is_empty() {
            card["actions"] =
                json!([{"type": "Action.OpenUrl", "title": "Open report", "url": self.link}]);
        }
        json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}]})
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Text safe in HTML content and attribute values.
fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `link` when it is an http(s) URL (never `javascript:` or the like in a message).
fn web_link(link: &str) -> Option<&str> {
    (link.starts_with("https://") || link.starts_with("http://")).then_some(link)
}

/// Slack mrkdwn's three control characters, escaped as Slack documents.
fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Data, Payload, RESCAN_DELTA, Scope};

    fn big_event(n: usize) -> (Event, Vec<Finding>) {
        let findings: Vec<Finding> = (0..n)
            .map(|i| Finding {
                id: format!("CVE-2026-{i:05}"),
                severity: "Critical".into(),
                package: format!("pkg:npm/<evil>-{}", "x".repeat(100)),
                fixed: "1.2.3".into(),
                link: "https://osv.dev/vulnerability/CVE-2026-1".into(),
                ..Finding::default()
            })
            .collect();
        let event = Event::new(
            RESCAN_DELTA,
            "/s",
            "sha256:img",
            "prod",
            chrono::Utc::now(),
            Data {
                scope: Scope {
                    image: format!("registry.example/{}:1", "a".repeat(400)),
                    digest: "sha256:img".into(),
                    workloads: vec!["Deployment/web".into()],
                    ..Scope::default()
                },
                payload: Payload {
                    previous_verdict: Some("PASS".into()),
                    verdict: Some("FAIL".into()),
                    findings: Some(findings.clone()),
                    ..Payload::default()
                },
            },
        );
        (event, findings)
    }

    #[test]
    fn slack_stays_within_block_kit_limits() {
        let (event, findings) = big_event(150);
        let m = Message::of_event(&event, &findings, "prod/r", Template::Detailed);
        assert!(m.title.contains("PASS → FAIL"));
        let body = m.slack();
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= SLACK_MAX_BLOCKS);
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= SLACK_HEADER_CHARS);
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= SLACK_SECTION_CHARS);
                assert!(!t.contains("<evil>"), "escaped");
            }
        }
        assert!(body.to_string().contains("and 110 more"));
    }

    #[test]
    fn text_and_teams() {
        let (event, findings) = big_event(8);
        let m = Message::of_event(&event, &findings, "prod/r", Template::Concise);
        let text = m.text();
        assert!(text.contains("Critical CVE-2026-00000"));
        assert!(text.contains("fixed in 1.2.3"));
        assert!(text.contains("… and 3 more"));
        assert!(text.contains("Deployment/web"));
        assert!(text.contains("NotifyRule prod/r"));
        let teams = m.teams();
        assert_eq!(teams["attachments"][0]["content"]["version"], "1.5");
        let digest = Message::of_digest(
            &[(event.clone(), findings.clone()), (event, findings)],
            "prod/r",
            "hourly",
            Template::Concise,
        );
        assert!(
            digest
                .title
                .starts_with("Hourly digest: 2 event(s) across 1 image(s)")
        );
        assert_eq!(digest.findings.len(), 5);
    }

    #[test]
    fn html_escapes_every_value_and_links_only_the_web() {
        let (mut event, mut findings) = big_event(2);
        findings[0].link = "javascript:alert(1)".into();
        event.data.payload.link = "https://stella.example/r?a=1&b=\"2\"".into();
        let m = Message::of_event(&event, &findings, "prod/<r>", Template::Concise);
        let html = m.html();
        assert!(!html.contains("<evil>"), "{html}");
        assert!(html.contains("&lt;evil&gt;"));
        assert!(!html.contains("javascript:"));
        assert_eq!(html.matches("href=").count(), 2, "one advisory, one report");
        assert!(html.contains("href=\"https://stella.example/r?a=1&amp;b=&quot;2&quot;\""));
        assert!(html.contains("NotifyRule prod/&lt;r&gt;"));
    }
}
