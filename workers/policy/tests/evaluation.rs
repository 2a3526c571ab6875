//! Evaluation: every matcher, every action, waivers, requireVEX, VEX suppression, escalation,
//! defaults, scoring numbers by hand, and report determinism.

use chrono::{DateTime, Utc};
use stella_model::{Severity, Verdict};
use stella_policy::{
    Context, DecidedBy, Image, Input, Outcome, PolicySpec, VexConsensus, VexStatus, evaluate,
    load_str,
};

fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time)
        .unwrap()
        .with_timezone(&Utc)
}

fn context() -> Context {
    Context {
        image: Image {
            digest: format!("sha256:{}", "d".repeat(64)),
            name: "ghcr.io/acme/api:1.2".into(),
            repository: None,
        },
        namespace: Some("prod-payments".into()),
        environment: Some("prod".into()),
        evaluated_at: at("2026-06-01T12:00:00Z"),
    }
}

fn input() -> Input {
    Input {
        id: "CVE-2024-0001".into(),
        aliases: vec!["GHSA-aaaa-bbbb-cccc".into()],
        purl: "pkg:deb/debian/openssl@3.0.11-1?arch=amd64".into(),
        severity: Severity::Medium,
        sources: vec!["debian-tracker".into(), "nvd".into()],
        vendor: Some("Debian OpenSSL Team".into()),
        path: Some("var/lib/dpkg/status".into()),
        layer_digest: Some(format!("sha256:{}", "1".repeat(64))),
        used_by_entrypoint: true,
        kev: Some(true),
        epss: Some(0.42),
        licenses: vec!["Apache-2.0 OR MIT".into()],
        ..Input::default()
    }
}

fn policy(rules: &str) -> PolicySpec {
    let text = if rules.is_empty() {
        "version: \"1.0\"\nrules: []\n".to_string()
    } else {
        format!("version: \"1.0\"\nrules:\n{rules}")
    };
    load_str(&text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .spec
}

/// The one decision for `input` under a policy of `rules`.
fn decide(rules: &str, input: &Input, context: &Context) -> stella_policy::FindingDecision {
    let report = evaluate(&policy(rules), context, std::slice::from_ref(input));
    report.findings.into_iter().next().unwrap()
}

#[test]
fn every_matcher_matches_and_misses() {
    // (matcher YAML, matches the standard input and context)
    let cases: &[(&str, bool)] = &[
        ("severity: [Medium, Low]", true),
        ("severity: [Critical]", false),
        ("environments: [prod]", true),
        ("environments: [dev]", false),
        ("sources: [NVD]", true),
        ("sources: [GHSA]", false),
        ("vendors: [\"debian*\"]", true),
        ("vendors: [\"Red Hat*\"]", false),
        ("images: [\"ghcr.io/acme/*\"]", true),
        ("images: [\"ghcr.io/other/*\"]", false),
        ("images: [\"ghcr.io/acme/api@sha256:*\"]", true),
        ("repositories: [\"ghcr.io/acme/api\"]", true),
        ("repositories: [\"ghcr.io/acme/ap\"]", false),
        ("namespaces: [\"prod-*\"]", true),
        ("namespaces: [\"dev-*\"]", false),
        ("purls: [\"pkg:deb/debian/openssl\"]", true),
        ("purls: [\"pkg:deb/\"]", true),
        ("purls: [\"pkg:deb/debian/open\"]", false),
        ("purls: [\"pkg:npm/\"]", false),
        ("cves: [cve-2024-0001]", true),
        ("cves: [GHSA-aaaa-bbbb-cccc]", true),
        ("cves: [CVE-2024-9999]", false),
        ("paths: [\"/var/lib/**\"]", true),
        ("paths: [\"usr/**\"]", false),
        (
            "layerDigests: [\"sha256:1111111111111111111111111111111111111111111111111111111111111111\"]",
            true,
        ),
        (
            "layerDigests: [\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"]",
            false,
        ),
        ("usedByEntrypoint: true", true),
        ("usedByEntrypoint: false", false),
        ("kev: true", true),
        ("kev: false", false),
        ("epssAtLeast: 0.42", true),
        ("epssAtLeast: 0.5", false),
        ("licenses: [MIT]", true),
        ("licenses: [\"apache-*\"]", true),
        ("licenses: [GPL-2.0-only]", false),
        // All given matchers must match.
        (
            "severity: [Medium]\n    kev: true\n    namespaces: [\"prod-*\"]",
            true,
        ),
        (
            "severity: [Medium]\n    kev: false\n    namespaces: [\"prod-*\"]",
            false,
        ),
    ];
    for (matcher, matches) in cases {
        let rules = format!("  - name: m\n    {matcher}\n    action: block\n");
        let d = decide(&rules, &input(), &context());
        let expected = if *matches {
            (Outcome::Fail, DecidedBy::Rule)
        } else {
            // Medium, no rule: passes by default.
            (Outcome::Pass, DecidedBy::Default)
        };
        assert_eq!((d.outcome, d.decided_by), expected, "{matcher}");
    }
    // Missing facts never match a matcher that needs them.
    let bare = Input {
        vendor: None,
        path: None,
        layer_digest: None,
        kev: None,
        epss: None,
        ..input()
    };
    let no_namespace = Context {
        namespace: None,
        environment: None,
        ..context()
    };
    for matcher in [
        "vendors: [\"*\"]",
        "paths: [\"**\"]",
        "epssAtLeast: 0",
        "kev: true",
        "namespaces: [\"*\"]",
        "environments: [prod]",
    ] {
        let rules = format!("  - name: m\n    {matcher}\n    action: block\n");
        let d = decide(&rules, &bare, &no_namespace);
        assert_eq!(d.outcome, Outcome::Pass, "{matcher}");
    }
    // No KEV data counts as not in the catalog.
    let d = decide(
        "  - {name: m, kev: false, action: block}\n",
        &bare,
        &context(),
    );
    assert_eq!(d.outcome, Outcome::Fail);
}

