//! The unknowns registry: reasons, the 2-factor rank computed by hand, bands, determinism.

use stella_advisories::matching::Finding;
use stella_analyzers::{Ecosystem, Evidence, Package};
use stella_sbom::{Component, ImageInfo, Inventory, Relationship};
use stella_verdict::{
    Band, Containment, Context, FindingInput, Reason, VexState, derive, runs_as_root,
};

fn component(name: &str, used: bool, depends_on: &[&str]) -> Component {
    let mut package = Package::installed(
        Ecosystem::Deb,
        name.into(),
        "1.0".into(),
        format!("pkg:deb/debian/{name}@1.0"),
        Evidence {
            source: "dpkg-status".into(),
            path: "var/lib/dpkg/status".into(),
            method: "package-database".into(),
        },
    );
    package.depends_on = depends_on
        .iter()
        .map(|d| format!("pkg:deb/debian/{d}@1.0"))
        .collect();
    Component {
        package,
        layer_digest: None,
        used_by_entrypoint: used,
        properties: vec![],
    }
}

fn inventory() -> Inventory {
    let mut bin = component("tool", false, &[]);
    bin.package.purl = "bin:abc".into();
    bin.package.ecosystem = Ecosystem::Binary;
    bin.package.evidence.path = "usr/bin/tool".into();
    bin.properties = vec![(
        "stellaops:elf.unresolvedNeeded".into(),
        "libghost.so.1".into(),
    )];
    Inventory {
        image: ImageInfo {
            digest: "sha256:1111".into(),
            config_digest: "sha256:2222".into(),
            name: "example".into(),
            repository: None,
            tags: vec![],
            created: None,
            os: "linux".into(),
            architecture: "amd64".into(),
            user: None,
            layers: vec![],
        },
        distro: None,
        components: vec![
            component("openssl", true, &[]),
            component("curl", true, &["openssl"]),
            component("wget", false, &["openssl"]),
            component("zlib", false, &[]),
            bin,
        ],
        analyzer_version: "test".into(),
        errors: vec!["var/lib/rpm/Packages: truncated".into()],
        relationships: vec![Relationship {
            from: "bin:abc".into(),
            to: "pkg:deb/debian/openssl@1.0".into(),
            kind: "links_to".into(),
        }],
        entry_trace: None,
        view: Default::default(),
        origin: None,
    }
}

fn finding(id: &str, package: &str, severity: &str) -> Finding {
    serde_json::from_value(serde_json::json!({
        "id": id, "aliases": [], "purl": format!("pkg:deb/debian/{package}@1.0"),
        "package": package, "installed": "1.0", "fixed": [], "status": "unfixed",
        "severity": severity, "cvssScore": null, "severitySource": null, "severityOrigin": null,
        "layerDigest": null,
        "evidence": {"advisory": id, "source": "osv", "ecosystem": "Debian:12",
                     "matched": "<2.0", "comparator": "dpkg"}
    }))
    .unwrap()
}

