//! Downloads and kits against hostile answers, from a real HTTP server on loopback.

use std::time::Duration;
use stella_e2e::services::{Answer, FeedServer};
use stella_feeds::http::{self, Error, Fetched, Limits, Validators};

fn limits(max_bytes: u64) -> Limits {
    Limits {
        max_bytes,
        attempts: 2,
        backoff: Duration::from_millis(10),
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_capped_and_refusing_downloads() {
    let server = FeedServer::start(Answer::Body(b"{\"id\":\"X\"}".to_vec()));
    let url = format!("{}/feed.json", server.base);
    let none = Validators::default();
    // A 200 with its ETag, then a 304 when it is sent back.
    let Fetched::Body { bytes, validators } = http::get(&url, &none, None, &limits(1 << 20))
        .await
        .unwrap()
    else {
        panic!("a body");
    };
    assert_eq!(bytes, b"{\"id\":\"X\"}");
    assert!(validators.etag.is_some());
    assert_eq!(
        http::get(&url, &validators, None, &limits(1 << 20)).await,
        Ok(Fetched::NotModified)
    );
    // Over the cap: refused by its declared length, nothing kept.
    assert_eq!(
        http::get(&url, &none, None, &limits(4)).await,
        Err(Error::TooLarge { max: 4 })
    );
    // A body that breaks off: transient, so tried again, then refused.
    server.set(Answer::Truncated(b"half".to_vec()));
    let before = server.requests().len();
    let e = http::get(&url, &none, None, &limits(1 << 20))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Truncated(_)), "{e}");
    assert_eq!(server.requests().len() - before, 2, "two attempts");
    // 429 is retried; 404 is not.
    server.set(Answer::Status(429));
    let e = http::get(&url, &none, None, &limits(1 << 20))
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    server.set(Answer::Status(404));
    let before = server.requests().len();
    let e = http::get(&url, &none, None, &limits(1 << 20))
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert_eq!(server.requests().len() - before, 1, "one attempt");
    // Redirects to `file://` or another host are refused, not followed.
    for location in [
        "file:///etc/passwd".to_string(),
        format!(
            "{}/feed.json",
            server.base.replace("127.0.0.1", "localhost")
        ),
    ] {
        server.set(Answer::Redirect(location.clone()));
        let e = http::get(&url, &none, None, &limits(1 << 20))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Redirect(_)), "{location}: {e}");
    }
    // Not an http(s) URL at all.
    assert!(matches!(
        http::get("file:///etc/passwd", &none, None, &limits(1)).await,
        Err(Error::Url(_))
    ));
}

#[test]
fn a_kit_is_pinned_by_its_manifest_digest_and_garbage_is_no_kit() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feeds");
    std::fs::create_dir(&feed).unwrap();
    std::fs::write(
        feed.join("a.json"),
        r#"{"id":"X-1","modified":"2026-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"versions":["1"]}]}"#,
    )
    .unwrap();
    let out = dir.path().join("kit.zip");
    stella_feeds::build_kit(std::slice::from_ref(&feed), &out).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let digest = stella_feeds::kit_manifest_digest(&bytes).unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    // The same input, the same kit and digest.
    let again = dir.path().join("again.zip");
    stella_feeds::build_kit(&[feed], &again).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
    for garbage in [&b"garbage"[..], &bytes[..bytes.len() / 2], b""] {
        assert!(stella_feeds::kit_manifest_digest(garbage).is_err());
    }
    // Read as a feed body: the kit's record, verified.
    let mut records = stella_feeds::Records::default();
    stella_feeds::read_document("kit.zip", &bytes, &mut records).unwrap();
    assert_eq!(records.advisories.len(), 1);
    assert_eq!(records.kits.len(), 1, "{:?}", records.kits);
    // Truncated: not a readable zip, a clear error, nothing kept.
    let mut cut = stella_feeds::Records::default();
    let e =
        stella_feeds::read_document("kit.zip", &bytes[..bytes.len() - 30], &mut cut).unwrap_err();
    assert!(e.contains("zip"), "{e}");
    assert!(cut.advisories.is_empty());
}
