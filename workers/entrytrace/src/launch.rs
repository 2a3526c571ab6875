//! Language launchers followed to the program they run: `java -jar`/`-cp Main`/`-m`,
//! `python -m module`/`python script.py` (and the module a pip console script imports),
//! `node script.js`/`node dir`.

use crate::image::{self, File};
use crate::model::{HopKind, Reason, TerminalKind};
use crate::walk::{Field, Inv, Tracer, texts};

/// `java` options followed by a value.
const JAVA_VALUE_OPTIONS: &[&str] = &[
    "-p",
    "--module-path",
    "--upgrade-module-path",
    "--add-modules",
    "--add-opens",
    "--add-exports",
    "--add-reads",
    "--patch-module",
    "--limit-modules",
    "--enable-native-access",
];

/// `node` options followed by a value.
const NODE_VALUE_OPTIONS: &[&str] = &[
    "-r",
    "--require",
    "--import",
    "--loader",
    "--experimental-loader",
    "--title",
    "-C",
    "--conditions",
    "--input-type",
    "--env-file",
    "--inspect-port",
];

/// What a Python command line runs.
enum PythonTarget {
    Module(Field),
    Script(usize),
    /// `-c`, `-` (stdin), `-h`, `-V` or nothing: the interpreter itself.
    Interpreter,
}

