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
    /// The status to write (it names the Job), its Event, and when to look again.
    pub outcome: Outcome,
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
    let job = match &plan {
        Plan::Create { attempt } => {
            let pinned_image = format!(
                "{}@{}",
                validated.reference.repository_url(),
                observed.digest
            );
            let attempt = job::Attempt {
                scan,
                pinned_image: pinned_image.clone(),
                attempt: *attempt,
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
    Resources { job, outcome }
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
    use crate::scan::plan::Inputs;
    use crate::scan::validate::ValidPolicy;
    use k8s_openapi::jiff::Timestamp;
    use std::time::Duration;
    use stella_crds::scan::v1alpha1::{ScanPhase, ScanStatus};

    const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn limits(max_concurrent: u32) -> Limits {
        Limits {
            max_concurrent,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(600),
            resync: Duration::from_secs(600),
        }
    }

    fn worker() -> WorkerSettings {
        WorkerSettings {
            namespace: "stella-system".into(),
            image: "stella-ops/worker:test".into(),
            service_account: "stella-worker".into(),
            backoff_limit: 2,
            active_deadline_seconds: 1800,
            ttl_seconds_after_finished: 600,
            cpu_request: "500m".into(),
            cpu_limit: "2".into(),
            memory_request: "256Mi".into(),
            memory_limit: "1Gi".into(),
            storage_secret: None,
        }
    }

    fn scan(status: Option<ScanStatus>) -> Scan {
        let mut scan: Scan = serde_json::from_value(serde_json::json!({
            "apiVersion": "stella-ops.org/v1alpha1", "kind": "Scan",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "generation": 1},
            "spec": {"image": "registry.example/shop/web:1.0"},
        }))
        .unwrap();
        scan.status = status;
        scan
    }

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

    fn observed(running_jobs: u32) -> Observed {
        Observed {
            digest: DIGEST.into(),
            inputs: Inputs {
                analyzer_version: "a1".into(),
                feed_snapshot: "f".into(),
                policy_digest: Some("sha256:p".into()),
            },
            job: None,
            run: None,
            latest: None,
            cached: None,
            artifacts: vec![],
            running_jobs,
        }
    }

    #[test]
    fn a_new_attempt_builds_the_job_its_status_names() {
        let s = scan(None);
        let built = build(
            &s,
            &validated(true),
            &observed(0),
            &limits(1),
            &worker(),
            &at(10),
        );
        let job = built.job.expect("a Job for a new attempt");
        assert_eq!(job.name(), job::job_name(&s, 1));
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
                policy: Some("{\"rules\":[]}".into()),
                credentials: true,
            },
            &worker(),
        );
        assert_eq!(job.job, expected);
        let status = &built.outcome.status;
        assert_eq!(status.phase, Some(ScanPhase::Scanning));
        assert_eq!(status.job_name.as_deref(), Some(job.name()));
        assert_eq!(status.attempts, 1);
        assert_eq!(
            built.outcome.event.as_ref().map(|e| e.transition),
            Some(Transition::ScanStarted)
        );
        // No credentials: none for the Secret either.
        let plain = build(
            &s,
            &validated(false),
            &observed(0),
            &limits(1),
            &worker(),
            &at(10),
        );
        assert_eq!(plain.job.unwrap().credentials, None);
    }

    #[test]
    fn no_job_while_queued() {
        let built = build(
            &scan(None),
            &validated(true),
            &observed(1),
            &limits(1),
            &worker(),
            &at(10),
        );
        assert_eq!(built.job, None);
        assert_eq!(built.outcome.status.phase, Some(ScanPhase::Pending));
        assert_eq!(built.outcome.status.job_name, None);
    }

    #[test]
    fn an_invalid_scan_looks_again_as_its_problem_says() {
        let field = invalid(
            &scan(None),
            &Invalid::field("InvalidImage", "bad"),
            &limits(1),
            &at(1),
        );
        assert_eq!(field.requeue, None);
        assert_eq!(field.status.phase, Some(ScanPhase::Failed));
        assert_eq!(
            field.event.as_ref().map(|e| e.transition),
            Some(Transition::Failed("InvalidImage"))
        );
        let reference = invalid(
            &scan(None),
            &Invalid::reference("SecretNotFound", "gone"),
            &limits(1),
            &at(1),
        );
        assert_eq!(reference.requeue, Some(Duration::from_secs(60)));
        let policy = invalid(&scan(None), &Invalid::policy("bad"), &limits(1), &at(1));
        assert_eq!(policy.requeue, Some(Duration::from_secs(300)));
        // The registry: the attempts' backoff (at least the first step).
        let unresolved = Invalid::unresolved("Unreachable", "down");
        assert_eq!(
            invalid(&scan(None), &unresolved, &limits(1), &at(1)).requeue,
            Some(Duration::from_secs(30))
        );
        let third = ScanStatus {
            attempts: 3,
            ..Default::default()
        };
        assert_eq!(
            invalid(&scan(Some(third)), &unresolved, &limits(1), &at(1)).requeue,
            Some(Duration::from_secs(120))
        );
    }
}
