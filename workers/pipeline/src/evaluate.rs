//! Step 3: an inventory judged against what the store knows now — the advisories that could
//! speak of its packages (under a feed snapshot pinned first, so a later import cannot leak
//! into a result recorded under an older one), the VEX statements' consensus, KEV / EPSS, the
//! policy with its proof ledger, and the unknowns.

use crate::{Error, EvaluationCache, Result};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use stella_advisories::Advisory;
use stella_advisories::matching::Finding;
use stella_model::Severity;
use stella_sbom::Inventory;
use stella_store::Store;
use stella_verdict::evaluate::Exploit;
use stella_vex::{Consensus, Statement, TrustConfig};

/// What the evaluation is asked.
#[derive(Clone, Debug)]
pub struct EvaluateInputs {
    /// The policy to evaluate; `None`: findings and VEX only, no verdict.
    pub policy: Option<stella_policy::Loaded>,
    /// VEX provider trust weights and accepted justifications. The store's document weights
    /// (what FeedSources' `trust` gives their documents) join its `documents` where it does
    /// not weigh the document itself.
    pub trust: TrustConfig,
    /// The namespace the image runs in, for the policy's `namespaces` matchers.
    pub namespace: Option<String>,
    /// The environment (`prod`, `dev`, …), for the policy's `environments` matchers.
    pub environment: Option<String>,
    /// When the policy is evaluated (waivers expire): whole seconds, as the scan manifest
    /// records it ([`crate::now_seconds`]).
    pub evaluated_at: DateTime<Utc>,
    /// VEX statements for this evaluation only (`stella scan --vex FILE`): they join the
    /// stored ones (and the pinned inputs and VEX snapshot hash with them), and are not stored.
    pub statements: Vec<Statement>,
}

impl EvaluateInputs {
    /// No policy, the default trust, evaluated now.
    pub fn now(policy: Option<stella_policy::Loaded>) -> EvaluateInputs {
        EvaluateInputs {
            policy,
            trust: TrustConfig::default(),
            namespace: None,
            environment: None,
            evaluated_at: crate::now_seconds(),
            statements: Vec::new(),
        }
    }
}

/// An inventory, judged.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub inventory: Inventory,
    /// The feed snapshot the advisories were read under.
    pub feed_snapshot: String,
    /// Matched findings, in matching order.
    pub findings: Vec<Finding>,
    /// VEX consensus per finding, in findings order.
    pub vex: Vec<Option<Consensus>>,
    /// `sha256:` of the stored VEX statements ([`stella_vex::snapshot_hash`]), when any are.
    pub vex_snapshot: Option<String>,
    /// KEV / EPSS of the findings' ids and aliases.
    pub exploits: BTreeMap<String, Exploit>,
    /// With a policy: its pinned inputs, report and proof.
    pub policy: Option<PolicyEvaluation>,
    /// What the scan could not classify (seed §4C), ranked.
    pub unknowns: Vec<stella_verdict::Unknown>,
}

/// The policy's part of an evaluation.
#[derive(Clone, Debug)]
pub struct PolicyEvaluation {
    /// The policy's digest (`sha256:` of its canonical form).
    pub digest: String,
    /// Everything the verdict depends on, pinned (what a proof bundle carries).
    pub inputs: stella_verdict::evaluate::Inputs,
    /// The report, the scan manifest and the proof ledger.
    pub evaluation: stella_verdict::evaluate::Evaluation,
}

/// Findings after VEX, by severity; those VEX quiets (`not_affected`, `fixed`) counted apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub none: i64,
    pub unknown: i64,
    pub suppressed: i64,
}

impl Evaluation {
    /// The policy report, when a policy was evaluated.
    pub fn report(&self) -> Option<&stella_policy::Report> {
        self.policy.as_ref().map(|p| &p.evaluation.report)
    }

    /// The verdict, when a policy was evaluated.
    pub fn verdict(&self) -> Option<stella_model::Verdict> {
        self.report().map(|r| r.verdict)
    }

