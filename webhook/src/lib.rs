//! Zastava: the admission webhook that enforces verdicts and image signatures on deploy, and
//! the node observer. Workload images are read the same way by both, and by the operator's
//! workload discovery.

pub mod workload;
