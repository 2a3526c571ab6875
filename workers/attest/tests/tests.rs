//! DSSE envelopes, in-toto statements and keys: round trips, determinism, every way an
//! envelope can be wrong, cosign's real encrypted key files, and an independent verifier
//! (securesystemslib's DSSE and in-toto-attestation's statement validator).

mod rekor;

use serde_json::json;
use stella_attest::statement::{self, Kind, Statement, Subject};
use stella_attest::{
    Algorithm, Envelope, EnvelopeError, Expect, KeyError, PublicKey, Signer, SigningKey,
    VerifyError, dsse, verify,
};

const IMAGE: &str = "sha256:3a1c6a3bd1b7d51a0f8f1b4c6e5d0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn report_statement(evaluated_at: &str) -> Statement {
    Statement::new(
        vec![
            Subject::sha256("registry.example/app", IMAGE),
            Subject::sha256("images/x/reports/y.json", &"ab".repeat(32)),
        ],
        statement::REPORT,
        json!({"imageDigest": IMAGE, "verdict": "PASS", "evaluatedAt": evaluated_at}),
    )
}

fn key(algorithm: Algorithm) -> SigningKey {
    SigningKey::generate(algorithm).unwrap().0
}

#[test]
fn pae_is_the_dsse_spec_encoding() {
    // The example of the DSSE protocol document.
    assert_eq!(
        dsse::pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(dsse::pae("", b""), b"DSSEv1 0  0 ");
}

#[test]
fn both_algorithms_sign_and_verify_and_p256_is_deterministic() {
    for algorithm in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
        let signer = key(algorithm);
        let statement = report_statement("2026-12-01T11:00:00Z");
        let first = stella_attest::sign(&statement, &signer).unwrap().to_json();
        let second = stella_attest::sign(&statement, &signer).unwrap().to_json();
        assert_eq!(
            first, second,
            "{algorithm:?}: the same statement signs to the same bytes"
        );
        let verified = verify(
            &first,
            &[signer.public().clone()],
            &Expect {
                kind: Some(Kind::Report),
                subject: Some(IMAGE.into()),
                max_age: Some(chrono::Duration::hours(2)),
            },
            now(),
        )
        .unwrap();
        assert_eq!(verified.key_id, signer.public().key_id());
        assert_eq!(verified.algorithm, algorithm);
        assert_eq!(verified.statement, statement);
        assert_eq!(
            verified.time.unwrap().to_rfc3339(),
            "2026-12-01T11:00:00+00:00"
        );
        // The stored form is canonical JSON: sorted keys, one line.
        let text = String::from_utf8(first).unwrap();
        assert!(text.starts_with("{\"payload\":\"") && text.ends_with("}\n"));
        assert!(text.contains("\"payloadType\":\"application/vnd.in-toto+json\""));
    }
}

#[test]
fn a_rotated_key_set_verifies_old_and_new_signatures() {
    let old = key(Algorithm::EcdsaP256);
    let new = key(Algorithm::Ed25519);
    let trusted = [old.public().clone(), new.public().clone()];
    for signer in [&old, &new] {
        let bytes = stella_attest::sign(&report_statement("2026-12-01T11:00:00Z"), signer)
            .unwrap()
            .to_json();
        let verified = verify(&bytes, &trusted, &Expect::default(), now()).unwrap();
        assert_eq!(verified.key_id, signer.public().key_id());
    }
    // Without a key id the signature is tried against every key.
    let mut envelope =
        stella_attest::sign(&report_statement("2026-12-01T11:00:00Z"), &new).unwrap();
    envelope.signatures[0].keyid.clear();
    let verified =
        stella_attest::verify_envelope(&envelope, &trusted, &Expect::default(), now()).unwrap();
    assert_eq!(verified.key_id, new.public().key_id());
}

fn untrusted(result: Result<stella_attest::Verified, VerifyError>) -> String {
    match result {
        Err(VerifyError::Envelope(EnvelopeError::Untrusted { .. })) => "untrusted".into(),
        Err(e) => e.to_string(),
        Ok(v) => panic!("verified: {v:?}"),
    }
}

