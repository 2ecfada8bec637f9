#!/usr/bin/env bash
# Flashing end to end with the real 10-bit ResNet-50 image (32 MB):
#  1. SPI: `edgeresnet flash --spi-emulation` writes and verifies it in an emulated W25Q512JV
#     (SpiNorChip, contents in a file), a rerun resumes (nothing left to write), and the board
#     app classifies with its weights read from that chip: logits equal to the file-backed run.
#  2. Serial: the board app's loader on one end of a socat pseudo-terminal pair, `edgeresnet
#     flash --serial` on the other: a small image first (generation 1), then the big one cut
#     in the middle (kill -9): the small one must still boot; then the rerun resumes, commits
#     generation 2, and the app classifies from the A/B slots with the same logits.
# Also: the board app refuses an image whose smallest plan is over --ram-budget (exit 2, one line).
# Corrupted chunks are tested in-process (LoaderTests), where the corruption can be placed.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
device() { x64 "$@"; }
camera="folder:$samples,Yuyv"
device run --image "$image" --camera "$camera" --frames 2 --logits-out "$work/file.logits" >/dev/null

echo "== an image that cannot fit the RAM budget is refused before any device opens"
rc=0; device run --image "$image" --camera "$camera" --frames 1 --ram-budget 1000 >/dev/null 2>"$work/budget.err" || rc=$?
cat "$work/budget.err"
[ "$rc" -eq 2 ] && [ "$(wc -l < "$work/budget.err")" -eq 1 ] && grep -q "more than the RAM budget of 1,000 B" "$work/budget.err" \
  || fail "a budget below the smallest plan gave exit $rc, not 2 with one line naming the budget"

echo "== SPI: flash the full image into the emulated chip"
./edgeresnet flash --image "$image" --spi-emulation "$work/spi-chip.bin" --offset 1048576 | tail -1
echo "== SPI: the same again resumes with nothing to write"
./edgeresnet flash --image "$image" --spi-emulation "$work/spi-chip.bin" --offset 1048576 | tail -1 | tee "$work/rerun.txt"
grep -q ": [0-9]* sectors: [0-9]* already right, 0 programmed, 0 erased" "$work/rerun.txt" || fail "the rerun rewrote sectors"
device run --image "emulated-nor:$work/spi-chip.bin@1048576" --camera "$camera" --frames 2 --logits-out "$work/spi.logits" | grep '^frame'
cmp -s "$work/file.logits" "$work/spi.logits" || fail "logits with weights from the emulated SPI chip differ from the file-backed run"
echo "logits identical with weights read over (emulated) SPI"

echo "== serial: loader on a socat pty pair"
socat pty,raw,echo=0,link="$work/board" pty,raw,echo=0,link="$work/host" & pids+=($!)
# wait_for SECONDS WHAT CONDITION...: poll until the condition holds, or fail naming what never happened.
wait_for() {
  local seconds=$1 what=$2; shift 2
  for _ in $(seq $((seconds * 10))); do "$@" && return 0; sleep 0.1; done
  fail "$what did not happen within $seconds s"
}
wait_for 10 "socat's pty pair" test -e "$work/host" -a -e "$work/board"
storage="emulated-nor:$work/board-chip.bin"
dotnet .build/device-x64/edgeresnet-device.dll loader --serial "$work/board" --storage "$storage" > "$work/loader.log" 2>&1 & loader=$!; pids+=($loader)
wait_for 60 "the loader listening" grep -q "listening" "$work/loader.log"

./edgeresnet flash --image "$work/mini/mini.img" --serial "$work/host" | tail -1
echo "== serial: the full image, cut in the middle"
./edgeresnet flash --image "$image" --serial "$work/host" > "$work/cut.log" 2>&1 & host=$!
# Cut once the first 64 KiB block of the new image is in slot B (the image starts 32 MiB + 4 KiB into the chip).
wait_for 180 "the first block reaching slot B" cmp -s -n 65536 "$image" "$work/board-chip.bin" 0 $((33554432 + 4096))
kill -9 "$host" 2>/dev/null || fail "the transfer finished before the cut"
wait "$host" 2>/dev/null || true
device slots --storage "$storage" | tee "$work/slots.txt"
grep -q "boots slot A, generation 1" "$work/slots.txt" || fail "after the cut the previous image does not boot"
device run --image "slots:$storage" --camera "$camera" --frames 1 | grep -E '^(image|frame)'
echo "== serial: the rerun resumes"
./edgeresnet flash --image "$image" --serial "$work/host" | tail -1 | tee "$work/resume.txt"
grep -qE "generation 2: .* [1-9][0-9]* already right" "$work/resume.txt" || fail "the rerun did not resume (no block skipped) or did not commit generation 2"
device run --image "slots:$storage" --camera "$camera" --frames 2 --logits-out "$work/slots.logits" | grep -E '^(image|frame)'
cmp -s "$work/file.logits" "$work/slots.logits" || fail "logits from the serial-flashed slot differ from the file-backed run"
echo "logits identical from the A/B slot written over serial"
kill -TERM "$loader"; wait "$loader" || fail "the loader did not stop cleanly on SIGTERM"
echo "serial loader log:"; sed 's/^/  /' "$work/loader.log"
