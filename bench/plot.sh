#!/usr/bin/env bash
# Plots the up and down tables of a bench report (bench/results.md) as one SVG: time against
# the number of taps, log-log, for kvmnet, the seed's way and the libnl floors.
#
# Usage: bench/plot.sh [REPORT [SVG]]   (defaults: bench/results.md, bench/results.svg)
# Needs gnuplot (Debian: gnuplot-nox). Scripts/bench.sh calls it when gnuplot is there; the
# tests never do.
set -euo pipefail
cd "$(dirname "$0")/.."
report=${1:-bench/results.md}
svg=${2:-bench/results.svg}
command -v gnuplot >/dev/null || { echo "plot: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 69; }
[ -r "$report" ] || { echo "plot: cannot read $report" >&2; exit 66; }

data=$(mktemp -d /tmp/kvmnet-plot.XXXXXX)
trap 'rm -rf "$data"' EXIT

# table SECTION OUT: the rows of the table under "## SECTION" whose first cell is a number,
# cells separated by spaces (a "–" cell becomes NaN).
table() {
  awk -v want="## $1" '
    /^## / { on = index($0, want) == 1; next }
    on && /^\| *[0-9]+ *\|/ {
      n = split($0, c, "|"); line = ""
      for (i = 2; i < n; i++) { v = c[i]; gsub(/[ ×]/, "", v); if (v == "" || v == "–") v = "NaN"; line = line (i > 2 ? " " : "") v }
      print line
    }' "$report" >"$2"
  [ -s "$2" ] || { echo "plot: no \"$1\" table in $report" >&2; exit 65; }
}
table "up" "$data/up"
table "down" "$data/down"

# up: N kvmnet seed libnl …; down: N kvmnet seed per-device group bridge-in-group …
gnuplot <<EOF
set terminal svg size 960,420 dynamic font "sans,11"
set output "$svg"
set multiplot layout 1,2 title "kvmnet against the seed's way and libnl ($(sed -n 3p "$report" | cut -d, -f1))"
set logscale xy
set xrange [0.8:1500]
set xlabel "taps (N)"
set ylabel "ms (median)"
set key top left
set grid
set title "up nat --taps N"
plot "$data/up" using 1:2 with linespoints lw 2 title "kvmnet", \
     "" using 1:3 with linespoints title "seed's way", \
     "" using 1:4 with linespoints title "libnl floor"
set title "down"
plot "$data/down" using 1:2 with linespoints lw 2 title "kvmnet", \
     "" using 1:3 with linespoints title "seed's way", \
     "" using 1:4 with linespoints title "libnl, one delete per device", \
     "" using 1:5 with linespoints title "libnl, taps by group, then bridge", \
     "" using 1:6 with linespoints title "libnl, bridge in the group"
unset multiplot
EOF
echo "plot: $svg"
