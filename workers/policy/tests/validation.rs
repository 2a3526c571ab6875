//! Loading and validation: valid documents in every form, broken ones with the exact errors
//! they must produce, and hostile inputs refused quickly with a clear error.

use crate::errors;
use stella_policy::{DocumentKind, load_str};

const SAMPLE: &str = include_str!("../../../config/samples/policy.yaml");

#[test]
fn the_sample_manifest_and_a_bare_spec_load() {
    let loaded = load_str(SAMPLE).unwrap();
    assert_eq!(
        loaded.kind,
        DocumentKind::Manifest {
            name: Some("baseline".into())
        }
    );
    assert_eq!(loaded.spec.rules.len(), 5);
    assert!(loaded.digest.starts_with("sha256:") && loaded.digest.len() == 71);

    let bare = load_str("version: \"1.0\"\nrules:\n  - {name: b, action: block}\n").unwrap();
    assert_eq!(bare.kind, DocumentKind::Spec);
    // The default scoring configuration is filled in.
    assert_eq!(bare.spec.scoring.unwrap().severity_weights.critical, 90.0);
}

/// Each broken policy with every error it must produce, in order.
#[test]
fn broken_policies_report_every_error_with_its_location() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown action",
            "version: \"1.0\"\nrules:\n  - name: a\n    action: blok\n",
            &[
                "rules[0].action: unknown value \"blok\" (expected one of: block, ignore, warn, escalate, defer, requireVEX)",
            ],
        ),
        (
            "missing version",
            "rules: []\n",
            &["version: required field is missing (expected \"1.0\")"],
        ),
        (
            "wrong types",
            "version: 1.0\nrules: {}\n",
            &[
                "rules: expected a list, got a mapping",
                "version: expected a string (one of: \"1.0\"), got number 1.0; quote it",
            ],
        ),
        (
            "bad expires, missing justification, duplicate names, unknown field",
            "version: \"1.0\"\nrules:\n  - name: a\n    action: block\n  - name: a\n    action: ignore\n    expires: 2026-02-30\n    actoin: x\n  - name: c\n    action: ignore\n    justification: ok\n    expires: next week\n",
            &[
                "rules[1].actoin: unknown field (expected one of: action, cves, environments, epssAtLeast, escalateTo, expires, images, justification, kev, layerDigests, licenses, name, namespaces, overrideVex, paths, purls, repositories, requireVex, severity, sources, usedByEntrypoint, vendors)",
                "rules[1].expires: invalid date \"2026-02-30\" (expected a date YYYY-MM-DD or an RFC 3339 time that exists)",
                "rules[1].justification: required for action \"ignore\" (a waiver must say why)",
                "rules[1].name: duplicate rule name \"a\" (first used by rules[0])",
                "rules[2].expires: invalid value \"next week\" (expected a date YYYY-MM-DD or an RFC 3339 time)",
            ],
        ),
        (
            "matchers: severities, ranges, purls, globs, digests, ids",
            "version: \"1.0\"\nrules:\n  - name: c\n    action: escalate\n    severity: [critical]\n    epssAtLeast: 2\n    purls: [\"deb/x\"]\n    images: [\"[x\"]\n    layerDigests: [\"sha256:abc\"]\n    cves: [\"CVE 2024\"]\n    kev: \"yes\"\n",
            &[
                "rules[0].cves[0]: invalid vulnerability id \"CVE 2024\" (expected an id such as CVE-2024-3094 or GHSA-xxxx-xxxx-xxxx)",
                "rules[0].epssAtLeast: out of range: 2 (expected at most 1)",
                "rules[0].escalateTo: action 'escalate' needs escalateTo",
                "rules[0].images[0]: invalid glob \"[x\": unclosed character class '['",
                "rules[0].kev: expected a boolean (true or false), got string \"yes\"",
                "rules[0].layerDigests[0]: invalid value \"sha256:abc\" (expected a digest sha256:<64 lowercase hex digits>)",
                "rules[0].purls[0]: invalid value \"deb/x\" (expected a package URL prefix such as pkg:deb/debian/openssl)",
                "rules[0].severity[0]: unknown value \"critical\" (expected one of: Critical, High, Medium, Low, None, Unknown)",
            ],
        ),
        (
            "requireVEX details",
            "version: \"1.0\"\nrules:\n  - name: v\n    action: requireVEX\n    overrideVex: true\n    requireVex:\n      vendors: [Debian, debian]\n      justifications: [not_present]\n  - name: w\n    action: warn\n    escalateTo: High\n    requireVex: {vendors: [x]}\n",
            &[
                "rules[0].overrideVex: has no effect with action \"requireVEX\", which always weighs the VEX consensus",
                "rules[0].requireVex.justifications[0]: unknown value \"not_present\" (expected one of: component_not_present, vulnerable_code_not_present, vulnerable_code_not_in_execute_path, vulnerable_code_cannot_be_controlled_by_adversary, inline_mitigations_already_exist)",
                "rules[0].requireVex.vendors[1]: duplicate vendor \"debian\"",
                "rules[1].escalateTo: only used by action \"escalate\" (this rule's action is \"warn\")",
                "rules[1].requireVex: requireVex applies only to action 'requireVEX'",
            ],
        ),
        (
            "scoring: weights, buckets, bands",
            "version: \"1.0\"\nrules: []\nscoring:\n  version: \"1.0\"\n  severityWeights: {Critical: 190, High: 75, Medium: 50, Low: 25, None: 0, Unknown: 60}\n  quietPenalty: 45\n  warnPenalty: -1\n  ignorePenalty: 35\n  trustOverrides: {vendor: 1.5}\n  reachabilityBuckets: {entrypoint: 1.0, reachble: 0.5}\n  unknownConfidence:\n    initial: 0.3\n    decayPerDay: 0.05\n    floor: 0.4\n    bands:\n      - {name: low, min: 0.0}\n      - {name: high, min: 0.65}\n",
            &[
                "scoring.reachabilityBuckets.reachble: unknown reachability bucket \"reachble\" (expected one of: entrypoint, direct, indirect, runtime, unreachable, unknown)",
                "scoring.severityWeights.Critical: out of range: 190 (expected at most 100)",
                "scoring.trustOverrides.vendor: out of range: 1.5 (expected at most 1)",
                "scoring.unknownConfidence.bands[1].min: bands must be ordered by min, descending: 0.65 follows 0",
                "scoring.unknownConfidence.floor: floor 0.4 is above initial 0.3",
                "scoring.warnPenalty: out of range: -1 (expected at least 0)",
            ],
        ),
        (
            "a manifest: header and spec paths",
            "apiVersion: v1\nkind: Policy\nmetadata: {name: x}\nspec:\n  version: \"1.0\"\n  rules:\n    - {name: x, action: warn, escalateTo: High}\n",
            &[
                "apiVersion: unknown value \"v1\" (expected stella-ops.org/v1alpha1)",
                "spec.rules[0].escalateTo: only used by action \"escalate\" (this rule's action is \"warn\")",
            ],
        ),
        (
            "a manifest without a spec",
            "apiVersion: stella-ops.org/v1alpha1\nkind: Polcy\n",
            &[
                "kind: unknown value \"Polcy\" (expected Policy)",
                "spec: required field is missing",
            ],
        ),
        (
            "a YAML syntax error",
            "version: \"1.0\"\nrules:\n  - name: a\n   action: block\n",
            &[
                "4:4: YAML syntax error: while parsing a block collection, did not find expected '-' indicator",
            ],
        ),
        (
            "a JSON syntax error",
            "{\"version\": \"1.0\",\n \"rules\": [}\n",
            &["2:12: JSON syntax error: expected value"],
        ),
        (
            "duplicate keys",
            "version: \"1.0\"\nversion: \"1.0\"\nrules: []\n",
            &[
                "2:1: YAML syntax error: duplicate mapping key: version, set DuplicateKeyPolicy in Options if acceptable",
            ],
        ),
        (
            "an empty file",
            "# nothing\n",
            &["(document): empty document (expected a Policy manifest or a policy spec)"],
        ),
        (
            "a list",
            "- a\n",
            &["(document): expected a mapping (a Policy manifest or a policy spec), got a list"],
        ),
    ];
    for (what, text, expected) in cases {
        assert_eq!(errors(text), *expected, "{what}");
    }
}

