#!/usr/bin/env bash
# Builds a real three-layer Debian image from Debian's own packages, for the scanner tests:
#   layer 1: debootstrap --variant=minbase bookworm
#   layer 2: apt-get install curl (and its dependencies) in a chroot
#   layer 3: dpkg --purge of a package layer 2 pulled in
# Writes an OCI layout (umoci) and a docker-archive tar (skopeo), and the expected package
# lists from the native tool (dpkg-query --admindir) after each layer, never from our output.
# Also image-minbase.tar (stella-test/debian:bookworm-minbase): layer 1 alone, without curl and
# its libraries, for tests that need a second image of different content.
# Cached: ${STELLA_CACHE:-~/.cache/stella}/images/debian-bookworm/. Needs root and Debian's mirror.
set -euo pipefail

# `big` (for the benchmarks) also installs python3, perl and git in layer 2: about 400 MB.
variant="${1:-small}"
case "$variant" in
    small) extra=""; name=debian-bookworm ;;
    big) extra="python3 perl git"; name=debian-bookworm-big ;;
    *) echo "usage: $0 [small|big]" >&2; exit 2 ;;
esac
cache="${STELLA_CACHE:-$HOME/.cache/stella}/images"
out="$cache/$name"
if [[ -f "$out/done" && -f "$out/image-minbase.tar" ]]; then
    echo "debian image: cached at $out"
    exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.$name-build.lock"
flock 9
[[ -f "$out/done" && -f "$out/image-minbase.tar" ]] && exit 0

need=()
for tool in debootstrap umoci skopeo; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

mirror="${STELLA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work=$(mktemp -d "$cache/debian-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
layout="$work/oci"
umoci init --layout "$layout"
umoci new --image "$layout:bookworm"
umoci unpack --image "$layout:bookworm" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"

expect() { # the installed packages as dpkg itself reports them
    dpkg-query --admindir="$rootfs/var/lib/dpkg" -W -f '${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n' \
        | awk '$1 ~ /^.i/ {print $2, $3, $4}' | LC_ALL=C sort > "$work/expected-$1.txt"
}

echo "debian image: debootstrap (layer 1)"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
expect 1
umoci repack --refresh-bundle --image "$layout:bookworm" "$work/bundle" >/dev/null
umoci config --image "$layout:bookworm" --tag bookworm-minbase --config.entrypoint /bin/bash \
    --config.cmd -c --config.cmd 'exec sleep infinity' >/dev/null
skopeo copy --quiet "oci:$layout:bookworm-minbase" "docker-archive:$work/image-minbase.tar:stella-test/debian:bookworm-minbase"
umoci rm --image "$layout:bookworm-minbase"

echo "debian image: apt-get install curl $extra (layer 2)"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -qq
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl $extra >/dev/null
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
expect 2
umoci repack --refresh-bundle --image "$layout:bookworm" "$work/bundle" >/dev/null

echo "debian image: dpkg --purge curl (layer 3)"
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive dpkg --purge curl >/dev/null
expect 3
umoci repack --refresh-bundle --image "$layout:bookworm" "$work/bundle" >/dev/null
umoci config --image "$layout:bookworm" --config.entrypoint /bin/bash --config.cmd -c --config.cmd 'exec sleep infinity' >/dev/null
umoci gc --layout "$layout"

skopeo copy --quiet "oci:$layout:bookworm" "docker-archive:$work/image.tar:stella-test/debian:bookworm"
rm -rf "$out"
mkdir -p "$out"
mv "$layout" "$out/oci"
mv "$work/image.tar" "$out/image.tar"
mv "$work/image-minbase.tar" "$out/image-minbase.tar"
mv "$work"/expected-*.txt "$out/"
touch "$out/done"
echo "debian image: built $out"
