#!/usr/bin/env bash
# End-to-end for disk-image guests: `kvmnet image build` makes a bootable disk of the default
# guest; nat guests booted from it get their static addresses by DHCP (dnsmasq) and pass verify;
# an isolated guest gets its address from its NoCloud seed; the base image is never written;
# down leaves the host as before with no dnsmasq or qemu left.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "e2e-images: needs root (creates network namespaces)" >&2; exit 77; }
KVMNET=${KVMNET:-$PWD/.build/debug/kvmnet}
. Scripts/lib/sandbox.sh
trap sandbox_cleanup EXIT
trap 'exit 130' INT TERM
passed=0 failed=0
say() { printf 'e2e-images: %s\n' "$*" >&2; }
check() { if [ "$2" = "$3" ]; then say "  ok   $1: $3"; else say "  FAIL $1: expected $2, observed $3"; return 1; fi; }
kv() { "$KVMNET" --netns "$H" --state-dir "$STATE" "$@"; }

disk=$("$KVMNET" image build --out "$STATE/disk.qcow2" 2>/dev/null | tail -1)
sum=$(sha256sum "$disk" | cut -d' ' -f1)

run() { # MODEL
  local model=$1 ok=0
  sandbox_create
  local before; before=$(sandbox_snapshot)
  local n=2 extra=() net=$model; [ "$model" = isolated ] && n=1
  # libvirt's isolated semantics: a bridge address that serves only DHCP and DNS.
  [ "$model" = isolated-dhcp ] && { net=isolated; extra=(--dhcp on); }
  kv up "$net" --guests $n --image "$disk" --accel tcg "${extra[@]}" >/dev/null || { say "$model: up failed"; sandbox_destroy; return 1; }
  case $model in
    isolated-dhcp)
      kv verify >/dev/null || { say "isolated-dhcp: verify failed"; kv verify >&2 || true; ok=1; }
      check "isolated-dhcp: guest01 got its static address by DHCP, no router" yes \
        "$(kv exec guest01 -- sh -c 'ip -4 addr show dev eth0 | grep -q "inet 10.0.1.1/24" && ! ip route | grep -q default' && echo yes || echo no)" || ok=1 ;;
    nat)
      kv verify >/dev/null || { say "nat: verify failed"; kv verify >&2 || true; ok=1; }
      check "nat: guest01 got its static address by DHCP" yes \
        "$(kv exec guest01 -- ip -4 addr show dev eth0 | grep -q 'inet 192.168.1.1/24' && echo yes || echo no)" || ok=1
      check "nat: leases show guest02's static lease" yes "$(kv leases | grep -q '192.168.1.2 .*guest02 *static' && echo yes || echo no)" || ok=1
      check "nat: guest01.default.kvmnet resolves" yes \
        "$(kv exec guest02 -- nslookup guest01.default.kvmnet 192.168.1.254 | grep -q '192.168.1.1' && echo yes || echo no)" || ok=1 ;;
    isolated)
      check "isolated: guest01 got its address from its seed" yes \
        "$(kv exec guest01 -- ip -4 addr show dev eth0 | grep -q 'inet 10.0.1.1/24' && echo yes || echo no)" || ok=1 ;;
  esac
  kv down >/dev/null || { say "$model: down failed"; ok=1; }
  check "$model: no dnsmasq or qemu left" "" "$(pgrep -f -- "$STATE/netns-" || true)" || ok=1
  [ "$before" = "$(sandbox_snapshot)" ] || { say "$model: the host differs after down"; ok=1; }
  sandbox_destroy
  return $ok
}

for m in nat isolated isolated-dhcp; do
  if run "$m"; then passed=$((passed + 1)); say "$m: PASS"; else failed=$((failed + 1)); say "$m: FAIL"; fi
done
if [ "$(sha256sum "$disk" | cut -d' ' -f1)" = "$sum" ]; then say "the base image is unchanged"; else say "FAIL: the base image was written"; failed=$((failed + 1)); fi
echo "e2e-images: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
