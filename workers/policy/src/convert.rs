//! Conversions from what a scan produces (an advisory finding, its SBOM component) into an
//! evaluation [`Input`]. KEV, EPSS, tags and the VEX consensus come from elsewhere: set those
//! fields on the result.

use crate::evaluate::Input;
use stella_advisories::matching::Finding;
use stella_model::Severity;
use stella_sbom::Component;

/// A severity name (`Critical`, `high`, …); anything else is `Unknown`.
pub fn parse_severity(name: &str) -> Severity {
    Severity::parse(name)
}

impl Input {
    /// The input for a matched finding: its id, aliases, purl, severity, sources (the
    /// advisory's source and the feed its severity came from), layer and entrypoint use.
    pub fn from_finding(finding: &Finding) -> Input {
        let mut sources = vec![finding.evidence.source.clone()];
        sources.extend(finding.severity_origin.clone());
        sources.retain(|s| !s.is_empty());
        sources.sort();
        sources.dedup();
        Input {
            id: finding.id.clone(),
            aliases: finding.aliases.clone(),
            purl: finding.purl.clone(),
            severity: finding.severity,
            sources,
            layer_digest: finding.layer_digest.clone(),
            used_by_entrypoint: finding.used_by_entrypoint,
            ..Input::default()
        }
    }

    /// Adds what the SBOM component knows: its supplier (vendor), evidence path, licenses,
    /// layer (when the finding has none) and entrypoint use.
    pub fn with_component(mut self, component: &Component) -> Input {
        let package = &component.package;
        self.vendor = self.vendor.or_else(|| package.supplier.clone());
        if !package.evidence.path.is_empty() {
            self.path = Some(package.evidence.path.clone());
        }
        self.licenses = package.licenses.clone();
        if self.layer_digest.is_none() {
            self.layer_digest = component.layer_digest.clone();
        }
        self.used_by_entrypoint |= component.used_by_entrypoint;
        self
    }
}
