#!/usr/bin/env bash
# The evidence pipeline alone, without the server: makes a development PKI and
# a synthetic session, seals it into a bundle and prints the verifier's verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/cli/testigo ] || { [ -d build ] || meson setup build; ninja -C build; }

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
