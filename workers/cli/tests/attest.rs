//! `stella scan --attest-key`, `stella attest keygen|sign` and `stella verify` on the real
//! Debian image: every output signed, verified offline, refused when anything is wrong, the
//! same bytes for the same inputs, and an independent verifier agreeing.

use super::{stella, test_image};
use std::path::Path;
use std::process::Output;

fn ok(out: &Output) -> &Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn payload(envelope: &Path) -> serde_json::Value {
    use base64::Engine;
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(envelope).unwrap()).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn scans_are_signed_and_verified_offline() {
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let path = |name: &str| w.join(name).to_str().unwrap().to_string();
    let run = |args: &[&str], env: &[(&str, &str)]| -> Output {
        let mut command = stella();
        command
            .args(args)
            .env_remove("COSIGN_PASSWORD")
            .envs(env.iter().copied());
        if matches!(args[0], "scan" | "feeds") {
            command.arg("--data-dir").arg(data.path());
        }
        command.output().unwrap()
    };
    // One critical finding on dash, so the verdict is FAIL.
    std::fs::create_dir(w.join("feeds")).unwrap();
    std::fs::write(
        w.join("feeds/CVE-2099-3001.json"),
        serde_json::json!({"id": "CVE-2099-3001", "modified": "2099-01-01T00:00:00Z",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "dash"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99:1"}]}]}]})
        .to_string(),
    )
    .unwrap();
    ok(&run(&["feeds", "import", &path("feeds")], &[]));
    std::fs::write(
        w.join("policy.yaml"),
        "version: \"1.0\"\nrules:\n  - name: Block Critical\n    severity: [Critical]\n    action: block\n",
    )
    .unwrap();

    // Keys: a plain P-256 key, and an Ed25519 key in cosign's encrypted format.
    let out = run(&["attest", "keygen", "--out", &path("p256")], &[]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ecdsa-p256"));
    assert!(
        std::fs::read_to_string(w.join("p256.key"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    ok(&run(
        &[
            "attest",
            "keygen",
            "--algorithm",
            "ed25519",
            "--out",
            &path("ed"),
        ],
        &[("COSIGN_PASSWORD", "correct horse")],
    ));
    assert!(
        std::fs::read_to_string(w.join("ed.key"))
            .unwrap()
            .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.join("p256.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = run(&["attest", "keygen", "--out", &path("p256")], &[]);
    assert_eq!(again.status.code(), Some(2), "a key is never overwritten");

    let target = format!("{}:bookworm", dir.join("oci").display());
    let scan = |out_dir: &str, key: &str, env: &[(&str, &str)]| {
        run(
            &[
                "scan",
                &target,
                "--quiet",
                "--policy",
                &path("policy.yaml"),
                "--bundle",
                &path("proof.zip"),
                "--evaluated-at",
                "2026-11-30T10:00:00Z",
                "--output",
                &path("sbom.cdx.json"),
                "--attest-key",
                &path(key),
                "--attest-out",
                &path(out_dir),
            ],
            env,
        )
    };
    let out = scan("att", "p256.key", &[]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "FAIL verdict: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for kind in ["sbom", "vulns", "report", "proof"] {
        assert!(
            stderr.contains(&format!("signed {kind}: attest/")),
            "{stderr}"
        );
        // Stored in the object store as well, at attest/<artifact sha256>.dsse.json.
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("signed {kind}: ")))
            .unwrap();
        let key = line.split_whitespace().nth(2).unwrap();
        let stored = data.path().join("objects").join(key);
        assert_eq!(
            std::fs::read(&stored).unwrap(),
            std::fs::read(w.join(format!("att/{kind}.dsse.json"))).unwrap(),
            "{kind}"
        );
    }

    // Every kind verifies with the public key and names what it verified.
    let verify = |envelope: &str, extra: &[&str]| {
        let mut args = vec!["verify", envelope];
        args.extend_from_slice(extra);
        run(&args, &[])
    };
    let p256 = path("p256.pub");
    let out = verify(
        &path("att/sbom.dsse.json"),
        &[
            "--key",
            &p256,
            "--type",
            "sbom",
            "--artifact",
            &path("sbom.cdx.json"),
        ],
    );
    let text = String::from_utf8_lossy(&ok(&out).stdout).to_string();
    assert!(text.starts_with("Verified sbom attestation\n"), "{text}");
    assert!(text.contains("https://cyclonedx.org/bom"), "{text}");
    assert!(text.contains("(ecdsa-p256)"), "{text}");
    let sbom_statement = payload(&w.join("att/sbom.dsse.json"));
    let image_digest = sbom_statement["subject"][0]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&image_digest), "{text}");
    assert_eq!(sbom_statement["predicate"]["bomFormat"], "CycloneDX");

    let out = verify(
        &path("att/report.dsse.json"),
        &[
            "--key",
            &p256,
            "--type",
            "report",
            "--subject",
            &format!("sha256:{image_digest}"),
            "--json",
        ],
    );
    let summary: serde_json::Value = serde_json::from_slice(&ok(&out).stdout).unwrap();
    assert_eq!(summary["verdict"], "FAIL");
    assert_eq!(summary["time"], "2026-11-30T10:00:00Z");
    assert_eq!(
        summary["predicateType"],
        "https://stella-ops.org/attestations/report/v1"
    );
    let out = verify(
        &path("att/proof.dsse.json"),
        &[
            "--key",
            &p256,
            "--type",
            "proof",
            "--artifact",
            &path("proof.zip"),
        ],
    );
    assert!(String::from_utf8_lossy(&ok(&out).stdout).contains("proof root sha256:"));
    ok(&verify(
        &path("att/vulns.dsse.json"),
        &["--key", &p256, "--type", "vulns"],
    ));
    let vulns = payload(&w.join("att/vulns.dsse.json"));
    assert_eq!(
        vulns["predicate"]["scanner"]["result"][0]["id"],
        "CVE-2099-3001"
    );

    // The predicates follow the schemas in the repository.
    for (envelope, schema) in [
        (
            "att/report.dsse.json",
            stella_attest::statement::REPORT_SCHEMA,
        ),
        (
            "att/proof.dsse.json",
            stella_attest::statement::PROOF_SCHEMA,
        ),
    ] {
        let schema: serde_json::Value = serde_json::from_str(schema).unwrap();
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let statement = payload(&w.join(envelope));
        let errors: Vec<String> = validator
            .iter_errors(&statement["predicate"])
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{envelope}: {errors:?}");
    }

    // Refusals, each exit 9 with the reason: another key, another kind, another image,
    // another artifact, an expired statement, a tampered envelope.
    let refused = |out: Output, wanted: &str| {
        assert_eq!(
            out.status.code(),
            Some(9),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("NOT") && stderr.contains(wanted),
            "{stderr} (wanted {wanted})"
        );
    };
    let ed = path("ed.pub");
    refused(
        verify(&path("att/report.dsse.json"), &["--key", &ed]),
        "no signature verifies",
    );
    refused(
        verify(
            &path("att/report.dsse.json"),
            &["--key", &p256, "--type", "sbom"],
        ),
        "not sbom",
    );
    refused(
        verify(
            &path("att/report.dsse.json"),
            &[
                "--key",
                &p256,
                "--subject",
                &format!("sha256:{}", "0".repeat(64)),
            ],
        ),
        "no subject has digest",
    );
    refused(
        verify(
            &path("att/sbom.dsse.json"),
            &["--key", &p256, "--artifact", &path("policy.yaml")],
        ),
        "NOT the attested artifact",
    );
    refused(
        verify(
            &path("att/report.dsse.json"),
            &["--key", &p256, "--max-age", "1h"],
        ),
        "older than",
    );
    let mut tampered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.join("att/report.dsse.json")).unwrap()).unwrap();
    {
        use base64::Engine;
        let statement = payload(&w.join("att/report.dsse.json"))
            .to_string()
            .replace("FAIL", "PASS");
        tampered["payload"] = base64::engine::general_purpose::STANDARD
            .encode(statement)
            .into();
    }
    std::fs::write(w.join("tampered.json"), tampered.to_string()).unwrap();
    refused(
        verify(&path("tampered.json"), &["--key", &p256]),
        "no signature verifies",
    );
    std::fs::write(
        w.join("truncated.json"),
        &std::fs::read(w.join("att/report.dsse.json")).unwrap()[..100],
    )
    .unwrap();
    refused(
        verify(&path("truncated.json"), &["--key", &p256]),
        "not a DSSE envelope",
    );
    // Rotation: the old and the new key trusted at once.
    ok(&verify(
        &path("att/report.dsse.json"),
        &["--key", &ed, "--key", &p256],
    ));

    // The same inputs sign to the same bytes (RFC 6979 nonces).
    ok_or_fail(scan("att2", "p256.key", &[]));
    for kind in ["sbom", "vulns", "report", "proof"] {
        assert_eq!(
            std::fs::read(w.join(format!("att/{kind}.dsse.json"))).unwrap(),
            std::fs::read(w.join(format!("att2/{kind}.dsse.json"))).unwrap(),
            "{kind} is not deterministic"
        );
    }

    // The encrypted key needs its password, from COSIGN_PASSWORD.
    let out = scan("att3", "ed.key", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("set COSIGN_PASSWORD"));
    let out = scan("att3", "ed.key", &[("COSIGN_PASSWORD", "wrong")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
    ok_or_fail(scan(
        "att3",
        "ed.key",
        &[("COSIGN_PASSWORD", "correct horse")],
    ));
    ok(&verify(
        &path("att3/report.dsse.json"),
        &["--key", &ed, "--type", "report"],
    ));

    // `stella attest sign` signs an SBOM made elsewhere.
    let image = format!("registry.example/debian@sha256:{image_digest}");
    let out = run(
        &[
            "attest",
            "sign",
            &path("sbom.cdx.json"),
            "--image",
            &image,
            "--key",
            &path("ed.key"),
            "-o",
            &path("build.dsse.json"),
        ],
        &[("COSIGN_PASSWORD", "correct horse")],
    );
    ok(&out);
    let out = verify(
        &path("build.dsse.json"),
        &[
            "--key",
            &ed,
            "--type",
            "sbom",
            "--artifact",
            &path("sbom.cdx.json"),
        ],
    );
    assert!(String::from_utf8_lossy(&ok(&out).stdout).contains("registry.example/debian"));
    let out = run(
        &[
            "attest",
            "sign",
            &path("policy.yaml"),
            "--image",
            &image,
            "--key",
            &path("p256.key"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &[
            "attest",
            "sign",
            &path("sbom.cdx.json"),
            "--image",
            "debian:12",
            "--key",
            &path("p256.key"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name@sha256"));
    // Upper-case hex would sign a statement no verifier accepts: refused up front.
    let shouting = format!(
        "registry.example/debian@sha256:{}",
        image_digest.to_uppercase()
    );
    let out = run(
        &[
            "attest",
            "sign",
            &path("sbom.cdx.json"),
            "--image",
            &shouting,
            "--key",
            &path("p256.key"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lowercase hex"));

    // securesystemslib and in-toto-attestation agree about the real SBOM envelope.
    let probe = std::process::Command::new("python3")
        .args([
            "-c",
            "import securesystemslib.dsse, in_toto_attestation.v1.statement",
        ])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        stella_e2e::services::skip("securesystemslib / in-toto-attestation are not installed");
        return;
    }
    let key_id = summary["keyId"].as_str().unwrap();
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../attest/tests/verify_dsse.py"
        ))
        .args([
            &path("att/sbom.dsse.json"),
            &p256,
            key_id,
            "ecdsa-sha2-nistp256",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "https://cyclonedx.org/bom"
    );
}

/// A scan under the blocking policy exits 7 (FAIL) once its outputs are written.
fn ok_or_fail(out: Output) {
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key that never leaves a PKCS#11 token (SoftHSM2 as the stand-in for an HSM / KMS):
/// `stella attest public-key` and `stella attest sign` with a `pkcs11:` URI, the envelope
/// verified with the token's public key; a wrong PIN, a missing key and a missing token are
/// clear errors.
#[test]
fn a_key_on_a_pkcs11_token_signs() {
    let Some(hsm) = stella_e2e::services::SoftHsm::start("stella", "1234", "release") else {
        return;
    };
    let (module, conf) = (hsm.module, hsm.conf.clone());
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let stella_env = |args: &[&str]| {
        stella()
            .args(args)
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap()
    };
    let uri = |token: &str, object: &str, pin: &str| {
        format!("pkcs11:token={token};object={object}?module-path={module}&pin-value={pin}")
    };
    let good = uri("stella", "release", "1234");
    let out = stella_env(&["attest", "public-key", "--key", &good]);
    ok(&out);
    let public = w.join("release.pub");
    std::fs::write(&public, &out.stdout).unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("(ecdsa-p256)"));

    let sbom = w.join("sbom.cdx.json");
    std::fs::write(&sbom, br#"{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"timestamp":"2026-11-30T10:00:00Z"}}"#).unwrap();
    let image = format!("registry.example/app@sha256:{}", "c".repeat(64));
    let envelope = w.join("sbom.dsse.json");
    ok(&stella_env(&[
        "attest",
        "sign",
        sbom.to_str().unwrap(),
        "--image",
        &image,
        "--key",
        &good,
        "-o",
        envelope.to_str().unwrap(),
    ]));
    let out = stella_env(&[
        "verify",
        envelope.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
        "--type",
        "sbom",
        "--artifact",
        sbom.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&ok(&out).stdout).contains("(ecdsa-p256)"));

    for (key, wanted) in [
        (uri("stella", "release", "9999"), "wrong PIN"),
        (
            uri("stella", "nope", "1234"),
            "no private key labelled \"nope\"",
        ),
        (
            uri("other", "release", "1234"),
            "no token labelled \"other\"",
        ),
        (
            format!(
                "pkcs11:token=stella;object=release?module-path={}/missing.so&pin-value=1234",
                w.display()
            ),
            "loading the module",
        ),
    ] {
        let out = stella_env(&["attest", "public-key", "--key", &key]);
        assert_eq!(out.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(wanted), "{stderr} (wanted {wanted})");
        assert!(
            !stderr.contains("pin-value=9999"),
            "the PIN is not printed: {stderr}"
        );
    }
}

/// Attestations attached to the image in Debian's `docker-registry` (which has no Referrers
/// API: the `sha256-<hex>` index and cosign's `.att` tag), listed, fetched and verified; an
/// envelope about another image is refused.
#[test]
fn attestations_are_attached_listed_and_fetched_from_the_registry() {
    if !super::have_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let registry = super::Registry::start(|_| String::new());
    let image = registry.push(&dir.join("oci"), "bookworm", "shop/debian:bookworm", None);
    let repository = image.trim_end_matches(":bookworm").to_string();
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let path = |name: &str| w.join(name).to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        stella()
            .args(args)
            .env_remove("COSIGN_PASSWORD")
            .output()
            .unwrap()
    };
    ok(&run(&["attest", "keygen", "--out", &path("k")]));
    std::fs::write(w.join("policy.yaml"), "version: \"1.0\"\nrules: []\n").unwrap();
    ok(&run(&[
        "scan",
        &image,
        "--quiet",
        "--insecure-registry",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--policy",
        &path("policy.yaml"),
        "--output",
        &path("sbom.json"),
        "--attest-key",
        &path("k.key"),
        "--attest-out",
        &path("att"),
    ]));
    let envelopes = ["sbom", "vulns", "report"].map(|k| path(&format!("att/{k}.dsse.json")));
    let mut attach = vec!["attest", "attach", image.as_str(), "--insecure-registry"];
    attach.extend(envelopes.iter().map(String::as_str));
    let out = run(&attach);
    let stderr = String::from_utf8_lossy(&ok(&out).stderr).to_string();
    assert!(
        stderr.contains("attached 3 attestations") && stderr.contains("referrers tag sha256-"),
        "{stderr}"
    );
    // Twice is the same: the index does not grow.
    ok(&run(&attach));

    let out = run(&["attest", "list", &image, "--insecure-registry"]);
    let listed = String::from_utf8_lossy(&ok(&out).stdout).to_string();
    for predicate in [
        "https://cyclonedx.org/bom",
        "https://in-toto.io/attestation/vulns/v0.1",
        "https://stella-ops.org/attestations/report/v1",
    ] {
        assert_eq!(listed.matches(predicate).count(), 1, "{listed}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 attestations attached"));

    let out = run(&[
        "attest",
        "fetch",
        &image,
        "--insecure-registry",
        "--type",
        "report",
        "-o",
        &path("fetched"),
    ]);
    let fetched = String::from_utf8_lossy(&ok(&out).stdout).trim().to_string();
    assert!(fetched.contains("report-"), "{fetched}");
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&envelopes[2]).unwrap()
    );
    let digest = payload(Path::new(&fetched))["subject"][0]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&run(&[
        "verify",
        &fetched,
        "--key",
        &path("k.pub"),
        "--type",
        "report",
        "--subject",
        &format!("sha256:{digest}"),
    ]));

    // cosign's convention: the `.att` image holds the envelopes as layers.
    let att = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{repository}:sha256-{digest}.att"),
        ])
        .output()
        .unwrap();
    assert!(
        att.status.success(),
        "{}",
        String::from_utf8_lossy(&att.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&att.stdout).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );

    // An envelope about another image is not attached.
    ok(&run(&[
        "attest",
        "sign",
        &path("sbom.json"),
        "--image",
        &format!("other.example/x@sha256:{}", "d".repeat(64)),
        "--key",
        &path("k.key"),
        "-o",
        &path("other.dsse.json"),
    ]));
    let out = run(&[
        "attest",
        "attach",
        &image,
        "--insecure-registry",
        &path("other.dsse.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not about"));
}

/// `stella attest verify-log` on real Sigstore bundles: a Rekor v2 DSSE bundle verifies, one
/// with a corrupted inclusion proof does not (exit 9).
#[test]
fn sigstore_bundles_log_entries_verify_offline() {
    let Some(dir) = stella_e2e::services::fixtures("sigstore/conformance/bundle-verify") else {
        return;
    };
    let run = |case: &str, root: &Path| {
        stella()
            .args(["attest", "verify-log"])
            .arg(dir.join(case).join("bundle.sigstore.json"))
            .arg("--trusted-root")
            .arg(root)
            .output()
            .unwrap()
    };
    let out = run(
        "rekor2-dsse-happy-path",
        &dir.join("rekor2-dsse-happy-path/trusted_root.json"),
    );
    let text = String::from_utf8_lossy(&ok(&out).stdout).to_string();
    assert!(
        text.contains("logged in log2025-alpha3.rekor.sigstage.dev"),
        "{text}"
    );
    let production = dir.join("../../trusted-roots/production.trusted_root.json");
    let out = run("inclusion-proof-corrupted-hash_fail", &production);
    assert_eq!(out.status.code(), Some(9));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("inclusion proof does not lead to the root hash")
    );
}

/// `stella scan --rekor-url` and `stella attest log`: the envelopes logged to a Rekor v2 log
/// (the loopback test log of `stella_e2e::tlog`), a bundle per envelope that `verify-log`
/// verifies offline, nothing logged twice, and a lying log refused.
#[test]
fn envelopes_are_logged_to_a_transparency_log_and_verified_offline() {
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let log = stella_e2e::tlog::TestLog::start("stella-test.log", 4);
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("root.json"), log.trusted_root().to_string()).unwrap();
    std::fs::write(w.join("log.pub"), log.public_key_pem()).unwrap();
    let run = |args: &[&str]| {
        let mut command = stella();
        command.args(args).env_remove("COSIGN_PASSWORD");
        if args[0] == "scan" {
            command.arg("--data-dir").arg(data.path());
        }
        command.output().unwrap()
    };
    let p = |name: &str| w.join(name).to_str().unwrap().to_string();
    ok(&run(&["attest", "keygen", "--out", &p("k")]));
    let image = format!("{}:bookworm", dir.join("oci").display());
    let scan = |out: &str| {
        run(&[
            "scan",
            &image,
            "--quiet",
            "--attest-key",
            &p("k.key"),
            "--attest-out",
            &p(out),
            "--rekor-url",
            &log.url,
            "--rekor-trusted-root",
            &p("root.json"),
            "-o",
            &p("sbom.json"),
            // The same instant: the same vulnerability statement, hence the same envelope.
            "--evaluated-at",
            "2026-12-01T00:00:00Z",
        ])
    };
    let first = scan("out1");
    ok(&first);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("logged sbom in http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("not verified"), "{stderr}");
    let logged = log.counts();
    assert_eq!(
        logged.0,
        4 + 2,
        "the SBOM and the vulnerabilities are logged: {logged:?}"
    );
    for kind in ["sbom", "vulns"] {
        let bundle = p(&format!("out1/{kind}.sigstore.json"));
        let out = run(&[
            "attest",
            "verify-log",
            &bundle,
            "--trusted-root",
            &p("root.json"),
        ]);
        let text = String::from_utf8_lossy(&ok(&out).stdout).to_string();
        assert!(text.contains("logged in stella-test.log"), "{text}");
        // The bundle's envelope is the one written beside it.
        let bundle: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
        let envelope: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p(&format!("out1/{kind}.dsse.json"))).unwrap())
                .unwrap();
        assert_eq!(bundle["dsseEnvelope"]["payload"], envelope["payload"]);
    }
    // The same scan again logs nothing new and still writes the bundles.
    ok(&scan("out2"));
    assert_eq!(log.counts().0, logged.0, "nothing is logged twice");
    assert!(w.join("out2/sbom.sigstore.json").exists());

    // A bundle whose envelope was swapped for another does not verify.
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p("out1/sbom.sigstore.json")).unwrap()).unwrap();
    let vulns: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p("out1/vulns.dsse.json")).unwrap()).unwrap();
    forged["dsseEnvelope"] = vulns;
    std::fs::write(w.join("forged.json"), forged.to_string()).unwrap();
    let out = run(&[
        "attest",
        "verify-log",
        &p("forged.json"),
        "--trusted-root",
        &p("root.json"),
    ]);
    assert_eq!(out.status.code(), Some(9));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not about this envelope"));

    // `stella attest log` for an envelope signed elsewhere, with the log's key pinned.
    ok(&run(&["attest", "public-key", "--key", &p("k.key")]));
    std::fs::write(
        w.join("k.pub.pem"),
        &run(&["attest", "public-key", "--key", &p("k.key")]).stdout,
    )
    .unwrap();
    let out = run(&[
        "attest",
        "log",
        &p("out1/vulns.dsse.json"),
        "--public-key",
        &p("k.pub.pem"),
        "--rekor-url",
        &log.url,
        "--rekor-public-key",
        &p("log.pub"),
        "-o",
        &p("vulns.bundle.json"),
    ]);
    let stderr = String::from_utf8_lossy(&ok(&out).stderr).to_string();
    assert!(stderr.contains("checkpoint signature verified"), "{stderr}");
    ok(&run(&[
        "attest",
        "verify-log",
        &p("vulns.bundle.json"),
        "--trusted-root",
        &p("root.json"),
    ]));
    // A log that lies is refused (exit 9), one that is down is unreachable (exit 3).
    log.misbehave(stella_e2e::tlog::Misbehave::ForeignCheckpoint);
    let out = run(&[
        "attest",
        "log",
        &p("out1/vulns.dsse.json"),
        "--public-key",
        &p("k.pub.pem"),
        "--rekor-url",
        &log.url,
        "--rekor-trusted-root",
        &p("root.json"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = log.url.clone();
    drop(log);
    let out = run(&[
        "attest",
        "log",
        &p("out1/vulns.dsse.json"),
        "--public-key",
        &p("k.pub.pem"),
        "--rekor-url",
        &url,
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Flags that cannot work are usage errors.
    let out = run(&["scan", &image, "--rekor-url", &url]);
    assert_eq!(out.status.code(), Some(2));
}

/// A registry that refuses the push: attaching without credentials to a registry that wants
/// them fails with the reason and attaches nothing; with the credentials it works.
#[test]
fn a_registry_that_refuses_the_push_says_why() {
    if !super::have_tools(&["docker-registry", "skopeo", "htpasswd"]) {
        return;
    }
    let Some(dir) = test_image("build-debian.sh", "debian-bookworm") else {
        return;
    };
    let registry = super::registry::with_basic_auth("alice", "wonderland");
    let image = registry.push(
        &dir.join("oci"),
        "bookworm",
        "shop/locked:bookworm",
        Some("alice:wonderland"),
    );
    let inspect = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            "alice:wonderland",
            "--format",
            "{{.Digest}}",
        ])
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let digest = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let path = |name: &str| w.join(name).to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        stella()
            .args(args)
            .env_remove("COSIGN_PASSWORD")
            .env("DOCKER_CONFIG", w)
            .output()
            .unwrap()
    };
    ok(&run(&["attest", "keygen", "--out", &path("k")]));
    std::fs::write(
        w.join("sbom.json"),
        br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#,
    )
    .unwrap();
    let pinned = format!("{}@{digest}", image.trim_end_matches(":bookworm"));
    ok(&run(&[
        "attest",
        "sign",
        &path("sbom.json"),
        "--image",
        &pinned,
        "--key",
        &path("k.key"),
        "-o",
        &path("sbom.dsse.json"),
    ]));

    let out = run(&[
        "attest",
        "attach",
        &pinned,
        "--insecure-registry",
        &path("sbom.dsse.json"),
    ]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Basic auth") && stderr.contains("no credentials"),
        "{stderr}"
    );

    std::fs::write(
        w.join("auth.json"),
        serde_json::json!({"auths": {registry_host(&image): {"auth": "YWxpY2U6d29uZGVybGFuZA=="}}})
            .to_string(),
    )
    .unwrap();
    let out = run(&[
        "attest",
        "attach",
        &pinned,
        "--insecure-registry",
        "--registry-auth-file",
        &path("auth.json"),
        &path("sbom.dsse.json"),
    ]);
    assert!(String::from_utf8_lossy(&ok(&out).stderr).contains("attached 1 attestations"));
    let out = run(&[
        "attest",
        "list",
        &pinned,
        "--insecure-registry",
        "--registry-auth-file",
        &path("auth.json"),
    ]);
    assert!(String::from_utf8_lossy(&ok(&out).stdout).contains("https://cyclonedx.org/bom"));
}

fn registry_host(image: &str) -> String {
    image.split('/').next().unwrap().to_string()
}
