#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_advisories::osv::parse(data);
    let _ = stella_advisories::debian::parse(data);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = stella_advisories::alpine::parse(&value);
        let _ = stella_advisories::nvd::parse(&value);
        let _ = stella_advisories::exploits::parse_kev(&value);
    }
    let _ = stella_advisories::exploits::parse_epss(&String::from_utf8_lossy(data));
});
