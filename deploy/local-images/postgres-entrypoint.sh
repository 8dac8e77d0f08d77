#!/bin/sh
# As the official image: the first start creates the cluster, the user (a superuser) with its
# password and the database; every start listens on all interfaces, with password logins.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  password_file=$(mktemp)
  printf '%s' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" > "$password_file"
  initdb --username="${POSTGRES_USER:-postgres}" --pwfile="$password_file" \
         --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  rm -f "$password_file"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  database="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$database" != postgres ]; then
    createdb --username="${POSTGRES_USER:-postgres}" "$database"
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
if [ "$1" = "postgres" ]; then
  exec postgres -D "$PGDATA" -c listen_addresses='*'
fi
exec "$@"
