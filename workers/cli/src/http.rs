//! Downloads for `stella feeds import` and `stella vex import`: one client setup (rustls with
//! ring, timeouts, our user agent), success required, and a size cap enforced while streaming
//! (a declared `Content-Length` over the cap is refused before reading).

/// Streams `url` into `sink` chunk by chunk; errors name what failed. Returns the byte count.
pub(crate) async fn fetch(
    url: &str,
    max: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<u64, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("stella/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
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
    eprintln!("downloaded {url} ({written} bytes)");
    Ok(written)
}
