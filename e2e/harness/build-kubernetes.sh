#!/usr/bin/env bash
# Builds Kubernetes 1.20.2 from Debian's `kubernetes` source package, for the test harness:
# kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy and kubelet (one
# `go build`), and the pause image (gcc -static of the tree's build/pause/linux/pause.c,
# packaged with umoci and skopeo as a docker-archive).
#
# Debian ships the full source with vendor/, and it builds with Debian's Go 1.19 in GOPATH mode
# after four fixes:
#   1. pkg/generated/openapi/zz_generated.openapi.go is generated with the vendored openapi-gen;
#   2. the reflect2 v1.0.2 `mapiterinit` change is backported into the vendored reflect2 v1.0.1
#      (without it the binaries crash on Go >= 1.18 at the first map they encode);
#   3. the version is set through -X ldflags so clients see v1.20.2;
#   4. the hostpath provisioner (kube-controller-manager --enable-hostpath-provisioner) creates
#      its volumes mode 0777, as kind's local-path provisioner does: the kubelet applies no
#      fsGroup to hostPath volumes, so a non-root Pod could not write its claim; and it creates
#      them under $STELLA_HOSTPATH_DIR when that is set (default /tmp/hostpath_pv, as upstream).
#
# Cached in ${STELLA_CACHE:-~/.cache/stella}/kubernetes-<version>-<key>/, where <key> hashes
# this script, node-check.go, the Debian source version and `go version`: changing any of them
# rebuilds. Also built there: the image stella.test/node-check (node-check.go, see there).
# kube-apiserver is also copied to kube-apiserver-1.20.2/kube-apiserver, where the API-server
# harness (e2e/src/cluster.rs) looks for it.
#
#   build-kubernetes.sh          build unless cached; prints the output directory on stdout
#                                (progress on stderr)
#
# Needs root for apt-get (or the packages golang-go, dpkg-dev, gcc, libc6-dev, umoci, skopeo
# already installed). On a machine shared with other builds, run it under the build lock:
# `flock /tmp/stella-build.lock bash e2e/harness/build-kubernetes.sh`.
set -euo pipefail

# Progress goes to stderr; stdout gets the output directory only.
exec 3>&1 1>&2
say() { echo "kubernetes: $*"; }

version=1.20.2
components=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet)
cache="${STELLA_CACHE:-$HOME/.cache/stella}"
script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
mkdir -p "$cache"

need=()
command -v go >/dev/null || need+=(golang-go)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
command -v gcc >/dev/null || need+=(gcc)
[[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/libc.a ]] || need+=(libc6-dev)
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The Debian source package, fetched once (deb-src is not enabled by default: enable it for
# the Debian sources already configured).
src_root="$cache/src"
mkdir -p "$src_root"
exec 9>"$cache/.kubernetes-source.lock"
flock 9
src=$(find "$src_root" -maxdepth 1 -type d -name "kubernetes-*${version}" | sort | tail -n1)
if [[ -z "$src" ]]; then
    if [[ -z "$(apt-cache showsrc kubernetes 2>/dev/null)" ]]; then
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -f "$f" ]] && sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
        done
        if [[ -f /etc/apt/sources.list ]]; then
            sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/stella-deb-src.list
        fi
        apt-get update -qq
    fi
    (cd "$src_root" && apt-get source -qq kubernetes)
    src=$(find "$src_root" -maxdepth 1 -type d -name "kubernetes-*${version}" | sort | tail -n1)
fi
[[ -n "$src" ]] || { echo "kubernetes: no kubernetes-*$version source under $src_root" >&2; exit 1; }
debian_version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$src/debian/changelog")

key=$( { cat "$script" "$(dirname "$script")/node-check.go"; echo "$debian_version"; go version; } | sha256sum | cut -c1-12)
out="$cache/kubernetes-$version-$key"
compat="$cache/kube-apiserver-$version"

done_already() {
    [[ -f "$out/.complete" ]] || return 1
    # The API-server harness's path, refreshed from this build.
    if ! cmp -s "$out/bin/kube-apiserver" "$compat/kube-apiserver"; then
        mkdir -p "$compat"
        cp "$out/bin/kube-apiserver" "$compat/kube-apiserver.tmp"
        mv "$compat/kube-apiserver.tmp" "$compat/kube-apiserver"
    fi
    return 0
}
if done_already; then
    say "cached in $out"
    echo "$out" >&3
    exit 0
fi
say "building $debian_version from $src into $out"
started=$(date +%s)

gopath="$cache/gopath"
mkdir -p "$gopath/src/k8s.io"
ln -sfn "$src" "$gopath/src/k8s.io/kubernetes"
export GOPATH="$gopath" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
cd "$gopath/src/k8s.io/kubernetes"

# Fix 2: since Go 1.18 reflect.mapiterinit fills an iterator the caller allocates
# (reflect2 v1.0.2): pass it in, and give hiter the runtime's full layout so it is big enough.
r2=vendor/github.com/modern-go/reflect2
if ! grep -q 'checkBucket' "$r2/unsafe_link.go"; then
    python3 - "$r2/unsafe_link.go" "$r2/unsafe_map.go" <<'PY'
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
PY
fi

