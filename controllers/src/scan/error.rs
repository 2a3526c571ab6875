//! The Scan controller's errors: one variant per step, the kind each is labelled with in
//! metrics and events, and how long `error_policy` waits before retrying.
//!
//! Problems of the Scan itself (an invalid field, a missing or invalid reference, an image the
//! registry cannot resolve) are not errors: they are the Scan's status, written once, and the
//! reconcile returns their look-again ([`super::validate::LookAgain`]). What reaches
//! `error_policy` is the cluster, the catalog or the finalizer failing: transient, so it backs
//! off exponentially with jitter, per Scan, and the count resets on the next success.

use kube::runtime::finalizer;
use std::convert::Infallible;
use std::time::Duration;

/// Errors that stop a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading what the Scan refers to: its pull secrets, its Policy.
    #[error("failed to {action}: {source}")]
    Dereference {
        action: &'static str,
        source: kube::Error,
    },
    /// Reading the state of the Scan's attempt: its Job, the Job's pods, the running Jobs.
    #[error("failed to {action}: {source}")]
    Observe {
        action: &'static str,
        source: kube::Error,
    },
    /// Creating the worker Job or its credentials Secret.
    #[error("failed to {action}: {source}")]
    Apply {
        action: &'static str,
        source: kube::Error,
    },
    /// Writing the Scan's status.
    #[error("failed to write the Scan status: {0}")]
    UpdateStatus(#[source] kube::Error),
    /// Deleting a deleted Scan's Jobs and Secrets, or listing the Scans that share its image.
    #[error("failed to {action}: {source}")]
    Cleanup {
        action: &'static str,
        source: kube::Error,
    },
    /// Adding or removing the finalizer (kube-runtime's `finalizer()`).
    #[error(transparent)]
    Finalizer(finalizer::Error<Infallible>),
    /// The catalog: results, runs, artifacts, the feed snapshot, forgetting an image.
    #[error("failed to {action}: {source}")]
    Store {
        action: &'static str,
        source: stella_store::Error,
    },
    /// Re-evaluating a stored inventory (the pipeline's evaluate and record).
    #[error("failed to re-evaluate the stored inventory: {0}")]
    Reevaluate(#[source] stella_pipeline::Error),
    /// Reading or storing what the signer signs (the key's own problems are the status').
    #[error("failed to sign the result: {0}")]
    Attest(#[source] stella_pipeline::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The variant name: the metric label and the event reason's suffix.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Dereference { .. } => "Dereference",
            Error::Observe { .. } => "Observe",
            Error::Apply { .. } => "Apply",
            Error::UpdateStatus(_) => "UpdateStatus",
            Error::Cleanup { .. } => "Cleanup",
            Error::Finalizer(_) => "Finalizer",
            Error::Store { .. } => "Store",
            Error::Reevaluate(_) => "Reevaluate",
            Error::Attest(_) => "Attest",
        }
    }
}

/// Errors of the finalizer helper: those of our own `Apply`/`Cleanup` arms pass through with
/// their kind; the helper's own (adding or removing the finalizer) are `Finalizer`.
impl From<finalizer::Error<Error>> for Error {
    fn from(error: finalizer::Error<Error>) -> Error {
        use finalizer::Error as F;
        match error {
            F::ApplyFailed(error) | F::CleanupFailed(error) => error,
            F::AddFinalizer(source) => Error::Finalizer(F::AddFinalizer(source)),
            F::RemoveFinalizer(source) => Error::Finalizer(F::RemoveFinalizer(source)),
            F::UnnamedObject => Error::Finalizer(F::UnnamedObject),
            F::InvalidFinalizer => Error::Finalizer(F::InvalidFinalizer),
        }
    }
}

/// `map_err` adapters naming what failed.
pub(crate) fn dereference(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Dereference { action, source }
}

pub(crate) fn observe(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Observe { action, source }
}

pub(crate) fn apply(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Apply { action, source }
}

pub(crate) fn cleanup(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Cleanup { action, source }
}

pub(crate) fn store(action: &'static str) -> impl FnOnce(stella_store::Error) -> Error {
    move |source| Error::Store { action, source }
}

/// First wait after a transient failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest wait after repeated transient failures.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// `error_policy`'s wait before retrying a Scan whose reconcile failed `failures` times in a
/// row (1 for the first): `BACKOFF_BASE` doubling per failure up to `BACKOFF_MAX`, scaled by
/// `jitter` (in `[0, 1)`) into its upper half, `[d/2, d)`, so Scans that failed together do
/// not all retry together, and never sooner than half the step.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let step = BACKOFF_BASE
        .saturating_mul(1u32 << exponent)
        .min(BACKOFF_MAX);
    step.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// A jitter factor in `[0, 1)` (from std's randomly keyed hasher: no RNG dependency).
pub fn jitter() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube_error() -> kube::Error {
        kube::Error::LinesCodecMaxLineLengthExceeded
    }

    #[test]
    fn transient_failures_back_off_exponentially_within_the_jitter_bounds() {
        // Without jitter's low end: 1 s doubling, capped at 5 min.
        let top = |n| backoff(n, 1.0);
        assert_eq!(top(1), Duration::from_secs(1));
        assert_eq!(top(2), Duration::from_secs(2));
        assert_eq!(top(4), Duration::from_secs(8));
        assert_eq!(top(9), Duration::from_secs(256));
        assert_eq!(top(10), Duration::from_secs(300), "capped");
        assert_eq!(top(u32::MAX), Duration::from_secs(300), "no overflow");
        assert_eq!(backoff(0, 1.0), Duration::from_secs(1), "0 counts as 1");
        // The jitter keeps every wait in the upper half of its step.
        for n in 1..=12 {
            let step = top(n);
            for j in [0.0, 0.25, 0.5, 0.999_999] {
                let wait = backoff(n, j);
                assert!(wait >= step / 2 && wait <= step, "{n} {j}: {wait:?}");
            }
            assert_eq!(backoff(n, 0.0), step / 2);
        }
        // Out-of-range jitter is clamped, never a longer or negative wait.
        assert_eq!(backoff(3, 7.0), top(3));
        assert_eq!(backoff(3, -1.0), top(3) / 2);
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn each_step_is_its_own_kind_and_the_finalizer_passes_ours_through() {
        let cases = [
            (dereference("read the policy")(kube_error()), "Dereference"),
            (observe("read the worker Job")(kube_error()), "Observe"),
            (apply("create the worker Job")(kube_error()), "Apply"),
            (Error::UpdateStatus(kube_error()), "UpdateStatus"),
            (cleanup("list Scans")(kube_error()), "Cleanup"),
            (
                store("read the catalog")(stella_store::Error::Key("x".into())),
                "Store",
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind);
            assert!(error.to_string().starts_with("failed to "), "{error}");
        }
        let ours: Error =
            finalizer::Error::CleanupFailed(cleanup("list Scans")(kube_error())).into();
        assert_eq!(ours.kind(), "Cleanup");
        let ours: Error = finalizer::Error::ApplyFailed(Error::UpdateStatus(kube_error())).into();
        assert_eq!(ours.kind(), "UpdateStatus");
        let helper: Error = finalizer::Error::<Error>::AddFinalizer(kube_error()).into();
        assert_eq!(helper.kind(), "Finalizer");
        assert!(helper.to_string().starts_with("failed to add finalizer"));
        let helper: Error = finalizer::Error::<Error>::RemoveFinalizer(kube_error()).into();
        assert_eq!(helper.kind(), "Finalizer");
    }
}
