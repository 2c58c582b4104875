#!/usr/bin/env bash
# Builds (or finds, cached) the default guest: `kvmnet guest build`.
# Where: KVMNET_GUEST_DIR, else /var/lib/kvmnet/guest. Needs Debian's mirrors (apt-get download).
set -euo pipefail
cd "$(dirname "$0")/.."
KVMNET=${KVMNET:-$PWD/.build/debug/kvmnet}
[ -x "$KVMNET" ] || swift build --product kvmnet >&2
exec "$KVMNET" guest build
