//! What changed between two images' inventories: components added, removed, version-changed
//! (upgraded / downgraded by the ecosystem's own comparator) and metadata-changed, each with
//! the layer that introduced it.

use crate::{Component, Inventory};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use stella_analyzers::Ecosystem;

/// One change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// `added`, `removed`, `version_changed`, `metadata_changed`.
    pub kind: String,
    pub ecosystem: Ecosystem,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Where the package's metadata lives (tells two installs of one name apart).
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_purl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_purl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_version: Option<String>,
    /// For version changes: `upgraded`, `downgraded`, or `changed` when the versions do not
    /// parse in the ecosystem's scheme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The layer of the new image that introduced the package (added / changed), or of the
    /// old image (removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<String>,
    /// For metadata changes: which fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Whether the old image's entrypoint used it (removed and changed components).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub old_used_by_entrypoint: bool,
    /// Whether the new image's entrypoint uses it (added and changed components).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub new_used_by_entrypoint: bool,
}

/// A whole comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    pub old_image: String,
    pub new_image: String,
    /// Layers the images share, in order from the bottom.
    pub shared_layers: usize,
    pub summary: BTreeMap<String, usize>,
    /// Sorted by (name, location, kind).
    pub changes: Vec<Change>,
}

/// The `stellaops:buildId` values of a component.
fn build_ids(c: &Component) -> Vec<&str> {
    c.properties
        .iter()
        .filter(|(name, _)| name == "stellaops:buildId")
        .map(|(_, value)| value.as_str())
        .collect()
}

type Key<'a> = (Ecosystem, &'a str, Option<&'a str>, &'a str);

fn key(c: &Component) -> Key<'_> {
    let p = &c.package;
    (
        p.ecosystem,
        p.name.as_str(),
        p.arch.as_deref(),
        p.evidence.path.as_str(),
    )
}

/// The comparator of an ecosystem's versions.
pub fn comparator(ecosystem: Ecosystem) -> &'static str {
    match ecosystem {
        Ecosystem::Deb => "dpkg",
        Ecosystem::Rpm => "rpm",
        Ecosystem::Apk => "apk",
        Ecosystem::Pypi => "pep440",
        Ecosystem::Npm => "semver",
        Ecosystem::Maven => "maven",
        Ecosystem::Golang => "go",
        Ecosystem::Nuget => "nuget",
        Ecosystem::Cargo => "semver",
        Ecosystem::Binary => "exact",
    }
}

