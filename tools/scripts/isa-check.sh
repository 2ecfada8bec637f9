#!/usr/bin/env bash
# Runs the x64 kernel paths this CPU has besides its own: on an AVX-512 CPU the AVX-VNNI and plain AVX2
# instantiations too, on an AVX-VNNI CPU plain AVX2 (the .NET runtime's DOTNET_EnableAVX512=0 and
# DOTNET_EnableAVXVNNI=0 switch them off), and on a VBMI CPU AVX-512 without VBMI (DOTNET_EnableAVX512v2=0:
# the weight unpack's blocks of 16 then go octet by octet). Each path runs the kernel check (17 odd shapes against the
# reference kernel) and the engine's bit-exact tests against the simulator (mini networks, every plan
# kind, and 5 real photos), so a path the CI machine does not pick by itself is still proven.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]]; }
if [ "$(uname -m)" != x86_64 ] || ! has avx2; then echo "isa-check: not an AVX2 x64 CPU, no other x64 kernel path to run"; exit 0; fi

variants=()
if has avx512bw && has avx512dq; then variants+=("DOTNET_EnableAVX512=0"); fi
if has avx512vbmi; then variants+=("DOTNET_EnableAVX512v2=0"); fi
if has avx_vnni; then variants+=("DOTNET_EnableAVX512=0 DOTNET_EnableAVXVNNI=0"); fi
if [ ${#variants[@]} -eq 0 ]; then echo "isa-check: this CPU's kernel (AVX2 without VNNI) is the only x64 path; the test run covers it"; exit 0; fi

dotnet build "$root/tests/EdgeResNet.KernelCheck" -c Release -o "$work/kc" -nologo -v quiet >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
dotnet build "$root/tests/EdgeResNet.Tests" -c Release -nologo -v quiet >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
status=0
for v in "${variants[@]}"; do
  echo "== $v"
  if env $v dotnet "$work/kc/edgeresnet-kernel-check.dll" >"$work/kc.log"; then sed -n '1p;$p' "$work/kc.log"; else cat "$work/kc.log"; echo "FAILED: kernel check under $v"; status=1; fi
  if env $v dotnet test "$root/tests/EdgeResNet.Tests" -c Release --no-build --filter "Name~BitExact|Name~Simulator|Name~AStreamedInput|Name~Unpack" >"$work/test.log" 2>&1; then
    grep -E "Passed!|Failed!" "$work/test.log"
  else
    cat "$work/test.log"; echo "FAILED: bit-exact tests under $v"; status=1
  fi
done
exit $status
