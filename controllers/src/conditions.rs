//! Standard `status.conditions`: one small constructor per condition type, and a merge that
//! moves `lastTransitionTime` only when a condition's status flips (operator-rs
//! `compute_conditions`), so Argo CD / Flux health checks and `kubectl wait` see stable values.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `Ready`: the object is reconciled and usable.
pub const READY: &str = "Ready";
/// `Scanned` (Scan): a result for the current digest and inputs exists.
pub const SCANNED: &str = "Scanned";
/// `Failed` (Scan): the last attempt failed; the reason says why.
pub const FAILED: &str = "Failed";
/// `Valid` (Policy): the rules and scoring config validate.
pub const VALID: &str = "Valid";
/// `Synced` (FeedSource, SymbolSource): the last sync succeeded.
pub const SYNCED: &str = "Synced";

/// `Reconciling` (kstatus): work toward the spec is under way.
pub const RECONCILING: &str = "Reconciling";
/// `Stalled` (kstatus): the object cannot reach its spec without a change (an invalid spec, a
/// missing reference) or its last attempt failed; the reason says which.
pub const STALLED: &str = "Stalled";

/// Longest condition message kept; longer ones are cut on a character boundary.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// A condition's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// A condition to set, before it is merged into the stored list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: Status,
    /// CamelCase machine-readable reason.
    pub reason: &'static str,
    pub message: String,
}

/// `Ready=True`.
pub fn ready(reason: &'static str, message: impl Into<String>) -> Desired {
    Desired {
        type_: READY,
        status: Status::True,
        reason,
        message: message.into(),
    }
}

/// `Ready=False`.
pub fn not_ready(reason: &'static str, message: impl Into<String>) -> Desired {
    Desired {
        type_: READY,
        status: Status::False,
        reason,
        message: message.into(),
    }
}

/// Any condition type.
pub fn condition(
    type_: &'static str,
    status: Status,
    reason: &'static str,
    message: impl Into<String>,
) -> Desired {
    Desired {
        type_,
        status,
        reason,
        message: message.into(),
    }
}

/// `Reconciling=True` and `Stalled=False`: work under way, with its reason.
pub fn in_progress(reason: &'static str, message: impl Into<String>) -> [Desired; 2] {
    let message = message.into();
    [
        condition(RECONCILING, Status::True, reason, message),
        condition(STALLED, Status::False, reason, "not stalled"),
    ]
}

/// `Reconciling=False` and `Stalled=False`: done, nothing stuck.
pub fn settled(reason: &'static str) -> [Desired; 2] {
    [
        condition(RECONCILING, Status::False, reason, "nothing in progress"),
        condition(STALLED, Status::False, reason, "not stalled"),
    ]
}

/// `Reconciling=False` and `Stalled=True`: stuck, with why.
pub fn stalled(reason: &'static str, message: impl Into<String>) -> [Desired; 2] {
    [
        condition(RECONCILING, Status::False, reason, "nothing in progress"),
        condition(STALLED, Status::True, reason, message),
    ]
}

/// Merges `desired` into `current`: conditions of the same type are replaced, keeping their
/// `lastTransitionTime` when the status did not change; types not in `desired` are kept as
/// they are; the result is sorted by type so the status serialises deterministically.
pub fn merge(
    current: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut merged: Vec<Condition> = current
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for want in desired {
        let previous = current.iter().find(|c| c.type_ == want.type_);
        let last_transition_time = match previous {
            Some(previous) if previous.status == want.status.as_str() => {
                previous.last_transition_time.clone()
            }
            _ => now.clone(),
        };
        merged.push(Condition {
            type_: want.type_.to_string(),
            status: want.status.as_str().to_string(),
            reason: want.reason.to_string(),
            // An empty message serialises as null, which the API server refuses.
            message: if want.message.is_empty() {
                want.reason.to_string()
            } else {
                truncate(&want.message)
            },
            last_transition_time,
            observed_generation: generation,
        });
    }
    merged.sort_by(|a, b| a.type_.cmp(&b.type_));
    merged
}

/// Whether `conditions` holds `type_` with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_LEN {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_LEN - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let first = merge(&[], &[not_ready("Pending", "waiting")], Some(1), &at(100));
        assert_eq!(first[0].last_transition_time, at(100));

        // Same status, new reason and message: time stays.
        let second = merge(
            &first,
            &[not_ready("Scanning", "pulling layers")],
            Some(1),
            &at(200),
        );
        assert_eq!(second[0].last_transition_time, at(100));
        assert_eq!(second[0].reason, "Scanning");
        assert_eq!(second[0].message, "pulling layers");

        // Flip: time moves.
        let third = merge(&second, &[ready("Completed", "scanned")], Some(2), &at(300));
        assert_eq!(third[0].last_transition_time, at(300));
        assert_eq!(third[0].status, "True");
        assert_eq!(third[0].observed_generation, Some(2));
    }

    #[test]
    fn other_types_are_kept_and_the_list_is_sorted() {
        let current = merge(
            &[],
            &[
                condition(SCANNED, Status::True, "Completed", ""),
                condition(FAILED, Status::False, "NoError", ""),
            ],
            Some(1),
            &at(1),
        );
        let merged = merge(&current, &[ready("Completed", "")], Some(1), &at(2));
        let types: Vec<_> = merged.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Failed", "Ready", "Scanned"]);
        assert!(is_true(&merged, READY));
        assert!(!is_true(&merged, FAILED));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let message = "é".repeat(MAX_MESSAGE_LEN);
        let merged = merge(&[], &[not_ready("WorkerFailed", message)], None, &at(1));
        assert!(merged[0].message.len() <= MAX_MESSAGE_LEN);
        assert!(merged[0].message.ends_with("..."));
    }
}
