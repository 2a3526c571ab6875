#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_analyzers::rpm::read_database(data);
    let _ = stella_analyzers::rpm::parse_mariner_manifest(&String::from_utf8_lossy(data));
});
