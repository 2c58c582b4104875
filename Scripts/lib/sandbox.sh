# Shared by Scripts/e2e.sh and Scripts/demo.sh: a throwaway sandbox of two network namespaces,
# a pretend host whose eth0 is 10.241.96.176/24 with its default route via 10.241.96.1, and a
# pretend outside LAN holding 10.241.96.1 (the seed's addresses). Source it; set SANDBOX_ID first
# if you like. Nothing outside the two namespaces is touched.

SANDBOX_ID=${SANDBOX_ID:-$$}
H=kvmnet-host-$SANDBOX_ID
O=kvmnet-lan-$SANDBOX_ID
STATE=$(mktemp -d /tmp/kvmnet-state.XXXXXX)

# Stops only the qemu processes this sandbox started (their pidfiles are in its state folder).
stop_our_qemu() {
  local f pid
  for f in $(find "$STATE" -name '*.pid' 2>/dev/null); do
    pid=$(cat "$f" 2>/dev/null) || continue
    [ -n "$pid" ] && grep -qa -- "$STATE" "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  done
}

sandbox_destroy() {
  stop_our_qemu
  ip netns del "$H" 2>/dev/null || true
  ip netns del "$O" 2>/dev/null || true
}

sandbox_cleanup() { sandbox_destroy; rm -rf "$STATE"; }

sandbox_create() {
  ip netns add "$H"
  ip netns add "$O"
  ip -n "$H" link set lo up
  ip -n "$O" link set lo up
  ip -n "$H" link add eth0 address 02:00:0a:f1:60:b0 type veth peer name lan0 netns "$O"
  ip -n "$H" addr add 10.241.96.176/24 dev eth0
  ip -n "$H" link set eth0 up
  ip -n "$O" addr add 10.241.96.1/24 dev lan0
  ip -n "$O" link set lan0 up
  ip -n "$H" route add default via 10.241.96.1 dev eth0
  # Let IPv6 duplicate address detection settle, as it has on any real host.
  for _ in $(seq 50); do
    [ -z "$(ip -n "$H" -6 addr show tentative)$(ip -n "$O" -6 addr show tentative)" ] && break
    sleep 0.1
  done
}

# What has meaning in the host namespace; timers, counters, comments and handles dropped,
# and the empty built-in tables/chains iptables-nft registers on first use.
sandbox_snapshot() {
  {
    ip -n "$H" -d link show
    ip -n "$H" addr show
    ip -n "$H" route show table all
    ip -n "$H" -6 route show table all
    ip netns exec "$H" iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    ip netns exec "$H" nft list ruleset
    for k in net/ipv4/ip_forward net/ipv6/conf/all/forwarding net/ipv6/conf/eth0/disable_ipv6; do
      echo "$k=$(ip netns exec "$H" cat /proc/sys/$k)"
    done
  } | sed -E 's/[a-z_]+_timer +[0-9.]+//g; s/counter packets [0-9]+ bytes [0-9]+//; s/valid_lft [^ ]+ preferred_lft [^ ]+//' \
    | awk '
      # iptables-save: drop tables whose chains are all built-in ACCEPT without rules
      /^\*/ { tbl=$0; buf=""; keep=0; intable=1; next }
      intable && /^COMMIT/ { if (keep) print tbl "\n" buf "COMMIT"; intable=0; next }
      intable { buf = buf $0 "\n"; if ($0 !~ /^:[A-Z]+ ACCEPT $/ && $0 !~ /^:[A-Z]+ ACCEPT *$/) keep=1; next }
      { print }' \
    | awk '
      # nft: drop base chains with policy accept and no rules, then tables left empty
      /^table / { t=$0; tb=""; next }
      /^\tchain / { c=$0; cb=""; inchain=1; next }
      inchain && /^\t}/ { if (cb ~ /[^ \t\n]/) tb = tb c "\n" cb $0 "\n"; inchain=0; next }
      inchain { if ($0 !~ /type .* policy accept;$/) cb = cb $0 "\n"; next }
      /^}/ { if (tb != "") print t "\n" tb "}"; next }
      { print }' | grep -v '^[[:space:]]*$'
}

