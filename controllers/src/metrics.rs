//! Prometheus metrics of the controllers: reconcile runs, failures (by error kind) and
//! duration per controller, Scans by phase, and the queue of Scans waiting for a worker slot.
//! Rendered in the text exposition format by the operator's `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the reconcile duration histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    runs: BTreeMap<&'static str, u64>,
    failures: BTreeMap<(&'static str, &'static str), u64>,
    durations: BTreeMap<&'static str, Histogram>,
    /// Phase of every Scan the controller has seen, by `namespace/name`.
    phases: BTreeMap<String, &'static str>,
    /// Verdict and finding counts of every Scan with a result, by `namespace/name`.
    results: BTreeMap<String, ScanResult>,
    /// Scans created, refreshed and collected by workload discovery.
    discovery: BTreeMap<&'static str, u64>,
    /// Feed downloads: how many, and their total seconds.
    feed_syncs: u64,
    feed_sync_seconds: f64,
    /// Per feed (`feedsource/<name>`), its last successful sync (Unix seconds).
    feed_last_success: BTreeMap<String, i64>,
    /// Failed syncs by reason.
    feed_failures: BTreeMap<&'static str, u64>,
    /// What a changed feed snapshot did to Completed Scans (`reevaluated`, `unaffected`).
    feed_impact: BTreeMap<&'static str, u64>,
    schedule_runs: BTreeMap<(&'static str, &'static str), u64>,
    schedule_requests: BTreeMap<&'static str, u64>,
    schedule_selection_seconds: f64,
    schedule_selections: u64,
    notify_sent: BTreeMap<String, u64>,
    notify_dropped: BTreeMap<&'static str, u64>,
    notify_coalesced: u64,
    notify_latency: Histogram,
}

/// What a Scan's status says of its result, for the verdict and findings gauges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanResult {
    pub namespace: String,
    /// `PASS`, `WARN`, `FAIL`, or `none` (no policy).
    pub verdict: &'static str,
    /// Findings after VEX: critical, high, medium, low, none, unknown.
    pub counts: [u64; 6],
}

/// The severities of [`ScanResult::counts`], in order.
const SEVERITIES: [&str; 6] = ["critical", "high", "medium", "low", "none", "unknown"];

