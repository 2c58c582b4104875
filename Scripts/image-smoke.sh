#!/usr/bin/env bash
# End-to-end check of kvmnet's default guest booted from a disk image with NoCloud seeds,
# without kvmnet itself.
#
# usage: Scripts/image-smoke.sh [CACHE_BASE]      (as root)
#
#  1. builds the guest with the script embedded in GuestBuildScript.swift into CACHE_BASE
#     (default: a temporary folder, removed afterwards), then a bootable qcow2 disk with the
#     script embedded in ImageBuildScript.swift (base.qcow2, in the temporary folder);
#  2. makes three NoCloud seeds: an ISO (genisoimage -volid cidata) for g1 with a static
#     address, a vfat image (mkfs.vfat -n CIDATA, mcopy) for g2 with a static address, and an
#     ISO for g3 holding only its name (its address comes from DHCP);
#  3. creates its own network namespace with a bridge (192.168.78.254/24), three taps and
#     busybox udhcpd on the bridge with a static lease for g3's MAC;
#  4. boots g1 and g2 in parallel under qemu TCG, each from its own qcow2 overlay of
#     base.qcow2 with its seed as a second virtio disk, waits for "kvmnet-guest-ready NAME",
#     checks names, addresses, MTU, routes and pings over the serial console, and powers them
#     off with QMP system_powerdown;
#  5. boots g3 alone the same way and checks its DHCP lease (address, router, MTU option 26);
#  6. checks that base.qcow2's sha256 did not change.
# A trap kills the processes it started (qemu, udhcpd; by pid) and deletes the namespace on
# any exit. The serial console/QMP helper is the one in Scripts/guest-smoke.sh.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
guest_swift=$here/../Sources/KVMNetLinux/Guest/GuestBuildScript.swift
image_swift=$here/../Sources/KVMNetLinux/Guest/ImageBuildScript.swift

. "$here/lib/smoke.sh"
smoke_init image-smoke qemu-system-x86_64 qemu-img ip python3 busybox awk genisoimage mkfs.vfat mcopy sha256sum

# ---- 1. build the guest and the disk -------------------------------------------------------
extract "$guest_swift" "$work/guest-build.sh"
extract "$image_swift" "$work/image-build.sh"
cache=${1:-$work/cache}
t0=$(ms_now)
guest=$(bash "$work/guest-build.sh" "$cache" | tail -n1) || die "guest build failed"
say "guest: $guest (build/lookup $(( $(ms_now) - t0 )) ms)"
[ -s "$guest/vmlinuz" ] && [ -s "$guest/initrd.img" ] || die "build printed $guest without vmlinuz/initrd.img"
t0=$(ms_now)
base=$(bash "$work/image-build.sh" "$guest/vmlinuz" "$guest/initrd.img" "$work/base.qcow2" | tail -n1) \
  || die "image build failed"
[ "$base" = "$work/base.qcow2" ] || die "image build printed '$base', expected $work/base.qcow2"
say "disk: $base ($(( $(ms_now) - t0 )) ms; $(qemu-img info "$base" | awk -F': ' '/^virtual size/ { print $2 }'))"
base_sha=$(sha256sum "$base" | cut -d' ' -f1)

# The script refuses bad arguments with a clear message.
if msg=$(bash "$work/image-build.sh" /nonexistent "$guest/initrd.img" "$work/x.qcow2" 2>&1); then
  die "image build accepted a missing kernel"
fi
case $msg in *"error: no kernel at /nonexistent"*) ;; *) die "unexpected message for a missing kernel: $msg" ;; esac

# ---- 2. NoCloud seeds -------------------------------------------------------------------------
make_seed_dir() { # DIR NAME ENV_LINES...
  local dir=$1 name=$2
  shift 2
  mkdir -p "$dir"
  printf '{"instance-id": "iid-kvmnet-%s", "local-hostname": "%s"}\n' "$name" "$name" >"$dir/meta-data"
  printf '#cloud-config\nhostname: %s\n' "$name" >"$dir/user-data"
  printf '%s\n' "$@" >"$dir/kvmnet.env"
}
make_seed_dir "$work/seed-g1" g1 \
  '# kvmnet guest configuration (read as data, never run)' \
  KVMNET_NAME=g1 KVMNET_IP=192.168.78.1/24 KVMNET_GW=192.168.78.254 KVMNET_MTU=1400 \
  'KVMNET_NAME=$(echo not-a-name)' 'PATH=/nowhere'
genisoimage -quiet -output "$work/seed-g1.iso" -volid cidata -joliet -rock "$work/seed-g1" \
  || die "genisoimage failed"
