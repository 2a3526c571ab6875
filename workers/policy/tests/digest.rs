//! The canonical digest: invariant under formatting, sensitive to meaning.

use stella_policy::load_str;

fn digest(text: &str) -> String {
    load_str(text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .digest
}

const BLOCK: &str = r#"# Block what matters.
version: "1.0"
rules:
  - name: Block Critical      # the baseline
    severity: [Critical, High]
    purls: ["pkg:npm/", "pkg:deb/debian/openssl"]
    action: block
  - name: Waive dev
    environments: [dev]
    action: ignore
    expires: "2027-01-01"
    justification: dev only
"#;

#[test]
fn the_same_policy_written_differently_has_the_same_digest() {
    let expected = digest(BLOCK);
    let variants = [
        // Key order, flow style, no comments, lists in another order.
        r#"rules:
- {action: block, purls: ["pkg:deb/debian/openssl", "pkg:npm/"], severity: [High, Critical, High], name: Block Critical}
- {justification: dev only, expires: "2027-01-01", action: ignore, environments: [dev], name: Waive dev}
version: "1.0"
"#
        .to_string(),
        // JSON.
        r#"{"version": "1.0", "rules": [
            {"name": "Block Critical", "severity": ["Critical", "High"], "purls": ["pkg:npm/", "pkg:deb/debian/openssl"], "action": "block"},
            {"name": "Waive dev", "environments": ["dev"], "action": "ignore", "expires": "2027-01-01", "justification": "dev only"}]}"#
            .to_string(),
        // A manifest around it.
        format!(
            "apiVersion: stella-ops.org/v1alpha1\nkind: Policy\nmetadata:\n  name: other-name\nspec:\n{}",
            BLOCK.lines().map(|l| format!("  {l}\n")).collect::<String>()
        ),
        // The default scoring written out, integers as floats.
        format!(
            "{BLOCK}scoring:\n  version: \"1.0\"\n  severityWeights: {{Critical: 90.0, High: 75, Medium: 50, Low: 25, None: 0, Unknown: 60}}\n  quietPenalty: 45\n  warnPenalty: 15\n  ignorePenalty: 35\n  trustOverrides: {{distro: 0.85, vendor: 1}}\n  reachabilityBuckets: {{unknown: 0.5, runtime: 0.45, direct: 0.85, entrypoint: 1}}\n  unknownConfidence:\n    initial: 0.8\n    decayPerDay: 0.05\n    floor: 0.2\n    bands: [{{name: high, min: 0.65}}, {{name: medium, min: 0.35}}, {{name: low, min: 0}}]\n"
        ),
    ];
    for variant in &variants {
        assert_eq!(digest(variant), expected, "{variant}");
    }
}

#[test]
fn any_change_in_meaning_changes_the_digest() {
    let base = digest(BLOCK);
    let changes = [
        ("action: block", "action: warn"),
        ("[Critical, High]", "[Critical]"),
        ("\"2027-01-01\"", "\"2027-01-02\""),
        ("environments: [dev]", "environments: [dev, test]"),
        ("name: Waive dev", "name: Waive development"),
        (
            "justification: dev only",
            "justification: dev clusters only",
        ),
        ("\"pkg:npm/\", ", ""),
    ];
    let mut seen = std::collections::BTreeSet::from([base.clone()]);
    for (from, to) in changes {
        assert!(BLOCK.contains(from), "{from}");
        let changed = digest(&BLOCK.replacen(from, to, 1));
        assert!(seen.insert(changed), "{from} → {to} kept the digest");
    }
    // Rule order decides, so it is part of the digest.
    let swapped =
        "version: \"1.0\"\nrules:\n  - {name: b, action: warn}\n  - {name: a, action: block}\n";
    let original =
        "version: \"1.0\"\nrules:\n  - {name: a, action: block}\n  - {name: b, action: warn}\n";
    assert_ne!(digest(swapped), digest(original));
    // A scoring weight.
    let weighted = format!(
        "{BLOCK}scoring:\n  version: \"1.0\"\n  severityWeights: {{Critical: 91, High: 75, Medium: 50, Low: 25, None: 0, Unknown: 60}}\n  quietPenalty: 45\n  warnPenalty: 15\n  ignorePenalty: 35\n  trustOverrides: {{distro: 0.85, vendor: 1}}\n  reachabilityBuckets: {{unknown: 0.5, runtime: 0.45, direct: 0.85, entrypoint: 1}}\n  unknownConfidence:\n    initial: 0.8\n    decayPerDay: 0.05\n    floor: 0.2\n    bands: [{{name: high, min: 0.65}}, {{name: medium, min: 0.35}}, {{name: low, min: 0}}]\n"
    );
    assert!(seen.insert(digest(&weighted)));
}

#[test]
fn the_digest_is_sha256_of_the_canonical_json() {
    let loaded = load_str("version: \"1.0\"\nrules:\n  - {name: a, action: block}\n").unwrap();
    let json = stella_policy::canonical_json(&serde_json::to_value(&loaded.spec).unwrap());
    assert!(
        json.starts_with(r#"{"rules":[{"action":"block","name":"a"}],"scoring":{"#),
        "{json}"
    );
    use sha2::Digest;
    assert_eq!(
        loaded.digest,
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(json.as_bytes()))
        )
    );
    assert_eq!(stella_policy::digest(&loaded.spec), loaded.digest);
}
