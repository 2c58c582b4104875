#!/usr/bin/env bash
# End-to-end for hook mode: kvmnet as qemu's script=/downscript= for guests it did not start.
#   1. per model: a defined network, two plain qemu guests with the stable hooks; the first ifup
#      brings the network up, the guests reach what the model promises, the last ifdown takes it
#      down and the host is as before;
#   2. 16 ifup hooks at once on a defined network, then 16 ifdown: one bridge, one copy of each
#      rule, the host as before; and 4 real qemu guests started at the same moment;
#   3. crash recovery: a SIGKILLed guest, then `down`; a tap held by a live process survives `down`;
#   4. an unprivileged qemu (setpriv) on taps made by `up --taps N --tap-owner nobody`.
# Usage: Scripts/e2e-hooks.sh [PART...]   (parts: models parallel crash unprivileged)
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(models parallel crash unprivileged)
[ "$(id -u)" -eq 0 ] || { echo "e2e-hooks: needs root (creates network namespaces)" >&2; exit 77; }
KVMNET=${KVMNET:-$PWD/.build/debug/kvmnet}
. Scripts/lib/sandbox.sh
CFG=$STATE/config
WORK=$STATE/guests
mkdir -p "$CFG" "$WORK"
chmod 755 "$STATE" "$WORK"
passed=0 failed=0
failures=()
say() { printf 'e2e-hooks: %s\n' "$*" >&2; }
trap sandbox_cleanup EXIT
trap 'exit 130' INT TERM

guest_files=$("$KVMNET" guest build)
KERNEL=$(awk '/^kernel /{print $2}' <<<"$guest_files")
INITRD=$(awk '/^initrd /{print $2}' <<<"$guest_files")

kv() { "$KVMNET" --netns "$H" --state-dir "$STATE" --config-dir "$CFG" "$@"; }
check() { # NAME EXPECTED OBSERVED
  if [ "$2" = "$3" ]; then say "  ok   $1: $3"; else say "  FAIL $1: expected $2, observed $3"; return 1; fi
}

# boot NAME TAP MAC IP/LEN GW SCRIPT DOWNSCRIPT [USER]: a plain qemu in the host namespace,
# not launched by kvmnet. Its pid is in $WORK/NAME.pid.
boot() {
  local name=$1 tap=$2 mac=$3 ip=$4 gw=$5 up=$6 down=$7 user=${8:-}
  [ "$gw" = - ] && gw=""
  local append="console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check cryptomgr.notests kvmnet.name=$name kvmnet.ip=$ip"
  [ -n "$gw" ] && append+=" kvmnet.gw=$gw"
  local qemu=(qemu-system-x86_64 -name "$name" -accel tcg -machine pc -m 128 -smp 1 -nodefaults -no-user-config
    -display none -no-reboot -kernel "$KERNEL" -initrd "$INITRD" -append "$append"
    -chardev "socket,id=ser0,path=$WORK/$name.sock,server=on,wait=off,logfile=$WORK/$name.log" -serial chardev:ser0
    -netdev "tap,id=n0,ifname=$tap,script=$up,downscript=$down" -device "virtio-net-pci,netdev=n0,mac=$mac,romfile="
    -pidfile "$WORK/$name.pid" -daemonize)
  rm -f "$WORK/$name.log" "$WORK/$name.pid"
  if [ -n "$user" ]; then
    # qemu opens /dev/net/tun itself; this machine makes it 0600 root. A private mount namespace
    # with a world-usable tun node stands in for the 0666 node most distributions ship.
    ip netns exec "$H" unshare -m sh -c "rm -f $WORK/tun; mknod $WORK/tun c 10 200 && chmod 666 $WORK/tun && mount --bind $WORK/tun /dev/net/tun && exec setpriv --reuid=$user --regid=nogroup --clear-groups \"\$@\"" sh "${qemu[@]}"
  else
    ip netns exec "$H" "${qemu[@]}"
  fi
}

# boot_all "NAME TAP MAC IP GW UP DOWN [USER]"...: starts them at the same moment; fails if any qemu did.
boot_all() {
  local spec p pids=() bad=0
  for spec in "$@"; do boot $spec & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || bad=1; done
  return $bad
}

wait_ready() { # NAME...
  local g t0=$SECONDS
  for g in "$@"; do
    until grep -qa "kvmnet-guest-ready $g" "$WORK/$g.log" 2>/dev/null; do
      [ -s "$WORK/$g.pid" ] || { say "$g has no qemu process"; return 1; }
      [ $((SECONDS - t0)) -lt 120 ] || { say "$g did not boot"; tail -5 "$WORK/$g.log" >&2; return 1; }
      sleep 0.2
    done
  done
}

