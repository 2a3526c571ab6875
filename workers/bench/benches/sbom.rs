//! Criterion benches of SBOM emission, diff and the BOM-Index, each against a baseline measured
//! in the same run, then one ratio line per case: ours against the baseline and against the
//! issue's target where it has one.
//!
//! ```sh
//! cargo bench -p stella-bench --bench sbom
//! ```
//!
//! The ratio lines use the median per-iteration time of criterion's own measurement samples
//! (warm-up excluded).

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use stella_sbom::bomindex::{BomIndex, ImpactIndex};

const COMPONENTS: usize = 5_000;
const IMAGES: usize = 10_000;
const PURLS_PER_IMAGE: usize = 300;
const UNIVERSE: usize = 50_000;
const QUERY: usize = 1_000;

/// Per-iteration seconds of every sample criterion took, by `group/case`, in order.
static SAMPLES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

/// Benchmarks `f` as `group/case` and keeps criterion's samples for the ratio lines.
fn case<O>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    case: &str,
    mut f: impl FnMut() -> O,
) {
    let key = format!("{group_name}/{case}");
    group.bench_function(case, |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            let elapsed = started.elapsed();
            SAMPLES
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key.clone())
                .or_default()
                .push(elapsed.as_secs_f64() / iters as f64);
            elapsed
        })
    });
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    samples: usize,
    seconds: u64,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(samples)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds));
    group
}

fn emission(c: &mut Criterion) {
    let inventory = stella_bench::inventory(COMPONENTS, false);
    let mut g = group(c, "emit-5000", 20, 4);
    case(&mut g, "emit-5000", "baseline-serde_json", || {
        serde_json::to_vec(&inventory).map_or(0, |v| v.len())
    });
    case(&mut g, "emit-5000", "cyclonedx-json", || {
        stella_sbom::cyclonedx::to_json(&inventory).len()
    });
    case(&mut g, "emit-5000", "cyclonedx-protobuf", || {
        stella_sbom::cyclonedx_pb::to_protobuf(&inventory).len()
    });
    g.finish();
}

fn diff(c: &mut Criterion) {
    let old = stella_bench::inventory(COMPONENTS, false);
    let new = stella_bench::inventory(COMPONENTS, true);
    let mut g = group(c, "diff-5000", 20, 4);
    case(&mut g, "diff-5000", "baseline-sort-purls", || {
        stella_bench::sort_purls(&old, &new)
    });
    case(&mut g, "diff-5000", "diff", || {
        stella_sbom::diff::diff(&old, &new, &stella_advisories::matching::compare)
            .changes
            .len()
    });
    g.finish();
}

fn bom_index(c: &mut Criterion) {
    let inventory = stella_bench::inventory(COMPONENTS, false);
    let mut g = group(c, "bomindex-5000", 20, 3);
    case(&mut g, "bomindex-5000", "baseline-btreeset", || {
        inventory
            .components
            .iter()
            .map(|c| c.package.purl.clone())
            .collect::<BTreeSet<String>>()
            .len()
    });
    case(&mut g, "bomindex-5000", "build", || {
        BomIndex::build(&inventory).purls.len()
    });
    case(&mut g, "bomindex-5000", "build+to_bytes", || {
        BomIndex::build(&inventory).to_bytes().len()
    });
    g.finish();
}

/// The naive impact selection: each image's purls in a `BTreeSet`, every image scanned.
fn linear_query(fleet: &[(String, BTreeSet<String>)], purls: &[&str]) -> Vec<String> {
    let mut hits: Vec<String> = fleet
        .iter()
        .filter(|(_, set)| purls.iter().any(|p| set.contains(*p)))
        .map(|(digest, _)| digest.clone())
        .collect();
    hits.sort_unstable();
    hits
}

fn naive_fleet(fleet: &[(String, BomIndex)]) -> Vec<(String, BTreeSet<String>)> {
    fleet
        .iter()
        .map(|(digest, index)| (digest.clone(), index.purls.iter().cloned().collect()))
        .collect()
}

