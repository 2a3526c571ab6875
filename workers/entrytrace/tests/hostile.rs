//! Hostile input: garbage, broken syntax, huge lines, deep nesting, symlink games. Nothing
//! panics, overflows the stack or escapes the image root; every failure is an unknown.

use crate::{E, ELF, config, image, run, s2, terminals, unknowns};
use stella_entrytrace::{Location, Outcome, Reason, TerminalKind};

fn sh() -> Vec<E<'static>> {
    vec![
        E::Exe("bin/busybox", ELF),
        E::Link("bin/sh", "busybox"),
        E::Exe("usr/bin/app", ELF),
    ]
}

#[test]
fn garbage_is_an_executable_or_a_parse_error_never_a_panic() {
    let mut garbage = b"#!/bin/sh\n".to_vec();
    // Deterministic noise: every byte value, quotes and operators included.
    let mut x: u32 = 0x1234_5678;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        garbage.push((x >> 24) as u8 | 1);
    }
    let mut entries = sh();
    entries.push(E::Exe("noise", &garbage));
    entries.push(E::Exe("blob", b"\x01\x02\x03 not a script"));
    let fs = image(&entries);
    // The capture keeps only text without NUL bytes; non-UTF-8 text is read lossily.
    let trace = run(&fs, &config(&["/noise"], &[], &[]));
    assert!(
        !trace.unknowns.is_empty() || !trace.terminals.is_empty(),
        "{trace:?}"
    );
    let blob = run(&fs, &config(&["/blob"], &[], &[]));
    assert_eq!(terminals(&blob), s2(&[("executable", "/blob")]));
}

#[test]
fn broken_syntax_is_a_parse_error_with_the_line() {
    let cases: [(&str, &[u8], u32, &str); 5] = [
        (
            "/q1",
            b"#!/bin/sh\necho ok\nexec app 'unterminated\n",
            3,
            "unterminated single quote",
        ),
        (
            "/q2",
            b"#!/bin/sh\nexec \"app\n\n",
            2,
            "unterminated double quote",
        ),
        (
            "/if",
            b"#!/bin/sh\nif true; then\n  exec app\n",
            4,
            "`if` at line 2 without `fi`",
        ),
        (
            "/case",
            b"#!/bin/sh\ncase $1 in\n  a) exec app ;;\n",
            4,
            "`case` at line 2 without `esac`",
        ),
        (
            "/sub",
            b"#!/bin/sh\nexec $(which app\n",
            2,
            "unterminated command substitution",
        ),
    ];
    let mut entries = sh();
    for (path, body, _, _) in &cases {
        entries.push(E::Exe(&path[1..], body));
    }
    let fs = image(&entries);
    for (path, _, line, message) in cases {
        let trace = run(&fs, &config(&[path], &[], &[]));
        assert_eq!(trace.unknowns.len(), 1, "{path}: {:?}", trace.unknowns);
        let unknown = &trace.unknowns[0];
        assert_eq!(unknown.reason, Reason::ParseError);
        assert_eq!(
            unknown.from,
            Location::at(path, line),
            "{path}: {unknown:?}"
        );
        assert!(unknown.detail.starts_with(path), "{}", unknown.detail);
        assert!(unknown.detail.contains(message), "{}", unknown.detail);
        assert_eq!(trace.outcome, Outcome::Unresolved);
    }
}

#[test]
fn a_256_kib_line_and_deep_nesting_are_bounded() {
    let mut long = b"#!/bin/sh\necho ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 256 * 1024 - 40));
    long.extend(b"\nexec app\n");
    assert!(long.len() <= 256 * 1024);
    let nested = format!(
        "#!/bin/sh\n{}exec app\n{}",
        "{ ".repeat(5_000),
        " }".repeat(5_000)
    );
    let ifs = format!(
        "#!/bin/sh\n{}exec app\n{}",
        "if true; then\n".repeat(40),
        "fi\n".repeat(40)
    );
    let mut entries = sh();
    entries.push(E::Exe("long", &long));
    entries.push(E::Exe("nested", nested.as_bytes()));
    entries.push(E::Exe("ifs", ifs.as_bytes()));
    let fs = image(&entries);

    let trace = run(&fs, &config(&["/long"], &[], &[]));
    assert_eq!(terminals(&trace), s2(&[("executable", "/usr/bin/app")]));
    assert_eq!(trace.hops.last().unwrap().from, Location::at("/long", 3));

    let trace = run(&fs, &config(&["/nested"], &[], &[]));
    assert_eq!(unknowns(&trace), s2(&[("ParseError", "/nested:2")]));
    assert!(
        trace.unknowns[0]
            .detail
            .contains("nesting deeper than 48 levels")
    );

    // 40 nested ifs are fine, and every branch choice is recorded.
    let trace = run(&fs, &config(&["/ifs"], &[], &[]));
    assert_eq!(trace.outcome, Outcome::Resolved, "{:?}", trace.unknowns);
    assert_eq!(trace.hops.last().unwrap().choices.len(), 40);
}