#[test]
fn every_action_decides_and_the_first_matching_rule_wins() {
    let waiver = "justification: accepted, expires: \"2027-01-01\"";
    let cases: &[(&str, Outcome, Severity)] = &[
        ("action: block", Outcome::Fail, Severity::Medium),
        ("action: warn", Outcome::Warn, Severity::Medium),
        ("action: defer", Outcome::Deferred, Severity::Medium),
        (
            "action: escalate, escalateTo: Critical",
            Outcome::Fail,
            Severity::Critical,
        ),
        (
            "action: escalate, escalateTo: High",
            Outcome::Warn,
            Severity::High,
        ),
        // Escalation never lowers.
        (
            "action: escalate, escalateTo: Low",
            Outcome::Pass,
            Severity::Medium,
        ),
        ("action: requireVEX", Outcome::Fail, Severity::Medium),
    ];
    for (action, outcome, severity) in cases {
        let rules = format!("  - {{name: first, {action}}}\n  - {{name: second, action: warn}}\n");
        let d = decide(&rules, &input(), &context());
        assert_eq!((d.outcome, d.severity), (*outcome, *severity), "{action}");
        assert_eq!(d.rule.as_deref(), Some("first"), "{action}");
        assert_eq!(d.original_severity, Severity::Medium);
    }
    let d = decide(
        &format!("  - {{name: waive, action: ignore, {waiver}}}\n  - {{name: b, action: block}}\n"),
        &input(),
        &context(),
    );
    assert_eq!(d.outcome, Outcome::Ignored);
    let w = d.waiver.unwrap();
    assert_eq!(
        (
            w.rule.as_str(),
            w.expires.as_deref(),
            w.justification.as_deref()
        ),
        ("waive", Some("2027-01-01"), Some("accepted"))
    );
}

