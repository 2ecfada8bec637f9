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
#  3. Signed: a loader given --trust KEY.pub takes a signed image and refuses an unsigned one, a
#     tampered one (another valid image under the genuine signature block) and a downgrade (a lower
#     security counter); after each refusal the signed image still boots.
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
echo "== a mistyped serial port stops the loader before it creates an emulated chip"
rc=0; device loader --serial "$work/no-such-tty" --storage "emulated-nor:$work/never.bin" >/dev/null 2>"$work/port.err" || rc=$?
cat "$work/port.err"
[ "$rc" -eq 5 ] && [ ! -e "$work/never.bin" ] && grep -q "serial port $work/no-such-tty does not exist" "$work/port.err" \
  || fail "a missing serial port gave exit $rc (not 5) or left a chip file"

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

echo "== signed updates: a loader that trusts one key refuses an unsigned, a tampered and a downgraded image"
./edgeresnet keys new --out "$work/board.key" | head -2
[ "$(stat -c %a "$work/board.key")" = 600 ] || fail "the private key file is not mode 0600"
./edgeresnet sign "$work/mini/mini.img" --key "$work/board.key" --counter 2 --out "$work/signed2.img"
./edgeresnet sign "$work/mini/mini.img" --key "$work/board.key" --counter 1 --out "$work/signed1.img"
./edgeresnet mini-image --out "$work/other" --seed 7 >/dev/null
# tampered: another valid image (every CRC right) under the genuine signature block
size=$(stat -c %s "$work/mini/mini.img")
[ "$(stat -c %s "$work/other/mini.img")" = "$size" ] || fail "the two mini images differ in size"
{ cat "$work/other/mini.img"; tail -c 128 "$work/signed2.img"; } > "$work/tampered.img"
signed_storage="emulated-nor:$work/signed-chip.bin"
dotnet .build/device-x64/edgeresnet-device.dll loader --serial "$work/board" --storage "$signed_storage" --trust "$work/board.key.pub" > "$work/signed-loader.log" 2>&1 & loader=$!; pids+=($loader)
wait_for 60 "the trusting loader listening" grep -q "listening" "$work/signed-loader.log"
grep -q "loader: takes only images signed by key" "$work/signed-loader.log" || fail "the loader does not say which key it trusts"
./edgeresnet flash --image "$work/signed2.img" --serial "$work/host" | tail -1
for bad in "$work/mini/mini.img:not signed" "$work/tampered.img:do not hash to the signed SHA-256" "$work/signed1.img:a downgrade"; do
  file=${bad%%:*} says=${bad#*:}
  rc=0; ./edgeresnet flash --image "$file" --serial "$work/host" > "$work/bad.log" 2>&1 || rc=$?
  tail -1 "$work/bad.log"
  [ "$rc" -ne 0 ] && grep -q "$says" "$work/bad.log" || fail "$(basename "$file") was not refused with \"$says\" (exit $rc)"
  device slots --storage "$signed_storage" --trust "$work/board.key.pub" > "$work/slots.txt"
  grep -q "boots slot A, generation 1" "$work/slots.txt" || { cat "$work/slots.txt"; fail "after refusing $(basename "$file") the signed image does not boot"; }
done
echo "unsigned, tampered and downgraded images refused; the signed image still boots"
device run --image "slots:$signed_storage" --trust "$work/board.key.pub" --camera "folder:$samples" --frames 1 | grep -E '^image'
device run --image "slots:$signed_storage" --camera "folder:$samples" --frames 1 | grep -q "WARNING: no trusted key" || fail "no warning without --trust"
kill -TERM "$loader"; wait "$loader" || fail "the trusting loader did not stop cleanly on SIGTERM"
# no PEM text and no line of the private key's body may reach the log
! grep -qF -e "-----BEGIN" -e "$(sed -n 2p "$work/board.key")" "$work/signed-loader.log" || fail "key material in the loader log"
echo "signed loader log:"; sed 's/^/  /' "$work/signed-loader.log"