#[test]
fn reasons_ranks_and_bands_follow_the_seed_model() {
    let inventory = inventory();
    let openssl = finding("CVE-2024-0001", "openssl", "Critical");
    let zlib = finding("CVE-2024-0002", "zlib", "Low");
    let curl = finding("CVE-2024-0003", "curl", "High");
    let wget = finding("CVE-2024-0004", "wget", "Medium");
    let inputs = [
        FindingInput {
            finding: &openssl,
            vex: VexState::Missing,
            open: true,
            kev: true,
            epss: Some(0.3),
        },
        FindingInput {
            finding: &zlib,
            vex: VexState::Conflicting,
            open: true,
            kev: false,
            epss: None,
        },
        // Decided by VEX, or closed: nothing is missing.
        FindingInput {
            finding: &curl,
            vex: VexState::Decided,
            open: true,
            kev: false,
            epss: None,
        },
        FindingInput {
            finding: &wget,
            vex: VexState::Missing,
            open: false,
            kev: false,
            epss: None,
        },
    ];
    let orphan = [(
        "CVE-2099-9999".to_string(),
        "pkg:deb/debian/zlib@1.0".to_string(),
    )];
    let context = Context {
        inventory: &inventory,
        runs_as_root: true,
        containment: Containment::default(),
        orphan_vex: &orphan,
    };
    let unknowns = derive(&context, &inputs);
    let by_subject = |s: &str| unknowns.iter().find(|u| u.subject == s).unwrap();
    assert_eq!(unknowns.len(), 5, "{unknowns:#?}");

    // openssl: 3 dependents (curl, wget, the binary linking it) → 0.3; used → exposure 1;
    // root → privilege 1: blast = 0.5×0.3 + 0.3 + 0.2 = 0.65. KEV → pressure 1.0.
    // 0.60×0.65 + 0.30×0.5 + 0.30×1.0 = 0.84 → HOT.
    let u = by_subject("CVE-2024-0001 pkg:deb/debian/openssl@1.0");
    assert_eq!(u.reasons, [Reason::MissingVex]);
    assert_eq!(u.blast_radius.dependents, 3);
    assert_eq!(u.score_breakdown.blast, 0.65);
    assert_eq!(u.score_breakdown.pressure, 1.0);
    assert_eq!(u.score, 0.84);
    assert_eq!(u.band, Band::Hot);

    // zlib: no dependents, unused: blast = 0 + 0.09 + 0.2 = 0.29; conflicting → 0.6; Low → 0.2.
    // 0.174 + 0.18 + 0.06 = 0.414 → WARM.
    let u = by_subject("CVE-2024-0002 pkg:deb/debian/zlib@1.0");
    assert_eq!(u.reasons, [Reason::ConflictingEvidence]);
    assert_eq!(u.score, 0.414);
    assert_eq!(u.band, Band::Warm);

    // An orphan VEX statement: missing_advisory, no pressure: 0.174 + 0.21 = 0.384 → COLD.
    let u = by_subject("CVE-2099-9999 pkg:deb/debian/zlib@1.0");
    assert_eq!(u.reasons, [Reason::MissingAdvisory]);
    assert_eq!(u.score, 0.384);
    assert_eq!(u.band, Band::Cold);

    // A degraded database and an unresolved library: incomplete_sbom.
    let u = by_subject("sbom var/lib/rpm/Packages: truncated");
    assert_eq!(u.reasons, [Reason::IncompleteSbom]);
    let u = by_subject("library /usr/bin/tool");
    assert_eq!(u.reasons, [Reason::IncompleteSbom]);
    assert!(u.details[0].contains("libghost.so.1"));

    // Highest first; stable ids; same inputs, same output.
    assert!(unknowns.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(derive(&context, &inputs), unknowns);
    assert!(
        unknowns
            .iter()
            .all(|u| u.id.len() == 20 && u.id.starts_with("unk-"))
    );

    // Containment deducts: read-only root and seccomp take 0.20 off.
    let contained = Context {
        containment: Containment {
            read_only_root_fs: true,
            seccomp: true,
        },
        ..context.clone()
    };
    let u = derive(&contained, &inputs)
        .into_iter()
        .find(|u| u.subject.starts_with("CVE-2024-0001"))
        .unwrap();
    assert_eq!(u.score_breakdown.containment_deduction, -0.2);
    assert_eq!(u.score, 0.64);
    assert_eq!(u.band, Band::Warm);
}

#[test]
fn users_bands_and_reasons_parse() {
    assert!(runs_as_root(None));
    assert!(runs_as_root(Some("")));
    assert!(runs_as_root(Some("0:0")));
    assert!(runs_as_root(Some("root")));
    assert!(!runs_as_root(Some("1000")));
    assert!(!runs_as_root(Some("app:app")));
    assert_eq!(Band::parse("hot"), Some(Band::Hot));
    assert_eq!(Band::parse("lukewarm"), None);
    assert_eq!(Band::of(0.70), Band::Hot);
    assert_eq!(Band::of(0.6999), Band::Warm);
    assert_eq!(Band::of(0.40), Band::Warm);
    assert_eq!(Band::of(0.3999), Band::Cold);
    assert_eq!(Band::Hot.sla_hours(), 24);
    assert_eq!(Reason::parse("missing_vex"), Some(Reason::MissingVex));
    assert_eq!(Reason::parse("missing"), None);
}
