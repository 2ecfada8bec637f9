#!/usr/bin/env bash
# The board build under emulation: publish the board app for linux-arm64, self-contained and
# trimmed, and as a native AOT binary; run both under qemu-aarch64 on sample photos with the file
# flash and the folder source, and check that their logits equal the x64 build's, frame for frame.
# First the NEON conv kernel alone: the kernel check's odd layer shapes (the cases of the x64 test
# FastConvIsBitExactWithTheReference) against the reference kernel, under qemu.
# Needs qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross; the AOT cross build also clang,
# lld, gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (.ci/run installs them). Prints the arm64
# latency (for information: qemu is an emulator, many times slower than a real Cortex-A core).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
dotnet publish tests/EdgeResNet.KernelCheck -c Release -r linux-arm64 --self-contained -o .build/kernel-check-arm64 -nologo -v q
status=0
qemu-aarch64 -L /usr/aarch64-linux-gnu .build/kernel-check-arm64/edgeresnet-kernel-check | sed 's/^/kernel check under qemu: /' || { echo "FAIL: the NEON conv kernel differs from the reference kernel"; status=1; }

dotnet publish firmware/EdgeResNet.Device -c Release -r linux-arm64 -o .build/device-arm64 -nologo -v q
# SysRoot=/: clang finds the Debian cross libraries itself (--target=aarch64-linux-gnu).
dotnet publish firmware/EdgeResNet.Device -c Release -r linux-arm64 -p:BoardAot=true -p:LinkerFlavor=lld -p:SysRoot=/ -p:StripSymbols=false \
  -o .build/device-arm64-aot -nologo -v q
echo "linux-arm64 builds: trimmed $(du -sh .build/device-arm64 | cut -f1) in all; native AOT binary $(du -h .build/device-arm64-aot/edgeresnet-device | cut -f1) (+ libSkiaSharp.so)"
arm64() { qemu-aarch64 -L /usr/aarch64-linux-gnu .build/device-arm64/edgeresnet-device "$@"; }
arm64-aot() { qemu-aarch64 -L /usr/aarch64-linux-gnu .build/device-arm64-aot/edgeresnet-device "$@"; }

# name | build | image | camera | frames
while IFS='|' read -r name build img camera frames; do
  echo "== $name, $build build: $frames frame(s), $camera"
  x64 run --image "$img" --camera "$camera" --frames "$frames" --logits-out "$work/$name.x64" >/dev/null
  "$build" run --image "$img" --camera "$camera" --frames "$frames" --logits-out "$work/$name.arm64" | grep '^frame' | sed "s/^/$build under qemu: /"
  if cmp -s "$work/$name.x64" "$work/$name.arm64"; then
    echo "logits identical on linux-arm64 ($build, qemu) and x64 ($(wc -l < "$work/$name.x64") frames x $(awk '{print NF-1; exit}' "$work/$name.x64") logits)"
  else
    echo "FAIL: linux-arm64 ($build) logits differ from x64 for $name"; status=1
  fi
done <<LIST
mini-rgb565|arm64|$work/mini/mini.img|folder:$samples,Rgb565|3
resnet50-yuyv|arm64|$image|folder:$samples,Yuyv|2
resnet50-rgb565-aot|arm64-aot|$image|folder:$samples,Rgb565|1
LIST
exit $status
