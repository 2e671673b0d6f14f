#!/usr/bin/env bash
# Installs Testigo's build and test dependencies from Debian 12's packages
# (.ci/debian-packages.txt) and the npm packages of evidence-schema/.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
# shellcheck disable=SC2046
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $(grep -v '^#' .ci/debian-packages.txt)
# Node.js and npm: some machines ship them; a bare Debian 12 gets Debian's.
if ! command -v npm >/dev/null; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends nodejs npm
fi
npm ci --prefix evidence-schema --no-audit --no-fund