    /// Findings after VEX by severity.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for (finding, consensus) in self.findings.iter().zip(&self.vex) {
            let slot = match (quieted(consensus.as_ref()), finding.severity) {
                (true, _) => &mut counts.suppressed,
                (false, Severity::Critical) => &mut counts.critical,
                (false, Severity::High) => &mut counts.high,
                (false, Severity::Medium) => &mut counts.medium,
                (false, Severity::Low) => &mut counts.low,
                (false, Severity::None) => &mut counts.none,
                (false, Severity::Unknown) => &mut counts.unknown,
            };
            *slot += 1;
        }
        counts
    }
}

/// Whether a consensus quiets its finding (`not_affected` or `fixed`).
fn quieted(consensus: Option<&Consensus>) -> bool {
    consensus.is_some_and(stella_verdict::present::quiets)
}

/// Judges `inventory` against the store's advisories, VEX and exploit signals, under
/// `inputs`. The matching and the evaluation run on the runtime's blocking threads.
pub async fn evaluate(
    store: &Store,
    inventory: Inventory,
    inputs: EvaluateInputs,
) -> Result<Evaluation> {
    evaluate_with(store, &EvaluationCache::default(), inventory, inputs).await
}

/// [`evaluate`], with what it reads from the store shared through `cache` by every
/// evaluation under the same feed snapshot (see [`EvaluationCache`]). The result is the same.
pub async fn evaluate_with(
    store: &Store,
    cache: &EvaluationCache,
    inventory: Inventory,
    inputs: EvaluateInputs,
) -> Result<Evaluation> {
    // Pinned before anything else is read: a later import cannot leak into this result
    // under an older snapshot.
    let feed_snapshot = store
        .advisories
        .feed_snapshot()
        .await
        .map_err(Error::storage("the feed snapshot"))?;
    let shared = cache.under(&feed_snapshot);
    let keys = stella_verdict::matching::keys(&stella_verdict::matching::candidates(&inventory));
    let advisories = shared
        .advisories(store, &keys)
        .await
        .map_err(Error::storage("failed to read advisories"))?;
    let (inventory, advisories, findings) = blocking(move || {
        let findings = stella_verdict::matching::match_inventory(&inventory, &advisories);
        (inventory, advisories, findings)
    })
    .await?;
    let statements = shared
        .statements(store)
        .await
        .map_err(Error::storage("VEX statements"))?;
    let document_weights = shared
        .weights(store)
        .await
        .map_err(Error::storage("VEX document weights"))?;
    let ids: Vec<String> = findings
        .iter()
        .flat_map(|f| std::iter::once(&f.id).chain(&f.aliases).cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let exploits = shared
        .exploits(store, &ids)
        .await
        .map_err(Error::storage("KEV / EPSS"))?;
    let judged = Judged {
        inventory,
        feed_snapshot,
        advisories,
        findings,
        statements,
        exploits,
    };
    let mut inputs = inputs;
    for (digest, weight) in document_weights {
        inputs.trust.documents.entry(digest).or_insert(weight);
    }
    blocking(move || judged.judge(inputs)).await
}

/// The imported advisories that could speak of the inventory's packages.
pub async fn advisories_for(
    store: &Store,
    inventory: &Inventory,
) -> stella_store::Result<Vec<Advisory>> {
    let keys = stella_verdict::matching::keys(&stella_verdict::matching::candidates(inventory));
    Ok(store
        .advisories
        .advisories_for(&keys)
        .await?
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .collect())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("the evaluation failed: {e}")))
}

/// Everything read from the store, ready to judge (pure from here on).
struct Judged {
    inventory: Inventory,
    feed_snapshot: String,
    advisories: Vec<Advisory>,
    findings: Vec<Finding>,
    statements: std::sync::Arc<crate::cache::VexState>,
    exploits: BTreeMap<String, Exploit>,
}

