//! Sending to a channel over HTTP (Slack, Teams, generic webhooks): the SSRF guard (the
//! target's addresses are resolved and checked, and the connection is pinned to the checked
//! address), Standard Webhooks signatures, no redirects, and each answer classified as sent,
//! retry (with the receiver's `Retry-After`) or dead.

use base64::Engine;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Channel types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Slack,
    Teams,
    Webhook,
    Email,
}

/// A channel as the dispatcher sends to it, its secrets resolved by the controller.
#[derive(Clone, PartialEq, Eq)]
pub struct Channel {
    /// `<namespace>/<name>`.
    pub id: String,
    pub kind: Kind,
    /// The URL to POST to (Slack/Teams: the secret incoming-webhook URL; e-mail:
    /// `smtp://host:port`, informational).
    pub url: String,
    /// The default target: e-mail recipients (comma-separated); recorded for the others.
    pub target: Option<String>,
    /// E-mail: the SMTP settings.
    pub email: Option<crate::email::Smtp>,
    /// Webhooks: the Standard Webhooks signing secret (`whsec_<base64>`, or raw bytes).
    pub signing_secret: Option<Vec<u8>>,
    pub timeout: Duration,
    pub per_minute: u32,
    pub max_attempts: u32,
    /// Hosts or IP addresses allowed even though they are loopback, private or link-local.
    pub allow_hosts: Vec<String>,
    pub enabled: bool,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL (Slack's and Teams' carry their secret) nor the signing key.
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("per_minute", &self.per_minute)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    Ok,
    /// Worth another attempt, no sooner than `after` when the receiver said so.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// No retry can fix it.
    Dead {
        error: String,
    },
}

/// Whether an address is one a channel may reach only when allowed explicitly.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // CGNAT 100.64/10
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback() || v6.is_unspecified() || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link-local
        }
    }
}

/// Resolves `url`'s host and checks every address against the guard; returns the host and
/// the address to connect to.
pub async fn guard(
    url: &str,
    allow: &[String],
) -> Result<(reqwest::Url, String, SocketAddr), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", parsed.scheme()));
    }
    let host = parsed
        .host_str()
        .ok_or("URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addr = guard_host(&host, port, allow).await?;
    Ok((parsed, host, addr))
}

/// Resolves `host` and checks every address against the guard (`allow`: the channel's
/// `allowHosts`); returns the address to connect to.
pub async fn guard_host(host: &str, port: u16, allow: &[String]) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let allowed = |a: &SocketAddr| {
        allow.iter().any(|h| {
            h.eq_ignore_ascii_case(host) || h.parse::<IpAddr>().is_ok_and(|ip| ip == a.ip())
        })
    };
    if let Some(internal) = addrs.iter().find(|a| is_internal(a.ip()) && !allowed(a)) {
        return Err(format!(
            "{host} resolves to {} (loopback, private or link-local): refused; list the host in the channel's allowHosts to permit it",
            internal.ip()
        ));
    }
    Ok(first)
}

/// The Standard Webhooks signature of `body` (`v1,<base64 HMAC-SHA256>` over
/// `<id>.<timestamp>.<body>`); the key is the secret after `whsec_`, base64-decoded.
pub fn standard_signature(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key_bytes = std::str::from_utf8(secret)
        .ok()
        .and_then(|s| s.trim().strip_prefix("whsec_"))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_else(|| secret.to_vec());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes);
    let mut signed = Vec::with_capacity(body.len() + 64);
    signed.extend_from_slice(format!("{id}.{timestamp}.").as_bytes());
    signed.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &signed);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

/// Delivers `message` (and, for generic webhooks, the `events` it was made from: one
/// CloudEvent, or a batch for a digest) to the channel. `target` overrides the channel's
/// default target (e-mail: the recipients); `message_id` is the delivery's idempotency key.
pub async fn deliver(
    channel: &Channel,
    message_id: &str,
    target: &str,
    message: &crate::render::Message,
    events: &[crate::event::Event],
    digest: bool,
    now: i64,
) -> Sent {
    let (content_type, body) = match channel.kind {
        Kind::Email => {
            let Some(smtp) = &channel.email else {
                return Sent::Dead {
                    error: "the e-mail channel has no SMTP settings".into(),
                };
            };
            let to = if target.is_empty() {
                channel.target.as_deref().unwrap_or_default()
            } else {
                target
            };
            return crate::email::send(channel, smtp, to, message, message_id, now).await;
        }
        Kind::Slack => ("application/json", json(&message.slack())),
        Kind::Teams => ("application/json", json(&message.teams())),
        Kind::Webhook if !digest => match events.first() {
            Some(event) => ("application/cloudevents+json", json(event)),
            None => {
                return Sent::Dead {
                    error: "no event to send".into(),
                };
            }
        },
        Kind::Webhook => ("application/cloudevents-batch+json", json(events)),
    };
    post(channel, message_id, content_type, body, now).await
}

