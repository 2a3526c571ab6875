# Development tasks. `make test` is the command CI runs.
CARGO ?= cargo

.PHONY: all generate fmt lint test test-harness test-node test-install bench e2e build images storage-images kind-load

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

## The install on a node of its own (e2e/tests/install_node.rs): the images of IMAGES_DIR
## (`make images storage-images` first; the newest profile there) pushed to the node's
## registry, config/overlays/admission-enforce applied, scans, admission, leader handover,
## OOMKilled. Needs root.
test-install: test-harness
	STELLA_IMAGES_DIR=$(IMAGES_DIR) $(CARGO) test -p stella-e2e --test install_node

## Every test: unit, integration, the API-server and node tests, and the install (which skips,
## with a message, when the images of IMAGES_DIR are missing; under CI it fails).
test: test-harness
	STELLA_IMAGES_DIR=$(IMAGES_DIR) $(CARGO) test --workspace --no-fail-fast

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
	target/release/stella-bench --notify 30
	target/release/stella-bench --attest 2000
	target/release/stella-bench --hostile

## Container images of the operator, the worker and the webhook, built with buildah from
## config/images/Containerfile and the binaries of PROFILE, as docker-archive tars under
## IMAGES_DIR/PROFILE, each checked in a chroot (config/images/check.sh). release: `cargo build
## --release` of the three binaries. debug: the binaries `make test` runs, built by the same
## `cargo test --workspace --no-run` (a plain `cargo build` of them unifies other features and
## would compile them a second time). See README, "Container images". Needs root.
PROFILE ?= release
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
STELLA_CACHE ?= $(HOME)/.cache/stella
IMAGES_DIR ?= $(STELLA_CACHE)/stella-images
ifeq ($(PROFILE),debug)
IMAGE_BINARIES = $(CARGO) test --workspace --no-run --locked
else
IMAGE_BINARIES = $(CARGO) build --locked --profile $(PROFILE) -p stella-operator -p stella-cli -p stella-webhook --bins
endif
images:
	$(IMAGE_BINARIES)
	bash config/images/build.sh --profile $(PROFILE) --version $(VERSION) --target-dir $(TARGET_DIR) --out $(IMAGES_DIR)/$(PROFILE)

## The trial storage images of config/storage (PostgreSQL, moto's S3), under IMAGES_DIR/storage.
storage-images:
	bash config/images/build-storage.sh --version $(VERSION) --out $(IMAGES_DIR)/storage

## Load the images into the current kind cluster (then `kubectl apply -k config/default`).
kind-load:
	for archive in $(IMAGES_DIR)/$(PROFILE)/operator.tar $(IMAGES_DIR)/$(PROFILE)/worker.tar \
		$(IMAGES_DIR)/$(PROFILE)/webhook.tar $(IMAGES_DIR)/storage/trial-postgres.tar \
		$(IMAGES_DIR)/storage/trial-s3.tar; do \
		kind load image-archive $$archive || exit 1; \
	done
