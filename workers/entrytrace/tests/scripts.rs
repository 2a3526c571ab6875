//! Shell scripts: sourcing, exec, branches, functions, run-parts, variables, PATH, cd.

use crate::{E, ELF, config, hops, image, run, s2, s3, terminals, unknowns};
use stella_entrytrace::{Choice, Location, Outcome, Reason, TerminalKind};
use stella_layerfs::Filesystem;

/// busybox with `/bin/sh` linked to it, run-parts, env and a few programs.
fn base<'a>(extra: &[E<'a>]) -> Filesystem {
    let mut entries = vec![
        E::Dir("bin"),
        E::Exe("bin/busybox", ELF),
        E::Link("bin/sh", "busybox"),
        E::Exe("bin/run-parts", ELF),
        E::Dir("usr/bin"),
        E::Exe("usr/bin/env", ELF),
        E::Exe("usr/bin/python3.11", ELF),
        E::Link("usr/bin/python3", "python3.11"),
        E::Exe("usr/sbin/nginx", ELF),
        E::Exe("usr/bin/app", ELF),
    ];
    for e in extra {
        entries.push(match e {
            E::Exe(p, d) => E::Exe(p, d),
            E::File(p, m, d) => E::File(p, *m, d),
            E::Dir(p) => E::Dir(p),
            E::Link(p, t) => E::Link(p, t),
        });
    }
    image(&entries)
}

#[test]
fn entrypoint_sources_settings_and_execs_python_module() {
    let script = b"#!/bin/sh\n\
set -e\n\
# load settings\n\
. /opt/app/env.sh\n\
cd \"$APP_HOME\"\n\
exec python3 -m \"$APP_MODULE\"\n";
    let fs = base(&[
        E::Exe("docker-entrypoint.sh", script),
        E::File(
            "opt/app/env.sh",
            0o644,
            b"export APP_HOME=/srv\nAPP_MODULE=app\n",
        ),
        E::File("srv/app/__init__.py", 0o644, b""),
        E::File("srv/app/__main__.py", 0o644, b"print('hi')\n"),
    ]);
    let trace = run(&fs, &config(&["/docker-entrypoint.sh"], &[], &[]));
    assert_eq!(
        hops(&trace),
        s3(&[
            ("entrypoint", "config", "/docker-entrypoint.sh"),
            ("interpreter", "/docker-entrypoint.sh:1", "/bin/busybox"),
            ("source", "/docker-entrypoint.sh:4", "/opt/app/env.sh"),
            ("exec", "/docker-entrypoint.sh:6", "/usr/bin/python3.11"),
            (
                "launcher",
                "/docker-entrypoint.sh:6",
                "/srv/app/__main__.py"
            ),
        ])
    );
    assert_eq!(trace.hops[2].command, [".", "/opt/app/env.sh"]);
    assert_eq!(trace.hops[3].command, ["python3", "-m", "app"]);
    assert_eq!(trace.terminals.len(), 1);
    let terminal = &trace.terminals[0];
    assert_eq!(terminal.kind, TerminalKind::PythonModule);
    assert_eq!(terminal.path, "/srv/app/__main__.py");
    assert_eq!(terminal.interpreter.as_deref(), Some("/usr/bin/python3.11"));
    assert_eq!(trace.outcome, Outcome::Resolved);
    assert!(trace.unknowns.is_empty(), "{:?}", trace.unknowns);
    assert_eq!(
        trace.files,
        [
            "/bin/busybox",
            "/bin/sh",
            "/docker-entrypoint.sh",
            "/opt/app/env.sh",
            "/srv/app",
            "/srv/app/__main__.py",
            "/usr/bin/python3",
            "/usr/bin/python3.11",
        ]
    );
}

