//! Synthetic inputs shared by `stella-bench` and the criterion benches (`benches/sbom.rs`), and
//! the admission webhook's load client ([`webhook_load`], the `stella-webhook-load` binary and
//! the webhook's benchmark test).

pub mod webhook_load;

/// A synthetic inventory of `count` components across ecosystems; `shift` changes every tenth
/// version (for the diff) and drops every fiftieth component.
pub fn inventory(count: usize, shift: bool) -> stella_sbom::Inventory {
    use stella_analyzers::{Ecosystem, Evidence, Package};
    let ecosystems = [
        (Ecosystem::Deb, "deb"),
        (Ecosystem::Npm, "npm"),
        (Ecosystem::Pypi, "pypi"),
        (Ecosystem::Maven, "maven"),
    ];
    let components = (0..count)
        .filter(|i| !(shift && i % 50 == 7))
        .map(|i| {
            let (ecosystem, purl_type) = ecosystems[i % ecosystems.len()];
            let version = if shift && i % 10 == 3 {
                format!("1.{}.{}", i % 40, i % 9 + 1)
            } else {
                format!("1.{}.{}", i % 40, i % 9)
            };
            let name = format!("package-{i}");
            let purl = format!("pkg:{purl_type}/{name}@{version}");
            stella_sbom::Component {
                package: Package {
                    licenses: vec!["MIT".into()],
                    depends_on: if i > 0 {
                        vec![format!("pkg:{purl_type}/package-{}@1.0.0", i - 1)]
                    } else {
                        vec![]
                    },
                    ..Package::installed(
                        ecosystem,
                        name,
                        version,
                        purl,
                        Evidence {
                            source: "bench".into(),
                            path: format!("app/{i}/metadata"),
                            method: "installed-metadata".into(),
                        },
                    )
                },
                layer_digest: Some(format!("sha256:{}", "ab".repeat(32))),
                used_by_entrypoint: false,
                properties: vec![],
            }
        })
        .collect();
    stella_sbom::Inventory {
        image: stella_sbom::ImageInfo {
            digest: format!("sha256:{}", if shift { "cd" } else { "ef" }.repeat(32)),
            config_digest: format!("sha256:{}", "01".repeat(32)),
            name: "bench/image:1".into(),
            repository: Some("bench/image".into()),
            tags: vec!["1".into()],
            created: Some("2026-01-01T00:00:00Z".into()),
            os: "linux".into(),
            architecture: "amd64".into(),
            user: None,
            layers: vec![format!("sha256:{}", "ab".repeat(32))],
        },
        distro: None,
        components,
        analyzer_version: stella_analyzers::ANALYZER_VERSION.into(),
        errors: vec![],
        relationships: vec![],
        entry_trace: None,
        view: Default::default(),
        origin: None,
    }
}

/// A fleet for impact selection: the BOM-Indexes of `images` images, each carrying about
/// `per_image` purls out of a shared universe of `universe` (`pkg:deb`, `pkg:npm`, `pkg:pypi`,
/// `pkg:maven`, qualifiers as scanners write them). Like real fleets, images share a base: half
/// of each image's purls come from the first 2% of the universe. Deterministic (xorshift).
/// Returns the universe and `(digest, index)` per image; every seventh component of an image
/// is used by its entrypoint.
pub fn fleet(
    images: usize,
    per_image: usize,
    universe: usize,
) -> (Vec<String>, Vec<(String, stella_sbom::bomindex::BomIndex)>) {
    use stella_sbom::bomindex::{BomIndex, Header, MAGIC, VERSION};
    let purls: Vec<String> = (0..universe)
        .map(|n| match n % 4 {
            0 => format!(
                "pkg:deb/debian/lib{n}@1.{}.{}-{}?arch=amd64&distro=debian-12",
                n % 13,
                n % 7,
                1 + n % 3
            ),
            1 => format!("pkg:npm/package-{n}@{}.{}.{}", n % 9, n % 17, n % 5),
            2 => format!("pkg:pypi/module-{n}@{}.{}", n % 11, n % 23),
            _ => format!(
                "pkg:maven/org.example.g{}/artifact-{n}@2.{}.{}",
                n % 97,
                n % 19,
                n % 3
            ),
        })
        .collect();
    let base = (universe / 50).max(1);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let fleet = (0..images)
        .map(|i| {
            let mut picked: Vec<&String> = (0..per_image)
                .map(|k| {
                    let r = next() as usize;
                    if k % 2 == 0 {
                        &purls[r % base]
                    } else {
                        &purls[r % universe]
                    }
                })
                .collect();
            picked.sort_unstable();
            picked.dedup();
            let ordinals = 0..picked.len() as u32;
            let components: std::collections::BTreeMap<u32, roaring::RoaringBitmap> = ordinals
                .map(|o| (o, std::iter::once(o).collect()))
                .collect();
            let used = components
                .iter()
                .filter(|(o, _)| *o % 7 == 0)
                .map(|(o, b)| (*o, b.clone()))
                .collect();
            let digest = format!("sha256:{i:064x}");
            // The advisory keys of the picked purls: `type/name` (what feed deltas list).
            let mut keys: Vec<String> = picked
                .iter()
                .map(|p| {
                    let bare = p.trim_start_matches("pkg:");
                    bare.split('@').next().unwrap_or(bare).to_string()
                })
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let index = BomIndex {
                header: Header {
                    magic: MAGIC,
                    version: VERSION,
                    image_digest: digest.clone(),
                    created_at: Some("2026-01-01T00:00:00Z".into()),
                },
                purls: picked.into_iter().cloned().collect(),
                components,
                used_by_entrypoint: Some(used),
                match_keys: Some(keys),
            };
            (digest, index)
        })
        .collect();
    (purls, fleet)
}

