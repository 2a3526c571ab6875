//! `POST reports {"imageDigest", "policyRevision"?, "namespace"?, "environment"?}`: the policy
//! report of a stored inventory, evaluated now against the imported advisories, the VEX
//! statements and the named `Policy` (the pipeline's evaluation, as `stella report` and the
//! worker run it).
//!
//! `policyRevision` is a cluster `Policy`'s name, optionally pinned to its digest
//! (`baseline@sha256:…`: 409 when the policy has changed since). Without it the built-in
//! default applies: no rules, every finding decided by its severity.

use super::auth::Access;
use super::input::{self, quoted};
use super::reads::inventory;
use super::{ApiState, Error, api_server_failure, json_response, respond, store_failure};
use serde::Deserialize;
use stella_crds::policy::v1alpha1::Policy;
use warp::http::StatusCode;
use warp::reply::Response;

/// The policy that applies when the request names none.
const DEFAULT_POLICY: &str = r#"{"version": "1.0", "rules": []}"#;

/// The request body (seeds: `{ imageDigest, policyRevision? }`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReportRequest {
    image_digest: String,
    #[serde(default)]
    policy_revision: Option<String>,
    /// The namespace the image runs in, for the policy's `namespaces` matchers.
    #[serde(default)]
    namespace: Option<String>,
    /// The environment (`prod`, `dev`, …), for the policy's `environments` matchers.
    #[serde(default)]
    environment: Option<String>,
}

pub(crate) async fn report(
    headers: warp::http::HeaderMap,
    body: impl futures::Stream<Item = Result<impl warp::Buf, warp::Error>>,
    authorization: Option<String>,
    state: ApiState,
) -> Response {
    respond(
        async {
            let caller = state.reviews.authenticate(authorization.as_deref()).await?;
            state.reviews.authorize(&caller, Access::evaluate()).await?;
            let body = input::body(&headers, body).await?;
            let request = parse(&body)?;
            let digest = input::digest(&request.image_digest)?;
            let namespace = request
                .namespace
                .as_deref()
                .map(input::namespace)
                .transpose()?;
            let environment = request
                .environment
                .as_deref()
                .map(environment)
                .transpose()?;
            let pinned = request
                .policy_revision
                .as_deref()
                .map(revision)
                .transpose()?;
            let policy = match &pinned {
                Some((name, pin)) => {
                    state
                        .reviews
                        .authorize(&caller, Access::read_policy(name))
                        .await?;
                    named_policy(&state, name, pin.as_deref()).await?
                }
                None => stella_policy::load_str(DEFAULT_POLICY).map_err(|e| {
                    Error::Internal(format!("the default policy does not load: {e}"))
                })?,
            };
            let inventory = inventory(&state, &digest).await?;
            let evaluation = evaluate(&state, inventory, policy, namespace, environment).await?;
            let body = serde_json::json!({
                "reportId": evaluation.manifest.scan_id,
                "verdict": evaluation.report.verdict,
                "rootHash": evaluation.root,
                "report": evaluation.report,
            });
            Ok(json_response(
                StatusCode::OK,
                stella_sbom::canonical::to_string_pretty(&body),
            ))
        }
        .await,
    )
}

/// The body: the report request's fields and no others.
fn parse(body: &[u8]) -> Result<ReportRequest, Error> {
    input::json_object(
        body,
        "report request",
        "{\"imageDigest\": \"sha256:…\", \"policyRevision\": \"<policy>[@sha256:…]\"}",
    )
}

/// `name` or `name@sha256:…`.
fn revision(text: &str) -> Result<(String, Option<String>), Error> {
    let bad = || {
        Error::BadRequest(format!(
            "policyRevision {} is not a Policy name, optionally @sha256:<digest>",
            quoted(text)
        ))
    };
    let (name, pin) = match text.split_once('@') {
        Some((name, pin)) => (name, Some(input::digest(pin).map_err(|_| bad())?)),
        None => (text, None),
    };
    Ok((input::object_name(name).map_err(|_| bad())?, pin))
}

