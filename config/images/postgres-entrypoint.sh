#!/bin/sh
# The trial catalog's PostgreSQL (stella-ops/trial-postgres): on first start, initdb in
# $PGDATA with the superuser $POSTGRES_USER, its password $POSTGRES_PASSWORD (scram-sha-256,
# for local and TCP clients alike) and the database $POSTGRES_DB; then the server in the
# foreground on every address. The password is set at the first start only: changing the
# Secret later does not change it.
set -eu

: "${PGDATA:?PGDATA must name the data directory}"
: "${POSTGRES_USER:?POSTGRES_USER must name the superuser}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "stella-postgres: initialising $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    password_file=$(mktemp)
    trap 'rm -f "$password_file"' EXIT
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$password_file" \
        --auth=scram-sha-256 --encoding=UTF8 --no-locale --no-instructions
    rm -f "$password_file"
    trap - EXIT
    # Clients in other pods connect over TCP, with the password.
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        quoted=$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')
        owner=$(printf '%s' "$POSTGRES_USER" | sed 's/"/""/g')
        echo "CREATE DATABASE \"$quoted\" OWNER \"$owner\"" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql
