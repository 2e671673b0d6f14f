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
# First start: a registration officer "admin" (runs sessions and visits) and a
# CA administrator "ca-admin" (applies suspensions, reactivations, revocations;
# an account is never both), each with a random password kept 0600 here.
add_account() { # id, name, role, password file
  [ -f "$4" ] && return 0
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$4")
  build/cli/testigo officer add "$1" --name "$2" --role "$3" --password-file "$4" --state-dir "$state" \
    || { rc=$?; [ "$rc" = 7 ] || exit "$rc"; }
}
pwfile="$state/initial-officer-password"
adminfile="$state/initial-ca-admin-password"
add_account admin "Registration officer" officer "$pwfile"
add_account ca-admin "CA administrator" admin "$adminfile"
echo "Officer console: http://127.0.0.1:8080/officer.html  (user: admin, password in $pwfile;"
echo "  CA administrator: ca-admin, password in $adminfile)"
echo "Holder portal: http://127.0.0.1:8080/holder.html  (accounts: build/cli/testigo holder add ID --name N --email E --state-dir $state)"
echo "More officers: build/cli/testigo officer add NAME [--role admin] --state-dir $state"
exec build/signaling/testigod --state-dir "$state" "$@"
