//! Matching an inventory: which of its packages advisories can speak of (the candidates, keyed
//! by ecosystem and package name as the feeds write them) and the findings.

use std::collections::BTreeSet;
use stella_advisories::Advisory;
use stella_advisories::matching::{Candidate, Finding, key, match_all};
use stella_analyzers::Ecosystem;
use stella_sbom::Inventory;

/// The packages of `inventory` an advisory can speak of, with their matching keys: OS packages
/// by source package and source version of their release, language packages by their
/// ecosystem's name; `bin:` components and versionless packages are not candidates.
pub fn candidates(inventory: &Inventory) -> Vec<Candidate> {
    let distro = inventory
        .distro
        .as_ref()
        .and_then(|d| Some((d.id.as_str(), d.version_id.as_deref()?)));
    let mut candidates = Vec::new();
    for c in &inventory.components {
        let p = &c.package;
        let purl_type = match p.ecosystem {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Npm => "npm",
            Ecosystem::Maven => "maven",
            Ecosystem::Golang => "golang",
            Ecosystem::Nuget => "nuget",
            Ecosystem::Cargo => "cargo",
            // Identified by content only: no advisory speaks of it.
            Ecosystem::Binary => continue,
        };
        if p.version.is_empty() {
            continue;
        }
        let name = match p.ecosystem {
            Ecosystem::Pypi => stella_analyzers::python::normalize(&p.name),
            _ => p.name.clone(),
        };
        // Maven names are `group:artifact`; the key wants the group as the namespace.
        let (namespace, name) = match (p.ecosystem, name.split_once(':')) {
            (Ecosystem::Maven, Some((g, a))) => (Some(g.to_string()), a.to_string()),
            _ => (None, name),
        };
        if let Some((ecosystem, package)) = key(
            purl_type,
            &name,
            namespace.as_deref(),
            p.source_name.as_deref(),
            distro,
        ) {
            // Distro advisories speak of source packages and source versions (a binNMU's
            // `+b1` is not a newer upstream).
            let version = match (p.ecosystem, &p.source_version) {
                (Ecosystem::Deb, Some(source_version)) => source_version.clone(),
                _ => p.version.clone(),
            };
            candidates.push(Candidate {
                purl: p.purl.clone(),
                name: p.name.clone(),
                version,
                ecosystem,
                package,
                layer_digest: c.layer_digest.clone(),
            });
        }
    }
    candidates
}

/// The distinct (ecosystem, package) keys of `candidates`, sorted.
pub fn keys(candidates: &[Candidate]) -> Vec<(String, String)> {
    candidates
        .iter()
        .map(|c| (c.ecosystem.clone(), c.package.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The `ecosystem/package` keys advisories name `inventory`'s packages by, sorted: what its
/// BOM-Index records for impact selection, in the form feed deltas list.
pub fn match_keys(inventory: &Inventory) -> Vec<String> {
    keys(&candidates(inventory))
        .into_iter()
        .map(|(ecosystem, package)| format!("{ecosystem}/{package}"))
        .collect()
}

/// The findings of `inventory` against `advisories`, each flagged when the entrypoint uses
/// the package.
pub fn match_inventory(inventory: &Inventory, advisories: &[Advisory]) -> Vec<Finding> {
    let used: BTreeSet<&str> = inventory
        .components
        .iter()
        .filter(|c| c.used_by_entrypoint)
        .map(|c| c.package.purl.as_str())
        .collect();
    let mut findings = match_all(&candidates(inventory), advisories);
    for finding in &mut findings {
        finding.used_by_entrypoint = used.contains(finding.purl.as_str());
    }
    findings
}