impl Tracer<'_> {
    /// `java [options] -jar X.jar | -cp PATH Main | -m module/Main`.
    pub(crate) fn java(&mut self, inv: &Inv<'_>, java: &File, argv: &[Field]) {
        let mut i = 1;
        while let Some(arg) = argv.get(i) {
            if arg.dynamic.is_some() {
                // `$JAVA_OPTS`: options.
                i += 1;
                continue;
            }
            let t = arg.text.as_str();
            match t {
                "-jar" => {
                    let Some(jar_arg) = argv.get(i + 1) else {
                        self.interpreter_alone(inv, java);
                        return;
                    };
                    let Some(jar) = self.script_arg(inv, jar_arg, "jar", Reason::JarNotFound)
                    else {
                        return;
                    };
                    self.terminal(
                        jar.resolved,
                        TerminalKind::Jar,
                        texts(&inv.argv),
                        Some(java.resolved.clone()),
                    );
                    return;
                }
                "-cp" | "-classpath" | "--class-path" => {
                    if let Some(classpath) = argv.get(i + 1) {
                        self.classpath(inv, classpath);
                    }
                    i += 2;
                }
                "-m" | "--module" => {
                    self.java_class(inv, java, argv.get(i + 1));
                    return;
                }
                "-version" | "--version" | "-help" | "--help" | "-h" | "-?" | "-showversion" => {
                    self.interpreter_alone(inv, java);
                    return;
                }
                _ if t.starts_with("--class-path=") => {
                    self.classpath(inv, &Field::lit(&t["--class-path=".len()..]));
                    i += 1;
                }
                _ if t.starts_with("--module=") => {
                    self.java_class(inv, java, Some(&Field::lit(&t["--module=".len()..])));
                    return;
                }
                _ if JAVA_VALUE_OPTIONS.contains(&t) => i += 2,
                _ if t.starts_with('-') || t.starts_with('@') => i += 1,
                _ => {
                    self.java_class(inv, java, Some(arg));
                    return;
                }
            }
        }
        self.interpreter_alone(inv, java);
    }

    fn java_class(&mut self, inv: &Inv<'_>, java: &File, class: Option<&Field>) {
        let Some(class) = class else {
            self.interpreter_alone(inv, java);
            return;
        };
        if !self.dynamic("java main class", class, &inv.from) {
            self.terminal(
                class.text.clone(),
                TerminalKind::JavaClass,
                texts(&inv.argv),
                Some(java.resolved.clone()),
            );
        }
    }

    /// Records the classpath entries present in the image (a trailing `/*` names the
    /// directory).
    fn classpath(&mut self, inv: &Inv<'_>, classpath: &Field) {
        if classpath.dynamic.is_some() {
            return;
        }
        for entry in classpath.text.split(':').filter(|e| !e.is_empty()) {
            let entry = entry.strip_suffix("/*").unwrap_or(entry);
            let Ok(abs) = inv.env.absolute(entry) else {
                continue;
            };
            if let Some(file) = image::file(self.fs, &abs) {
                self.touch(&file);
            } else if let Some(dir) = image::dir(self.fs, &abs) {
                self.touch_path(&dir);
            }
        }
    }

    /// `python [options] -m module | script.py | -c code`.
    pub(crate) fn python(&mut self, inv: &Inv<'_>, python: &File, argv: &[Field]) {
        match python_target(argv) {
            PythonTarget::Interpreter => self.interpreter_alone(inv, python),
            PythonTarget::Module(module) => {
                if self.dynamic("python module", &module, &inv.from) {
                    return;
                }
                let sys_path = self.sys_path(inv, python, &argv[0].text);
                let Some(found) = self.find_module(&module.text, &sys_path, true) else {
                    let detail = format!(
                        "python module `{}` is not in sys.path ({})",
                        module.text,
                        sys_path.join(":")
                    );
                    self.unknown(Reason::ModuleNotFound, detail, inv.from.clone());
                    return;
                };
                self.module_terminal(inv, python, found);
            }
            PythonTarget::Script(i) => {
                let arg = &argv[i];
                let Ok(abs) = inv.env.absolute(&arg.text) else {
                    // Reported by script_arg below.
                    self.script_arg(inv, arg, "python script", Reason::MissingFile);
                    return;
                };
                // `python app/` runs app/__main__.py.
                let target = match image::dir(self.fs, &abs) {
                    Some(dir) => Field::lit(format!("{dir}/__main__.py")),
                    None => arg.clone(),
                };
                let Some(script) =
                    self.script_arg(inv, &target, "python script", Reason::MissingFile)
                else {
                    return;
                };
                self.terminal(
                    script.resolved.clone(),
                    TerminalKind::PythonScript,
                    texts(&inv.argv),
                    Some(python.resolved.clone()),
                );
                self.console_script(inv, python, &script, &argv[0].text);
            }
        }
    }

    /// A pip console script (`from pkg.mod import main` … `sys.exit(main())`): the top-level
    /// module it imports is recorded as loaded by the interpreter.
    fn console_script(&mut self, inv: &Inv<'_>, python: &File, script: &File, invoked: &str) {
        let Some(bytes) = image::read(self.fs, &script.resolved) else {
            return;
        };
        let text = String::from_utf8_lossy(bytes);
        let Some((module, function, line)) = console_import(&text) else {
            return;
        };
        if !text.contains(&format!("sys.exit({function}(")) {
            return;
        }
        let top = module.split('.').next().unwrap_or(&module).to_string();
        let sys_path = self.sys_path(inv, python, invoked);
        let mut from = inv.clone();
        from.from = crate::model::Location::at(script.resolved.clone(), line);
        let Some(found) = self.find_module(&top, &sys_path, false) else {
            let detail = format!(
                "python module `{top}` imported by console script {} is not in sys.path ({})",
                script.resolved,
                sys_path.join(":")
            );
            self.unknown(Reason::ModuleNotFound, detail, from.from.clone());
            return;
        };
        self.module_terminal(&from, python, found);
    }

    /// A Python module the interpreter runs: the launcher hop to it (from where `inv` says),
    /// its file and package directory, and the terminal.
    fn module_terminal(&mut self, inv: &Inv<'_>, python: &File, found: Module) {
        self.hop(inv, HopKind::Launcher, texts(&inv.argv), &found.file);
        self.touch_path(&found.file);
        if let Some(package) = &found.package {
            self.touch_path(package);
        }
        self.terminal(
            found.file,
            TerminalKind::PythonModule,
            texts(&inv.argv),
            Some(python.resolved.clone()),
        );
    }

    /// Python's `sys.path` as far as the image shows: the working directory, `PYTHONPATH`,
    /// a virtualenv's site-packages next to the interpreter, then the system directories.
    fn sys_path(&mut self, inv: &Inv<'_>, python: &File, invoked: &str) -> Vec<String> {
        let major = if image::basename(&python.resolved).starts_with("python2")
            || image::basename(invoked).starts_with("python2")
        {
            "python2"
        } else {
            "python3"
        };
        let mut dirs: Vec<String> = Vec::new();
        if let Ok(cwd) = inv.env.cwd() {
            dirs.push(cwd.to_string());
        }
        if let Some(pythonpath) = inv.env.var("PYTHONPATH") {
            for entry in pythonpath.split(':').filter(|e| !e.is_empty()) {
                if let Ok(abs) = inv.env.absolute(entry) {
                    dirs.push(abs);
                }
            }
        }
        // A virtualenv: `…/bin/python` (often a symlink out of the venv) → `…/lib/python3*/site-packages`.
        let named = inv
            .env
            .absolute(invoked)
            .ok()
            .filter(|_| invoked.contains('/'))
            .unwrap_or_else(|| python.named.clone());
        for interpreter in [named.as_str(), python.resolved.as_str()] {
            let bin = image::dirname(interpreter);
            if image::basename(bin) == "bin" {
                let prefix = image::dirname(bin);
                for lib in self.versioned_dirs(&image::join(prefix, "lib"), major) {
                    dirs.push(format!("{lib}/site-packages"));
                }
            }
        }
        for lib in self.versioned_dirs("/usr/local/lib", major) {
            dirs.push(format!("{lib}/site-packages"));
            dirs.push(format!("{lib}/dist-packages"));
            dirs.push(lib);
        }
        dirs.push(format!("/usr/lib/{major}/dist-packages"));
        for lib in self.versioned_dirs("/usr/lib", major) {
            dirs.push(format!("{lib}/site-packages"));
            dirs.push(lib);
        }
        let mut seen = std::collections::BTreeSet::new();
        dirs.retain(|d| seen.insert(d.clone()) && image::dir(self.fs, d).is_some());
        dirs
    }

    /// `base/python3*` directories, sorted.
    fn versioned_dirs(&mut self, base: &str, prefix: &str) -> Vec<String> {
        let key = (base.to_string(), prefix.to_string());
        if let Some(dirs) = self.dir_cache.get(&key) {
            return dirs.clone();
        }
        let dirs: Vec<String> = image::children(self.fs, base)
            .into_iter()
            .filter(|name| {
                name.starts_with(prefix)
                    && name[prefix.len()..]
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.')
            })
            .map(|name| image::join(base, &name))
            .filter(|path| image::dir(self.fs, path).is_some())
            .collect();
        self.dir_cache.insert(key, dirs.clone());
        dirs
    }

    /// Finds `a.b.c` as `a/b/c/__main__.py` (when run with `-m`), `a/b/c/__init__.py` or
    /// `a/b/c.py` under the first `sys.path` directory that has it.
    fn find_module(&self, module: &str, sys_path: &[String], main: bool) -> Option<Module> {
        if module.is_empty() || !module.split('.').all(crate::shell::is_identifier) {
            return None;
        }
        let relative = module.replace('.', "/");
        let top = module.split('.').next().unwrap_or(module);
        for dir in sys_path {
            let base = image::join(dir, &relative);
            let package = (module.contains('.') || image::dir(self.fs, &base).is_some())
                .then(|| image::dir(self.fs, &image::join(dir, top)))
                .flatten();
            if image::dir(self.fs, &base).is_some() {
                let candidates: &[&str] = if main {
                    &["__main__.py", "__init__.py"]
                } else {
                    &["__init__.py"]
                };
                for name in candidates {
                    if let Some(file) = image::file(self.fs, &format!("{base}/{name}")) {
                        return Some(Module {
                            file: file.resolved,
                            package,
                        });
                    }
                }
            }
            if let Some(file) = image::file(self.fs, &format!("{base}.py")) {
                return Some(Module {
                    file: file.resolved,
                    package,
                });
            }
        }
        None
    }

    /// `node [options] script | dir`.
    pub(crate) fn node(&mut self, inv: &Inv<'_>, node: &File, argv: &[Field]) {
        let mut i = 1;
        let target = loop {
            let Some(arg) = argv.get(i) else {
                break None;
            };
            if arg.dynamic.is_some() && arg.text.starts_with('$') && i + 1 < argv.len() {
                // `$NODE_OPTIONS`-style options before the script.
                i += 1;
                continue;
            }
            let t = arg.text.as_str();
            match t {
                "-e" | "--eval" | "-p" | "--print" | "-i" | "--interactive" | "-" | "-v"
                | "--version" | "-h" | "--help" => break None,
                "--" => break argv.get(i + 1),
                _ if NODE_VALUE_OPTIONS.contains(&t) => i += 2,
                _ if t.starts_with('-') => i += 1,
                _ => break Some(arg),
            }
        };
        let Some(target) = target else {
            self.interpreter_alone(inv, node);
            return;
        };
        let Some(abs) = self.path_arg(inv, target, "node script") else {
            return;
        };
        let Some(script) = self.node_entry(&abs) else {
            let detail = format!(
                "node script {abs} is not in the image (tried {abs}, .js, .mjs, .cjs, \
                 package.json main, index.js)"
            );
            self.unknown(Reason::MissingFile, detail, inv.from.clone());
            return;
        };
        self.launched(inv, &script);
        self.terminal(
            script.resolved,
            TerminalKind::NodeScript,
            texts(&inv.argv),
            Some(node.resolved.clone()),
        );
    }

    /// Node's resolution of a main path: the file, with `.js`/`.mjs`/`.cjs`, or a directory's
    /// `package.json` `main` (when captured) or `index.js`.
    fn node_entry(&self, abs: &str) -> Option<File> {
        let as_file = |path: &str| {
            ["", ".js", ".mjs", ".cjs"]
                .iter()
                .find_map(|ext| image::file(self.fs, &format!("{path}{ext}")))
        };
        if let Some(file) = as_file(abs) {
            return Some(file);
        }
        image::dir(self.fs, abs)?;
        let main = image::read(self.fs, &format!("{abs}/package.json"))
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
            .and_then(|json| json.get("main")?.as_str().map(str::to_string));
        if let Some(main) = main {
            let path = image::join(abs, &main);
            if let Some(file) =
                as_file(&path).or_else(|| image::file(self.fs, &format!("{path}/index.js")))
            {
                return Some(file);
            }
        }
        image::file(self.fs, &format!("{abs}/index.js"))
    }
}

