//! `stella-bench --attest COUNT`: the attestation targets of issue 17, each beside a baseline
//! measured in the same run:
//!
//! 1. **Sign + store one attestation ≤ 5 ms** (ECDSA P-256, software key): a verdict report
//!    statement (the shape `stella scan --attest-key` signs) canonicalised, signed into a DSSE
//!    envelope and stored at `attest/<sha256>.dsse.json` with its catalog row, as
//!    `stella_pipeline::attest` does. Baseline: storing the same envelope bytes without
//!    building or signing anything (the store's own cost).
//! 2. **Verify one ≤ 1 ms**: the envelope parsed, the signature checked against two trusted
//!    keys (rotation), the statement validated with its kind, subject and age. Baseline:
//!    parsing the envelope and its statement only.

use anyhow::Result;
use std::time::Instant;
use stella_attest::statement::{self, Statement, Subject};
use stella_attest::{Algorithm, Expect, Kind, Signer, SigningKey};

fn percentiles(name: &str, mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    let (p50, p95, p99) = (at(0.50), at(0.95), at(0.99));
    println!(
        "{name:<52} {:>6} ops   p50 {p50:>7.3} ms   p95 {p95:>7.3} ms   p99 {p99:>7.3} ms",
        ms.len()
    );
    (p50, p95, p99)
}

/// A report statement like the CLI's, distinct per `i`.
fn statement(i: usize) -> Statement {
    let image = format!("sha256:{:064x}", i);
    let report = format!("{:064x}", i * 7 + 1);
    Statement::new(
        vec![
            Subject::sha256("registry.example/team/app", &image),
            Subject::sha256(format!("images/{image}/reports/{report}.json"), &report),
        ],
        statement::REPORT,
        serde_json::json!({
            "imageDigest": image,
            "imageName": format!("registry.example/team/app:{i}"),
            "stellaVersion": "0.1.0",
            "analyzerVersion": "analyzers-2026.12",
            "policyDigest": format!("sha256:{}", "a".repeat(64)),
            "feedSnapshot": format!("sha256:{}", "b".repeat(64)),
            "vexSnapshot": format!("sha256:{}", "c".repeat(64)),
            "proofRoot": format!("sha256:{}", "d".repeat(64)),
            "evaluatedAt": "2026-12-01T12:00:00Z",
            "verdict": "PASS",
            "counts": {"total": 42, "fail": 0, "warn": 3, "deferred": 1, "pass": 30, "ignored": 2, "vexSuppressed": 6},
            "report": {"name": format!("images/{image}/reports/{report}.json"), "digest": {"sha256": report}, "mediaType": "application/json"},
        }),
    )
}

pub(crate) async fn run(count: usize) -> Result<()> {
    let count = count.max(100);
    let data = tempfile::tempdir()?;
    let store = stella_store::Store::open_embedded(data.path()).await?;
    let (signer, _) = SigningKey::generate(Algorithm::EcdsaP256)?;
    let (rotated, _) = SigningKey::generate(Algorithm::Ed25519)?;
    let trusted = [rotated.public().clone(), signer.public().clone()];
    println!(
        "attest: {count} report statements, ECDSA P-256 (RFC 6979) software key, SQLite catalog + local object store"
    );

    // Baseline: the store's own cost for the same bytes.
    let sample = stella_pipeline::attest::sign(&[statement(0)], &signer)?;
    let mut baseline = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        store
            .store_artifact(
                &format!("sha256:{:064x}", i + count),
                stella_store::Artifact {
                    key: format!("baseline/{i}.dsse.json"),
                    kind: stella_pipeline::attest::ATTESTATION_KIND,
                    format: "dsse-json",
                    view: Some("report"),
                    bytes: sample[0].envelope.clone(),
                },
            )
            .await?;
        baseline.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (_, base95, _) = percentiles("baseline: store the envelope bytes only", baseline);

    let mut signed = Vec::with_capacity(count);
    let mut sign_ms = Vec::with_capacity(count);
    for i in 0..count {
        let statement = statement(i);
        let started = Instant::now();
        let attestation = stella_pipeline::attest::sign(std::slice::from_ref(&statement), &signer)?;
        stella_pipeline::attest::store(&store, &format!("sha256:{i:064x}"), &attestation).await?;
        sign_ms.push(started.elapsed().as_secs_f64() * 1e3);
        signed.extend(attestation);
    }
    let (_, sign95, _) = percentiles(
        "sign + store (statement, DSSE, object, catalog row)",
        sign_ms,
    );

    let now =
        chrono::DateTime::parse_from_rfc3339("2026-12-01T12:30:00Z")?.with_timezone(&chrono::Utc);
    let mut parse_ms = Vec::with_capacity(count);
    for a in &signed {
        let started = Instant::now();
        let envelope = stella_attest::Envelope::from_json(&a.envelope)?;
        let statement = Statement::from_payload(&envelope.payload)?;
        std::hint::black_box(statement);
        parse_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (_, parse95, _) = percentiles("baseline: parse envelope + statement only", parse_ms);
    let mut verify_ms = Vec::with_capacity(count);
    for (i, a) in signed.iter().enumerate() {
        let expect = Expect {
            kind: Some(Kind::Report),
            subject: Some(format!("sha256:{i:064x}")),
            max_age: Some(chrono::Duration::hours(24)),
        };
        let started = Instant::now();
        let verified = stella_attest::verify(&a.envelope, &trusted, &expect, now)?;
        std::hint::black_box(verified);
        verify_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (_, verify95, _) = percentiles("verify (two trusted keys, kind, subject, age)", verify_ms);

    println!(
        "sign + store p95 {sign95:.3} ms = {:.1}x the store alone (target <= 5 ms: {})",
        sign95 / base95,
        if sign95 <= 5.0 { "met" } else { "NOT met" }
    );
    println!(
        "verify p95 {verify95:.3} ms = {:.1}x parsing alone (target <= 1 ms: {})",
        verify95 / parse95,
        if verify95 <= 1.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
