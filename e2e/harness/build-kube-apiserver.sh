#!/usr/bin/env bash
# Builds (once, cached) kube-apiserver 1.20.2 for the API-server harness. It is one of the five
# binaries e2e/harness/build-kubernetes.sh builds in one `go build` (with the pause image); that
# script also keeps ${STELLA_CACHE:-~/.cache/stella}/kube-apiserver-1.20.2/kube-apiserver, the
# path e2e/src/cluster.rs uses, up to date.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/build-kubernetes.sh" "$@"
