#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: installs the dependencies, builds
# Testigo, and runs the main job. Until the server (testigod) exists, the main
# job seals a demo evidence bundle from the example inputs and verifies it.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
[ -d build ] || meson setup build -Dbuildtype=release
ninja -C build

state=${TESTIGO_STATE_DIR:-$PWD/demo-state}
mkdir -p "$state"
testigo=build/cli/testigo
[ -f "$state/keys/root.pem" ] || "$testigo" keys init "$state/keys"

session="$state/session"
python3 tests/integration/make-fixture.py "$session" --size $((8 * 1024 * 1024)) >/dev/null
bundle="$state/demo-$(date -u +%Y%m%dT%H%M%SZ).tar"
"$testigo" seal --keys "$state/keys" --record "$session/record.json" \
  --recording "$session/recording.mkv" --events "$session/events.jsonl" \
  --still doc-front.png="$session/doc-front.png" --still doc-back.png="$session/doc-back.png" \
  --still face.png="$session/face.png" --out "$bundle"
echo
"$testigo" verify --ca-file "$state/keys/root.pem" "$bundle"