/// A Python module found in the image.
struct Module {
    /// The module file (absolute).
    file: String,
    /// The top-level package directory, when the module is in a package.
    package: Option<String>,
}

fn python_target(argv: &[Field]) -> PythonTarget {
    let mut i = 1;
    while let Some(arg) = argv.get(i) {
        if arg.dynamic.is_some() && arg.text.starts_with('$') && i + 1 < argv.len() {
            i += 1;
            continue;
        }
        let t = arg.text.as_str();
        if t == "-" {
            return PythonTarget::Interpreter;
        }
        if t == "--" {
            return match argv.get(i + 1) {
                Some(_) => PythonTarget::Script(i + 1),
                None => PythonTarget::Interpreter,
            };
        }
        if let Some(long) = t.strip_prefix("--") {
            match long {
                "check-hash-based-pycs" => i += 2,
                "help" | "version" | "help-env" | "help-xoptions" | "help-all" => {
                    return PythonTarget::Interpreter;
                }
                _ => i += 1,
            }
            continue;
        }
        if let Some(cluster) = t.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (k, c) in cluster.char_indices() {
                match c {
                    'c' | 'h' | 'V' | '?' => return PythonTarget::Interpreter,
                    'm' | 'W' | 'X' => {
                        let rest = &cluster[k + 1..];
                        let value = if rest.is_empty() {
                            i += 1;
                            argv.get(i).cloned()
                        } else {
                            Some(Field::lit(rest))
                        };
                        if c == 'm' {
                            return match value {
                                Some(module) => PythonTarget::Module(module),
                                None => PythonTarget::Interpreter,
                            };
                        }
                        break;
                    }
                    _ => {}
                }
            }
            i += 1;
            continue;
        }
        return PythonTarget::Script(i);
    }
    PythonTarget::Interpreter
}

