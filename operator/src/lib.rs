//! The operator's runtime pieces that talk to the API server (the binary is a thin shell).

pub mod api;
pub mod cli;
pub mod leader;
pub mod serve;