#[test]
fn waivers_apply_before_expiry_and_are_reported_after() {
    let rules = "  - {name: waive, action: ignore, justification: ok, expires: \"2026-06-01\"}\n  - {name: b, severity: [Medium], action: warn}\n";
    let before = Context {
        evaluated_at: at("2026-05-31T23:59:59Z"),
        ..context()
    };
    let report = evaluate(&policy(rules), &before, &[input()]);
    assert_eq!(report.findings[0].outcome, Outcome::Ignored);
    assert_eq!(report.verdict, Verdict::Pass);
    assert_eq!(report.expired_waivers, []);

    // At the date's first instant the waiver no longer applies: the next rule decides.
    let after = Context {
        evaluated_at: at("2026-06-01T00:00:00Z"),
        ..context()
    };
    let report = evaluate(&policy(rules), &after, &[input()]);
    let d = &report.findings[0];
    assert_eq!((d.outcome, d.rule.as_deref()), (Outcome::Warn, Some("b")));
    assert_eq!(d.expired_waivers.len(), 1);
    assert_eq!(d.expired_waivers[0].rule, "waive");
    assert_eq!(report.verdict, Verdict::Warn);
    assert_eq!(report.expired_waivers.len(), 1);
    assert_eq!(report.expired_waivers[0].rule, "waive");
    assert_eq!(report.expired_waivers[0].expires, "2026-06-01");
    assert_eq!(report.expired_waivers[0].findings, 1);

    // An RFC 3339 expiry with an offset.
    let rules = "  - {name: waive, action: ignore, justification: ok, expires: \"2026-06-01T14:00:00+02:00\"}\n";
    let noon = evaluate(&policy(rules), &context(), &[input()]);
    assert_eq!(noon.findings[0].outcome, Outcome::Pass);
    assert_eq!(noon.findings[0].decided_by, DecidedBy::Default);
}

fn vex(status: VexStatus, justification: Option<&str>, provider: &str) -> Option<VexConsensus> {
    Some(VexConsensus {
        status,
        justification: justification.map(str::to_string),
        provider: provider.into(),
    })
}

#[test]
fn require_vex_passes_only_with_an_accepted_consensus() {
    let rules = "  - name: openssl needs vendor VEX\n    purls: [\"pkg:deb/debian/openssl\"]\n    action: requireVEX\n    requireVex:\n      vendors: [Debian]\n      justifications: [vulnerable_code_not_present, vulnerable_code_not_in_execute_path]\n";
    let cases: &[(Option<VexConsensus>, Outcome, &str)] = &[
        (
            None,
            Outcome::Fail,
            "requires a VEX statement: no VEX consensus",
        ),
        (
            vex(
                VexStatus::NotAffected,
                Some("vulnerable_code_not_present"),
                "debian",
            ),
            Outcome::VexSuppressed,
            "VEX not_affected (vulnerable_code_not_present) from debian satisfies requireVEX",
        ),
        (
            vex(VexStatus::Fixed, None, "Debian"),
            Outcome::VexSuppressed,
            "VEX fixed from Debian satisfies requireVEX",
        ),
        (
            vex(
                VexStatus::NotAffected,
                Some("vulnerable_code_not_present"),
                "Ubuntu",
            ),
            Outcome::Fail,
            "requires VEX from Debian: not_affected (vulnerable_code_not_present) from Ubuntu",
        ),
        (
            vex(
                VexStatus::NotAffected,
                Some("component_not_present"),
                "Debian",
            ),
            Outcome::Fail,
            "requires a not_affected justification of vulnerable_code_not_present, vulnerable_code_not_in_execute_path: not_affected (component_not_present) from Debian",
        ),
        (
            vex(VexStatus::Affected, None, "Debian"),
            Outcome::Fail,
            "requires a not_affected or fixed VEX consensus: affected from Debian",
        ),
        (
            vex(VexStatus::UnderInvestigation, None, "Debian"),
            Outcome::Fail,
            "requires a not_affected or fixed VEX consensus: under_investigation from Debian",
        ),
    ];
    for (consensus, outcome, reason) in cases {
        let finding = Input {
            vex: consensus.clone(),
            ..input()
        };
        let d = decide(rules, &finding, &context());
        assert_eq!((d.outcome, d.reason.as_str()), (*outcome, *reason));
        assert_eq!(d.decided_by, DecidedBy::Rule);
        assert_eq!(d.rule.as_deref(), Some("openssl needs vendor VEX"));
        assert_eq!(&d.vex, consensus);
    }
    // Without details any provider and justification will do.
    let d = decide(
        "  - {name: r, action: requireVEX}\n",
        &Input {
            vex: vex(
                VexStatus::NotAffected,
                Some("inline_mitigations_already_exist"),
                "x",
            ),
            ..input()
        },
        &context(),
    );
    assert_eq!(d.outcome, Outcome::VexSuppressed);
}