#[test]
fn exec_dollar_at_continues_into_cmd_and_run_parts_runs_its_entries() {
    let script = b"#!/bin/sh\n\
if [ \"$1\" = \"nginx\" ] || [ \"$1\" = \"nginx-debug\" ]; then\n\
    run-parts /docker-entrypoint.d\n\
fi\n\
exec \"$@\"\n";
    let fs = base(&[
        E::Exe("docker-entrypoint.sh", script),
        E::Exe(
            "docker-entrypoint.d/10-listen",
            b"#!/bin/sh\necho listening\n",
        ),
        E::Exe(
            "docker-entrypoint.d/20-envsubst.sh",
            b"#!/bin/sh\nexec /nope\n",
        ),
        E::File(
            "docker-entrypoint.d/30-disabled",
            0o644,
            b"#!/bin/sh\nexec /nope\n",
        ),
        E::Exe(
            "docker-entrypoint.d/40-tune",
            b"#!/bin/sh\nexec /usr/bin/app tune\n",
        ),
    ]);
    let trace = run(
        &fs,
        &config(
            &["/docker-entrypoint.sh"],
            &["nginx", "-g", "daemon off;"],
            &[],
        ),
    );
    assert_eq!(
        hops(&trace),
        s3(&[
            ("entrypoint", "config", "/docker-entrypoint.sh"),
            ("interpreter", "/docker-entrypoint.sh:1", "/bin/busybox"),
            ("call", "/docker-entrypoint.sh:3", "/bin/run-parts"),
            (
                "run-parts",
                "/docker-entrypoint.sh:3",
                "/docker-entrypoint.d/10-listen"
            ),
            (
                "interpreter",
                "/docker-entrypoint.d/10-listen:1",
                "/bin/busybox"
            ),
            (
                "run-parts",
                "/docker-entrypoint.sh:3",
                "/docker-entrypoint.d/40-tune"
            ),
            (
                "interpreter",
                "/docker-entrypoint.d/40-tune:1",
                "/bin/busybox"
            ),
            ("exec", "/docker-entrypoint.d/40-tune:2", "/usr/bin/app"),
            ("exec", "/docker-entrypoint.sh:5", "/usr/sbin/nginx"),
        ])
    );
    // The run-parts hop was decided inside the `then` branch of line 2.
    assert_eq!(
        trace.hops[2].choices,
        [Choice {
            at: Location::at("/docker-entrypoint.sh", 2),
            branch: "then".into()
        }]
    );
    assert_eq!(trace.hops[8].command, ["nginx", "-g", "daemon off;"]);
    assert_eq!(
        terminals(&trace),
        s2(&[
            ("script", "/docker-entrypoint.d/10-listen"),
            ("executable", "/usr/bin/app"),
            ("executable", "/usr/sbin/nginx"),
        ])
    );
    assert_eq!(trace.outcome, Outcome::Resolved);
}

#[test]
fn run_parts_without_executables_is_an_unknown() {
    let fs = base(&[
        E::Exe(
            "start.sh",
            b"#!/bin/sh\nrun-parts /etc/start.d\nrun-parts /etc/none\nexec app\n",
        ),
        E::File("etc/start.d/10-off", 0o644, b"#!/bin/sh\n"),
        E::Exe("etc/start.d/20-named.sh", b"#!/bin/sh\n"),
    ]);
    let trace = run(&fs, &config(&["/start.sh"], &[], &[]));
    assert_eq!(
        unknowns(&trace),
        s2(&[
            ("RunPartsEmpty", "/start.sh:2"),
            ("MissingFile", "/start.sh:3"),
        ])
    );
    assert!(
        trace.unknowns[0].detail.contains("/etc/start.d"),
        "{:?}",
        trace.unknowns
    );
    assert_eq!(terminals(&trace), s2(&[("executable", "/usr/bin/app")]));
    assert_eq!(trace.outcome, Outcome::PartiallyResolved);

    let off = stella_entrytrace::trace(
        &fs,
        &config(&["/start.sh"], &[], &[]),
        &stella_entrytrace::Options {
            follow_run_parts: false,
            ..Default::default()
        },
    );
    assert_eq!(unknowns(&off), s2(&[("MissingFile", "/start.sh:3")]));
}

