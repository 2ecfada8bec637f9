#!/usr/bin/env bash
# Property-based fuzzing (CsCheck) of the flash image reader, the serial frame reader and the board's
# loader server: N random and mutated inputs each (default 100,000; CI runs 2,000 in the test suite).
# Fails on any exception other than the expected FlashImageException / ProtocolException / end of
# stream, or a hang. Usage: tools/scripts/fuzz.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
FUZZ_ITERATIONS=${1:-100000} dotnet test tests/EdgeResNet.Tests -c Release --filter "ClassName~LoaderFuzz" --logger "console;verbosity=normal"
