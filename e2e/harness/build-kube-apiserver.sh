#!/usr/bin/env bash
# Builds kube-apiserver 1.20.2 from Debian's `kubernetes` source package, for the test harness.
#
# Debian ships the full source with vendor/, and it builds with Debian's Go 1.19 in GOPATH mode
# after three fixes:
#   1. pkg/generated/openapi/zz_generated.openapi.go is generated with the vendored openapi-gen;
#   2. the reflect2 v1.0.2 `mapiterinit` change is backported into the vendored reflect2 v1.0.1
#      (without it the server crashes on Go >= 1.18 at the first request);
#   3. the version is set through -X ldflags so clients see v1.20.2.
#
# The result is cached: ${STELLA_CACHE:-~/.cache/stella}/kube-apiserver-1.20.2/kube-apiserver.
# Needs root for apt-get (or the packages golang-go, etcd-server and dpkg-dev already installed).
set -euo pipefail

cache="${STELLA_CACHE:-$HOME/.cache/stella}"
out="$cache/kube-apiserver-1.20.2"
bin="$out/kube-apiserver"
if [[ -x "$bin" ]]; then
    echo "kube-apiserver: cached at $bin"
    exit 0
fi

# One build at a time, across test binaries and CI steps.
mkdir -p "$cache"
exec 9>"$cache/.kube-apiserver-build.lock"
flock 9
if [[ -x "$bin" ]]; then
    echo "kube-apiserver: cached at $bin"
    exit 0
fi

need=()
command -v go >/dev/null || need+=(golang-go)
command -v etcd >/dev/null || need+=(etcd-server)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

src_root="$cache/src"
mkdir -p "$src_root"
src=$(find "$src_root" -maxdepth 1 -type d -name 'kubernetes-1.20*' | head -n1)
if [[ -z "$src" ]]; then
    # deb-src is not enabled by default: enable it for the Debian sources already configured.
    if ! apt-cache showsrc kubernetes >/dev/null 2>&1 || [[ -z "$(apt-cache showsrc kubernetes 2>/dev/null)" ]]; then
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -f "$f" ]] && sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
        done
        if [[ -f /etc/apt/sources.list ]]; then
            sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/stella-deb-src.list
        fi
        apt-get update -qq
    fi
    (cd "$src_root" && apt-get source -qq kubernetes)
    src=$(find "$src_root" -maxdepth 1 -type d -name 'kubernetes-1.20*' | head -n1)
fi
echo "kube-apiserver: building from $src"

gopath="$cache/gopath"
mkdir -p "$gopath/src/k8s.io"
ln -sfn "$src" "$gopath/src/k8s.io/kubernetes"
export GOPATH="$gopath" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
cd "$gopath/src/k8s.io/kubernetes"

# Fix 2: since Go 1.18 reflect.mapiterinit fills an iterator the caller allocates
# (reflect2 v1.0.2): pass it in, and give hiter the runtime's full layout so it is big enough.
r2=vendor/github.com/modern-go/reflect2
if ! grep -q 'checkBucket' "$r2/unsafe_link.go"; then
    python3 - "$r2/unsafe_link.go" "$r2/unsafe_map.go" <<'PY2'
import sys
link, umap = sys.argv[1], sys.argv[2]
s = open(link).read()
old_sig = "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer) *hiter"
new_sig = "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it *hiter)"
old_hiter = """type hiter struct {
	key   unsafe.Pointer // Must be in first position.  Write nil to indicate iteration end (see cmd/internal/gc/range.go).
	value unsafe.Pointer // Must be in second position (see cmd/internal/gc/range.go).
	// rest fields are ignored
}"""
new_hiter = """type hiter struct {
	key         unsafe.Pointer
	value       unsafe.Pointer
	t           unsafe.Pointer
	h           unsafe.Pointer
	buckets     unsafe.Pointer
	bptr        unsafe.Pointer
	overflow    *[]unsafe.Pointer
	oldoverflow *[]unsafe.Pointer
	startBucket uintptr
	offset      uint8
	wrapped     bool
	B           uint8
	i           uint8
	bucket      uintptr
	checkBucket uintptr
}"""
assert old_sig in s and old_hiter in s, "reflect2 unsafe_link.go not in the expected v1.0.1 form"
open(link, "w").write(s.replace(old_sig, new_sig).replace(old_hiter, new_hiter))
s = open(umap).read()
old = """func (type2 *UnsafeMapType) UnsafeIterate(obj unsafe.Pointer) MapIterator {
	return &UnsafeMapIterator{
		hiter:      mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj)),"""
new = """func (type2 *UnsafeMapType) UnsafeIterate(obj unsafe.Pointer) MapIterator {
	var it hiter
	mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj), &it)
	return &UnsafeMapIterator{
		hiter:      &it,"""
assert old in s, "reflect2 UnsafeIterate not in the expected v1.0.1 form"
open(umap, "w").write(s.replace(old, new))
PY2
fi

# Fix 1: the OpenAPI definitions kube-apiserver compiles in are generated, not shipped.
gen=pkg/generated/openapi/zz_generated.openapi.go
if [[ ! -f "$gen" ]]; then
    go build -o "$gopath/bin/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
    dirs=$(find -H . \( -path ./_\* -o -path ./.\* -o -path ./vendor \) -prune -o -type f -name '*.go' -print0 \
        | xargs -0 grep -l '^// *+k8s:openapi-gen=' \
        | sed 's|^./staging/src|vendor|; s|^./||' \
        | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' \
        | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
    "$gopath/bin/openapi-gen" --logtostderr -v 0 -i "$dirs" \
        -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
        -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
        -r "$out.violations.report"
fi

# Fix 3: version ldflags.
pkgv=k8s.io/kubernetes/vendor/k8s.io
ldflags="-s -w"
for p in "$pkgv/client-go/pkg/version" "$pkgv/component-base/version"; do
    ldflags+=" -X $p.gitVersion=v1.20.2 -X $p.gitMajor=1 -X $p.gitMinor=20"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=2021-01-13T13:20:00Z"
done
mkdir -p "$out"
go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" ./cmd/kube-apiserver
mv "$bin.tmp" "$bin"
echo "kube-apiserver: built $bin"
