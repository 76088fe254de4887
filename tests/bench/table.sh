#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The table generator of tests/bench/run.sh:
#
#   table.sh RAW META MACHINE NOTE OUT.md OUT.png
#
# RAW: one measurement a line, "id<TAB>repeat<TAB>value<TAB>baseline".
# META: one figure a line, "id<TAB>label<TAB>baseline label<TAB>goal<TAB>command",
# goal as ">= 0.8" or "<= 3" on the ratio value / baseline, or empty: a
# figure given for information (no goal, neither met nor missed; a grey dot).
# Writes OUT.md (Markdown: per figure the medians of value and baseline, the
# ratio's min / median / max over repeats, the goal, whether the median
# meets it, and the command) and OUT.png (gnuplot, if installed): a
# horizontal chart, one row per figure in META order with its full label on
# the left, the ratio on a log x axis; per row a dot at the median ratio with
# whiskers from min to max (the numbers of the table), green if the median
# meets the goal and red if not, the goal as a dark bar with an arrow
# towards the side that meets it, and the goal's text on the right; the
# canvas grows with the rows and the longest label.
set -euo pipefail
RAW=$1 META=$2 MACHINE=$3 NOTE=$4 MD=$5 PNG=$6
DAT=$(mktemp "${TMPDIR:-/tmp}/partreg-table.XXXXXX")
GP=$(mktemp "${TMPDIR:-/tmp}/partreg-table.XXXXXX")
trap 'rm -f "$DAT" "$GP"' EXIT

