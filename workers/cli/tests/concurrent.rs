//! One data directory, many processes (what parallel CI jobs on a shared cache do): several
//! `stella scan` runs at once into one `--data-dir` — the same image and different images,
//! on a fresh directory and on a warm one — all succeed, and each SBOM is byte-identical to
//! the one a run alone writes.

use super::{stella, test_image};
use std::path::Path;

fn scan(target: &str, data_dir: &Path) -> std::process::Child {
    stella()
        .args(["scan", target])
        .args(["--quiet", "--format", "cyclonedx-json", "--data-dir"])
        .arg(data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: std::process::Child, what: &str) -> Vec<u8> {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn concurrent_scans_share_one_data_dir() {
    let (Some(debian), Some(lang)) = (
        test_image("build-debian.sh", "debian-bookworm"),
        test_image("build-lang.sh", "lang"),
    ) else {
        return;
    };
    let debian = debian.join("image.tar").display().to_string();
    let lang = format!("{}:lang", lang.join("oci").display());
    let solo = tempfile::tempdir().unwrap();
    let alone = [
        finish(scan(&debian, &solo.path().join("a")), "solo debian"),
        finish(scan(&lang, &solo.path().join("b")), "solo lang"),
    ];
    for round in 0..4 {
        let shared = tempfile::tempdir().unwrap();
        // Fresh directory: four at once, two of each image.
        let runs: Vec<_> = [
            &debian, &lang, &debian, &lang, &debian, &lang, &debian, &lang,
        ]
        .iter()
        .map(|image| scan(image, shared.path()))
        .collect();
        for (i, run) in runs.into_iter().enumerate() {
            let sbom = finish(run, &format!("round {round}, run {i}"));
            assert!(
                sbom == alone[i % 2],
                "round {round}, run {i}: the SBOM differs from a solo run's"
            );
        }
        // Warm directory: again, now reusing what the first runs stored.
        let runs: Vec<_> = [&lang, &debian, &lang]
            .iter()
            .map(|image| scan(image, shared.path()))
            .collect();
        for (i, run) in runs.into_iter().enumerate() {
            let sbom = finish(run, &format!("round {round}, warm run {i}"));
            assert!(
                sbom == alone[(i + 1) % 2],
                "round {round}, warm run {i}: differs"
            );
        }
    }
}
