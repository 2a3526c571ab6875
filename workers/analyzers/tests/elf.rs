//! Native ELF analysis against binaries gcc builds here, checked against `readelf`'s own
//! answer; skipped with a message where gcc or readelf is absent.

use std::path::Path;
use std::process::Command;
use stella_analyzers::{Ecosystem, elf};

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: {tool} not found");
    }
    ok
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `readelf -d`'s `NEEDED` names, in order.
fn readelf_needed(file: &Path) -> Vec<String> {
    run(Command::new("readelf").arg("-dW").arg(file))
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect()
}

/// `readelf -n`'s GNU build-id.
fn readelf_build_id(file: &Path) -> Option<String> {
    run(Command::new("readelf").arg("-nW").arg(file))
        .lines()
        .find_map(|l| Some(l.split_once("Build ID: ")?.1.trim().to_string()))
}

/// `readelf -V`'s version needs: (file, versions).
fn readelf_version_needs(file: &Path) -> Vec<(String, Vec<String>)> {
    let text = run(Command::new("readelf").arg("-VW").arg(file));
    let mut needs: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_needs = false;
    for line in text.lines() {
        if line.starts_with("Version needs section") {
            in_needs = true;
            continue;
        }
        if in_needs && line.starts_with("Version") {
            in_needs = false;
        }
        if !in_needs {
            continue;
        }
        if let Some((_, rest)) = line.split_once("File: ") {
            needs.push((rest.split_whitespace().next().unwrap().to_string(), vec![]));
        } else if let Some((_, rest)) = line.split_once("Name: ") {
            let name = rest.split_whitespace().next().unwrap().to_string();
            needs.last_mut().unwrap().1.push(name);
        }
    }
    for (_, versions) in &mut needs {
        versions.sort();
        versions.dedup();
    }
    needs.sort();
    needs
}

/// An image root with an application linked through `$ORIGIN`, a library, a binary without a
/// build-id that needs a library the image lacks, the host's libc under Debian's multiarch
/// directory found through `ld.so.conf`, and `/lib` a symlink to `usr/lib` (usrmerge).
fn build_root() -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let s = src.path();
    write(
        &s.join("greet.c"),
        "#include <stdio.h>\nvoid greet(void) { puts(\"hi\"); }\n",
    );
    write(&s.join("ghost.c"), "int ghost(void) { return 1; }\n");
    write(
        &s.join("main.c"),
        "void greet(void);\nint main(void) { greet(); return 0; }\n",
    );
    write(
        &s.join("lonely.c"),
        "int ghost(void);\nint main(void) { return ghost(); }\n",
    );
    let gcc = |args: &[&str]| run(Command::new("gcc").current_dir(s).args(args));
    gcc(&[
        "-g",
        "-shared",
        "-fPIC",
        "-Wl,-soname,libgreet.so.1",
        "-Wl,--build-id=sha1",
        "-o",
        "libgreet.so.1",
        "greet.c",
    ]);
    std::os::unix::fs::symlink("libgreet.so.1", s.join("libgreet.so")).unwrap();
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libghost.so.1",
        "-o",
        "libghost.so",
        "ghost.c",
    ]);
    gcc(&[
        "-g",
        "-o",
        "app",
        "main.c",
        "-L.",
        "-lgreet",
        "-Wl,-rpath,$ORIGIN/../lib",
        "-Wl,--build-id=sha1",
    ]);
    gcc(&[
        "-o",
        "lonely",
        "lonely.c",
        "-L.",
        "-lghost",
        "-Wl,--build-id=none",
    ]);
    let r = root.path();
    for dir in [
        "opt/app/bin",
        "opt/app/lib",
        "usr/lib/x86_64-linux-gnu",
        "usr/bin",
        "etc/ld.so.conf.d",
    ] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
    std::fs::copy(s.join("app"), r.join("opt/app/bin/app")).unwrap();
    std::fs::copy(s.join("libgreet.so.1"), r.join("opt/app/lib/libgreet.so.1")).unwrap();
    std::fs::copy(s.join("lonely"), r.join("usr/bin/lonely")).unwrap();
    let libc = run(Command::new("gcc").arg("-print-file-name=libc.so.6"));
    std::fs::copy(
        std::fs::canonicalize(libc.trim()).unwrap(),
        r.join("usr/lib/x86_64-linux-gnu/libc.so.6"),
    )
    .unwrap();
    write(
        &r.join("etc/ld.so.conf"),
        "include /etc/ld.so.conf.d/*.conf\n",
    );
    write(
        &r.join("etc/ld.so.conf.d/x86_64-linux-gnu.conf"),
        "# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n",
    );
    root
}