#[test]
fn vex_suppresses_unless_a_rule_overrides_it() {
    let quiet = Input {
        severity: Severity::Critical,
        vex: vex(
            VexStatus::NotAffected,
            Some("vulnerable_code_not_present"),
            "Debian",
        ),
        ..input()
    };
    // No rule: suppressed.
    let d = decide(
        "  - {name: other, cves: [CVE-1-1], action: block}\n",
        &quiet,
        &context(),
    );
    assert_eq!(
        (d.outcome, d.decided_by, d.rule),
        (Outcome::VexSuppressed, DecidedBy::Vex, None)
    );
    assert_eq!(
        d.reason,
        "VEX not_affected (vulnerable_code_not_present) from Debian"
    );
    // A block rule without overrideVex: still suppressed, and the reason names the rule.
    let d = decide(
        "  - {name: crit, severity: [Critical], action: block}\n",
        &quiet,
        &context(),
    );
    assert_eq!(d.outcome, Outcome::VexSuppressed);
    assert!(
        d.reason.ends_with("(rule \"crit\" would have applied)"),
        "{}",
        d.reason
    );
    // overrideVex: the rule decides.
    let d = decide(
        "  - {name: crit, severity: [Critical], action: block, overrideVex: true}\n",
        &quiet,
        &context(),
    );
    assert_eq!(
        (d.outcome, d.rule.as_deref()),
        (Outcome::Fail, Some("crit"))
    );
    // affected does not suppress.
    let affected = Input {
        vex: vex(VexStatus::Affected, None, "Debian"),
        ..quiet.clone()
    };
    assert_eq!(decide("", &affected, &context()).outcome, Outcome::Fail);
}

#[test]
fn escalation_by_kev_and_epss() {
    let rules = "  - {name: kev, kev: true, action: escalate, escalateTo: Critical}\n  - {name: epss, epssAtLeast: 0.5, action: escalate, escalateTo: High}\n";
    let low = |kev, epss| Input {
        severity: Severity::Low,
        kev: Some(kev),
        epss: Some(epss),
        ..input()
    };
    let d = decide(rules, &low(true, 0.1), &context());
    assert_eq!(
        (d.severity, d.outcome, d.rule.as_deref()),
        (Severity::Critical, Outcome::Fail, Some("kev"))
    );
    assert_eq!(d.reason, "escalated Low → Critical");
    let d = decide(rules, &low(false, 0.9), &context());
    assert_eq!(
        (d.severity, d.outcome, d.rule.as_deref()),
        (Severity::High, Outcome::Warn, Some("epss"))
    );
    let d = decide(rules, &low(false, 0.1), &context());
    assert_eq!(
        (d.severity, d.outcome, d.decided_by),
        (Severity::Low, Outcome::Pass, DecidedBy::Default)
    );
    // The score follows the escalated severity: Critical 90 × 1 × entrypoint 1.
    let d = decide(rules, &low(true, 0.1), &context());
    assert_eq!(d.score.severity_weight, 90.0);
}

