#!/usr/bin/env bash
# End-to-end: for each model, real qemu guests on a pretend host, checked against the seed's
# reachability, and the host left exactly as found.
#
# The sandbox is two network namespaces: a host whose eth0 is 10.241.96.176/24 with its default
# route via 10.241.96.1, and an outside LAN holding 10.241.96.1 (the seed's addresses). Nothing
# outside them is touched; they are deleted on exit, also on failure.
#
# Usage: Scripts/e2e.sh [MODEL...]   (default: isolated routed nat bridged)
# Env:   KVMNET=path/to/kvmnet (default .build/debug/kvmnet); the default guest must be built
#        (Scripts/build-guest.sh) since the namespaces cannot reach Debian's mirrors.
#        FIREWALL=auto|iptables|nftables (default auto).
#        HOST=plain|docker (default plain): docker makes the pretend host look like one running
#        Docker (ip_forward 1, FORWARD policy DROP, a DOCKER-USER chain); its policy and chains
#        must be there, unchanged, after down.
set -euo pipefail
cd "$(dirname "$0")/.."
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(isolated routed nat bridged)
[ "$(id -u)" -eq 0 ] || { echo "e2e: needs root (creates network namespaces)" >&2; exit 77; }

KVMNET=${KVMNET:-$PWD/.build/debug/kvmnet}
FIREWALL=${FIREWALL:-auto}
HOST=${HOST:-plain}
. Scripts/lib/sandbox.sh
passed=0 failed=0
failures=()

say() { printf 'e2e[%s,%s]: %s\n' "$FIREWALL" "$HOST" "$*" >&2; }
trap sandbox_cleanup EXIT
trap 'exit 130' INT TERM

kv() { "$KVMNET" --netns "$H" --state-dir "$STATE" "$@"; }

# ping from the outside LAN: prints yes or no
outside_ping() { ip netns exec "$O" busybox ping -c 1 -W 2 "$1" >/dev/null 2>&1 && echo yes || echo no; }

check() { # NAME EXPECTED OBSERVED
  if [ "$2" = "$3" ]; then say "  ok   $1: $3"; else say "  FAIL $1: expected $2, observed $3"; return 1; fi
}

run_model() {
  local model=$1 ok=0
  sandbox_create
  if [ "$HOST" = docker ]; then
    ip netns exec "$H" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
    ip netns exec "$H" iptables -w -N DOCKER-USER
    ip netns exec "$H" iptables -w -A DOCKER-USER -j RETURN
    ip netns exec "$H" iptables -w -A FORWARD -j DOCKER-USER
    ip netns exec "$H" iptables -w -P FORWARD DROP
  fi
  local before; before=$(sandbox_snapshot)
  local args=(up "$model" --guests 2 --accel tcg --firewall "$FIREWALL")
  [ "$model" = bridged ] && args+=(--uplink eth0 --guest-ip 10.241.96.90-10.241.96.99)
  [ "$model" = nat ] && args+=(--forward tcp:8080:guest01:80)
  say "$model: kvmnet ${args[*]}"
  local t0=$SECONDS
  kv "${args[@]}" >/dev/null || { say "$model: up failed"; return 1; }
  say "$model: up with 2 guests in $((SECONDS - t0)) s"
  kv status || { say "$model: status shows drift"; ok=1; }
  kv verify || { say "$model: verify failed"; ok=1; }

  # exec: the command's own status comes back; a missing guest is 125, like docker exec.
  local st=0; kv exec guest01 -- sh -c 'hostname; exit 3' >/dev/null || st=$?
  check "$model: exec status passes through" 3 "$st" || ok=1
  st=0; kv exec guest09 -- true 2>/dev/null || st=$?
  check "$model: exec on a missing guest" 125 "$st" || ok=1

  local g1
  case $model in
    isolated) g1=10.0.1.1 ;; routed|nat) g1=192.168.1.1 ;; bridged) g1=10.241.96.90 ;;
  esac
  local want_plain=no want_routed=no
  case $model in routed) want_routed=yes ;; bridged) want_plain=yes want_routed=yes ;; esac
  check "$model: outside → guest01 without a route" "$want_plain" "$(outside_ping $g1)" || ok=1
  if [ "$model" != bridged ]; then
    local subnet=${g1%.*}.0/24
    ip -n "$O" route add "$subnet" via 10.241.96.176
    check "$model: outside → guest01 with a route via the host" "$want_routed" "$(outside_ping $g1)" || ok=1
    if [ "$model" = routed ]; then
      local r; r=$(kv exec guest01 -- ping -c 1 -W 2 10.241.96.1 >/dev/null 2>&1 && echo yes || echo no)
      check "$model: guest01 → outside once the outside routes the subnet back" yes "$r" || ok=1
    fi
    ip -n "$O" route del "$subnet" via 10.241.96.176
  fi

  if [ "$model" = nat ]; then
    # The forward reaches guest01 from the outside, from the host and from guest02 (hairpin).
    local page
    page=$(ip netns exec "$O" timeout 5 busybox wget -qO- http://10.241.96.176:8080/ 2>/dev/null || true)
    check "$model: outside → forward tcp:8080 → guest01" guest01 "$page" || ok=1
    page=$(ip netns exec "$H" timeout 5 busybox wget -qO- http://10.241.96.176:8080/ 2>/dev/null || true)
    check "$model: host → forward → guest01" guest01 "$page" || ok=1
    page=$(kv exec guest02 -- timeout 5 wget -qO- http://10.241.96.176:8080/ 2>/dev/null || true)
    check "$model: guest02 → forward on the host's address → guest01" guest01 "$page" || ok=1
    kv forward add tcp:8081:guest02:80 >/dev/null
    page=$(ip netns exec "$O" timeout 5 busybox wget -qO- http://10.241.96.176:8081/ 2>/dev/null || true)
    check "$model: a forward added at runtime → guest02" guest02 "$page" || ok=1
    kv forward del tcp:8081:guest02:80 >/dev/null
    page=$(ip netns exec "$O" timeout 3 busybox wget -qO- http://10.241.96.176:8081/ 2>/dev/null || echo closed)
    check "$model: a removed forward is closed" closed "$page" || ok=1
  fi

  local pids; pids=$(cat "$STATE"/netns-"$H"/default/guest*.pid 2>/dev/null || true)
  kv down >/dev/null || { say "$model: down failed"; ok=1; }
  for p in $pids; do
    if [ -d /proc/$p ] && grep -qa -- "$STATE" /proc/$p/cmdline 2>/dev/null; then say "$model: qemu $p survived down"; ok=1; fi
  done
  if [ "$model" = nat ]; then
    local page; page=$(ip netns exec "$O" timeout 3 busybox wget -qO- http://10.241.96.176:8080/ 2>/dev/null || echo closed)
    check "$model: the forward is closed after down" closed "$page" || ok=1
  fi
  local after; after=$(sandbox_snapshot)
  if [ "$before" != "$after" ]; then
    say "$model: the host namespace differs after down:"
    diff <(echo "$before") <(echo "$after") >&2 || true
    ok=1
  fi
  sandbox_destroy
  return $ok
}

for m in "${models[@]}"; do
  if run_model "$m"; then passed=$((passed + 1)); say "$m: PASS"; else failed=$((failed + 1)); failures+=("$m"); say "$m: FAIL"; fi
done
echo "e2e[$FIREWALL,$HOST]: ${passed} passed, ${failed} failed${failures:+ (${failures[*]})}"
[ "$failed" -eq 0 ]