# The table to $MD.rows; the plot's rows to $DAT ("row<TAB>median<TAB>min<TAB>
# max<TAB>goal<TAB>met<TAB>direction", the ratios as printed in the table, the
# first figure on the top row) and its layout to $GP (gnuplot commands:
# canvas, margins, ranges, tics with the labels).
awk -F'\t' -v dat="$DAT" -v gp="$GP" -v q="'" '
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
function mid(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function median(list,   a, n) { n = sorted(list, a); return mid(a, n) }
function num(x) { return x >= 100 ? sprintf("%.0f", x) : sprintf("%.3g", x) }
# Width of s in em of DejaVu Sans, rounded up per class of character; a
# multibyte UTF-8 character (µ, →) counts as one wide one.
function ems(s,   w, i, c) {
  gsub(/[\200-\277]/, "", s)
  w = 0
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (index(" ijlftr.,:;!|()[]/-" q, c)) w += 0.42
    else if (index("mwMW%@", c)) w += 1
    else if (c ~ /[A-Z<>=+_]/ || c > "~") w += 0.86
    else w += 0.66
  }
  return w
}
function gpstr(s) { gsub(q, q q, s); return q s q }
function log10(x) { return log(x) / log(10) }
# The largest of 1, 2, 5 times a power of ten <= x (up: the smallest >= x).
function nice(x, up,   k, j, c, best) {
  best = ""
  for (k = int(log10(x)) - 2; k <= int(log10(x)) + 2; k++)
    for (j = 1; j <= 3; j++) {
      c = substr("125", j, 1) * 10 ^ k
      if ((up ? c >= x : c <= x) && (best == "" || (up ? c < best : c > best))) best = c
    }
  return best
}
function seen(x) { if (x > 0) { if (xlo == "" || x < xlo) xlo = x; if (xhi == "" || x > xhi) xhi = x } }
NR == FNR {
  v[$1] = v[$1] " " $3; b[$1] = b[$1] " " $4
  r[$1] = r[$1] " " ($4 > 0 ? $3 / $4 : 0)
  next
}
{
  id = $1
  if (!(id in v)) next
  info = split($4, g, " ") == 0
  n = sorted(r[id], a)
  m = mid(a, n)
  met = info ? "—" : (g[1] == ">=" ? m >= g[2] : m <= g[2]) ? "yes" : "**no**"
  lo = num(a[1]); md = num(m); hi = num(a[n])
  printf "| %s | %s | %s | %s | %s | %s / **%s** / %s | %s | `%s` |\n", $2, num(median(v[id])), \
    $3, num(median(b[id])), info ? "none (information)" : $4, lo, md, hi, met, $5
  k++
  # met: 1 yes, 0 no, -1 no goal (goal NaN: gnuplot draws no bar there).
  label[k] = $2; goal[k] = $4
  row[k] = md "\t" lo "\t" hi "\t" (info ? "NaN" : g[2]) "\t" (info ? -1 : met == "yes") "\t" (g[1] == ">=" ? 1 : -1)
  seen(lo + 0); seen(hi + 0); if (!info) seen(g[2] + 0)
}
END {
  if (!k) exit
  font = 11; px = font * 1.25                     # one em in pixels (pngcairo)
  wl = 0; wr = 0
  for (i = 1; i <= k; i++) {
    printf "%d\t%s\n", k - i + 1, row[i] >dat
    goal[i] = goal[i] == "" ? "no goal (information)" : "goal " goal[i] (goal[i] ~ /^<=/ ? ", lower is better" : "")
    if (ems(label[i]) > wl) wl = ems(label[i])
    if (ems(goal[i]) > wr) wr = ems(goal[i])
  }
  if (xlo == "") { xlo = 1; xhi = 1 }
  xmin = nice(xlo / 1.4, 0); xmax = nice(xhi * 1.4, 1)
  L = int(wl * px) + 24; R = int(wr * px) + 24; T = 84; B = 118; rowpx = 32
  W = L + 900 + R; if (W < 1400) W = 1400
  H = T + B + k * rowpx
  printf "set terminal pngcairo size %d,%d font \",%d\" noenhanced\n", W, H, font >gp
  printf "set lmargin at screen %.5f\nset rmargin at screen %.5f\n", L / W, 1 - R / W >gp
  printf "set tmargin at screen %.5f\nset bmargin at screen %.5f\n", 1 - T / H, B / H >gp
  printf "xmin = %g\nset xrange [%g:%g]\nset yrange [0.5:%g]\n", xmin, xmin, xmax, k + 0.5 >gp
  printf "set key at screen 0.5, screen %.5f center horizontal reverse Left width 2\n", 24 / H >gp
  # x tics at 1, 2, 5 times the powers of ten in range (only those over
  # more than four decades).
  s = ""
  for (e = int(log10(xmin)) - 1; e <= int(log10(xmax)) + 1; e++)
    for (j = 1; j <= (xmax / xmin > 1e4 ? 1 : 3); j++) {
      c = substr("125", j, 1) * 10 ^ e
      if (c >= xmin / 1.0001 && c <= xmax * 1.0001) s = s (s == "" ? "" : ", ") sprintf("\"%g\" %g", c, c)
    }
  printf "set xtics (%s)\n", s >gp
  if (xmin < 1 && xmax > 1) printf "set arrow from 1, graph 0 to 1, graph 1 nohead dt 2 lw 1.5 lc rgb \"#777777\" back\n" >gp
  # The labels as labels, not tic labels: gnuplot reads those as formats.
  printf "set ytics 1 format \"\"\n" >gp
  for (i = 1; i <= k; i++) {
    printf "set label %s at graph 0, first %d right offset -1, 0 noenhanced\n", gpstr(label[i]), k - i + 1 >gp
    printf "set label %s at graph 1, first %d left offset 1, 0 noenhanced\n", gpstr(goal[i]), k - i + 1 >gp
  }
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

if ! command -v gnuplot >/dev/null 2>&1; then
  echo "table.sh: gnuplot not installed (compose/install-deps.sh installs gnuplot-nox): no $PNG" >&2
elif [ ! -s "$DAT" ]; then
  echo "table.sh: no figure to plot: no $PNG" >&2
else
  # Columns of $DAT: 1 row, 2 median, 3 min, 4 max, 5 goal, 6 met, 7 direction.
  # A ratio of 0 (baseline 0) has no place on a log axis: no dot, and its
  # whisker starts at the left edge. Figures without a goal (met -1): grey,
  # in the key only when there are some.
  info_plot=""
  if awk -F'\t' '$6 < 0 { found = 1 } END { exit !found }' "$DAT"; then
    info_plot=", \"$DAT\" using (\$6 < 0 ? med(2) : 1/0):1:(low(3)):4 with xerrorbars pt 7 ps 1.5 lw 2 \\
       lc rgb \"#777777\" title \"median, no goal (information)\""
  fi
  gnuplot <<EOF
load '$GP'
set output '${PNG//\'/\'\'}'
set title "partregd: each figure as a ratio to its baseline measured in the same run\n(>= goals: higher is better, <= goals: lower is better)" font ",13"
set xlabel "ratio = figure / baseline (log scale; dashed: 1); dots: the median over the repeats, whiskers: min–max (as in the table)"
set datafile separator "\t"
set logscale x
set ytics nomirror scale 0
set grid xtics ytics lc rgb "#dddddd" lw 1
set errorbars 1.2
set border 3 lc rgb "#555555"
ok = "#2e8b57"; miss = "#c0392b"
med(c) = column(c) > 0 ? column(c) : 1/0
low(c) = column(c) > 0 ? column(c) : xmin
plot "$DAT" using 5:(\$1 - 0.38):(0):(0.76) with vectors nohead lw 3 lc rgb "#333333" notitle, \
     NaN with points pt "┃" ps 2.6 lc rgb "#333333" title "goal", \
     "$DAT" using 5:(\$1 + 0.38):(\$7 > 0 ? 0.3 * \$5 : -0.23 * \$5):(0) with vectors head filled size screen 0.007,25 lw 1.5 lc rgb "#333333" \
       title "the side that meets it", \
     "$DAT" using (\$6 > 0 ? med(2) : 1/0):1:(low(3)):4 with xerrorbars pt 7 ps 1.5 lw 2 lc rgb ok \
       title "median, goal met", \
     "$DAT" using (\$6 == 0 ? med(2) : 1/0):1:(low(3)):4 with xerrorbars pt 7 ps 1.5 lw 2 lc rgb miss \
       title "median, goal missed"$info_plot
EOF
fi
