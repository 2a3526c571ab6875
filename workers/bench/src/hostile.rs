//! `stella-bench --hostile`: the shapes the hostile-input issue measured, generated here as
//! docker-archives and scanned by the `stella` binary — 4,000 nested directories,
//! `node_modules` nested 2,000 deep, 100,000 `package.json` files — each against the floor of
//! reading the same archive's tar entries (every header and body, nothing kept), with wall
//! time and peak RSS.

use anyhow::Result;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// A layer tar of `files` (path, contents), directories implied; GNU long names as needed.
fn layer(files: &[(String, Vec<u8>)], dirs: &[String]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for dir in dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        builder.append_data(&mut header, dir, std::io::empty())?;
    }
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, path, &data[..])?;
    }
    Ok(builder.into_inner()?)
}

/// A docker-archive of one layer.
fn archive(path: &Path, layer: &[u8]) -> Result<()> {
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(layer)));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))?;
    let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": ["hostile:1"], "Layers": ["layer.tar"]}
    ]))?;
    let mut builder = tar::Builder::new(std::fs::File::create(path)?);
    for (name, bytes) in [
        ("layer.tar", layer),
        (config_name.as_str(), &config[..]),
        ("manifest.json", &manifest[..]),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        builder.append_data(&mut header, name, bytes)?;
    }
    builder.finish()?;
    Ok(())
}

/// The floor: every entry of the layer read through the tar reader, nothing kept.
fn floor(layer: &[u8]) -> Result<std::time::Duration> {
    let started = Instant::now();
    let mut archive = tar::Archive::new(layer);
    for entry in archive.entries()? {
        let mut entry = entry?;
        std::io::copy(&mut entry, &mut std::io::sink())?;
    }
    Ok(started.elapsed())
}

pub(crate) fn run(stella: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let package = |name: &str| {
        serde_json::to_vec(&serde_json::json!({"name": name, "version": "1.0.0"}))
            .unwrap_or_default()
    };
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut path = String::new();
    let mut dirs = Vec::new();
    for _ in 0..4000 {
        path.push_str(if path.is_empty() { "d" } else { "/d" });
        dirs.push(path.clone());
    }
    cases.push((
        "4,000 nested directories",
        layer(&[(format!("{path}/f"), b"x\n".to_vec())], &dirs)?,
    ));
    let mut files = Vec::new();
    let mut path = String::from("app");
    for i in 0..2000 {
        path.push_str(&format!("/node_modules/p{i}"));
        files.push((format!("{path}/package.json"), package(&format!("p{i}"))));
    }
    cases.push(("node_modules nested 2,000 deep", layer(&files, &[])?));
    let files: Vec<(String, Vec<u8>)> = (0..100_000)
        .map(|i| {
            (
                format!("app/node_modules/p{i}/package.json"),
                package(&format!("p{i}")),
            )
        })
        .collect();
    cases.push(("100,000 package.json files", layer(&files, &[])?));
    for (name, bytes) in &cases {
        let tar = work.path().join("image.tar");
        archive(&tar, bytes)?;
        let floor = floor(bytes)?;
        let data = tempfile::tempdir()?;
        let (time, rss) = crate::run(
            Command::new(stella)
                .arg("scan")
                .arg(&tar)
                .args(["--quiet", "-o", "/dev/null", "--data-dir"])
                .arg(data.path()),
        )?;
        println!(
            "{name:<32} {:>6} MB tar: floor {:>7.3} s, stella scan {:>7.3} s ({:.0}x), peak RSS {:>6.1} MB (target <= 2 s, <= 200 MB)",
            bytes.len() / 1_000_000,
            floor.as_secs_f64(),
            time.as_secs_f64(),
            time.as_secs_f64() / floor.as_secs_f64(),
            rss as f64 / 1024.0
        );
    }
    Ok(())
}
