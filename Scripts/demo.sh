#!/usr/bin/env bash
# Try a model without touching your host: builds a throwaway sandbox (a pretend host and a
# pretend outside LAN, two network namespaces), brings MODEL up in it with two guests, shows
# `status` and `verify`, and removes it all.
#
# Usage: sudo Scripts/demo.sh isolated|routed|nat|bridged
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-nat}
case $model in isolated|routed|nat|bridged) ;; *) echo "usage: $0 isolated|routed|nat|bridged" >&2; exit 64 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (creates network namespaces): sudo $0 $model" >&2; exit 77; }
Scripts/kvmnet guest build >/dev/null
KVMNET=$(Scripts/kvmnet --print-binary)
. Scripts/lib/sandbox.sh
trap sandbox_cleanup EXIT
trap 'exit 130' INT TERM
sandbox_create
kv() { echo "+ kvmnet --netns $H ${*}" >&2; "$KVMNET" --netns "$H" --state-dir "$STATE" "$@"; }
args=(up "$model" --guests 2)
[ "$model" = bridged ] && args+=(--uplink eth0 --guest-ip 10.241.96.90-10.241.96.99)
kv "${args[@]}"
kv verify || true
kv exec guest01 -- ip route
kv down
echo "demo: done; the sandbox is removed on exit" >&2
