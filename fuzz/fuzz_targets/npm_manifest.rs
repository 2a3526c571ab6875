#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_analyzers::npm::parse_manifest(data);
});
