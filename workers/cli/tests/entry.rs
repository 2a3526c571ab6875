//! A real image whose entrypoint is a POSIX shell script that sources a file and execs an
//! interpreter (e2e/images/build-entry.sh): the trace, the usage view and the native ELF facts,
//! against what `ldd`, `dpkg -S` and `readelf` said when the image was built.

use super::{stella, test_image};
use serde_json::Value;
use std::collections::BTreeSet;

fn props<'a>(component: &'a Value, name: &str) -> Vec<&'a str> {
    component["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == name)
        .filter_map(|p| p["value"].as_str())
        .collect()
}

fn scan(image: &std::path::Path, data: &std::path::Path, extra: &[&str]) -> Vec<u8> {
    let out = stella()
        .arg("scan")
        .arg(image)
        .args(["--quiet", "--data-dir"])
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn the_entrypoint_is_traced_and_the_usage_view_matches_ldd_and_dpkg() {
    let Some(dir) = test_image("build-entry.sh", "entry") else {
        return;
    };
    let image = dir.join("image.tar");
    let data = tempfile::tempdir().unwrap();
    let bom: Value = serde_json::from_slice(&scan(&image, data.path(), &[])).unwrap();

    // The chain, with file:line, and the CMD `serve` that `exec "$@"` cannot run.
    let meta = &bom["metadata"];
    let hops = props(meta, "stellaops:entrytrace.hop");
    assert_eq!(
        hops,
        [
            "config entrypoint /docker-entrypoint.sh",
            "/docker-entrypoint.sh:1 interpreter /usr/bin/dash",
            "/docker-entrypoint.sh:4 source /etc/app/env.sh",
            "/docker-entrypoint.sh:7 exec /usr/bin/python3.11",
            "/docker-entrypoint.sh:7 launcher /opt/app/lib/app/server.py",
            "/docker-entrypoint.sh:10 exec /opt/app/bin/greeter",
        ]
    );
    assert_eq!(
        props(meta, "stellaops:entrytrace.terminal"),
        [
            "python-module /opt/app/lib/app/server.py",
            "executable /opt/app/bin/greeter"
        ]
    );
    let unknowns = props(meta, "stellaops:entrytrace.unknown");
    assert_eq!(unknowns.len(), 1);
    assert!(unknowns[0].starts_with("CommandNotFound at /docker-entrypoint.sh:12: `serve`"));
    assert_eq!(
        props(meta, "stellaops:entrytrace.outcome"),
        ["partially-resolved"]
    );

    // usedByEntrypoint: exactly the packages owning what the programs are and load.
    let components = bom["components"].as_array().unwrap();
    let used: BTreeSet<String> = components
        .iter()
        .filter(|c| props(c, "stellaops:usedByEntrypoint") == ["true"])
        .map(|c| match c["type"].as_str() {
            Some("file") => format!(
                "bin /{}",
                &c["evidence"]["occurrences"][0]["location"]
                    .as_str()
                    .unwrap()[1..]
            ),
            _ => c["name"].as_str().unwrap().to_string(),
        })
        .collect();
    let expected: BTreeSet<String> =
        std::fs::read_to_string(dir.join("expected-usage-packages.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    assert_eq!(used, expected);

    // The unowned program and its library are bin:{sha256} components, the program linked to
    // its library (through $ORIGIN) and to libc6; its build-id as readelf reads it.
    let greeter = components.iter().find(|c| c["name"] == "greeter").unwrap();
    let greeter_ref = greeter["bom-ref"].as_str().unwrap();
    assert!(greeter_ref.starts_with("bin:"));
    assert_eq!(
        props(greeter, "stellaops:buildId"),
        [
            std::fs::read_to_string(dir.join("expected-greeter-build-id.txt"))
                .unwrap()
                .trim()
        ]
    );
    let libgreet_ref = components
        .iter()
        .find(|c| c["name"] == "libgreet.so.1")
        .unwrap()["bom-ref"]
        .as_str()
        .unwrap();
    let depends: Vec<&str> = bom["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ref"] == greeter_ref)
        .unwrap()["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(depends.contains(&libgreet_ref), "{depends:?}");
    assert!(
        depends
            .iter()
            .any(|d| d.starts_with("pkg:deb/debian/libc6@")),
        "{depends:?}"
    );
    // Debian's own ELF files are owned by their packages: only the two are bin: components.
    assert_eq!(components.iter().filter(|c| c["type"] == "file").count(), 2);

    // The usage view holds only the used components, under its own serial number.
    let usage: Value =
        serde_json::from_slice(&scan(&image, data.path(), &["--view", "usage"])).unwrap();
    let usage_components = usage["components"].as_array().unwrap();
    assert_eq!(
        usage_components
            .iter()
            .filter(|c| c["type"] != "operating-system")
            .count(),
        expected.len()
    );
    assert_eq!(props(&usage["metadata"], "stellaops:view"), ["usage"]);
    assert_ne!(usage["serialNumber"], bom["serialNumber"]);

    // Same image, same bytes, for both views.
    assert_eq!(
        scan(&image, data.path(), &["--view", "usage"]),
        serde_json::to_vec_pretty(&usage)
            .map(|mut v| {
                v.push(b'\n');
                v
            })
            .unwrap()
    );

    // The table says what runs.
    let table = String::from_utf8(scan(
        &image,
        data.path(),
        &["--format", "table", "--view", "usage"],
    ))
    .unwrap();
    assert!(
        table.contains("Entrypoint (partially-resolved):"),
        "{table}"
    );
    assert!(table.contains("/docker-entrypoint.sh:4"), "{table}");
    assert!(table.contains("unresolved: CommandNotFound"), "{table}");
}