/// An environment name: 1 to 63 of `[A-Za-z0-9._-]`.
fn environment(text: &str) -> Result<String, Error> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(text.to_string())
    } else {
        Err(Error::BadRequest(format!(
            "environment {} is not 1 to 63 of [A-Za-z0-9._-]",
            quoted(text)
        )))
    }
}

/// The cluster `Policy` called `name`, loaded (validated, normalised, digested) as the CLI
/// loads a policy file; 409 when `pin` names another digest or the policy does not load.
async fn named_policy(
    state: &ApiState,
    name: &str,
    pin: Option<&str>,
) -> Result<stella_policy::Loaded, Error> {
    let policy = kube::Api::<Policy>::all(state.client.clone())
        .get_opt(name)
        .await
        .map_err(|e| api_server_failure("get Policy", e))?
        .ok_or_else(|| Error::NotFound(format!("no Policy \"{name}\"")))?;
    let spec = serde_json::to_string(&policy.spec).map_err(|e| Error::Internal(e.to_string()))?;
    let loaded = stella_policy::load_str(&spec)
        .map_err(|issues| Error::Conflict(format!("Policy \"{name}\" does not load: {issues}")))?;
    if let Some(pin) = pin
        && pin != loaded.digest
    {
        return Err(Error::Conflict(format!(
            "Policy \"{name}\" is at {}, not {pin}",
            loaded.digest
        )));
    }
    Ok(loaded)
}

/// The stored inventory judged now, as every scan judges it ([`stella_pipeline::evaluate`]):
/// the imported advisories, the VEX statements about its packages, KEV / EPSS, the policy.
async fn evaluate(
    state: &ApiState,
    inventory: stella_sbom::Inventory,
    policy: stella_policy::Loaded,
    namespace: Option<String>,
    environment: Option<String>,
) -> Result<stella_verdict::evaluate::Evaluation, Error> {
    let inputs = stella_pipeline::EvaluateInputs {
        namespace,
        environment,
        ..stella_pipeline::EvaluateInputs::now(Some(policy))
    };
    let evaluation = stella_pipeline::evaluate(&state.store, inventory, inputs)
        .await
        .map_err(|e| match e {
            stella_pipeline::Error::Storage { source, .. } => store_failure(source),
            other => Error::Internal(other.to_string()),
        })?;
    evaluation
        .policy
        .map(|p| p.evaluation)
        .ok_or_else(|| Error::Internal("the evaluation has no policy result".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_a_name_and_an_optional_digest() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(revision("baseline").unwrap(), ("baseline".into(), None));
        assert_eq!(
            revision(&format!("baseline@{digest}")).unwrap(),
            ("baseline".into(), Some(digest.clone()))
        );
        for bad in ["", "Baseline", "policy@42", "a/b", &format!("@{digest}")] {
            assert_eq!(revision(bad).unwrap_err().code(), "bad_request", "{bad:?}");
        }
    }

    #[test]
    fn bodies_are_objects_of_the_known_fields() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let request = parse(format!(r#"{{"imageDigest": "{digest}"}}"#).as_bytes()).unwrap();
        assert_eq!(request.image_digest, digest);
        for bad in [
            format!(r#"["{digest}"]"#),
            format!(r#"{{"imageDigest": "{digest}", "extra": 1}}"#),
            "{}".into(),
            "".into(),
            "null".into(),
        ] {
            assert_eq!(
                parse(bad.as_bytes()).unwrap_err().code(),
                "bad_request",
                "{bad}"
            );
        }
    }

    #[test]
    fn the_default_policy_loads() {
        let loaded = stella_policy::load_str(DEFAULT_POLICY).unwrap();
        assert!(loaded.spec.rules.is_empty());
    }

    #[test]
    fn environments_are_bounded_names() {
        assert!(environment("prod-eu_1.a").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(64)] {
            assert!(environment(bad).is_err(), "{bad:?}");
        }
    }
}
