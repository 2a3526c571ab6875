//! Attest: the signer. For a Completed Scan with `spec.attest.enabled`, the in-toto statements
//! the worker (or a re-evaluation) wrote beside the result are checked — valid, about this
//! image, every artifact they bind read back and re-hashed against the statement and the
//! catalog — and signed with the key of the Scan's Secret. Only the operator reads that Secret;
//! the worker Jobs never see a key.
//!
//! The outcome's status gets `attestation` (state, key id, the envelopes) and the `Attested`
//! condition. A refusal (no Secret, a key that does not load, a tampered artifact, a result
//! without statements) leaves the result as it is, unverified, says why in both, and raises a
//! Warning Event.

use super::Context;
use super::dereference::{References, SecretRef};
use super::error::{self, Result};
use super::plan::Outcome;
use super::validate::ValidatedScan;
use crate::conditions::{self, Status};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::runtime::events::{EventType, Recorder};
use stella_crds::scan::v1alpha1::{
    AttestationState, AttestationStatus, AttestedEnvelope, Scan, ScanPhase,
};

/// `Attested` (Scan): the current result is signed.
pub const ATTESTED: &str = "Attested";

/// Secret entries read as an encrypted key's password, in order (cosign's Kubernetes layout
/// first).
const PASSWORD_ENTRIES: [&str; 2] = ["cosign.password", "password"];

/// Why a result is not signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    fn new(reason: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            reason,
            message: message.into(),
        }
    }
}

/// The signing key of the Scan's Secret (pure): the entry `spec.attest.signingKeySecretRef.key`
/// (cosign's layout: `cosign.key`), opened with the Secret's password entry when it is
/// encrypted.
pub fn signing_key(
    scan: &Scan,
    key: Option<&(SecretRef, Option<Secret>)>,
) -> std::result::Result<stella_attest::SigningKey, Problem> {
    let entry = scan
        .spec
        .attest
        .as_ref()
        .and_then(|a| a.signing_key_secret_ref.as_ref())
        .map(|r| r.key.clone())
        .unwrap_or_else(|| "cosign.key".into());
    let (reference, secret) = key.ok_or_else(|| {
        Problem::new(
            "SigningKeyMissing",
            "spec.attest.signingKeySecretRef names no Secret, and the operator has no key of its own (--signing-key-uri)",
        )
    })?;
    let secret = secret.as_ref().ok_or_else(|| {
        Problem::new(
            "SigningKeyMissing",
            format!(
                "Secret {}/{} does not exist",
                reference.namespace, reference.name
            ),
        )
    })?;
    let data = secret.data.clone().unwrap_or_default();
    let pem = data.get(&entry).ok_or_else(|| {
        Problem::new(
            "SigningKeyMissing",
            format!(
                "Secret {}/{} has no entry {entry:?}",
                reference.namespace, reference.name
            ),
        )
    })?;
    let pem = std::str::from_utf8(&pem.0).map_err(|_| {
        Problem::new(
            "SigningKeyInvalid",
            format!(
                "{}/{}[{entry}] is not PEM text",
                reference.namespace, reference.name
            ),
        )
    })?;
    let password = PASSWORD_ENTRIES
        .iter()
        .find_map(|name| data.get(*name))
        .map(|p| p.0.strip_suffix(b"\n").unwrap_or(&p.0).to_vec());
    stella_attest::SigningKey::from_pem(pem, password.as_deref()).map_err(|e| {
        Problem::new(
            "SigningKeyInvalid",
            format!("{}/{}[{entry}]: {e}", reference.namespace, reference.name),
        )
    })
}

