//! Adapting our manifests to older API servers.

use serde_json::Value;

/// Removes `x-kubernetes-validations` (CEL rules) from a CRD for servers older than 1.25,
/// which do not know the field: server-side apply rejects it as "not declared in schema".
/// (Client-side `kubectl apply` drops it silently there; the controllers validate the same
/// rules again, so nothing goes unchecked.)
pub fn strip_cel_rules(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("x-kubernetes-validations");
            map.values_mut().for_each(strip_cel_rules);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_cel_rules),
        _ => {}
    }
}

/// Whether a server of this `/version` enforces CRD CEL rules (Kubernetes >= 1.25).
pub fn supports_cel(info: &k8s_openapi::apimachinery::pkg::version::Info) -> bool {
    let minor: u32 = info.minor.trim_end_matches('+').parse().unwrap_or(0);
    info.major == "1" && minor >= 25
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_rules_at_every_depth_and_keeps_the_rest() {
        let mut crd = json!({"spec": {"x-kubernetes-validations": [{"rule": "a"}],
            "properties": {"x": {"type": "string", "x-kubernetes-validations": []}},
            "items": [{"x-kubernetes-validations": [], "maxItems": 2}]}});
        strip_cel_rules(&mut crd);
        assert_eq!(
            crd,
            json!({"spec": {"properties": {"x": {"type": "string"}}, "items": [{"maxItems": 2}]}})
        );
    }
}
