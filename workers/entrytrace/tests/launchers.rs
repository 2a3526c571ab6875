//! Language launchers: java, python, node, wrappers.

use crate::{E, ELF, config, hops, image, run, s2, s3, terminals, unknowns};
use stella_entrytrace::{Outcome, Reason, TerminalKind};

#[test]
fn java_jar_class_and_missing_jar() {
    let script = b"#!/bin/sh\n\
JAVA_OPTS=\"-Xmx512m -Dfile.encoding=UTF-8\"\n\
case \"$1\" in\n\
  jar) exec java $JAVA_OPTS $EXTRA_OPTS -jar /app/app.jar --server.port=8080 ;;\n\
  class) exec java -cp '/app/lib/*:/app/classes' com.example.Main ;;\n\
  gone) exec java -jar /app/missing.jar ;;\n\
esac\n";
    let fs = image(&[
        E::Exe("bin/sh", ELF),
        E::Exe("opt/java/openjdk/bin/java", ELF),
        E::Link("usr/bin/java", "/opt/java/openjdk/bin/java"),
        E::Exe("entry.sh", script),
        E::File("app/app.jar", 0o644, b"PK\x03\x04"),
        E::File("app/lib/dep.jar", 0o644, b"PK\x03\x04"),
        E::Dir("app/classes"),
    ]);
    let trace = run(&fs, &config(&["/entry.sh"], &["jar"], &[]));
    assert_eq!(
        terminals(&trace),
        s2(&[("jar", "/app/app.jar"), ("java-class", "com.example.Main")])
    );
    let jar = &trace.terminals[0];
    assert_eq!(
        jar.interpreter.as_deref(),
        Some("/opt/java/openjdk/bin/java")
    );
    assert_eq!(
        jar.argv,
        [
            "java",
            "-Xmx512m",
            "-Dfile.encoding=UTF-8",
            "$EXTRA_OPTS",
            "-jar",
            "/app/app.jar",
            "--server.port=8080"
        ]
    );
    assert_eq!(unknowns(&trace), s2(&[("JarNotFound", "/entry.sh:6")]));
    assert_eq!(
        trace.unknowns[0].detail,
        "jar /app/missing.jar is not in the image"
    );
    assert!(trace.files.contains(&"/app/app.jar".to_string()));
    assert!(trace.files.contains(&"/app/lib".to_string()));
    assert!(trace.files.contains(&"/app/classes".to_string()));
    assert!(trace.files.contains(&"/usr/bin/java".to_string()));
    assert_eq!(trace.outcome, Outcome::PartiallyResolved);
}

