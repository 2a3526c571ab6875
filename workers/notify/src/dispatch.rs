//! The dispatcher: reads the outbox after its cursor, plans deliveries for the rules that
//! match (recorded with the cursor in one transaction, keyed by idempotency key), folds
//! digest windows that closed, and sends what is due under a lease — so a restart re-plans
//! nothing twice, two dispatchers never send one delivery, and a dispatcher that died
//! mid-send leaves its deliveries to the next once their lease runs out.
//!
//! Delivery is at least once on the wire: a dispatcher killed after the receiver accepted a
//! message but before it recorded that sends it again after the lease; the message carries
//! the delivery's idempotency key (`webhook-id`) so the receiver can drop the repeat.

use crate::event::Event;
use crate::render::Message;
use crate::rules::{Period, Rule, Template, digest_id, plan, stamp};
use crate::send::{Channel, Sent, backoff, deliver};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stella_store::{DeliveryRow, NotifyDb, Outcome};

/// Where the dispatcher finds the rules and channels (the controllers keep it current).
pub trait Directory: Send + Sync {
    fn rules(&self) -> Vec<Rule>;
    fn channel(&self, id: &str) -> Option<Channel>;
}

/// The time, injectable so that tests drive throttle and digest windows.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tick {
    pub events: usize,
    pub planned: usize,
    pub throttled: usize,
    pub coalesced: u64,
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
    pub deferred: usize,
    /// Seconds from each sent delivery's event to its delivery.
    pub latencies: Vec<f64>,
    /// Sent deliveries per channel.
    pub sent_by_channel: Vec<String>,
    /// Dropped deliveries by reason (`throttled`, `dead`).
    pub dropped: Vec<&'static str>,
}

/// The dispatcher.
pub struct Dispatcher {
    db: NotifyDb,
    directory: Arc<dyn Directory>,
    clock: Arc<dyn Clock>,
    owner: String,
    lease: Duration,
    batch: u32,
    /// Per channel: the minute window and how many were sent in it.
    rate: Mutex<HashMap<String, (i64, u32)>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// The outbox cursor every dispatcher shares (planning is idempotent, so two replicas that
/// both plan record each delivery once).
pub const CURSOR: &str = "dispatcher";

impl Dispatcher {
    /// A dispatcher named `owner` (unique per process: the lease holder's name).
    pub fn new(
        db: NotifyDb,
        directory: Arc<dyn Directory>,
        clock: Arc<dyn Clock>,
        owner: &str,
    ) -> Dispatcher {
        Dispatcher {
            db,
            directory,
            clock,
            owner: owner.to_string(),
            lease: Duration::from_secs(60),
            batch: 64,
            rate: Mutex::new(HashMap::new()),
        }
    }

    /// How long a claimed delivery stays this dispatcher's (default 60 s: longer than a
    /// channel's timeout, so a slow send is not taken over while it runs).
    pub fn with_lease(mut self, lease: Duration) -> Dispatcher {
        self.lease = lease;
        self
    }

    /// One pass: plan, fold, send.
    pub async fn tick(&self) -> Result<Tick, stella_store::Error> {
        let mut tick = Tick::default();
        self.plan_new(&mut tick).await?;
        self.fold_digests(&mut tick).await?;
        self.send_due(&mut tick).await?;
        Ok(tick)
    }

    async fn plan_new(&self, tick: &mut Tick) -> Result<(), stella_store::Error> {
        let rules = self.directory.rules();
        loop {
            let cursor = self.db.cursor(CURSOR).await?;
            let batch = self.db.events_after(cursor, 500).await?;
            let Some(last) = batch.last().map(|(seq, _)| *seq) else {
                return Ok(());
            };
            let now = self.clock.now();
            let mut planned = Vec::new();
            for (_, row) in &batch {
                match Event::from_outbox(row) {
                    Ok(event) => planned.extend(plan(&event, &rules, now)),
                    Err(e) => {
                        tracing::warn!(event = row.event_id, error = %e, "an outbox event does not parse: skipped")
                    }
                }
            }
            tick.events += batch.len();
            let recorded = self.db.plan(CURSOR, last, &stamp(now), &planned).await?;
            tick.planned += recorded.len();
            let throttled = recorded.iter().filter(|d| d.status == "throttled").count();
            tick.throttled += throttled;
            tick.dropped
                .extend(std::iter::repeat_n("throttled", throttled));
        }
    }

