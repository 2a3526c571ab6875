//! Build: from a validated, observed Scan, the resources to apply (the worker Job of a new
//! attempt) and the status to write, by way of [`plan`]'s decision; or the status of an
//! invalid Scan. Pure: `now` is passed in.

use super::job::{self, WorkerSettings};
use super::plan::{self, Limits, Observed, Outcome, Plan};
use super::validate::{Invalid, LookAgain, ValidatedScan};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use stella_crds::scan::v1alpha1::Scan;

/// What apply creates and update_status writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Resources {
    /// The worker Job of a new attempt.
    pub job: Option<WorkerJob>,
    /// A re-evaluation of the stored inventory to run in place of a Job (its status is
    /// [`reevaluated`]'s, once it has run).
    pub reevaluation: Option<Reevaluation>,
    /// The status to write (it names the Job), its Event, and when to look again.
    pub outcome: Outcome,
}

/// What a re-evaluation judges: the stored inventory of the observed digest under the
/// current feeds and the Scan's policy, recorded as the worker records a scan.
#[derive(Clone, Debug, PartialEq)]
pub struct Reevaluation {
    /// `repository@digest`, the result's image reference (as a worker's).
    pub pinned_image: String,
    /// The policy spec as JSON text, when the Scan names one.
    pub policy: Option<String>,
    /// The Scan's namespace, for the policy's namespace matchers.
    pub namespace: Option<String>,
    /// The Scan's name, for the events that report the result.
    pub scan: String,
    /// The workloads a discovered Scan lists (`<namespace>/<Kind>/<name>`): its events go to
    /// their namespaces.
    pub workloads: Vec<String>,
    /// `spec.attest.enabled`: the new result's statements are written for the signer.
    pub attest: bool,
}

/// A worker Job to create, and the merged pull credentials of the Secret beside it (built by
/// apply, as it is owned by the created Job).
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerJob {
    pub job: Job,
    /// `repository@digest`: what the worker is told to scan.
    pub pinned_image: String,
    pub credentials: Option<Vec<u8>>,
}

