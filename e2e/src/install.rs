//! Installing the committed CRDs into the test cluster (shared by every crate's cluster tests).

use crate::compat::{strip_cel_rules, supports_cel};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MANAGER: &str = "stella-e2e";

/// `config/crd/bases` of this repository.
pub fn crd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/crd/bases")
}

/// Installs the committed CRDs by server-side apply (CEL rules stripped on servers that do
/// not know them) and waits until each is Established.
pub async fn install_crds(client: &kube::Client) -> Vec<CustomResourceDefinition> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let cel = supports_cel(&client.apiserver_version().await.unwrap());
    let mut files: Vec<_> = std::fs::read_dir(crd_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    let mut installed = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut value: Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if !cel {
            strip_cel_rules(&mut value);
        }
        let crd: CustomResourceDefinition = serde_json::from_value(value).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {}: {e}", path.display()));
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("{name} not Established within 30s"))
        .unwrap();
        installed.push(crd);
    }
    installed
}
