//! The BOM-Index sidecar: its bytes, its refusal of anything malformed, and impact queries
//! over many images.

use roaring::RoaringBitmap;
use std::collections::{BTreeMap, BTreeSet};
use stella_sbom::bomindex::{BomIndex, Error, ImpactIndex, MAGIC, OLDEST_VERSION, VERSION};

fn bitmap(ordinals: &[u32]) -> RoaringBitmap {
    ordinals.iter().copied().collect()
}

fn blob(ordinals: &[u32]) -> Vec<u8> {
    let mut out = vec![];
    bitmap(ordinals).serialize_into(&mut out).unwrap();
    out
}

/// The documented layout written out by hand (not by the code under test), without match keys.
fn layout(
    version: u16,
    created: Option<&str>,
    purls: &[&str],
    components: &[(u32, Vec<u8>)],
    used: Option<&[(u32, Vec<u8>)]>,
) -> Vec<u8> {
    layout_with_keys(version, created, purls, components, used, None)
}

/// The same, with match keys (written from version 2 on: a flag, then the count and strings).
fn layout_with_keys(
    version: u16,
    created: Option<&str>,
    purls: &[&str],
    components: &[(u32, Vec<u8>)],
    used: Option<&[(u32, Vec<u8>)]>,
    keys: Option<&[&str]>,
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn map(out: &mut Vec<u8>, entries: &[(u32, Vec<u8>)]) {
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (index, blob) in entries {
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
            out.extend_from_slice(blob);
        }
    }
    let mut out = b"STELLA-BOMIDX\0".to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    string(&mut out, "sha256:aa");
    match created {
        Some(c) => {
            out.push(1);
            string(&mut out, c);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(purls.len() as u32).to_le_bytes());
    for p in purls {
        string(&mut out, p);
    }
    map(&mut out, components);
    match used {
        Some(used) => {
            out.push(1);
            map(&mut out, used);
        }
        None => out.push(0),
    }
    if version >= 2 {
        match keys {
            Some(keys) => {
                out.push(1);
                out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
                for k in keys {
                    string(&mut out, k);
                }
            }
            None => out.push(0),
        }
    }
    out
}

fn tiny() -> Vec<u8> {
    layout(
        VERSION,
        Some("2024-01-01T00:00:00Z"),
        &["pkg:a@1", "pkg:b@1"],
        &[(0, blob(&[0])), (1, blob(&[1, 2]))],
        Some(&[(1, blob(&[2]))]),
    )
}

#[test]
fn the_layout_is_the_documented_one() {
    let index = BomIndex::from_bytes(&tiny()).unwrap();
    assert_eq!(index.header.magic, MAGIC);
    assert_eq!(index.header.version, VERSION);
    assert_eq!(index.header.image_digest, "sha256:aa");
    assert_eq!(
        index.header.created_at.as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    assert_eq!(index.purls, ["pkg:a@1", "pkg:b@1"]);
    assert_eq!(
        index.components,
        BTreeMap::from([(0, bitmap(&[0])), (1, bitmap(&[1, 2]))])
    );
    assert_eq!(
        index.used_by_entrypoint,
        Some(BTreeMap::from([(1, bitmap(&[2]))]))
    );
    assert_eq!(index.to_bytes(), tiny());
    assert_eq!(index.match_keys, None);
}

#[test]
fn version_2_carries_the_match_keys_and_version_1_is_still_read() {
    let purls = ["pkg:deb/debian/libssl3@3.0.11"];
    let keyed = layout_with_keys(
        VERSION,
        None,
        &purls,
        &[(0, blob(&[0]))],
        None,
        Some(&["Debian:12/openssl", "PyPI/requests"]),
    );
    let index = BomIndex::from_bytes(&keyed).unwrap();
    assert_eq!(
        index.match_keys.as_deref(),
        Some(&["Debian:12/openssl".to_string(), "PyPI/requests".to_string()][..])
    );
    assert_eq!(index.to_bytes(), keyed);
    // Out of order or repeated keys are refused.
    for bad in [["b", "a"], ["a", "a"]] {
        let bytes = layout_with_keys(VERSION, None, &purls, &[(0, blob(&[0]))], None, Some(&bad));
        let e = BomIndex::from_bytes(&bytes).unwrap_err();
        assert!(
            e.to_string().contains("match keys not strictly ascending"),
            "{e}"
        );
    }
    // A count larger than the bytes left is refused before anything is allocated.
    let mut huge = layout_with_keys(VERSION, None, &purls, &[(0, blob(&[0]))], None, Some(&[]));
    let at = huge.len() - 4;
    huge[at..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        BomIndex::from_bytes(&huge),
        Err(Error::Oversized { .. })
    ));
    // Version 1 (no keys section): read, no keys, written back as it was.
    let old = layout(OLDEST_VERSION, None, &purls, &[(0, blob(&[0]))], None);
    let index = BomIndex::from_bytes(&old).unwrap();
    assert_eq!(index.match_keys, None);
    assert_eq!(index.to_bytes(), old);
    // `with_match_keys` sorts and deduplicates.
    let built = index.with_match_keys(["b".to_string(), "a".to_string(), "b".to_string()]);
    assert_eq!(
        built.match_keys.as_deref(),
        Some(&["a".to_string(), "b".to_string()][..])
    );
}

#[test]
fn an_inventory_round_trips_byte_for_byte() {
    let inventory = super::protobuf::rich_inventory();
    let keys = || ["Debian:12/bash".to_string(), "npm/lodash".to_string()];
    let index = BomIndex::build(&inventory).with_match_keys(keys());
    let bytes = index.to_bytes();
    assert_eq!(
        bytes,
        BomIndex::build(&inventory.clone())
            .with_match_keys(keys())
            .to_bytes()
    );
    let parsed = BomIndex::from_bytes(&bytes).unwrap();
    assert_eq!(parsed, index);
    assert_eq!(parsed.to_bytes(), bytes);
    super::protobuf::golden("rich.bomidx", &bytes);

    // Ordinals are positions in `components`: bin (0), bash (1), coreutils (2), curl (3), and
    // lodash twice (4, 5) under one purl.
    assert_eq!(index.header.image_digest, inventory.image.digest);
    assert_eq!(index.header.created_at, inventory.image.created);
    let purls: BTreeSet<&str> = inventory
        .components
        .iter()
        .map(|c| c.package.purl.as_str())
        .collect();
    assert_eq!(index.purls, purls.into_iter().collect::<Vec<_>>());
    let position = |purl: &str| index.purls.iter().position(|p| p == purl).unwrap() as u32;
    let lodash = position("pkg:npm/lodash@4.17.21");
    assert_eq!(index.components[&lodash], bitmap(&[4, 5]));
    let used = index.used_by_entrypoint.as_ref().unwrap();
    assert_eq!(used[&lodash], bitmap(&[4]));
    assert_eq!(
        used[&position(&format!("bin:{}", "5e".repeat(32)))],
        bitmap(&[0])
    );
    assert_eq!(used.len(), 3, "bin, bash and lodash are used");

    assert!(index.contains("pkg:npm/lodash@4.17.21"));
    assert!(!index.contains("pkg:npm/lodash@4.17.2"));
    assert!(index.contains_prefix("pkg:npm/lodash@"));
    assert!(index.contains_prefix("pkg:deb/debian/"));
    assert!(index.contains_prefix("bin:"));
    assert!(!index.contains_prefix("pkg:deb/debian/openssl"));
    assert!(!index.contains_prefix("pkg:npm/lodash@4.17.21x"));

    // Nothing flagged: no used-by-entrypoint map at all.
    let plain = BomIndex::build(&super::sample_inventory());
    assert_eq!(plain.used_by_entrypoint, None);
    assert_eq!(
        BomIndex::from_bytes(&plain.to_bytes())
            .unwrap()
            .used_by_entrypoint,
        None
    );
}

#[test]
fn garbage_and_foreign_bytes_are_not_an_index() {
    assert!(matches!(BomIndex::from_bytes(b""), Err(Error::BadMagic)));
    assert!(matches!(
        BomIndex::from_bytes(&[0x42; 4096]),
        Err(Error::BadMagic)
    ));
    let mut wrong = tiny();
    wrong[0] = b's';
    assert!(matches!(BomIndex::from_bytes(&wrong), Err(Error::BadMagic)));
    // The JSON SBOM is not an index either.
    let json = stella_sbom::cyclonedx::to_json(&super::sample_inventory());
    assert!(matches!(
        BomIndex::from_bytes(json.as_bytes()),
        Err(Error::BadMagic)
    ));
    let future = layout(3, None, &[], &[], None);
    let e = BomIndex::from_bytes(&future).unwrap_err();
    assert!(matches!(e, Error::UnsupportedVersion(3)), "{e}");
    assert!(e.to_string().contains("versions 1 to 2"), "{e}");
}

#[test]
fn every_truncation_of_a_real_index_is_refused() {
    let bytes = BomIndex::build(&super::protobuf::rich_inventory()).to_bytes();
    for n in 0..bytes.len() {
        match BomIndex::from_bytes(&bytes[..n]) {
            Err(Error::BadMagic) if n < MAGIC.len() => {}
            Err(Error::Truncated { .. } | Error::Oversized { .. }) if n >= MAGIC.len() => {}
            other => panic!("cut at {n} of {}: {other:?}", bytes.len()),
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        BomIndex::from_bytes(&longer),
        Err(Error::Invalid {
            reason: "trailing bytes",
            ..
        })
    ));
}

#[test]
fn lengths_and_indices_are_checked_against_the_input() {
    let purls = ["pkg:a@1", "pkg:b@1"];
    // The image digest's length set to u32::MAX (offset 16: magic, version).
    let mut huge = tiny();
    huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = BomIndex::from_bytes(&huge).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Oversized {
                what: "image digest",
                claimed: 4_294_967_295,
                ..
            }
        ),
        "{e}"
    );
    // The purl count set to u32::MAX.
    let mut huge = layout(VERSION, None, &[], &[], None);
    let count = huge.len() - 9; // purl count, component count, used flag
    huge[count..count + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = BomIndex::from_bytes(&huge).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Oversized {
                what: "purl count",
                ..
            }
        ),
        "{e}"
    );
    // A bitmap length of u32::MAX.
    let mut huge = layout(VERSION, None, &purls, &[(0, blob(&[0]))], None);
    let at = huge.len() - 1 - blob(&[0]).len() - 4;
    huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = BomIndex::from_bytes(&huge).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Oversized {
                what: "bitmap length",
                ..
            }
        ),
        "{e}"
    );
    // A map entry pointing past the purl table, in either map.
    let past = layout(VERSION, None, &purls, &[(2, blob(&[0]))], None);
    let e = BomIndex::from_bytes(&past).unwrap_err();
    assert!(
        matches!(
            e,
            Error::PurlIndex {
                index: 2,
                purls: 2,
                ..
            }
        ),
        "{e}"
    );
    let past = layout(
        VERSION,
        None,
        &purls,
        &[(0, blob(&[0]))],
        Some(&[(u32::MAX, blob(&[0]))]),
    );
    assert!(matches!(
        BomIndex::from_bytes(&past),
        Err(Error::PurlIndex {
            index: u32::MAX,
            ..
        })
    ));
    // Entries out of order or repeated, purls unsorted or repeated, a flag that is not 0/1.
    let unordered = layout(
        VERSION,
        None,
        &purls,
        &[(1, blob(&[0])), (0, blob(&[1]))],
        None,
    );
    assert!(matches!(
        BomIndex::from_bytes(&unordered),
        Err(Error::Invalid { .. })
    ));
    let repeated = layout(
        VERSION,
        None,
        &purls,
        &[(0, blob(&[0])), (0, blob(&[1]))],
        None,
    );
    assert!(matches!(
        BomIndex::from_bytes(&repeated),
        Err(Error::Invalid { .. })
    ));
    let unsorted = layout(VERSION, None, &["pkg:b@1", "pkg:a@1"], &[], None);
    assert!(matches!(
        BomIndex::from_bytes(&unsorted),
        Err(Error::Invalid { .. })
    ));
    let twice = layout(VERSION, None, &["pkg:a@1", "pkg:a@1"], &[], None);
    assert!(matches!(
        BomIndex::from_bytes(&twice),
        Err(Error::Invalid { .. })
    ));
    let mut flag = layout(VERSION, None, &[], &[], None);
    *flag.last_mut().unwrap() = 2;
    assert!(matches!(
        BomIndex::from_bytes(&flag),
        Err(Error::Invalid { .. })
    ));
    // A purl that is not UTF-8.
    let mut latin1 = layout(VERSION, None, &["pkg:a@1"], &[], None);
    let at = latin1.len() - 6 - 1; // the purl's last byte (map count, two flags after)
    latin1[at] = 0xff;
    assert!(matches!(
        BomIndex::from_bytes(&latin1),
        Err(Error::Utf8 { what: "purl", .. })
    ));
}