#[test]
fn python_modules_scripts_venvs_and_missing_modules() {
    let fs = image(&[
        E::Exe("usr/local/bin/python3.12", ELF),
        E::Link("usr/local/bin/python3", "python3.12"),
        E::Link("usr/local/bin/python", "python3"),
        E::File("usr/local/lib/python3.12/http/__init__.py", 0o644, b""),
        E::File("usr/local/lib/python3.12/http/server.py", 0o644, b""),
        E::File(
            "usr/local/lib/python3.12/site-packages/celery/__init__.py",
            0o644,
            b"",
        ),
        E::File(
            "usr/local/lib/python3.12/site-packages/celery/__main__.py",
            0o644,
            b"",
        ),
        E::Link("opt/venv/bin/python", "/usr/local/bin/python3"),
        E::File("opt/venv/lib/python3.12/site-packages/myapp.py", 0o644, b""),
        E::File("srv/manage.py", 0o644, b"import django\n"),
        E::File("extra/plugin/__init__.py", 0o644, b""),
    ]);
    let terminal = |argv: &[&str], env: &[&str], dir: Option<&str>| {
        let mut c = config(argv, &[], env);
        c.working_dir = dir.map(str::to_string);
        run(&fs, &c)
    };
    let dotted = terminal(&["python3", "-u", "-m", "http.server", "8000"], &[], None);
    assert_eq!(
        terminals(&dotted),
        s2(&[("python-module", "/usr/local/lib/python3.12/http/server.py")])
    );
    assert!(
        dotted
            .files
            .contains(&"/usr/local/lib/python3.12/http".to_string())
    );
    let package = terminal(&["python", "-m", "celery", "worker"], &[], None);
    assert_eq!(
        terminals(&package),
        s2(&[(
            "python-module",
            "/usr/local/lib/python3.12/site-packages/celery/__main__.py"
        )])
    );
    let venv = terminal(&["/opt/venv/bin/python", "-m", "myapp"], &[], None);
    assert_eq!(
        terminals(&venv),
        s2(&[(
            "python-module",
            "/opt/venv/lib/python3.12/site-packages/myapp.py"
        )])
    );
    let pythonpath = terminal(&["python3", "-m", "plugin"], &["PYTHONPATH=/extra"], None);
    assert_eq!(
        terminals(&pythonpath),
        s2(&[("python-module", "/extra/plugin/__init__.py")])
    );
    let script = terminal(&["python", "manage.py", "runserver"], &[], Some("/srv"));
    assert_eq!(
        terminals(&script),
        s2(&[("python-script", "/srv/manage.py")])
    );
    assert_eq!(
        hops(&script),
        s3(&[
            ("entrypoint", "config", "/usr/local/bin/python3.12"),
            ("launcher", "config", "/srv/manage.py"),
        ])
    );
    let missing = terminal(&["python3", "-m", "nothere"], &[], None);
    assert_eq!(unknowns(&missing), s2(&[("ModuleNotFound", "config")]));
    assert!(
        missing.unknowns[0]
            .detail
            .starts_with("python module `nothere` is not in sys.path (/:")
    );
    assert_eq!(missing.outcome, Outcome::Unresolved);
    let inline = terminal(&["python3", "-c", "print(1)"], &[], None);
    assert_eq!(
        terminals(&inline),
        s2(&[("executable", "/usr/local/bin/python3.12")])
    );
}

#[test]
fn console_scripts_and_env_shebangs_record_the_imported_module() {
    let gunicorn = b"#!/usr/bin/env python3\n\
# -*- coding: utf-8 -*-\n\
import re\n\
import sys\n\
from gunicorn.app.wsgiapp import run\n\
if __name__ == '__main__':\n\
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n\
    sys.exit(run())\n";
    let fs = image(&[
        E::Exe("usr/bin/env", ELF),
        E::Exe("usr/local/bin/python3.11", ELF),
        E::Link("usr/local/bin/python3", "python3.11"),
        E::Exe("usr/local/bin/gunicorn", gunicorn),
        E::File(
            "usr/local/lib/python3.11/site-packages/gunicorn/__init__.py",
            0o644,
            b"",
        ),
        E::Exe(
            "usr/local/bin/broken",
            b"#!/usr/bin/env python3\nfrom nopkg.cli import main\nsys.exit(main())\n",
        ),
    ]);
    let trace = run(&fs, &config(&["gunicorn", "app:app"], &[], &[]));
    assert_eq!(
        hops(&trace),
        s3(&[
            ("entrypoint", "config", "/usr/local/bin/gunicorn"),
            ("interpreter", "/usr/local/bin/gunicorn:1", "/usr/bin/env"),
            (
                "interpreter",
                "/usr/local/bin/gunicorn:1",
                "/usr/local/bin/python3.11"
            ),
            (
                "launcher",
                "/usr/local/bin/gunicorn:5",
                "/usr/local/lib/python3.11/site-packages/gunicorn/__init__.py"
            ),
        ])
    );
    assert_eq!(
        terminals(&trace),
        s2(&[
            ("python-script", "/usr/local/bin/gunicorn"),
            (
                "python-module",
                "/usr/local/lib/python3.11/site-packages/gunicorn/__init__.py"
            ),
        ])
    );
    assert_eq!(
        trace.terminals[0].argv,
        ["python3", "/usr/local/bin/gunicorn", "app:app"]
    );
    assert!(
        trace
            .files
            .contains(&"/usr/local/lib/python3.11/site-packages/gunicorn".to_string())
    );
    assert_eq!(trace.outcome, Outcome::Resolved);

    let broken = run(&fs, &config(&["broken"], &[], &[]));
    assert_eq!(
        unknowns(&broken),
        s2(&[("ModuleNotFound", "/usr/local/bin/broken:2")])
    );
    assert_eq!(broken.outcome, Outcome::PartiallyResolved);
}

