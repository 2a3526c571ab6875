//! `admission.k8s.io/v1` AdmissionReview: parsing a request body (strictly enough that any
//! malformed body is a clear error, never a panic) and writing the response. Only what the
//! webhook reads is decoded; everything else in the request is ignored.

use crate::workload::{self, ContainerImage, ContainerKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest request body accepted. The API server bounds objects at about 1.5 MiB in etcd;
/// a review carries the object and the old object.
pub const MAX_BODY: u64 = 8 * 1024 * 1024;

/// Why a body is not an AdmissionReview the webhook can answer (an HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to decode the AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported apiVersion {0:?}: only admission.k8s.io/v1 is served")]
    ApiVersion(String),
    #[error("unsupported kind {0:?}: expected AdmissionReview")]
    Kind(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("the request has no uid")]
    NoUid,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<Request>,
}

/// Group, version and kind of the reviewed object.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

/// The part of an admission request the webhook reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub uid: String,
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub object: Option<Value>,
    #[serde(default)]
    pub old_object: Option<Value>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// Decodes an AdmissionReview body.
pub fn parse(body: &[u8]) -> Result<Request> {
    let review: Review = serde_json::from_slice(body)?;
    if review.api_version != "admission.k8s.io/v1" {
        return Err(Error::ApiVersion(review.api_version));
    }
    if review.kind != "AdmissionReview" {
        return Err(Error::Kind(review.kind));
    }
    let request = review.request.ok_or(Error::NoRequest)?;
    if request.uid.trim().is_empty() {
        return Err(Error::NoUid);
    }
    Ok(request)
}

impl Request {
    /// The name shown in messages: `namespace/name` (or `generateName…` for a new object).
    pub fn object_name(&self) -> String {
        let name = self
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| {
                self.object
                    .as_ref()
                    .and_then(|o| o.pointer("/metadata/generateName"))
                    .and_then(Value::as_str)
                    .map(|g| format!("{g}…"))
            })
            .unwrap_or_else(|| "-".into());
        format!("{}/{name}", self.namespace.as_deref().unwrap_or("-"))
    }

    /// The images to decide and the pull secret names: every image of the object, less (on
    /// UPDATE) those the old object already ran — they were admitted then, and re-deciding
    /// them would block unrelated edits (labels, replicas) of a workload.
    pub fn workload(&self) -> Result<(Vec<ContainerImage>, Vec<String>), workload::Error> {
        let Some(object) = &self.object else {
            return Ok((Vec::new(), Vec::new()));
        };
        let (mut images, pull_secrets) = object_images(&self.kind, object)?;
        if self.operation == "UPDATE"
            && let Some(old) = &self.old_object
            && let Ok((before, _)) = object_images(&self.kind, old)
        {
            images.retain(|i| !before.iter().any(|b| b.image == i.image));
        }
        Ok((images, pull_secrets))
    }

    /// The images to decide (see [`Request::workload`]).
    pub fn images(&self) -> Result<Vec<ContainerImage>, workload::Error> {
        self.workload().map(|(images, _)| images)
    }
}

/// Images of a reviewed object. Kubernetes 1.20–1.21 send the `pods/ephemeralcontainers`
/// subresource as an `EphemeralContainers` object rather than a Pod.
fn object_images(
    gvk: &GroupVersionKind,
    object: &Value,
) -> Result<(Vec<ContainerImage>, Vec<String>), workload::Error> {
    if gvk.group.is_empty() && gvk.kind == "EphemeralContainers" {
        let list = object
            .get("ephemeralContainers")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let images = list
            .iter()
            .filter_map(|c| {
                let image = c.get("image")?.as_str()?.trim();
                (!image.is_empty()).then(|| ContainerImage {
                    kind: ContainerKind::Ephemeral,
                    container: c
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    image: image.to_string(),
                })
            })
            .collect();
        return Ok((images, Vec::new()));
    }
    let spec = workload::pod_spec(&gvk.group, &gvk.kind, object)?;
    let pull_secrets = spec
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|s| s.name.clone())
        .filter(|n| !n.is_empty())
        .collect();
    Ok((workload::images(&spec), pull_secrets))
}

/// An admission answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    /// Shown to the user when denied.
    pub message: Option<String>,
    /// Shown to the user (kubectl prints `Warning: …`) whether allowed or not.
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

