# Sourced by the long-run scripts (fuzz.sh, power-cuts.sh): runs the tests matching a filter with
# their console output, prints the lines that carry figures and the summary, and on failure the tail
# of the output. Usage: run_test_figures FILTER LINE_PREFIX (environment variables pass through).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
run_test_figures() {
  local filter=$1 prefix=$2 log status=0
  log=$(mktemp)
  # The figure lines are test output, which the console logger shows only at detailed verbosity.
  dotnet test tests/EdgeResNet.Tests -c Release --filter "$filter" --logger "console;verbosity=detailed" >"$log" 2>&1 || status=$?
  grep -E "^\s*$prefix" "$log" | sed 's/^ *//' || true
  grep -E '^Test Run|^Total tests|^ +(Passed|Failed|Skipped):' "$log" | sed 's/^ *//' || true
  [ "$status" -eq 0 ] || { echo "FAILED: see the test output above"; tail -40 "$log"; }
  rm -f "$log"
  return "$status"
}
