#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every unit and namespace test
# (swift test), builds the default guest, and runs the end-to-end test with real qemu guests
# for all four models. Needs root: the tests create network namespaces (never touching the
# machine's own network).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
logs=$(mktemp -d /tmp/kvmnet-test-logs.XXXXXX)
Scripts/setup.sh
echo "test: building" >&2
if ! swift build --build-tests >$logs/build.log 2>&1; then
  grep -E 'error|warning: unre' $logs/build.log | head -40 >&2
  echo "test: the build failed (full log: $logs/build.log)" >&2
  exit 1
fi
echo "test: swift test" >&2
swift test --skip-build 2>&1 | tee $logs/swift-test.log | grep -E '^✘|^✔ Test run|^✘ Test run|error:' || true
if grep -q '✘' $logs/swift-test.log || ! grep -q 'Test run with .* passed' $logs/swift-test.log; then
  grep -E '✘' $logs/swift-test.log | head -40 >&2
  echo "test: swift test failed" >&2
  exit 1
fi
units=$(grep -oE 'Test run with [0-9]+ tests' $logs/swift-test.log | grep -oE '[0-9]+')
echo "test: building the default guest" >&2
Scripts/build-guest.sh >/dev/null
echo "test: end to end (firewall auto: nftables here)" >&2
FIREWALL=auto Scripts/e2e.sh
echo "test: end to end, iptables backend" >&2
FIREWALL=iptables Scripts/e2e.sh
echo "test: end to end, a Docker-like host (FORWARD policy DROP, DOCKER-USER)" >&2
HOST=docker Scripts/e2e.sh
echo "test: end to end, hook mode" >&2
Scripts/e2e-hooks.sh
echo "test: end to end, disk-image guests (DHCP, seeds)" >&2
Scripts/e2e-images.sh
echo "test: done in $((SECONDS - t0)) s"
echo "test: $((units + 19)) passed, 0 failed"
