//! Loading the policy an evaluation applies: a file, or a text from elsewhere (an environment
//! variable, a `Policy` object), validated, normalised and digested by `stella-policy`.

use crate::{Error, Result};
use std::path::Path;

/// Reads and checks a policy file (a `Policy` manifest or its spec, YAML or JSON).
pub fn load_policy_file(path: &Path) -> Result<stella_policy::Loaded> {
    stella_policy::load_file(path).map_err(|e| Error::InvalidPolicy {
        origin: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Checks a policy text; `origin` names where it came from in messages (`$STELLA_POLICY`).
pub fn load_policy_text(origin: &str, text: &str) -> Result<stella_policy::Loaded> {
    stella_policy::load_str(text).map_err(|issues| Error::InvalidPolicy {
        origin: origin.to_string(),
        detail: issues.to_string(),
    })
}
