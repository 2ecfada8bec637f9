#!/usr/bin/env bash
# Power cuts through signed updates on the emulated SPI NOR chip (PowerLossTests): every program and
# erase operation of a mini image's update (cut cleanly and mid-operation), and N random cut points
# through an update of the full 10-bit ResNet-50 image (default 1,000; the test run takes 3).
# Prints the cut points tried and the bricks (must be 0). Needs the weights (./edgeresnet fetch-weights).
# Usage: tools/scripts/power-cuts.sh [N]
source "$(dirname "${BASH_SOURCE[0]}")/test-figures.sh"
POWER_CUTS=${1:-1000} run_test_figures "ClassName~PowerLoss" "power cuts"
