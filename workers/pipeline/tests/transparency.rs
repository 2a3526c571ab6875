//! Logging envelopes to a Rekor v2 log: the test log of `stella_e2e::tlog` (no Rekor server
//! can run here) answers with real RFC 9162 proofs and signed checkpoints, and lies on demand;
//! our client must keep what verifies and refuse every lie.

use stella_attest::rekor::{RekorError, TrustedLogs};
use stella_attest::statement::{Statement, Subject};
use stella_attest::{Algorithm, Envelope, Signer, SigningKey};
use stella_e2e::tlog::{Misbehave, TestLog};
use stella_pipeline::transparency::{Log, LogError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn envelope(key: &SigningKey, n: usize) -> Envelope {
    let statement = Statement::new(
        vec![Subject::sha256(
            "registry.example/app",
            &format!("sha256:{}", format!("{n:02x}").repeat(32)),
        )],
        stella_attest::statement::REPORT,
        serde_json::json!({"verdict": "PASS", "n": n}),
    );
    stella_attest::sign(&statement, key).unwrap()
}

#[test]
fn envelopes_are_logged_proven_and_bundled() {
    let runtime = runtime();
    let log = TestLog::start("stella-test.log", 6);
    let trusted =
        TrustedLogs::from_trusted_root(log.trusted_root().to_string().as_bytes()).unwrap();
    let client = Log::new(&log.url, trusted.clone()).unwrap();
    for (n, algorithm) in [Algorithm::EcdsaP256, Algorithm::Ed25519]
        .into_iter()
        .enumerate()
    {
        let (key, _) = SigningKey::generate(algorithm).unwrap();
        let envelope = envelope(&key, n);
        let logged = runtime
            .block_on(client.log(&envelope, key.public()))
            .unwrap();
        assert_eq!(logged.log_index, 6 + n as u64);
        assert!(logged.checkpoint_verified);
        assert_eq!(logged.origin, "stella-test.log");
        // The bundle verifies offline: with the trusted root, and with the log's key pinned.
        let bundle: serde_json::Value = serde_json::from_slice(&logged.bundle).unwrap();
        assert_eq!(
            bundle["mediaType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
        let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
        let inside = stella_attest::rekor::bundle_envelope(&bundle)
            .unwrap()
            .unwrap();
        assert_eq!(inside, envelope);
        let offline = stella_attest::rekor::check_logged(entry, &inside, &trusted).unwrap();
        assert_eq!(offline.log_index, logged.log_index);
        let pinned =
            TrustedLogs::pinned(stella_attest::PublicKey::from_pem(&log.public_key_pem()).unwrap());
        stella_attest::rekor::check_logged(entry, &inside, &pinned).unwrap();
        // The entry is about this envelope, not another one.
        let other = self::envelope(&key, 9);
        assert!(matches!(
            stella_attest::rekor::check_logged(entry, &other, &trusted),
            Err(RekorError::NotThisEnvelope(_))
        ));
    }
    assert_eq!(log.counts(), (8, 2));

    // Without a trusted log key the proof and binding are checked, and it says so.
    let (key, _) = SigningKey::generate(Algorithm::EcdsaP256).unwrap();
    let unpinned = Log::new(&log.url, TrustedLogs::default()).unwrap();
    let logged = runtime
        .block_on(unpinned.log(&envelope(&key, 3), key.public()))
        .unwrap();
    assert!(!logged.checkpoint_verified);
}

#[test]
fn a_lying_or_failing_log_is_refused_with_its_reason() {
    let runtime = runtime();
    let log = TestLog::start("stella-test.log", 3);
    let trusted =
        TrustedLogs::from_trusted_root(log.trusted_root().to_string().as_bytes()).unwrap();
    let client = Log::new(&log.url, trusted).unwrap();
    let (key, _) = SigningKey::generate(Algorithm::EcdsaP256).unwrap();
    for (how, wanted) in [
        (Misbehave::WrongProof, "the inclusion proof does not lead"),
        (
            Misbehave::ForeignCheckpoint,
            "no valid checkpoint signature",
        ),
        (Misbehave::OtherEntry, "not about this envelope"),
    ] {
        log.misbehave(how);
        let got = runtime.block_on(client.log(&envelope(&key, 1), key.public()));
        match got {
            Err(e @ LogError::Invalid { .. }) => {
                assert!(e.to_string().contains(wanted), "{how:?}: {e}");
                assert_eq!(e.reason(), "RekorInvalid");
            }
            other => panic!("{how:?}: {other:?}"),
        }
    }
    // 503 is retried twice, then reported.
    log.misbehave(Misbehave::Unavailable);
    let before = log.counts().1;
    let got = runtime.block_on(client.log(&envelope(&key, 1), key.public()));
    assert!(
        matches!(&got, Err(LogError::Refused { status: 503, .. })),
        "{got:?}"
    );
    assert_eq!(log.counts().1 - before, 3, "three attempts");
    // An envelope that the key did not sign is not sent at all.
    let (stranger, _) = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let got = runtime.block_on(client.log(&envelope(&key, 2), stranger.public()));
    assert!(matches!(got, Err(LogError::NotSigned(_))), "{got:?}");
    // A log that is not there.
    drop(log);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gone = Log::new(&url, TrustedLogs::default()).unwrap();
    let got = runtime.block_on(gone.log(&envelope(&key, 1), key.public()));
    assert!(matches!(got, Err(LogError::Unreachable { .. })), "{got:?}");
    assert!(Log::new("ftp://log.example", TrustedLogs::default()).is_err());
}
