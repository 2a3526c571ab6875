//! What the shipped monitoring names: every `stella_*` metric the alert rules
//! (`config/monitoring/alerts.yaml`) and the Grafana dashboard (`dashboard.json`) query, so the
//! tests that scrape the real `/metrics` endpoints can check each one is served.

use std::collections::BTreeSet;

/// `stella_*` metric names in `text` (histogram series as written, `_bucket` included).
pub fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("stella_") {
        let start = i + at;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names
}

/// Every metric the rules and the dashboard query.
pub fn monitored() -> BTreeSet<String> {
    let dir = crate::repo_root().join("config/monitoring");
    let mut names = BTreeSet::new();
    for file in ["alerts.yaml", "dashboard.json"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        names.extend(metric_names(&text));
    }
    names
}

/// The monitored metrics of `prefix` (`stella_webhook_`, or every other for the operator)
/// missing from the exposition `metrics`.
pub fn missing(metrics: &str, webhook: bool) -> Vec<String> {
    monitored()
        .into_iter()
        .filter(|name| name.starts_with("stella_webhook_") == webhook)
        .filter(|name| {
            !metrics.contains(&format!("{name} ")) && !metrics.contains(&format!("{name}{{"))
        })
        .collect()
}
