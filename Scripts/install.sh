#!/usr/bin/env bash
# Installs kvmnet: the Debian packages it needs, a release binary in PREFIX/bin (default
# /usr/local), the kvmnet-ifup / kvmnet-ifdown links (qemu hooks: `kvmnet-ifup TAP` is
# `kvmnet hook ifup TAP`; the network comes from KVMNET_NETWORK, else `default`), and the
# default guest (/var/lib/kvmnet/guest, or KVMNET_GUEST_DIR).
#
#   sudo Scripts/install.sh            PREFIX=/opt/kvmnet sudo -E Scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
[ "$(id -u)" -eq 0 ] || { echo "install: run as root (sudo $0)" >&2; exit 77; }
Scripts/setup.sh
swift build -c release --static-swift-stdlib >&2
install -d "$PREFIX/bin"
install -m 0755 .build/release/kvmnet "$PREFIX/bin/kvmnet"
ln -sf kvmnet "$PREFIX/bin/kvmnet-ifup"
ln -sf kvmnet "$PREFIX/bin/kvmnet-ifdown"
"$PREFIX/bin/kvmnet" guest build >/dev/null
echo "install: $PREFIX/bin/kvmnet, kvmnet-ifup, kvmnet-ifdown and the default guest are in place"
