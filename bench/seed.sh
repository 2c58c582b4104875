#!/usr/bin/env bash
# The seed document's way, for Scripts/bench.sh: one process per `ip`/`iptables` call, in the
# network namespace it is run in (bench.sh runs it under `ip netns exec`). Same names and the
# same nat firewall rules as `kvmnet up nat`, but one iptables process per rule, and no `sleep 1`.
#
#   seed.sh up N        br-in + 192.168.1.254/24, N taps vifK.0 (add, master, up), rules, ip_forward
#   seed.sh down N      each tap `ip link del`, br-in, each rule deleted, ip_forward back to 0
#   seed.sh ifup TAP    the seed's qemu-ifup without its sleep: link up, then enslave
set -euo pipefail

bridge=br-in
net=192.168.1.0/24
c='-m comment --comment kvmnet:seed'

# Each line: table chain rule (word-split on purpose, as the seed's scripts do).
rules=(
  "filter SEED-FWD -i br-in -o br-in $c -j ACCEPT"
  "filter SEED-FWD -s $net -i br-in $c -j ACCEPT"
  "filter SEED-FWD -d $net -o br-in -m conntrack --ctstate RELATED,ESTABLISHED $c -j ACCEPT"
  "filter SEED-FWD -i br-in $c -j REJECT --reject-with icmp-port-unreachable"
  "filter SEED-FWD -o br-in $c -j REJECT --reject-with icmp-port-unreachable"
  "nat SEED-NAT -s $net -d 224.0.0.0/24 $c -j RETURN"
  "nat SEED-NAT -s $net -d 255.255.255.255/32 $c -j RETURN"
  "nat SEED-NAT -s $net ! -d $net $c -j MASQUERADE"
)

up() {
  local n=$1 k r
  ip link add "$bridge" type bridge
  ip link set "$bridge" up
  ip addr add 192.168.1.254/24 dev "$bridge"
  for k in $(seq 1 "$n"); do
    ip tuntap add "vif$k.0" mode tap
    ip link set "vif$k.0" master "$bridge"
    ip link set "vif$k.0" up
  done
  iptables -w -t filter -N SEED-FWD
  iptables -w -t nat -N SEED-NAT
  for r in "${rules[@]}"; do
    set -- $r
    iptables -w -t "$1" -A "${@:2}"
  done
  iptables -w -t filter -I FORWARD 1 $c -j SEED-FWD
  iptables -w -t nat -I POSTROUTING 1 $c -j SEED-NAT
  sysctl -q -w net.ipv4.ip_forward=1
}

down() {
  local n=$1 k r i
  for k in $(seq 1 "$n"); do
    ip link del "vif$k.0"
  done
  ip link del "$bridge"
  iptables -w -t filter -D FORWARD $c -j SEED-FWD
  iptables -w -t nat -D POSTROUTING $c -j SEED-NAT
  for ((i = ${#rules[@]} - 1; i >= 0; i--)); do
    set -- ${rules[i]}
    iptables -w -t "$1" -D "${@:2}"
  done
  iptables -w -t filter -X SEED-FWD
  iptables -w -t nat -X SEED-NAT
  sysctl -q -w net.ipv4.ip_forward=0
}

ifup() {
  ip link set "$1" up
  ip link set "$1" master "$bridge"
}

case ${1:-} in
  up|down) [ $# -eq 2 ] || { echo "usage: seed.sh up|down N" >&2; exit 64; }; "$1" "$2" ;;
  ifup) [ $# -eq 2 ] || { echo "usage: seed.sh ifup TAP" >&2; exit 64; }; ifup "$2" ;;
  *) echo "usage: seed.sh up|down N | ifup TAP" >&2; exit 64 ;;
esac
