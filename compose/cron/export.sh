#!/bin/sh
# Stand-in for the producer's job: write the day's file. DAY is $1 (YYYY-MM-DD).
set -eu
out=${SALES_OUT:-/var/lib/sales}
mkdir -p "$out"
echo "sales of $1" >"$out/sales-$1.csv.tmp"
mv "$out/sales-$1.csv.tmp" "$out/sales-$1.csv"
