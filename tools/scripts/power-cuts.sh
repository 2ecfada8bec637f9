#!/usr/bin/env bash
# Power cuts through signed updates on the emulated SPI NOR chip (PowerLossTests): every program and
# erase operation of a mini image's update (cut cleanly and mid-operation), and N random cut points
# through an update of the full 10-bit ResNet-50 image (default 1,000; the test run takes 3).
# Prints the cut points tried and the bricks (must be 0). Needs the weights (./edgeresnet fetch-weights).
# Usage: tools/scripts/power-cuts.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
POWER_CUTS=${1:-1000} dotnet test tests/EdgeResNet.Tests -c Release --filter "ClassName~PowerLoss" --logger "console;verbosity=detailed" >"$log" 2>&1 || status=$?
grep -E '^\s*power cuts' "$log" | sed 's/^ *//' || true
grep -E '^Test Run|^Total tests|^ +(Passed|Failed|Skipped):' "$log" | sed 's/^ *//' || true
[ "$status" -eq 0 ] || { echo "FAILED: see the test output above"; tail -40 "$log"; }
exit "$status"