#[derive(Serialize)]
struct StatusOut<'a> {
    code: u16,
    reason: &'static str,
    message: &'a str,
}

impl Response {
    /// The AdmissionReview JSON the API server reads.
    pub fn to_json(&self) -> Vec<u8> {
        let review = ReviewOut {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response: ResponseOut {
                uid: &self.uid,
                allowed: self.allowed,
                status: match (&self.message, self.allowed) {
                    (Some(message), false) => Some(StatusOut {
                        code: 403,
                        reason: "Forbidden",
                        message,
                    }),
                    _ => None,
                },
                warnings: &self.warnings,
            },
        };
        serde_json::to_vec(&review).unwrap_or_else(|_| {
            // Only strings and booleans: serialisation cannot fail; answer open if it ever did.
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":{},"allowed":true}}}}"#,
                serde_json::Value::String(self.uid.clone())
            )
            .into_bytes()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn review(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})).unwrap()
    }

    #[test]
    fn a_pod_create_yields_its_images() {
        let body = review(json!({
            "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop", "operation": "CREATE",
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
        }));
        let request = parse(&body).unwrap();
        assert_eq!(request.object_name(), "shop/web-…");
        let images = request.images().unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].image, "nginx:1.27");
    }

    #[test]
    fn an_update_decides_only_new_images() {
        let pod = |images: &[&str]| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": {"spec": {"containers":
                images.iter().enumerate().map(|(i, im)| json!({"name": format!("c{i}"), "image": im})).collect::<Vec<_>>()}}}})
        };
        let body = review(json!({
            "uid": "u2", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "namespace": "shop", "name": "d", "operation": "UPDATE",
            "object": pod(&["a:1", "b:2"]), "oldObject": pod(&["a:1"])
        }));
        let images = parse(&body).unwrap().images().unwrap();
        assert_eq!(
            images.iter().map(|i| i.image.as_str()).collect::<Vec<_>>(),
            ["b:2"]
        );
    }

    #[test]
    fn ephemeral_containers_subresource_of_1_20() {
        let body = review(json!({
            "uid": "u3", "kind": {"group": "", "version": "v1", "kind": "EphemeralContainers"},
            "subResource": "ephemeralcontainers", "namespace": "shop", "name": "p", "operation": "UPDATE",
            "object": {"apiVersion": "v1", "kind": "EphemeralContainers", "metadata": {"name": "p"},
                "ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}]},
            "oldObject": {"apiVersion": "v1", "kind": "EphemeralContainers", "metadata": {"name": "p"}}
        }));
        let images = parse(&body).unwrap().images().unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].kind, ContainerKind::Ephemeral);
    }

    #[test]
    fn malformed_reviews_are_errors() {
        assert!(matches!(parse(b"{"), Err(Error::Json(_))));
        assert!(matches!(parse(b"[]"), Err(Error::Json(_))));
        assert!(matches!(
            parse(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#),
            Err(Error::ApiVersion(_))
        ));
        assert!(matches!(
            parse(br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#),
            Err(Error::Kind(_))
        ));
        assert!(matches!(
            parse(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            Err(Error::NoRequest)
        ));
        assert!(matches!(
            parse(&review(json!({"uid": " ", "kind": {}}))),
            Err(Error::NoUid)
        ));
        // Deep nesting hits serde_json's recursion limit, not the stack.
        let deep = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"x","kind":{{}},"object":{}{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(parse(deep.as_bytes()), Err(Error::Json(_))));
    }

    #[test]
    fn responses_carry_uid_status_and_warnings() {
        let denied = Response {
            uid: "u\"1".into(),
            allowed: false,
            message: Some("image x: FAIL".into()),
            warnings: vec![],
        };
        let value: Value = serde_json::from_slice(&denied.to_json()).unwrap();
        assert_eq!(
            value,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
                "uid": "u\"1", "allowed": false,
                "status": {"code": 403, "reason": "Forbidden", "message": "image x: FAIL"}}})
        );
        let warned = Response {
            uid: "u2".into(),
            allowed: true,
            message: None,
            warnings: vec!["w".into()],
        };
        let value: Value = serde_json::from_slice(&warned.to_json()).unwrap();
        assert_eq!(value["response"]["warnings"], json!(["w"]));
        assert!(value["response"].get("status").is_none());
    }
}
