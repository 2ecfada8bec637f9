#!/usr/bin/env bash
# BenchmarkDotNet micro-benchmarks of the conv kernels (SIMD and reference) and of the weight unpack on ResNet-50 shapes,
# one band of 4 output rows, all channels, 10-bit weights (tools/EdgeResNet.Benchmarks). Not part of the
# test run. Extra arguments go to BenchmarkDotNet (default: a short job over every shape).
# Usage: tools/scripts/kernel-bench.sh [BenchmarkDotNet args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--filter '*' --job short)
dotnet run -c Release --project tools/EdgeResNet.Benchmarks -- "${args[@]}"