#[test]
fn both_branches_of_case_and_if_are_followed_with_their_choices() {
    let script = b"#!/bin/bash\n\
case \"$1\" in\n\
  web)\n\
    exec /usr/bin/web-server ;;\n\
  worker|jobs)\n\
    exec /usr/bin/worker \"$@\" ;;\n\
  *)\n\
    if [ -n \"$DEBUG\" ]; then\n\
      exec /usr/bin/debug-shell\n\
    else\n\
      exec \"$@\"\n\
    fi ;;\n\
esac\n";
    let fs = base(&[
        E::Exe("bin/bash", ELF),
        E::Exe("entry", script),
        E::Exe("usr/bin/web-server", ELF),
        E::Exe("usr/bin/worker", ELF),
        E::Exe("usr/bin/debug-shell", ELF),
    ]);
    let trace = run(&fs, &config(&["/entry"], &["web"], &[]));
    assert_eq!(
        terminals(&trace),
        s2(&[
            ("executable", "/usr/bin/web-server"),
            ("executable", "/usr/bin/worker"),
            ("executable", "/usr/bin/debug-shell"),
        ])
    );
    // `exec "$@"` with CMD `web`: not a program in the image.
    assert_eq!(unknowns(&trace), s2(&[("CommandNotFound", "/entry:11")]));
    let worker = trace
        .hops
        .iter()
        .find(|h| h.path == "/usr/bin/worker")
        .unwrap();
    assert_eq!(worker.command, ["/usr/bin/worker", "web"]);
    assert_eq!(
        worker.choices,
        [Choice {
            at: Location::at("/entry", 5),
            branch: "case worker|jobs)".into()
        }]
    );
    let debug = trace
        .hops
        .iter()
        .find(|h| h.path == "/usr/bin/debug-shell")
        .unwrap();
    assert_eq!(
        debug.choices,
        [
            Choice {
                at: Location::at("/entry", 7),
                branch: "case *)".into()
            },
            Choice {
                at: Location::at("/entry", 8),
                branch: "then".into()
            }
        ]
    );
    assert_eq!(trace.outcome, Outcome::PartiallyResolved);
}

#[test]
fn functions_are_followed_into_their_body_with_their_arguments() {
    let script = b"#!/bin/sh\n\
start() {\n\
  exec /usr/bin/app --serve \"$@\"\n\
}\n\
\n\
start --port 80\n";
    let fs = base(&[E::Exe("start", script)]);
    let trace = run(&fs, &config(&["/start"], &["ignored"], &[]));
    let hop = trace.hops.last().unwrap();
    assert_eq!(hop.from.to_string(), "/start:3");
    assert_eq!(hop.command, ["/usr/bin/app", "--serve", "--port", "80"]);
    assert_eq!(trace.outcome, Outcome::Resolved);
}

#[test]
fn command_and_env_hand_over_to_the_program() {
    let script = b"#!/bin/sh\n\
command -v app >/dev/null || exit 1\n\
if [ -n \"$X\" ]; then\n\
  exec env -i PATH=/opt/bin LANG=C tool --flag\n\
fi\n\
command app \"$@\"\n";
    let fs = base(&[E::Exe("start", script), E::Exe("opt/bin/tool", ELF)]);
    let trace = run(&fs, &config(&["/start"], &["a"], &[]));
    assert_eq!(
        hops(&trace),
        s3(&[
            ("entrypoint", "config", "/start"),
            ("interpreter", "/start:1", "/bin/busybox"),
            ("exec", "/start:4", "/usr/bin/env"),
            ("exec", "/start:4", "/opt/bin/tool"),
            ("call", "/start:6", "/usr/bin/app"),
        ])
    );
    assert_eq!(trace.hops[3].command, ["tool", "--flag"]);
    assert_eq!(trace.hops[4].command, ["app", "a"]);
    assert_eq!(trace.outcome, Outcome::Resolved);
}

