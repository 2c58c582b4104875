#!/usr/bin/env bash
# End-to-end check of kvmnet's default guest, without kvmnet itself.
#
# usage: Scripts/guest-smoke.sh [CACHE_BASE]      (as root)
#
#  1. builds the guest with the script embedded in GuestBuildScript.swift into CACHE_BASE
#     (default: a temporary folder, removed afterwards);
#  2. creates its own network namespace with a bridge (192.168.77.254/24) and two taps;
#  3. boots guest01 (192.168.77.1, mtu 1400) and guest02 (192.168.77.2) in parallel there
#     under qemu TCG, and waits for their "kvmnet-guest-ready NAME" lines;
#  4. runs commands in guest01 through its serial console (ping guest02, ...);
#  5. fetches guest02's page with busybox wget from the namespace's bridge address;
#  6. powers both off with QMP system_powerdown and checks that qemu exits.
# A trap kills the qemu processes it started (by pid) and deletes the namespace on any exit.
#
# Environment: GUEST_SMOKE_QEMU_EXTRA  extra qemu arguments (word-split), for experiments.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
swift_file=$here/../Sources/KVMNetLinux/Guest/GuestBuildScript.swift

. "$here/lib/smoke.sh"
smoke_init guest-smoke qemu-system-x86_64 ip python3 busybox awk

# ---- 1. build ----------------------------------------------------------------------------
[ -f "$swift_file" ] || die "missing $swift_file"
extract "$swift_file" "$work/guest-build.sh"
cache=${1:-$work/cache}
t0=$(ms_now)
guest=$(bash "$work/guest-build.sh" "$cache" | tail -n1) || die "guest build failed"
say "guest: $guest (build/lookup $(( $(ms_now) - t0 )) ms)"
[ -s "$guest/vmlinuz" ] && [ -s "$guest/initrd.img" ] || die "build printed $guest without vmlinuz/initrd.img"

# ---- helper: serial console exec and QMP ---------------------------------------------------
cat >"$work/console.py" <<'PY'
"""serial console exec and QMP commands for the kvmnet guest smoke test.

exec SOCKET TIMEOUT COMMAND  -> prints COMMAND's output, exits with its status (124: timeout)
send SOCKET TEXT             -> types TEXT and a newline on the console, reads nothing
qmp SOCKET COMMAND           -> runs a QMP command without arguments, prints the reply
"""
import json, os, re, socket, sys, time

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s

def read_until(s, buf, pattern, deadline):
    """Reads into buf until pattern (a compiled bytes regex) matches; returns (match, buf)."""
    while True:
        m = pattern.search(buf)
        if m:
            return m, buf
        left = deadline - time.monotonic()
        if left <= 0:
            return None, buf
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return None, buf
        if not chunk:
            return None, buf
        buf += chunk

def serial_exec(path, timeout, command):
    tag = os.urandom(4).hex()
    line = ("echo KVMNET_BEGIN''_{t}; ( {c} ) </dev/null 2>&1; echo KVMNET_END''_{t}_$?\n"
            .format(t=tag, c=command))
    # busybox lineedit keeps at most 1023 bytes of a line and silently cuts the rest, which
    # can leave an open quote; stay well below.
    if "\n" in command or len(line.encode()) > 1000:
        sys.exit("console: the command must be one line; with the markers at most 1000 bytes")
    s = connect(path)
    buf = b""
    # Sync: the shell may not be reading yet (just respawned, or still booting). Send a
    # harmless marker line until it answers; only then send the real command, once.
    # The marker is split by '' in what we type, so the tty's echo never matches it.
    # From the second attempt on, a Ctrl-C first clears a half-typed line, an open quote or a
    # command left running by an earlier timed-out call.
    for attempt in range(20):
        if attempt:
            s.sendall(b"\x03")
        s.sendall(b"echo KVMNET_SYNC''_%s_%d\n" % (tag.encode(), attempt))
        m, buf = read_until(s, buf, re.compile(rb"KVMNET_SYNC_%s_%d\r?\n" % (tag.encode(), attempt)),
                            time.monotonic() + 1.5)
        if m:
            break
    else:
        sys.exit("console: no answer from the shell on %s" % path)
    buf = b""
    s.sendall(line.encode())
    deadline = time.monotonic() + timeout
    begin, buf = read_until(s, buf, re.compile(rb"KVMNET_BEGIN_%s\r?\n" % tag.encode()), deadline)
    if not begin:
        sys.stderr.write("console: no begin marker\n")
        sys.exit(124)
    end, buf = read_until(s, buf, re.compile(rb"KVMNET_END_%s_(\d+)\r?\n" % tag.encode()), deadline)
    if not end:
        sys.stdout.write(buf[begin.end():].decode(errors="replace").replace("\r", ""))
        sys.stderr.write("console: timed out after %ss\n" % timeout)
        sys.exit(124)
    out = buf[begin.end():end.start()].decode(errors="replace").replace("\r", "")
    sys.stdout.write(out)
    s.close()
    sys.exit(int(end.group(1)))

