//! E-mail over SMTP (`lettre`, rustls on ring): STARTTLS, implicit TLS or plain, AUTH when the
//! channel has a user name, the message in text and HTML. The SMTP host passes the same SSRF
//! guard as the HTTP channels and the connection is pinned to the address that was checked
//! (TLS still verifies the certificate against the host's name).

use crate::render::Message;
use crate::send::{Channel, Sent, guard_host};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::{Duration, SystemTime};

/// Most recipients one delivery sends to.
pub const MAX_RECIPIENTS: usize = 50;
/// Longest subject line (characters); longer titles are cut.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// Transport security.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP (only where the network is trusted).
    None,
    /// STARTTLS, required: a server that does not offer it is refused.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// An e-mail channel's SMTP settings, its password resolved from the channel's Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub security: Security,
    /// PEM certificates trusted beside the system's roots (a private CA, a self-signed relay).
    pub extra_roots_pem: Option<String>,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

/// The recipients in `to` (comma-separated addresses), each checked.
pub fn recipients(to: &str) -> Result<Vec<Mailbox>, String> {
    let list: Vec<&str> = to
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        return Err("no recipient: set the channel's target or the rule action's target".into());
    }
    if list.len() > MAX_RECIPIENTS {
        return Err(format!(
            "{} recipients; at most {MAX_RECIPIENTS}",
            list.len()
        ));
    }
    list.iter()
        .map(|a| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("recipient {a:?} is not an e-mail address: {e}"))
        })
        .collect()
}

/// The e-mail of `message`: text and HTML alternatives, `Message-ID` from the delivery's
/// idempotency key (a receiving system can drop a repeat).
pub fn compose(
    smtp: &Smtp,
    to: &[Mailbox],
    message: &Message,
    message_id: &str,
    now: i64,
) -> Result<lettre::Message, String> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("the sender {:?} is not an e-mail address: {e}", smtp.from))?;
    // One line: control characters (CR, LF) are spaces, runs of spaces one.
    let subject: String = message
        .title
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_SUBJECT_CHARS)
        .collect();
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(subject)
        .message_id(Some(format!("<{message_id}@stella-ops.org>")))
        .date(SystemTime::UNIX_EPOCH + Duration::from_secs(now.max(0) as u64))
        .user_agent(concat!("stella-notify/", env!("CARGO_PKG_VERSION")).to_string());
    for mailbox in to {
        builder = builder.to(mailbox.clone());
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            message.text(),
            message.html(),
        ))
        .map_err(|e| format!("cannot compose the e-mail: {e}"))
}

/// Sends `message` to `to` through the channel's SMTP server.
pub async fn send(
    channel: &Channel,
    smtp: &Smtp,
    to: &str,
    message: &Message,
    message_id: &str,
    now: i64,
) -> Sent {
    let dead = |error: String| Sent::Dead { error };
    let to = match recipients(to) {
        Ok(to) => to,
        Err(e) => return dead(e),
    };
    let email = match compose(smtp, &to, message, message_id, now) {
        Ok(m) => m,
        Err(e) => return dead(e),
    };
    let host = smtp
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addr = match guard_host(&host, smtp.port, &channel.allow_hosts).await {
        Ok(a) => a,
        Err(e) => return dead(e),
    };
    // One provider for the workspace: ring (a no-op once installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = || {
        let mut params = TlsParameters::builder(host.clone());
        if let Some(pem) = &smtp.extra_roots_pem {
            let cert = Certificate::from_pem(pem.as_bytes())
                .map_err(|e| format!("the channel's CA certificates do not parse: {e}"))?;
            params = params.add_root_certificate(cert);
        }
        params
            .build_rustls()
            .map_err(|e| format!("TLS settings: {e}"))
    };
    let security = match smtp.security {
        Security::None => Tls::None,
        Security::StartTls => match tls() {
            Ok(p) => Tls::Required(p),
            Err(e) => return dead(e),
        },
        Security::Tls => match tls() {
            Ok(p) => Tls::Wrapper(p),
            Err(e) => return dead(e),
        },
    };
    // Connect to the checked address; TLS verifies the certificate for `host`.
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(addr.port())
            .timeout(Some(channel.timeout))
            .tls(security);
    if let Some(user) = &smtp.username {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            smtp.password.clone().unwrap_or_default(),
        ));
    }
    let transport: AsyncSmtpTransport<Tokio1Executor> = builder.build();
    match tokio::time::timeout(channel.timeout * 4, transport.send(email)).await {
        Ok(Ok(_)) => Sent::Ok,
        Ok(Err(e)) => classify(&e, &host),
        Err(_) => Sent::Retry {
            error: format!(
                "the SMTP exchange with {host} took longer than {:?}",
                channel.timeout * 4
            ),
            after: None,
        },
    }
}

/// An SMTP failure: a 5xx answer (a refused recipient, failed AUTH) or a TLS failure cannot
/// be fixed by retrying; a 4xx answer, a timeout or a lost connection can.
fn classify(e: &lettre::transport::smtp::Error, host: &str) -> Sent {
    let error = format!("SMTP {host}: {e}");
    if e.is_permanent() || e.is_tls() || e.is_client() || tls_failure(e) {
        Sent::Dead { error }
    } else {
        Sent::Retry { error, after: None }
    }
}

/// Whether a TLS handshake failed (an untrusted or mismatched certificate, say): rustls's
/// error somewhere in the chain, directly or inside an I/O error.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(error) = current {
        if error.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_checked_and_bounded() {
        assert_eq!(recipients("a@x.example, b@y.example").unwrap().len(), 2);
        assert!(recipients(" , ").unwrap_err().contains("no recipient"));
        assert!(
            recipients("not an address")
                .unwrap_err()
                .contains("not an e-mail address")
        );
        let many = vec!["a@x.example"; MAX_RECIPIENTS + 1].join(",");
        assert!(recipients(&many).unwrap_err().contains("at most"));
        // A header injection attempt is not an address.
        assert!(recipients("a@x.example\r\nBcc: evil@x.example").is_err());
    }

    #[test]
    fn compose_bounds_the_subject_and_carries_both_bodies() {
        let smtp = Smtp {
            host: "smtp.example".into(),
            port: 587,
            from: "stella@example.org".into(),
            username: None,
            password: None,
            security: Security::StartTls,
            extra_roots_pem: None,
        };
        let message = Message {
            title: format!("Report ready\r\nBcc: evil@x.example {}", "x".repeat(500)),
            facts: vec![("Image".into(), "registry.example/app:1".into())],
            findings: vec![],
            more: 0,
            link: String::new(),
            rule: "prod/r".into(),
            custom: None,
        };
        let to = recipients("sec@example.org").unwrap();
        let mail = compose(&smtp, &to, &message, "d-1", 1_700_000_000).unwrap();
        let raw = String::from_utf8(mail.formatted()).unwrap();
        assert!(raw.contains("Message-ID: <d-1@stella-ops.org>"), "{raw}");
        let headers = raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !headers.contains("\r\nBcc:"),
            "no header injection: {headers}"
        );
        assert!(headers.contains("Subject: Report ready Bcc: evil@x.example"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        let subject = raw.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(subject.len() < MAX_SUBJECT_CHARS + 80, "{subject}");
    }
}
