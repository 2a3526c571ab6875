#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = stella_analyzers::dpkg::parse_stanzas_within(&text);
    let _ = stella_analyzers::dpkg::copyright_licenses(&text);
    let _ = stella_analyzers::dpkg::md5sums_paths(&text);
});