/// The first `from a.b import c` of a script: (`a.b`, `c`, line).
fn console_import(text: &str) -> Option<(String, String, u32)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let rest = line.trim().strip_prefix("from ")?;
        let (module, names) = rest.split_once(" import ")?;
        let function = names.split([',', ' ']).next()?.trim();
        let module = module.trim();
        (!module.starts_with('.')
            && module.split('.').all(crate::shell::is_identifier)
            && crate::shell::is_identifier(function))
        .then(|| (module.to_string(), function.to_string(), i as u32 + 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Field> {
        words.iter().map(|w| Field::lit(*w)).collect()
    }

    #[test]
    fn python_command_lines() {
        assert!(matches!(
            python_target(&argv(&["python3", "-u", "-m", "app.main"])),
            PythonTarget::Module(m) if m.text == "app.main"
        ));
        assert!(matches!(
            python_target(&argv(&["python3", "-Bmhttp.server"])),
            PythonTarget::Module(m) if m.text == "http.server"
        ));
        assert!(matches!(
            python_target(&argv(&[
                "python", "-W", "ignore", "-X", "dev", "app.py", "-m", "x"
            ])),
            PythonTarget::Script(5)
        ));
        assert!(matches!(
            python_target(&argv(&["python", "-c", "print(1)"])),
            PythonTarget::Interpreter
        ));
        assert!(matches!(
            python_target(&argv(&["python"])),
            PythonTarget::Interpreter
        ));
    }

    #[test]
    fn console_scripts_name_their_module() {
        let script = "#!/usr/local/bin/python3.11\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n\
                      from gunicorn.app.wsgiapp import run\nif __name__ == '__main__':\n    \
                      sys.exit(run())\n";
        assert_eq!(
            console_import(script),
            Some(("gunicorn.app.wsgiapp".into(), "run".into(), 5))
        );
        assert_eq!(console_import("from . import x\n"), None);
    }
}
