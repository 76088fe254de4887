#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The table generator of tests/bench/run.sh:
#
#   table.sh RAW META MACHINE NOTE OUT.md OUT.png
#
# RAW: one measurement a line, "id<TAB>repeat<TAB>value<TAB>baseline".
# META: one figure a line, "id<TAB>label<TAB>baseline label<TAB>goal<TAB>command",
# goal as ">= 0.8" or "<= 3" on the ratio value / baseline.
# Writes OUT.md (Markdown: per figure the medians of value and baseline, the
# ratio's min / median / max over repeats, the goal, whether the median
# meets it, and the command) and OUT.png (gnuplot, if installed: median
# ratios with min–max bars next to their goals, log scale).
set -euo pipefail
RAW=$1 META=$2 MACHINE=$3 NOTE=$4 MD=$5 PNG=$6
DAT=$(mktemp "${TMPDIR:-/tmp}/partreg-table.XXXXXX")
trap 'rm -f "$DAT"' EXIT

awk -F'\t' -v dat="$DAT" '
# Sorted copy of a space-separated list into a[1..n] (mawk has no asort).
function sorted(list, a,   n, i, j, t) {
  n = split(list, a, " ")
  for (i = 2; i <= n; i++) {
    t = a[i] + 0
    for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
    a[j + 1] = t
  }
  return n
}
function median(list,   a, n) {
  n = sorted(list, a)
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function lo(list,   a, n) { n = sorted(list, a); return a[1] }
function hi(list,   a, n) { n = sorted(list, a); return a[n] }
function num(x) { return x >= 100 ? sprintf("%.0f", x) : sprintf("%.3g", x) }
NR == FNR {
  v[$1] = v[$1] " " $3; b[$1] = b[$1] " " $4
  r[$1] = r[$1] " " ($4 > 0 ? $3 / $4 : 0)
  next
}
{
  id = $1
  if (!(id in v)) next
  split($4, g, " ")
  m = median(r[id])
  met = (g[1] == ">=" ? m >= g[2] : m <= g[2]) ? "yes" : "**no**"
  printf "| %s | %s | %s | %s | %s | %s / **%s** / %s | %s | `%s` |\n", $2, num(median(v[id])), \
    $3, num(median(b[id])), $4, num(lo(r[id])), num(m), num(hi(r[id])), met, $5
  gsub(/"/, "", $2)
  printf "%d\t\"%s\"\t%g\t%g\t%g\t%g\t%s\n", ++k, $2, m, lo(r[id]), hi(r[id]), g[2], (met == "yes") >dat
}' "$RAW" "$META" >"$MD.rows"

{
  echo "| figure | value (median) | baseline in the same run | baseline (median) | goal (ratio) | ratio min / **median** / max | met? | reproduce |"
  echo "|---|---|---|---|---|---|---|---|"
  cat "$MD.rows"
  echo
  echo "Machine: $MACHINE."
  echo
  echo "$NOTE"
} >"$MD"
rm -f "$MD.rows"

if command -v gnuplot >/dev/null 2>&1; then
  rows=$(wc -l <"$DAT")
  gnuplot <<EOF
set terminal pngcairo size 1400,$((420 + rows * 4)) font ",10"
set output "$PNG"
set title "partregd: figure / baseline in the same run (bars: median, whiskers: min–max over repeats; ◆: goal)"
set datafile separator "\t"
set logscale y
set ylabel "ratio"
set yrange [0.01:*]
set xtics rotate by -35 left noenhanced
set bmargin 14
set style fill solid 0.6
set boxwidth 0.6
set key off
plot "$DAT" using 1:(\$7 > 0 ? \$3 : 1/0):4:5:xtic(2) with boxerrorbars lc rgb "#2e8b57", \
     "$DAT" using 1:(\$7 > 0 ? 1/0 : \$3):4:5 with boxerrorbars lc rgb "#c0392b", \
     "$DAT" using 1:6 with points pt 13 ps 1.8 lc rgb "black"
EOF
else
  echo "table.sh: gnuplot not installed (compose/install-deps.sh installs gnuplot-nox): no $PNG" >&2
fi