impl WorkerJob {
    pub fn name(&self) -> &str {
        self.job.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Decides the next step and builds what it needs.
pub fn build(
    scan: &Scan,
    validated: &ValidatedScan,
    observed: &Observed,
    limits: &Limits,
    worker: &WorkerSettings,
    now: &Time,
) -> Resources {
    let plan = plan::decide(scan, observed, limits, now);
    let pinned_image = format!(
        "{}@{}",
        validated.reference.repository_url(),
        observed.digest
    );
    let reevaluation = (plan == Plan::Reevaluate).then(|| Reevaluation {
        pinned_image: pinned_image.clone(),
        policy: validated.policy.as_ref().map(|p| p.json.clone()),
        namespace: scan.metadata.namespace.clone(),
        scan: scan.metadata.name.clone().unwrap_or_default(),
        workloads: job::workloads(scan),
        attest: job::attests(scan),
    });
    let job = match &plan {
        Plan::Create { attempt } => {
            let attempt = job::Attempt {
                scan,
                pinned_image: pinned_image.clone(),
                attempt: *attempt,
                inputs: &observed.inputs,
                policy: validated.policy.as_ref().map(|p| p.json.clone()),
                credentials: validated.credentials.is_some(),
            };
            Some(WorkerJob {
                job: job::build(&attempt, worker),
                pinned_image,
                credentials: validated.credentials.clone(),
            })
        }
        _ => None,
    };
    let outcome = plan::status(
        scan,
        observed,
        &plan,
        job.as_ref().map(WorkerJob::name),
        limits,
        now,
    );
    Resources {
        job,
        reevaluation,
        outcome,
    }
}

/// The status after a re-evaluation recorded `result`: Ready with reason `Reevaluated`, the
/// verdict, counts and pinned inputs of the new result, no Job.
pub fn reevaluated(
    scan: &Scan,
    observed: &Observed,
    result: stella_store::ResultRow,
    delta: Option<&stella_pipeline::delta::Delta>,
    limits: &Limits,
    now: &Time,
) -> Outcome {
    let key = stella_pipeline::delta_key(&result);
    let plan = Plan::Complete {
        result: Box::new(result),
        how: plan::Completion::Reevaluated,
    };
    let mut outcome = plan::status(scan, observed, &plan, None, limits, now);
    if let Some(delta) = delta {
        outcome.status.last_delta = Some(plan::scan_delta(delta, key));
        if let Some(event) = &mut outcome.event {
            event.note = format!(
                "{}; {} new findings ({} critical, {} high), {} gone",
                event.note,
                delta.new_findings,
                delta.new_criticals,
                delta.new_high,
                delta.removed_findings
            );
        }
    }
    outcome
}

/// The status of a Scan that cannot be scanned: `Failed` with the problem, no Job, and the
/// problem's look-again.
pub fn invalid(scan: &Scan, invalid: &Invalid, limits: &Limits, now: &Time) -> Outcome {
    let retry = match invalid.look_again {
        LookAgain::OnChange => None,
        LookAgain::After(after) => Some(after),
        LookAgain::Backoff => {
            let attempts = scan.status.as_ref().map_or(0, |s| s.attempts).max(1);
            Some(plan::backoff(attempts, limits))
        }
    };
    plan::invalid(scan, invalid.reason, &invalid.message, retry, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::events::Transition;
    use crate::scan::fixtures::{DIGEST, at, limits, observed, scan, worker_settings};
    use crate::scan::validate::ValidPolicy;
    use std::time::Duration;
    use stella_crds::scan::v1alpha1::{ScanPhase, ScanStatus};

    fn validated(credentials: bool) -> ValidatedScan {
        ValidatedScan {
            reference: stella_acquire::Reference::parse("registry.example/shop/web:1.0").unwrap(),
            platform: "linux/amd64".parse().unwrap(),
            credentials: credentials.then(|| b"{\"auths\":{}}".to_vec()),
            policy: Some(ValidPolicy {
                json: "{\"rules\":[]}".into(),
                digest: "sha256:p".into(),
            }),
            insecure_registry: false,
        }
    }

    fn built(credentials: bool, running_jobs: u32) -> Resources {
        let observed = Observed {
            running_jobs,
            ..observed()
        };
        build(
            &scan(None),
            &validated(credentials),
            &observed,
            &limits(),
            &worker_settings("stella-system"),
            &at(10),
        )
    }

    #[test]
    fn a_new_attempt_builds_the_job_its_status_names() {
        let s = scan(None);
        let resources = built(true, 0);
        let job = resources.job.expect("a Job for a new attempt");
        assert_eq!(
            job.pinned_image,
            format!("registry.example/shop/web@{DIGEST}")
        );
        assert_eq!(job.credentials.as_deref(), Some(&b"{\"auths\":{}}"[..]));
        // Exactly what the Job builder makes of this attempt.
        let expected = job::build(
            &job::Attempt {
                scan: &s,
                pinned_image: job.pinned_image.clone(),
                attempt: 1,
                inputs: &observed().inputs,
                policy: Some("{\"rules\":[]}".into()),
                credentials: true,
            },
            &worker_settings("stella-system"),
        );
        assert_eq!(job.job, expected);
        let status = &resources.outcome.status;
        assert_eq!(status.phase, Some(ScanPhase::Scanning));
        assert_eq!(status.job_name.as_deref(), Some(job.name()));
        assert_eq!(status.attempts, 1);
        assert_eq!(
            resources.outcome.event.as_ref().map(|e| e.transition),
            Some(Transition::ScanStarted)
        );
        // No credentials: none for the Secret either.
        assert_eq!(built(false, 0).job.unwrap().credentials, None);
    }

    #[test]
    fn a_rescan_after_new_feeds_is_a_new_job_not_the_finished_one() {
        let first = built(true, 0).outcome.status;
        let finished = first.job_name.clone().expect("the first run's Job");
        let completed = ScanStatus {
            phase: Some(ScanPhase::Completed),
            observed_generation: Some(1),
            image_digest: Some(DIGEST.into()),
            inputs: Some(stella_crds::scan::v1alpha1::ScanInputs {
                analyzer_version: Some(observed().inputs.analyzer_version),
                feed_snapshot: Some(observed().inputs.feed_snapshot),
                policy_digest: observed().inputs.policy_digest,
                ..Default::default()
            }),
            ..first
        };
        // Up to date under the same inputs: no Job at all.
        let same = build(
            &scan(Some(completed.clone())),
            &validated(true),
            &observed(),
            &limits(),
            &worker_settings("stella-system"),
            &at(20),
        );
        assert_eq!(same.job, None);
        // New feeds: attempt 1 of a new run, under a new name.
        let mut moved = observed();
        moved.inputs.feed_snapshot =
            "sha256:1111111111111111111111111111111111111111111111111111111111111111".into();
        let rescan = build(
            &scan(Some(completed)),
            &validated(true),
            &moved,
            &limits(),
            &worker_settings("stella-system"),
            &at(20),
        );
        let job = rescan.job.expect("a rescan Job");
        assert_ne!(job.name(), finished);
        assert_eq!(rescan.outcome.status.job_name.as_deref(), Some(job.name()));
        assert_eq!(rescan.outcome.status.attempts, 1);
    }

    #[test]
    fn no_job_while_queued() {
        let resources = built(true, 2);
        assert_eq!(resources.job, None);
        assert_eq!(resources.outcome.status.phase, Some(ScanPhase::Pending));
        assert_eq!(resources.outcome.status.job_name, None);
    }

    #[test]
    fn an_invalid_scan_looks_again_as_its_problem_says() {
        let look_again = |status: Option<ScanStatus>, problem: Invalid| {
            invalid(&scan(status), &problem, &limits(), &at(1))
        };
        let field = look_again(None, Invalid::field("InvalidImage", "bad"));
        assert_eq!(field.requeue, None);
        assert_eq!(field.status.phase, Some(ScanPhase::Failed));
        // kstatus: Stalled with the problem's reason, nothing reconciling.
        let stalled = field
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "InvalidImage")
        );
        assert!(
            field
                .status
                .conditions
                .iter()
                .any(|c| c.type_ == "Reconciling" && c.status == "False")
        );
        assert_eq!(
            field.event.as_ref().map(|e| e.transition),
            Some(Transition::Failed("InvalidImage"))
        );
        assert_eq!(
            look_again(None, Invalid::reference("SecretNotFound", "gone")).requeue,
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            look_again(None, Invalid::policy("bad")).requeue,
            Some(Duration::from_secs(300))
        );
        // The registry: the attempts' backoff (at least the first step).
        let unresolved = Invalid::unresolved("Unreachable", "down");
        assert_eq!(
            look_again(None, unresolved.clone()).requeue,
            Some(Duration::from_secs(30))
        );
        let third = ScanStatus {
            attempts: 3,
            ..Default::default()
        };
        assert_eq!(
            look_again(Some(third), unresolved).requeue,
            Some(Duration::from_secs(120))
        );
    }
}
