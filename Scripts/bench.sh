#!/usr/bin/env bash
# Benchmark: kvmnet against the seed's way (one process per ip/iptables call, bench/seed.sh) and
# against a libnl floor (bench/nlref.c, one process, the fewest netlink round trips), in network
# namespaces this script creates and deletes (also on failure). Nothing outside them is touched.
#
# Measures, for N taps in 1 16 64 256 1023: `up nat --taps N` and `down` (median of 5; the seed
# way fewer at N >= 1023), the libnl teardown per device and as one link group; the hook latency
# (`kvmnet hook ifup TAP`, median of 50, against /bin/true and the seed's hook); `up nat --guests
# G` for G = 1, 2, 4 (median of 3). Prints a markdown table, led by the goals of issue 6 and
# whether this run meets them, and writes it to bench/results.md.
#
# Usage: sudo Scripts/bench.sh
# Env:   KVMNET              the binary (default KVMNET_SRC/.build/release/kvmnet, built there
#                            with `swift build -c release --static-swift-stdlib` when missing)
#        KVMNET_SRC          the kvmnet checkout to build it in (default: this checkout)
#        BENCH_SIZES         tap counts (default "1 16 64 256 1023")
#        BENCH_REPS          repetitions of up/down (default 5)
#        BENCH_SEED_BIG_REPS repetitions of the seed way for N >= 1023 (default 3)
#        BENCH_HOOK_REPS     hook calls (default 50)
#        BENCH_GUEST_REPS    repetitions of the guests case (default 3; 0 skips it)
#        BENCH_GUESTS        guest counts of the guests case (default "1 2 4"; 1 must be there)
#        BENCH_STRACE        1 (default when strace exists): syscall counts of one up/down/hook
#        BENCH_OUT           where the table goes besides stdout (default bench/results.md); with
#                            gnuplot installed, bench/plot.sh draws it beside (results.svg)
# Needs: root, gcc, pkg-config, libnl-route-3-dev (Scripts/setup.sh), iptables; qemu and the
# default guest (`kvmnet guest build`) for the guests case; strace optional.
set -euo pipefail
export LC_ALL=C   # '.' in $EPOCHREALTIME, plain sort
cd "$(dirname "$0")/.."
REPO=$PWD
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (creates network namespaces)" >&2; exit 77; }

KVMNET_SRC=${KVMNET_SRC:-$REPO}
KVMNET=${KVMNET:-$KVMNET_SRC/.build/release/kvmnet}
SIZES=(${BENCH_SIZES:-1 16 64 256 1023})
REPS=${BENCH_REPS:-5}
SEED_BIG_REPS=${BENCH_SEED_BIG_REPS:-3}
HOOK_REPS=${BENCH_HOOK_REPS:-50}
GUEST_REPS=${BENCH_GUEST_REPS:-3}
GUESTS=(${BENCH_GUESTS:-1 2 4})
if [ -z "${BENCH_STRACE:-}" ]; then
  if command -v strace >/dev/null; then BENCH_STRACE=1; else BENCH_STRACE=0; fi
fi
OUT=${BENCH_OUT:-$REPO/bench/results.md}
GROUP=4242

PREFIX=bench-$$
WORK=$(mktemp -d /tmp/kvmnet-bench.XXXXXX)
STATE=$WORK/state
LOG=$WORK/log
OUR_NS=()

say() { printf 'bench: %s\n' "$*" >&2; }