fn impact(c: &mut Criterion) {
    let (universe, fleet) = stella_bench::fleet(IMAGES, PURLS_PER_IMAGE, UNIVERSE);
    let pairs = || fleet.iter().map(|(d, i)| (d.as_str(), i));
    // A query of 1,000 purls drawn across the universe (an advisory feed update).
    let query: Vec<&str> = (0..QUERY)
        .map(|k| universe[(k * 7_919 + 13) % universe.len()].as_str())
        .collect();
    let index = ImpactIndex::build(pairs());
    let naive = naive_fleet(&fleet);
    let hits = index.query(&query, &[], false);
    assert_eq!(hits, linear_query(&naive, &query), "both answer the same");
    println!(
        "impact fleet: {IMAGES} images, {} distinct purls (universe {UNIVERSE}), {} images hit by the {QUERY}-purl query",
        index.purls().len(),
        hits.len()
    );

    let mut g = group(c, "impact-10000", 10, 6);
    case(&mut g, "impact-10000", "baseline-build-btreesets", || {
        naive_fleet(&fleet).len()
    });
    case(&mut g, "impact-10000", "build", || {
        ImpactIndex::build(pairs()).purls().len()
    });
    case(&mut g, "impact-10000", "baseline-query-linear", || {
        linear_query(&naive, &query).len()
    });
    case(&mut g, "impact-10000", "query", || {
        index.query(&query, &[], false).len()
    });
    g.finish();
}

/// Median per-iteration seconds of the last `samples` samples of `key` (criterion samples after
/// its warm-up, which comes first); `None` when the case did not run (filtered out).
fn median(key: &str, samples: usize) -> Option<f64> {
    let all = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
    let recorded = all.get(key)?;
    let mut measured = recorded[recorded.len().saturating_sub(samples)..].to_vec();
    measured.sort_by(f64::total_cmp);
    measured.get(measured.len() / 2).copied()
}

fn report() {
    let ms = |s: f64| s * 1000.0;
    println!("\nratios (median of criterion's samples):");
    // (case, baseline, samples, target in ms)
    let cases = [
        (
            "emit-5000/cyclonedx-json",
            "emit-5000/baseline-serde_json",
            20,
            Some(50.0),
        ),
        (
            "emit-5000/cyclonedx-protobuf",
            "emit-5000/baseline-serde_json",
            20,
            Some(15.0),
        ),
        (
            "diff-5000/diff",
            "diff-5000/baseline-sort-purls",
            20,
            Some(20.0),
        ),
        (
            "bomindex-5000/build",
            "bomindex-5000/baseline-btreeset",
            20,
            None,
        ),
        (
            "bomindex-5000/build+to_bytes",
            "bomindex-5000/baseline-btreeset",
            20,
            None,
        ),
        (
            "impact-10000/build",
            "impact-10000/baseline-build-btreesets",
            10,
            None,
        ),
        (
            "impact-10000/query",
            "impact-10000/baseline-query-linear",
            10,
            None,
        ),
        (
            "verdict-5000/vex+policy",
            "verdict-5000/baseline-matching",
            20,
            Some(50.0),
        ),
        (
            "verdict-5000/evaluate+proof",
            "verdict-5000/baseline-matching",
            20,
            None,
        ),
    ];
    for (ours, baseline, samples, target) in cases {
        let (Some(t), Some(b)) = (median(ours, samples), median(baseline, samples)) else {
            continue;
        };
        let against_target = match target {
            Some(target) => format!(", {:.0}% of the {target} ms target", ms(t) / target * 100.0),
            None => String::new(),
        };
        println!(
            "  {ours:<32} {:>9.3} ms = {:>6.2}x {baseline} ({:.3} ms){against_target}",
            ms(t),
            t / b,
            ms(b)
        );
    }
}