#[test]
fn roaring_blobs_are_validated() {
    let purls = ["pkg:a@1"];
    let garbage = layout(VERSION, None, &purls, &[(0, vec![0x42; 40])], None);
    let e = BomIndex::from_bytes(&garbage).unwrap_err();
    assert!(matches!(e, Error::Bitmap { .. }), "{e}");
    assert!(e.to_string().contains("roaring bitmap"), "{e}");
    // A valid bitmap followed by junk inside its declared length.
    let mut padded = blob(&[1, 2, 3]);
    padded.extend_from_slice(&[0, 0]);
    let e = BomIndex::from_bytes(&layout(VERSION, None, &purls, &[(0, padded)], None)).unwrap_err();
    assert!(matches!(e, Error::Bitmap { .. }), "{e}");
    // An array container whose values are not sorted (hand-made: cookie, 1 container,
    // key 0 / cardinality 2, offsets, then 5 and 3).
    let mut unsorted = 12_346u32.to_le_bytes().to_vec();
    unsorted.extend_from_slice(&1u32.to_le_bytes());
    unsorted.extend_from_slice(&[0, 0, 1, 0]);
    unsorted.extend_from_slice(&16u32.to_le_bytes());
    let mut sorted = unsorted.clone();
    unsorted.extend_from_slice(&[5, 0, 3, 0]);
    sorted.extend_from_slice(&[3, 0, 5, 0]);
    let valid = BomIndex::from_bytes(&layout(VERSION, None, &purls, &[(0, sorted)], None)).unwrap();
    assert_eq!(valid.components[&0], bitmap(&[3, 5]));
    let e =
        BomIndex::from_bytes(&layout(VERSION, None, &purls, &[(0, unsorted)], None)).unwrap_err();
    assert!(matches!(e, Error::Bitmap { .. }), "{e}");
    // An empty bitmap says nothing: refused.
    let e =
        BomIndex::from_bytes(&layout(VERSION, None, &purls, &[(0, blob(&[]))], None)).unwrap_err();
    assert!(matches!(e, Error::Bitmap { .. }), "{e}");
}

