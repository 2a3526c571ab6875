#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let condensed = stella_analyzers::java::condense(data);
    let text = String::from_utf8_lossy(data);
    let _ = stella_analyzers::java::parse_pom_properties(&text);
    let manifest = stella_analyzers::java::parse_manifest(&text);
    let _ = stella_analyzers::java::from_manifest(&manifest);
    let _ = condensed;
});
