#!/usr/bin/env bash
# Property-based fuzzing (CsCheck) of the flash image reader, the serial frame reader, the board's
# loader server, and reader + planner + engine on reshaped networks (every CRC valid, any geometry):
# N random and mutated inputs each (default 100,000; CI runs 2,000 in the test suite). Fails on any
# exception other than the expected FlashImageException / PlanException / ProtocolException / end of
# stream, on a plan over its budget, on an engine that differs from the simulator, or on a hang. Usage: tools/scripts/fuzz.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The per-target counts are test output, which the console logger shows only at detailed verbosity.
status=0
FUZZ_ITERATIONS=${1:-100000} dotnet test tests/EdgeResNet.Tests -c Release --filter "ClassName~LoaderFuzz" --logger "console;verbosity=detailed" >"$log" 2>&1 || status=$?
grep -E '^\s*fuzz ' "$log" | sed 's/^ *//' || true
grep -E '^Test Run|^Total tests|^ +(Passed|Failed|Skipped):' "$log" | sed 's/^ *//' || true
[ "$status" -eq 0 ] || { echo "FAILED: see the test output above"; tail -40 "$log"; }
exit "$status"