impl Judged {
    fn judge(self, mut inputs: EvaluateInputs) -> Evaluation {
        let (inventory, findings, statements, exploits) = (
            self.inventory,
            self.findings,
            self.statements,
            self.exploits,
        );
        let statements = if inputs.statements.is_empty() {
            statements
        } else {
            let mut all = statements.statements.clone();
            all.append(&mut inputs.statements);
            std::sync::Arc::new(crate::cache::VexState {
                hash: Some(stella_vex::snapshot_hash(&all)),
                statements: all,
            })
        };
        let vex_snapshot = statements.hash.clone();
        let vex = stella_verdict::evaluate::vex_decisions(
            &statements.statements,
            &inputs.trust,
            &inventory.image.digest,
            &findings,
        );
        let policy = inputs.policy.map(|loaded| {
            // Only the statements about this image's packages are pinned (and bundled).
            let purls: BTreeSet<&str> = inventory
                .components
                .iter()
                .map(|c| c.package.purl.as_str())
                .collect();
            let statements: Vec<Statement> = statements
                .statements
                .iter()
                .filter(|s| {
                    purls
                        .iter()
                        .any(|p| s.applies(Some(&inventory.image.digest), p))
                })
                .cloned()
                .collect();
            // And only the document weights those statements need.
            let mut trust = inputs.trust;
            let documents: BTreeSet<&str> = statements
                .iter()
                .map(|s| s.source.document_digest.as_str())
                .collect();
            trust
                .documents
                .retain(|digest, _| documents.contains(digest.as_str()));
            let pinned = stella_verdict::evaluate::Inputs {
                inventory: inventory.clone(),
                advisories: self.advisories,
                statements,
                trust,
                exploits: exploits.clone(),
                policy: loaded.spec,
                evaluated_at: inputs.evaluated_at,
                namespace: inputs.namespace,
                environment: inputs.environment,
            };
            let evaluation = stella_verdict::evaluate::evaluate(&pinned);
            PolicyEvaluation {
                digest: loaded.digest,
                inputs: pinned,
                evaluation,
            }
        });
        let unknowns = unknowns(&inventory, &findings, &vex, &exploits, policy.as_ref());
        Evaluation {
            inventory,
            feed_snapshot: self.feed_snapshot,
            findings,
            vex,
            vex_snapshot,
            exploits,
            policy,
            unknowns,
        }
    }
}

/// The image's unknowns (seed §4C): every open finding no VEX statement speaks of, or VEX
/// disputes, degraded databases, EntryTrace and ELF gaps.
fn unknowns(
    inventory: &Inventory,
    findings: &[Finding],
    vex: &[Option<Consensus>],
    exploits: &BTreeMap<String, Exploit>,
    policy: Option<&PolicyEvaluation>,
) -> Vec<stella_verdict::Unknown> {
    // Open: not quieted by VEX or waived by the policy.
    let closed: BTreeSet<(&str, &str)> = policy
        .iter()
        .flat_map(|p| &p.evaluation.report.findings)
        .filter(|d| {
            !matches!(
                d.outcome,
                stella_policy::Outcome::Fail
                    | stella_policy::Outcome::Warn
                    | stella_policy::Outcome::Deferred
            )
        })
        .map(|d| (d.id.as_str(), d.purl.as_str()))
        .collect();
    let inputs: Vec<stella_verdict::FindingInput> = findings
        .iter()
        .zip(vex)
        .map(|(finding, consensus)| {
            let exploit = stella_verdict::evaluate::exploit_of(exploits, finding);
            stella_verdict::FindingInput {
                finding,
                vex: stella_verdict::evaluate::vex_state(consensus.as_ref()),
                open: !closed.contains(&(finding.id.as_str(), finding.purl.as_str()))
                    && !quieted(consensus.as_ref()),
                kev: exploit.kev,
                epss: exploit.epss,
            }
        })
        .collect();
    let context = stella_verdict::Context {
        inventory,
        runs_as_root: stella_verdict::runs_as_root(inventory.image.user.as_deref()),
        containment: stella_verdict::Containment::default(),
        orphan_vex: &[],
    };
    stella_verdict::derive(&context, &inputs)
}
