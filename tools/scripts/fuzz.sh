#!/usr/bin/env bash
# Property-based fuzzing (CsCheck) of the flash image reader, the serial frame reader, the board's
# loader server (unsigned and with a trusted key), and reader + planner + engine on reshaped networks
# (every CRC valid, any geometry): N random and mutated inputs each (default 100,000; CI runs 2,000 in
# the test suite). Fails on any exception other than the expected FlashImageException / PlanException /
# ProtocolException / end of stream, on a plan over its budget, on an engine that differs from the
# simulator, or on a hang. Prints one line of counts per target. Usage: tools/scripts/fuzz.sh [N]
source "$(dirname "${BASH_SOURCE[0]}")/test-figures.sh"
FUZZ_ITERATIONS=${1:-100000} run_test_figures "ClassName~LoaderFuzz" "fuzz "