#[test]
fn tampering_a_wrong_key_or_a_forged_key_id_never_passes() {
    let signer = key(Algorithm::EcdsaP256);
    let trusted = [signer.public().clone()];
    let good = stella_attest::sign(&report_statement("2026-12-01T11:00:00Z"), &signer).unwrap();
    let check =
        |e: &Envelope| stella_attest::verify_envelope(e, &trusted, &Expect::default(), now());
    check(&good).unwrap();

    // The verdict changed after signing.
    let mut payload = good.clone();
    payload.payload = String::from_utf8(payload.payload)
        .unwrap()
        .replace("PASS", "FAIL")
        .into_bytes();
    assert_eq!(untrusted(check(&payload)), "untrusted");
    // A flipped signature bit; a signature cut short; an empty one.
    for mutate in [
        (|s: &mut Vec<u8>| {
            let last = s.len() - 1;
            s[last] ^= 1;
        }) as fn(&mut Vec<u8>),
        |s| s.truncate(s.len() / 2),
        |s| s.clear(),
    ] {
        let mut bad = good.clone();
        mutate(&mut bad.signatures[0].sig);
        assert_eq!(untrusted(check(&bad)), "untrusted");
    }
    // The payload type is covered by the signature.
    let mut typed = good.clone();
    typed.payload_type = "application/json".into();
    assert_eq!(untrusted(check(&typed)), "untrusted");
    // Another key, even under the trusted key's id.
    let other = key(Algorithm::EcdsaP256);
    let mut forged =
        stella_attest::sign(&report_statement("2026-12-01T11:00:00Z"), &other).unwrap();
    assert_eq!(untrusted(check(&forged)), "untrusted");
    forged.signatures[0].keyid = signer.public().key_id().to_string();
    assert_eq!(untrusted(check(&forged)), "untrusted");
    // No trusted keys at all.
    assert_eq!(
        untrusted(stella_attest::verify_envelope(
            &good,
            &[],
            &Expect::default(),
            now()
        )),
        "untrusted"
    );
    // A signature an attacker added beside a valid one does not hurt; no signatures does.
    let mut extra = good.clone();
    extra.signatures.insert(0, forged.signatures[0].clone());
    check(&extra).unwrap();
    let mut none = good.clone();
    none.signatures.clear();
    assert!(matches!(
        check(&none),
        Err(VerifyError::Envelope(EnvelopeError::Unsigned))
    ));
}

#[test]
fn subject_kind_and_age_are_enforced() {
    let signer = key(Algorithm::Ed25519);
    let trusted = [signer.public().clone()];
    let bytes = stella_attest::sign(&report_statement("2026-12-01T11:00:00Z"), &signer)
        .unwrap()
        .to_json();
    let run = |expect: Expect| verify(&bytes, &trusted, &expect, now());
    let other_image = format!("sha256:{}", "0".repeat(64));
    assert!(matches!(
        run(Expect {
            subject: Some(other_image),
            ..Expect::default()
        }),
        Err(VerifyError::WrongSubject { .. })
    ));
    let wrong_kind = run(Expect {
        kind: Some(Kind::Sbom),
        ..Expect::default()
    })
    .unwrap_err();
    assert_eq!(
        wrong_kind.to_string(),
        "the statement attests report (https://stella-ops.org/attestations/report/v1), not sbom"
    );
    let expired = run(Expect {
        max_age: Some(chrono::Duration::minutes(30)),
        ..Expect::default()
    })
    .unwrap_err();
    assert_eq!(
        expired.to_string(),
        "the statement is from 2026-12-01T11:00:00+00:00, older than the 30m accepted"
    );
    // Dated tomorrow: refused even without a maximum age.
    let future = stella_attest::sign(&report_statement("2026-12-02T12:00:00Z"), &signer)
        .unwrap()
        .to_json();
    assert!(matches!(
        verify(&future, &trusted, &Expect::default(), now()),
        Err(VerifyError::FutureDated { .. })
    ));
    // A statement without a time cannot meet a maximum age.
    let timeless = Statement::new(
        vec![Subject::sha256("app", IMAGE)],
        statement::REPORT,
        json!({"verdict": "PASS"}),
    );
    let timeless = stella_attest::sign(&timeless, &signer).unwrap().to_json();
    assert!(matches!(
        verify(
            &timeless,
            &trusted,
            &Expect {
                max_age: Some(chrono::Duration::days(1)),
                ..Expect::default()
            },
            now()
        ),
        Err(VerifyError::NoTime)
    ));
}

