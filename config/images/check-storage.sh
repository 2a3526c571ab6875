#!/usr/bin/env bash
# Checks the trial storage images from their docker-archives, unpacked (skopeo + umoci) and run
# in a chroot as their image user with the environment config/storage gives them, on loopback
# ports of their own:
#   trial-postgres  runs as 999:999; the first start runs initdb into an empty data directory
#                   and creates the database; a client logs in over TCP with the password (and
#                   not with another); a second start keeps the data and runs no initdb
#   trial-s3        runs as 1000:1000; the bucket exists at start (GET answers 200, an unknown
#                   bucket 404); a signed client (boto3) puts, lists and reads back an object
#
# Usage: check-storage.sh DIR   (DIR holding trial-postgres.tar and trial-s3.tar; root)
set -euo pipefail
export LC_ALL=C

dir=${1:?usage: $0 DIR}
fail() {
    echo "check storage: FAILED: $*" >&2
    exit 1
}
((EUID == 0)) || fail "needs root (chroot, umoci unpack)"
chroot=$(command -v chroot)
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

unpack() { # image -> rootfs path; prints "uid gid"
    skopeo copy --quiet "docker-archive:$dir/$1.tar" "oci:$work/oci:$1"
    umoci unpack --image "$work/oci:$1" "$work/$1" >/dev/null
    python3 -c '
import json, sys
process = json.load(open(sys.argv[1]))["process"]
print(process["user"]["uid"], process["user"]["gid"], " ".join(process["args"]))
' "$work/$1/config.json"
}
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() { # seconds, description, log file, command...
    local seconds=$1 what=$2 log=$3
    shift 3
    for _ in $(seq $((seconds * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "$what within ${seconds}s; its log ends: $(tail -5 "$log")"
}

# PostgreSQL.
read -r uid gid entrypoint < <(unpack trial-postgres)
[[ "$uid:$gid" == "999:999" ]] || fail "trial-postgres runs as $uid:$gid, not 999:999"
root="$work/trial-postgres/rootfs"
# The volumes of config/storage/postgres.yaml: the data volume as a provisioner without
# ownership management leaves it (root's, 0777, as kind's local-path), /var/run/postgresql and
# /tmp (emptyDirs, writable by the pod's fsGroup 999).
mkdir -p "$root/var/lib/postgresql/data" "$root/var/run/postgresql"
chown 0:0 "$root/var/lib/postgresql/data"
chmod 0777 "$root/var/lib/postgresql/data"
chown 999:999 "$root/var/run/postgresql"
port=$(free_port)
postgres() {
    env -i PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin \
        PGDATA=/var/lib/postgresql/data/pgdata PGPORT="$port" \
        POSTGRES_USER=stella POSTGRES_PASSWORD="trial 'pass\"word" POSTGRES_DB=stella \
        "$chroot" --userspec=999:999 "$root" $entrypoint >> "$work/postgres.log" 2>&1 &
    pids+=($!)
}
login() { # password
    PGPASSWORD=$1 PGCONNECT_TIMEOUT=3 "$chroot" "$root" /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p "$port" -U stella -d stella \
        -Atc "SELECT current_user || ' ' || current_database()"
}
postgres
wait_for 60 "trial-postgres accepting connections" "$work/postgres.log" \
    "$chroot" "$root" /usr/lib/postgresql/15/bin/pg_isready -h 127.0.0.1 -p "$port"
grep -q "initialising /var/lib/postgresql/data/pgdata" "$work/postgres.log" || fail "no initdb at first start"
[[ "$(login "trial 'pass\"word")" == "stella stella" ]] || fail "no login with the password: $(tail -5 "$work/postgres.log")"
if login wrong >/dev/null 2>&1; then fail "login with a wrong password succeeded"; fi
PGPASSWORD="trial 'pass\"word" "$chroot" "$root" /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p "$port" -U stella -d stella -q \
    -c "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)"
[[ "$(stat -c %u "$root/var/lib/postgresql/data/pgdata")" == 999 ]] || fail "the data directory is not postgres's"
kill "${pids[-1]}"
wait "${pids[-1]}" || true
: > "$work/postgres.log"
postgres
wait_for 60 "trial-postgres accepting connections again" "$work/postgres.log" "$chroot" "$root" /usr/lib/postgresql/15/bin/pg_isready -h 127.0.0.1 -p "$port"
! grep -q initialising "$work/postgres.log" || fail "initdb ran again on a second start"
kept=$(PGPASSWORD="trial 'pass\"word" "$chroot" "$root" /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p "$port" -U stella -d stella -Atc "SELECT n FROM kept")
[[ "$kept" == 42 ]] || fail "the data did not survive a restart ($kept)"
kill "${pids[-1]}"
echo "check storage: trial-postgres OK: 999:999, initdb at first start only, password login over TCP, data kept"

# S3.
read -r uid gid entrypoint < <(unpack trial-s3)
[[ "$uid:$gid" == "1000:1000" ]] || fail "trial-s3 runs as $uid:$gid, not 1000:1000"
root="$work/trial-s3/rootfs"
port=$(free_port)
env -i PATH=/opt/moto/bin:/usr/bin:/bin PYTHONDONTWRITEBYTECODE=1 S3_IGNORE_SUBDOMAIN_BUCKETNAME=true HOME=/home/s3 \
    STELLA_S3_ADDRESS="127.0.0.1:$port" STELLA_S3_BUCKETS=stella AWS_REGION=us-east-1 \
    "$chroot" --userspec=1000:1000 "$root" $entrypoint > "$work/s3.log" 2>&1 &
pids+=($!)
bucket_status() { # bucket -> the HTTP status of an anonymous GET on it
    python3 - "$1" <<EOF
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen("http://127.0.0.1:$port/" + sys.argv[1], timeout=5) as response:
        print(response.status)
except urllib.error.HTTPError as error:
    print(error.code)
EOF
}
wait_for 60 "trial-s3 serving the bucket" "$work/s3.log" \
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/stella', timeout=2)"
[[ "$(bucket_status stella)" == 200 ]] || fail "GET /stella: $(bucket_status stella)"
[[ "$(bucket_status no-such-bucket)" == 404 ]] || fail "an unknown bucket answered $(bucket_status no-such-bucket)"
# A signed client (boto3, from the image) puts, lists and reads back an object.
roundtrip=$(env -i PATH=/opt/moto/bin:/usr/bin:/bin HOME=/tmp "$chroot" --userspec=1000:1000 "$root" /opt/moto/bin/python3 -c "
import boto3
s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:$port', region_name='us-east-1',
                  aws_access_key_id='stella', aws_secret_access_key='stella-trial-password')
s3.put_object(Bucket='stella', Key='check/object', Body=b'stored by check-storage.sh')
keys = [o['Key'] for o in s3.list_objects_v2(Bucket='stella', Prefix='check/')['Contents']]
body = s3.get_object(Bucket='stella', Key='check/object')['Body'].read().decode()
print(keys, body)
" 2>&1) || fail "S3 round trip: $roundtrip"
[[ "$roundtrip" == "['check/object'] stored by check-storage.sh" ]] || fail "S3 round trip: $roundtrip"
echo "check storage: trial-s3 OK: 1000:1000, bucket stella at start, an object put, listed and read back (SigV4)"
