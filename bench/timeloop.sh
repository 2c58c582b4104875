#!/usr/bin/env bash
# For Scripts/bench.sh's hook latency: runs CMD REPS times in the namespace it is started in
# (bench.sh starts it under `ip netns exec`, as qemu would run a hook there) and prints each
# run's wall time in microseconds, one a line. The timer is bash's $EPOCHREALTIME: no process
# is started to read the clock, so only CMD's own fork, exec and work are inside the interval.
# With a TAP, before each run (outside the interval) the tap is detached and brought down, so
# every run does the full ifup work as for a tap qemu just created.
#
# Usage: timeloop.sh REPS TAP|- CMD [ARG...]
set -euo pipefail
export LC_ALL=C   # '.' in $EPOCHREALTIME
reps=$1 tap=$2
shift 2
for ((i = 0; i < reps; i++)); do
  if [ "$tap" != - ]; then
    ip link set dev "$tap" nomaster
    ip link set dev "$tap" down
  fi
  t0=${EPOCHREALTIME/./}
  "$@" >/dev/null
  t1=${EPOCHREALTIME/./}
  echo $((t1 - t0))
done