#[test]
fn busybox_sh_link_resolves_to_the_busybox_file() {
    let fs = base(&[]);
    let trace = run(&fs, &config(&["/bin/sh"], &[], &[]));
    assert_eq!(terminals(&trace), s2(&[("executable", "/bin/busybox")]));
    assert_eq!(trace.terminals[0].argv, ["/bin/sh"]);
    assert_eq!(trace.files, ["/bin/busybox", "/bin/sh"]);

    // The shell form of ENTRYPOINT: `sh -c '…'`.
    let shell_form = run(
        &fs,
        &config(&["/bin/sh", "-c", "exec nginx -g 'daemon off;'"], &[], &[]),
    );
    assert_eq!(
        hops(&shell_form),
        s3(&[
            ("entrypoint", "config", "/bin/busybox"),
            ("exec", "config", "/usr/sbin/nginx"),
        ])
    );
    assert_eq!(shell_form.hops[1].command, ["nginx", "-g", "daemon off;"]);

    // `busybox sh script`.
    let fs = base(&[E::File("opt/run.sh", 0o644, b"exec app serve\n")]);
    let applet = run(&fs, &config(&["busybox", "sh", "/opt/run.sh"], &[], &[]));
    assert_eq!(
        hops(&applet),
        s3(&[
            ("entrypoint", "config", "/bin/busybox"),
            ("launcher", "config", "/opt/run.sh"),
            ("exec", "/opt/run.sh:1", "/usr/bin/app"),
        ])
    );
}

#[test]
fn path_set_in_the_script_cd_and_relative_paths() {
    let script = b"#!/bin/sh\n\
PATH=/opt/tools/bin:$PATH\n\
export PATH\n\
server --check\n\
cd /srv/www\n\
./run.sh \"$@\"\n";
    let fs = base(&[
        E::Exe("start", script),
        E::Exe("opt/tools/bin/server", ELF),
        E::Exe("srv/www/run.sh", b"#!/bin/sh\nexec server\n"),
    ]);
    let trace = run(&fs, &config(&["/start"], &[], &[]));
    assert_eq!(
        hops(&trace),
        s3(&[
            ("entrypoint", "config", "/start"),
            ("interpreter", "/start:1", "/bin/busybox"),
            ("call", "/start:6", "/srv/www/run.sh"),
            ("interpreter", "/srv/www/run.sh:1", "/bin/busybox"),
            // PATH was exported: the child finds the same server.
            ("exec", "/srv/www/run.sh:2", "/opt/tools/bin/server"),
        ])
    );
    assert_eq!(trace.outcome, Outcome::Resolved);
}

#[test]
fn variables_from_defaults_env_and_unknowns() {
    let script = b"#!/bin/sh\n\
if [ \"$MODE\" = a ]; then\n\
  exec ${SERVER:-/usr/bin/app} --default\n\
elif [ \"$MODE\" = b ]; then\n\
  exec \"$APP_BIN\" --from-env\n\
elif [ \"$MODE\" = c ]; then\n\
  exec \"$UNSET_BIN\"\n\
elif [ \"$MODE\" = d ]; then\n\
  exec \"$(which app)\"\n\
else\n\
  SELF=$(id -u)\n\
  exec /usr/bin/$SELF\n\
fi\n";
    let fs = base(&[
        E::Exe("start", script),
        E::Exe("usr/local/bin/from-env", ELF),
    ]);
    let trace = run(
        &fs,
        &config(
            &["/start"],
            &[],
            &["APP_BIN=/usr/local/bin/from-env", "PATH=/usr/bin:/bin"],
        ),
    );
    assert_eq!(
        terminals(&trace),
        s2(&[
            ("executable", "/usr/bin/app"),
            ("executable", "/usr/local/bin/from-env"),
        ])
    );
    assert_eq!(
        unknowns(&trace),
        s2(&[
            ("DynamicEnvironmentReference", "/start:7"),
            ("DynamicEnvironmentReference", "/start:9"),
            ("DynamicEnvironmentReference", "/start:12"),
        ])
    );
    assert_eq!(
        trace.unknowns[0].detail,
        "command `$UNSET_BIN` depends on `$UNSET_BIN`, which is not set in the image"
    );
    assert_eq!(
        trace.unknowns[1].detail,
        "command `$(which app)` depends on `$(which app)`, whose value is known only at run time"
    );
    assert!(
        trace.unknowns[2]
            .detail
            .contains("is assigned `$(id -u)` at /start:11"),
        "{}",
        trace.unknowns[2].detail
    );
    assert_eq!(trace.outcome, Outcome::PartiallyResolved);
}

