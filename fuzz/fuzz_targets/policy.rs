#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = stella_policy::load_str(&text);
    let _ = stella_policy::parse_ignore(&text);
});