gexec() { kv exec --console "$WORK/$1.sock" -- "${@:2}"; }
reach() { gexec "$1" "ping -c 1 -W 2 $2 >/dev/null" >/dev/null 2>&1 && echo yes || echo no; }
host_reach() { ip netns exec "$H" busybox ping -c 1 -W 2 "$1" >/dev/null 2>&1 && echo yes || echo no; }

# Stops a plain qemu the orderly way (its downscript runs) and waits for it.
stop() { # NAME...
  local g pid
  for g in "$@"; do pid=$(cat "$WORK/$g.pid" 2>/dev/null) && kill -TERM "$pid" 2>/dev/null || true; done
  for g in "$@"; do
    pid=$(cat "$WORK/$g.pid" 2>/dev/null) || continue
    for _ in $(seq 100); do [ -d /proc/$pid ] || break; sleep 0.1; done
  done
}

part_models() {
  local ok=0 model
  for model in isolated routed nat bridged; do
    sandbox_create
    local before; before=$(sandbox_snapshot)
    local def=(define "$model") a1 a2 gw=""
    case $model in
      isolated) a1=10.0.1.1/24 a2=10.0.1.2/24 ;;
      routed|nat) a1=192.168.1.1/24 a2=192.168.1.2/24 gw=192.168.1.254 ;;
      bridged) a1=10.241.96.90/24 a2=10.241.96.91/24 gw=10.241.96.1; def+=(--uplink eth0) ;;
    esac
    kv "${def[@]}" >/dev/null
    local up=$CFG/hooks/default/qemu-ifup down=$CFG/hooks/default/qemu-ifdown
    boot_all "g1 tap1 52:54:00:aa:00:01 $a1 ${gw:--} $up $down" "g2 tap2 52:54:00:aa:00:02 $a2 ${gw:--} $up $down" \
      && wait_ready g1 g2 || { say "$model: the guests did not start"; ok=1; sandbox_destroy; continue; }
    local want_host=yes want_out=yes
    case $model in isolated) want_host=no want_out=no ;; routed) want_out=no ;; esac
    check "$model: g1 → g2" yes "$(reach g1 ${a2%/*})" || ok=1
    check "$model: host → g1" "$want_host" "$(host_reach ${a1%/*})" || ok=1
    check "$model: g1 → outside" "$want_out" "$(reach g1 10.241.96.1)" || ok=1
    [ -n "$gw" ] && { check "$model: g1 → its gateway" yes "$(reach g1 $gw)" || ok=1; }
    kv status >/dev/null || { say "$model: status shows drift"; ok=1; }
    stop g1 g2
    kv status | grep -q "no kvmnet network is up" || { say "$model: the last ifdown did not take the network down"; ok=1; }
    local after; after=$(sandbox_snapshot)
    [ "$before" = "$after" ] || { say "$model: the host differs after the last ifdown:"; diff <(echo "$before") <(echo "$after") >&2 || true; ok=1; }
    kv undefine >/dev/null
    sandbox_destroy
  done
  return $ok
}

part_parallel() {
  local ok=0 i p
  sandbox_create
  local before; before=$(sandbox_snapshot)
  kv define nat --firewall iptables >/dev/null
  for i in $(seq 16); do ip -n "$H" tuntap add dev "t$i" mode tap; done
  local pids=()
  for i in $(seq 16); do ip netns exec "$H" "$CFG/hooks/default/qemu-ifup" "t$i" & pids+=($!); done
  local bad=0; for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
  check "16 parallel ifup hooks exit 0" 0 "$bad" || ok=1
  check "one bridge" 1 "$(ip -n "$H" -o link show type bridge | wc -l)" || ok=1
  check "16 taps enslaved" 16 "$(ip -n "$H" -o link show master br-in | wc -l)" || ok=1
  check "one inbound jump from FORWARD" 1 "$(ip netns exec "$H" iptables-save | grep -c -- '-A FORWARD .*-j KVMNET-FWI-DEFAULT')" || ok=1
  check "one MASQUERADE rule" 1 "$(ip netns exec "$H" iptables-save | grep -c -- '! -d 192.168.1.0/24 .*-j MASQUERADE')" || ok=1
  check "one bridge address" 1 "$(ip -n "$H" -4 -o addr show dev br-in | wc -l)" || ok=1
  pids=()
  for i in $(seq 16); do ip netns exec "$H" "$CFG/hooks/default/qemu-ifdown" "t$i" & pids+=($!); done
  bad=0; for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
  check "16 parallel ifdown hooks exit 0" 0 "$bad" || ok=1
  check "16 ifdown: the network is down" 0 "$(ip -n "$H" -o link show type bridge | wc -l)" || ok=1
  # qemu closes its taps after ifdown; then the host is as before.
  for i in $(seq 16); do ip -n "$H" link del "t$i"; done
  [ "$before" = "$(sandbox_snapshot)" ] || { say "the host differs after 16 ifdown"; diff <(echo "$before") <(sandbox_snapshot) >&2 || true; ok=1; }
  # 4 real qemu guests at the same moment
  local up=$CFG/hooks/default/qemu-ifup down=$CFG/hooks/default/qemu-ifdown
  boot_all "q1 vq1 52:54:00:bb:00:01 192.168.1.1/24 192.168.1.254 $up $down" "q2 vq2 52:54:00:bb:00:02 192.168.1.2/24 192.168.1.254 $up $down" \
    "q3 vq3 52:54:00:bb:00:03 192.168.1.3/24 192.168.1.254 $up $down" "q4 vq4 52:54:00:bb:00:04 192.168.1.4/24 192.168.1.254 $up $down" \
    && wait_ready q1 q2 q3 q4 || { say "the 4 guests did not start"; sandbox_destroy; return 1; }
  check "4 guests at once: 4 taps enslaved" 4 "$(ip -n "$H" -o link show master br-in | wc -l)" || ok=1
  check "4 guests at once: q1 → q4" yes "$(reach q1 192.168.1.4)" || ok=1
  stop q1 q2 q3 q4
  [ "$before" = "$(sandbox_snapshot)" ] || { say "the host differs after the 4 guests stopped"; ok=1; }
  kv undefine >/dev/null
  sandbox_destroy
  return $ok
}