#[test]
fn missing_command_and_missing_sourced_file() {
    let script =
        b"#!/bin/sh\n. /etc/app/missing.conf\nsource helpers.sh\nexec not-installed --flag\n";
    let fs = base(&[E::Exe("start", script)]);
    let trace = run(&fs, &config(&["/start"], &[], &[]));
    assert_eq!(
        unknowns(&trace),
        s2(&[
            ("MissingFile", "/start:2"),
            ("MissingFile", "/start:3"),
            ("CommandNotFound", "/start:4"),
        ])
    );
    assert_eq!(
        trace.unknowns[0].detail,
        "sourced file /etc/app/missing.conf is not in the image"
    );
    assert!(
        trace.unknowns[2]
            .detail
            .starts_with("`not-installed` is not an executable file")
    );
    assert_eq!(trace.outcome, Outcome::Unresolved);

    let none = run(&fs, &config(&[], &[], &[]));
    assert_eq!(unknowns(&none), s2(&[("CommandNotFound", "config")]));
    assert_eq!(none.outcome, Outcome::Unresolved);
}

#[test]
fn self_sourcing_and_deep_chains_hit_the_recursion_limit() {
    let fs = base(&[E::Exe("loop.sh", b"#!/bin/sh\n. /loop.sh\nexec app\n")]);
    let trace = run(&fs, &config(&["/loop.sh"], &[], &[]));
    assert_eq!(
        unknowns(&trace),
        s2(&[("RecursionLimitReached", "/loop.sh:2")])
    );
    assert!(trace.unknowns[0].detail.contains("already being read"));
    assert_eq!(terminals(&trace), s2(&[("executable", "/usr/bin/app")]));

    // A function calling itself.
    let fs = base(&[E::Exe("f.sh", b"#!/bin/sh\nf() { f; }\nf\n")]);
    let trace = run(&fs, &config(&["/f.sh"], &[], &[]));
    assert_eq!(
        unknowns(&trace),
        s2(&[("RecursionLimitReached", "/f.sh:2")])
    );

    // 100 scripts each exec'ing the next: stops at depth 64.
    let scripts: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| {
            (
                format!("chain/s{i}"),
                format!("#!/bin/sh\nexec /chain/s{}\n", i + 1).into_bytes(),
            )
        })
        .collect();
    let mut entries: Vec<E<'_>> = scripts.iter().map(|(p, b)| E::Exe(p, b)).collect();
    entries.push(E::Exe("chain/s100", ELF));
    let fs = base(&entries);
    let trace = run(&fs, &config(&["/chain/s0"], &[], &[]));
    assert_eq!(trace.unknowns.len(), 1);
    assert_eq!(trace.unknowns[0].reason, Reason::RecursionLimitReached);
    assert!(trace.terminals.is_empty());
    assert_eq!(trace.outcome, Outcome::Unresolved);
}