#[test]
fn garbage_truncated_oversized_and_invalid_statements_are_clear_errors() {
    let signer = key(Algorithm::EcdsaP256);
    let trusted = [signer.public().clone()];
    let good = stella_attest::sign(&report_statement("2026-12-01T11:00:00Z"), &signer)
        .unwrap()
        .to_json();
    for cut in [0, 1, good.len() / 3, good.len() - 3] {
        let e = verify(&good[..cut], &trusted, &Expect::default(), now()).unwrap_err();
        assert!(
            matches!(e, VerifyError::Envelope(EnvelopeError::Malformed(_))),
            "{cut}: {e}"
        );
    }
    for garbage in [
        &b"\xff\xfe\x00"[..],
        b"[]",
        b"{\"payload\":\"!!!\",\"payloadType\":\"x\",\"signatures\":[]}",
        b"{\"payload\":\"\",\"payloadType\":\"x\"}",
    ] {
        assert!(verify(garbage, &trusted, &Expect::default(), now()).is_err());
    }
    let huge = vec![b' '; dsse::MAX_ENVELOPE + 1];
    assert!(matches!(
        verify(&huge, &trusted, &Expect::default(), now()),
        Err(VerifyError::Envelope(EnvelopeError::TooLarge(_)))
    ));
    let mut many = Envelope::from_json(&good).unwrap();
    many.signatures = vec![many.signatures[0].clone(); dsse::MAX_SIGNATURES + 1];
    assert!(matches!(
        Envelope::from_json(&many.to_json()),
        Err(EnvelopeError::TooManySignatures(17))
    ));
    // Properly signed payloads that are not valid statements.
    let sign_raw = |payload: serde_json::Value| {
        Envelope::sign(
            dsse::IN_TOTO_PAYLOAD_TYPE,
            serde_json::to_vec(&payload).unwrap(),
            &signer,
        )
        .unwrap()
        .to_json()
    };
    let subject = json!([{"name": "a", "digest": {"sha256": "ab".repeat(32)}}]);
    let cases = [
        (
            json!({"_type": "https://in-toto.io/Statement/v0.1", "subject": subject, "predicateType": "x", "predicate": {"a": 1}}),
            "_type is",
        ),
        (
            json!({"_type": statement::STATEMENT_TYPE, "subject": [], "predicateType": "x", "predicate": {"a": 1}}),
            "no subject",
        ),
        (
            json!({"_type": statement::STATEMENT_TYPE, "subject": [{"name": "a", "digest": {}}], "predicateType": "x", "predicate": {"a": 1}}),
            "has no digest",
        ),
        (
            json!({"_type": statement::STATEMENT_TYPE, "subject": [{"name": "a", "digest": {"sha256": "../../etc"}}], "predicateType": "x", "predicate": {"a": 1}}),
            "not lowercase hex",
        ),
        (
            json!({"_type": statement::STATEMENT_TYPE, "subject": subject, "predicateType": "", "predicate": {"a": 1}}),
            "no predicate type",
        ),
        (
            json!({"_type": statement::STATEMENT_TYPE, "subject": subject, "predicateType": "x", "predicate": {}}),
            "not a non-empty object",
        ),
    ];
    for (payload, wanted) in cases {
        let e = verify(&sign_raw(payload), &trusted, &Expect::default(), now()).unwrap_err();
        assert!(e.to_string().contains(wanted), "{e} (wanted {wanted:?})");
    }
    // A signed envelope of another payload type.
    let other = Envelope::sign("application/json", b"{}".to_vec(), &signer)
        .unwrap()
        .to_json();
    assert!(matches!(
        verify(&other, &trusted, &Expect::default(), now()),
        Err(VerifyError::PayloadType(_))
    ));
}

