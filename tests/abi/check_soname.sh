#!/usr/bin/env bash
# Checks that LIBRARY's DT_SONAME is EXPECTED (libh2pool.so.<major>), and that
# the SONAME file the loader looks for exists next to it.
#
# usage: check_soname.sh LIBRARY EXPECTED
# READELF names the readelf program (default: readelf).
set -euo pipefail

readelf=${READELF:-readelf}
lib=${1:-}
want=${2:-}
if [[ ! -f $lib || -z $want ]]; then
  sed -n '2,6p' "$0" >&2
  exit 2
fi

dyn=$("$readelf" -d "$lib") || exit 2
sonames=$(sed -nE 's/.*\(SONAME\)[^[]*\[([^]]*)\].*/\1/p' <<<"$dyn")
if [[ $sonames != "$want" ]]; then
  echo "FAIL: SONAME of $lib is '${sonames//$'\n'/ }', want '$want'" >&2
  exit 1
fi
if [[ ! -e ${lib%/*}/$want ]]; then
  echo "FAIL: ${lib%/*}/$want (the SONAME link) does not exist" >&2
  exit 1
fi
echo "OK: SONAME $sonames"
