#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Two versions split at the first newline, compared by every ecosystem's comparator:
    // never a panic, and the order is antisymmetric.
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\n').unwrap_or((&text, ""));
    for comparator in ["dpkg", "rpm", "apk", "semver", "go", "pep440", "maven", "nuget"] {
        let ab = stella_advisories::matching::compare(comparator, a, b);
        let ba = stella_advisories::matching::compare(comparator, b, a);
        if let (Some(ab), Some(ba)) = (ab, ba) {
            assert_eq!(ab, ba.reverse(), "{comparator}: {a:?} vs {b:?}");
        }
    }
});
