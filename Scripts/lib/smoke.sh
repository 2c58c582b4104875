# Shared by Scripts/guest-smoke.sh and Scripts/image-smoke.sh: messages, the tool check, a work
# folder, a private namespace name, a cleanup trap that kills only the pids in `pids` and
# deletes the namespace (also on failure, showing the end of each console log), a ms timer, and
# the extraction of the bash text embedded in a Swift file.
# Usage: smoke_init NAME TOOL...   (sets work, ns, ns_created, pids)

smoke_init() {
  SMOKE_NAME=$1; shift
  [ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, taps)"
  local t
  for t in "$@"; do command -v "$t" >/dev/null || die "missing $t (run Scripts/setup.sh)"; done
  work=$(mktemp -d "/tmp/kvmnet-$SMOKE_NAME.XXXXXX")
  ns=kvmnet-${SMOKE_NAME:0:1}smoke-$$
  ns_created=
  pids=()
  trap smoke_cleanup EXIT
  trap 'exit 130' INT TERM HUP
}

say() { printf '%s: %s\n' "$SMOKE_NAME" "$*" >&2; }
die() { printf '%s: FAIL: %s\n' "$SMOKE_NAME" "$*" >&2; exit 1; }

smoke_cleanup() {
  local rc=$? p i
  trap - EXIT INT TERM HUP
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  [ -z "$ns_created" ] || ip netns del "$ns" 2>/dev/null || true
  if [ $rc -ne 0 ] && [ -d "$work" ]; then
    for f in "$work"/*.serial.log; do
      [ -f "$f" ] || continue
      say "---- last lines of $(basename "$f")"
      tail -n 15 "$f" | tr -d '\r' >&2
    done
  fi
  rm -rf "$work"
  exit $rc
}

ms_now() { echo $(( $(date +%s%N) / 1000000 )); }

extract() { # SWIFT_FILE OUT: the bash text of a `public static let text` raw string
  awk '/^    public static let text: String = #"""$/ { on = 1; next } /^"""#$/ { on = 0 } on' "$1" >"$2"
  [ -s "$2" ] || die "could not extract the script from $1"
}