def send(path, text):
    s = connect(path)
    s.sendall(text.encode() + b"\n")
    s.close()

def qmp(path, command):
    s = connect(path)
    f = s.makefile("rwb", buffering=0)
    def call(cmd):
        f.write(json.dumps({"execute": cmd}).encode() + b"\n")
        while True:
            reply = json.loads(f.readline())
            if "return" in reply or "error" in reply:
                return reply
    json.loads(f.readline())  # greeting
    call("qmp_capabilities")
    reply = call(command)
    print(json.dumps(reply))
    sys.exit(0 if "return" in reply else 1)

if __name__ == "__main__":
    if sys.argv[1] == "exec":
        serial_exec(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "qmp":
        qmp(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
PY
console() { python3 "$work/console.py" "$@"; }
nsx() { ip netns exec "$ns" "$@"; }

# ---- 2. namespace, bridge, taps ----------------------------------------------------------
ip netns add "$ns"
ns_created=1
nsx ip link set lo up
nsx ip link add br0 type bridge
nsx ip addr add 192.168.77.254/24 dev br0
nsx ip link set br0 up
for i in 1 2; do
  nsx ip tuntap add dev tap$i mode tap
  nsx ip link set tap$i master br0
  nsx ip link set tap$i up
done

# ---- 3. boot two guests in parallel ------------------------------------------------------
read -r -a extra <<<"${GUEST_SMOKE_QEMU_EXTRA:-}"
boot() { # NAME TAP MAC APPEND
  local name=$1 d=$work/$1
  mkdir -p "$d"
  # ip netns exec execs qemu in place (no fork), so $! is qemu's pid; checked below.
  ip netns exec "$ns" qemu-system-x86_64 \
    -name "$name" -accel tcg -machine pc -smp 1 -m 128 \
    -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$guest/vmlinuz" -initrd "$guest/initrd.img" \
    -append "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check cryptomgr.notests $4" \
    -chardev "socket,id=ser0,path=$d/serial.sock,server=on,wait=off,logfile=$work/$name.serial.log" \
    -serial chardev:ser0 \
    -qmp "unix:$d/qmp.sock,server=on,wait=off" \
    -netdev "tap,id=n0,ifname=$2,script=no,downscript=no" \
    -device "virtio-net-pci,netdev=n0,mac=$3,romfile=" \
    -pidfile "$d/qemu.pid" "${extra[@]}" \
    </dev/null >"$d/qemu.out" 2>&1 &
  pids+=($!)
}
t_start=$(ms_now)
boot guest01 tap1 52:54:00:77:00:01 "kvmnet.name=guest01 kvmnet.ip=192.168.77.1/24 kvmnet.gw=192.168.77.254 kvmnet.mtu=1400"
boot guest02 tap2 52:54:00:77:00:02 "kvmnet.name=guest02 kvmnet.ip=192.168.77.2/24"
qemu_pid_guest01=${pids[0]}
qemu_pid_guest02=${pids[1]}
for g in guest01 guest02; do
  eval "p=\$qemu_pid_$g"
  for i in $(seq 1 100); do [ -s "$work/$g/qemu.pid" ] && break; sleep 0.02; done
  [ "$(cat "$work/$g/qemu.pid" 2>/dev/null)" = "$p" ] || die "$g: qemu pid is not $p ($(cat "$work/$g/qemu.out"))"
done

# ---- 4. wait for the ready lines ---------------------------------------------------------
declare -A ready_ms=()
while [ ${#ready_ms[@]} -lt 2 ]; do
  for g in guest01 guest02; do
    [ -z "${ready_ms[$g]:-}" ] || continue
    log=$work/$g.serial.log
    if [ -f "$log" ] && grep -aq "^kvmnet-guest-failed $g" "$log"; then
      die "$g: $(grep -a '^kvmnet-guest-failed' "$log" | tr -d '\r')"
    fi
    if [ -f "$log" ] && grep -aq "^kvmnet-guest-ready $g" "$log"; then
      ready_ms[$g]=$(( $(ms_now) - t_start ))
      say "$g ready after ${ready_ms[$g]} ms"
    fi
  done
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || die "qemu $p exited early: $(cat "$work"/*/qemu.out)"; done
  [ $(( $(ms_now) - t_start )) -lt 60000 ] || die "guests not ready after 60 s"
  sleep 0.05
done

# ---- 5. serial console exec --------------------------------------------------------------
check_exec() { # EXPECTED_STATUS GUEST COMMAND
  local want=$1 g=$2 cmd=$3 out rc=0
  out=$(console exec "$work/$g/serial.sock" 20 "$cmd") || rc=$?
  say "$g\$ $cmd -> status $rc"
  printf '%s\n' "$out" | sed 's/^/    /' >&2
  [ "$rc" -eq "$want" ] || die "$g: '$cmd' exited $rc, expected $want"
  last_out=$out
}
check_exec 0 guest01 "hostname"
[ "$last_out" = guest01 ] || die "guest01 hostname is '$last_out'"
check_exec 0 guest01 "cat /sys/class/net/eth0/mtu; ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*'; ip route | grep -o '^default via [0-9.]*'"
[ "$last_out" = $'1400\ninet 192.168.77.1/24\ndefault via 192.168.77.254' ] || die "guest01 network is not as configured"
check_exec 0 guest01 "ping -c1 -W2 192.168.77.2"
check_exec 1 guest01 "ping -c1 -W1 192.168.77.99 >/dev/null"
check_exec 3 guest01 "echo 'no newline at the end'; printf x; exit 3"
long=$(printf '%0900d' 0)
check_exec 0 guest01 "echo $long | wc -c"
[ "$last_out" = 901 ] || die "a 900-character argument came back as $last_out characters"
# The console shell exits; init respawns it and the next exec syncs with the new shell.
console send "$work/guest01/serial.sock" "exit"
check_exec 0 guest01 "hostname"
[ "$(grep -ac 'built-in shell (ash)' "$work/guest01.serial.log")" -ge 2 ] || die "guest01's console shell was not respawned"
# A line that busybox would cut (leaving the open quote of the end marker) must be refused...
console exec "$work/guest01/serial.sock" 5 "echo $(printf '%01000d' 0)" >/dev/null 2>&1 \
  && die "console.py accepted a line longer than busybox keeps"
# ...and one typed anyway is recovered from by the Ctrl-C of the next sync.
console send "$work/guest01/serial.sock" "echo '$(printf '%01100d' 0)'"
check_exec 0 guest01 "wget -qO- http://192.168.77.2/"
[ "$last_out" = guest02 ] || die "guest02's page seen from guest01 is '$last_out'"

# ---- 6. guest02's page from the namespace's host side ------------------------------------
page=$(nsx timeout 10 busybox wget -Y off -qO- http://192.168.77.2/) || die "wget http://192.168.77.2/ failed"
[ "$page" = guest02 ] || die "guest02's page is '$page', expected 'guest02'"
say "host side: http://192.168.77.2/ -> $page"

# ---- 7. power off with QMP ---------------------------------------------------------------
declare -A off_ms=() off_t0=()
for g in guest01 guest02; do
  off_t0[$g]=$(ms_now)
  console qmp "$work/$g/qmp.sock" system_powerdown >/dev/null || die "$g: QMP system_powerdown failed"
done
while [ ${#off_ms[@]} -lt 2 ]; do
  for g in guest01 guest02; do
    [ -z "${off_ms[$g]:-}" ] || continue
    eval "p=\$qemu_pid_$g"
    if ! kill -0 "$p" 2>/dev/null; then
      off_ms[$g]=$(( $(ms_now) - off_t0[$g] ))
      wait "$p" || die "$g: qemu exited with status $?: $(cat "$work/$g/qemu.out")"
      grep -aq 'power button: powering off' "$work/$g.serial.log" || die "$g: qemu exited without the guest's power button message"
    elif [ $(( $(ms_now) - off_t0[$g] )) -ge 10000 ]; then
      die "$g: qemu $p still running 10 s after system_powerdown"
    fi
  done
  sleep 0.02
done
pids=()

say "boot to ready: guest01 ${ready_ms[guest01]} ms, guest02 ${ready_ms[guest02]} ms (booted in parallel)"
say "system_powerdown to qemu exit: guest01 ${off_ms[guest01]} ms, guest02 ${off_ms[guest02]} ms"
say "PASS"