/// Signs the current result's statements when the Scan asks for it and its outcome is
/// Completed; records the attestation state in the outcome's status.
pub async fn attest(
    ctx: &Context,
    scan: &Scan,
    references: &References,
    validated: Option<&ValidatedScan>,
    outcome: &mut Outcome,
    now: &Time,
) -> Result<()> {
    if !super::job::attests(scan) || outcome.status.phase != Some(ScanPhase::Completed) {
        return Ok(());
    }
    let Some(digest) = outcome.status.image_digest.clone() else {
        return Ok(());
    };
    let previous = scan.status.as_ref().and_then(|s| s.attestation.clone());
    let from_secret = scan
        .spec
        .attest
        .as_ref()
        .is_some_and(|a| a.signing_key_secret_ref.is_some());
    // The Scan's Secret when it names one, else the operator's own key (a PKCS#11 token).
    let key: std::result::Result<std::sync::Arc<dyn stella_attest::Signer>, Problem> =
        match (&ctx.signer, from_secret) {
            (Some(signer), false) => Ok(signer.clone()),
            _ => signing_key(scan, references.signing_key.as_ref())
                .map(|k| std::sync::Arc::new(k) as std::sync::Arc<dyn stella_attest::Signer>),
        };
    let public = key.as_ref().ok().map(|k| k.public().clone());
    let result = match key {
        Err(problem) => Err(problem),
        Ok(key) => sign(ctx, &digest, key.as_ref(), previous.as_ref()).await?,
    };
    let attach = scan.spec.attest.as_ref().is_some_and(|a| a.attach);
    let generation = scan.metadata.generation;
    let (attestation, desired) = match result {
        Ok((mut attestation, signed)) => {
            if attach && !signed.is_empty() {
                match push(validated, &digest, &signed).await {
                    Ok(note) => attestation.message = Some(note),
                    Err(why) => {
                        publish(ctx, scan, EventType::Warning, "AttachFailed", &why).await;
                        attestation.reason = Some("AttachFailed".into());
                        attestation.message = Some(truncate(&why));
                    }
                }
            } else if attach {
                attestation.reason = previous.as_ref().and_then(|p| p.reason.clone());
                attestation.message = previous.as_ref().and_then(|p| p.message.clone());
            }
            if let Some(attest) = scan.spec.attest.as_ref()
                && let Some(url) = &attest.rekor_url
                && let Some(public) = &public
            {
                match log(
                    ctx,
                    &digest,
                    url,
                    attest.rekor_public_key.as_deref(),
                    public,
                )
                .await
                {
                    Ok((logged, note)) => {
                        for (key, index) in logged {
                            if let Some(e) = attestation.envelopes.iter_mut().find(|e| e.key == key)
                            {
                                e.log_index = Some(index);
                            }
                        }
                        if attestation.envelopes.iter().all(|e| e.log_index.is_some()) {
                            attestation.state = AttestationState::Logged;
                        }
                        attestation.message = Some(truncate(&match attestation.message.take() {
                            Some(before) => format!("{before}; {note}"),
                            None => note,
                        }));
                    }
                    Err((reason, why)) => {
                        if previous.as_ref().and_then(|p| p.reason.as_deref()) != Some(reason) {
                            publish(ctx, scan, EventType::Warning, reason, &why).await;
                        }
                        attestation.reason = Some(reason.into());
                        attestation.message = Some(truncate(&why));
                    }
                }
            }
            let mut message = format!(
                "{} envelopes signed by key {}",
                attestation.envelopes.len(),
                attestation.key_id.as_deref().unwrap_or_default()
            );
            if attestation.state == AttestationState::Logged
                && let Some(url) = scan.spec.attest.as_ref().and_then(|a| a.rekor_url.as_ref())
            {
                message.push_str(&format!(" and logged to {url}"));
            }
            let signed_now = previous.as_ref() != Some(&attestation);
            if signed_now {
                publish(ctx, scan, EventType::Normal, "Attested", &message).await;
            }
            let reason = if attestation.state == AttestationState::Logged {
                "Logged"
            } else {
                "Signed"
            };
            (
                attestation,
                conditions::condition(ATTESTED, Status::True, reason, message),
            )
        }
        Err(problem) => {
            if previous.as_ref().and_then(|p| p.reason.as_deref()) != Some(problem.reason) {
                publish(
                    ctx,
                    scan,
                    EventType::Warning,
                    problem.reason,
                    &problem.message,
                )
                .await;
            }
            (
                AttestationStatus {
                    state: AttestationState::Failed,
                    reason: Some(problem.reason.to_string()),
                    message: Some(truncate(&problem.message)),
                    key_id: None,
                    envelopes: Vec::new(),
                },
                conditions::condition(ATTESTED, Status::False, problem.reason, problem.message),
            )
        }
    };
    outcome.status.attestation = Some(attestation);
    outcome.status.conditions =
        conditions::merge(&outcome.status.conditions, &[desired], generation, now);
    Ok(())
}

/// Signs what is not signed yet and names the current result's envelopes: the inventory
/// SBOM's and the report's by what they bind, the vulnerability and proof statements' from
/// this signing or the status before.
async fn sign(
    ctx: &Context,
    digest: &str,
    key: &dyn stella_attest::Signer,
    previous: Option<&AttestationStatus>,
) -> Result<
    std::result::Result<(AttestationStatus, Vec<stella_pipeline::attest::Attestation>), Problem>,
