#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR] — testigo seal/verify against stock-tool baselines,
# all measured in this one run. See bench/README.md.
#
#   BUILD_DIR      a meson build dir (ideally -Dbuildtype=release); without it
#                  a release build is made in $BENCH_WORK/build.
# Environment:
#   BENCH_RUNS     runs per contender (default 5)
#   BENCH_SIZE     recording size in bytes (default 1073741824 = 1 GiB)
#   BENCH_SEGMENT  events-chain segment size (default 8388608)
#   BENCH_PAUSE    seconds of idle before each run that writes (default 4; see README,
#                  "Noise": this VM hands freed memory back to the host)
#   BENCH_WAIT_QUIET  wait up to this many seconds for the CPUs to be idle (default 60)
#   BENCH_WORK     scratch dir (default ${TMPDIR:-/tmp}/testigo-bench); the
#                  fixture is cached there between runs. Needs ~3x BENCH_SIZE free.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-5}
SIZE=${BENCH_SIZE:-1073741824}
SEGMENT=${BENCH_SEGMENT:-8388608}
WORK=${BENCH_WORK:-${TMPDIR:-/tmp}/testigo-bench}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

for tool in meson ninja python3 openssl sha256sum tar dd sync; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed" >&2; exit 1; }
done
tar --version | grep -q 'GNU tar' || { echo "bench: the naive pipeline needs GNU tar" >&2; exit 1; }

# --- build
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
ninja -C "$BUILD" cli/testigo >"$WORK/ninja.log" || { tail -20 "$WORK/ninja.log" >&2; exit 1; }
TESTIGO=$BUILD/cli/testigo

# --- fixture (deterministic, so cached; rebuilt when the generator changes)
FIXTURE=$WORK/fixture-$SIZE-$SEGMENT
stamp=$(sha256sum "$SRC/tests/integration/make-fixture.py" | cut -c1-16)
if [ "$(cat "$FIXTURE/.done" 2>/dev/null)" != "$stamp" ]; then
  echo "bench: writing a $SIZE-byte fixture to $FIXTURE" >&2
  rm -rf "$FIXTURE"
  python3 "$SRC/tests/integration/make-fixture.py" "$FIXTURE" --size "$SIZE" --segment "$SEGMENT" >/dev/null
  echo "$stamp" >"$FIXTURE/.done"
fi

# --- keys (fresh every run: the development PKI of `testigo keys init`)
rm -rf "$WORK/keys"
"$TESTIGO" keys init "$WORK/keys" >/dev/null

exec python3 "$SRC/bench/bench.py" --testigo "$TESTIGO" --src "$SRC" --work "$WORK" \
  --fixture "$FIXTURE" --keys "$WORK/keys" --runs "$RUNS" \
  --pause "${BENCH_PAUSE:-4}" --wait-quiet "${BENCH_WAIT_QUIET:-60}" --command "bench/run.sh${1:+ $1}"
