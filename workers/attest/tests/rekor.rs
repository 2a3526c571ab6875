//! Transparency-log entries of real Sigstore bundles (sigstore-conformance's `bundle-verify`
//! cases, Rekor v1 and v2): the inclusion proof, the checkpoint's tree, and the log's
//! checkpoint signature, against the expectations re-checked when the fixtures were taken.

use stella_attest::rekor::{RekorError, TrustedLogs, check_inclusion, verify_entry};

#[test]
fn conformance_bundles_log_entries_verify_as_expected() {
    let Some(base) = stella_e2e::services::fixtures("sigstore") else {
        return;
    };
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("conformance/expected.json")).unwrap())
            .unwrap();
    let (mut verified, mut refused, mut compared) = (0, 0, 0);
    for (name, case) in expected["cases"].as_object().unwrap() {
        let recheck = &case["partial_recheck_here"];
        let Some(inclusion) = recheck["inclusion"].as_str() else {
            continue;
        };
        let bundle: serde_json::Value =
            match std::fs::read(base.join(case["bundle"].as_str().unwrap()))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(b) => b,
                None => continue,
            };
        let root = std::fs::read(base.join(case["trusted_root"].as_str().unwrap())).unwrap();
        let logs = TrustedLogs::from_trusted_root(&root).unwrap();
        let entries = bundle["verificationMaterial"]["tlogEntries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(entry) = entries.first() else {
            continue;
        };
        // The inclusion proof alone agrees with the independent re-check.
        let ours = check_inclusion(entry);
        match inclusion {
            "ok" => assert_eq!(ours, Ok(()), "{name}"),
            "FAIL" => assert!(ours.is_err(), "{name}: {ours:?}"),
            _ => assert!(
                matches!(
                    ours,
                    Err(RekorError::NoProof) | Err(RekorError::Malformed(_))
                ),
                "{name}: {ours:?}"
            ),
        }
        compared += 1;
        let whole = verify_entry(entry, &logs);
        let all_ok = inclusion == "ok"
            && recheck["checkpoint_body_matches"] == true
            && recheck["checkpoint"] == "ok";
        if case["expect"] == "pass" {
            let logged = whole.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(logged.tree_size > logged.tree_index, "{name}");
            verified += 1;
        } else if !all_ok {
            assert!(
                whole.is_err(),
                "{name}: a broken proof or checkpoint passed"
            );
            refused += 1;
        }
    }
    // The cases built to break exactly what is checked here.
    for (name, wanted) in [
        ("inclusion-proof-corrupted-hash_fail", RekorError::Inclusion),
        (
            "checkpoint-wrong-roothash_fail",
            RekorError::CheckpointMismatch(String::new()),
        ),
        (
            "checkpoint-bad-keyhint_fail",
            RekorError::CheckpointSignature,
        ),
    ] {
        let case = &expected["cases"][name];
        let bundle: serde_json::Value = serde_json::from_slice(
            &std::fs::read(base.join(case["bundle"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        let root = std::fs::read(base.join(case["trusted_root"].as_str().unwrap())).unwrap();
        let logs = TrustedLogs::from_trusted_root(&root).unwrap();
        let got =
            verify_entry(&bundle["verificationMaterial"]["tlogEntries"][0], &logs).unwrap_err();
        assert_eq!(
            std::mem::discriminant(&got),
            std::mem::discriminant(&wanted),
            "{name}: {got}"
        );
    }
    eprintln!(
        "{verified} passing bundles verified, {refused} broken entries refused, {compared} proofs compared"
    );
    assert!(verified >= 15, "{verified} passing bundles verified");
    assert!(refused >= 3, "{refused} broken entries refused");
    assert!(compared >= 40, "{compared} inclusion proofs compared");
}

#[test]
fn hostile_entries_are_clear_errors() {
    let logs = TrustedLogs::default();
    for entry in [
        serde_json::json!({}),
        serde_json::json!({"inclusionProof": {"hashes": "x"}, "canonicalizedBody": "e30="}),
        serde_json::json!({"inclusionProof": {"hashes": ["!!"], "rootHash": "", "logIndex": "0", "treeSize": "1"}, "canonicalizedBody": "e30="}),
        serde_json::json!({"inclusionProof": {"hashes": [], "rootHash": "AAAA", "logIndex": "5", "treeSize": "1"}, "canonicalizedBody": "e30="}),
    ] {
        assert!(verify_entry(&entry, &logs).is_err(), "{entry}");
    }
    assert!(TrustedLogs::from_trusted_root(b"\x00garbage").is_err());
}

/// Real Rekor v2 entries of DSSE envelopes ("hashedrekord over DSSE"): the entry of the happy
/// path binds its envelope; the cases whose envelope or signature differs from what was
/// logged do not.
#[test]
fn rekor_v2_entries_bind_their_envelope() {
    let Some(base) = stella_e2e::services::fixtures("sigstore/conformance/bundle-verify") else {
        return;
    };
    let case = |name: &str| {
        let bundle: serde_json::Value = serde_json::from_slice(
            &std::fs::read(base.join(name).join("bundle.sigstore.json")).unwrap(),
        )
        .unwrap();
        let envelope = stella_attest::rekor::bundle_envelope(&bundle)
            .unwrap()
            .unwrap();
        let entry = bundle["verificationMaterial"]["tlogEntries"][0].clone();
        let root = std::fs::read(base.join(name).join("trusted_root.json")).unwrap();
        (
            entry,
            envelope,
            TrustedLogs::from_trusted_root(&root).unwrap(),
        )
    };
    let (entry, envelope, logs) = case("rekor2-dsse-happy-path");
    stella_attest::rekor::check_binds(&entry, &envelope).unwrap();
    let logged = stella_attest::rekor::check_logged(&entry, &envelope, &logs).unwrap();
    assert_eq!(logged.origin, "log2025-alpha3.rekor.sigstage.dev");
    for name in [
        "rekor2-dsse-mismatch-sig_fail",
        "rekor2-dsse-mismatch-envelope_fail",
    ] {
        let (entry, envelope, logs) = case(name);
        assert!(
            matches!(
                stella_attest::rekor::check_logged(&entry, &envelope, &logs),
                Err(RekorError::NotThisEnvelope(_))
            ),
            "{name}"
        );
    }
    // A v1 entry (another kind) is not taken for one.
    let (mut entry, envelope, _) = case("rekor2-dsse-happy-path");
    entry["kindVersion"]["kind"] = "dsse".into();
    assert!(stella_attest::rekor::check_binds(&entry, &envelope).is_err());
}