/// Upper bounds (seconds) of the event-to-delivery latency histogram.
const NOTIFY_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The controllers' metrics (shared by all controllers of one process).
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// One reconcile of `controller` took `elapsed`.
    pub fn reconciled(&self, controller: &'static str, elapsed: Duration) {
        self.with(|m| {
            *m.runs.entry(controller).or_default() += 1;
            let histogram = m.durations.entry(controller).or_default();
            let seconds = elapsed.as_secs_f64();
            for (slot, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *slot += 1;
                }
            }
            histogram.count += 1;
            histogram.sum += seconds;
        });
    }

    /// A reconcile of `controller` failed with an error of kind `kind` (a variant name).
    pub fn failed(&self, controller: &'static str, kind: &'static str) {
        self.with(|m| *m.failures.entry((controller, kind)).or_default() += 1);
    }

    /// The Scan `key` is now in `phase` (`None`: deleted).
    pub fn scan_phase(&self, key: &str, phase: Option<&'static str>) {
        self.with(|m| match phase {
            Some(phase) => {
                m.phases.insert(key.to_string(), phase);
            }
            None => {
                m.phases.remove(key);
            }
        });
    }

    /// The Scan `key`'s result as its status says (`None`: no result, or deleted).
    pub fn scan_result(&self, key: &str, result: Option<ScanResult>) {
        self.with(|m| match result {
            Some(result) => {
                m.results.insert(key.to_string(), result);
            }
            None => {
                m.results.remove(key);
            }
        });
    }

    /// Workload discovery did `action` (`created`, `updated`, `collected`) to a Scan.
    pub fn discovery(&self, action: &'static str) {
        self.with(|m| *m.discovery.entry(action).or_default() += 1);
    }

    /// One feed download took `elapsed`.
    pub fn feed_sync(&self, elapsed: Duration) {
        self.with(|m| {
            m.feed_syncs += 1;
            m.feed_sync_seconds += elapsed.as_secs_f64();
        });
    }

    /// `feed` last synced successfully at `unix_seconds`.
    pub fn feed_succeeded(&self, feed: &str, unix_seconds: i64) {
        self.with(|m| {
            m.feed_last_success.insert(feed.to_string(), unix_seconds);
        });
    }

    /// A sync failed with `reason` (the condition's reason).
    pub fn feed_failed(&self, reason: &'static str) {
        self.with(|m| *m.feed_failures.entry(reason).or_default() += 1);
    }

    /// `feed` is gone (its FeedSource was deleted): its series go too.
    pub fn feed_removed(&self, feed: &str) {
        self.with(|m| {
            m.feed_last_success.remove(feed);
        });
    }

    /// What a notify dispatch pass did: sent per channel, dropped per reason, events folded
    /// into digests, and each delivery's latency from its event.
    pub fn notified(&self, tick: &stella_notify::Tick) {
        self.with(|m| {
            for channel in &tick.sent_by_channel {
                *m.notify_sent.entry(channel.clone()).or_default() += 1;
            }
            for reason in &tick.dropped {
                *m.notify_dropped.entry(reason).or_default() += 1;
            }
            m.notify_coalesced += tick.coalesced;
            for seconds in &tick.latencies {
                for (slot, bound) in m.notify_latency.counts.iter_mut().zip(NOTIFY_BUCKETS) {
                    if *seconds <= bound {
                        *slot += 1;
                    }
                }
                m.notify_latency.count += 1;
                m.notify_latency.sum += seconds;
            }
        });
    }

    /// A changed feed snapshot `outcome` (`reevaluated`, `unaffected`) a Completed Scan.
    pub fn feed_impact(&self, outcome: &'static str) {
        self.with(|m| *m.feed_impact.entry(outcome).or_default() += 1);
    }

    /// A Schedule run ended (`state`: Completed, Failed, Cancelled) or was skipped
    /// (`state`: TooLate), by trigger.
    pub fn schedule_run(&self, trigger: &'static str, state: &'static str) {
        self.with(|m| *m.schedule_runs.entry((trigger, state)).or_default() += 1);
    }

    /// Scans a Schedule run asked for work, by mode.
    pub fn schedule_requests(&self, mode: &'static str, n: u64) {
        self.with(|m| *m.schedule_requests.entry(mode).or_default() += n);
    }

    /// One pass of a run's selection over the Scans.
    pub fn schedule_selection(&self, elapsed: Duration) {
        self.with(|m| {
            m.schedule_selections += 1;
            m.schedule_selection_seconds += elapsed.as_secs_f64();
        });
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        self.with(|m| {
            let mut out = String::new();
            out.push_str("# HELP stella_reconcile_runs_total Reconciles run, by controller.\n# TYPE stella_reconcile_runs_total counter\n");
            for (controller, n) in &m.runs {
                let _ = writeln!(out, "stella_reconcile_runs_total{{controller=\"{controller}\"}} {n}");
            }
            out.push_str("# HELP stella_reconcile_failures_total Reconciles that failed, by controller and error kind.\n# TYPE stella_reconcile_failures_total counter\n");
            for ((controller, kind), n) in &m.failures {
                let _ = writeln!(
                    out,
                    "stella_reconcile_failures_total{{controller=\"{controller}\",error=\"{kind}\"}} {n}"
                );
            }
            out.push_str("# HELP stella_reconcile_duration_seconds Time a reconcile took, by controller.\n# TYPE stella_reconcile_duration_seconds histogram\n");
            for (controller, h) in &m.durations {
                for (bound, n) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(
                        out,
                        "stella_reconcile_duration_seconds_bucket{{controller=\"{controller}\",le=\"{bound}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "stella_reconcile_duration_seconds_bucket{{controller=\"{controller}\",le=\"+Inf\"}} {}\n\
                     stella_reconcile_duration_seconds_sum{{controller=\"{controller}\"}} {}\n\
                     stella_reconcile_duration_seconds_count{{controller=\"{controller}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
            let mut by_phase: BTreeMap<&str, u64> = ["Pending", "Resolving", "Scanning", "Completed", "Failed"]
                .into_iter()
                .map(|p| (p, 0))
                .collect();
            for phase in m.phases.values() {
                *by_phase.entry(phase).or_default() += 1;
            }
            out.push_str("# HELP stella_scans Scans by phase.\n# TYPE stella_scans gauge\n");
            for (phase, n) in &by_phase {
                let _ = writeln!(out, "stella_scans{{phase=\"{phase}\"}} {n}");
            }
            let mut by_verdict: BTreeMap<&str, u64> = ["PASS", "WARN", "FAIL", "none"]
                .into_iter()
                .map(|v| (v, 0))
                .collect();
            // Bounded labels: namespace × severity (no image, no CVE label).
            let mut findings: BTreeMap<(&str, &str), u64> = BTreeMap::new();
            for result in m.results.values() {
                *by_verdict.entry(result.verdict).or_default() += 1;
                for (severity, n) in SEVERITIES.iter().zip(result.counts) {
                    *findings.entry((result.namespace.as_str(), severity)).or_default() += n;
                }
            }
            out.push_str("# HELP stella_scan_verdicts Scans with a result, by verdict (none: no policy).\n# TYPE stella_scan_verdicts gauge\n");
            for (verdict, n) in &by_verdict {
                let _ = writeln!(out, "stella_scan_verdicts{{verdict=\"{verdict}\"}} {n}");
            }
            out.push_str("# HELP stella_scan_findings Findings after VEX of the Scans' current results, by namespace and severity.\n# TYPE stella_scan_findings gauge\n");
            for ((namespace, severity), n) in &findings {
                let _ = writeln!(
                    out,
                    "stella_scan_findings{{namespace=\"{}\",severity=\"{severity}\"}} {n}",
                    namespace.replace('\\', "\\\\").replace('"', "\\\"")
                );
            }
            out.push_str("# HELP stella_scan_queue_depth Scans waiting for a worker slot.\n# TYPE stella_scan_queue_depth gauge\n");
            let _ = writeln!(
                out,
                "stella_scan_queue_depth {}",
                by_phase.get("Pending").copied().unwrap_or(0)
            );
            out.push_str("# HELP stella_discovery_scans_total Scans workload discovery created, updated or collected.\n# TYPE stella_discovery_scans_total counter\n");
            for (action, n) in &m.discovery {
                let _ = writeln!(out, "stella_discovery_scans_total{{action=\"{action}\"}} {n}");
            }
            out.push_str("# HELP stella_feed_downloads_total Feed downloads by the FeedSource controller.\n# TYPE stella_feed_downloads_total counter\n");
            let _ = writeln!(out, "stella_feed_downloads_total {}", m.feed_syncs);
            out.push_str("# HELP stella_feed_download_seconds_total Time spent downloading feeds.\n# TYPE stella_feed_download_seconds_total counter\n");
            let _ = writeln!(out, "stella_feed_download_seconds_total {}", m.feed_sync_seconds);
            out.push_str("# HELP stella_feed_sync_failures_total Failed FeedSource syncs, by reason.\n# TYPE stella_feed_sync_failures_total counter\n");
            for (reason, n) in &m.feed_failures {
                let _ = writeln!(out, "stella_feed_sync_failures_total{{reason=\"{reason}\"}} {n}");
            }
            out.push_str("# HELP stella_feed_last_success_timestamp_seconds When each feed last synced successfully.\n# TYPE stella_feed_last_success_timestamp_seconds gauge\n");
            for (feed, at) in &m.feed_last_success {
                let _ = writeln!(out, "stella_feed_last_success_timestamp_seconds{{feed=\"{feed}\"}} {at}");
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            out.push_str("# HELP stella_feed_age_seconds Seconds since each feed last synced successfully.\n# TYPE stella_feed_age_seconds gauge\n");
            for (feed, at) in &m.feed_last_success {
                let _ = writeln!(out, "stella_feed_age_seconds{{feed=\"{feed}\"}} {}", (now - at).max(0));
            }
            out.push_str("# HELP stella_feed_impact_total Checks of a Completed Scan against a changed feed snapshot: re-evaluated, or left alone because the delta touched none of its packages.\n# TYPE stella_feed_impact_total counter\n");
            for outcome in ["reevaluated", "unaffected"] {
                let n = m.feed_impact.get(outcome).copied().unwrap_or(0);
                let _ = writeln!(out, "stella_feed_impact_total{{outcome=\"{outcome}\"}} {n}");
            }
            out.push_str("# HELP stella_schedule_runs_total Schedule runs that ended, by trigger and state (TooLate: missed its starting deadline).\n# TYPE stella_schedule_runs_total counter\n");
            for ((trigger, state), n) in &m.schedule_runs {
                let _ = writeln!(out, "stella_schedule_runs_total{{trigger=\"{trigger}\",state=\"{state}\"}} {n}");
            }
            out.push_str("# HELP stella_schedule_requests_total Scans Schedule runs asked to re-evaluate (analysis-only) or rescan (content-refresh).\n# TYPE stella_schedule_requests_total counter\n");
            for mode in ["analysis-only", "content-refresh"] {
                let n = m.schedule_requests.get(mode).copied().unwrap_or(0);
                let _ = writeln!(out, "stella_schedule_requests_total{{mode=\"{mode}\"}} {n}");
            }
            out.push_str("# HELP stella_schedule_selection_seconds Time the Schedule controller spent selecting Scans and reading run progress.\n# TYPE stella_schedule_selection_seconds summary\n");
            let _ = writeln!(out, "stella_schedule_selection_seconds_sum {}", m.schedule_selection_seconds);
            let _ = writeln!(out, "stella_schedule_selection_seconds_count {}", m.schedule_selections);
            out.push_str("# HELP stella_notify_sent_total Notifications delivered, by channel.\n# TYPE stella_notify_sent_total counter\n");
            for (channel, n) in &m.notify_sent {
                let _ = writeln!(out, "stella_notify_sent_total{{channel=\"{channel}\"}} {n}");
            }
            out.push_str("# HELP stella_notify_dropped_total Notifications not delivered, by reason (throttled, dead).\n# TYPE stella_notify_dropped_total counter\n");
            for reason in ["throttled", "dead"] {
                let n = m.notify_dropped.get(reason).copied().unwrap_or(0);
                let _ = writeln!(out, "stella_notify_dropped_total{{reason=\"{reason}\"}} {n}");
            }
            out.push_str("# HELP stella_notify_digest_coalesced_total Events folded into digest messages.\n# TYPE stella_notify_digest_coalesced_total counter\n");
            let _ = writeln!(out, "stella_notify_digest_coalesced_total {}", m.notify_coalesced);
            out.push_str("# HELP stella_notify_latency_seconds Time from an event to its delivery.\n# TYPE stella_notify_latency_seconds histogram\n");
            let h = &m.notify_latency;
            for (bound, n) in NOTIFY_BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "stella_notify_latency_seconds_bucket{{le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "stella_notify_latency_seconds_bucket{{le=\"+Inf\"}} {}\nstella_notify_latency_seconds_sum {}\nstella_notify_latency_seconds_count {}", h.count, h.sum, h.count);
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histogram_and_phases() {
        let metrics = Metrics::default();
        metrics.reconciled("scan", Duration::from_millis(20));
        metrics.reconciled("scan", Duration::from_millis(700));
        metrics.failed("scan", "Kube");
        metrics.scan_phase("a/x", Some("Pending"));
        metrics.scan_phase("a/y", Some("Completed"));
        metrics.scan_phase("a/z", Some("Pending"));
        metrics.scan_phase("a/z", None);
        metrics.scan_result(
            "a/y",
            Some(ScanResult {
                namespace: "a".into(),
                verdict: "FAIL",
                counts: [1, 2, 0, 0, 0, 3],
            }),
        );
        metrics.scan_result(
            "b/w",
            Some(ScanResult {
                namespace: "b".into(),
                verdict: "PASS",
                counts: [0, 0, 4, 0, 0, 0],
            }),
        );
        let text = metrics.render();
        assert!(text.contains("stella_reconcile_runs_total{controller=\"scan\"} 2\n"));
        assert!(
            text.contains(
                "stella_reconcile_failures_total{controller=\"scan\",error=\"Kube\"} 1\n"
            )
        );
        assert!(text.contains(
            "stella_reconcile_duration_seconds_bucket{controller=\"scan\",le=\"0.025\"} 1\n"
        ));
        assert!(text.contains(
            "stella_reconcile_duration_seconds_bucket{controller=\"scan\",le=\"1\"} 2\n"
        ));
        assert!(text.contains("stella_reconcile_duration_seconds_count{controller=\"scan\"} 2\n"));
        assert!(text.contains("stella_scans{phase=\"Pending\"} 1\n"));
        assert!(text.contains("stella_scans{phase=\"Completed\"} 1\n"));
        assert!(text.contains("stella_scans{phase=\"Failed\"} 0\n"));
        assert!(text.contains("stella_scan_verdicts{verdict=\"FAIL\"} 1\n"));
        assert!(text.contains("stella_scan_verdicts{verdict=\"WARN\"} 0\n"));
        assert!(text.contains("stella_scan_findings{namespace=\"a\",severity=\"critical\"} 1\n"));
        assert!(text.contains("stella_scan_findings{namespace=\"b\",severity=\"medium\"} 4\n"));
        assert!(text.contains("stella_scan_queue_depth 1\n"));
    }

    #[test]
    fn feed_age_and_failures_render_per_feed_and_go_with_the_feed() {
        let metrics = Metrics::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        metrics.feed_succeeded("feedsource/osv", now - 3600);
        metrics.feed_succeeded("feedsource/kev", now);
        metrics.feed_failed("HTTPError");
        metrics.feed_failed("HTTPError");
        let text = metrics.render();
        assert!(text.contains(&format!(
            "stella_feed_last_success_timestamp_seconds{{feed=\"feedsource/osv\"}} {}\n",
            now - 3600
        )));
        let age: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("stella_feed_age_seconds{feed=\"feedsource/osv\"} "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((3600..3700).contains(&age), "{age}");
        assert!(text.contains("stella_feed_sync_failures_total{reason=\"HTTPError\"} 2\n"));
        metrics.feed_removed("feedsource/osv");
        let text = metrics.render();
        assert!(!text.contains("feedsource/osv"), "{text}");
        assert!(text.contains("stella_feed_age_seconds{feed=\"feedsource/kev\"}"));
    }
}
