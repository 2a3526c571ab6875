//! Advisories and matching: real feed formats normalised into one canonical model, ecosystem
//! version comparators (each checked against the upstream tools' own test vectors), and
//! exact, explainable matching of packages to advisories.

pub mod alpine;
pub mod cvss;
pub mod debian;
pub mod exploits;
pub mod matching;
pub mod model;
pub mod nvd;
pub mod osv;
pub mod snapshot;
pub mod version;

pub use model::Advisory;