# Fix 4: hostpath volumes writable by any Pod user, under $STELLA_HOSTPATH_DIR when set.
hp=pkg/volume/hostpath/host_path.go
if ! grep -q 'STELLA_HOSTPATH_DIR' "$hp"; then
    python3 - "$hp" <<'PY'
import sys
path = sys.argv[1]
s = open(path).read()
edits = [
    ('\tfullpath := fmt.Sprintf("/tmp/%s/%s", r.basePath, uuid.NewUUID())\n',
     '\tfullpath := fmt.Sprintf("/tmp/%s/%s", r.basePath, uuid.NewUUID())\n'
     '\tif dir := os.Getenv("STELLA_HOSTPATH_DIR"); dir != "" {\n'
     '\t\tfullpath = filepath.Join(dir, string(uuid.NewUUID()))\n'
     '\t}\n'),
    ('\treturn pv, os.MkdirAll(pv.Spec.HostPath.Path, 0750)\n',
     '\tif err := os.MkdirAll(pv.Spec.HostPath.Path, 0777); err != nil {\n'
     '\t\treturn pv, err\n'
     '\t}\n'
     '\treturn pv, os.Chmod(pv.Spec.HostPath.Path, 0777)\n'),
    ('\tregexp := regexp.MustCompile("/tmp/.+")\n\tif !regexp.MatchString(r.GetPath()) {\n',
     '\tregexp := regexp.MustCompile("/tmp/.+")\n'
     '\tdir := os.Getenv("STELLA_HOSTPATH_DIR")\n'
     '\tif !regexp.MatchString(r.GetPath()) && !(dir != "" && strings.HasPrefix(r.GetPath(), filepath.Clean(dir)+"/")) {\n'),
]
for old, new in edits:
    assert s.count(old) == 1, "host_path.go not in the expected 1.20 form: " + old
    s = s.replace(old, new)
for imp in ('"path/filepath"', '"strings"'):
    if '\t' + imp + '\n' not in s:
        s = s.replace('import (\n', 'import (\n\t' + imp + '\n', 1)
open(path, "w").write(s)
PY
    gofmt -w "$hp"
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
        -r "$cache/openapi-violations.report"
fi

# Fix 3: version ldflags.
pkgv=k8s.io/kubernetes/vendor/k8s.io
ldflags="-s -w"
for p in "$pkgv/client-go/pkg/version" "$pkgv/component-base/version"; do
    ldflags+=" -X $p.gitVersion=v$version -X $p.gitMajor=1 -X $p.gitMinor=20"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=2021-01-13T13:20:00Z"
done

tmp="$out.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/bin"
# The node's in-cluster check (e2e/harness/node-check.go) needs the vendored client-go, so it
# is built inside the tree, in the same `go build`.
mkdir -p cmd/stella-node-check
cp "$(dirname "$script")/node-check.go" cmd/stella-node-check/main.go
pkgs=(./cmd/stella-node-check)
for c in "${components[@]}"; do pkgs+=("./cmd/$c"); done
go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/" "${pkgs[@]}"
for c in "${components[@]}"; do
    "$tmp/bin/$c" --version 2>&1 | grep -q "v$version" || { echo "kubernetes: $c does not report v$version" >&2; exit 1; }
done

# One-file images (a static binary as the entrypoint), as docker-archives named <ref>.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
one_file_image() { # <binary> <path in image> <ref> <archive> <user>
    local layout tag=${3##*:}
    layout="$work/$(basename "$4" .tar)"
    umoci init --layout "$layout"
    umoci new --image "$layout:$tag"
    umoci unpack --image "$layout:$tag" "$layout.bundle" >/dev/null
    install -D -m 0755 "$1" "$layout.bundle/rootfs$2"
    umoci repack --image "$layout:$tag" "$layout.bundle" >/dev/null
    umoci config --image "$layout:$tag" --os linux --architecture amd64 \
        --config.entrypoint "$2" --config.user "$5"
    skopeo copy --quiet "oci:$layout:$tag" "docker-archive:$4:$3"
}
# The pause image: the tree's pause.c, static (its Makefile's flags), as k8s.gcr.io/pause:<TAG>.
pause_tag=$(sed -n 's/^TAG = //p' build/pause/Makefile)
gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag-stella" -o "$tmp/pause" build/pause/linux/pause.c
echo "k8s.gcr.io/pause:$pause_tag" > "$tmp/pause.ref"
one_file_image "$tmp/pause" /pause "$(cat "$tmp/pause.ref")" "$tmp/pause.tar" 65535:65535
echo "stella.test/node-check:$version-$key" > "$tmp/node-check.ref"
one_file_image "$tmp/bin/stella-node-check" /node-check "$(cat "$tmp/node-check.ref")" "$tmp/node-check.tar" 65534:65534

echo "$debian_version" > "$tmp/source-version"
touch "$tmp/.complete"
rm -rf "$out"
mv "$tmp" "$out"
done_already
say "built ${components[*]}, the pause and node-check images in $(( $(date +%s) - started ))s"
echo "$out" >&3
