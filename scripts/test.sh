#!/usr/bin/env bash
# Runs the whole test suite: unit, integration and fuzz-corpus replay on a
# plain -Werror build, again under ASan+UBSan, and the libFuzzer targets built
# with clang for a short bounded run. Exit status: 0 when everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."

suites=(--suite unit --suite integration --suite fuzz)
[ -d evidence-schema/node_modules ] || npm ci --prefix evidence-schema --no-audit --no-fund

setup() { # dir, meson options...
  local dir=$1; shift
  if [ -d "$dir" ]; then meson setup --reconfigure "$dir" "$@" >/dev/null
  else meson setup "$dir" "$@" >/dev/null; fi
}

echo "== plain build (-Werror)"
setup build -Dwerror=true
ninja -C build
meson test -C build "${suites[@]}" --print-errorlogs --num-processes 2

echo "== ASan+UBSan build (-Werror)"
setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan "${suites[@]}" --print-errorlogs --num-processes 2 --timeout-multiplier 4

echo "== libFuzzer targets (clang), bounded runs over the committed corpora"
CC=clang setup build-fuzz -Dwerror=true -Dfuzzing=true -Dbuildtype=debugoptimized
ninja -C build-fuzz
for target in build-fuzz/tests/fuzz/fuzz-*-libfuzzer; do
  name=$(basename "$target" -libfuzzer)
  corpus=tests/fuzz/corpus/${name#fuzz-}
  work=$(mktemp -d)
  "$target" -runs=20000 -max_len=65536 -timeout=10 "$work" "$corpus" 2>&1 | tail -n 2
  rm -rf "$work"
done
echo "all suites passed"
