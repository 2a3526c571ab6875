//! CVSS v3.x base scores from vectors (the specification's formulas and rounding).

use stella_model::Severity;

/// The base score of a `CVSS:3.0/…` or `CVSS:3.1/…` vector; `None` for other or broken vectors.
pub fn v3_base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.split('/');
    if !matches!(parts.next()?, "CVSS:3.0" | "CVSS:3.1") {
        return None;
    }
    let mut m = std::collections::BTreeMap::new();
    for part in parts {
        let (k, v) = part.split_once(':')?;
        m.insert(k, v);
    }
    let scope_changed = match *m.get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match *m.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *m.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (*m.get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *m.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        Some(match *m.get(k)? {
            "H" => 0.56,
            "L" => 0.22,
            "N" => 0.0,
            _ => return None,
        })
    };
    let iss = 1.0 - (1.0 - cia("C")?) * (1.0 - cia("I")?) * (1.0 - cia("A")?);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(roundup(raw))
}

/// The base score of a CVSS v2 vector (`AV:N/AC:L/Au:N/C:P/I:P/A:P`, optionally `(…)`-wrapped);
/// `None` for broken vectors.
pub fn v2_base_score(vector: &str) -> Option<f64> {
    let vector = vector.trim_start_matches('(').trim_end_matches(')');
    let mut m = std::collections::BTreeMap::new();
    for part in vector.split('/') {
        let (k, v) = part.split_once(':')?;
        if m.insert(k, v).is_some() {
            return None;
        }
    }
    let av = match *m.get("AV")? {
        "L" => 0.395,
        "A" => 0.646,
        "N" => 1.0,
        _ => return None,
    };
    let ac = match *m.get("AC")? {
        "H" => 0.35,
        "M" => 0.61,
        "L" => 0.71,
        _ => return None,
    };
    let au = match *m.get("Au")? {
        "M" => 0.45,
        "S" => 0.56,
        "N" => 0.704,
        _ => return None,
    };
    let cia = |k: &str| match *m.get(k)? {
        "N" => Some(0.0),
        "P" => Some(0.275),
        "C" => Some(0.660),
        _ => None,
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let impact = 10.41 * (1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a));
    let exploitability = 20.0 * av * ac * au;
    let f = if impact == 0.0 { 0.0 } else { 1.176 };
    let raw: f64 = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f;
    Some((raw * 10.0).round() / 10.0)
}

/// The qualitative rating of a CVSS v2 score (NVD's v2 bands: no Critical).
pub fn v2_rating(score: f64) -> Severity {
    match score {
        s if s >= 7.0 => Severity::High,
        s if s >= 4.0 => Severity::Medium,
        _ => Severity::Low,
    }
}

/// CVSS 3.1's Roundup: the smallest number with one decimal place not less than the input.
fn roundup(x: f64) -> f64 {
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

/// The qualitative rating of a score.
pub fn rating(score: f64) -> Severity {
    match score {
        s if s >= 9.0 => Severity::Critical,
        s if s >= 7.0 => Severity::High,
        s if s >= 4.0 => Severity::Medium,
        s if s > 0.0 => Severity::Low,
        _ => Severity::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_scores() {
        // Log4Shell, Heartbleed, and a scope-changed local one, as NVD scores them.
        assert_eq!(
            v3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"),
            Some(10.0)
        );
        assert_eq!(
            v3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"),
            Some(7.5)
        );
        assert_eq!(
            v3_base_score("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"),
            Some(7.8)
        );
        assert_eq!(
            v3_base_score("CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"),
            Some(3.1)
        );
        assert_eq!(
            v3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"),
            Some(0.0)
        );
        assert_eq!(v3_base_score("CVSS:2.0/AV:N"), None);
        assert_eq!(
            v3_base_score("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            None
        );
        assert_eq!(rating(9.8), "Critical");
        // Heartbleed and a local one, as NVD scored them in v2.
        assert_eq!(v2_base_score("AV:N/AC:L/Au:N/C:P/I:N/A:N"), Some(5.0));
        assert_eq!(v2_base_score("(AV:N/AC:L/Au:N/C:C/I:C/A:C)"), Some(10.0));
        assert_eq!(v2_base_score("AV:L/AC:L/Au:N/C:N/I:N/A:N"), Some(0.0));
        assert_eq!(v2_base_score("AV:N/AC:L/Au:N/C:P/I:N"), None);
        assert_eq!(v2_base_score("AV:N/AV:L/AC:L/Au:N/C:P/I:N/A:N"), None);
        assert_eq!(v2_rating(5.0), "Medium");
        assert_eq!(rating(3.1), "Low");
    }
}
