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

/// The API versions only newer servers serve, which an install on an older one leaves out
/// (with a note): `policy/v1` PodDisruptionBudgets need Kubernetes 1.21.
pub const NEWER_THAN_SOME_SERVERS: [(&str, &str); 1] = [("PodDisruptionBudget", "policy/v1")];

/// Adapts rendered manifests to a server that serves `served` (`kubectl api-versions`) and
/// enforces CEL rules or not: drops objects of API versions it does not serve and strips CEL
/// rules it would refuse. Returns the dropped objects as `Kind apiVersion`; any that are not in
/// [`NEWER_THAN_SOME_SERVERS`] are an error, with the list.
pub fn adapt_to_server(
    objects: &mut Vec<Value>,
    served: &std::collections::BTreeSet<String>,
    cel: bool,
) -> Result<Vec<String>, Vec<String>> {
    let mut dropped = Vec::new();
    objects.retain(|o| {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let keep = served.contains(api_version);
        if !keep {
            dropped.push((
                o["kind"].as_str().unwrap_or_default().to_string(),
                api_version.to_string(),
            ));
        }
        keep
    });
    if !cel {
        objects.iter_mut().for_each(strip_cel_rules);
    }
    let unexpected: Vec<String> = dropped
        .iter()
        .filter(|(kind, version)| {
            !NEWER_THAN_SOME_SERVERS.contains(&(kind.as_str(), version.as_str()))
        })
        .map(|(kind, version)| format!("{kind} {version}"))
        .collect();
    if unexpected.is_empty() {
        Ok(dropped
            .into_iter()
            .map(|(kind, version)| format!("{kind} {version}"))
            .collect())
    } else {
        Err(unexpected)
    }
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

    #[test]
    fn drops_only_what_older_servers_lack() {
        let served = ["v1", "apps/v1", "policy/v1beta1"].map(String::from).into();
        let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget"});
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        let mut objects = vec![pdb.clone(), deployment.clone()];
        assert_eq!(
            adapt_to_server(&mut objects, &served, false),
            Ok(vec!["PodDisruptionBudget policy/v1".to_string()])
        );
        assert_eq!(objects, std::slice::from_ref(&deployment));
        // Anything else not served is an error, not a silent gap in the install.
        let mut objects = vec![
            json!({"apiVersion": "batch/v2", "kind": "CronJob"}),
            deployment,
        ];
        assert_eq!(
            adapt_to_server(&mut objects, &served, false),
            Err(vec!["CronJob batch/v2".to_string()])
        );
    }
}