> {
    let store = &ctx.store;
    let artifacts = store
        .catalog
        .artifacts(digest)
        .await
        .map_err(error::store("read the catalog's artifacts"))?;
    if !artifacts
        .iter()
        .any(|a| a.kind == stella_pipeline::attest::STATEMENT_KIND)
    {
        return Ok(Err(Problem::new(
            "NotAttestable",
            "the result was computed without statements to sign (it predates spec.attest); it is signed after the next scan or re-evaluation",
        )));
    }
    let signed = match stella_pipeline::attest::sign_stored(store, digest, &artifacts, key).await {
        Ok(signed) => signed,
        Err(stella_pipeline::attest::Refusal::Failed(e)) => {
            return Err(error::Error::Attest(e));
        }
        Err(refusal) => return Ok(Err(Problem::new(refusal.reason(), refusal.to_string()))),
    };
    let mut envelopes: Vec<AttestedEnvelope> = previous
        .filter(|p| p.key_id.as_deref() == Some(key.public().key_id()))
        .map(|p| p.envelopes.clone())
        .unwrap_or_default();
    // The SBOM and the report of the current result, signed now or before.
    let report_key = store
        .catalog
        .latest_result(digest)
        .await
        .map_err(error::store("read the catalog's latest result"))?
        .and_then(|r| r.report_key);
    let sbom_key = stella_store::keys::image_artifact(digest, "inventory", "cdx.json");
    for (kind, bound) in [("sbom", Some(sbom_key)), ("report", report_key)] {
        let envelope_key = bound
            .and_then(|k| artifacts.iter().find(|a| a.key == k))
            .map(|a| stella_attest::storage_key(&a.digest));
        if let Some(row) = envelope_key.and_then(|key| {
            artifacts
                .iter()
                .find(|a| a.key == key && a.kind == stella_pipeline::attest::ATTESTATION_KIND)
        }) {
            upsert(&mut envelopes, kind, &row.key, &row.digest);
        }
    }
    for a in &signed {
        upsert(&mut envelopes, a.kind.as_str(), &a.key, &a.envelope_digest);
    }
    envelopes.sort_by(|a, b| a.kind.cmp(&b.kind));
    Ok(Ok((
        AttestationStatus {
            state: AttestationState::Signed,
            reason: None,
            message: None,
            key_id: Some(key.public().key_id().to_string()),
            envelopes,
        },
        signed,
    )))
}

/// Logs the image's envelopes signed by `key` that are not logged yet to the Rekor v2 log at
/// `url` (checkpoints verified with `log_key` when given); the log index of every logged
/// envelope by its key, and what happened, for the status. Failures are `(reason, message)`.
async fn log(
    ctx: &Context,
    digest: &str,
    url: &str,
    log_key: Option<&str>,
    key: &stella_attest::PublicKey,
) -> std::result::Result<(Vec<(String, i64)>, String), (&'static str, String)> {
    let trusted = match log_key {
        Some(pem) => stella_attest::rekor::TrustedLogs::pinned(
            stella_attest::PublicKey::from_pem(pem).map_err(|e| {
                (
                    "RekorKeyInvalid",
                    format!("spec.attest.rekorPublicKey: {e}"),
                )
            })?,
        ),
        None => stella_attest::rekor::TrustedLogs::default(),
    };
    let log = stella_pipeline::transparency::Log::new(url, trusted)
        .map_err(|e| ("RekorInvalid", format!("spec.attest.rekorUrl: {e}")))?;
    let artifacts = ctx
        .store
        .catalog
        .artifacts(digest)
        .await
        .map_err(|e| ("StorageUnavailable", e.to_string()))?;
    let logged =
        stella_pipeline::transparency::log_stored(&ctx.store, digest, &artifacts, &log, key)
            .await
            .map_err(|e| (e.reason(), e.to_string()))?;
    let now = logged.iter().filter(|l| l.logged_now).count();
    let note = format!(
        "{} envelopes in {url} ({now} logged now){}",
        logged.len(),
        if log_key.is_some() {
            ""
        } else {
            "; checkpoint signatures not verified: set spec.attest.rekorPublicKey"
        }
    );
    let indices = logged
        .into_iter()
        .filter_map(|l| Some((l.envelope_key, i64::try_from(l.log_index?).ok()?)))
        .collect();
    Ok((indices, note))
}

