//! Hostile-input checks: digests, Kubernetes names, object keys, query parameters and the
//! request body, each refused with a bounded message before anything is looked up.

use super::{Error, MAX_BODY_BYTES};
use futures::StreamExt;
use warp::Buf;

/// Longest accepted query value.
const MAX_QUERY_VALUE: usize = 256;
/// Most query parameters accepted.
const MAX_QUERY_PARAMS: usize = 8;
/// Longest piece of client input quoted back in an error message.
const MAX_QUOTED: usize = 80;

/// Client input quoted in a message: at most [`MAX_QUOTED`] characters, debug-escaped.
pub(crate) fn quoted(text: &str) -> String {
    let mut short: String = text.chars().take(MAX_QUOTED).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// Decodes `%XX` escapes (a path segment as sent); malformed escapes and non-UTF-8 results are
/// refused.
pub(crate) fn percent_decode(raw: &str) -> Result<String, Error> {
    let bad = || Error::BadRequest(format!("malformed percent-encoding in {}", quoted(raw)));
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// An image digest: `sha256:` and 64 lowercase hex digits.
pub(crate) fn digest(raw: &str) -> Result<String, Error> {
    let text = percent_decode(raw)?;
    let valid = text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if valid {
        Ok(text)
    } else {
        Err(Error::BadRequest(format!(
            "{} is not an image digest (sha256: and 64 lowercase hex digits)",
            quoted(&text)
        )))
    }
}

/// A namespace: a DNS-1123 label.
pub(crate) fn namespace(raw: &str) -> Result<String, Error> {
    let text = percent_decode(raw)?;
    if dns_name(&text, 63, false) {
        Ok(text)
    } else {
        Err(Error::BadRequest(format!(
            "{} is not a namespace name (a DNS-1123 label)",
            quoted(&text)
        )))
    }
}

/// An object name: a DNS-1123 subdomain.
pub(crate) fn object_name(raw: &str) -> Result<String, Error> {
    let text = percent_decode(raw)?;
    if dns_name(&text, 253, true) {
        Ok(text)
    } else {
        Err(Error::BadRequest(format!(
            "{} is not an object name (a DNS-1123 subdomain)",
            quoted(&text)
        )))
    }
}

/// Lowercase alphanumerics and `-` (and `.` when `dots`), alphanumeric at both ends.
fn dns_name(text: &str, max: usize, dots: bool) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| edge(b) || *b == b'-' || (dots && *b == b'.'))
}

/// An artifact id: an object key under an image (`images/<digest>/…`, `indexes/<digest>/…`),
/// with no empty, `.` or `..` segment. Returns the key and the image digest.
pub(crate) fn artifact_key(raw: &str) -> Result<(String, String), Error> {
    let key = percent_decode(raw)?;
    let bad = || {
        Error::BadRequest(format!(
            "{} is not an artifact id (an object key such as images/sha256:…/inventory.cdx.json)",
            quoted(&key)
        ))
    };
    if key.len() > 512 || stella_store::object_key(&key).is_err() {
        return Err(bad());
    }
    let mut segments = key.split('/');
    let (Some(_), Some(image), Some(_)) = (segments.next(), segments.next(), segments.next())
    else {
        return Err(bad());
    };
    let image = digest(image).map_err(|_| bad())?;
    Ok((key, image))
}

