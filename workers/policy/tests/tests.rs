//! The policy engine from the outside: loading and validation, the digest, evaluation.

mod digest;
mod evaluation;
mod validation;

/// Issues of a policy that must be invalid, one `location: message` line each.
pub(crate) fn errors(text: &str) -> Vec<String> {
    match stella_policy::load_str(text) {
        Ok(loaded) => panic!("expected errors, got a valid policy {}", loaded.digest),
        Err(issues) => issues.lines(),
    }
}
