//! Leader election on a `coordination.k8s.io/v1` Lease, the way client-go's `leaderelection`
//! does it (kube-rs has none built in): the holder renews `renewTime` every retry period; anyone
//! may take the lease over once `renewTime + leaseDurationSeconds` has passed, bumping
//! `leaseTransitions`; every write carries the `resourceVersion` it read, so two candidates
//! racing for an expired lease cannot both win (the loser gets a 409 and stays a follower). A
//! leader that cannot renew within the renew deadline steps down before anyone else may take
//! over. Clocks: the lease is judged by the candidate's own clock against the recorded times,
//! as in client-go, so nodes' clocks must agree to within a fraction of the lease duration.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::Duration;

/// How to elect.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    /// The Lease's name (`stella-operator`).
    pub name: String,
    /// This candidate (the pod name).
    pub identity: String,
    /// How long a lease holds without renewal (client-go's default 15 s).
    pub lease_duration: Duration,
    /// How long the holder keeps trying to renew before stepping down (10 s).
    pub renew_deadline: Duration,
    /// How often candidates try (2 s).
    pub retry_period: Duration,
}

impl Config {
    pub fn new(namespace: &str, name: &str, identity: &str) -> Config {
        Config {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// One candidate.
#[derive(Clone)]
pub struct Elector {
    api: Api<Lease>,
    config: Config,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("config", &self.config)
            .finish()
    }
}

/// What one attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the lease (acquired or renewed).
    Leader,
    /// Someone else holds a live lease.
    Follower { holder: String },
}

impl Elector {
    pub fn new(client: kube::Client, config: Config) -> Elector {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// One attempt to acquire or renew the lease at `now`.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<Attempt, kube::Error> {
        let me = &self.config.identity;
        let duration = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let current = match self.api.get_opt(&self.config.name).await? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(me.clone()),
                        lease_duration_seconds: Some(duration),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(Attempt::Leader),
                    // Someone created it first.
                    Err(kube::Error::Api(e)) if e.code == 409 => self.follower().await,
                    Err(e) => Err(e),
                };
            }
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(seconds)) => {
                *renewed + SignedDuration::from_secs(i64::from(seconds)) < now
            }
            _ => true,
        };
        if holder != *me && !holder.is_empty() && !expired {
            return Ok(Attempt::Follower { holder });
        }
        let mut next = current.clone();
        let spec = next.spec.get_or_insert_with(LeaseSpec::default);
        if holder != *me {
            spec.holder_identity = Some(me.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(duration);
        // `replace` sends the resourceVersion we read: a concurrent writer makes it a 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(Attempt::Leader),
            Err(kube::Error::Api(e)) if e.code == 409 => self.follower().await,
            Err(e) => Err(e),
        }
    }

    /// Whether the API server answers a read of the lease.
    pub async fn reachable(&self) -> bool {
        self.api.get_opt(&self.config.name).await.is_ok()
    }

    async fn follower(&self) -> Result<Attempt, kube::Error> {
        let holder = self
            .api
            .get_opt(&self.config.name)
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .unwrap_or_default();
        Ok(Attempt::Follower { holder })
    }

    /// Gives the lease up (on graceful shutdown), so a follower takes over at its next try
    /// instead of waiting for the lease to expire. Only the holder can release.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            // It changed hands meanwhile: nothing of ours to release.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Campaigns until `shutdown` resolves: tries every retry period, publishes whether this
    /// candidate leads on `leading`, steps down when it cannot renew within the renew deadline,
    /// and releases the lease on shutdown.
    pub async fn run(
        self,
        leading: tokio::sync::watch::Sender<bool>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut last_renewal: Option<std::time::Instant> = None;
        loop {
            let attempt = self.try_acquire_or_renew(Timestamp::now()).await;
            let is_leader = match attempt {
                Ok(Attempt::Leader) => {
                    last_renewal = Some(std::time::Instant::now());
                    true
                }
                Ok(Attempt::Follower { .. }) => {
                    last_renewal = None;
                    false
                }
                // An API error: a leader keeps leading until the renew deadline passes.
                Err(_) => last_renewal.is_some_and(|at| at.elapsed() < self.config.renew_deadline),
            };
            leading.send_if_modified(|current| {
                let changed = *current != is_leader;
                *current = is_leader;
                changed
            });
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
        if *leading.borrow() {
            let _ = self.release().await;
            leading.send_replace(false);
        }
    }
}
