#!/usr/bin/env bash
# Runs the netstandard2.1 build of the runtime under Mono on a small packed network and checks
# its logits equal the .NET tools' (simulator and .NET runtime), from a quantised input and from a
# raw YUYV frame through the integer preprocessing. Needs Debian's mono-devel.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
command -v mcs >/dev/null || { echo "error: mcs not found; install Debian's mono-devel" >&2; exit 3; }
facade=/usr/lib/mono/4.5/Facades/netstandard.dll
[ -f "$facade" ] || { echo "error: $facade missing; install Debian's mono-devel" >&2; exit 3; }

dotnet build "$root/runtime/EdgeResNet.Runtime/EdgeResNet.Runtime.csproj" -c Release -f netstandard2.1 -nologo -v quiet >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
"$root/edgeresnet" mini-image --out "$work"
cp "$root/runtime/EdgeResNet.Runtime/bin/Release/netstandard2.1/EdgeResNet.Runtime.dll" "$work/"
mcs -nologo -out:"$work/MonoCheck.exe" -r:"$work/EdgeResNet.Runtime.dll" -r:"$facade" "$root/runtime/mono/MonoCheck.cs"
mono "$work/MonoCheck.exe" "$work/mini.img" "$work/input.bin" > "$work/mono.txt"
mono "$work/MonoCheck.exe" "$work/mini.img" "$work/frame.yuyv" 320 240 > "$work/mono-frame.txt"
if diff -q "$work/mono.txt" "$work/expected.txt" >/dev/null && diff -q "$work/mono-frame.txt" "$work/expected-frame.txt" >/dev/null; then
  echo "mono: the netstandard2.1 runtime under $(mono --version | head -1 | cut -d' ' -f1-5) gives the same $(wc -l < "$work/expected.txt") logits as .NET, from a quantised input and from a raw YUYV camera frame"
else
  echo "mono: logits differ from .NET:"; diff "$work/mono.txt" "$work/expected.txt"; diff "$work/mono-frame.txt" "$work/expected-frame.txt"; exit 1
fi
