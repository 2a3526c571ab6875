#!/usr/bin/env bash
# Builds the trial storage images of config/storage from Debian's packages and PyPI, as
# docker-archive tars tagged stella-ops/<name>:<version>:
#   trial-postgres  debootstrap --variant=minbase bookworm + Debian's postgresql-15; runs as
#                   postgres (999:999), config/images/postgres-entrypoint.sh (initdb on first
#                   start, password from the environment, then the server)
#   trial-s3        the same minbase + Debian's python3 + moto's S3 server (PyPI, pinned) in a
#                   venv; runs as 1000:1000, config/images/s3-server.py (buckets created at start)
# Both share the minbase layer. Each build is checked by config/images/check-storage.sh (run as
# config/storage runs them: initdb, password login, S3 round trip). Cached: rebuilt only when
# this script, the entrypoints or the version change (the key is kept beside the tars), and
# checked again when the check changes.
# Needs root, Debian's mirror and PyPI.
#
#   build-storage.sh --version 0.1.0 --out DIR
set -euo pipefail
export LC_ALL=C

# The images this script builds (tests/install.rs reads this line).
images=(trial-postgres trial-s3)
moto_version=5.2.1
postgres_major=15

version=""
out=""
while (($#)); do
    case "$1" in
        --version) version=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "build-storage.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n "$version" && -n "$out" ]] || { echo "build-storage.sh: --version and --out are required" >&2; exit 2; }
((EUID == 0)) || { echo "build-storage.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
for tool in debootstrap umoci skopeo; do
    command -v "$tool" >/dev/null || { echo "build-storage.sh: $tool not found (.ci/install-deps.sh installs it)" >&2; exit 1; }
done

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
key=$(cat "$here/build-storage.sh" "$here/postgres-entrypoint.sh" "$here/s3-server.py" <(echo "$version") | sha256sum | cut -d' ' -f1)
checked=$(cat "$here/check-storage.sh" <(echo "$key") | sha256sum | cut -d' ' -f1)
fresh=1
for image in "${images[@]}"; do
    [[ -f "$out/$image.tar" && "$(cat "$out/$image.key" 2>/dev/null)" == "$key" ]] || fresh=0
done
if ((fresh)); then
    if [[ "$(cat "$out/checked" 2>/dev/null)" != "$checked" ]]; then
        bash "$here/check-storage.sh" "$out"
        echo "$checked" > "$out/checked"
    fi
    echo "storage images: unchanged ($out)"
    exit 0
fi
rm -f "$out/checked"

started=$(date +%s)
mirror="${STELLA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work=$(mktemp -d "$out/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
layout="$work/oci"
umoci init --layout "$layout"
umoci new --image "$layout:minbase"

# In a chroot: a clean environment, Debian's apt, no service started by a package.
in_root() {
    local root=$1
    shift
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 HOME=/root \
        "$(command -v chroot)" "$root" "$@"
}
prepare() {
    local root=$1
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
}
finish() {
    local root=$1
    rm -f "$root/usr/sbin/policy-rc.d"
    : > "$root/etc/resolv.conf"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
        "$root"/var/log/apt/* "$root"/var/log/dpkg.log "$root"/tmp/* "$root"/root/.cache
    find "$root" -name __pycache__ -type d -prune -exec rm -rf {} +
}

echo "storage images: debootstrap --variant=minbase bookworm"
umoci unpack --image "$layout:minbase" "$work/bundle-minbase" >/dev/null
debootstrap --variant=minbase bookworm "$work/bundle-minbase/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
rm -rf "$work/bundle-minbase/rootfs"/var/cache/apt/archives/*.deb "$work/bundle-minbase/rootfs"/var/lib/apt/lists/*
umoci repack --image "$layout:minbase" "$work/bundle-minbase" >/dev/null
rm -rf "$work/bundle-minbase"

echo "storage images: trial-postgres (postgresql-$postgres_major)"
umoci unpack --image "$layout:minbase" "$work/bundle-postgres" >/dev/null
root="$work/bundle-postgres/rootfs"
prepare "$root"
# A fixed uid for the manifests' runAsUser/fsGroup; no cluster made at install (initdb runs at
# the container's first start, into the volume).
in_root "$root" groupadd --system --gid 999 postgres
in_root "$root" useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/sh postgres
mkdir -p "$root/etc/postgresql-common"
echo "create_main_cluster = false" > "$root/etc/postgresql-common/createcluster.conf"
in_root "$root" apt-get update -qq
in_root "$root" apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "postgresql-$postgres_major" >/dev/null
# ssl-cert made a snakeoil key pair at install: no image ships a private key (TLS is off).
rm -f "$root/etc/ssl/private/ssl-cert-snakeoil.key" "$root/etc/ssl/certs/ssl-cert-snakeoil.pem"
install -m 0755 "$here/postgres-entrypoint.sh" "$root/usr/local/bin/stella-postgres"
mkdir -p "$root/var/lib/postgresql/data" "$root/var/run/postgresql"
chown 999:999 "$root/var/lib/postgresql" "$root/var/lib/postgresql/data" "$root/var/run/postgresql"
finish "$root"
umoci repack --image "$layout:trial-postgres" "$work/bundle-postgres" >/dev/null
umoci config --image "$layout:trial-postgres" --config.user 999:999 \
    --config.env "PATH=/usr/lib/postgresql/$postgres_major/bin:/usr/local/bin:/usr/bin:/bin" \
    --config.env PGDATA=/var/lib/postgresql/data/pgdata \
    --config.exposedports 5432/tcp \
    --config.entrypoint /usr/local/bin/stella-postgres \
    --config.label "org.opencontainers.image.title=stella-trial-postgres" \
    --config.label "org.opencontainers.image.version=$version" >/dev/null
rm -rf "$work/bundle-postgres"

echo "storage images: trial-s3 (moto $moto_version)"
umoci unpack --image "$layout:minbase" "$work/bundle-s3" >/dev/null
root="$work/bundle-s3/rootfs"
prepare "$root"
in_root "$root" groupadd --gid 1000 s3
in_root "$root" useradd --uid 1000 --gid 1000 --home-dir /home/s3 --create-home --shell /usr/sbin/nologin s3
in_root "$root" apt-get update -qq
in_root "$root" apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
in_root "$root" python3 -m venv /opt/moto
# pip trusts what this machine trusts for reaching PyPI (its CA bundle, which may hold a
# local proxy's CA), only while installing: the image keeps Debian's CA certificates alone.
cp "${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}" "$root/tmp/fetch-ca.crt"
# moto's S3 (and the Flask app its server is) only: moto[server] would add every service.
in_root "$root" env PIP_CERT=/tmp/fetch-ca.crt PIP_DEFAULT_TIMEOUT=180 \
    /opt/moto/bin/pip install --quiet --no-cache-dir --disable-pip-version-check \
    "moto[s3]==$moto_version" flask flask-cors
rm -f "$root/tmp/fetch-ca.crt"
in_root "$root" /opt/moto/bin/pip freeze --disable-pip-version-check > "$work/trial-s3-requirements.txt"
cp "$work/trial-s3-requirements.txt" "$root/opt/moto/requirements.txt"
install -m 0644 "$here/s3-server.py" "$root/opt/moto/s3-server.py"
finish "$root"
umoci repack --image "$layout:trial-s3" "$work/bundle-s3" >/dev/null
umoci config --image "$layout:trial-s3" --config.user 1000:1000 \
    --config.env PATH=/opt/moto/bin:/usr/bin:/bin --config.env PYTHONDONTWRITEBYTECODE=1 \
    --config.env S3_IGNORE_SUBDOMAIN_BUCKETNAME=true \
    --config.exposedports 9000/tcp --config.workingdir /home/s3 \
    --config.entrypoint /opt/moto/bin/python3 --config.entrypoint /opt/moto/s3-server.py \
    --config.label "org.opencontainers.image.title=stella-trial-s3" \
    --config.label "org.opencontainers.image.version=$version" >/dev/null
rm -rf "$work/bundle-s3"
umoci gc --layout "$layout"

for image in "${images[@]}"; do
    rm -f "$out/$image.tar" "$out/$image.key"
    skopeo copy --quiet "oci:$layout:$image" "docker-archive:$out/$image.tar.partial:stella-ops/$image:$version"
    mv "$out/$image.tar.partial" "$out/$image.tar"
done
bash "$here/check-storage.sh" "$out"
for image in "${images[@]}"; do
    echo "$key" > "$out/$image.key"
done
echo "$checked" > "$out/checked"
cp "$work/trial-s3-requirements.txt" "$out/trial-s3-requirements.txt"
echo "storage images: built in $(($(date +%s) - started)) s:"
for image in "${images[@]}"; do
    echo "stella-ops/$image:$version $out/$image.tar $(du -m "$out/$image.tar" | cut -f1)MB"
done
