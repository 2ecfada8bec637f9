#!/usr/bin/env bash
# The HTML report in a real headless browser (Debian's chromium): it loads with nothing fetched,
# renders (a screenshot is taken), and its DOM holds the key figures of the image it describes
# (and of the second plan, for --ram-budget 1048576).
# Needs the 10-bit image the demo packs (tools/scripts/demo-check.sh runs first in .ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
img=${EDGERESNET_WEIGHTS_CACHE:-weights/.cache}/resnet50-sep-w10.img
[ -f "$img" ] || { echo "FAILED: $img is missing; run ./edgeresnet demo first"; exit 1; }
command -v chromium >/dev/null || { echo "FAILED: chromium is not installed (apt-get install chromium)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./edgeresnet report "$img" --out "$work/report.html" --photos 20 --validate 1 --sweep-json docs/sweep/sweep.json \
  --ram-budget 1048576 --frame 224x224,Rgb565 >"$work/log" 2>&1 \
  || { cat "$work/log"; echo "FAILED: edgeresnet report"; exit 1; }
if grep -qiE '(src|href)="https?:' "$work/report.html"; then echo "FAILED: the report refers to the network"; exit 1; fi
browser=(chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-dev-shm-usage --user-data-dir="$work/profile" --window-size=1250,2400)
timeout 120 "${browser[@]}" --dump-dom "file://$work/report.html" >"$work/dom.html" 2>"$work/browser.log" \
  || { cat "$work/browser.log"; echo "FAILED: chromium could not load the report"; exit 1; }
bytes=$(stat -c %s "$img")
fail() { echo "FAILED: $1"; exit 1; }
grouped=$(echo "$bytes" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')   # 32186176 -> 32,186,176
grep -q "id=\"image-bytes\" class=\"fig\">$grouped<" "$work/dom.html" || fail "the DOM lacks the image size $grouped"
for id in runtime-ram flash-per-frame top1 agreement layers ram-plan flash-traffic sweep-curve; do
  grep -q "id=\"$id\"" "$work/dom.html" || fail "the DOM lacks #$id"
done
second=$(grep -o 'id="second-runtime-ram" class="fig">[0-9,]*' "$work/dom.html" | sed 's/.*>//; s/,//g') || second=""
[ -n "$second" ] && [ "$second" -le 1048576 ] || fail "the DOM lacks the --ram-budget 1048576 plan within 1,048,576 B (got '$second')"
layers=$(grep -o '<span id="layers">[0-9]*' "$work/dom.html" | sed 's/.*>//')
[ -n "$layers" ] && [ "$(grep -o '<tr><td>[0-9]*</td>' "$work/dom.html" | wc -l)" -eq "$layers" ] || fail "the layer table does not have one row per layer ($layers)"
timeout 120 "${browser[@]}" --screenshot="$work/report.png" "file://$work/report.html" >/dev/null 2>&1 || fail "no screenshot"
[ "$(stat -c %s "$work/report.png")" -gt 50000 ] || fail "the screenshot is nearly empty"
echo "report: $(stat -c %s "$work/report.html") bytes, loads in chromium, key figures in the DOM (image $bytes B, $(grep -o 'id="runtime-ram" class="fig">[0-9,]*' "$work/dom.html" | sed 's/.*>//') B runtime RAM, $second B in the 1 MiB plan), screenshot $(stat -c %s "$work/report.png") bytes"