/// A stored fleet for the scheduler's benchmark: `images` inventories of about `per_image`
/// components on Debian 12, each a Debian base (binary packages named after their source
/// package or not, `libssl3` from `openssl`) plus application packages (npm, scoped or not;
/// PyPI; Maven `group:artifact`; Go modules). As in real fleets, half of each image's
/// components come from a shared base of 2% of the package universe (30,000 packages).
/// Deterministic (xorshift); versions are `1.x.y` (below any `99.0.0` fix).
pub fn fleet_inventories(images: usize, per_image: usize) -> Vec<stella_sbom::Inventory> {
    use stella_analyzers::{Distro, Ecosystem, Evidence, Package};
    const UNIVERSE: usize = 30_000;
    let base = UNIVERSE / 50;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    let package = |n: usize| -> Package {
        let version = format!("1.{}.{}", n % 13, n % 7);
        let evidence = Evidence {
            source: "bench".into(),
            path: format!("pkg/{n}"),
            method: "installed-metadata".into(),
        };
        match n % 5 {
            0 | 1 => {
                let name = if n.is_multiple_of(10) {
                    format!("lib{n}-3")
                } else {
                    format!("deb{n}")
                };
                let version = format!("{version}-{}", 1 + n % 3);
                let purl = format!("pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12");
                let mut p =
                    Package::installed(Ecosystem::Deb, name, version.clone(), purl, evidence);
                if n.is_multiple_of(10) {
                    p.source_name = Some(format!("src{n}"));
                    p.source_version = Some(version);
                }
                p.arch = Some("amd64".into());
                p
            }
            2 => {
                let name = if n.is_multiple_of(4) {
                    format!("@scope{}/pkg{n}", n % 7)
                } else {
                    format!("pkg{n}")
                };
                let purl = format!("pkg:npm/{}@{version}", name.replace('@', "%40"));
                Package::installed(Ecosystem::Npm, name, version, purl, evidence)
            }
            3 => {
                let name = format!("module-{n}");
                let purl = format!("pkg:pypi/{name}@{version}");
                Package::installed(Ecosystem::Pypi, name, version, purl, evidence)
            }
            _ if n.is_multiple_of(2) => {
                let name = format!("org.example.g{}:artifact-{n}", n % 97);
                let purl = format!("pkg:maven/org.example.g{}/artifact-{n}@{version}", n % 97);
                Package::installed(Ecosystem::Maven, name, version, purl, evidence)
            }
            _ => {
                let name = format!("github.com/example{}/mod{n}", n % 31);
                let version = format!("v{version}");
                let purl = format!("pkg:golang/{name}@{version}");
                Package::installed(Ecosystem::Golang, name, version, purl, evidence)
            }
        }
    };
    (0..images)
        .map(|i| {
            let mut picked: Vec<usize> = (0..per_image)
                .map(|k| {
                    if k % 2 == 0 {
                        next() % base
                    } else {
                        next() % UNIVERSE
                    }
                })
                .collect();
            picked.sort_unstable();
            picked.dedup();
            let mut components: Vec<stella_sbom::Component> = picked
                .into_iter()
                .map(|n| stella_sbom::Component {
                    package: package(n),
                    layer_digest: Some(format!("sha256:{}", "ab".repeat(32))),
                    used_by_entrypoint: n % 7 == 0,
                    properties: vec![],
                })
                .collect();
            components.sort_by(|a, b| a.package.purl.cmp(&b.package.purl));
            stella_sbom::Inventory {
                image: stella_sbom::ImageInfo {
                    digest: format!("sha256:{i:064x}"),
                    config_digest: format!("sha256:{:064x}", i + 1),
                    name: format!("bench.example/app-{}:1", i % 100),
                    repository: Some(format!("bench.example/app-{}", i % 100)),
                    tags: vec!["1".into()],
                    created: Some("2026-01-01T00:00:00Z".into()),
                    os: "linux".into(),
                    architecture: "amd64".into(),
                    user: None,
                    layers: vec![format!("sha256:{}", "ab".repeat(32))],
                },
                distro: Some(Distro {
                    id: "debian".into(),
                    version_id: Some("12".into()),
                    version_codename: Some("bookworm".into()),
                    pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
                    id_like: vec![],
                }),
                components,
                analyzer_version: stella_analyzers::ANALYZER_VERSION.into(),
                errors: vec![],
                relationships: vec![],
                entry_trace: None,
                view: Default::default(),
                origin: None,
            }
        })
        .collect()
}

/// The diff's baseline: sorting both inventories' purl lists (what any comparison must at
/// least do); returns how many purls were sorted.
pub fn sort_purls(old: &stella_sbom::Inventory, new: &stella_sbom::Inventory) -> usize {
    fn purls(i: &stella_sbom::Inventory) -> Vec<&str> {
        let mut p: Vec<&str> = i
            .components
            .iter()
            .map(|c| c.package.purl.as_str())
            .collect();
        p.sort_unstable();
        p
    }
    purls(old).len() + purls(new).len()
}
