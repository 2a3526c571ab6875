#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 and prints a DATABASE_URL for it:
# the machine's own server when it runs (trust auth), else Debian's, installed and started.
set -euo pipefail
url="postgres://postgres@127.0.0.1:5432/postgres"
ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! command -v pg_isready >/dev/null || ! ready; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
    fi
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
    for _ in $(seq 1 50); do ready && break; sleep 0.2; done
fi
if ! psql "$url" -qAtc 'select 1' >/dev/null 2>&1; then
    # A fresh Debian cluster wants a password over TCP.
    su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >&2
    url="postgres://postgres:postgres@127.0.0.1:5432/postgres"
fi
echo "$url"