#[test]
fn elf_facts_match_readelf_and_libraries_resolve_as_the_loader_would() {
    if !cfg!(target_arch = "x86_64") || !have("gcc") || !have("readelf") {
        return;
    }
    let root = build_root();
    let r = root.path();
    let fs = super::filesystem(r);
    let analysis = stella_analyzers::analyze(&fs);
    let objects = &analysis.binaries.objects;
    for path in [
        "/opt/app/bin/app",
        "/opt/app/lib/libgreet.so.1",
        "/usr/bin/lonely",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ] {
        let file = r.join(path.trim_start_matches('/'));
        let facts = objects
            .get(path)
            .unwrap_or_else(|| panic!("{path} not read"));
        assert_eq!(facts.needed, readelf_needed(&file), "{path}");
        assert_eq!(facts.build_id, readelf_build_id(&file), "{path}");
        let needs: Vec<(String, Vec<String>)> = facts
            .version_needs
            .iter()
            .map(|n| (n.file.clone(), n.versions.clone()))
            .collect();
        assert_eq!(needs, readelf_version_needs(&file), "{path}");
    }
    let app = &objects["/opt/app/bin/app"];
    assert_eq!(app.kind, "pie-executable");
    assert_eq!(app.rpath.len() + app.runpath.len(), 1);
    assert_eq!(
        app.interpreter.as_deref(),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    assert_eq!(
        objects["/opt/app/lib/libgreet.so.1"].soname.as_deref(),
        Some("libgreet.so.1")
    );
    assert_eq!(objects["/opt/app/lib/libgreet.so.1"].kind, "shared-object");
    // gcc -g: the compile unit says who compiled it and in what language.
    let unit = &app.compile_units[0];
    assert!(
        unit.producer.as_deref().unwrap().starts_with("GNU C"),
        "{unit:?}"
    );
    assert!(
        unit.language.as_deref().unwrap().starts_with("DW_LANG_C"),
        "{unit:?}"
    );
    assert!(objects["/usr/bin/lonely"].compile_units.is_empty());

    // $ORIGIN/../lib, then ld.so.conf's include through the /lib symlink.
    assert_eq!(
        analysis.binaries.links["/opt/app/bin/app"],
        [
            "/opt/app/lib/libgreet.so.1",
            "/usr/lib/x86_64-linux-gnu/libc.so.6"
        ]
    );
    assert_eq!(
        analysis.binaries.unresolved["/usr/bin/lonely"],
        ["libghost.so.1"]
    );
    assert_eq!(
        analysis.binaries.closure(["/opt/app/bin/app"]),
        [
            "/opt/app/bin/app",
            "/opt/app/lib/libgreet.so.1",
            "/usr/lib/x86_64-linux-gnu/libc.so.6"
        ]
        .map(String::from)
        .into()
    );

    // Nothing owns them: each is a bin:{sha256} component, linked to what it needs.
    let bins: Vec<_> = analysis
        .packages
        .iter()
        .filter(|p| p.ecosystem == Ecosystem::Binary)
        .collect();
    assert_eq!(bins.len(), 4);
    let purl_of = |path: &str| {
        let file = std::fs::read(r.join(path)).unwrap();
        format!("bin:{}", elf::read(&file).unwrap().sha256)
    };
    let app_purl = purl_of("opt/app/bin/app");
    let greet_purl = purl_of("opt/app/lib/libgreet.so.1");
    let libc_purl = purl_of("usr/lib/x86_64-linux-gnu/libc.so.6");
    let lonely_purl = purl_of("usr/bin/lonely");
    assert!(bins.iter().any(|p| p.purl == app_purl && p.name == "app"));
    let links = analysis.links_to();
    assert!(links.contains(&(app_purl.clone(), greet_purl.clone())));
    assert!(links.contains(&(app_purl.clone(), libc_purl.clone())));
    assert!(links.contains(&(greet_purl.clone(), libc_purl.clone())));
    let lonely_links: Vec<_> = links
        .iter()
        .filter(|(from, _)| from == &lonely_purl)
        .collect();
    assert_eq!(lonely_links, [&(lonely_purl.clone(), libc_purl.clone())]);

    // Build-ids surface as properties; without one, the file hash, said so.
    let properties = analysis.elf_properties();
    let props_of = |purl: &str| {
        let i = analysis
            .packages
            .iter()
            .position(|p| p.purl == purl)
            .unwrap();
        properties[i].clone()
    };
    let prop = |name: &str, value: String| (name.to_string(), value);
    let app_props = props_of(&app_purl);
    assert!(app_props.contains(&prop(
        "stellaops:buildId",
        readelf_build_id(&r.join("opt/app/bin/app")).unwrap()
    )));
    assert!(app_props.contains(&prop("stellaops:elf.kind", "pie-executable".into())));
    assert!(
        app_props
            .iter()
            .any(|(n, v)| n == "stellaops:dwarf.producer" && v.starts_with("GNU C"))
    );
    let lonely_props = props_of(&lonely_purl);
    assert!(lonely_props.contains(&prop(
        "stellaops:buildId",
        format!("sha256:{}", lonely_purl.trim_start_matches("bin:"))
    )));
    assert!(lonely_props.contains(&prop(
        "stellaops:elf.unresolvedNeeded",
        "libghost.so.1".into()
    )));

    // Same input, same answer.
    assert_eq!(stella_analyzers::analyze(&super::filesystem(r)), analysis);
}

#[test]
fn files_on_the_search_path_that_are_not_objects_are_skipped() {
    if !cfg!(target_arch = "x86_64") || !have("gcc") || !have("readelf") {
        return;
    }
    let root = build_root();
    let r = root.path();
    // An impostor earlier on the search path (ld.so.conf names /usr/local/lib/… first): it
    // starts like an ELF file but is garbage, so the loader passes over it.
    std::fs::create_dir_all(r.join("usr/local/lib/x86_64-linux-gnu")).unwrap();
    std::fs::write(
        r.join("usr/local/lib/x86_64-linux-gnu/libc.so.6"),
        b"\x7fELF\x01\x01\x01garbage",
    )
    .unwrap();
    let fs = super::filesystem(r);
    let analysis = stella_analyzers::analyze(&fs);
    assert!(
        !analysis
            .binaries
            .objects
            .contains_key("/usr/local/lib/x86_64-linux-gnu/libc.so.6")
    );
    assert_eq!(
        analysis.binaries.links["/opt/app/bin/app"],
        [
            "/opt/app/lib/libgreet.so.1",
            "/usr/lib/x86_64-linux-gnu/libc.so.6"
        ]
    );
}
