#!/usr/bin/env bash
# Checks that a built image really runs, from its docker-archive: unpacked (skopeo + umoci) as
# the container runtime would, it must
#   - run as 65532:65532 (the image config's user) with an /etc/passwd entry for it,
#     and have its entrypoint binary;
#   - hold every ELF file's interpreter and DT_NEEDED libraries on the loader's system paths,
#     inside the image (symlinks resolved inside it);
#   - run `<binary> --version` and `--help` in a chroot as 65532:65532, with an empty
#     environment (the dynamic loader proves the libraries, not only their names);
#   - for the worker: build its TLS client with the image's CA certificates (a registry
#     reference on a closed loopback port must fail to connect, not to load certificates).
# Negative controls run on the same unpacked tree, so that the checks are seen to fail: with
# libgcc_s.so.1 hidden the binary must not start, and with the CA bundle hidden the worker must
# say it found no CA certificates.
#
# Usage: check.sh IMAGE.tar BINARY-NAME VERSION     (root: chroot and umoci unpack)
set -euo pipefail
export LC_ALL=C

if (($# != 3)); then
    echo "usage: $0 IMAGE.tar BINARY-NAME VERSION" >&2
    exit 2
fi
archive=$1
name=$2
version=$3
binary="/usr/local/bin/$name"
fail() {
    echo "check $name: FAILED: $*" >&2
    exit 1
}
for tool in skopeo umoci readelf python3 chroot; do
    command -v "$tool" >/dev/null || fail "$tool not found"
done
((EUID == 0)) || fail "needs root (chroot, umoci unpack)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
skopeo copy --quiet "docker-archive:$archive" "oci:$work/oci:check"
umoci unpack --image "$work/oci:check" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"

# The runtime configuration umoci derived from the image config: user and entrypoint.
read -r uid gid entrypoint < <(python3 -c '
import json, sys
process = json.load(open(sys.argv[1]))["process"]
print(process["user"]["uid"], process["user"]["gid"], process["args"][0])
' "$work/bundle/config.json")
[[ "$uid:$gid" == "65532:65532" ]] || fail "runs as $uid:$gid, not 65532:65532"
[[ "$entrypoint" == "$binary" ]] || fail "entrypoint is $entrypoint, not $binary"
grep -q '^nonroot:x:65532:65532:' "$rootfs/etc/passwd" || fail "no nonroot (65532) in /etc/passwd"
grep -q '^nonroot:x:65532:' "$rootfs/etc/group" || fail "no nonroot (65532) in /etc/group"
[[ -f "$rootfs$binary" && -x "$rootfs$binary" ]] || fail "$binary missing or not executable"
[[ "$(stat -c %a "$rootfs/tmp")" == 1777 ]] || fail "/tmp is not mode 1777"

# A path inside the image with its symlinks resolved inside the image; fails when it is absent.
inside() {
    local path=$1 hops=0 resolved="" part target rest
    rest=${path#/}
    while [[ -n "$rest" ]]; do
        part=${rest%%/*}
        [[ "$rest" == */* ]] && rest=${rest#*/} || rest=""
        case "$part" in
            "" | .) continue ;;
            ..) resolved=${resolved%/*}; continue ;;
        esac
        if [[ -L "$rootfs$resolved/$part" ]]; then
            ((++hops <= 40)) || return 1
            target=$(readlink "$rootfs$resolved/$part")
            if [[ "$target" == /* ]]; then resolved=""; fi
            rest="${target#/}${rest:+/$rest}"
        else
            resolved="$resolved/$part"
            [[ -e "$rootfs$resolved" ]] || return 1
        fi
    done
    echo "$resolved"
}

# Every ELF file's interpreter and needed libraries, on the loader's system search path.
missing=()
elf_files=0
while IFS= read -r -d '' file; do
    [[ "$(head -c4 "$file" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]] || continue
    elf_files=$((elf_files + 1))
    path=${file#"$rootfs"}
    interpreter=$(readelf -l "$file" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    if [[ -n "$interpreter" ]] && ! inside "$interpreter" >/dev/null; then
        missing+=("$interpreter (interpreter of $path)")
    fi
    while read -r soname; do
        found=""
        for dir in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib /usr/lib; do
            if inside "$dir/$soname" >/dev/null; then found=1; break; fi
        done
        [[ -n "$found" ]] || missing+=("$soname (needed by $path)")
    done < <(readelf -d "$file" 2>/dev/null | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p')
done < <(find "$rootfs" -type f -print0)
((${#missing[@]} == 0)) || fail "not found in the image: ${missing[*]}"
((elf_files >= 2)) || fail "only $elf_files ELF files: the binary and its libraries are not there"

# Runs a command in the image as its user, with nothing of this machine's environment.
chroot=$(command -v chroot)
in_image() {
    env -i "$chroot" --userspec=65532:65532 "$rootfs" "$@"
}

output=$(in_image "$binary" --version 2>&1) || fail "$binary --version: $output"
[[ "$output" == "$name $version" ]] || fail "$binary --version printed '$output', not '$name $version'"
in_image "$binary" --help >/dev/null 2>&1 || fail "$binary --help failed: $(in_image "$binary" --help 2>&1 | tail -3)"

# Negative control: without libgcc_s.so.1 the loader must refuse to start the binary.
library=$(inside /lib/x86_64-linux-gnu/libgcc_s.so.1) || fail "libgcc_s.so.1 is not in the image"
mv "$rootfs$library" "$work/hidden-library"
if output=$(in_image "$binary" --version 2>&1); then
    fail "negative control: $binary started without libgcc_s.so.1 ($output)"
fi
[[ "$output" == *"error while loading shared libraries: libgcc_s.so.1"* ]] \
    || fail "negative control: unexpected failure without libgcc_s.so.1: $output"
mv "$work/hidden-library" "$rootfs$library"

if [[ "$name" == stella-worker ]]; then
    # A loopback port nothing listens on: the request gets as far as connecting only when the
    # TLS client was built, which needs the image's CA certificates.
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    scan() {
        in_image "$binary" --image "127.0.0.1:$port/image-check/ca:latest" --run-id image-check \
            --data-dir /tmp/stella --termination-log /tmp/termination-log 2>/dev/null | tail -1 || true
    }
    report=$(scan)
    [[ "$report" == *"Connection refused"* ]] || fail "TLS client with the image's CA certificates: $report"
    bundle=$(inside /etc/ssl/certs/ca-certificates.crt) || fail "no /etc/ssl/certs/ca-certificates.crt"
    mv "$rootfs$bundle" "$work/hidden-bundle"
    report=$(scan)
    [[ "$report" == *"No CA certificates were loaded"* ]] \
        || fail "negative control: without the CA bundle the worker said: $report"
    mv "$work/hidden-bundle" "$rootfs$bundle"
    certificates=$(grep -c 'BEGIN CERTIFICATE' "$rootfs$bundle")
    echo "check $name: CA bundle with $certificates certificates loads; without it the worker says so"
fi

echo "check $name: OK: user 65532:65532, $elf_files ELF files with every library present, --version '$name $version'"
