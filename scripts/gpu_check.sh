#!/usr/bin/env bash
# The CUDA half in one command, for the GPU machine (docs/gpu.md):
#
#   scripts/gpu_check.sh [--out DIR] [--dry-run] [--budget SECONDS] [--parallel N]
#                        [--whl DIR] [--ort-pieces DIR] [--data-dir DIR]
#
# installs what the machine lacks from the wheels in .whl/gpu/ (no network; onnxruntime-gpu
# joined from the pieces moved into --ort-pieces, default /tmp/harness-ort-gpu), records the machine
# (nvidia-smi, library versions), runs the GPU tests, times inference on the GPU (harness bench:
# one MLP, one LeNet, one large CNN, batch 1/32/256, ONNX Runtime's CUDA provider with IO
# binding and with host copies, PyTorch eager synchronised), lists where ONNX Runtime ran every
# node, trains the CNN study (13 specs, 12 epochs, seeds 0-2, PyTorch and Keras on JAX on the
# GPU, several `harness run` processes side by side) and writes `harness report DIR`.
# Everything goes under DIR (default $OUT); each step prints its elapsed seconds, a failed step
# is recorded (step, exit code, log) and the next one runs; the exit status is 1 if any failed.
#
# --dry-run: the same steps on the CPU (a few hundred images, one epoch, one seed, a few specs),
# in a few minutes: CI runs it on every commit (.ci/run).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELPERS="$REPO/scripts/gpu_check_helpers.py"
PY="${PYTHON:-python3}"
OUT_DIR="${OUT:-}"
DRY_RUN=0
BUDGET=""
PARALLEL=""
WHL="$REPO/.whl/gpu"  # scripts/gpu_prepare.sh fills it
ORT_PIECES="/tmp/harness-ort-gpu"
DATA_DIR="${HARNESS_DATA_DIR:-}"

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,3\}//'; }
die() { echo "gpu_check.sh: error: $*" >&2; exit 2; }

while (($#)); do
  case "$1" in
    --out) OUT_DIR="${2:?--out needs a folder}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --budget) BUDGET="${2:?--budget needs seconds}"; shift 2 ;;
    --parallel) PARALLEL="${2:?--parallel needs a number}"; shift 2 ;;
    --whl) WHL="${2:?--whl needs a folder}"; shift 2 ;;
    --ort-pieces) ORT_PIECES="${2:?--ort-pieces needs a folder}"; shift 2 ;;
    --data-dir) DATA_DIR="${2:?--data-dir needs a folder}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "$1: unknown option (see --help)" ;;
  esac
done

[[ -n "$OUT_DIR" ]] || die "--out: give an output folder (or set \$OUT)"
[[ -z "$BUDGET" || "$BUDGET" =~ ^[1-9][0-9]*$ ]] || die "--budget: $BUDGET: expected whole seconds"
[[ -z "$PARALLEL" || "$PARALLEL" =~ ^[1-9][0-9]?$ ]] || die "--parallel: $PARALLEL: expected 1 to 99"
if [[ -e "$OUT_DIR" && -n "$(ls -A "$OUT_DIR" 2>/dev/null)" ]]; then
  die "--out: $OUT_DIR: not empty (give a new or empty folder)"
fi
# the MNIST files: --data-dir, $HARNESS_DATA_DIR, the copy carried in .whl/data (the GPU
# machine reaches no network), or ../shared/data as the tests use it (tests/conftest.py)
for candidate in "$WHL/data" "$REPO/../shared/data"; do
  if [[ -z "$DATA_DIR" && -d "$candidate" ]]; then DATA_DIR="$candidate"; fi
done
[[ -n "$DATA_DIR" && -d "$DATA_DIR" ]] || die "--data-dir: '${DATA_DIR}': no such folder (the MNIST files: --data-dir, \$HARNESS_DATA_DIR, $WHL/data or ../shared/data)"
mkdir -p "$OUT_DIR/logs"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
cd "$REPO"

# What each mode runs. The GPU run: full study; the dry run: the same commands, small.
if ((DRY_RUN)); then
  MODE=dry-run; DEVICE=cpu; PROVIDERS=cpu,cuda; BUDGET="${BUDGET:-480}"; PARALLEL="${PARALLEL:-1}"
  SEEDS=(0); STUDY_ARGS=(--epochs 1 --limit 300 --limit-test 200); STUDY_FIRST=2
  BENCH_ARGS=(--min-runs 10 --min-seconds 0.05 --warmup 2 --limit-test 200 --threads 1)
  STUDY_THREADS=1
else
  MODE=gpu; DEVICE=cuda; PROVIDERS=cpu,cuda; BUDGET="${BUDGET:-540}"; PARALLEL="${PARALLEL:-2}"
  SEEDS=(0 1 2); STUDY_ARGS=(); STUDY_FIRST=0
  BENCH_ARGS=(--min-runs 50 --min-seconds 0.3 --warmup 10 --threads 2)
  STUDY_THREADS=1  # 12 processes side by side on 16 cores
