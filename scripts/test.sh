#!/usr/bin/env bash
# Runs the whole test suite:
#   plain -Werror build: unit, integration, fuzz replay, protocol (testigod),
#                        recorder (webrtcbin), web and e2e (Debian's Chromium);
#   ASan+UBSan build:    unit, integration, fuzz replay, protocol;
#   libFuzzer (clang):   each target for a bounded run over its committed corpus.
# Exit status 0 when everything passed; the last line is "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d evidence-schema/node_modules ] || npm ci --prefix evidence-schema --no-audit --no-fund
if [ -f tests/e2e/package.json ] && [ ! -d tests/e2e/node_modules ]; then
  npm ci --prefix tests/e2e --no-audit --no-fund
fi

setup() { # dir, meson options...
  local dir=$1; shift
  if [ -d "$dir" ]; then meson setup --reconfigure "$dir" "$@" >/dev/null
  else meson setup "$dir" "$@" >/dev/null; fi
}
suites() { # build dir, suites...: each must exist in the build (a missing one is an error, never a skip)
  local dir=$1 list; shift
  # Listed once into a variable: `meson test --list | grep -q` under pipefail
  # fails at random when grep exits before meson has written everything.
  list=$(meson test -C "$dir" --list 2>/dev/null)
  for s in "$@"; do
    if ! grep -q "^testigo:$s / " <<<"$list"; then
      echo "test.sh: suite '$s' has no tests in $dir" >&2
      return 1
    fi
    printf -- '--suite\n%s\n' "$s"
  done
}
logs=()
run_tests() { # build dir, meson test args...
  local dir=$1; shift
  logs+=("$dir/meson-logs/testlog.json")
  meson test -C "$dir" "$@" --print-errorlogs --num-processes 2
}

echo "== plain build (-Werror)"
setup build -Dwerror=true
ninja -C build
plain_args=$(suites build unit integration fuzz ca protocol recorder web e2e)
mapfile -t plain <<<"$plain_args"
run_tests build "${plain[@]}"

echo "== ASan+UBSan build (-Werror)"
setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
ninja -C build-asan
asan_args=$(suites build-asan unit integration fuzz ca protocol)
mapfile -t asan <<<"$asan_args"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_tests build-asan "${asan[@]}" --timeout-multiplier 4

echo "== libFuzzer targets (clang), bounded runs over the committed corpora"
CC=clang setup build-fuzz -Dwerror=true -Dfuzzing=true -Dbuildtype=debugoptimized
ninja -C build-fuzz
fuzz_ok=0
for target in build-fuzz/tests/fuzz/fuzz-*-libfuzzer; do
  name=$(basename "$target" -libfuzzer)
  corpus=tests/fuzz/corpus/${name#fuzz-}
  work=$(mktemp -d)
  TESTIGO_FUZZ_ROOT=$PWD/tests/fuzz/corpus-root.pem \
    "$target" -runs=20000 -max_len=65536 -timeout=10 "$work" "$corpus" 2>&1 | tail -n 1
  rm -rf "$work"
  fuzz_ok=$((fuzz_ok + 1))
done

python3 - "$fuzz_ok" "${logs[@]}" <<'PY'
import json, sys
passed, failed, skipped = int(sys.argv[1]), 0, 0
for path in sys.argv[2:]:
    for line in open(path):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else: failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
