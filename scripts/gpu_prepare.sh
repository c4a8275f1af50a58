#!/usr/bin/env bash
# Before a GPU is lent (docs/gpu.md), on this machine: put in .whl/gpu/ (git ignores .whl/) what
# scripts/gpu_check.sh installs there, for the GPU machine's Python 3.12 (it reaches no registry):
#
#   scripts/gpu_prepare.sh [--no-ort]
#
# - the small wheels the image lacks, at the versions this checkout's environment runs
#   (pydantic and friends, platformdirs, Keras and its pure dependencies, setuptools to build
#   the project): .whl/gpu/ travels with the working tree in one transfer (one carried path);
# - onnxruntime-gpu (about 255 MB) in pieces of 45 MB under .whl/ort-gpu/, one transfer each
#   (with the 16 MB tree, under the 64 MiB one transfer allows), its SHA-256 in .whl/gpu/ to
#   check the joined file;
# - the MNIST files in .whl/gpu/data/mnist; the commit in .whl/gpu/SOURCE_COMMIT (the GPU
#   machine's copy of the tree has no .git).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WITH_ORT=1
case "${1:-}" in
  --no-ort) WITH_ORT=0 ;;
  "") ;;
  *) echo "gpu_prepare.sh: error: $1: unknown option (--no-ort only)" >&2; exit 2 ;;
esac
PY="${PYTHON:-python3}"
ORT_VERSION="${ORT_VERSION:-1.31.1}"
SMALL=(pydantic pydantic-core annotated-types typing-inspection platformdirs keras absl-py namex
       optree h5py setuptools)

git check-ignore -q .whl/x || { echo "gpu_prepare.sh: error: .whl/ is not ignored by git" >&2; exit 2; }
mkdir -p .whl/ort-gpu .whl/gpu/data
# each at the version installed here (what the tests ran with), else the newest
pins=()
for name in "${SMALL[@]}"; do
  version="$("$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$name")"
  pins+=("$name${version:+==$version}")
done
echo "wheels: ${pins[*]}"
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl/gpu "${pins[@]}"

if ((WITH_ORT)); then
  tmp="$(mktemp -d)"
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 -d "$tmp" "onnxruntime-gpu==$ORT_VERSION"
  wheel="$(basename "$(ls "$tmp"/onnxruntime_gpu-*.whl)")"
  (cd "$tmp" && sha256sum "$wheel") >".whl/gpu/$wheel.sha256"
  rm -f .whl/ort-gpu/*.part-*
  split -b 45m "$tmp/$wheel" ".whl/ort-gpu/$wheel.part-"
  rm -rf "$tmp"
fi
cp -r "${HARNESS_DATA_DIR:-../shared/data}/mnist" .whl/gpu/data/
{ git rev-parse HEAD; git status --porcelain -- harness scripts | grep -q . && echo dirty; } \
  >.whl/gpu/SOURCE_COMMIT || true

echo
du -sh .whl/gpu .whl/ort-gpu/* 2>/dev/null
cat <<'EOF'

On the GPU machine (docs/gpu.md), one device call per onnxruntime-gpu piece, back to back
(the machine keeps /tmp only while it stays warm), carrying only that piece:
  carry [".whl/ort-gpu/<piece>"]:
    mkdir -p /tmp/harness-ort-gpu && mv .whl/ort-gpu/*.part-* /tmp/harness-ort-gpu/
then the check, carrying the small wheels and the data (not the pieces):
  carry [".whl/gpu"]:
    scripts/gpu_check.sh --out "$OUT"
EOF
