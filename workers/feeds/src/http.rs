//! Feed downloads: one client setup (rustls with ring, timeouts, our user agent), success
//! required, a size cap enforced while streaming (a declared `Content-Length` over the cap is
//! refused before reading), redirects followed only to the host the URL named and only over
//! http(s), and — for syncs — conditional requests (`If-None-Match` / `If-Modified-Since`)
//! with retries and backoff on the failures that can pass (unreachable, timeouts, 5xx, 429
//! with its `Retry-After`).

use std::time::Duration;

/// Why a download failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an http(s) URL: {0}")]
    Url(String),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("HTTP {status}")]
    Status {
        status: u16,
        /// `Retry-After` of a 429 or 503, in seconds.
        retry_after: Option<u64>,
    },
    #[error("larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("the body broke off: {0}")]
    Truncated(String),
    #[error("redirected to {0}, which is not on the host the URL names (or not http(s))")]
    Redirect(String),
    #[error("{0}")]
    Sink(String),
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable(_) | Error::Truncated(_) => true,
            Error::Status { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            _ => false,
        }
    }
}

/// How a sync downloads.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest body accepted.
    pub max_bytes: u64,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes.
    pub read_timeout: Duration,
    /// Tries per download (at least 1); the waits between them double from `backoff`.
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 1 << 30,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            attempts: 3,
            backoff: Duration::from_secs(1),
        }
    }
}

/// The validators of an earlier `200`, sent back so that an unchanged feed answers `304`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a conditional download got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// `304 Not Modified`: the feed is as it was.
    NotModified,
    Body {
        bytes: Vec<u8>,
        validators: Validators,
    },
}

/// The client every download uses: redirects only to `url`'s own host, over http(s).
fn client(url: &str, limits: &Limits) -> Result<reqwest::Client, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::Url(format!("{url}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::Url(url.to_string()));
    }
    let host = parsed.host_str().map(str::to_string);
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let next = attempt.url().clone();
        let same_host = next.host_str().map(str::to_string) == host;
        if !matches!(next.scheme(), "http" | "https") || !same_host {
            attempt.error(Error::Redirect(next.to_string()))
        } else if attempt.previous().len() >= 5 {
            attempt.error(Error::Redirect(format!("{next} (more than 5 redirects)")))
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .connect_timeout(limits.connect_timeout)
        .read_timeout(limits.read_timeout)
        .redirect(policy)
        .user_agent(concat!("stella/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Unreachable(e.to_string()))
}

/// A request error, with a refused redirect named as such.
fn request_error(e: reqwest::Error) -> Error {
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Error>() {
            return refused.clone();
        }
        source = s.source();
    }
    Error::Unreachable(e.to_string())
}

/// Streams `url` into `sink` chunk by chunk, once; errors name what failed. Returns the byte
/// count.
pub async fn fetch(
    url: &str,
    max: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<u64, String> {
    let limits = Limits {
        max_bytes: max,
        ..Limits::default()
    };
    let client = client(url, &limits).map_err(|e| e.to_string())?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| request_error(e).to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let too_large = || format!("larger than {} MiB", max >> 20);
    if response.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut written = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        written += chunk.len() as u64;
        if written > max {
            return Err(too_large());
        }
        sink(&chunk)?;
    }
    Ok(written)
}

/// One conditional download of `url` into memory, tried up to `limits.attempts` times while
/// the failure is transient; `bearer` is sent as `Authorization: Bearer …`.
pub async fn get(
    url: &str,
    validators: &Validators,
    bearer: Option<&str>,
    limits: &Limits,
) -> Result<Fetched, Error> {
    let client = client(url, limits)?;
    let mut wait = limits.backoff;
    let mut attempt = 1;
    loop {
        match get_once(&client, url, validators, bearer, limits).await {
            Err(e) if e.is_transient() && attempt < limits.attempts.max(1) => {
                let asked = match &e {
                    Error::Status {
                        retry_after: Some(s),
                        ..
                    } => Duration::from_secs((*s).min(60)),
                    _ => wait,
                };
                tokio::time::sleep(asked.max(wait)).await;
                wait = wait.saturating_mul(2);
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn get_once(
    client: &reqwest::Client,
    url: &str,
    validators: &Validators,
    bearer: Option<&str>,
    limits: &Limits,
) -> Result<Fetched, Error> {
    let mut request = client.get(url);
    if let Some(etag) = &validators.etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(since) = &validators.last_modified {
        request = request.header(reqwest::header::IF_MODIFIED_SINCE, since);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.map_err(request_error)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if status.is_redirection() {
        // A redirect the client did not follow (a scheme it does not speak, like `file://`).
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nowhere");
        return Err(Error::Redirect(location.to_string()));
    }
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        return Err(Error::Status {
            status: status.as_u16(),
            retry_after,
        });
    }
    let max = limits.max_bytes;
    if response.content_length().is_some_and(|n| n > max) {
        return Err(Error::TooLarge { max });
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header(reqwest::header::ETAG),
        last_modified: header(reqwest::header::LAST_MODIFIED),
    };
    let declared = response.content_length();
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() as u64 + chunk.len() as u64 > max {
                    return Err(Error::TooLarge { max });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(Error::Truncated(e.to_string())),
        }
    }
    if declared.is_some_and(|n| n != bytes.len() as u64) {
        return Err(Error::Truncated(format!(
            "{} of {} bytes",
            bytes.len(),
            declared.unwrap_or_default()
        )));
    }
    Ok(Fetched::Body { bytes, validators })
}