#[test]
fn public_keys_round_trip_and_refuse_what_they_are_not() {
    for algorithm in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
        let signer = key(algorithm);
        let pem = signer.public().to_pem();
        let parsed = PublicKey::from_pem(&pem).unwrap();
        assert_eq!(&parsed, signer.public());
        assert_eq!(parsed.key_id().len(), 64);
    }
    let (signer, der) = SigningKey::generate(Algorithm::EcdsaP256).unwrap();
    let private = stella_attest::keys::to_pem("PRIVATE KEY", &der);
    assert!(matches!(
        PublicKey::from_pem(&private),
        Err(KeyError::UnsupportedLabel(_))
    ));
    let again = SigningKey::from_pem(&private, None).unwrap();
    assert_eq!(again.public(), signer.public());
    for (text, wanted) in [
        ("", "no BEGIN line"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA", "no END line"),
        (
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
            "not base64",
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "unsupported key",
        ),
    ] {
        let e = PublicKey::from_pem(text).unwrap_err().to_string();
        assert!(e.contains(wanted), "{text:?}: {e}");
    }
    // Raw keys as tokens hand them out: the right length and form, or a clear error.
    let p256 = key(Algorithm::EcdsaP256);
    let der = p256.public().to_pem();
    let spki = stella_attest::keys::parse_pem(&der).unwrap().der;
    let point = &spki[spki.len() - 65..];
    assert_eq!(
        &PublicKey::from_raw(Algorithm::EcdsaP256, point).unwrap(),
        p256.public()
    );
    for (algorithm, raw) in [
        (Algorithm::EcdsaP256, &point[1..]),
        (Algorithm::Ed25519, point),
        (Algorithm::Ed25519, &[][..]),
    ] {
        assert!(matches!(
            PublicKey::from_raw(algorithm, raw),
            Err(KeyError::Malformed(_))
        ));
    }
    let big = "A".repeat(stella_attest::keys::MAX_PEM + 1);
    assert!(matches!(PublicKey::from_pem(&big), Err(KeyError::TooLarge)));
}