    async fn fold_digests(&self, tick: &mut Tick) -> Result<(), stella_store::Error> {
        let now = self.clock.now();
        let due = self.db.due_digests(&stamp(now)).await?;
        let mut groups: Vec<(String, Vec<DeliveryRow>)> = Vec::new();
        for row in due {
            match groups.last_mut() {
                Some((key, rows)) if *key == row.group_key => rows.push(row),
                _ => groups.push((row.group_key.clone(), vec![row])),
            }
        }
        for (key, rows) in groups {
            let first = &rows[0];
            let members: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
            let digest = DeliveryRow {
                id: digest_id(&key),
                event_id: first.event_id.clone(),
                rule: first.rule.clone(),
                action: first.action,
                channel: first.channel.clone(),
                target: first.target.clone(),
                status: "pending".into(),
                reason: format!(
                    "digest of {} event(s), window ending {}",
                    rows.len(),
                    first.next_attempt_at
                ),
                group_key: key.clone(),
                members: serde_json::to_string(&members).unwrap_or_else(|_| "[]".into()),
                attempts: 0,
                last_error: String::new(),
                created_at: stamp(now),
                next_attempt_at: stamp(now),
                sent_at: String::new(),
            };
            tick.coalesced += self.db.coalesce(&digest).await?;
        }
        Ok(())
    }

    async fn send_due(&self, tick: &mut Tick) -> Result<(), stella_store::Error> {
        loop {
            let now = self.clock.now();
            let lease_until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
            let due = self
                .db
                .claim_due(&self.owner, &stamp(now), &stamp(lease_until), self.batch)
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            let rules = self.directory.rules();
            let mut progressed = false;
            for delivery in due {
                let outcome = self.attempt(&delivery, &rules, tick).await?;
                progressed |= !matches!(outcome, Outcome::Defer { .. });
                self.db
                    .complete(&delivery.id, &self.owner, &outcome)
                    .await?;
            }
            if !progressed {
                return Ok(());
            }
        }
    }