make_seed_dir "$work/seed-g2" g2 "KVMNET_NAME='g2'" 'KVMNET_IP="192.168.78.2/24"'
truncate -s 2M "$work/seed-g2.img"
mkfs.vfat -n CIDATA "$work/seed-g2.img" >/dev/null || die "mkfs.vfat of the vfat seed failed"
MTOOLS_SKIP_CHECK=1 mcopy -i "$work/seed-g2.img" "$work/seed-g2"/* ::/ || die "mcopy into the vfat seed failed"
make_seed_dir "$work/seed-g3" g3 KVMNET_NAME=g3
genisoimage -quiet -output "$work/seed-g3.iso" -volid cidata -joliet -rock "$work/seed-g3" \
  || die "genisoimage failed"

# ---- helper: serial console exec and QMP (from guest-smoke.sh) -------------------------------
awk '/^cat >"\$work\/console.py" <<.PY.$/ { on = 1; next } /^PY$/ { on = 0 } on' \
  "$here/guest-smoke.sh" >"$work/console.py"
grep -q '^def serial_exec' "$work/console.py" || die "could not extract console.py from guest-smoke.sh"
console() { python3 "$work/console.py" "$@"; }
nsx() { ip netns exec "$ns" "$@"; }

# ---- 3. namespace, bridge, taps, DHCP server ---------------------------------------------
ip netns add "$ns"
ns_created=1
nsx ip link set lo up
nsx ip link add br0 type bridge
nsx ip addr add 192.168.78.254/24 dev br0
nsx ip link set br0 up
for i in 1 2 3; do
  nsx ip tuntap add dev tap$i mode tap
  nsx ip link set tap$i master br0
  nsx ip link set tap$i up
done
cat >"$work/udhcpd.conf" <<EOF
interface br0
start 192.168.78.100
end 192.168.78.150
lease_file $work/udhcpd.leases
pidfile $work/udhcpd.pid
static_lease 52:54:00:78:00:03 192.168.78.3
option subnet 255.255.255.0
option router 192.168.78.254
option mtu 1450
option lease 600
EOF
: >"$work/udhcpd.leases"
# ip netns exec execs busybox in place, so $! is udhcpd's pid.
nsx busybox udhcpd -f "$work/udhcpd.conf" </dev/null >"$work/udhcpd.log" 2>&1 &
pids+=($!)

# ---- guests -------------------------------------------------------------------------------
declare -A qemu_pid=() ready_ms=() t_boot=()
boot() { # NAME TAP MAC SEED_DRIVE_OPTIONS
  local name=$1 d=$work/$1
  mkdir -p "$d"
  qemu-img create -q -f qcow2 -b "$base" -F qcow2 "$d/disk.qcow2" || die "$name: qemu-img create of the overlay failed"
  t_boot[$name]=$(ms_now)
  ip netns exec "$ns" qemu-system-x86_64 \
    -name "$name" -accel tcg -machine pc -smp 1 -m 128 \
    -nodefaults -no-user-config -display none -no-reboot \
    -drive "if=none,id=disk0,file=$d/disk.qcow2,format=qcow2" \
    -device virtio-blk-pci,drive=disk0,bootindex=0 \
    -drive "$4" \
    -chardev "socket,id=ser0,path=$d/serial.sock,server=on,wait=off,logfile=$work/$name.serial.log" \
    -serial chardev:ser0 \
    -qmp "unix:$d/qmp.sock,server=on,wait=off" \
    -netdev "tap,id=n0,ifname=$2,script=no,downscript=no" \
    -device "virtio-net-pci,netdev=n0,mac=$3,romfile=" \
    -pidfile "$d/qemu.pid" \
    </dev/null >"$d/qemu.out" 2>&1 &
  pids+=($!)
  qemu_pid[$name]=$!
}
check_pid() { # NAME
  local i
  for i in $(seq 1 100); do [ -s "$work/$1/qemu.pid" ] && break; sleep 0.02; done
  [ "$(cat "$work/$1/qemu.pid" 2>/dev/null)" = "${qemu_pid[$1]}" ] || die "$1: qemu pid is not ${qemu_pid[$1]} ($(cat "$work/$1/qemu.out"))"
}
wait_ready() { # NAME...
  local g left=$#
  while [ $left -gt 0 ]; do
    left=0
    for g in "$@"; do
      [ -z "${ready_ms[$g]:-}" ] || continue
      left=$((left + 1))
      log=$work/$g.serial.log
      if [ -f "$log" ] && grep -aq "^kvmnet-guest-failed $g" "$log"; then
        die "$g: $(grep -a '^kvmnet-guest-failed' "$log" | tr -d '\r')"
      fi
      if [ -f "$log" ] && grep -aq "^kvmnet-guest-ready $g" "$log"; then
        ready_ms[$g]=$(( $(ms_now) - t_boot[$g] ))
        say "$g ready after ${ready_ms[$g]} ms"
      fi
      kill -0 "${qemu_pid[$g]}" 2>/dev/null || die "$g: qemu exited early: $(cat "$work/$g/qemu.out")"
      [ $(( $(ms_now) - t_boot[$g] )) -lt 90000 ] || die "$g not ready after 90 s"
    done
    sleep 0.05
  done
}
check_exec() { # EXPECTED_STATUS GUEST COMMAND
  local want=$1 g=$2 cmd=$3 out rc=0
  out=$(console exec "$work/$g/serial.sock" 20 "$cmd") || rc=$?
  say "$g\$ $cmd -> status $rc"
  printf '%s\n' "$out" | sed 's/^/    /' >&2
  [ "$rc" -eq "$want" ] || die "$g: '$cmd' exited $rc, expected $want"
  last_out=$out
}
net_of() { # GUEST: mtu, address, default route
  check_exec 0 "$1" "hostname; cat /sys/class/net/eth0/mtu; ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*'; ip route | grep -o '^default via [0-9.]*' || true"
}
declare -A off_ms=()
power_off() { # NAME...
  local g t0 p
  declare -A t_off=()
  for g in "$@"; do
    t_off[$g]=$(ms_now)
    console qmp "$work/$g/qmp.sock" system_powerdown >/dev/null || die "$g: QMP system_powerdown failed"
  done
  for g in "$@"; do
    p=${qemu_pid[$g]}
    while kill -0 "$p" 2>/dev/null; do
      [ $(( $(ms_now) - t_off[$g] )) -lt 10000 ] || die "$g: qemu $p still running 10 s after system_powerdown"
      sleep 0.02
    done
    off_ms[$g]=$(( $(ms_now) - t_off[$g] ))
    wait "$p" || die "$g: qemu exited with status $?: $(cat "$work/$g/qemu.out")"
    # Reaped: its pid may be reused, so the trap must not kill it any more.
    local keep=() q
    for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    pids=("${keep[@]}")
    grep -aq 'power button: powering off' "$work/$g.serial.log" || die "$g: qemu exited without the guest's power button message"
    say "$g powered off after ${off_ms[$g]} ms"
  done
}

# ---- 4. g1 (ISO seed) and g2 (vfat seed), static addresses, in parallel ---------------------
boot g1 tap1 52:54:00:78:00:01 "file=$work/seed-g1.iso,if=virtio,media=cdrom,format=raw,readonly=on"
boot g2 tap2 52:54:00:78:00:02 "file=$work/seed-g2.img,if=virtio,format=raw,readonly=on"
check_pid g1
check_pid g2
wait_ready g1 g2
net_of g1
[ "$last_out" = $'g1\n1400\ninet 192.168.78.1/24\ndefault via 192.168.78.254' ] || die "g1's network is not as its seed says"
net_of g2
[ "$last_out" = $'g2\n1500\ninet 192.168.78.2/24' ] || die "g2's network is not as its seed says"
check_exec 0 g1 "ping -c1 -W2 192.168.78.2"
check_exec 0 g2 "ping -c1 -W2 192.168.78.1"
check_exec 0 g1 "wget -qO- http://192.168.78.2/"
[ "$last_out" = g2 ] || die "g2's page seen from g1 is '$last_out'"
check_exec 1 g1 "grep -q /run/seed /proc/mounts"
grep -aq 'seed: ignoring KVMNET_NAME (not a host name)' "$work/g1.serial.log" || die "g1 did not report the bad KVMNET_NAME line"
grep -aq 'seed: ignoring an unknown key' "$work/g1.serial.log" || die "g1 did not report the unknown key"
page=$(nsx timeout 10 busybox wget -Y off -qO- http://192.168.78.1/) || die "wget http://192.168.78.1/ failed"
[ "$page" = g1 ] || die "g1's page is '$page', expected 'g1'"
say "host side: http://192.168.78.1/ -> $page"
power_off g1 g2

# ---- 5. g3: name from its seed, address by DHCP ---------------------------------------------
boot g3 tap3 52:54:00:78:00:03 "file=$work/seed-g3.iso,if=virtio,media=cdrom,format=raw,readonly=on"
check_pid g3
wait_ready g3
net_of g3
[ "$last_out" = $'g3\n1450\ninet 192.168.78.3/24\ndefault via 192.168.78.254' ] || die "g3's DHCP lease was not applied as udhcpd gives it"
check_exec 0 g3 "ping -c1 -W2 192.168.78.254"
check_exec 0 g3 "cat /var/log/udhcpc.log"
power_off g3

# ---- 6. the base image is untouched ------------------------------------------------------------
[ "$(sha256sum "$base" | cut -d' ' -f1)" = "$base_sha" ] || die "base.qcow2 changed"
say "base.qcow2 sha256 unchanged: $base_sha"

say "boot from disk to ready: g1 ${ready_ms[g1]} ms, g2 ${ready_ms[g2]} ms (in parallel, static from seeds); g3 ${ready_ms[g3]} ms (alone, DHCP)"
say "system_powerdown to qemu exit: g1 ${off_ms[g1]} ms, g2 ${off_ms[g2]} ms, g3 ${off_ms[g3]} ms"
say "PASS"
