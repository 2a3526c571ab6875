//! The usage view: which packages what the entrypoint runs actually uses — the files of the
//! EntryTrace closure (scripts, sourced files, interpreters, programs, jars, modules), the
//! libraries they link (transitively, as the loader resolves them), the packages inside a used
//! archive or binary (a jar's nested jars, a Go binary's modules), the npm packages a Node
//! script can `require` from its `node_modules`, and the language packages those depend on.

use std::collections::{BTreeMap, BTreeSet};
use stella_analyzers::{Analysis, Ecosystem};
use stella_entrytrace::{TerminalKind, Trace};
use stella_layerfs::Filesystem;

/// Indices into `analysis.packages` of the packages the traced entrypoint uses.
pub fn used_packages(trace: &Trace, analysis: &Analysis, fs: &Filesystem) -> BTreeSet<usize> {
    let canonical = |f: &str| {
        fs.resolve(f.trim_start_matches('/'))
            .map(|p| format!("/{p}"))
    };
    let roots: Vec<String> = trace.files.iter().filter_map(|f| canonical(f)).collect();
    let files = analysis.binaries.closure(roots.iter().map(String::as_str));
    let packages = &analysis.packages;
    // The owners of what the trace names as it names it (a `python3` symlink) and of what
    // that is (the `python3.11` it points to), and of every library loaded.
    let named = trace
        .files
        .iter()
        .filter_map(|f| fs.resolve_parent(f.trim_start_matches('/')))
        .map(|p| format!("/{p}"));
    let mut used: BTreeSet<usize> = files
        .iter()
        .cloned()
        .chain(named)
        .filter_map(|f| analysis.owners.get(&f).copied())
        .collect();
    for (i, p) in packages.iter().enumerate() {
        let outer = p.evidence.path.split("!/").next().unwrap_or_default();
        if canonical(outer).is_some_and(|c| files.contains(&c)) {
            used.insert(i);
        }
    }
    // Node resolves `require` through every `node_modules` above the script.
    for terminal in trace
        .terminals
        .iter()
        .filter(|t| t.kind == TerminalKind::NodeScript)
    {
        let Some(script) = canonical(&terminal.path) else {
            continue;
        };
        let mut dir = script.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            let prefix = format!("{}/node_modules/", parent.trim_start_matches('/'));
            used.extend(
                packages
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        p.ecosystem == Ecosystem::Npm && p.evidence.path.starts_with(&prefix)
                    })
                    .map(|(i, _)| i),
            );
            dir = parent;
        }
    }
    // A used language package loads what it depends on.
    let by_purl: BTreeMap<&str, Vec<usize>> =
        packages
            .iter()
            .enumerate()
            .fold(BTreeMap::new(), |mut map, (i, p)| {
                map.entry(p.purl.as_str()).or_insert_with(Vec::new).push(i);
                map
            });
    let mut stack: Vec<usize> = used.iter().copied().collect();
    while let Some(i) = stack.pop() {
        if !is_language(packages[i].ecosystem) {
            continue;
        }
        for dep in &packages[i].depends_on {
            for &j in by_purl.get(dep.as_str()).into_iter().flatten() {
                if used.insert(j) {
                    stack.push(j);
                }
            }
        }
    }
    used
}

fn is_language(ecosystem: Ecosystem) -> bool {
    !matches!(
        ecosystem,
        Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm | Ecosystem::Binary
    )
}
