#!/usr/bin/env bash
# The base layer of the operator, worker and webhook images, as a tar for the Containerfile's
# `ADD base.tar /`: exactly the shared libraries the given binaries load (their ELF
# interpreter and DT_NEEDED, recursively), Debian's CA certificates, the os-release of the
# Debian release they come from, /etc/passwd and /etc/group with root and the nonroot user
# 65532, /home/nonroot and /tmp. Nothing else: no shell, no package manager.
#
# Every file is taken from a Debian package installed on this machine (the one the binaries
# were linked on, so the glibc matches) and checked against that package's md5sums before it
# is copied; each package is recorded in var/lib/dpkg/status.d/ (its dpkg status stanza, and
# the md5sums of the files taken), the distroless layout that scanners, ours included, read.
# The CA bundle /etc/ssl/certs/ca-certificates.crt is the concatenation of the ca-certificates
# package's certificates, as update-ca-certificates writes it with Debian's default
# configuration (every certificate enabled).
#
# Usage: build-base.sh OUT.tar BINARY...   (deterministic: same inputs, same bytes)
set -euo pipefail
export LC_ALL=C

if (($# < 2)); then
    echo "usage: $0 OUT.tar BINARY..." >&2
    exit 2
fi
out=$1
shift
for tool in readelf dpkg-query md5sum tar; do
    command -v "$tool" >/dev/null || { echo "build-base: $tool not found" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"
# package -> the files taken from it (dpkg's paths, one a line)
declare -A taken=()

# The package that owns an absolute path, trying the other side of the merged /usr.
owner() {
    local path=$1 found
    for candidate in "$path" "${path#/usr}" "/usr$path"; do
        if found=$(dpkg-query -S "$candidate" 2>/dev/null); then
            # "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6" (diversions print other lines)
            found=$(printf '%s\n' "$found" | grep -v '^diversion' | head -1)
            echo "${found%%: *} $candidate"
            return 0
        fi
    done
    return 1
}

# md5sums file of an installed package (with or without its architecture qualifier).
md5sums_of() {
    local package=$1
    for file in "/var/lib/dpkg/info/$package.md5sums" "/var/lib/dpkg/info/${package%%:*}.md5sums"; do
        [[ -f "$file" ]] && { echo "$file"; return 0; }
    done
    echo "build-base: no md5sums for $package" >&2
    return 1
}

# Copies one file (or symlink) of a package into the rootfs at the path dpkg records, after
# checking a regular file's content against the package's md5sums. The package may be given
# when the caller knows it (from `dpkg-query -L`).
take() {
    local path=$1 package=${2:-} dpkg_path=$1 sums expected actual
    if [[ -z "$package" ]]; then
        read -r package dpkg_path < <(owner "$path") || {
            echo "build-base: $path belongs to no installed Debian package" >&2
            exit 1
        }
    fi
    [[ -n "${taken[$package]:-}" && $'\n'"${taken[$package]}" == *$'\n'"$dpkg_path"$'\n'* ]] && return 0
    mkdir -p "$root$(dirname "$dpkg_path")"
    if [[ -L "$dpkg_path" ]]; then
        cp -P "$dpkg_path" "$root$dpkg_path"
        taken[$package]+="$dpkg_path"$'\n'
        # The symlink's target, by the path the link names.
        local target
        target=$(readlink "$dpkg_path")
        [[ "$target" == /* ]] || target="$(dirname "$dpkg_path")/$target"
        target=$(realpath -m --no-symlinks "$target")
        # A directory's link (/usr/share/doc/<package> -> <source package>): the caller takes
        # what it needs inside.
        [[ -d "$target" ]] || take "$target"
        return 0
    fi
    sums=$(md5sums_of "$package")
    expected=$(awk -v p="${dpkg_path#/}" '$2 == p {print $1}' "$sums")
    if [[ -z "$expected" ]]; then
        echo "build-base: $dpkg_path is not listed in $sums" >&2
        exit 1
    fi
    actual=$(md5sum < "$dpkg_path" | cut -d' ' -f1)
    if [[ "$actual" != "$expected" ]]; then
        echo "build-base: $dpkg_path differs from $package's md5sums (modified on this machine?)" >&2
        exit 1
    fi
    cp "$dpkg_path" "$root$dpkg_path"
    chmod u+w,go-w "$root$dpkg_path"
    taken[$package]+="$dpkg_path"$'\n'
}

# The ELF interpreter and the libraries a file needs, resolved on the loader's system search
# path (what the image's loader searches: it has no ld.so.cache), recursively.
declare -A seen=()
libraries() {
    local elf=$1 interpreter soname found
    interpreter=$(readelf -l "$elf" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    if [[ -n "$interpreter" && -z "${seen[$interpreter]:-}" ]]; then
        seen[$interpreter]=1
        take "$interpreter"
    fi
    while read -r soname; do
        [[ -n "${seen[$soname]:-}" ]] && continue
        seen[$soname]=1
        found=""
        for dir in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib /usr/lib; do
            if [[ -e "$dir/$soname" ]]; then
                found="$dir/$soname"
                break
            fi
        done
        if [[ -z "$found" ]]; then
            echo "build-base: $elf needs $soname, which is on no system library path here" >&2
            exit 1
        fi
        take "$found"
        libraries "$(realpath "$found")"
    done < <(readelf -d "$elf" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p')
}

for binary in "$@"; do
    [[ -f "$binary" ]] || { echo "build-base: $binary: no such file" >&2; exit 1; }
    libraries "$binary"
done

# Each package's copyright file, as the licences ask (a library's doc directory may be a link
# to its source package's, such as libgcc-s1 -> gcc-12-base).
copyright() {
    local doc="/usr/share/doc/$1"
    if [[ -L "$doc" ]]; then
        take "$doc"
        doc=$(realpath "$doc")
    fi
    take "$doc/copyright"
}
for package in "${!taken[@]}"; do
    copyright "${package%%:*}"
done

# CA certificates: the package's certificates and the bundle built from them.
mapfile -t certificates < <(dpkg-query -L ca-certificates | grep '^/usr/share/ca-certificates/.*\.crt$' | sort)
if ((${#certificates[@]} == 0)); then
    echo "build-base: the ca-certificates package has no certificates installed" >&2
    exit 1
fi
for certificate in "${certificates[@]}"; do
    take "$certificate" ca-certificates
done
copyright ca-certificates
mkdir -p "$root/etc/ssl/certs"
for certificate in "${certificates[@]}"; do
    cat "$root$certificate"
    # update-ca-certificates ends every certificate with a newline
    [[ -z "$(tail -c1 "$root$certificate")" ]] || echo
done > "$root/etc/ssl/certs/ca-certificates.crt"

# Which release these files come from.
take /usr/lib/os-release
take /etc/os-release
copyright base-files

# The package database scanners read: one status stanza per package, with the md5sums of the
# files this image has (no .list: the image holds only part of each package).
mkdir -p "$root/var/lib/dpkg/status.d"
for package in "${!taken[@]}"; do
    name=${package%%:*}
    dpkg-query -s "$package" > "$root/var/lib/dpkg/status.d/$name"
    sums=$(md5sums_of "$package")
    while read -r path; do
        [[ -z "$path" || -L "$path" ]] && continue
        awk -v p="${path#/}" '$2 == p' "$sums"
    done <<< "${taken[$package]}" | sort -k2 > "$root/var/lib/dpkg/status.d/$name.md5sums"
done

# Users, name service, home and scratch.
mkdir -p "$root/etc" "$root/root" "$root/home/nonroot" "$root/tmp"
cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat > "$root/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
cat > "$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf" "$root/etc/ssl/certs/ca-certificates.crt"
chmod 0700 "$root/root"
chmod 0755 "$root/home"
chmod 0700 "$root/home/nonroot"
chmod 1777 "$root/tmp"
chown -R 0:0 "$root"
chown 65532:65532 "$root/home/nonroot"

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --numeric-owner --format=gnu -C "$root" -cf "$out.partial" .
mv "$out.partial" "$out"
echo "build-base: $out ($(du -k "$out" | cut -f1) KiB) from: $(printf '%s ' "${!taken[@]}" | tr ' ' '\n' | sort | tr '\n' ' ')"
