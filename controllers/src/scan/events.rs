//! The Kubernetes Events the Scan controller raises: one per status transition (the reasons
//! the README lists: `ScanStarted`, `ScanSucceeded`, `ResultReused`, `Reevaluated`,
//! `PolicyFailed`, each
//! failure reason), and one per failed reconcile.

use super::Error;
use kube::runtime::events::{Event, EventType};

/// Longest note kept on an Event.
const MAX_NOTE_CHARS: usize = 1000;

/// A transition of a Scan worth an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A worker Job was created for an attempt.
    ScanStarted,
    /// A finished worker Job's result was written.
    ScanSucceeded,
    /// The catalog's result for the same digest and inputs was reused (no Job).
    ResultReused,
    /// The stored inventory was judged again under new feeds or a new policy (no pull, no
    /// analysis, no Job).
    Reevaluated,
    /// A result was written (scanned or reused) whose verdict is `FAIL`.
    PolicyFailed,
    /// An attempt failed, or the Scan cannot be scanned as written: the condition's reason.
    Failed(&'static str),
}

impl Transition {
    /// The Event's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Transition::ScanStarted => "ScanStarted",
            Transition::ScanSucceeded => "ScanSucceeded",
            Transition::ResultReused => "ResultReused",
            Transition::Reevaluated => "Reevaluated",
            Transition::PolicyFailed => "PolicyFailed",
            Transition::Failed(reason) => reason,
        }
    }

    /// Whether the Event is a `Warning` (otherwise `Normal`).
    pub fn is_warning(self) -> bool {
        matches!(self, Transition::PolicyFailed | Transition::Failed(_))
    }
}

/// An Event to raise on a Scan: the transition and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanEvent {
    pub transition: Transition,
    pub note: String,
}

impl ScanEvent {
    pub fn new(transition: Transition, note: impl Into<String>) -> ScanEvent {
        ScanEvent {
            transition,
            note: note.into(),
        }
    }

    /// As kube's recorder publishes it.
    pub fn to_event(&self) -> Event {
        event(
            if self.transition.is_warning() {
                EventType::Warning
            } else {
                EventType::Normal
            },
            self.transition.reason().to_string(),
            &self.note,
        )
    }
}

/// The Warning of a failed reconcile: reason `ReconcileFailed<kind>` (the error's variant
/// name, never its text, so reasons stay a bounded set), the error as the note.
pub fn reconcile_failed(error: &Error) -> Event {
    event(
        EventType::Warning,
        format!("ReconcileFailed{}", error.kind()),
        &error.to_string(),
    )
}

fn event(type_: EventType, reason: String, note: &str) -> Event {
    Event {
        type_,
        reason,
        note: Some(note.chars().take(MAX_NOTE_CHARS).collect()),
        action: "Reconcile".into(),
        secondary: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_spelled_as_the_readme_lists_them_and_failures_warn() {
        let cases = [
            (Transition::ScanStarted, "ScanStarted", false),
            (Transition::ScanSucceeded, "ScanSucceeded", false),
            (Transition::ResultReused, "ResultReused", false),
            (Transition::Reevaluated, "Reevaluated", false),
            (Transition::PolicyFailed, "PolicyFailed", true),
            (Transition::Failed("Unreachable"), "Unreachable", true),
        ];
        for (transition, reason, warning) in cases {
            assert_eq!(
                (transition.reason(), transition.is_warning()),
                (reason, warning)
            );
            let event = ScanEvent::new(transition, "n").to_event();
            assert_eq!(event.reason, reason);
            assert_eq!(event.type_ == EventType::Warning, warning);
            assert_eq!(event.action, "Reconcile");
        }
        let long = ScanEvent::new(Transition::ScanStarted, "é".repeat(2000)).to_event();
        assert_eq!(long.note.unwrap().chars().count(), MAX_NOTE_CHARS);
    }

    #[test]
    fn a_failed_reconcile_is_named_by_its_kind_not_its_text() {
        let error = Error::UpdateStatus(kube::Error::LinesCodecMaxLineLengthExceeded);
        let event = reconcile_failed(&error);
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(event.reason, "ReconcileFailedUpdateStatus");
        assert!(
            event
                .note
                .unwrap()
                .starts_with("failed to write the Scan status")
        );
    }
}
