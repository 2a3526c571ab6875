//! Advisories and matching. This first part holds the version comparators, one per scheme,
//! each checked against the upstream tools' own test vectors (`../shared/fixtures/version-vectors/`).

pub mod version;