# Stops only qemu processes of our own state folder (their pidfiles, checked against the cmdline).
stop_our_qemu() {
  local f pid
  for f in $(find "$STATE" -name '*.pid' 2>/dev/null); do
    pid=$(cat "$f" 2>/dev/null) || continue
    if [ -n "$pid" ] && grep -qa -- "$STATE" "/proc/$pid/cmdline" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

cleanup() {
  set +e
  stop_our_qemu
  local ns
  for ns in "${OUR_NS[@]}" $(ip netns list | awk -v p="$PREFIX-" 'index($1, p) == 1 { print $1 }'); do
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { say "FAILED: $*"; [ -s "$LOG" ] && tail -20 "$LOG" >&2; exit 1; }

# new_ns NAME: creates $PREFIX-NAME with lo up and iptables' tables registered (so no tool pays
# for the first use of a table); prints nothing, sets NS.
new_ns() {
  NS=$PREFIX-$1
  ip netns add "$NS"
  OUR_NS+=("$NS")
  ip -n "$NS" link set lo up
  local t
  for t in filter nat; do
    ip netns exec "$NS" iptables -w -t "$t" -N BENCH-WARM
    ip netns exec "$NS" iptables -w -t "$t" -X BENCH-WARM
  done
}
del_ns() {
  ip netns del "$1"
  local keep=() n
  for n in "${OUR_NS[@]}"; do [ "$n" = "$1" ] || keep+=("$n"); done
  OUR_NS=("${keep[@]}")
}

# timed CMD...: runs CMD (output to the log), sets ELAPSED in microseconds. One timer throughout:
# bash's $EPOCHREALTIME, read without starting a process.
timed() {
  local t0 t1
  t0=${EPOCHREALTIME/./}
  "$@" >>"$LOG" 2>&1 || fail "$*"
  t1=${EPOCHREALTIME/./}
  ELAPSED=$((t1 - t0))
}

# expect_links NS N: br-in with N ports and nothing else but lo (N = -1: only lo).
expect_links() {
  local total ports
  total=$(ip -n "$1" -o link show | wc -l)
  if [ "$2" -lt 0 ]; then
    [ "$total" -eq 1 ] || fail "$1: expected only lo, found $total links"
    return
  fi
  ports=$(ip -n "$1" -o link show master br-in | grep -c '[<,]UP[,>]' || true)
  [ "$total" -eq $(($2 + 2)) ] || fail "$1: expected $(($2 + 2)) links, found $total"
  [ "$ports" -eq "$2" ] || fail "$1: expected $2 ports on br-in, found $ports"
}

declare -A SAMPLES
add() { SAMPLES[$1]="${SAMPLES[$1]:-} $2"; }

# median KEY: median in microseconds of the samples (mean of the middle two for an even count).
median() {
  tr ' ' '\n' <<<"${SAMPLES[$1]:-}" | { grep . || true; } | sort -n | awk '
    { v[NR] = $1 } END { if (NR == 0) { print ""; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
count() { tr ' ' '\n' <<<"${SAMPLES[$1]:-}" | grep -c . || true; }
ms() { [ -n "$1" ] && awk -v u="$1" 'BEGIN { x = u / 1000; if (x < 10) printf "%.2f", x; else if (x < 100) printf "%.1f", x; else printf "%.0f", x }' || printf -- '–'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f×", a / b; else printf "–" }' || printf -- '–'; }
# q A B: A / B with two decimals (empty when either is missing).
q() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; fi; }
paired() { # KEY: median of per-repetition ratios stored in thousandths
  local v; v=$(q "$(median "$1")" 1000)
  [ -n "$v" ] && printf '%s×' "$v" || printf -- '–'
}
growth() { # KEY-prefix: log(t1023/t64)/log(1023/64) over the measured sizes
  local a b
  a=$(median "$1,64"); b=$(median "$1,1023")
  [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", log(b / a) / log(1023 / 64) }' || printf -- '–'
}

# ---------------------------------------------------------------------------------------------
# Preparation
if [ ! -x "$KVMNET" ]; then
  say "building kvmnet in $KVMNET_SRC (release)"
  (cd "$KVMNET_SRC" && swift build -c release --static-swift-stdlib) >&2
fi
[ -x "$KVMNET" ] || fail "no kvmnet at $KVMNET"
# One run measures one build: a copy, so a rebuild in KVMNET_SRC meanwhile changes nothing here.
KVMNET_ORIG=$KVMNET
KVMNET_BUILT=$(date -u -r "$KVMNET" '+%Y-%m-%d %H:%M UTC')
KVMNET_HEAD=$(git -C "$KVMNET_SRC" rev-parse --short HEAD 2>/dev/null || echo '?')
cp "$KVMNET" "$WORK/kvmnet"
KVMNET=$WORK/kvmnet
command -v gcc >/dev/null && pkg-config --exists libnl-route-3.0 \
  || fail "needs gcc, pkg-config and libnl-route-3-dev (Scripts/setup.sh installs the last two)"
NLREF=$WORK/nlref
gcc -O2 -Wall -Wextra -Werror -o "$NLREF" bench/nlref.c $(pkg-config --cflags --libs libnl-route-3.0)
SEED=$REPO/bench/seed.sh
TIMELOOP=$REPO/bench/timeloop.sh
mkdir -p "$STATE"
kv() { "$KVMNET" --netns "$1" --state-dir "$STATE" "${@:2}"; }

say "kvmnet $KVMNET_ORIG ($("$KVMNET" --version), built $KVMNET_BUILT); sizes ${SIZES[*]}; $REPS reps; log $LOG"
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# up/down for N taps. The tools take turns within each repetition (so background load falls on
# all of them alike); each tool has its own namespace for one N, reused across repetitions
# (every down must leave only lo, checked outside the timed part).
for n in "${SIZES[@]}"; do
  reps_seed=$REPS
  [ "$n" -ge 1023 ] && [ "$SEED_BIG_REPS" -lt "$REPS" ] && reps_seed=$SEED_BIG_REPS
  new_ns "kv-$n"; ns_kv=$NS
  new_ns "seed-$n"; ns_seed=$NS
  new_ns "nl-$n"; ns_nl=$NS
  for ((r = 1; r <= REPS; r++)); do
    say "N=$n rep $r/$REPS"
    timed kv "$ns_kv" up nat --taps "$n"; add "kv,up,$n" $ELAPSED; kvup=$ELAPSED
    expect_links "$ns_kv" "$n"
    timed kv "$ns_kv" down; add "kv,down,$n" $ELAPSED; kvdown=$ELAPSED
    expect_links "$ns_kv" -1

    if [ "$r" -le "$reps_seed" ]; then
      timed ip netns exec "$ns_seed" bash "$SEED" up "$n"; add "seed,up,$n" $ELAPSED
      expect_links "$ns_seed" "$n"
      timed ip netns exec "$ns_seed" bash "$SEED" down "$n"; add "seed,down,$n" $ELAPSED
      expect_links "$ns_seed" -1
    fi

    timed "$NLREF" --netns "$ns_nl" up "$n" --group $GROUP; add "nl,up,$n" $ELAPSED
    add "pair,up,$n" $((kvup * 1000 / ELAPSED))
    expect_links "$ns_nl" "$n"
    timed "$NLREF" --netns "$ns_nl" down "$n"; add "nl,down,$n" $ELAPSED
    expect_links "$ns_nl" -1
    timed "$NLREF" --netns "$ns_nl" up "$n" --group $GROUP; add "nl,up,$n" $ELAPSED
    expect_links "$ns_nl" "$n"
    timed "$NLREF" --netns "$ns_nl" down "$n" --group $GROUP; add "nlg,down,$n" $ELAPSED
    add "pair,down,$n" $((kvdown * 1000 / ELAPSED))
    expect_links "$ns_nl" -1
    # As kvmnet does it: the bridge in the taps' group, deleted with them.
    "$NLREF" --netns "$ns_nl" up "$n" --group $GROUP --bridge-in-group >>"$LOG" 2>&1 || fail "nlref up --bridge-in-group"
    timed "$NLREF" --netns "$ns_nl" down "$n" --group $GROUP --bridge-in-group; add "nlb,down,$n" $ELAPSED
    expect_links "$ns_nl" -1
  done
  del_ns "$ns_kv"; del_ns "$ns_seed"; del_ns "$ns_nl"
done

# ---------------------------------------------------------------------------------------------
# Fixed costs: starting processes, and kvmnet's firewall transaction on its own.
say "fixed costs"
new_ns fixed; ns_fx=$NS
# kvmnet's firewall transaction as its dry run in such a namespace shows it (iptables-restore or
# nft -f, whichever backend it picks), run on its own; each run in a fresh namespace (not timed).
RULES=$WORK/rules
kv "$ns_fx" up nat --dry-run 2>>"$LOG" >"$WORK/dryrun" || fail "up nat --dry-run"
FWCMD=$(awk '/ <<EOF$/ { sub(/ <<EOF$/, ""); print; exit }' "$WORK/dryrun")
awk '/ <<EOF$/ { on = 1; next } /^EOF$/ { if (on) exit } on' "$WORK/dryrun" >"$RULES"
[ -n "$FWCMD" ] && [ -s "$RULES" ] || fail "no firewall transaction in kvmnet's dry run"
for ((r = 1; r <= REPS * 4; r++)); do
  timed /bin/true; add "true" $ELAPSED
  timed "$KVMNET" --version; add "kvversion" $ELAPSED
  timed ip netns exec "$ns_fx" /bin/true; add "nsexec" $ELAPSED
done
fw() { ip netns exec "$1" $FWCMD <"$RULES"; }
for ((r = 1; r <= REPS; r++)); do
  new_ns "fw"
  timed fw "$NS"; add "restore" $ELAPSED
  del_ns "$NS"
  timed kv "$ns_fx" up nat; add "kv,up,0" $ELAPSED
  timed kv "$ns_fx" down; add "kv,down,0" $ELAPSED
  expect_links "$ns_fx" -1
done
del_ns "$ns_fx"

# ---------------------------------------------------------------------------------------------
# Hook latency: a tap created outside kvmnet (as qemu creates it), detached and down before each
# call; every command started the same way, by bash inside the namespace (bench/timeloop.sh).
say "hook latency ($HOOK_REPS calls each)"
new_ns hook; ns_hk=$NS
kv "$ns_hk" up nat >>"$LOG" 2>&1 || fail "up nat for the hook"
ip -n "$ns_hk" tuntap add benchtap0 mode tap
IFUP=$STATE/netns-$ns_hk/default/qemu-ifup
[ -x "$IFUP" ] || fail "no hook script at $IFUP"
loop() { # KEY TAP|- CMD...
  local key=$1 v
  shift
  for v in $(ip netns exec "$ns_hk" bash "$TIMELOOP" "$HOOK_REPS" "$@" 2>>"$LOG") ; do add "$key" "$v"; done
  [ "$(count "$key")" -eq "$HOOK_REPS" ] || fail "hook loop $key"
}
loop "hook,true" - /bin/true
loop "hook,kv" benchtap0 "$KVMNET" --state-dir "$STATE" hook ifup benchtap0 --name default
loop "hook,kvscript" benchtap0 "$IFUP" benchtap0
loop "hook,seed" benchtap0 bash "$SEED" ifup benchtap0
ip -n "$ns_hk" -o link show benchtap0 | grep -q 'master br-in' || fail "the hook did not enslave benchtap0"
kv "$ns_hk" down >>"$LOG" 2>&1 || fail "down after the hook"
del_ns "$ns_hk"

# ---------------------------------------------------------------------------------------------
# Syscall counts of one run each (strace -f -b execve -c: kvmnet's own threads; a child is
# dropped at its exec, so the dnsmasq that `up` leaves running is not waited for; counts only,
# strace's own times are not used).
if [ "$BENCH_STRACE" = 1 ]; then
  say "syscall counts (strace)"
  new_ns strace; ns_st=$NS
  sc() { # KEY CMD...: strace -c summary into SC[KEY,syscall]
    local key=$1 f=$WORK/strace.$1
    shift
    strace -f -b execve -qq -c -o "$f" "$@" >>"$LOG" 2>&1 || fail "strace $*"
    awk -v k="$key" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
      print k "," $NF " " $4 }' "$f" >>"$WORK/sc"
  }
  sc "up64" "$KVMNET" --netns "$ns_st" --state-dir "$STATE" up nat --taps 64
  sc "down64" "$KVMNET" --netns "$ns_st" --state-dir "$STATE" down
  sc "up256" "$KVMNET" --netns "$ns_st" --state-dir "$STATE" up nat --taps 256
  sc "down256" "$KVMNET" --netns "$ns_st" --state-dir "$STATE" down
  kv "$ns_st" up nat >>"$LOG" 2>&1
  ip -n "$ns_st" tuntap add benchtap0 mode tap
  sc "hook" "$KVMNET" --netns "$ns_st" --state-dir "$STATE" hook ifup benchtap0 --name default
  kv "$ns_st" down >>"$LOG" 2>&1
  del_ns "$ns_st"
fi
scount() { awk -v k="$1,$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$WORK/sc" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------------------------------------
# Guests: wall time of `up nat --guests G` (kvmnet returns once every guest has configured its
# network), then `down`.
GUEST_NOTE=""
if [ "$GUEST_REPS" -gt 0 ]; then
  if "$KVMNET" guest build >>"$LOG" 2>&1; then
    ACCEL=tcg
    if [ -r /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; fi
    for ((r = 1; r <= GUEST_REPS; r++)); do
      for g in "${GUESTS[@]}"; do
        say "guests: $g, rep $r/$GUEST_REPS ($ACCEL)"
        new_ns "g$g"; ns_g=$NS
        timed kv "$ns_g" up nat --guests "$g"; add "guests,up,$g" $ELAPSED
        kv "$ns_g" status >>"$LOG" 2>&1 || fail "status after up --guests $g"
        timed kv "$ns_g" down; add "guests,down,$g" $ELAPSED
        expect_links "$ns_g" -1
        del_ns "$ns_g"
      done
    done
  else
    GUEST_NOTE="skipped: \`kvmnet guest build\` failed (see its output)"
    say "guests case $GUEST_NOTE"
  fi
else
  GUEST_NOTE="skipped (BENCH_GUEST_REPS=0)"
fi

# ---------------------------------------------------------------------------------------------
# The report
# goal WHAT VALUE OP LIMIT UNIT: one row of the goals table (VALUE empty: not measured).
goal() {
  local met
  if [ -z "$2" ]; then met="not measured"
  else met=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { ok = (op == "<=") ? v <= l : v >= l; print ok ? "yes" : "**no**" }'); fi
  echo "| $1 | $([ -n "$2" ] && echo "$2$5" || echo "–") | $3 $4$5 | $met |"
}
goals() {
  local n=256 cores; cores=$(nproc)
  echo "## goals (issue 6) in this run"
  echo
  echo "| what | measured | goal | met |"
  echo "|---|---:|---:|---|"
  local pu pd
  pu=$(median "pair,up,$n"); pd=$(median "pair,down,$n")
  goal "\`up nat --taps $n\` / libnl floor (paired)" "$(q "$pu" 1000)" "<=" 1.5 "×"
  goal "seed / kvmnet, up $n" "$(q "$(median "seed,up,$n")" "$(median "kv,up,$n")")" ">=" 10 "×"
  goal "\`down\` of it / libnl group delete (paired)" "$(q "$pd" 1000)" "<=" 1.5 "×"
  goal "seed / kvmnet, down $n" "$(q "$(median "seed,down,$n")" "$(median "kv,down,$n")")" ">=" 30 "×"
  local hk ht
  hk=$(median hook,kv); ht=$(median hook,true)
  goal "\`hook ifup\` − \`/bin/true\`" "$([ -n "$hk" ] && [ -n "$ht" ] && awk -v a="$hk" -v b="$ht" 'BEGIN { printf "%.2f", (a - b) / 1000 }')" "<=" 8 " ms"
  goal "growth 64→1023, up" "$(growth kv,up | tr -d '–')" "<=" 1.1 ""
  goal "growth 64→1023, down" "$(growth kv,down | tr -d '–')" "<=" 1.1 ""
  if [ -z "$GUEST_NOTE" ]; then
    local g
    for g in "${GUESTS[@]}"; do
      [ "$g" -eq 1 ] && continue
      local limit=$(( (g + cores - 1) / cores ))
      [ "$g" -eq 2 ] && [ "$cores" -ge 2 ] && limit=1.3
      goal "$g guests / 1 guest (up)" "$(q "$(median "guests,up,$g")" "$(median guests,up,1)")" "<=" "$limit" "×"
    done
  fi
  echo
}
report() {
  local n
  echo "# kvmnet benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs, load at start $START_LOAD;"
  echo "kvmnet $("$KVMNET" --version | awk '{ print $NF }'): $KVMNET_ORIG built $KVMNET_BUILT (its checkout's HEAD at the start: $KVMNET_HEAD)."
  echo "Times in ms, medians. Each tool has a network namespace of its own per N (reused across its"
  echo "runs; each down must leave only lo); one timer throughout (bash \`\$EPOCHREALTIME\`)."
  echo "kvmnet: \`kvmnet --netns NS up nat --taps N\` / \`down\`."
  echo "seed: \`ip netns exec NS bash bench/seed.sh up|down N\` (one process per ip/iptables call)."
  echo "libnl: \`bench/nlref.c\`, link work only (no firewall, no sysctl), in one process."
  echo
  goals
  echo "## up (bridge + address + N taps, enslaved and up; kvmnet and seed also firewall + ip_forward)"
  echo
  echo "| N | kvmnet | seed | libnl floor | kvmnet / libnl | same, paired | seed / kvmnet | runs (kv/seed/libnl) |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---|"
  for n in "${SIZES[@]}"; do
    local k s l
    k=$(median "kv,up,$n"); s=$(median "seed,up,$n"); l=$(median "nl,up,$n")
    echo "| $n | $(ms "$k") | $(ms "$s") | $(ms "$l") | $(ratio "$k" "$l") | $(paired "pair,up,$n") | $(ratio "$s" "$k") | $(count "kv,up,$n")/$(count "seed,up,$n")/$(count "nl,up,$n") |"
  done
  echo "| growth 64→1023 | $(growth kv,up) | $(growth seed,up) | $(growth nl,up) | | | | |"
  echo
  echo "## down"
  echo
  echo "| N | kvmnet | seed | libnl per device | libnl group delete | libnl, bridge in the group | kvmnet / libnl per device | kvmnet / libnl group | same, paired | kvmnet / libnl bridge in group | seed / kvmnet |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for n in "${SIZES[@]}"; do
    local k s l g b
    k=$(median "kv,down,$n"); s=$(median "seed,down,$n"); l=$(median "nl,down,$n"); g=$(median "nlg,down,$n"); b=$(median "nlb,down,$n")
    echo "| $n | $(ms "$k") | $(ms "$s") | $(ms "$l") | $(ms "$g") | $(ms "$b") | $(ratio "$k" "$l") | $(ratio "$k" "$g") | $(paired "pair,down,$n") | $(ratio "$k" "$b") | $(ratio "$s" "$k") |"
  done
  echo "| growth 64→1023 | $(growth kv,down) | $(growth seed,down) | $(growth nl,down) | $(growth nlg,down) | $(growth nlb,down) | | | | | |"
  echo
  echo "Growth is log(t1023/t64)/log(1023/64): 1 is linear in N. \"paired\": the median of the ratios"
  echo "within each repetition (kvmnet and libnl run one after the other), steadier than a ratio of medians."
  local big=0
  for n in "${SIZES[@]}"; do [ "$n" -ge 1023 ] && big=1; done
  if [ "$big" = 1 ] && [ "$SEED_BIG_REPS" -lt "$REPS" ]; then
    echo "The seed way ran $SEED_BIG_REPS times instead of $REPS for N ≥ 1023 (it is the slowest by far there)."
  fi
  echo "libnl up is the median of $((2 * REPS)) runs (one before each of two teardown variants)."
  echo "libnl group delete: the taps by one group request, then br-in (issue 6's floor); bridge in the"
  echo "group: br-in joined the group too and goes in the same request, as kvmnet does it."
  echo
  echo "## fixed costs"
  echo
  echo "| what | ms |"
  echo "|---|---:|"
  echo "| start \`/bin/true\` | $(ms "$(median true)") |"
  echo "| start \`kvmnet --version\` | $(ms "$(median kvversion)") |"
  echo "| \`ip netns exec NS /bin/true\` | $(ms "$(median nsexec)") |"
  echo "| \`ip netns exec NS $FWCMD\` of kvmnet's nat firewall (from its dry run) | $(ms "$(median restore)") |"
  echo "| \`kvmnet up nat\` (no taps) | $(ms "$(median kv,up,0)") |"
  echo "| \`kvmnet down\` of it | $(ms "$(median kv,down,0)") |"
  echo
  echo "## hook latency (median of $HOOK_REPS; started by bash inside the namespace, as qemu would)"
  echo
  echo "| hook | ms | / \`/bin/true\` |"
  echo "|---|---:|---:|"
  local t; t=$(median hook,true)
  echo "| \`/bin/true\` | $(ms "$t") | 1.0× |"
  echo "| \`kvmnet hook ifup TAP --name default\` | $(ms "$(median hook,kv)") | $(ratio "$(median hook,kv)" "$t") |"
  echo "| kvmnet's generated \`qemu-ifup TAP\` (sh + exec kvmnet) | $(ms "$(median hook,kvscript)") | $(ratio "$(median hook,kvscript)" "$t") |"
  echo "| seed hook: \`bash seed.sh ifup TAP\` (ip link set up; ip link set master; no sleep) | $(ms "$(median hook,seed)") | $(ratio "$(median hook,seed)" "$t") |"
  echo
  echo "## guests (\`kvmnet up nat --guests G\`, returns when every guest is reachable; median of $GUEST_REPS)"
  echo
  if [ -n "$GUEST_NOTE" ]; then
    echo "$GUEST_NOTE"
  else
    echo "| guests | up (ms) | down (ms) | up / 1 guest | goal: at most ⌈G / $(nproc) cores⌉ boots | accel |"
    echo "|---:|---:|---:|---:|---:|---|"
    local g
    for g in "${GUESTS[@]}"; do
      echo "| $g | $(ms "$(median guests,up,$g)") | $(ms "$(median guests,down,$g)") | $(ratio "$(median guests,up,$g)" "$(median guests,up,1)") | $(( (g + $(nproc) - 1) / $(nproc) ))$([ "$g" -eq 2 ] && echo " (issue: 1.3)") | $ACCEL |"
    done
  fi
  if [ "$BENCH_STRACE" = 1 ]; then
    echo
    echo "## syscalls of one kvmnet run (strace -f -b execve -c: its own threads, not the programs it runs; counts)"
    echo
    echo "| run | fsync | rename | openat | newfstatat | getdents64 | sendmsg | recvmsg | execve | wait4 |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    local run c
    for run in up64 down64 up256 down256 hook; do
      printf '| %s ' "$run"
      for c in fsync rename openat newfstatat getdents64 sendmsg recvmsg execve wait4; do printf '| %s ' "$(scount "$run" "$c")"; done
      echo "|"
    done
  fi
}
report >"$WORK/results.md"
cat "$WORK/results.md"
cp "$WORK/results.md" "$OUT"
say "table written to $OUT"
if command -v gnuplot >/dev/null; then
  bench/plot.sh "$OUT" "${OUT%.md}.svg" >&2 || say "the plot failed (the table stands)"
else
  say "no plot: gnuplot is not installed (apt-get install gnuplot-nox)"
fi
