//! Reconcilers of the Stella Ops kinds, written as dereference → validate → build → apply →
//! update_status, with the pure steps here and unit-tested beside the code.

pub mod conditions;
pub mod discovery;
pub mod events;
pub mod feed_source;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod scan;
pub mod schedule;