/// Compares two inventories; `compare(comparator, a, b)` orders versions.
pub fn diff(
    old: &Inventory,
    new: &Inventory,
    compare: &dyn Fn(&str, &str, &str) -> Option<Ordering>,
) -> Diff {
    // Several installs of one name at one location (never in practice) pair up in order.
    let mut olds: BTreeMap<Key, Vec<&Component>> = BTreeMap::new();
    for c in &old.components {
        olds.entry(key(c)).or_default().push(c);
    }
    let mut news: BTreeMap<Key, Vec<&Component>> = BTreeMap::new();
    for c in &new.components {
        news.entry(key(c)).or_default().push(c);
    }
    let mut changes = Vec::new();
    let base = |kind: &str, c: &Component| Change {
        kind: kind.into(),
        ecosystem: c.package.ecosystem,
        name: c.package.name.clone(),
        arch: c.package.arch.clone(),
        location: c.package.evidence.path.clone(),
        old_purl: None,
        new_purl: None,
        old_version: None,
        new_version: None,
        direction: None,
        layer_digest: None,
        fields: vec![],
        old_used_by_entrypoint: false,
        new_used_by_entrypoint: false,
    };
    let keys: std::collections::BTreeSet<Key> = olds.keys().chain(news.keys()).copied().collect();
    for k in keys {
        let (o, n) = (
            olds.get(&k).map(Vec::as_slice).unwrap_or_default(),
            news.get(&k).map(Vec::as_slice).unwrap_or_default(),
        );
        for i in 0..o.len().max(n.len()) {
            match (o.get(i), n.get(i)) {
                (None, Some(n)) => changes.push(Change {
                    new_purl: Some(n.package.purl.clone()),
                    new_version: Some(n.package.version.clone()),
                    layer_digest: n.layer_digest.clone(),
                    new_used_by_entrypoint: n.used_by_entrypoint,
                    ..base("added", n)
                }),
                (Some(o), None) => changes.push(Change {
                    old_purl: Some(o.package.purl.clone()),
                    old_version: Some(o.package.version.clone()),
                    layer_digest: o.layer_digest.clone(),
                    old_used_by_entrypoint: o.used_by_entrypoint,
                    ..base("removed", o)
                }),
                (Some(o), Some(n)) if o.package.version != n.package.version => {
                    let direction = match compare(
                        comparator(n.package.ecosystem),
                        &o.package.version,
                        &n.package.version,
                    ) {
                        Some(Ordering::Less) => "upgraded",
                        Some(Ordering::Greater) => "downgraded",
                        _ => "changed",
                    };
                    changes.push(Change {
                        old_purl: Some(o.package.purl.clone()),
                        new_purl: Some(n.package.purl.clone()),
                        old_version: Some(o.package.version.clone()),
                        new_version: Some(n.package.version.clone()),
                        direction: Some(direction.into()),
                        layer_digest: n.layer_digest.clone(),
                        old_used_by_entrypoint: o.used_by_entrypoint,
                        new_used_by_entrypoint: n.used_by_entrypoint,
                        ..base("version_changed", n)
                    });
                }
                (Some(o), Some(n)) => {
                    let (a, b) = (&o.package, &n.package);
                    let mut fields = Vec::new();
                    for (field, differs) in [
                        ("purl", a.purl != b.purl),
                        ("licenses", a.licenses != b.licenses),
                        ("supplier", a.supplier != b.supplier),
                        (
                            "source",
                            (&a.source_name, &a.source_version)
                                != (&b.source_name, &b.source_version),
                        ),
                        ("dependencies", a.depends_on != b.depends_on),
                        ("files", a.files != b.files),
                        ("installedSize", a.installed_size != b.installed_size),
                        ("buildId", build_ids(o) != build_ids(n)),
                        (
                            "usedByEntrypoint",
                            o.used_by_entrypoint != n.used_by_entrypoint,
                        ),
                    ] {
                        if differs {
                            fields.push(field.to_string());
                        }
                    }
                    if !fields.is_empty() {
                        changes.push(Change {
                            old_purl: Some(a.purl.clone()),
                            new_purl: Some(b.purl.clone()),
                            old_version: Some(a.version.clone()),
                            new_version: Some(b.version.clone()),
                            layer_digest: n.layer_digest.clone(),
                            fields,
                            old_used_by_entrypoint: o.used_by_entrypoint,
                            new_used_by_entrypoint: n.used_by_entrypoint,
                            ..base("metadata_changed", n)
                        });
                    }
                }
                (None, None) => {}
            }
        }
    }
    changes.sort_by(|a, b| {
        (
            &a.name,
            &a.location,
            &a.kind,
            &a.old_version,
            &a.new_version,
        )
            .cmp(&(
                &b.name,
                &b.location,
                &b.kind,
                &b.old_version,
                &b.new_version,
            ))
    });
    let mut summary = BTreeMap::new();
    for kind in ["added", "removed", "version_changed", "metadata_changed"] {
        summary.insert(
            kind.to_string(),
            changes.iter().filter(|c| c.kind == kind).count(),
        );
    }
    let shared_layers = old
        .image
        .layers
        .iter()
        .zip(&new.image.layers)
        .take_while(|(a, b)| a == b)
        .count();
    Diff {
        old_image: old.image.digest.clone(),
        new_image: new.image.digest.clone(),
        shared_layers,
        summary,
        changes,
    }
}