#[test]
fn re_exec_idiom_follows_every_argument_list() {
    // redis' docker-entrypoint.sh, shortened.
    let script = b"#!/bin/sh\n\
set -e\n\
if [ \"${1#-}\" != \"$1\" ]; then\n\
  set -- redis-server \"$@\"\n\
fi\n\
if [ \"$1\" = 'redis-server' -a \"$(id -u)\" = '0' ]; then\n\
  exec gosu redis \"$0\" \"$@\"\n\
fi\n\
exec \"$@\"\n";
    let fs = base(&[
        E::Exe("usr/local/bin/docker-entrypoint.sh", script),
        E::Exe("usr/local/bin/gosu", ELF),
        E::Exe("usr/local/bin/redis-server", ELF),
    ]);
    let trace = run(
        &fs,
        &config(&["docker-entrypoint.sh"], &["redis-server"], &[]),
    );
    assert_eq!(trace.outcome, Outcome::Resolved, "{:?}", trace.unknowns);
    // `${1#-}` is not evaluated, so the `set -- redis-server "$@"` branch is followed too.
    let argvs: Vec<Vec<&str>> = trace
        .terminals
        .iter()
        .filter(|t| t.path == "/usr/local/bin/redis-server")
        .map(|t| t.argv.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        argvs,
        [vec!["redis-server"], vec!["redis-server", "redis-server"]]
    );
    assert_eq!(trace.terminals.len(), 2);
    // `${1#-}` is not evaluated: both argument lists are possible and followed, each a choice.
    let options = run(
        &fs,
        &config(&["docker-entrypoint.sh"], &["--port", "6380"], &[]),
    );
    let argvs: Vec<&Vec<String>> = options.terminals.iter().map(|t| &t.argv).collect();
    assert_eq!(
        argvs,
        [&vec![
            "redis-server".to_string(),
            "--port".into(),
            "6380".into()
        ]]
    );
    assert_eq!(
        unknowns(&options),
        s2(&[("CommandNotFound", "/usr/local/bin/docker-entrypoint.sh:9")])
    );
    let exec = options.hops.last().unwrap();
    assert_eq!(
        exec.choices,
        [Choice {
            at: Location::at("/usr/local/bin/docker-entrypoint.sh", 9),
            branch: "argv alternative 2 of 2".into()
        }]
    );
    let gosu = trace
        .hops
        .iter()
        .find(|h| h.path == "/usr/local/bin/gosu")
        .unwrap();
    assert_eq!(
        gosu.from.to_string(),
        "/usr/local/bin/docker-entrypoint.sh:7"
    );
}

#[test]
fn line_numbers_are_exact_across_continuations_heredocs_and_quotes() {
    let script = b"#!/bin/sh\n\
cat <<EOF >/etc/app.conf\n\
exec /not/a/command\n\
EOF\n\
echo 'multi\n\
line' \\\n\
  continued\n\
# exec /commented/out\n\
exec \\\n\
  /usr/bin/app\n";
    let fs = base(&[E::Exe("start", script)]);
    let trace = run(&fs, &config(&["/start"], &[], &[]));
    assert_eq!(trace.hops.last().unwrap().from, Location::at("/start", 9));
    assert_eq!(trace.outcome, Outcome::Resolved, "{:?}", trace.unknowns);
}

#[test]
fn for_loops_over_globs_and_background_commands() {
    let script = b"#!/bin/sh\n\
for f in /entry.d/*.sh; do\n\
  . \"$f\"\n\
done\n\
/usr/bin/app --sidecar &\n\
wait\n";
    let fs = base(&[
        E::Exe("start", script),
        E::File("entry.d/a.sh", 0o644, b"A=1\n"),
        E::File("entry.d/b.sh", 0o644, b"B=1\n"),
        E::File("entry.d/c.txt", 0o644, b""),
    ]);
    let trace = run(&fs, &config(&["/start"], &[], &[]));
    assert_eq!(
        hops(&trace)[2..],
        s3(&[
            ("source", "/start:3", "/entry.d/a.sh"),
            ("source", "/start:3", "/entry.d/b.sh"),
            ("call", "/start:5", "/usr/bin/app"),
        ])
    );
    assert_eq!(trace.outcome, Outcome::Resolved);
}

#[test]
fn default_idioms_and_literal_eval() {
    let script = b"#!/bin/sh\n\
[ -n \"$APP_DIR\" ] || APP_DIR=/opt/app\n\
: ${RUNNER:=/usr/bin/app}\n\
if [ -n \"$DEBUG\" ]; then\n\
  eval \"$DEBUG_COMMAND\"\n\
fi\n\
eval exec \"$RUNNER\" --dir \"$APP_DIR\"\n";
    let fs = base(&[E::Exe("start", script)]);
    let trace = run(&fs, &config(&["/start"], &[], &[]));
    let last = trace.hops.last().unwrap();
    assert_eq!(last.from.to_string(), "/start:7");
    assert_eq!(last.command, ["/usr/bin/app", "--dir", "/opt/app"]);
    assert_eq!(
        unknowns(&trace),
        s2(&[("DynamicEnvironmentReference", "/start:5")])
    );
}
