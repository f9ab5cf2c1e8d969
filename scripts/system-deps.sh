#!/usr/bin/env bash
# What the test suite needs from the system, installed with apt-get when missing (Debian):
# nats-server and PostgreSQL (the tests start their own on free ports), psql, tmux and Chromium
# (the inspector's views), openssl (certificates), iproute2 (network namespaces) and Debian's
# psycopg2 (a client the SQL front end must serve), gcc with Debian's NATS C library (a C
# application the group's subjects must serve). Used by `npm test` and by .ci/run. Without
# root or sudo it says what is missing and leaves it to you.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing+=(iproute2)
/usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1 || missing+=(python3-psycopg2)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
[ -f /usr/include/nats/nats.h ] || missing+=(libnats-dev)

[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then as_root=(); elif sudo -n true 2>/dev/null; then as_root=(sudo -n); else
  echo "the tests need: ${missing[*]} (apt-get install them as root)" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
