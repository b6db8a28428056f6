#!/usr/bin/env bash
# Checks the dynamic symbol table of libh2pool against the public header.
#
# usage: check_exports.sh only-prefixed LIBRARY
#          every defined dynamic symbol starts with h2pool_
#        check_exports.sh declared-are-exported LIBRARY HEADER
#          every function declared with H2POOL_EXTERN in HEADER is exported
#        check_exports.sh exported-are-declared LIBRARY HEADER
#          every exported symbol is declared with H2POOL_EXTERN in HEADER
#
# NM names the nm program (default: nm). Exits 0 when the check holds, 1 when
# it does not (listing the offending names), 2 on usage or tool errors.
set -euo pipefail

nm=${NM:-nm}
mode=${1:-}
lib=${2:-}
header=${3:-}

usage() {
  sed -n '2,12p' "$0" >&2
  exit 2
}
[[ -n $mode && -f $lib ]] || usage

# Defined dynamic symbols, without version suffixes (name@@H2POOL_0).
# Entries of type A are version definitions (H2POOL_0), not symbols.
exported_symbols() {
  local out
  out=$("$nm" -D --defined-only "$lib") || exit 2
  awk 'NF >= 3 && $2 != "A" { sub(/@.*/, "", $3); print $3 }' <<<"$out" | sort -u
}

# Function names declared with H2POOL_EXTERN: preprocessor lines (the
# macro's own definition) and comments are dropped, the rest is joined into
# one line, and each "H2POOL_EXTERN <return type> name(" yields its name.
declared_functions() {
  [[ -f $header ]] || usage
  grep -v '^[[:space:]]*#' "$header" | tr '\n' ' ' |
    sed -E 's:/\*([^*]|\*+[^*/])*\*+/: :g' |
    { grep -oE 'H2POOL_EXTERN[^;(]*\(' || true; } |
    { grep -oE '[A-Za-z_][A-Za-z0-9_]*[[:space:]]*\($' || true; } |
    sed -E 's/[[:space:]]*\($//' | sort -u
}

exported=$(exported_symbols)
if [[ -z $exported ]]; then
  echo "FAIL: $lib exports no symbols at all" >&2
  exit 1
fi

report() { # report TITLE NAMES
  if [[ -n $2 ]]; then
    echo "FAIL: $1:" >&2
    awk '{ print "  " $0 }' <<<"$2" >&2
    exit 1
  fi
}

case $mode in
  only-prefixed)
    report "exported symbols not prefixed with h2pool_ in $lib" \
      "$(grep -v '^h2pool_' <<<"$exported" || true)"
    echo "OK: all $(wc -l <<<"$exported") exported symbols start with h2pool_"
    ;;
  declared-are-exported | exported-are-declared)
    declared=$(declared_functions)
    count=$(grep -c . <<<"$declared" || true)
    # The header declares dozens of functions; finding few means the parse,
    # not the library, is broken.
    if ((count < 20)) || ! grep -qx 'h2pool_version' <<<"$declared"; then
      echo "FAIL: found only $count H2POOL_EXTERN declarations in $header" >&2
      exit 2
    fi
    if [[ $mode == declared-are-exported ]]; then
      report "declared in ${header##*/} but not exported by ${lib##*/}" \
        "$(comm -23 <(echo "$declared") <(echo "$exported"))"
      echo "OK: all $count declared functions are exported"
    else
      report "exported by ${lib##*/} but not declared in ${header##*/}" \
        "$(comm -13 <(echo "$declared") <(echo "$exported"))"
      echo "OK: all $(wc -l <<<"$exported") exported symbols are declared"
    fi
    ;;
  *) usage ;;
esac
