#!/usr/bin/env bash
# Installs the Debian packages kvmnet needs to build, test and run, when they are missing.
# Idempotent; prints nothing when everything is already there.
set -euo pipefail

packages=(
  pkg-config libnl-3-dev libnl-route-3-dev   # build: the netlink library
  iptables nftables                          # firewall backends
  qemu-system-x86 qemu-utils                 # guests
  busybox-static cpio kmod zstd              # building the default guest
  dnsmasq-base                               # DHCP and DNS for routed and nat guests (not `dnsmasq`: no system-wide server)
  fdisk dosfstools syslinux syslinux-common mtools   # the default guest's bootable disk (ImageBuildScript)
  genisoimage                                # NoCloud seed ISOs for --image guests
  procps util-linux tcpdump conntrack        # tests: pgrep, setpriv/unshare, captures; flushing flows for forwards
  python3                                    # tests: serial console and QMP I/O in guest-smoke.sh
)

missing=()
for p in "${packages[@]}"; do
  [[ $p == \#* ]] && continue
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run as root (sudo $0) to install them" >&2
  exit 77
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
