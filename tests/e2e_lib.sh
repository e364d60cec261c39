# Shared by the end-to-end scripts: `check NAME EXPECTED ACTUAL` records a
# result; `finish NAME` prints the "N passed, N failed" line and sets the exit status.
failures=0
passes=0
check() {
  if [[ $2 == "$3" ]]; then passes=$((passes + 1)); echo "ok: $1"
  else failures=$((failures + 1)); echo "FAIL: $1"; echo "  expected: $(printf %q "$2")"; echo "  actual:   $(printf %q "$3")"; fi
}
finish() {
  echo "$1: $passes passed, $failures failed"
  [[ $failures -eq 0 ]]
}