    /// Sends one delivery; what it came to.
    async fn attempt(
        &self,
        delivery: &DeliveryRow,
        rules: &[Rule],
        tick: &mut Tick,
    ) -> Result<Outcome, stella_store::Error> {
        let now = self.clock.now();
        let Some(channel) = self
            .directory
            .channel(&delivery.channel)
            .filter(|c| c.enabled)
        else {
            // The channel may not be known yet (the controller is starting) or was removed:
            // keep it, counted, until the attempts run out.
            return Ok(self.failed(
                delivery,
                tick,
                format!(
                    "channel {} is not ready (missing, disabled or its Secret unresolved)",
                    delivery.channel
                ),
                5,
                None,
                now,
            ));
        };
        if !self.take_rate(&channel, now) {
            tick.deferred += 1;
            let next_minute = (now.timestamp() / 60 + 1) * 60;
            return Ok(Outcome::Defer {
                reason: format!("rate limit of {} per minute", channel.per_minute),
                next_attempt_at: stamp(DateTime::from_timestamp(next_minute, 0).unwrap_or(now)),
            });
        }
        let members: Vec<String> = serde_json::from_str(&delivery.members).unwrap_or_default();
        let ids = if members.is_empty() {
            vec![delivery.event_id.clone()]
        } else {
            members.clone()
        };
        let events: Vec<Event> = self
            .db
            .events(&ids)
            .await?
            .iter()
            .filter_map(|r| Event::from_outbox(r).ok())
            .collect();
        let Some(first) = events.first() else {
            return Ok(Outcome::Dead {
                error: "its event is no longer in the outbox".into(),
            });
        };
        let rule = rules.iter().find(|r| r.id == delivery.rule);
        let action = rule.and_then(|r| r.actions.get(delivery.action as usize));
        let template = action.map_or(Template::Concise, |a| a.template);
        let selected = |e: &Event| {
            rule.and_then(|r| r.matches(e))
                .unwrap_or_else(|| e.data.payload.findings.clone().unwrap_or_default())
        };
        let message = if members.is_empty() {
            Message::of_event(first, &selected(first), &delivery.rule, template)
        } else {
            let period = action
                .and_then(|a| a.digest)
                .map_or("digest", Period::as_str);
            let pairs: Vec<(Event, Vec<_>)> =
                events.iter().map(|e| (e.clone(), selected(e))).collect();
            Message::of_digest(&pairs, &delivery.rule, period, template)
        };
        // A custom template was checked when the rule was applied; one that fails on this
        // event's data leaves the built-in message (and a warning).
        let message = match action.and_then(|a| a.custom.as_ref()) {
            None => message,
            Some(custom) => crate::template::apply(custom, &message, &events).unwrap_or_else(|why| {
                tracing::warn!(rule = %delivery.rule, delivery = %delivery.id, %why, "custom template failed; sending the built-in message");
                message
            }),
        };
        let result = deliver(
            &channel,
            &delivery.id,
            &delivery.target,
            &message,
            &events,
            !members.is_empty(),
            now.timestamp(),
        )
        .await;
        Ok(match result {
            Sent::Ok => {
                tick.sent += 1;
                tick.sent_by_channel.push(channel.id.clone());
                if let Ok(at) = DateTime::parse_from_rfc3339(&first.time) {
                    tick.latencies.push(
                        (self.clock.now() - at.to_utc()).num_milliseconds().max(0) as f64 / 1000.0,
                    );
                }
                Outcome::Sent {
                    at: stamp(self.clock.now()),
                }
            }
            Sent::Retry { error, after } => {
                self.failed(delivery, tick, error, channel.max_attempts, after, now)
            }
            Sent::Dead { error } => {
                tick.dead += 1;
                tick.dropped.push("dead");
                Outcome::Dead { error }
            }
        })
    }

    fn failed(
        &self,
        delivery: &DeliveryRow,
        tick: &mut Tick,
        error: String,
        max_attempts: u32,
        after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Outcome {
        let attempt = delivery.attempts as u32 + 1;
        if attempt >= max_attempts {
            tick.dead += 1;
            tick.dropped.push("dead");
            return Outcome::Dead {
                error: format!("{error} (gave up after {attempt} attempt(s))"),
            };
        }
        tick.retried += 1;
        let wait = backoff(&delivery.id, attempt, after);
        Outcome::Retry {
            error,
            next_attempt_at: stamp(now + chrono::Duration::from_std(wait).unwrap_or_default()),
        }
    }

    /// Takes one send from the channel's per-minute budget.
    fn take_rate(&self, channel: &Channel, now: DateTime<Utc>) -> bool {
        let minute = now.timestamp() / 60;
        let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        let entry = rate.entry(channel.id.clone()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= channel.per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// Runs passes until `stop` resolves: immediately again after a pass that did work,
    /// after `idle` otherwise. A store error is logged and retried after `idle`.
    pub async fn run(
        &self,
        idle: Duration,
        on_tick: impl Fn(&Tick),
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let wait = match self.tick().await {
                Ok(t) => {
                    let busy = t.events > 0
                        || t.sent > 0
                        || t.retried > 0
                        || t.dead > 0
                        || t.coalesced > 0;
                    on_tick(&t);
                    if busy { Duration::ZERO } else { idle }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notify dispatch failed; retrying");
                    idle
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