#[test]
fn a_hundred_thousand_rules_are_refused_quickly() {
    let mut text = String::from("version: \"1.0\"\nrules:\n");
    for i in 0..100_000 {
        text.push_str(&format!("  - name: r{i}\n    action: block\n"));
    }
    let started = std::time::Instant::now();
    let e = errors(&text);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("more than 200000 YAML nodes"), "{e:?}");

    // Within the node budget, the schema's limit of 512 rules speaks.
    let mut text = String::from("version: \"1.0\"\nrules:\n");
    for i in 0..600 {
        text.push_str(&format!("  - {{name: r{i}, action: block}}\n"));
    }
    assert_eq!(errors(&text), ["rules: too many items: 600 (at most 512)"]);

    // In JSON too.
    let rules: Vec<String> = (0..100_000)
        .map(|i| format!("{{\"name\":\"r{i}\",\"action\":\"block\"}}"))
        .collect();
    let text = format!("{{\"version\":\"1.0\",\"rules\":[{}]}}", rules.join(","));
    assert_eq!(
        errors(&text),
        ["rules: too many items: 100000 (at most 512)"]
    );
}

#[test]
fn deep_nesting_alias_bombs_and_huge_files_are_refused() {
    let deep = format!(
        "version: \"1.0\"\nrules: {}{}\n",
        "[".repeat(40),
        "]".repeat(40)
    );
    let e = errors(&deep);
    assert_eq!(e.len(), 1);
    assert!(e[0].ends_with("nested deeper than 32 levels"), "{e:?}");

    let deep_json = format!("{{\"rules\": {}{}}}", "[".repeat(40), "]".repeat(40));
    assert_eq!(
        errors(&deep_json),
        ["(document): nested deeper than 32 levels"]
    );

    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let previous = (b'a' + level - 1) as char;
        let name = (b'a' + level) as char;
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{previous}"); 10].join(", ")
        ));
    }
    let started = std::time::Instant::now();
    let e = errors(&bomb);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].contains("YAML nodes (after expanding aliases)") || e[0].contains("alias"),
        "{e:?}"
    );

    let huge = format!(
        "version: \"1.0\"\nrules: []\ndescription: \"{}\"\n",
        "x".repeat(5 << 20)
    );
    assert_eq!(
        errors(&huge),
        [format!(
            "(document): policy document is {} bytes, more than the 4194304 allowed",
            huge.len()
        )]
    );
}

#[test]
fn load_file_reads_and_reports_unreadable_files() {
    let dir = std::env::temp_dir().join(format!("stella-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.json");
    std::fs::write(
        &path,
        r#"{"version": "1.0", "rules": [{"name": "b", "action": "block"}]}"#,
    )
    .unwrap();
    let loaded = stella_policy::load_file(&path).unwrap();
    assert_eq!(loaded.spec.rules[0].name, "b");
    let err = stella_policy::load_file(&dir.join("missing.yaml")).unwrap_err();
    assert!(err.to_string().starts_with("failed to read "), "{err}");
    std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let err = stella_policy::load_file(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid policy: (document): not UTF-8 text (invalid byte at offset 0)"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
