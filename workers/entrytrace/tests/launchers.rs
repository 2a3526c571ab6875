//! Language launchers.
