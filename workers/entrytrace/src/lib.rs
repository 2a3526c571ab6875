//! EntryTrace (being written).