/// Pushes what was just signed to the image's registry as its referrers, with the Scan's
/// pull credentials; what happened, for the status.
async fn push(
    validated: Option<&ValidatedScan>,
    digest: &str,
    signed: &[stella_pipeline::attest::Attestation],
) -> std::result::Result<String, String> {
    let validated = validated.ok_or("the Scan does not validate: nothing attached")?;
    let client = validated.registry_client().map_err(|e| e.message)?;
    let digest = stella_acquire::Digest::parse(digest).map_err(|e| e.to_string())?;
    let envelopes: Vec<(String, Vec<u8>)> = signed
        .iter()
        .map(|a| (a.predicate_type.clone(), a.envelope.clone()))
        .collect();
    let attached =
        stella_pipeline::referrers::attach(&client, &validated.reference, &digest, &envelopes)
            .await
            .map_err(|e| format!("attaching to {}: {e}", validated.reference))?;
    Ok(format!(
        "{} envelopes attached to {} ({}; cosign: {})",
        attached.manifests.len(),
        validated.reference,
        if attached.referrers_api {
            "Referrers API".to_string()
        } else {
            format!("referrers tag sha256-{}", digest.hex())
        },
        attached.cosign_tag
    ))
}

fn upsert(envelopes: &mut Vec<AttestedEnvelope>, kind: &str, key: &str, digest: &str) {
    let log_index = envelopes
        .iter()
        .find(|e| e.kind == kind && e.key == key)
        .and_then(|e| e.log_index);
    envelopes.retain(|e| e.kind != kind);
    envelopes.push(AttestedEnvelope {
        kind: kind.to_string(),
        key: key.to_string(),
        digest: digest.to_string(),
        log_index,
    });
}

fn truncate(message: &str) -> String {
    message.chars().take(1024).collect()
}

async fn publish(ctx: &Context, scan: &Scan, type_: EventType, reason: &str, note: &str) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let event = kube::runtime::events::Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: "Attest".into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &scan.object_ref(&())).await {
        tracing::debug!(%error, "failed to record an attestation event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn scan(key: &str) -> Scan {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": "s", "namespace": "shop"},
            "spec": {"image": "registry.example/x:1",
                     "attest": {"enabled": true, "signingKeySecretRef": {"name": "signing", "key": key}}},
        }))
        .unwrap()
    }

    fn secret(entries: &[(&str, &[u8])]) -> (SecretRef, Option<Secret>) {
        let data = entries
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
            .collect();
        (
            SecretRef {
                namespace: "shop".into(),
                name: "signing".into(),
            },
            Some(Secret {
                data: Some(data),
                ..Default::default()
            }),
        )
    }

    fn reason(result: std::result::Result<stella_attest::SigningKey, Problem>) -> &'static str {
        result.map(|_| "Ok").unwrap_or_else(|p| p.reason)
    }

    #[test]
    fn the_key_comes_from_the_named_entry_and_its_password_entry() {
        use stella_attest::Signer;
        let (key, der) =
            stella_attest::SigningKey::generate(stella_attest::Algorithm::EcdsaP256).unwrap();
        let encrypted = stella_attest::cosign::encrypt(&der, b"pw").unwrap();
        let plain = stella_attest::keys::to_pem("PRIVATE KEY", &der);
        let s = scan("cosign.key");
        // cosign's layout: the password's trailing newline (from `echo`) is not part of it.
        let opened = signing_key(
            &s,
            Some(&secret(&[
                ("cosign.key", encrypted.as_bytes()),
                ("cosign.password", b"pw\n"),
            ])),
        )
        .unwrap();
        assert_eq!(opened.public(), key.public());
        assert_eq!(
            reason(signing_key(
                &scan("tls.key"),
                Some(&secret(&[("tls.key", plain.as_bytes())]))
            )),
            "Ok"
        );
        assert_eq!(reason(signing_key(&s, None)), "SigningKeyMissing");
        let gone = (
            SecretRef {
                namespace: "shop".into(),
                name: "signing".into(),
            },
            None,
        );
        let problem = signing_key(&s, Some(&gone)).unwrap_err();
        assert_eq!(
            (problem.reason, problem.message.as_str()),
            ("SigningKeyMissing", "Secret shop/signing does not exist")
        );
        assert_eq!(
            reason(signing_key(&s, Some(&secret(&[("other", b"x")])))),
            "SigningKeyMissing"
        );
        for entries in [
            vec![("cosign.key", encrypted.as_bytes())],
            vec![("cosign.key", encrypted.as_bytes()), ("password", b"wrong")],
            vec![("cosign.key", b"\xff\xfe")],
            vec![(
                "cosign.key",
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            )],
        ] {
            let problem = signing_key(&s, Some(&secret(&entries))).unwrap_err();
            assert_eq!(problem.reason, "SigningKeyInvalid", "{}", problem.message);
            assert!(
                problem.message.starts_with("shop/signing[cosign.key]"),
                "{}",
                problem.message
            );
        }
    }
}