fn image(digest: &str, purls: &[(&str, bool)]) -> (String, BomIndex) {
    let mut inventory = super::sample_inventory();
    inventory.image.digest = digest.to_string();
    let template = inventory.components[0].clone();
    inventory.components = purls
        .iter()
        .map(|(purl, used)| {
            let mut c = template.clone();
            c.package.purl = purl.to_string();
            c.used_by_entrypoint = *used;
            c
        })
        .collect();
    (digest.to_string(), BomIndex::build(&inventory))
}

#[test]
fn impact_queries_match_exactly_by_prefix_and_by_use() {
    let images = [
        image(
            "sha256:cc",
            &[
                ("pkg:deb/debian/openssl@3.0.11?arch=amd64", false),
                ("pkg:npm/lodash@4.17.21", true),
            ],
        ),
        image(
            "sha256:aa",
            &[
                ("pkg:deb/debian/openssl@3.0.13?arch=amd64", true),
                ("pkg:npm/lodash@4.17.20", false),
            ],
        ),
        image("sha256:bb", &[("pkg:apk/alpine/musl@1.2.4-r2", false)]),
        // The same image indexed again: still one image.
        image("sha256:bb", &[("pkg:apk/alpine/musl@1.2.4-r2", true)]),
    ];
    let impact = ImpactIndex::build(images.iter().map(|(d, i)| (d.as_str(), i)));
    assert_eq!(impact.images(), ["sha256:cc", "sha256:aa", "sha256:bb"]);
    assert_eq!(impact.purls().len(), 5);
    let q = |purls: &[&str], prefixes: &[&str], used: bool| impact.query(purls, prefixes, used);
    assert_eq!(q(&["pkg:npm/lodash@4.17.21"], &[], false), ["sha256:cc"]);
    assert_eq!(
        q(&["pkg:npm/lodash@4.17"], &[], false),
        Vec::<String>::new()
    );
    assert_eq!(
        q(&[], &["pkg:npm/lodash@"], false),
        ["sha256:aa", "sha256:cc"]
    );
    assert_eq!(q(&[], &["pkg:npm/lodash@"], true), ["sha256:cc"]);
    assert_eq!(
        q(&[], &["pkg:deb/debian/openssl"], false),
        ["sha256:aa", "sha256:cc"]
    );
    assert_eq!(q(&[], &["pkg:deb/debian/openssl"], true), ["sha256:aa"]);
    assert_eq!(
        q(
            &["pkg:apk/alpine/musl@1.2.4-r2"],
            &["pkg:npm/lodash@4.17.20"],
            false
        ),
        ["sha256:aa", "sha256:bb"]
    );
    assert_eq!(
        q(&["pkg:apk/alpine/musl@1.2.4-r2"], &[], true),
        ["sha256:bb"]
    );
    assert_eq!(
        q(&[], &["pkg:"], false),
        ["sha256:aa", "sha256:bb", "sha256:cc"]
    );
    assert_eq!(q(&[], &["pkg:pypi/"], false), Vec::<String>::new());
    assert_eq!(q(&[], &[], false), Vec::<String>::new());
    assert!(
        ImpactIndex::default()
            .query(&[], &["pkg:"], false)
            .is_empty()
    );
}

