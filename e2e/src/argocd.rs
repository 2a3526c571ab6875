//! Argo CD's view of our objects: `config/argocd/health.lua` run with Debian's `lua5.4` the way
//! Argo CD runs a health customization — the object as the global `obj`, the script's
//! returned table `{status, message}` as the answer.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The health script every kind's customization carries.
pub fn script() -> PathBuf {
    crate::repo_root().join("config/argocd/health.lua")
}

/// Whether `lua5.4` runs here (skip, or fail under CI, where it does not).
pub fn available() -> bool {
    if Command::new("lua5.4").arg("-v").output().is_ok() {
        return true;
    }
    crate::services::skip("lua5.4 is not installed (apt-get install lua5.4)");
    false
}

/// `(status, message)` of `object` by the health script.
pub fn health(object: &Value) -> (String, String) {
    let script = std::fs::read_to_string(script()).expect("config/argocd/health.lua");
    let program = format!(
        "obj = {}\nlocal function health()\n{script}\nend\nlocal hs = health()\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua(object)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.lua");
    std::fs::write(&path, program).unwrap();
    let out = Command::new("lua5.4").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "health.lua failed on {object}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.to_string())
}

/// A JSON value as a Lua table constructor (`null` members left out, as Argo CD's conversion
/// of an unstructured object leaves them nil).
pub fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", quote(k), lua(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for byte in text.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            other => out.push_str(&format!("\\{other:03}")),
        }
    }
    out.push('"');
    out
}