fi
BENCH_SPECS=(mlp5_bn lenet5_bn_dropout cnn7_k7_bn)
STUDY_BACKENDS=(torch keras-jax)
# the carried wheels and the project, installed here (--target), ahead of the system's; the
# working tree comes first, so every record names its commit
SITE="$(mktemp -d "${TMPDIR:-/tmp}/harness-gpu-site.XXXXXX")"
trap 'rm -rf "$SITE"' EXIT
STARTED=$SECONDS
FAILED=()

export HARNESS_DATA_DIR="$DATA_DIR"
export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}"
# JAX takes 75 % of the GPU's memory per process by default: processes side by side must not.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONUNBUFFERED=1
harness() { "$PY" -m harness "$@"; }

elapsed() { echo $((SECONDS - STARTED)); }
say() { printf '[%4d s] %s\n' "$(elapsed)" "$*"; }

# step NAME COMMAND...: run it with its output in logs/NAME.log, print and record the outcome.
# It runs in the background and is waited for: there `set -e` holds inside shell functions
# (in `cmd || rc=$?` bash would ignore it, and a failing command would not end the step).
step() {
  local name="$1"; shift
  local log="$OUT_DIR/logs/$name.log" begin=$SECONDS rc=0
  say "$name: $*"
  "$@" >"$log" 2>&1 </dev/null &
  wait "$!" || rc=$?
  record "$name" "$rc" $((SECONDS - begin)) "logs/$name.log"
}

# record NAME RC SECONDS LOG [NOTE]
record() {
  local status=ok
  if [[ $2 -ne 0 ]]; then status=failed; FAILED+=("$1"); fi
  "$PY" "$HELPERS" step "$OUT_DIR" "$1" "$status" "$2" "$3" --log "$4" ${5:+--note "$5"}
  if [[ $status == ok ]]; then say "$1: ok (${3} s)"; else
    say "$1: FAILED, exit status $2 (${3} s; log: $OUT_DIR/$4)"; tail -n 5 "$OUT_DIR/$4" | sed 's/^/    /'
  fi
}

skip() {  # skip NAME WHY
  "$PY" "$HELPERS" step "$OUT_DIR" "$1" skipped 0 0 --note "$2"
  say "$1: skipped: $2"
}

commit="$(git -C "$REPO" rev-parse HEAD 2>/dev/null || cat "$WHL/SOURCE_COMMIT" 2>/dev/null || true)"
"$PY" "$HELPERS" start --out "$OUT_DIR" --mode "$MODE" --budget "$BUDGET" \
  --invocation "scripts/gpu_check.sh $*" --commit "$commit" --cpu-reference results/mnist-studies \
  --settings "{\"device\": \"$DEVICE\", \"providers\": \"$PROVIDERS\", \"seeds\": \"${SEEDS[*]}\", \"parallel\": $PARALLEL, \"bench_specs\": \"${BENCH_SPECS[*]}\", \"study_args\": \"${STUDY_ARGS[*]}\"}"
say "gpu_check.sh: $MODE into $OUT_DIR (budget ${BUDGET} s, data $DATA_DIR)"

