//! VEX ingest (being written).