part_crash() {
  local ok=0
  sandbox_create
  local before; before=$(sandbox_snapshot)
  # A SIGKILLed guest on a network brought up by `kvmnet up`: ifdown never runs.
  kv up nat >/dev/null
  local folder=$STATE/netns-$H/default
  boot k1 vk1 52:54:00:cc:00:01 192.168.1.1/24 192.168.1.254 "$folder/qemu-ifup" "$folder/qemu-ifdown"
  wait_ready k1
  kill -KILL "$(cat "$WORK/k1.pid")"; sleep 0.5
  kv status | grep -q "vk1 (gone" || { say "status does not show the killed guest's tap as gone"; ok=1; }
  kv down >/dev/null || { say "down after a SIGKILLed guest failed"; ok=1; }
  [ "$before" = "$(sandbox_snapshot)" ] || { say "the host differs after down"; ok=1; }
  # A tap a live process holds survives down, which names the pid.
  kv up isolated --taps 2 >/dev/null
  boot h1 vif1.0 52:54:00:cc:00:02 10.0.1.1/24 "" no no
  local msg st=0
  msg=$(kv down 2>&1) || st=$?
  check "down with a held tap fails" 1 "$st" || ok=1
  grep -q "vif1.0 is held by pid $(cat "$WORK/h1.pid")" <<<"$msg" || { say "down does not name the pid: $msg"; ok=1; }
  check "the held tap survives" yes "$(ip -n "$H" link show vif1.0 >/dev/null 2>&1 && echo yes || echo no)" || ok=1
  stop h1
  kv down >/dev/null || { say "down after the holder exited failed"; ok=1; }
  [ "$before" = "$(sandbox_snapshot)" ] || { say "the host differs after the second down"; ok=1; }
  sandbox_destroy
  return $ok
}

part_unprivileged() {
  local ok=0
  sandbox_create
  local before; before=$(sandbox_snapshot)
  kv up isolated --taps 2 --tap-owner nobody >/dev/null
  kv hooks --user | grep -q "ifname=vif1.0,script=no,downscript=no" || { say "hooks --user does not print the form"; ok=1; }
  chown nobody "$WORK"
  boot u1 vif1.0 52:54:00:dd:00:01 10.0.1.1/24 "" no no nobody
  boot u2 vif2.0 52:54:00:dd:00:02 10.0.1.2/24 "" no no nobody
  wait_ready u1 u2
  check "qemu runs as nobody" nobody "$(ps -o user= -p "$(cat "$WORK/u1.pid")" | tr -d ' ')" || ok=1
  check "unprivileged u1 → u2" yes "$(reach u1 10.0.1.2)" || ok=1
  stop u1 u2
  kv down >/dev/null || ok=1
  [ "$before" = "$(sandbox_snapshot)" ] || { say "the host differs after down"; ok=1; }
  chown root "$WORK"
  sandbox_destroy
  return $ok
}

for part in "${parts[@]}"; do
  say "$part"
  if "part_$part"; then passed=$((passed + 1)); say "$part: PASS"; else failed=$((failed + 1)); failures+=("$part"); say "$part: FAIL"; fi
done
echo "e2e-hooks: ${passed} passed, ${failed} failed${failures:+ (${failures[*]})}"
[ "$failed" -eq 0 ]
