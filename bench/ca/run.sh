#!/usr/bin/env bash
# bench/ca/run.sh [BUILD_DIR] — CRL generation and OCSP responses of
# ca/publication (and of testigod's OCSP endpoint) against the openssl CLI,
# all measured in this one run.
# See bench/ca/README.md.
#
#   BUILD_DIR      a meson build dir (ideally -Dbuildtype=release); without it
#                  a release build is made in $BENCH_WORK/build.
# Environment:
#   BENCH_RUNS     runs per contender (default 5 for CRLs, 3 for OCSP)
#   BENCH_ENTRIES  revoked certificates in the CRL (default 100000)
#   BENCH_SECONDS  seconds per OCSP run (default 5)
#   BENCH_WORK     scratch dir (default ${TMPDIR:-/tmp}/testigo-bench-ca)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${BENCH_WORK:-${TMPDIR:-/tmp}/testigo-bench-ca}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

for tool in meson ninja python3 openssl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed" >&2; exit 1; }
done

if [ $# -ge 1 ]; then
  BUILD=$(cd "$1" && pwd)
  buildtype=$(meson introspect --buildoptions "$BUILD" 2>/dev/null \
    | python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))' \
    2>/dev/null || echo unknown)
  [ "$buildtype" = release ] || echo "bench: WARNING: $BUILD has buildtype=$buildtype, not release" >&2
else
  BUILD=$WORK/build
  [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$SRC" -Dbuildtype=release >"$WORK/meson-setup.log"
fi
echo "bench: building $BUILD" >&2
ninja -C "$BUILD" tests/ca/publication/publication-tool signaling/testigod cli/testigo >"$WORK/ninja.log" \
  || { tail -20 "$WORK/ninja.log" >&2; exit 1; }

exec python3 "$SRC/bench/ca/bench-ca.py" --tool "$BUILD/tests/ca/publication/publication-tool" \
  --testigod "$BUILD/signaling/testigod" --testigo "$BUILD/cli/testigo" --work "$WORK" \
  --entries "${BENCH_ENTRIES:-100000}" --crl-runs "${BENCH_RUNS:-5}" \
  --ocsp-runs "${BENCH_RUNS:-3}" --seconds "${BENCH_SECONDS:-5}" --command "bench/ca/run.sh${1:+ $1}"
