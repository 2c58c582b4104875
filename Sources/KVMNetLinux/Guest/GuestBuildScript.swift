// The bash script that builds kvmnet's default guest: a Debian cloud kernel and a busybox initramfs.
//
// `kvmnet guest build` writes `text` to a temporary file and runs `bash FILE CACHE_BASE`.
// The script prints progress on stderr and, as the last line of stdout, the folder holding
// `vmlinuz` and `initrd.img`. See docs/guest.md for the guest's kernel command line
// (`kvmnet.name=`, `kvmnet.ip=`, `kvmnet.gw=`, `kvmnet.mtu=`) and the serial console protocol.
//
// The text is a raw string (#"""…"""#): backslashes are literal, so the script reads exactly as bash sees it.

public enum GuestBuildScript {
    public static let text: String = #"""
#!/usr/bin/env bash
# kvmnet default guest builder.
#
# usage: bash guest-build.sh CACHE_BASE
#
# Fetches the Debian cloud kernel (the package linux-image-cloud-amd64 depends on) with
# `apt-get download` and unpacks it with `dpkg -x` (it is never installed on this host),
# then builds a gzip'd newc initramfs from busybox-static and that kernel's virtio-net,
# ACPI button and evdev modules, plus virtio-blk, CD-ROM, iso9660 and vfat modules for
# reading a NoCloud seed (used when the kernel command line has no kvmnet.ip). Output: CACHE_BASE/KEY/{vmlinuz,initrd.img}, where KEY
# names the kernel package and version, the busybox version and a hash of this script.
# A complete folder is reused as is. The folder is built under CACHE_BASE/.build.* and
# renamed into place, so readers never see a half-written folder.
# Progress goes to stderr; the last line of stdout is the folder.
set -euo pipefail
umask 022
export LC_ALL=C

log() { printf 'kvmnet-guest: %s\n' "$*" >&2; }
die() { printf 'kvmnet-guest: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: bash ${0##*/} CACHE_BASE"
cache_base=$1
meta_package=linux-image-cloud-amd64
busybox=/bin/busybox

# Modules the guest needs; their dependencies are added from `modinfo -F depends`.
#   virtio_pci, virtio_net: the network card (-device virtio-net-pci)
#   button, evdev: the ACPI power button as /dev/input/event*, read by busybox acpid
wanted_modules=(virtio_pci virtio_net button evdev)
# Loaded only when /init looks for a NoCloud seed (no kvmnet.ip on the kernel command line):
#   virtio_blk: the seed as a virtio disk (-drive if=virtio, also with media=cdrom)
#   cdrom, sr_mod: SCSI CD-ROMs; isofs: the seed ISO (iso9660)
#   fat, vfat, nls_*: a vfat seed (mounting vfat fails with EINVAL without nls_ascii)
seed_modules=(virtio_blk cdrom sr_mod isofs fat vfat nls_cp437 nls_ascii nls_utf8)
# Kernel options that must be built in (=y) for this initramfs to work.
required_config=(BLK_DEV_INITRD RD_GZIP DEVTMPFS PROC_FS SYSFS SERIAL_8250 SERIAL_8250_CONSOLE
                 ACPI INPUT PCI NET INET UNIX PACKET MODULES)

# ---- tools ---------------------------------------------------------------------------------
declare -A tool_package=(
  [apt-cache]=apt [apt-get]=apt [dpkg]=dpkg [dpkg-query]=dpkg [cpio]=cpio [gzip]=gzip
  [modinfo]=kmod [sha256sum]=coreutils [find]=findutils [awk]=mawk [xz]=xz-utils [zstd]=zstd
)
missing=()
for t in apt-cache apt-get dpkg dpkg-query cpio gzip modinfo sha256sum find awk; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t (Debian package ${tool_package[$t]})")
done
[ ${#missing[@]} -eq 0 ] || die "missing commands: ${missing[*]}"
[ -x "$busybox" ] || die "missing $busybox (install the Debian package busybox-static)"
busybox_version=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true)
[ -n "$busybox_version" ] || die "the Debian package busybox-static is not installed (a static $busybox is required)"

script_file=${BASH_SOURCE[0]:-}
[ -n "$script_file" ] && [ -f "$script_file" ] || die "run this script from a file (bash FILE CACHE_BASE), not from stdin"
# Trailing newlines are left out, so writing `text` with or without a final "\n" gives one key.
script_hash=$(printf '%s' "$(cat "$script_file")" | sha256sum | cut -c1-12)

# ---- which kernel --------------------------------------------------------------------------
resolve_kernel() {
  apt-cache depends "$meta_package" 2>/dev/null \
    | awk '$1 ~ /^\|?Depends:$/ && $2 ~ /^linux-image-/ { print $2; exit }'
}
kernel_package=$(resolve_kernel || true)
if [ -z "$kernel_package" ]; then
  [ "$(id -u)" -eq 0 ] || die "apt does not know $meta_package and only root can run apt-get update"
  log "apt does not know $meta_package yet: running apt-get update"
  apt-get update -qq >&2 || die "apt-get update failed (is a Debian mirror reachable?)"
  kernel_package=$(resolve_kernel || true)
fi
[ -n "$kernel_package" ] || die "cannot resolve the kernel package that $meta_package depends on (apt-cache depends $meta_package)"
kernel_version=$(apt-cache show --no-all-versions "$kernel_package" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')
[ -n "$kernel_version" ] || die "apt has no candidate version of $kernel_package"
kernel_release=${kernel_package#linux-image-}

key="${kernel_release}_${kernel_version}_busybox-${busybox_version}_${script_hash}"
key=$(printf '%s' "$key" | tr -c 'A-Za-z0-9._+-' '_')
out=$cache_base/$key

complete() { [ -s "$1/vmlinuz" ] && [ -s "$1/initrd.img" ]; }
if complete "$out"; then
  log "cached: $out"
  printf '%s\n' "$out"
  exit 0
fi

# ---- build in a temporary folder next to the final one ------------------------------------
mkdir -p "$cache_base" || die "cannot create $cache_base"
# Leftovers of builds killed with SIGKILL (a live build takes seconds, not an hour).
find "$cache_base" -mindepth 1 -maxdepth 1 -name '.build.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true
tmp=$(mktemp -d "$cache_base/.build.XXXXXX") || die "cannot create a temporary folder in $cache_base"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
work=$tmp/work
stage=$tmp/out
root=$work/initramfs
mkdir -p "$work/deb" "$work/kernel" "$stage" "$root"

log "kernel: $kernel_package $kernel_version (from $meta_package)"
apt_opts=(-q)
[ "$(id -u)" -eq 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
( cd "$work/deb" && apt-get "${apt_opts[@]}" download "$kernel_package=$kernel_version" ) >&2 \
  || die "apt-get download $kernel_package=$kernel_version failed (is a Debian mirror reachable?)"
deb=$(find "$work/deb" -maxdepth 1 -name '*.deb' | head -n1)
[ -n "$deb" ] || die "apt-get download produced no .deb for $kernel_package"
log "unpacking $(basename "$deb") (not installing it)"
dpkg -x "$deb" "$work/kernel" || die "dpkg -x $deb failed"

kroot=$work/kernel
vmlinuz=$kroot/boot/vmlinuz-$kernel_release
config=$kroot/boot/config-$kernel_release
moddir=$kroot/lib/modules/$kernel_release
[ -d "$moddir" ] || moddir=$kroot/usr/lib/modules/$kernel_release
[ -s "$vmlinuz" ] || die "$kernel_package has no boot/vmlinuz-$kernel_release"
[ -s "$config" ] || die "$kernel_package has no boot/config-$kernel_release"
[ -d "$moddir" ] || die "$kernel_package has no lib/modules/$kernel_release"

missing=()
for c in "${required_config[@]}"; do
  grep -qx "CONFIG_$c=y" "$config" || missing+=("CONFIG_$c")
done
[ ${#missing[@]} -eq 0 ] || die "$kernel_package lacks built-in ${missing[*]}"

# ---- modules: resolve dependencies, order them, decompress them ---------------------------
declare -A module_file=()
while IFS= read -r f; do
  n=${f##*/}; n=${n%%.ko*}; n=${n//-/_}
  module_file[$n]=$f
done < <(find "$moddir" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
declare -A builtin=()
if [ -f "$moddir/modules.builtin" ]; then
  while IFS= read -r f; do
    n=${f##*/}; n=${n%%.ko*}; n=${n//-/_}
    builtin[$n]=1
  done <"$moddir/modules.builtin"
fi

declare -A visited=()
order=()
visit() {
  local m=$1 f deps d
  [ -z "${visited[$m]:-}" ] || return 0
  visited[$m]=1
  if [ -n "${builtin[$m]:-}" ]; then log "module $m: built in"; return 0; fi
  f=${module_file[$m]:-}
  [ -n "$f" ] || die "module $m is neither built into $kernel_package nor shipped as a .ko"
  deps=$(modinfo -F depends "$f") || die "modinfo $f failed"
  for d in ${deps//,/ }; do visit "${d//-/_}"; done
  order+=("$m")
}
for m in "${wanted_modules[@]}"; do visit "$m"; done
net_order=("${order[@]}")
# The seed modules' dependencies already in net_order are not repeated (visited).
order=()
for m in "${seed_modules[@]}"; do visit "$m"; done
seed_order=("${order[@]}")
order=("${net_order[@]}" "${seed_order[@]}")
log "modules, in load order: ${net_order[*]}; for a seed: ${seed_order[*]}"

mkdir -p "$root/lib/modules"
: >"$root/etc.modules"
: >"$root/etc.modules.seed"
for m in "${order[@]}"; do
  f=${module_file[$m]}
  case $f in
    *.ko)     cp "$f" "$root/lib/modules/$m.ko" ;;
    *.ko.xz)  command -v xz >/dev/null || die "missing xz (Debian package xz-utils) to unpack $f"
              xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *.ko.zst) command -v zstd >/dev/null || die "missing zstd (Debian package zstd) to unpack $f"
              zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
    *.ko.gz)  gzip -dc "$f" >"$root/lib/modules/$m.ko" ;;
  esac
done
printf '%s\n' "${net_order[@]}" >"$root/etc.modules"
[ ${#seed_order[@]} -eq 0 ] || printf '%s\n' "${seed_order[@]}" >"$root/etc.modules.seed"

# ---- the initramfs tree ------------------------------------------------------------------
mkdir -p "$root"/{bin,dev,etc,proc,sys,run,tmp,root,www,var/log,etc/acpi/PWRF}
ln -s bin "$root/sbin"
mkdir -p "$root/usr"
ln -s ../bin "$root/usr/bin"
ln -s ../bin "$root/usr/sbin"
chmod 1777 "$root/tmp"
mv "$root/etc.modules" "$root/etc/modules"
mv "$root/etc.modules.seed" "$root/etc/modules.seed"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# kvmnet default guest: PID 1 until the network is up, then busybox init (console shell).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
exec </dev/console >/dev/console 2>&1
# Keep kernel messages off the serial console: it is also the command channel.
dmesg -n 1

say() { echo "kvmnet-guest: $*"; }
for m in $(cat /etc/modules); do
  insmod "/lib/modules/$m.ko" || say "insmod $m failed"
done

name= ip= gw= mtu=
for arg in $(cat /proc/cmdline); do
  case $arg in
    kvmnet.name=?*) name=${arg#*=} ;;
    kvmnet.ip=?*)   ip=${arg#*=} ;;
    kvmnet.gw=?*)   gw=${arg#*=} ;;
    kvmnet.mtu=?*)  mtu=${arg#*=} ;;
  esac
done

failed=
fail() { say "$*"; failed="${failed:+$failed; }$*"; }

# ---- NoCloud seed (only without kvmnet.ip on the command line) ----
# A filesystem labelled cidata/CIDATA (iso9660 or vfat) holding kvmnet.env, lines of
# KVMNET_NAME=, KVMNET_IP=A.B.C.D/LEN, KVMNET_GW=A.B.C.D, KVMNET_MTU=N. It is data, never
# run: only these keys with values of the expected shape are taken. The command line wins.
is_ipv4() {
  case $1 in ''|*[!0-9.]*|.*|*.|*..*) return 1 ;; esac
  local IFS=. n
  set -- $1
  [ $# -eq 4 ] || return 1
  for n; do [ ${#n} -le 3 ] && [ "$n" -le 255 ] || return 1; done
}
is_cidr() {
  local len=${1##*/}
  [ "$len" != "$1" ] || return 1
  case $len in ''|*[!0-9]*) return 1 ;; esac
  [ ${#len} -le 2 ] && [ "$len" -ge 1 ] && [ "$len" -le 32 ] && is_ipv4 "${1%/*}"
}
is_name() {
  case $1 in ''|[!A-Za-z0-9]*|*[!A-Za-z0-9._-]*) return 1 ;; esac
  [ ${#1} -le 63 ]
}
is_mtu() {
  case $1 in ''|*[!0-9]*) return 1 ;; esac
  [ ${#1} -le 5 ] && [ "$1" -ge 68 ] && [ "$1" -le 65535 ]
}
read_seed_env() { # FILE: sets seed_name seed_ip seed_gw seed_mtu
  local line key val cr
  cr=$(printf '\r')
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%"$cr"}
    case $line in ''|'#'*) continue ;; esac
    key=${line%%=*} val=${line#*=}
    [ "$key" != "$line" ] || { say "seed: ignoring a line without '='"; continue; }
    case $val in
      \"*\") val=${val#\"} val=${val%\"} ;;
      \'*\') val=${val#\'} val=${val%\'} ;;
    esac
    case $key in
      KVMNET_NAME) if is_name "$val"; then seed_name=$val; else say "seed: ignoring KVMNET_NAME (not a host name)"; fi ;;
      KVMNET_IP)   if is_cidr "$val"; then seed_ip=$val;   else say "seed: ignoring KVMNET_IP (not A.B.C.D/LEN)"; fi ;;
      KVMNET_GW)   if is_ipv4 "$val"; then seed_gw=$val;   else say "seed: ignoring KVMNET_GW (not A.B.C.D)"; fi ;;
      KVMNET_MTU)  if is_mtu "$val";  then seed_mtu=$val;  else say "seed: ignoring KVMNET_MTU (not 68-65535)"; fi ;;
      *) say "seed: ignoring an unknown key" ;;
    esac
  done <"$1"
}
# Every virtio disk has shown up as /sys/block/vd* (virtio_blk probes asynchronously).
virtio_disks_present() {
  local d want=0 have=0
  for d in /sys/bus/virtio/devices/*; do
    [ "$(cat "$d/device" 2>/dev/null)" = 0x0002 ] && want=$((want + 1))
  done
  for d in /sys/block/vd*; do [ -e "$d" ] && have=$((have + 1)); done
  [ $have -ge $want ]
}
find_seed() { # prints the seed's device
  local i=0 settled=0 dev
  while [ $i -lt 50 ]; do
    dev=$(findfs LABEL=cidata 2>/dev/null || findfs LABEL=CIDATA 2>/dev/null) && { echo "$dev"; return 0; }
    # Stop early once all virtio disks are there and were searched for a while.
    if virtio_disks_present; then
      settled=$((settled + 1))
      [ $settled -lt 3 ] || return 1
    else
      settled=0
    fi
    usleep 100000
    i=$((i + 1))
  done
  return 1
}
seed_name= seed_ip= seed_gw= seed_mtu=
if [ -z "$ip" ]; then
  for m in $(cat /etc/modules.seed 2>/dev/null); do
    insmod "/lib/modules/$m.ko" || say "insmod $m failed"
  done
  if seed=$(find_seed); then
    mkdir -p /run/seed
    if mount -t iso9660 -o ro "$seed" /run/seed 2>/dev/null || mount -t vfat -o ro "$seed" /run/seed; then
      if [ -f /run/seed/kvmnet.env ]; then
        head -c 4096 /run/seed/kvmnet.env >/run/kvmnet.env
        read_seed_env /run/kvmnet.env
        say "seed $seed: name=${seed_name:--} ip=${seed_ip:--} gw=${seed_gw:--} mtu=${seed_mtu:--}"
      else
        say "seed $seed has no kvmnet.env"
      fi
      umount /run/seed
    else
      fail "cannot mount the seed $seed"
    fi
  fi
  [ -n "$name" ] || name=$seed_name
  ip=$seed_ip
  [ -n "$gw" ] || gw=$seed_gw
  [ -n "$mtu" ] || mtu=$seed_mtu
fi
[ -n "$name" ] || name=kvmnet-guest
hostname "$name"
echo "$name" >/etc/hostname
echo "127.0.0.1 localhost $name" >/etc/hosts
ip link set lo up || fail "lo up failed"
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i + 1)); done
if [ -e /sys/class/net/eth0 ]; then
  if [ -n "$mtu" ]; then ip link set eth0 mtu "$mtu" || fail "eth0 mtu $mtu failed"; fi
  ip link set eth0 up || fail "eth0 up failed"
  if [ -n "$ip" ]; then
    ip addr add "$ip" dev eth0 || fail "eth0 address $ip failed"
    if [ -n "$gw" ]; then ip route add default via "$gw" dev eth0 || fail "default route via $gw failed"; fi
  else
    # No static address anywhere: DHCP. udhcpc forks into the background once it has a
    # lease (renewals; its output goes to a log, not to the console) and exits 1 without
    # one after 5 discovers 3 s apart.
    if udhcpc -i eth0 -s /etc/udhcpc.script -O mtu -x "hostname:$name" -t 5 -T 3 -n \
         -p /run/udhcpc.pid >>/var/log/udhcpc.log 2>&1; then
      say "dhcp: eth0 $(ip -4 addr show dev eth0 | awk '$1 == "inet" { print $2; exit }')"
      if [ -n "$gw" ] && ! ip route | grep -q '^default '; then
        ip route add default via "$gw" dev eth0 || fail "default route via $gw failed"
      fi
    else
      fail "no DHCP lease on eth0 within 15 s"
    fi
  fi
else
  fail "no eth0 (is there a -device virtio-net-pci?)"
fi

echo "$name" >/www/index.html
httpd -p 80 -h /www || fail "httpd failed"
# The ACPI power button (QMP system_powerdown) arrives on /dev/input/event*: acpid runs
# /etc/acpi/PWRF/00000080, which powers off at once.
acpid -c /etc/acpi -l /var/log/acpid.log || fail "acpid failed"

if [ -z "$failed" ]; then
  echo "kvmnet-guest-ready $name"
else
  echo "kvmnet-guest-failed $name: $failed"
fi
exec /bin/busybox init
INIT
chmod 755 "$root/init"

cat >"$root/etc/inittab" <<'INITTAB'
# The root shell on the console (console=ttyS0), respawned when it exits.
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/bin/poweroff -f
::shutdown:/bin/sync
INITTAB

cat >"$root/etc/profile" <<'PROFILE'
export PATH=/bin HOME=/root TERM=${TERM:-vt100}
export PS1='kvmnet:$(hostname)# '
cd /root
PROFILE

cat >"$root/etc/acpi/PWRF/00000080" <<'POWER'
#!/bin/sh
echo "kvmnet-guest: power button: powering off" >/dev/console
sync
poweroff -f
POWER
chmod 755 "$root/etc/acpi/PWRF/00000080"

cat >"$root/etc/udhcpc.script" <<'DHCP'
#!/bin/sh
# udhcpc -s: $1 is deconfig, bound, renew, leasefail or nak; the lease is in the environment
# (ip, mask or subnet, router, mtu = option 26 when the server sends it). The hostname
# stays the guest's own.
action=$1
case $action in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    if [ -n "$mtu" ] && [ "$mtu" != "$(cat "/sys/class/net/$interface/mtu")" ]; then
      ip link set "$interface" mtu "$mtu"
    fi
    len=$mask
    if [ -z "$len" ]; then
      len=0
      for o in $(echo "${subnet:-255.255.255.255}" | tr . ' '); do
        while [ "$o" -gt 0 ]; do len=$((len + (o & 1))); o=$((o >> 1)); done
      done
    fi
    if ! ip -4 addr show dev "$interface" | grep -q " $ip/$len "; then
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/$len" dev "$interface"
    fi
    if [ -n "$router" ]; then
      set -- $router
      ip route replace default via "$1" dev "$interface"
    fi
    echo "udhcpc script: $action $ip/$len router ${router:--} mtu ${mtu:--}"
    ;;
esac
exit 0
DHCP
chmod 755 "$root/etc/udhcpc.script"

printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

log "packing the initramfs"
( cd "$root" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0 ) | gzip -9n >"$stage/initrd.img" \
  || die "cpio/gzip of the initramfs failed"
cp "$vmlinuz" "$stage/vmlinuz"
cp "$config" "$stage/config"
{
  echo "kernel_package=$kernel_package"
  echo "kernel_version=$kernel_version"
  echo "busybox_version=$busybox_version"
  echo "script_hash=$script_hash"
  echo "modules=${net_order[*]}"
  echo "seed_modules=${seed_order[*]}"
} >"$stage/build-info"
chmod 644 "$stage"/*
chmod 755 "$stage"

if ! mv -T "$stage" "$out" 2>/dev/null; then
  # Another build finished first: keep its folder when it is complete.
  complete "$out" || die "cannot move the new guest into $out"
  log "another build already produced $out"
fi
log "built: $out ($(du -h "$out/initrd.img" | cut -f1) initrd)"
printf '%s\n' "$out"
"""#
}