install_wheels() {
  local wheels=() ort_dir
  ort_dir="$(mktemp -d)"
  shopt -s nullglob
  wheels=("$WHL"/*.whl)
  local pieces=("$ORT_PIECES"/onnxruntime_gpu-*.whl.part-*)
  shopt -u nullglob
  if ((${#pieces[@]})); then  # onnxruntime-gpu, carried in pieces: joined here
    local name; name="$(basename "${pieces[0]%.part-*}")"
    cat "${pieces[@]}" >"$ort_dir/$name"
    if [[ -f "$WHL/$name.sha256" ]]; then
      (cd "$ort_dir" && sha256sum -c "$WHL/$name.sha256")
    fi
    wheels+=("$ort_dir/$name")
  fi
  echo "wheels: ${wheels[*]:-none}"
  if ((${#wheels[@]})) && ((DRY_RUN)); then
    # they are for the GPU machine's Python 3.12: installed for it into a scratch folder (so
    # the carried set is checked complete and installable), not used here
    "$PY" -m pip install --no-index --no-deps --disable-pip-version-check --target "$SITE.cp312" \
      --python-version 3.12 --implementation cp --only-binary=:all: \
      --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 "${wheels[@]}"
    rm -rf "$SITE.cp312"
  elif ((${#wheels[@]})); then
    "$PY" -m pip install --no-index --no-deps --disable-pip-version-check --target "$SITE" \
      "${wheels[@]}"
  fi
  # the project, without its TensorFlow extra (its dependencies: the wheels above, the image's)
  local isolation=(--no-build-isolation)
  compgen -G "$WHL/setuptools-*.whl" >/dev/null && isolation=(--find-links "$WHL")
  "$PY" -m pip install --no-index --no-deps --disable-pip-version-check "${isolation[@]}" \
    --target "$SITE" "$REPO"
  rm -rf "$ort_dir"
  "$PY" -c 'import harness, harness.cli, pydantic, numpy, onnx, onnxruntime
print("harness", harness.__file__); print("onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())'
}

machine_facts() {
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi >"$OUT_DIR/facts/nvidia-smi.txt"
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,pci.bus_id \
      --format=csv >"$OUT_DIR/facts/nvidia-smi.csv"
    nvidia-smi -q >"$OUT_DIR/facts/nvidia-smi-q.txt" || true
  else
    echo "nvidia-smi: not found (no NVIDIA driver on this machine)" | tee "$OUT_DIR/facts/nvidia-smi.txt"
  fi
  "$PY" "$HELPERS" facts "$OUT_DIR"
}

gpu_tests() {
  local files=()
  mapfile -t files < <(grep -rl --include='test_*.py' 'pytest.mark.gpu' tests | sort)
  echo "GPU tests in: ${files[*]}"
  "$PY" -m pytest -m gpu -p no:cacheprovider -q -rs --junitxml "$OUT_DIR/pytest-gpu.xml" "${files[@]}"
}

# the study: one `harness run` per backend x seed x chunk of specs, side by side, each into a
# folder of its own (one run folder holds one writer), until the budget's deadline
study() {
  local chunks=() pids=() names=() specs backend seed index=0 deadline
  local first=(); ((STUDY_FIRST)) && first=(--first "$STUDY_FIRST")
  mapfile -t chunks < <("$PY" "$HELPERS" study-chunks "$PARALLEL" "${first[@]}")
  ((${#chunks[@]})) || { echo "no study specs"; return 1; }
  deadline=$((BUDGET - $(elapsed) - 75))  # what is left, less the merge, report and packing
  ((deadline > 30)) || { echo "no time left for the study ($deadline s)"; return 1; }
  echo "study: ${#chunks[@]} chunk(s) x ${STUDY_BACKENDS[*]} x seeds ${SEEDS[*]}, stopped after ${deadline} s"
  for backend in "${STUDY_BACKENDS[@]}"; do
    for seed in "${SEEDS[@]}"; do
      for specs in "${chunks[@]}"; do
        local name="$backend-seed$seed-part$index"; index=$((index + 1))
        timeout --signal=INT --kill-after=20 "$deadline" \
          "$PY" -m harness run --specs "$specs" --backends "$backend" --seeds "$seed" \
          --device "$DEVICE" --providers cpu --batch-sizes 1 --latency-min-runs 5 \
          --latency-min-seconds 0.05 --threads "$STUDY_THREADS" "${STUDY_ARGS[@]}" \
          --out "$OUT_DIR/study-parts/$name" >"$OUT_DIR/logs/study-$name.log" 2>&1 &
        pids+=("$!"); names+=("$name:$(tr -cd , <<<"$specs" | wc -c)")
      done
    done
  done
  echo "${#pids[@]} processes side by side"
  local i rc status=0
  for i in "${!pids[@]}"; do
    rc=0; wait "${pids[$i]}" || rc=$?
    local part="${names[$i]%%:*}" jobs=$((${names[$i]##*:} + 1))
    # a part's own exit status is 1 where a Keras-on-JAX export failed for want of TensorFlow:
    # check-part tells that from a real failure
    "$PY" "$HELPERS" check-part "$OUT_DIR/study-parts/$part" "$jobs" || status=1
    ((rc == 0 || rc == 1)) || { echo "$part: harness run exit status $rc"; status=1; }
  done
  return "$status"
}

step install install_wheels  # with no wheels carried (CI), it installs the project only
mkdir -p "$OUT_DIR/facts"
step facts machine_facts
step gpu-tests gpu_tests
for spec in "${BENCH_SPECS[@]}"; do
  step "bench-$spec" harness bench --spec "$spec" --backends torch --providers "$PROVIDERS" \
    --batch-sizes 1,32,256 "${BENCH_ARGS[@]}" --out "$OUT_DIR/bench/$spec"
done
step placement "$PY" "$HELPERS" placement "$OUT_DIR/bench" "$OUT_DIR" --providers "$PROVIDERS"
step study study
if compgen -G "$OUT_DIR/study-parts/*" >/dev/null; then
  step study-merge "$PY" "$HELPERS" merge "$OUT_DIR/study" "$OUT_DIR"/study-parts/*
  step study-report harness report "$OUT_DIR/study"
else
  skip study-merge "no study part ran"
fi
step pack "$PY" "$HELPERS" pack "$OUT_DIR"
rm -rf "$OUT_DIR/study-parts"
# the work is done: the manifest says so (with how many steps failed) before the report reads it
"$PY" "$HELPERS" step "$OUT_DIR" total "$([[ ${#FAILED[@]} -eq 0 ]] && echo ok || echo failed)" \
  "${#FAILED[@]}" "$(elapsed)" --note "${FAILED[*]:-no step failed}" --finish
step report harness report "$OUT_DIR"

total=$(elapsed)
if ((total > BUDGET)); then say "over budget: $total s of $BUDGET s"; fi
if ((${#FAILED[@]})); then
  say "done in $total s: ${#FAILED[@]} step(s) failed: ${FAILED[*]} (logs in $OUT_DIR/logs)"
  exit 1
fi
say "done in $total s: every step ok; report: $OUT_DIR/report/report.md"
