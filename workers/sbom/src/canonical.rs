//! Canonical JSON: object keys sorted (by UTF-16 code units, as RFC 8785 orders them; for the
//! ASCII keys we emit that is byte order), no insignificant whitespace in compact form, two-space
//! indentation in pretty form, and a trailing newline for files.

use serde_json::Value;

/// Compact canonical JSON.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out, None, 0);
    out
}

/// Pretty canonical JSON with a trailing newline, for files people read.
pub fn to_string_pretty(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out, Some(2), 0);
    out.push('\n');
    out
}

fn write(value: &Value, out: &mut String, indent: Option<usize>, depth: usize) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(step) = indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', step * depth));
        }
    };
    match value {
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                string(key, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write(&map[*key], out, indent, depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write(item, out, indent, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::String(s) => string(s, out),
        other => out.push_str(&serde_json::to_string(other).expect("a scalar serialises")),
    }
}

/// A JSON string literal: as is between quotes when nothing needs escaping (the common case,
/// no allocation), else serde_json's escaping.
fn string(s: &str, out: &mut String) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).expect("a string serialises"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [3, {"z": 0, "y": 1}], "c": "x"}, "é": null, "A": true});
        assert_eq!(
            to_string(&v),
            r#"{"A":true,"a":{"c":"x","d":[3,{"y":1,"z":0}]},"b":1,"é":null}"#
        );
        assert_eq!(
            to_string(&json!({"q\"": "a\\b\n\u{1}", "p": "plain é"})),
            r#"{"p":"plain é","q\"":"a\\b\n\u0001"}"#
        );
        assert_eq!(
            to_string_pretty(&json!({"b": [], "a": {}})),
            "{\n  \"a\": {},\n  \"b\": []\n}\n"
        );
    }
}
