# Sourced by the firmware checks: the repository root as working directory, the sample photos and
# weights cache, a temporary folder removed on exit (with any background process in pids), the
# packed 10-bit ResNet-50 (packed if absent), a mini image, and the x64 board app as `x64`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
samples=${EDGERESNET_SAMPLES:-../shared/imagenet-samples}
cache=${EDGERESNET_WEIGHTS_CACHE:-weights/.cache}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

image="$cache/resnet50-sep-w10.img"
[ -f "$image" ] || ./edgeresnet pack --bits 10 --scheme Separate --out "$image"
./edgeresnet mini-image --out "$work/mini" >/dev/null
dotnet publish firmware/EdgeResNet.Device -c Release -o .build/device-x64 -nologo -v q
x64() { dotnet .build/device-x64/edgeresnet-device.dll "$@"; }