#[test]
fn defaults_by_severity() {
    for (severity, outcome) in [
        (Severity::Critical, Outcome::Fail),
        (Severity::High, Outcome::Warn),
        (Severity::Medium, Outcome::Pass),
        (Severity::Low, Outcome::Pass),
        (Severity::None, Outcome::Pass),
        (Severity::Unknown, Outcome::Pass),
    ] {
        let d = decide(
            "",
            &Input {
                severity,
                ..input()
            },
            &context(),
        );
        assert_eq!(
            (d.outcome, d.decided_by),
            (outcome, DecidedBy::Default),
            "{severity:?}"
        );
    }
}

/// Scores by hand from the seed's formula and default weights:
/// `baseScore = severityWeight × trustWeight × reachabilityWeight`, `score = baseScore − penalty`.
#[test]
fn scores_follow_the_seed_formula() {
    struct Case {
        input: Input,
        rules: &'static str,
        // severity, trust, reachability bucket, reachability, base, penalty kind, penalty, score
        expected: (
            f64,
            f64,
            &'static str,
            f64,
            f64,
            Option<&'static str>,
            f64,
            f64,
        ),
    }
    let cases = [
        // Critical, entrypoint, no trust key: 90 × 1 × 1 = 90, fails, no penalty.
        Case {
            input: Input {
                severity: Severity::Critical,
                ..input()
            },
            rules: "",
            expected: (90.0, 1.0, "entrypoint", 1.0, 90.0, None, 0.0, 90.0),
        },
        // High, unused: 75 × 1 × unknown 0.5 = 37.5; warns by default: − 15 = 22.5.
        Case {
            input: Input {
                severity: Severity::High,
                used_by_entrypoint: false,
                ..input()
            },
            rules: "",
            expected: (75.0, 1.0, "unknown", 0.5, 37.5, Some("warn"), 15.0, 22.5),
        },
        // Medium, trust:distro 0.85, unused: 50 × 0.85 × 0.5 = 21.25.
        Case {
            input: Input {
                used_by_entrypoint: false,
                tags: vec!["trust:distro".into()],
                ..input()
            },
            rules: "",
            expected: (50.0, 0.85, "unknown", 0.5, 21.25, None, 0.0, 21.25),
        },
        // A source named like a trust key; a reachability tag over the entrypoint's use:
        // High 75 × vendor 1.0 × runtime 0.45 = 33.75, warns: 18.75.
        Case {
            input: Input {
                severity: Severity::High,
                sources: vec!["vendor".into()],
                tags: vec!["reachability:runtime".into()],
                ..input()
            },
            rules: "",
            expected: (75.0, 1.0, "runtime", 0.45, 33.75, Some("warn"), 15.0, 18.75),
        },
        // Waived Low: 25 × 1 × 1 = 25 − ignore 35 → 0.
        Case {
            input: Input {
                severity: Severity::Low,
                ..input()
            },
            rules: "  - {name: w, action: ignore, justification: ok}\n",
            expected: (
                25.0,
                1.0,
                "entrypoint",
                1.0,
                25.0,
                Some("ignore"),
                35.0,
                0.0,
            ),
        },
        // VEX-quieted Critical, usage:direct: 90 × 1 × 0.85 = 76.5 − quiet 45 = 31.5.
        Case {
            input: Input {
                severity: Severity::Critical,
                tags: vec!["usage:direct".into()],
                vex: vex(VexStatus::Fixed, None, "Debian"),
                ..input()
            },
            rules: "",
            expected: (90.0, 1.0, "direct", 0.85, 76.5, Some("quiet"), 45.0, 31.5),
        },
        // A bucket the config lacks falls back to unknown's weight: indirect → 0.5.
        Case {
            input: Input {
                tags: vec!["reachability:indirect".into()],
                ..input()
            },
            rules: "",
            expected: (50.0, 1.0, "indirect", 0.5, 25.0, None, 0.0, 25.0),
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let s = decide(case.rules, &case.input, &context()).score;
        let got = (
            s.severity_weight,
            s.trust_weight,
            s.reachability_bucket.as_str(),
            s.reachability_weight,
            s.base_score,
            s.penalty_kind.as_deref(),
            s.penalty,
            s.score,
        );
        assert_eq!(got, case.expected, "case {i}");
    }
}

#[test]
fn unknown_confidence_decays_into_bands() {
    // initial 0.8, 0.05 a day, floor 0.2; bands high ≥ 0.65, medium ≥ 0.35, low ≥ 0.
    let cases: &[(&[&str], f64, Option<u32>, &str)] = &[
        (&[], 0.8, None, "high"),
        (&["unknown-age-days:3"], 0.65, Some(3), "high"),
        (&["unknown-age-days:5"], 0.55, Some(5), "medium"),
        (&["unknown-age-days:40"], 0.2, Some(40), "low"),
        // Since → the evaluation time (2026-06-01T12:00Z): 10 days.
        (
            &["unknown-since:2026-05-22T12:00:00Z"],
            0.3,
            Some(10),
            "low",
        ),
        (
            &[
                "unknown-since:2026-05-22T00:00:00Z",
                "observed-at:2026-05-24T00:00:00Z",
            ],
            0.7,
            Some(2),
            "high",
        ),
    ];
    for (tags, confidence, age, band) in cases {
        let finding = Input {
            severity: Severity::Unknown,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..input()
        };
        let d = decide("", &finding, &context());
        let unknown = d.score.unknown.unwrap();
        assert_eq!(
            (
                unknown.confidence,
                unknown.age_days,
                unknown.band.as_deref()
            ),
            (*confidence, *age, Some(*band)),
            "{tags:?}"
        );
        assert_eq!(d.score.base_score, 60.0);
    }
    // Known severities carry no unknown state.
    assert!(decide("", &input(), &context()).score.unknown.is_none());
}

#[test]
fn the_verdict_and_counts_cover_every_outcome() {
    let rules = "  - {name: w, cves: [CVE-1-1], action: warn}\n  - {name: d, cves: [CVE-1-2], action: defer}\n  - {name: i, cves: [CVE-1-3], action: ignore, justification: ok}\n  - {name: b, cves: [CVE-1-4], action: block}\n";
    let finding = |id: &str| Input {
        id: id.into(),
        aliases: vec![],
        ..input()
    };
    let spec = policy(rules);
    let all = [
        finding("CVE-1-1"),
        finding("CVE-1-2"),
        finding("CVE-1-3"),
        finding("CVE-1-4"),
        finding("CVE-1-5"),
    ];
    let report = evaluate(&spec, &context(), &all);
    assert_eq!(report.verdict, Verdict::Fail);
    let c = &report.counts;
    assert_eq!(
        (
            c.total,
            c.fail,
            c.warn,
            c.deferred,
            c.ignored,
            c.pass,
            c.vex_suppressed
        ),
        (5, 1, 1, 1, 1, 1, 0)
    );
    assert_eq!(
        evaluate(&spec, &context(), &all[..3]).verdict,
        Verdict::Warn
    );
    assert_eq!(
        evaluate(&spec, &context(), &all[1..2]).verdict,
        Verdict::Warn
    );
    assert_eq!(
        evaluate(&spec, &context(), &all[2..3]).verdict,
        Verdict::Pass
    );
    assert_eq!(evaluate(&spec, &context(), &[]).verdict, Verdict::Pass);
}

#[test]
fn reports_are_canonical_and_byte_identical_for_the_same_inputs() {
    let spec = load_str(include_str!("../../../config/samples/policy.yaml"))
        .unwrap()
        .spec;
    let findings: Vec<Input> = (0..50)
        .map(|i| Input {
            id: format!("CVE-2024-{:04}", i % 7),
            purl: format!("pkg:npm/p{}@1.0.{}", i % 5, i % 3),
            severity: Severity::ALL[i % 6],
            kev: Some(i % 4 == 0),
            vex: (i % 9 == 0).then(|| VexConsensus {
                status: VexStatus::NotAffected,
                justification: None,
                provider: "acme".into(),
            }),
            ..input()
        })
        .collect();
    let first = evaluate(&spec, &context(), &findings).to_canonical_json();
    let mut reversed = findings.clone();
    reversed.reverse();
    let second = evaluate(&spec, &context(), &reversed).to_canonical_json();
    assert_eq!(first, second);
    // Canonical: re-serialising the parsed report gives the same bytes.
    let value: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(stella_policy::canonical_json(&value), first);
    assert!(!first.contains('\n'));
    assert_eq!(value["policyDigest"], stella_policy::digest(&spec));
    assert_eq!(value["evaluatedAt"], "2026-06-01T12:00:00Z");
    assert_eq!(value["schema"], "stella-ops.org/policy-report@1");
    assert_eq!(value["image"]["name"], "ghcr.io/acme/api:1.2");
    // Findings sorted by purl, then id.
    let keys: Vec<(String, String)> = value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["purl"].as_str().unwrap().into(),
                f["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // Another time is another report.
    let later = Context {
        evaluated_at: at("2026-06-02T12:00:00Z"),
        ..context()
    };
    assert_ne!(
        evaluate(&spec, &later, &findings).to_canonical_json(),
        first
    );
}

#[test]
fn scan_findings_and_components_convert_into_inputs() {
    use stella_advisories::matching::{Evidence, Finding};
    let finding = Finding {
        id: "CVE-2024-0001".into(),
        aliases: vec!["DSA-5678-1".into()],
        purl: "pkg:deb/debian/openssl@3.0.11-1?arch=amd64".into(),
        package: "openssl".into(),
        installed: "3.0.11-1".into(),
        fixed: vec!["3.0.13-1".into()],
        status: "fixed".into(),
        severity: "High".into(),
        cvss_score: Some(7.5),
        severity_source: Some("CVSS:3.1/AV:N".into()),
        severity_origin: Some("nvd".into()),
        layer_digest: None,
        used_by_entrypoint: false,
        evidence: Evidence {
            advisory: "DSA-5678-1".into(),
            source: "debian-tracker".into(),
            ecosystem: "Debian:12".into(),
            matched: "< 3.0.13-1".into(),
            comparator: "dpkg".into(),
        },
    };
    let mut package = stella_analyzers::Package::installed(
        stella_analyzers::Ecosystem::Deb,
        "openssl".into(),
        "3.0.11-1".into(),
        finding.purl.clone(),
        stella_analyzers::Evidence {
            source: "dpkg-status".into(),
            path: "var/lib/dpkg/status".into(),
            method: "package-database".into(),
        },
    );
    package.supplier = Some("Debian OpenSSL Team".into());
    package.licenses = vec!["Apache-2.0".into()];
    let component = stella_sbom::Component {
        package,
        layer_digest: Some(format!("sha256:{}", "1".repeat(64))),
        used_by_entrypoint: true,
        properties: vec![],
    };
    let input = Input::from_finding(&finding).with_component(&component);
    assert_eq!(input.severity, Severity::High);
    assert_eq!(input.sources, ["debian-tracker", "nvd"]);
    assert_eq!(input.vendor.as_deref(), Some("Debian OpenSSL Team"));
    assert_eq!(input.path.as_deref(), Some("var/lib/dpkg/status"));
    assert_eq!(input.licenses, ["Apache-2.0"]);
    assert_eq!(input.layer_digest, component.layer_digest);
    assert!(input.used_by_entrypoint);
    assert_eq!(input.aliases, ["DSA-5678-1"]);
    // The converted input meets the matchers that need the component's facts.
    let d = decide(
        "  - name: m\n    vendors: [\"debian*\"]\n    paths: [\"var/lib/dpkg/*\"]\n    sources: [NVD]\n    cves: [DSA-5678-1]\n    action: block\n",
        &input,
        &context(),
    );
    assert_eq!(d.outcome, Outcome::Fail);
    assert_eq!(
        stella_policy::parse_severity("critical"),
        Severity::Critical
    );
    assert_eq!(stella_policy::parse_severity("bogus"), Severity::Unknown);
}