/// A rendering as JSON bytes (they are all serialisable).
fn json<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// POSTs `body` to the channel: `content_type`, the Standard Webhooks headers when the
/// channel signs (`message_id` is the delivery's idempotency key, so a receiver can drop a
/// repeat), the channel's timeout, no redirects.
pub async fn post(
    channel: &Channel,
    message_id: &str,
    content_type: &str,
    body: Vec<u8>,
    now: i64,
) -> Sent {
    let (url, host, addr) = match guard(&channel.url, &channel.allow_hosts).await {
        Ok(g) => g,
        Err(e) => return Sent::Dead { error: e },
    };
    // One provider for the workspace: ring (a no-op once installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(channel.timeout)
        .connect_timeout(channel.timeout.min(Duration::from_secs(10)))
        .resolve(&host, addr)
        .user_agent(concat!("stella-notify/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Sent::Dead {
                error: format!("HTTP client: {e}"),
            };
        }
    };
    let mut request = client.post(url).header("content-type", content_type);
    if let Some(secret) = &channel.signing_secret {
        request = request
            .header("webhook-id", message_id)
            .header("webhook-timestamp", now.to_string())
            .header(
                "webhook-signature",
                standard_signature(secret, message_id, now, &body),
            );
    }
    match request.body(body).send().await {
        Ok(response) => classify(response.status().as_u16(), response.headers()),
        // The error text never carries the URL (Slack's and Teams' hold their secret).
        Err(e) if e.is_timeout() => Sent::Retry {
            error: format!("timed out after {:?}", channel.timeout),
            after: None,
        },
        Err(e) => Sent::Retry {
            error: format!("cannot reach {host}: {}", e.without_url()),
            after: None,
        },
    }
}

/// What an HTTP answer means for the delivery.
pub fn classify(status: u16, headers: &reqwest::header::HeaderMap) -> Sent {
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    match status {
        200..=299 => Sent::Ok,
        300..=399 => Sent::Dead {
            error: format!(
                "HTTP {status}: redirect refused (to {})",
                headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map_or("?", |l| l.split('?').next().unwrap_or(l))
            ),
        },
        408 | 425 | 429 | 500..=599 => Sent::Retry {
            error: format!("HTTP {status}"),
            after: retry_after,
        },
        _ => Sent::Dead {
            error: format!("HTTP {status}: the receiver refused the message"),
        },
    }
}

/// The wait before attempt `attempt + 1` (1-based `attempt` just failed): 2 s doubling, capped
/// at 10 minutes, plus up to 25 % jitter derived from the delivery id (spread, yet
/// reproducible), and never sooner than the receiver's `Retry-After` (capped at an hour).
pub fn backoff(delivery_id: &str, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let base = Duration::from_secs(2)
        .saturating_mul(1 << attempt.saturating_sub(1).min(20))
        .min(Duration::from_secs(600));
    let seed = delivery_id.bytes().fold(attempt as u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as u64)
    });
    let jitter = base.mul_f64((seed % 1000) as f64 / 4000.0);
    (base + jitter).max(
        retry_after
            .unwrap_or_default()
            .min(Duration::from_secs(3600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_knows_internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_needs_an_allow_list_entry() {
        let err = guard("http://127.0.0.1:9/hook", &[]).await.unwrap_err();
        assert!(err.contains("allowHosts"), "{err}");
        assert!(
            guard("http://127.0.0.1:9/hook", &["127.0.0.1".into()])
                .await
                .is_ok()
        );
        assert!(
            guard("http://localhost:9/hook", &["localhost".into()])
                .await
                .is_ok()
        );
        assert!(
            guard("file:///etc/passwd", &[])
                .await
                .unwrap_err()
                .contains("scheme")
        );
        assert!(guard("not a url", &[]).await.is_err());
    }

    #[test]
    fn answers_and_backoff() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(classify(204, &h), Sent::Ok);
        assert!(matches!(classify(400, &h), Sent::Dead { .. }));
        assert!(matches!(classify(500, &h), Sent::Retry { after: None, .. }));
        h.insert("retry-after", "30".parse().unwrap());
        assert_eq!(
            classify(429, &h),
            Sent::Retry {
                error: "HTTP 429".into(),
                after: Some(Duration::from_secs(30))
            }
        );
        h.insert(
            "location",
            "http://169.254.169.254/latest?token=x".parse().unwrap(),
        );
        let Sent::Dead { error } = classify(302, &h) else {
            panic!()
        };
        assert!(error.contains("redirect refused") && !error.contains("token"));
        let b1 = backoff("d", 1, None);
        assert!(
            b1 >= Duration::from_secs(2) && b1 <= Duration::from_millis(2500),
            "{b1:?}"
        );
        assert!(backoff("d", 4, None) >= Duration::from_secs(16));
        assert!(backoff("d", 30, None) <= Duration::from_secs(750));
        assert_eq!(
            backoff("d", 1, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
        assert_eq!(backoff("d", 1, None), backoff("d", 1, None));
    }

    #[test]
    fn standard_webhooks_signature() {
        // The Standard Webhooks reference vector (standard-webhooks/libraries test suite).
        let secret = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = standard_signature(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
