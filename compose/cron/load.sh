#!/bin/sh
# Stand-in for the consumer's job: read the day the producer made ready.
set -eu
out=${SALES_OUT:-/var/lib/sales}
cat "$out/sales-$1.csv" >>"$out/loaded.log"
