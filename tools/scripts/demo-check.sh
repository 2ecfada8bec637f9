#!/usr/bin/env bash
# Whole-program check of the README's first command: `./edgeresnet demo` on 100 photos exits 0,
# the board app classifies frames from the emulated SPI NOR chip within a 1 MiB runtime plan, the runtime's accuracy
# is printed, and the footprint shows the 1 MiB plan within 1 MiB (its measured engine heap the same) and the STM32H747 fitting.
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
grep -qE '^  board: runtime RAM [0-9,]+ B \(budget 1,048,576 B\)' "$log" || fail "the board app did not run the 1 MiB plan"
grep -qE '^  2 MiB plan: runtime RAM [0-9,]+ B' "$log" || fail "no footprint line for the 2 MiB plan"
line=$(grep -E '^  1 MiB plan: runtime RAM ' "$log") || fail "no footprint line for the 1 MiB plan"
grouped=$(sed -E 's/^  1 MiB plan: runtime RAM ([0-9,]+) B.*/\1/' <<<"$line")   # 1,038,392: as the report prints it too
planned=${grouped//,/}
measured=$(sed -E 's/.*heap measured ([0-9,]+) B.*/\1/; s/,//g' <<<"$line")
[ "$planned" -le 1048576 ] || fail "the 1 MiB plan needs $planned B"
[ "$planned" -eq "$measured" ] || fail "the 1 MiB plan says $planned B, the engine's heap measured $measured B"
grep -qE '^  stm32h747: fits' "$log" || fail "the STM32H747 profile does not fit"
report=${EDGERESNET_WEIGHTS_CACHE:-weights/.cache}/demo-report.html
grep -q "id=\"second-runtime-ram\" class=\"fig\">$grouped<" "$report" || fail "the demo's report ($report) lacks the 1 MiB plan's $grouped B"
grep -E '^(== |demo done|  board: frame 1 |model |  1 MiB plan|  stm32h747)' "$log"
