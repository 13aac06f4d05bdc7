#!/usr/bin/env bash
# Install (Debian's package) and start a throw-away PostgreSQL for the tests; print its URL.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "postgres.sh: PostgreSQL is not installed and this is not root" >&2
    exit 1
  fi
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
data=${PGTEST_DIR:-/tmp/digestbot-pg}
port=${PGTEST_PORT:-55432}
run() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
# a server left from an earlier run on this machine is stopped before its data goes
if [ -f "$data/postmaster.pid" ]; then
  run "$bin/pg_ctl -D $data -m immediate stop" >/dev/null 2>&1 || true
fi
rm -rf "$data"
mkdir -p "$data"
[ "$(id -u)" = 0 ] && chown postgres "$data"
run "$bin/initdb -D $data -U postgres -A trust >/dev/null"
run "$bin/pg_ctl -D $data -o '-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' -l $data/log -w start >/dev/null"
run "$bin/createdb -h 127.0.0.1 -p $port -U postgres digestbot_test"
echo "postgresql+psycopg://postgres@127.0.0.1:$port/digestbot_test"