/// `sigstore/cosign/keys/*` with the passwords of `keys.json`.
#[test]
fn cosign_encrypted_key_files_decrypt_and_sign() {
    let Some(dir) = stella_e2e::services::fixtures("sigstore/cosign/keys") else {
        return;
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let mut opened = 0;
    for (file, meta) in index["keys"].as_object().unwrap() {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let password = meta["password"].as_str().unwrap();
        let result = SigningKey::from_pem(&text, Some(password.as_bytes()));
        if meta["key"].as_str().unwrap().starts_with("RSA") {
            assert!(
                matches!(result, Err(KeyError::UnsupportedKey(ref k)) if k == "RSA"),
                "{file}: {result:?}"
            );
            continue;
        }
        let signer = result.unwrap_or_else(|e| panic!("{file}: {e}"));
        let derived =
            std::fs::read_to_string(dir.join(meta["public_key"].as_str().unwrap())).unwrap();
        assert_eq!(
            signer.public(),
            &PublicKey::from_pem(&derived).unwrap(),
            "{file}: the public key derived upstream"
        );
        let envelope = stella_attest::sign(&report_statement("2026-12-01T11:00:00Z"), &signer)
            .unwrap()
            .to_json();
        let trusted = [PublicKey::from_pem(&derived).unwrap()];
        verify(&envelope, &trusted, &Expect::default(), now()).unwrap();
        // A wrong password fails the secretbox's tag; none at all is asked for.
        assert!(
            matches!(
                SigningKey::from_pem(&text, Some(b"not-the-password")),
                Err(KeyError::WrongPassword)
            ),
            "{file}"
        );
        assert!(matches!(
            SigningKey::from_pem(&text, None),
            Err(KeyError::PasswordRequired)
        ));
        opened += 1;
    }
    assert!(opened >= 5, "{opened} encrypted keys opened");
    // The unencrypted PKCS#8 keys of sigstore-rs.
    for file in [
        "sigstore-rs-ecdsa_private.key",
        "sigstore-rs-ed25519_private.key",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        SigningKey::from_pem(&text, None).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let rsa = std::fs::read_to_string(dir.join("sigstore-rs-rsa_private.key")).unwrap();
    assert!(matches!(
        SigningKey::from_pem(&rsa, None),
        Err(KeyError::UnsupportedKey(_))
    ));
}

#[test]
fn encrypted_keys_round_trip_and_hostile_kdf_parameters_are_refused() {
    let (signer, der) = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let pem = stella_attest::cosign::encrypt(&der, b"s3cret").unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    let opened = SigningKey::from_pem(&pem, Some(b"s3cret")).unwrap();
    assert_eq!(opened.public(), signer.public());
    let sealed = |kdf: serde_json::Value, nonce: &str| {
        let body = json!({
            "kdf": kdf,
            "cipher": {"name": "nacl/secretbox", "nonce": nonce},
            "ciphertext": "AAAA",
        });
        stella_attest::keys::to_pem(
            "ENCRYPTED SIGSTORE PRIVATE KEY",
            body.to_string().as_bytes(),
        )
    };
    let nonce = "A".repeat(32);
    for (kdf, wanted) in [
        // 2^30 × 8 × 128 bytes = 1 TiB of memory: refused before any work.
        (
            json!({"name": "scrypt", "params": {"N": 1u64 << 30, "r": 8, "p": 1}, "salt": "AAAA"}),
            "beyond what is accepted",
        ),
        (
            json!({"name": "scrypt", "params": {"N": 1000, "r": 8, "p": 1}, "salt": "AAAA"}),
            "not a power of two",
        ),
        (
            json!({"name": "scrypt", "params": {"N": 1024, "r": 8, "p": 1000}, "salt": "AAAA"}),
            "beyond what is accepted",
        ),
        (
            json!({"name": "pbkdf2", "params": {"N": 1024, "r": 8, "p": 1}, "salt": "AAAA"}),
            "only scrypt",
        ),
    ] {
        let e = SigningKey::from_pem(&sealed(kdf, &nonce), Some(b"x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(wanted), "{e}");
    }
    let e = SigningKey::from_pem(
        &sealed(
            json!({"name": "scrypt", "params": {"N": 1024, "r": 8, "p": 1}, "salt": "AAAA"}),
            "AAAA",
        ),
        Some(b"x"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("nonce is 3 bytes"), "{e}");
    let e = SigningKey::from_pem(
        &stella_attest::keys::to_pem("ENCRYPTED SIGSTORE PRIVATE KEY", b"{\"kdf\":1}"),
        Some(b"x"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not the encrypted-key JSON"), "{e}");
}

#[test]
fn the_report_and_proof_predicate_schemas_are_valid_json_schemas() {
    for (name, schema) in [
        ("report", statement::REPORT_SCHEMA),
        ("proof", statement::PROOF_SCHEMA),
    ] {
        let schema: serde_json::Value = serde_json::from_str(schema).unwrap();
        jsonschema::draft202012::meta::validate(&schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        assert!(!validator.is_valid(&json!({"verdict": "PASS"})), "{name}");
    }
}

/// securesystemslib (DSSE) and in-toto-attestation (statement v1), from PyPI: another
/// implementation agrees that our envelopes verify and our statements are valid.
#[test]
fn an_independent_implementation_verifies_our_envelopes() {
    let probe = std::process::Command::new("python3")
        .args([
            "-c",
            "import securesystemslib.dsse, in_toto_attestation.v1.statement, cryptography",
        ])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        stella_e2e::services::skip(
            "securesystemslib / in-toto-attestation are not installed (pip install securesystemslib in-toto-attestation)",
        );
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_dsse.py");
    let dir = tempfile::tempdir().unwrap();
    for (algorithm, scheme) in [
        (Algorithm::EcdsaP256, "ecdsa-sha2-nistp256"),
        (Algorithm::Ed25519, "ed25519"),
    ] {
        let signer = key(algorithm);
        let public = dir.path().join("key.pub");
        std::fs::write(&public, signer.public().to_pem()).unwrap();
        let good = stella_attest::sign(&report_statement("2026-12-01T11:00:00Z"), &signer).unwrap();
        let run = |envelope: &Envelope| {
            let path = dir.path().join("envelope.json");
            std::fs::write(&path, envelope.to_json()).unwrap();
            std::process::Command::new("python3")
                .arg(script)
                .arg(&path)
                .arg(&public)
                .arg(signer.public().key_id())
                .arg(scheme)
                .output()
                .unwrap()
        };
        let out = run(&good);
        assert!(
            out.status.success(),
            "{algorithm:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            statement::REPORT
        );
        // And it rejects what we reject.
        let mut tampered = good.clone();
        tampered.payload = String::from_utf8(tampered.payload)
            .unwrap()
            .replace("PASS", "FAIL")
            .into_bytes();
        assert!(!run(&tampered).status.success(), "{algorithm:?}: tampered");
    }
}
