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
# ACPI button and evdev modules. Output: CACHE_BASE/KEY/{vmlinuz,initrd.img}, where KEY
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
log "modules, in load order: ${order[*]}"

mkdir -p "$root/lib/modules"
: >"$root/etc.modules"
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
  echo "$m" >>"$root/etc.modules"
done

# ---- the initramfs tree ------------------------------------------------------------------
mkdir -p "$root"/{bin,dev,etc,proc,sys,run,tmp,root,www,var/log,etc/acpi/PWRF}
ln -s bin "$root/sbin"
mkdir -p "$root/usr"
ln -s ../bin "$root/usr/bin"
ln -s ../bin "$root/usr/sbin"
chmod 1777 "$root/tmp"
mv "$root/etc.modules" "$root/etc/modules"
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

name=kvmnet-guest ip= gw= mtu=
for arg in $(cat /proc/cmdline); do
  case $arg in
    kvmnet.name=?*) name=${arg#*=} ;;
    kvmnet.ip=?*)   ip=${arg#*=} ;;
    kvmnet.gw=?*)   gw=${arg#*=} ;;
    kvmnet.mtu=?*)  mtu=${arg#*=} ;;
  esac
done
hostname "$name"
echo "$name" >/etc/hostname
echo "127.0.0.1 localhost $name" >/etc/hosts

failed=
fail() { say "$*"; failed="${failed:+$failed; }$*"; }
ip link set lo up || fail "lo up failed"
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i + 1)); done
if [ -e /sys/class/net/eth0 ]; then
  if [ -n "$mtu" ]; then ip link set eth0 mtu "$mtu" || fail "eth0 mtu $mtu failed"; fi
  ip link set eth0 up || fail "eth0 up failed"
  if [ -n "$ip" ]; then ip addr add "$ip" dev eth0 || fail "eth0 address $ip failed"; fi
  if [ -n "$gw" ]; then ip route add default via "$gw" dev eth0 || fail "default route via $gw failed"; fi
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
  echo "modules=${order[*]}"
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
