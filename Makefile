# Development tasks. `make test` is the command CI runs.
CARGO ?= cargo

.PHONY: all generate fmt lint test test-harness test-node bench e2e build images kind-load

all: build

build:
	$(CARGO) build --workspace

## Regenerate config/crd/bases from the Rust types in crds/.
generate:
	$(CARGO) run -q -p stella-operator -- crd --out config/crd/bases

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Build (once, cached) Kubernetes 1.20.2 from Debian's source (kube-apiserver, the node's four
## binaries, the pause and node-check images) and install the node's Debian packages. Needs
## root for apt-get; without it the cluster and node tests skip with a message (outside CI).
test-harness:
	@bash e2e/harness/build-kubernetes.sh >/dev/null || echo "Kubernetes build unavailable: cluster tests will skip"
	@bash e2e/harness/node.sh deps || echo "node packages unavailable: node tests will skip"

## Only the tests on the harness's real node (e2e/harness/node.sh; needs root).
test-node: test-harness
	$(CARGO) test -p stella-e2e --test tests node::

## Every test: unit, integration, and the API-server tests.
test: test-harness
	$(CARGO) test --workspace

## Only the end-to-end tests (local API server, or the kind/k3d cluster in KUBECONFIG).
e2e: test-harness
	$(CARGO) test -p stella-e2e

## Scanner benchmark on a ~350 MB three-layer Debian image: cold and warm stella scan against
## the read+decompress+verify floor and against Trivy (from npm), ratios printed.
bench:
	bash e2e/images/build-debian.sh big
	$(CARGO) build --release -p stella-cli -p stella-bench
	target/release/stella-bench --image $${STELLA_CACHE:-$$HOME/.cache/stella}/images/debian-bookworm-big --synthetic-gb 1
	target/release/stella-bench --matching 200000
	target/release/stella-bench --emit 5000 --runs 21

## Container images of the operator, the worker and the webhook (docker or podman).
CONTAINER ?= docker
VERSION ?= 0.1.0
images:
	for target in operator worker webhook; do \
		$(CONTAINER) build -f config/images/Containerfile --target $$target -t stella-ops/$$target:$(VERSION) . || exit 1; \
	done

## Load the images into the current kind cluster (then `kubectl apply -k config/default`).
kind-load:
	for target in operator worker webhook; do kind load docker-image stella-ops/$$target:$(VERSION) || exit 1; done