/// Query parameters: only those in `allowed`, each at most once, values bounded.
pub(crate) fn params(
    pairs: Option<Vec<(String, String)>>,
    allowed: &[&'static str],
) -> Result<Params, Error> {
    let pairs =
        pairs.ok_or_else(|| Error::BadRequest("the query string does not decode".into()))?;
    if pairs.len() > MAX_QUERY_PARAMS {
        return Err(Error::BadRequest(format!(
            "too many query parameters (at most {MAX_QUERY_PARAMS})"
        )));
    }
    let mut found = Params(Vec::new());
    for (name, value) in pairs {
        let Some(&known) = allowed.iter().find(|a| **a == name) else {
            return Err(Error::BadRequest(format!(
                "unknown query parameter {} (expected: {})",
                quoted(&name),
                allowed.join(", ")
            )));
        };
        if found.get(known).is_some() {
            return Err(Error::BadRequest(format!(
                "query parameter {known} given twice"
            )));
        }
        if value.len() > MAX_QUERY_VALUE {
            return Err(Error::BadRequest(format!(
                "query parameter {known} is longer than {MAX_QUERY_VALUE} bytes"
            )));
        }
        found.0.push((known, value));
    }
    Ok(found)
}

/// A JSON request body: an object of the request's fields and no others (serde would also
/// take them positionally from an array). `what` names the request in the error with its
/// `shape`, e.g. `report request` and `{"imageDigest": "sha256:…"}`.
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
    shape: &str,
) -> Result<T, Error> {
    let bad = |why: String| {
        Error::BadRequest(format!(
            "the body is not a {what} ({shape}): {}",
            quoted(&why)
        ))
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// Validated query parameters.
#[derive(Debug)]
pub(crate) struct Params(Vec<(&'static str, String)>);

impl Params {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `limit`: a number from 1 to `max`, `default` when absent.
    pub(crate) fn limit(&self, default: u32, max: u32) -> Result<u32, Error> {
        match self.get("limit") {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| Error::BadRequest(format!("limit is a number from 1 to {max}"))),
        }
    }

    pub(crate) fn required(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::BadRequest(format!("query parameter {name} is required")))
    }
}

/// The request body, at most [`MAX_BODY_BYTES`]: a larger declared length is refused before
/// reading, a larger chunked body as soon as it grows past the limit.
pub(crate) async fn body<S, B>(headers: &warp::http::HeaderMap, stream: S) -> Result<Vec<u8>, Error>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    if let Some(length) = headers.get(warp::http::header::CONTENT_LENGTH) {
        let length: u64 = length
            .to_str()
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| Error::BadRequest("malformed content-length".into()))?;
        if length > MAX_BODY_BYTES as u64 {
            return Err(Error::PayloadTooLarge);
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk =
            chunk.map_err(|e| Error::BadRequest(format!("failed to read the body: {e}")))?;
        if body.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(Error::PayloadTooLarge);
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            body.extend_from_slice(piece);
            let n = piece.len();
            chunk.advance(n);
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn digests_are_sha256_and_64_lowercase_hex() {
        let good = format!("sha256:{HEX}");
        assert_eq!(digest(&good).unwrap(), good);
        assert_eq!(digest(&format!("sha256%3A{HEX}")).unwrap(), good);
        for bad in [
            String::new(),
            HEX.to_string(),
            format!("sha256:{}", HEX.to_uppercase()),
            format!("sha256:{}", &HEX[1..]),
            format!("sha256:{HEX}0"),
            format!("sha512:{HEX}"),
            format!("sha256:{}g", &HEX[1..]),
            format!("sha256:{HEX}%2F.."),
        ] {
            assert_eq!(
                digest(&bad).unwrap_err().code(),
                "bad_request",
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn percent_decoding_refuses_malformed_escapes() {
        assert_eq!(percent_decode("a%2Fb%3a").unwrap(), "a/b:");
        for bad in ["%", "%2", "%zz", "%ff"] {
            assert!(percent_decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_dns_1123() {
        assert!(namespace("team-a").is_ok());
        assert!(object_name("scan.v1-a").is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(namespace(bad).is_err(), "namespace {bad:?}");
        }
        for bad in ["", ".a", "a.", "a/b", "..", &"a".repeat(254)] {
            assert!(object_name(bad).is_err(), "name {bad:?}");
        }
    }

    #[test]
    fn artifact_keys_stay_under_an_image() {
        let key = format!("images/sha256:{HEX}/inventory.cdx.json");
        assert_eq!(
            artifact_key(&key).unwrap(),
            (key.clone(), format!("sha256:{HEX}"))
        );
        assert_eq!(artifact_key(&key.replace('/', "%2F")).unwrap().0, key);
        for bad in [
            String::new(),
            format!("images/sha256:{HEX}"),
            format!("images/sha256:{HEX}/../../etc/passwd"),
            format!("images/sha256:{HEX}/%2e%2e/x"),
            format!("/images/sha256:{HEX}/x"),
            format!("images//sha256:{HEX}/x"),
            format!("images/sha256:{HEX}/a\\b"),
            "images/latest/x".into(),
            format!("images/sha256:{HEX}/{}", "x".repeat(600)),
        ] {
            assert!(artifact_key(&bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn query_parameters_are_known_single_and_bounded() {
        let pairs = |p: &[(&str, &str)]| {
            Some(
                p.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let ok = params(pairs(&[("format", "spdx-json")]), &["format", "view"]).unwrap();
        assert_eq!(ok.get("format"), Some("spdx-json"));
        assert_eq!(ok.get("view"), None);
        assert!(ok.required("view").is_err());
        for bad in [
            pairs(&[("formats", "x")]),
            pairs(&[("format", "a"), ("format", "b")]),
            pairs(&[("format", &"x".repeat(257))]),
            pairs(&[("format", "a"); 9]),
            None,
        ] {
            assert_eq!(
                params(bad.clone(), &["format", "view"]).unwrap_err().code(),
                "bad_request",
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn bodies_are_capped_whether_declared_or_streamed() {
        use warp::http::{HeaderMap, HeaderValue, header::CONTENT_LENGTH};
        static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
        let chunks = |n: usize| futures::stream::iter((0..n).map(|_| Ok(&CHUNK[..])));
        let none = HeaderMap::new();
        // Chunked (no length): exactly the limit passes, one chunk more is refused.
        assert_eq!(body(&none, chunks(16)).await.unwrap().len(), MAX_BODY_BYTES);
        assert_eq!(
            body(&none, chunks(17)).await.unwrap_err(),
            Error::PayloadTooLarge
        );
        // A declared length over the limit is refused before reading.
        let mut declared = HeaderMap::new();
        declared.insert(CONTENT_LENGTH, HeaderValue::from(MAX_BODY_BYTES + 1));
        assert_eq!(
            body(&declared, chunks(0)).await.unwrap_err(),
            Error::PayloadTooLarge
        );
        declared.insert(CONTENT_LENGTH, HeaderValue::from_static("many"));
        assert_eq!(
            body(&declared, chunks(0)).await.unwrap_err().code(),
            "bad_request"
        );
    }

    #[test]
    fn quoted_input_is_bounded_and_escaped() {
        assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
        assert!(quoted(&"x".repeat(10_000)).chars().count() < 90);
    }
}