/// The bitmaps agree with scanning every image's purl set, on a pseudo-random population.
#[test]
fn impact_queries_agree_with_a_linear_scan() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let universe: Vec<String> = (0..400)
        .map(|i| format!("pkg:{}/p{}@{}", ["deb", "npm", "pypi"][i % 3], i / 7, i % 7))
        .collect();
    let mut sets = Vec::new();
    let mut images = Vec::new();
    for n in 0..120 {
        let picked: Vec<(&str, bool)> = (0..30)
            .map(|_| {
                let r = next();
                (universe[r as usize % universe.len()].as_str(), r % 5 == 0)
            })
            .collect();
        let digest = format!("sha256:{n:04}");
        sets.push((digest.clone(), picked.clone()));
        images.push(image(&digest, &picked));
    }
    let impact = ImpactIndex::build(images.iter().map(|(d, i)| (d.as_str(), i)));
    for round in 0..200 {
        let purls: Vec<&str> = (0..3)
            .map(|_| universe[next() as usize % universe.len()].as_str())
            .collect();
        let prefix = format!(
            "pkg:{}/p{}@",
            ["deb", "npm", "pypi"][round % 3],
            next() % 60
        );
        let used = round % 2 == 0;
        let naive: Vec<String> = sets
            .iter()
            .filter(|(_, picked)| {
                picked
                    .iter()
                    .any(|(p, u)| (purls.contains(p) || p.starts_with(&prefix)) && (*u || !used))
            })
            .map(|(d, _)| d.clone())
            .collect();
        assert_eq!(
            impact.query(&purls, &[&prefix], used),
            naive,
            "round {round}"
        );
    }
}
