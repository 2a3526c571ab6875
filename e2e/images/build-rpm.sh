#!/usr/bin/env bash
# Builds a real two-layer rpm image with Debian's rpm/rpmbuild, for the scanner tests:
#   layer 1: an os-release and package stella-hello (epoch 2) installed by `rpm -i --root`
#   layer 2: package stella-lib installed on top (the SQLite rpmdb is rewritten)
# The rpmdb is rpm 4.18's SQLite format. Expected packages come from `rpm -qa` after each
# layer, never from our output. Cached: ${STELLA_CACHE:-~/.cache/stella}/images/rpm-sqlite/.
set -euo pipefail

cache="${STELLA_CACHE:-$HOME/.cache/stella}/images"
out="$cache/rpm-sqlite"
[[ -f "$out/done" ]] && { echo "rpm image: cached at $out"; exit 0; }
mkdir -p "$cache"
exec 9>"$cache/.rpm-build.lock"
flock 9
[[ -f "$out/done" ]] && exit 0

need=()
for tool in rpm rpmbuild umoci skopeo; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq rpm umoci skopeo >/dev/null
fi

work=$(mktemp -d "$cache/rpm-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/SPECS"
spec() { # name version release epoch file
    cat > "$work/SPECS/$1.spec" <<SPEC
Name: $1
Version: $2
Release: $3
${4:+Epoch: $4}
Summary: Test package $1 for the Stella Ops scanner
License: Apache-2.0
Vendor: Stella Ops Tests
BuildArch: noarch
%description
Test package $1.
%install
mkdir -p %{buildroot}$(dirname "$5")
echo $1 > %{buildroot}$5
%files
$5
SPEC
    rpmbuild --quiet --define "_topdir $work" -bb "$work/SPECS/$1.spec" >/dev/null 2>&1
}
spec stella-hello 1.2.3 4 2 /usr/share/stella-hello/greeting.txt
spec stella-lib 0.9 1.el9 "" /usr/lib/stella-lib/data.txt

layout="$work/oci"
umoci init --layout "$layout"
umoci new --image "$layout:rpm"
umoci unpack --image "$layout:rpm" "$work/bundle" >/dev/null
root="$work/bundle/rootfs"
expect() {
    rpm -qa --root "$root" --dbpath /var/lib/rpm --qf '%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE} %{ARCH}\n' | LC_ALL=C sort > "$work/expected-$1.txt"
}
install() {
    rpm -i --root "$root" --dbpath /var/lib/rpm --nodeps --noscripts --ignorearch "$@" 2>/dev/null
}

mkdir -p "$root/etc"
printf 'NAME="Stella Test"\nID=stellatest\nVERSION_ID="1"\nPRETTY_NAME="Stella rpm test root 1"\n' > "$root/etc/os-release"
install "$work"/RPMS/noarch/stella-hello-*.rpm
expect 1
umoci repack --refresh-bundle --image "$layout:rpm" "$work/bundle" >/dev/null
install "$work"/RPMS/noarch/stella-lib-*.rpm
expect 2
umoci repack --refresh-bundle --image "$layout:rpm" "$work/bundle" >/dev/null
umoci gc --layout "$layout"
skopeo copy --quiet "oci:$layout:rpm" "docker-archive:$work/image.tar:stella-test/rpm:1"
rm -rf "$out"
mkdir -p "$out"
mv "$layout" "$out/oci"
mv "$work/image.tar" "$out/image.tar"
mv "$work"/expected-*.txt "$out/"
touch "$out/done"
echo "rpm image: built $out"
