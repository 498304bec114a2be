# Shared by the shell tests: TAP-like "ok -" / "not ok -" lines and their counters.
#   . "$(dirname "${BASH_SOURCE[0]}")/tap.sh"    (before the script changes directory)
# shellcheck shell=bash
pass=0; fail=0
# check DESCRIPTION COMMAND...: the check passes when COMMAND exits 0
check() {
  local what=$1; shift
  if "$@"; then echo "ok - $what"; pass=$((pass+1)); return 0; fi
  echo "not ok - $what"; fail=$((fail+1)); return 1
}
# has FILE STRING: FILE contains the fixed string
has() { grep -qF -- "$2" "$1"; }
# lines FILE: its number of lines
lines() { wc -l < "$1" | tr -d ' '; }
# show FILE: its first lines as diagnostics, after a failure
show() { sed -n '1,8s/^/    # /p' "$1"; }
