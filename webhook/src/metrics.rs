//! Prometheus metrics of the webhook: decisions by namespace / decision / reason, answer
//! latency, cache hits and misses, registry and catalog calls, malformed requests, dropped
//! events. Rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the answer latency histogram.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Inner {
    decisions: BTreeMap<(String, &'static str, &'static str), u64>,
    latency: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    cache: BTreeMap<(&'static str, bool), u64>,
    registry: BTreeMap<&'static str, u64>,
    catalog: u64,
    rejected: BTreeMap<u16, u64>,
    events_dropped: u64,
    cert_reloads: BTreeMap<bool, u64>,
}

/// The webhook's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One answered review.
    pub fn decided(
        &self,
        namespace: &str,
        decision: &'static str,
        reason: &'static str,
        elapsed: Duration,
    ) {
        self.with(|m| {
            *m.decisions
                .entry((namespace.to_string(), decision, reason))
                .or_default() += 1;
            let seconds = elapsed.as_secs_f64();
            for (slot, bound) in m.latency.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *slot += 1;
                }
            }
            m.latency_count += 1;
            m.latency_sum += seconds;
        });
    }

    pub fn cache(&self, cache: &'static str, hit: bool) {
        self.with(|m| *m.cache.entry((cache, hit)).or_default() += 1);
    }

    pub fn registry_call(&self, what: &'static str) {
        self.with(|m| *m.registry.entry(what).or_default() += 1);
    }

    pub fn catalog_call(&self) {
        self.with(|m| m.catalog += 1);
    }

    /// A request answered with an HTTP error (malformed, too large, wrong method).
    pub fn rejected(&self, status: u16) {
        self.with(|m| *m.rejected.entry(status).or_default() += 1);
    }

    pub fn event_dropped(&self) {
        self.with(|m| m.events_dropped += 1);
    }

    pub fn cert_reload(&self, ok: bool) {
        self.with(|m| *m.cert_reloads.entry(ok).or_default() += 1);
    }

    /// Registry calls so far of one kind (`resolve`, `signatures`).
    pub fn registry_calls(&self, what: &str) -> u64 {
        self.with(|m| {
            m.registry
                .iter()
                .filter(|(k, _)| **k == what)
                .map(|(_, v)| *v)
                .sum()
        })
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        self.with(|m| {
            let mut out = String::new();
            let _ = writeln!(out, "# HELP stella_webhook_admission_decisions_total Admission answers by namespace, decision and reason.");
            let _ = writeln!(out, "# TYPE stella_webhook_admission_decisions_total counter");
            for ((ns, decision, reason), n) in &m.decisions {
                let _ = writeln!(
                    out,
                    "stella_webhook_admission_decisions_total{{namespace=\"{}\",decision=\"{decision}\",reason=\"{reason}\"}} {n}",
                    escape(ns)
                );
            }
            let _ = writeln!(out, "# HELP stella_webhook_admission_duration_seconds Time from request to answer.");
            let _ = writeln!(out, "# TYPE stella_webhook_admission_duration_seconds histogram");
            for (count, bound) in m.latency.iter().zip(BUCKETS) {
                let _ = writeln!(out, "stella_webhook_admission_duration_seconds_bucket{{le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "stella_webhook_admission_duration_seconds_bucket{{le=\"+Inf\"}} {}", m.latency_count);
            let _ = writeln!(out, "stella_webhook_admission_duration_seconds_sum {}", m.latency_sum);
            let _ = writeln!(out, "stella_webhook_admission_duration_seconds_count {}", m.latency_count);
            let _ = writeln!(out, "# HELP stella_webhook_cache_lookups_total Cache lookups by cache and result.");
            let _ = writeln!(out, "# TYPE stella_webhook_cache_lookups_total counter");
            for ((cache, hit), n) in &m.cache {
                let result = if *hit { "hit" } else { "miss" };
                let _ = writeln!(out, "stella_webhook_cache_lookups_total{{cache=\"{cache}\",result=\"{result}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP stella_webhook_registry_calls_total Registry round trips by purpose.");
            let _ = writeln!(out, "# TYPE stella_webhook_registry_calls_total counter");
            for (what, n) in &m.registry {
                let _ = writeln!(out, "stella_webhook_registry_calls_total{{call=\"{what}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP stella_webhook_catalog_lookups_total Catalog verdict lookups.");
            let _ = writeln!(out, "# TYPE stella_webhook_catalog_lookups_total counter");
            let _ = writeln!(out, "stella_webhook_catalog_lookups_total {}", m.catalog);
            let _ = writeln!(out, "# HELP stella_webhook_rejected_requests_total Requests answered with an HTTP error.");
            let _ = writeln!(out, "# TYPE stella_webhook_rejected_requests_total counter");
            for (status, n) in &m.rejected {
                let _ = writeln!(out, "stella_webhook_rejected_requests_total{{code=\"{status}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP stella_webhook_events_dropped_total zastava.admission events dropped because the sink fell behind.");
            let _ = writeln!(out, "# TYPE stella_webhook_events_dropped_total counter");
            let _ = writeln!(out, "stella_webhook_events_dropped_total {}", m.events_dropped);
            let _ = writeln!(out, "# HELP stella_webhook_certificate_reloads_total Serving certificate (re)loads by result.");
            let _ = writeln!(out, "# TYPE stella_webhook_certificate_reloads_total counter");
            for (ok, n) in &m.cert_reloads {
                let result = if *ok { "ok" } else { "error" };
                let _ = writeln!(out, "stella_webhook_certificate_reloads_total{{result=\"{result}\"}} {n}");
            }
            out
        })
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters_and_histogram() {
        let m = Metrics::default();
        m.decided("shop", "deny", "verdict-fail", Duration::from_millis(2));
        m.decided("shop", "deny", "verdict-fail", Duration::from_secs(9));
        m.cache("digest", true);
        m.rejected(400);
        let text = m.render();
        assert!(text.contains("stella_webhook_admission_decisions_total{namespace=\"shop\",decision=\"deny\",reason=\"verdict-fail\"} 2"));
        assert!(text.contains("stella_webhook_admission_duration_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(text.contains("stella_webhook_admission_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(
            text.contains("stella_webhook_cache_lookups_total{cache=\"digest\",result=\"hit\"} 1")
        );
        assert!(text.contains("stella_webhook_rejected_requests_total{code=\"400\"} 1"));
    }
}
