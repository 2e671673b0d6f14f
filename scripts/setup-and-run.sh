#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: installs the dependencies, builds
# Testigo, makes sure an officer account exists, and starts the server
# (testigod) on its embedded defaults: http://127.0.0.1:8080/.
#   Officer console:   http://127.0.0.1:8080/officer.html
#   The signatory opens the one-time link the console shows.
# State (database, keys, evidence) lives in $TESTIGO_STATE_DIR, default ./testigo-state.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
[ -d build ] || meson setup build -Dbuildtype=debugoptimized
ninja -C build

state=${TESTIGO_STATE_DIR:-$PWD/testigo-state}
mkdir -p "$state"
chmod 0700 "$state"
pwfile="$state/initial-officer-password"
if [ ! -f "$pwfile" ]; then
  # First start: an officer "admin" with a random password, kept 0600 in the state dir.
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$pwfile")
  build/cli/testigo officer add admin --name "Administrator" --password-file "$pwfile" --state-dir "$state" \
    || { rc=$?; [ "$rc" = 7 ] || exit "$rc"; }
fi
echo "Officer console: http://127.0.0.1:8080/officer.html  (user: admin, password in $pwfile)"
echo "More officers: build/cli/testigo officer add NAME --state-dir $state"
exec build/signaling/testigod --state-dir "$state" "$@"
