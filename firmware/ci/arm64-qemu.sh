#!/usr/bin/env bash
# The board build under emulation: publish the board app for linux-arm64 (self-contained, trimmed),
# run it under qemu-aarch64 on sample photos with the file flash and the folder source, and check
# that its logits equal the x64 build's, frame for frame. Needs qemu-user, libc6-arm64-cross and
# libstdc++6-arm64-cross (.ci/run installs them). Prints the arm64 latency (for information: qemu
# is an emulator, ~20-50x slower than a real Cortex-A core).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
samples=${EDGERESNET_SAMPLES:-../shared/imagenet-samples}
cache=${EDGERESNET_WEIGHTS_CACHE:-weights/.cache}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

image="$cache/resnet50-sep-w10.img"
[ -f "$image" ] || ./edgeresnet pack --bits 10 --scheme Separate --out "$image"
./edgeresnet mini-image --out "$work/mini" >/dev/null

dotnet publish firmware/EdgeResNet.Device -c Release -r linux-arm64 -o .build/device-arm64 -nologo -v q
dotnet publish firmware/EdgeResNet.Device -c Release -o .build/device-x64 -nologo -v q
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
arm64() { qemu-aarch64 -L /usr/aarch64-linux-gnu .build/device-arm64/edgeresnet-device "$@"; }
x64() { dotnet .build/device-x64/edgeresnet-device.dll "$@"; }

status=0
# name | image | camera | frames
while IFS='|' read -r name img camera frames; do
  echo "== $name: $frames frame(s), $camera"
  x64 run --image "$img" --camera "$camera" --frames "$frames" --logits-out "$work/$name.x64" >/dev/null
  arm64 run --image "$img" --camera "$camera" --frames "$frames" --logits-out "$work/$name.arm64" | grep '^frame' | sed 's/^/arm64 under qemu: /'
  if cmp -s "$work/$name.x64" "$work/$name.arm64"; then
    echo "logits identical on linux-arm64 (qemu) and x64 ($(wc -l < "$work/$name.x64") frames x $(awk '{print NF-1; exit}' "$work/$name.x64") logits)"
  else
    echo "FAIL: linux-arm64 logits differ from x64 for $name"; status=1
  fi
done <<LIST
mini-rgb565|$work/mini/mini.img|folder:$samples,Rgb565|3
resnet50-yuyv|$image|folder:$samples,Yuyv|2
LIST
exit $status
