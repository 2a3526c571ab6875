//! Zastava: the admission webhook that enforces verdicts and image signatures on deploy (the
//! node observer is not written yet). Workload images are read the same way here and by the
//! operator's workload discovery.
//!
//! The webhook's pipeline: `review` parses, `policy` selects the governing Policies,
//! `registry` and `verdicts` gather facts behind bounded `cache`s, `signature` verifies cosign
//! signatures, `decide` decides (pure), `server` answers under a deadline and records
//! `metrics` and `events`; `tls` keeps the serving certificate; `cli` wires the process.

pub mod cache;
pub mod cli;
pub mod decide;
pub mod events;
pub mod metrics;
pub mod policy;
pub mod registry;
pub mod review;
pub mod scans;
pub mod server;
pub mod signature;
pub mod tls;
pub mod verdicts;
pub mod workload;
