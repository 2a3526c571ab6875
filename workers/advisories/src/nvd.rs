//! NVD CVE API 2.0 JSON (`{"format": "NVD_CVE", "vulnerabilities": [{"cve": {…}}]}`) → enrichment
//! records: CVSS v2 / v3.x / v4 vectors, CWEs, references, description. NVD's CPE configurations
//! are not used for matching (they name products, not packages); an NVD record never makes a
//! finding on its own, it only lends its CVSS to findings for the same CVE.

use crate::model::{Advisory, SeverityScore};

/// Whether a JSON document looks like an NVD CVE API 2.0 response.
pub fn is_nvd(value: &serde_json::Value) -> bool {
    value.get("vulnerabilities").is_some_and(|v| v.is_array())
        && (value.get("format").and_then(|f| f.as_str()) == Some("NVD_CVE")
            || value
                .pointer("/vulnerabilities/0/cve/id")
                .is_some_and(|id| id.is_string()))
}

/// Parses a response: the records that are well-formed, and `(id or index, reason)` for the rest.
pub fn parse(value: &serde_json::Value) -> (Vec<Advisory>, Vec<(String, String)>) {
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (i, entry) in value
        .get("vulnerabilities")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        match record(entry.get("cve").unwrap_or(&serde_json::Value::Null)) {
            Ok(a) => accepted.push(a),
            Err(e) => {
                let name = entry
                    .pointer("/cve/id")
                    .and_then(|v| v.as_str())
                    .map_or_else(|| format!("vulnerabilities[{i}]"), str::to_string);
                rejected.push((name, e));
            }
        }
    }
    accepted.sort_by(|a, b| a.id.cmp(&b.id));
    (accepted, rejected)
}

fn is_cve_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, number)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && number.len() >= 4
        && year
            .bytes()
            .chain(number.bytes())
            .all(|b| b.is_ascii_digit())
}

fn record(cve: &serde_json::Value) -> Result<Advisory, String> {
    let id = cve
        .get("id")
        .and_then(|v| v.as_str())
        .ok_or("record without cve.id")?;
    if !is_cve_id(id) {
        return Err(format!("{id:?} is not a CVE identifier"));
    }
    let modified = cve
        .get("lastModified")
        .and_then(|v| v.as_str())
        .ok_or("record without lastModified")?
        .to_string();
    let published = cve
        .get("published")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let mut severity = Vec::new();
    let metrics = cve.get("metrics");
    for (key, kind) in [
        ("cvssMetricV40", "CVSS_V4"),
        ("cvssMetricV31", "CVSS_V3"),
        ("cvssMetricV30", "CVSS_V3"),
        ("cvssMetricV2", "CVSS_V2"),
    ] {
        let Some(list) = metrics.and_then(|m| m.get(key)) else {
            continue;
        };
        let list = list
            .as_array()
            .ok_or_else(|| format!("metrics.{key} is not a list"))?;
        // NVD's own ("Primary") assessment first, then the CNA's.
        let mut entries: Vec<&serde_json::Value> = list.iter().collect();
        entries.sort_by_key(|m| m.get("type").and_then(|t| t.as_str()) != Some("Primary"));
        for m in entries {
            let vector = m
                .pointer("/cvssData/vectorString")
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("metrics.{key} entry without cvssData.vectorString"))?;
            let score = SeverityScore {
                kind: kind.into(),
                score: vector.into(),
            };
            if !severity.contains(&score) {
                severity.push(score);
            }
        }
    }
    let mut cwes: Vec<String> = cve
        .get("weaknesses")
        .and_then(|w| w.as_array())
        .into_iter()
        .flatten()
        .filter_map(|w| w.get("description").and_then(|d| d.as_array()))
        .flatten()
        .filter_map(|d| d.get("value").and_then(|v| v.as_str()))
        .filter(|v| v.starts_with("CWE-"))
        .map(str::to_string)
        .collect();
    cwes.sort();
    cwes.dedup();
    let references = crate::model::reference_urls(cve.get("references"));
    let summary = cve
        .get("descriptions")
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .find(|d| d.get("lang").and_then(|l| l.as_str()) == Some("en"))
        .and_then(|d| d.get("value").and_then(|v| v.as_str()))
        .map(str::to_string);
    let rejected = cve.get("vulnStatus").and_then(|s| s.as_str()) == Some("Rejected");
    Ok(Advisory {
        id: id.to_string(),
        aliases: vec![],
        summary,
        severity,
        withdrawn: rejected.then(|| modified.clone()),
        modified,
        published,
        affected: vec![],
        cwes,
        references,
        source: "nvd".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_records_are_rejected_with_reasons_and_the_rest_kept() {
        let value = serde_json::json!({
            "format": "NVD_CVE",
            "vulnerabilities": [
                {"cve": {"id": "CVE-2024-0001", "lastModified": "2024-01-01T00:00:00"}},
                {"cve": {"id": "../etc/passwd", "lastModified": "2024-01-01T00:00:00"}},
                {"cve": {"id": "CVE-2024-0002"}},
                {"cve": {"id": "CVE-2024-0003", "lastModified": "x",
                         "metrics": {"cvssMetricV31": {"not": "a list"}}}},
                {"cve": {"id": "CVE-2024-0004", "lastModified": "x",
                         "metrics": {"cvssMetricV31": [{"cvssData": {}}]}}},
                {"nothing": true},
                {"cve": {"id": "CVE-2024-0005", "lastModified": "2024-02-01T00:00:00",
                         "vulnStatus": "Rejected"}}
            ]
        });
        let (accepted, rejected) = parse(&value);
        let ids: Vec<&str> = accepted.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["CVE-2024-0001", "CVE-2024-0005"]);
        assert!(accepted[1].withdrawn.is_some());
        let reasons: Vec<String> = rejected.iter().map(|(n, r)| format!("{n}: {r}")).collect();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert!(reasons[0].contains("not a CVE identifier"));
        assert!(reasons[1].contains("lastModified"));
        assert!(reasons[2].contains("not a list"));
        assert!(reasons[3].contains("vectorString"));
        assert!(reasons[4].starts_with("vulnerabilities[5]"));
        assert!(!is_nvd(&serde_json::json!({"vulnerabilities": "no"})));
    }
}
