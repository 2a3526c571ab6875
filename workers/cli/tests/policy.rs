//! `stella policy validate` and `stella policy digest` as a user runs them.

use crate::stella;

fn run(args: &[&str], file: &std::path::Path) -> (Option<i32>, String, String) {
    let out = stella().args(args).arg(file).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn policy_validate_prints_the_digest_or_every_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/samples/policy.yaml");
    let expected = stella_policy::load_file(&sample).unwrap().digest;

    let (code, stdout, _) = run(&["policy", "validate"], &sample);
    assert_eq!(code, Some(0));
    assert_eq!(stdout, format!("valid, digest {expected}\n"));
    let (code, stdout, _) = run(&["policy", "digest"], &sample);
    assert_eq!((code, stdout), (Some(0), format!("{expected}\n")));

    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "version: \"1.0\"\nrules:\n  - name: a\n    action: blok\n  - name: a\n    action: ignore\n    expires: \"2026-13-01\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["policy", "validate"], &broken);
    assert_eq!(code, Some(2));
    let file = broken.display();
    assert_eq!(
        stdout,
        format!(
            "{file}: rules[0].action: unknown value \"blok\" (expected one of: block, ignore, warn, escalate, defer, requireVEX)\n\
             {file}: rules[1].expires: invalid date \"2026-13-01\" (expected a date YYYY-MM-DD or an RFC 3339 time that exists)\n\
             {file}: rules[1].justification: required for action \"ignore\" (a waiver must say why)\n\
             {file}: rules[1].name: duplicate rule name \"a\" (first used by rules[0])\n"
        )
    );
    assert_eq!(
        stderr,
        format!("stella: {file}: invalid policy, 4 problems\n")
    );
    let (code, stdout, _) = run(&["policy", "digest"], &broken);
    assert_eq!(code, Some(2));
    assert_eq!(stdout.lines().count(), 4);

    let (code, stdout, _) = run(&["policy", "validate", "--format", "json"], &broken);
    assert_eq!(code, Some(2));
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["valid"], false);
    assert_eq!(value["errors"][0]["path"], "rules[0].action");

    let syntax = dir.path().join("syntax.yaml");
    std::fs::write(
        &syntax,
        "version: \"1.0\"\nrules:\n  - name: a\n   action: block\n",
    )
    .unwrap();
    let (code, stdout, _) = run(&["policy", "validate"], &syntax);
    assert_eq!(code, Some(2));
    assert_eq!(
        stdout,
        format!(
            "{}:4:4: YAML syntax error: while parsing a block collection, did not find expected '-' indicator\n",
            syntax.display()
        )
    );

    let (code, _, stderr) = run(&["policy", "validate"], &dir.path().join("missing.yaml"));
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("stella: failed to read "), "{stderr}");
}