/// The verdict inputs for the synthetic 5,000-component inventory: an OSV advisory for every
/// fifth npm / PyPI package (critical, high or medium), a vendor VEX `not_affected` for every
/// third of those, and a policy exercising block, warn, ignore with expiry and requireVEX.
fn verdict_inputs() -> stella_verdict::evaluate::Inputs {
    let inventory = stella_bench::inventory(COMPONENTS, false);
    let vectors = [
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
        "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N",
    ];
    let mut advisories = Vec::new();
    let mut vex = Vec::new();
    for (i, c) in inventory.components.iter().enumerate() {
        let ecosystem = match c.package.ecosystem {
            stella_analyzers::Ecosystem::Npm => "npm",
            stella_analyzers::Ecosystem::Pypi => "PyPI",
            _ => continue,
        };
        if i % 5 != 1 && i % 5 != 2 {
            continue;
        }
        let id = format!("CVE-2099-{i:05}");
        advisories.push(
            stella_advisories::osv::from_value(&serde_json::json!({
                "id": id, "modified": "2099-01-01T00:00:00Z",
                "severity": [{"type": "CVSS_V3", "score": vectors[i % 3]}],
                "affected": [{"package": {"ecosystem": ecosystem, "name": c.package.name},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}]}]
            }))
            .expect("a valid record"),
        );
        if i % 3 == 0 {
            let purl = c
                .package
                .purl
                .split('@')
                .next()
                .unwrap_or_default()
                .to_string();
            vex.push(
                serde_json::json!({"vulnerability": {"name": id}, "products": [{"@id": purl}],
                "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}),
            );
        }
    }
    let document = serde_json::json!({"@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://vendor.example/vex/bench", "author": "Bench Vendor",
        "timestamp": "2099-02-01T00:00:00Z", "version": 1, "statements": vex});
    let statements = stella_vex::parse(document.to_string().as_bytes())
        .expect("a valid OpenVEX document")
        .statements;
    let policy = stella_policy::load_str(
        "version: \"1.0\"\nrules:\n  - name: Require vendor VEX for package-1x\n    purls: [\"pkg:npm/package-1\"]\n    action: requireVEX\n  - name: Block Critical\n    severity: [Critical]\n    action: block\n  - name: Warn High\n    severity: [High]\n    action: warn\n  - name: Ignore Medium for now\n    severity: [Medium]\n    action: ignore\n    expires: \"2100-01-01\"\n    justification: triaged monthly\n",
    )
    .expect("a valid policy")
    .spec;
    stella_verdict::evaluate::Inputs {
        inventory,
        advisories,
        statements,
        trust: Default::default(),
        exploits: Default::default(),
        policy,
        evaluated_at: "2099-06-01T00:00:00Z".parse().expect("a time"),
        namespace: Some("prod".into()),
        environment: Some("prod".into()),
    }
}

fn verdict(c: &mut Criterion) {
    let inputs = verdict_inputs();
    let findings = stella_verdict::matching::match_inventory(&inputs.inventory, &inputs.advisories);
    assert!(findings.len() >= 1_000, "{} findings", findings.len());
    let mut g = group(c, "verdict-5000", 20, 10);
    case(&mut g, "verdict-5000", "baseline-matching", || {
        stella_verdict::matching::match_inventory(&inputs.inventory, &inputs.advisories)
    });
    case(&mut g, "verdict-5000", "vex+policy", || {
        let vex = stella_verdict::evaluate::vex_decisions(
            &inputs.statements,
            &inputs.trust,
            &inputs.inventory.image.digest,
            &findings,
        );
        let policy_inputs: Vec<stella_policy::Input> = findings
            .iter()
            .zip(&vex)
            .map(|(f, v)| {
                let mut input = stella_policy::Input::from_finding(f);
                input.vex = v.as_ref().and_then(|c| {
                    Some(stella_policy::VexConsensus {
                        status: match c.status? {
                            stella_vex::Status::NotAffected => {
                                stella_policy::VexStatus::NotAffected
                            }
                            stella_vex::Status::Affected => stella_policy::VexStatus::Affected,
                            stella_vex::Status::Fixed => stella_policy::VexStatus::Fixed,
                            stella_vex::Status::UnderInvestigation => {
                                stella_policy::VexStatus::UnderInvestigation
                            }
                        },
                        justification: c.justification.map(|j| j.as_str().to_string()),
                        provider: "Bench Vendor".into(),
                    })
                });
                input
            })
            .collect();
        let context = stella_policy::Context {
            image: stella_policy::Image {
                digest: inputs.inventory.image.digest.clone(),
                name: inputs.inventory.image.name.clone(),
                repository: inputs.inventory.image.repository.clone(),
            },
            namespace: inputs.namespace.clone(),
            environment: inputs.environment.clone(),
            evaluated_at: inputs.evaluated_at,
        };
        stella_policy::evaluate(&inputs.policy, &context, &policy_inputs)
    });
    case(&mut g, "verdict-5000", "evaluate+proof", || {
        stella_verdict::evaluate::evaluate(&inputs)
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    emission(&mut c);
    diff(&mut c);
    bom_index(&mut c);
    impact(&mut c);
    verdict(&mut c);
    c.final_summary();
    report();
}
