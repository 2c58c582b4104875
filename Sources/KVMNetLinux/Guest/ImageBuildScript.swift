// The bash script that makes a small bootable qcow2 disk from kvmnet's default guest
// (the kernel and initramfs that GuestBuildScript builds).
//
// Run as `bash FILE KERNEL INITRD OUT.qcow2`. It mounts nothing and needs no loop devices:
// one FAT32 partition written at an offset with mkfs.vfat/syslinux/mtools, syslinux's MBR,
// then `qemu-img convert`. The last line of stdout is OUT.qcow2. See docs/guest.md.
//
// The text is a raw string (#"""…"""#): backslashes are literal, so the script reads exactly as bash sees it.

public enum ImageBuildScript {
    public static let text: String = #"""
#!/usr/bin/env bash
# kvmnet default guest: bootable disk image builder.
#
# usage: bash image-build.sh KERNEL INITRD OUT.qcow2
#
# Writes a 64 MiB raw disk in a temporary folder next to OUT: an MBR partition table
# (sfdisk) with one bootable FAT32 partition at 1 MiB (mkfs.vfat --offset), SYSLINUX in
# that partition (syslinux --offset --install) and syslinux's mbr.bin in the first 440
# bytes; vmlinuz, initrd.img and syslinux.cfg are copied in with mcopy. Nothing is mounted.
# The raw disk is converted to OUT (qemu-img convert -O qcow2), written as OUT.tmp.* and
# renamed into place. syslinux.cfg boots with a serial console on ttyS0 and no kvmnet.*
# parameters: the guest then reads its configuration from a NoCloud seed, or uses DHCP.
# Progress goes to stderr; the last line of stdout is OUT.
set -euo pipefail
umask 022
export LC_ALL=C

log() { printf 'kvmnet-image: %s\n' "$*" >&2; }
die() { printf 'kvmnet-image: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 3 ] && [ -n "$1" ] && [ -n "$2" ] && [ -n "$3" ] || die "usage: bash ${0##*/} KERNEL INITRD OUT.qcow2"
kernel=$1 initrd=$2 out=$3
[ -f "$kernel" ] && [ -s "$kernel" ] || die "no kernel at $kernel"
[ -f "$initrd" ] && [ -s "$initrd" ] || die "no initramfs at $initrd"

disk_mib=64          # whole disk
part_start=2048      # first sector of the partition (1 MiB)
sector=512
append="console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check cryptomgr.notests"

# ---- tools ---------------------------------------------------------------------------------
declare -A tool_package=(
  [sfdisk]=fdisk [mkfs.vfat]=dosfstools [syslinux]=syslinux [mcopy]=mtools [mdir]=mtools
  [qemu-img]=qemu-utils [truncate]=coreutils [dd]=coreutils [stat]=coreutils [mktemp]=coreutils
)
PATH=$PATH:/usr/sbin:/sbin
missing=()
for t in sfdisk mkfs.vfat syslinux mcopy mdir qemu-img truncate dd stat mktemp; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t (Debian package ${tool_package[$t]})")
done
mbr=
for f in /usr/lib/syslinux/mbr/mbr.bin /usr/lib/SYSLINUX/mbr.bin /usr/share/syslinux/mbr.bin /usr/lib/syslinux/mbr.bin; do
  [ -s "$f" ] && { mbr=$f; break; }
done
[ -n "$mbr" ] || missing+=("syslinux's mbr.bin (Debian package syslinux-common)")
[ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]}"
[ "$(stat -c %s "$mbr")" -ge 440 ] || die "$mbr is shorter than 440 bytes"

# ---- sizes ---------------------------------------------------------------------------------
part_sectors=$(( disk_mib * 1024 * 1024 / sector - part_start ))
payload=$(( $(stat -L -c %s "$kernel") + $(stat -L -c %s "$initrd") ))
# Leave room for FAT32's tables, ldlinux.sys/.c32 (~120 KiB) and syslinux.cfg.
[ $payload -le $(( (part_sectors * sector) - 4 * 1024 * 1024 )) ] \
  || die "kernel and initramfs ($payload bytes) do not fit a ${disk_mib} MiB disk"

out_dir=$(dirname -- "$out")
[ -d "$out_dir" ] || die "no folder $out_dir for $out"
tmp=$(mktemp -d "$out_dir/.kvmnet-image.XXXXXX") || die "cannot create a temporary folder in $out_dir"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
raw=$tmp/disk.raw
offset=$(( part_start * sector ))

# ---- partition table, filesystem, boot loader ---------------------------------------------
log "raw disk: ${disk_mib} MiB, FAT32 partition at sector $part_start"
truncate -s "${disk_mib}M" "$raw" || die "cannot create $raw"
printf 'label: dos\nstart=%s, size=%s, type=c, bootable\n' "$part_start" "$part_sectors" \
  | sfdisk --quiet --no-reread --no-tell-kernel "$raw" >&2 || die "sfdisk failed on $raw"
# -s 1: one sector per cluster gives FAT32 enough clusters on 63 MiB; -h: the partition's
# start, as a partitioned disk's boot sector carries it.
mkfs.vfat -F 32 -s 1 -S "$sector" -h "$part_start" -n KVMNET --offset "$part_start" \
  "$raw" $(( part_sectors * sector / 1024 )) >/dev/null || die "mkfs.vfat --offset $part_start failed"
syslinux --offset "$offset" --install "$raw" || die "syslinux --offset $offset --install failed"
dd if="$mbr" of="$raw" bs=440 count=1 conv=notrunc status=none || die "writing $mbr into the MBR failed"

cat >"$tmp/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT kvmnet
PROMPT 0
TIMEOUT 0
LABEL kvmnet
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $append
CFG
export MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=0
img="$raw@@$offset"
mcopy -o -i "$img" "$kernel" ::/vmlinuz || die "mcopy of $kernel failed"
mcopy -o -i "$img" "$initrd" ::/initrd.img || die "mcopy of $initrd failed"
mcopy -o -i "$img" "$tmp/syslinux.cfg" ::/syslinux.cfg || die "mcopy of syslinux.cfg failed"
for f in ldlinux.sys vmlinuz initrd.img syslinux.cfg; do
  mdir -a -b -i "$img" "::/$f" >/dev/null 2>&1 || die "$f is missing from the FAT partition"
done

# ---- qcow2 -----------------------------------------------------------------------------------
log "converting to qcow2"
qemu-img convert -f raw -O qcow2 "$raw" "$tmp/disk.qcow2" || die "qemu-img convert failed"
chmod 644 "$tmp/disk.qcow2"
mv -f "$tmp/disk.qcow2" "$out" || die "cannot move the image to $out"
log "built: $out ($(du -h "$out" | cut -f1))"
printf '%s\n' "$out"
"""#
}
