#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_analyzers::elf::read(data);
    if let Some(condensed) = stella_analyzers::elf::condense(data, None) {
        let _ = stella_analyzers::elf::facts(&condensed);
    }
});