#[test]
fn node_scripts_directories_and_missing_scripts() {
    let script = b"#!/bin/sh\nexec node --enable-source-maps server.js\n";
    let fs = image(&[
        E::Exe("bin/sh", ELF),
        E::Exe("usr/local/bin/node", ELF),
        E::Exe("docker-entrypoint.sh", script),
        E::File("srv/server.js", 0o644, b"require('http')\n"),
        E::File(
            "srv/api/package.json",
            0o644,
            br#"{"name":"api","main":"lib/start"}"#,
        ),
        E::File("srv/api/lib/start.js", 0o644, b""),
        E::File("srv/web/index.js", 0o644, b""),
    ]);
    let mut c = config(&["/docker-entrypoint.sh"], &[], &[]);
    c.working_dir = Some("/srv".into());
    let trace = run(&fs, &c);
    assert_eq!(
        hops(&trace)[2..],
        s3(&[
            ("exec", "/docker-entrypoint.sh:2", "/usr/local/bin/node"),
            ("launcher", "/docker-entrypoint.sh:2", "/srv/server.js"),
        ])
    );
    assert_eq!(terminals(&trace), s2(&[("node-script", "/srv/server.js")]));
    assert_eq!(
        trace.terminals[0].interpreter.as_deref(),
        Some("/usr/local/bin/node")
    );

    let dir = |arg: &str| run(&fs, &config(&["node", arg], &[], &[]));
    assert_eq!(
        terminals(&dir("/srv/api")),
        s2(&[("node-script", "/srv/api/lib/start.js")])
    );
    assert_eq!(
        terminals(&dir("/srv/web")),
        s2(&[("node-script", "/srv/web/index.js")])
    );
    assert_eq!(
        terminals(&dir("/srv/server")),
        s2(&[("node-script", "/srv/server.js")])
    );
    let missing = dir("/srv/gone.js");
    assert_eq!(unknowns(&missing), s2(&[("MissingFile", "config")]));
    assert_eq!(missing.unknowns[0].reason, Reason::MissingFile);
}

#[test]
fn init_wrappers_hand_over_to_their_program() {
    let fs = image(&[
        E::Exe("usr/bin/tini", ELF),
        E::Exe("usr/local/bin/gosu", ELF),
        E::Exe("usr/bin/app", ELF),
    ]);
    let trace = run(
        &fs,
        &config(
            &["tini", "-g", "--"],
            &["gosu", "nobody", "app", "serve"],
            &[],
        ),
    );
    assert_eq!(
        hops(&trace),
        s3(&[
            ("entrypoint", "config", "/usr/bin/tini"),
            ("launcher", "config", "/usr/local/bin/gosu"),
            ("launcher", "config", "/usr/bin/app"),
        ])
    );
    assert_eq!(trace.terminals.len(), 1);
    assert_eq!(trace.terminals[0].kind, TerminalKind::Executable);
    assert_eq!(trace.terminals[0].argv, ["app", "serve"]);
}

#[test]
fn scripts_of_other_languages_are_script_terminals() {
    let fs = image(&[
        E::Exe("usr/bin/perl", ELF),
        E::Exe(
            "usr/local/bin/report",
            b"#!/usr/bin/perl -w\nprint \"hi\";\n",
        ),
    ]);
    let trace = run(&fs, &config(&["report", "--daily"], &[], &[]));
    assert_eq!(
        terminals(&trace),
        s2(&[("script", "/usr/local/bin/report")])
    );
    assert_eq!(
        trace.terminals[0].interpreter.as_deref(),
        Some("/usr/bin/perl")
    );
    assert_eq!(
        trace.terminals[0].argv,
        ["/usr/bin/perl", "-w", "/usr/local/bin/report", "--daily"]
    );
}