#[test]
fn deep_chains_of_nested_scripts_do_not_overflow_the_stack() {
    // 70 scripts, each exec'ing the next from inside 40 nested ifs.
    let scripts: Vec<(String, Vec<u8>)> = (0..70)
        .map(|i| {
            let body = format!(
                "#!/bin/sh\n{}exec /chain/s{}\n{}",
                "if true; then\n".repeat(40),
                i + 1,
                "fi\n".repeat(40)
            );
            (format!("chain/s{i}"), body.into_bytes())
        })
        .collect();
    let mut entries = sh();
    entries.extend(scripts.iter().map(|(p, b)| E::Exe(p, b)));
    let fs = image(&entries);
    let trace = run(&fs, &config(&["/chain/s0"], &[], &[]));
    assert!(
        trace
            .unknowns
            .iter()
            .all(|u| u.reason == Reason::RecursionLimitReached),
        "{:?}",
        trace.unknowns
    );
    assert!(!trace.unknowns.is_empty());
}

#[test]
fn exponential_scripts_stop_at_the_work_budget() {
    // f0 calls f1 twice, f1 calls f2 twice, … 2^40 calls if nothing stopped it.
    let mut script = String::from("#!/bin/sh\n");
    for i in 0..40 {
        script.push_str(&format!("f{i}() {{ f{n}; f{n}; }}\n", n = i + 1));
    }
    script.push_str("f40() { :; }\nf0\nexec app\n");
    let mut entries = sh();
    entries.push(E::Exe("boom", script.as_bytes()));
    let fs = image(&entries);
    let trace = run(&fs, &config(&["/boom"], &[], &[]));
    assert!(
        trace
            .unknowns
            .iter()
            .any(|u| u.reason == Reason::RecursionLimitReached),
        "{:?}",
        trace.unknowns
    );
}

#[test]
fn symlinks_stay_inside_the_root() {
    let mut entries = sh();
    entries.extend([
        E::Link("loop1", "loop2"),
        E::Link("loop2", "loop1"),
        // Climbs above the root: resolves inside it.
        E::Link("usr/local/bin/escape", "../../../../../../usr/bin/app"),
        // Absolute target: the image's /etc, never the host's.
        E::Link("usr/local/bin/host", "/etc/host-tool"),
        E::Exe(
            "start",
            b"#!/bin/sh\ncd /srv\nexec ../../../../../../usr/bin/app\n",
        ),
    ]);
    let fs = image(&entries);
    let trace = run(&fs, &config(&["/loop1"], &[], &[]));
    assert_eq!(unknowns(&trace), s2(&[("CommandNotFound", "config")]));

    let trace = run(&fs, &config(&["escape"], &[], &[]));
    assert_eq!(terminals(&trace), s2(&[("executable", "/usr/bin/app")]));

    let trace = run(&fs, &config(&["/usr/local/bin/host"], &[], &[]));
    assert_eq!(unknowns(&trace), s2(&[("CommandNotFound", "config")]));
    assert!(trace.files.is_empty());

    let trace = run(&fs, &config(&["/start"], &[], &[]));
    assert_eq!(terminals(&trace), s2(&[("executable", "/usr/bin/app")]));
    assert!(
        trace
            .files
            .iter()
            .all(|f| f.starts_with('/') && !f.contains(".."))
    );

    let dots = run(&fs, &config(&["../../../bin/sh"], &[], &[]));
    assert_eq!(terminals(&dots), s2(&[("executable", "/bin/busybox")]));
    assert_eq!(dots.terminals[0].kind, TerminalKind::Executable);
}

#[test]
fn traces_are_deterministic() {
    let script = b"#!/bin/sh\n\
set -e\n\
for f in /entry.d/*; do . \"$f\"; done\n\
case \"$1\" in a) exec app a ;; b) exec \"$MISSING\" ;; esac\n\
exec \"$@\"\n";
    let mut entries = sh();
    entries.extend([
        E::Exe("start", script),
        E::File("entry.d/b.sh", 0o644, b"B=1\n"),
        E::File("entry.d/a.sh", 0o644, b"A=1\n"),
    ]);
    let fs = image(&entries);
    let config = config(&["/start"], &["app", "x"], &["K=V"]);
    let first = serde_json::to_vec(&run(&fs, &config)).unwrap();
    let second = serde_json::to_vec(&run(&fs, &config)).unwrap();
    assert_eq!(first, second);
    let trace: stella_entrytrace::Trace = serde_json::from_slice(&first).unwrap();
    assert_eq!(trace, run(&fs, &config));
    assert_eq!(trace.outcome, Outcome::PartiallyResolved);
    let json: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(json["outcome"], "partially-resolved");
    assert_eq!(json["hops"][0]["kind"], "entrypoint");
    assert_eq!(json["unknowns"][0]["reason"], "DynamicEnvironmentReference");
}
