//! End-to-end tests against a real API server: the local harness (etcd + kube-apiserver 1.20
//! built from Debian's source) or a kind/k3d cluster named by `KUBECONFIG`; and, for what
//! needs Pods to run, the harness's real node (`e2e/harness/node.sh`). The install on a node
//! of its own is the `install_node` test binary.

mod architecture;
mod argocd;
mod crds;
mod helm;
mod install;
mod kind;
mod leader;
mod monitoring;
mod node;

use stella_e2e::{cluster, repo_root, run, unique_namespace};
