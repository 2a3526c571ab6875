//! What evaluations under one feed snapshot share. Everything [`crate::evaluate`] reads from
//! the store is a function of the feed snapshot — advisories, KEV / EPSS, VEX statements and
//! their weights all move it — so an [`EvaluationCache`] reads each of them once per snapshot
//! (advisories per match key, exploit signals per id, the statements and weights whole) and
//! lends them to every evaluation under that snapshot: a fleet re-evaluated after a feed delta
//! shares its base images' packages instead of querying and parsing them per image.
//!
//! Sound because the snapshot is read first: what is cached under it was read after it, so
//! it is at least as new as the label, the same guarantee an uncached evaluation gives (a
//! result may carry newer data than its pinned snapshot, and is judged again when the
//! snapshot moves). A new snapshot replaces the whole cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use stella_advisories::Advisory;
use stella_store::Store;
use stella_verdict::evaluate::Exploit;
use stella_vex::Statement;

/// Match keys cached before the cache starts over (a bound on memory, far above a fleet's).
const MAX_KEYS: usize = 1_000_000;

/// Reads shared by evaluations under one feed snapshot. Cheap to create; one per process
/// (the operator's re-evaluations, a benchmark) or one per evaluation (the default).
#[derive(Debug, Default)]
pub struct EvaluationCache {
    current: Mutex<Option<Arc<Shared>>>,
}

/// The reads of one snapshot.
#[derive(Debug)]
pub(crate) struct Shared {
    snapshot: String,
    statements: tokio::sync::OnceCell<Arc<VexState>>,
    weights: tokio::sync::OnceCell<BTreeMap<String, f64>>,
    /// Per match key, the advisories that name it: (body, parsed), possibly none.
    advisories: Mutex<HashMap<Key, Arc<[Entry]>>>,
    /// Per id, its KEV / EPSS signals, `None` when it has none.
    exploits: Mutex<HashMap<String, Option<Exploit>>>,
}

type Entry = (Arc<str>, Arc<Advisory>);

/// A match key: (ecosystem, package).
type Key = (String, String);

/// The stored VEX statements and their snapshot hash ([`stella_vex::snapshot_hash`], `None`
/// when there are none).
#[derive(Debug)]
pub(crate) struct VexState {
    pub(crate) statements: Vec<Statement>,
    pub(crate) hash: Option<String>,
}

impl EvaluationCache {
    /// The reads of `snapshot`: the current ones, or a fresh set replacing them.
    pub(crate) fn under(&self, snapshot: &str) -> Arc<Shared> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some(shared) if shared.snapshot == snapshot => shared.clone(),
            _ => {
                let shared = Arc::new(Shared {
                    snapshot: snapshot.to_string(),
                    statements: Default::default(),
                    weights: Default::default(),
                    advisories: Default::default(),
                    exploits: Default::default(),
                });
                *current = Some(shared.clone());
                shared
            }
        }
    }
}

impl Shared {
    /// The advisories naming any of `keys`, deduplicated and ordered by their canonical body
    /// (as [`stella_store::AdvisoryDb::advisories_for`] returns them). Keys not cached yet are
    /// read in one query per 500 and their bodies parsed once; bodies that no longer parse
    /// are left out, as an uncached read leaves them.
    pub(crate) async fn advisories(
        &self,
        store: &Store,
        keys: &[(String, String)],
    ) -> stella_store::Result<Vec<Advisory>> {
        let missing: Vec<(String, String)> = {
            let cached = self.advisories.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter()
                .filter(|k| !cached.contains_key(*k))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let rows = store.advisories.advisories_by_key(&missing).await?;
            let mut parsed: HashMap<&str, Option<Entry>> = HashMap::new();
            let mut by_key: HashMap<&(String, String), Vec<Entry>> = HashMap::new();
            for (key, body) in &rows {
                let entry = parsed
                    .entry(body.as_str())
                    .or_insert_with(|| {
                        serde_json::from_str::<Advisory>(body)
                            .ok()
                            .map(|a| (Arc::<str>::from(body.as_str()), Arc::new(a)))
                    })
                    .clone();
                if let Some(entry) = entry {
                    by_key.entry(key).or_default().push(entry);
                }
            }
            let mut cached = self.advisories.lock().unwrap_or_else(|e| e.into_inner());
            if cached.len() + missing.len() > MAX_KEYS {
                cached.clear();
            }
            for key in &missing {
                let entries = by_key.remove(key).unwrap_or_default();
                cached.insert(key.clone(), entries.into());
            }
        }
        let cached = self.advisories.lock().unwrap_or_else(|e| e.into_inner());
        let mut union: BTreeMap<&str, &Arc<Advisory>> = BTreeMap::new();
        for key in keys {
            for (body, advisory) in cached.get(key).map(|e| &e[..]).unwrap_or_default() {
                union.insert(body, advisory);
            }
        }
        Ok(union.into_values().map(|a| Advisory::clone(a)).collect())
    }

    /// KEV / EPSS of `ids`, those without signals left out.
    pub(crate) async fn exploits(
        &self,
        store: &Store,
        ids: &[String],
    ) -> stella_store::Result<BTreeMap<String, Exploit>> {
        let missing: Vec<String> = {
            let cached = self.exploits.lock().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .filter(|id| !cached.contains_key(*id))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let mut found = store.advisories.exploit_signals(&missing).await?;
            let mut cached = self.exploits.lock().unwrap_or_else(|e| e.into_inner());
            if cached.len() + missing.len() > MAX_KEYS {
                cached.clear();
            }
            for id in missing {
                let signal = found.remove(&id).map(|(kev, epss)| Exploit { kev, epss });
                cached.insert(id, signal);
            }
        }
        let cached = self.exploits.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), cached.get(id).copied().flatten()?)))
            .collect())
    }

    /// Every stored VEX statement, in the store's order, with their hash.
    pub(crate) async fn statements(&self, store: &Store) -> stella_store::Result<Arc<VexState>> {
        self.statements
            .get_or_try_init(|| async {
                let statements = store.vex.vex_statements().await?;
                let hash = (!statements.is_empty()).then(|| stella_vex::snapshot_hash(&statements));
                Ok(Arc::new(VexState { statements, hash }))
            })
            .await
            .cloned()
    }

    /// The weights FeedSources give their VEX documents.
    pub(crate) async fn weights(
        &self,
        store: &Store,
    ) -> stella_store::Result<BTreeMap<String, f64>> {
        self.weights
            .get_or_try_init(|| store.vex.document_weights())
            .await
            .cloned()
    }
}
