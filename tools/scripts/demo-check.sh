#!/usr/bin/env bash
# Whole-program check of the README's first command: `./edgeresnet demo` on 100 photos exits 0,
# the board app classifies frames from the emulated SPI NOR chip, and the runtime's accuracy is printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! timeout 1200 ./edgeresnet demo --limit 100 --frames 3 >"$log" 2>&1; then
  cat "$log"; echo "FAILED: the demo exited non-zero"; exit 1
fi
fail() { cat "$log"; echo "FAILED: $1"; exit 1; }
[ "$(grep -cE '^  board: frame [0-9]+ .* B over SPI$' "$log")" -eq 3 ] || fail "expected 3 board-app frame lines read over the emulated SPI bus"
grep -qE '^model resnet50-sep-w10.img \(runtime\): 100 images, top-1 [0-9.]+ %, top-5 [0-9.]+ %, top-1 agreement with float [0-9.]+ %' "$log" || fail "no runtime accuracy line"
grep -qE '^  runtime RAM [0-9,]+ B' "$log" || fail "no footprint line"
grep -E '^(== |demo done|  board: frame 1 |model )' "$log"
