#!/usr/bin/env bash
# The GPU run of issue 13 in one device call, everything written under $OUT (see README.md here):
#   1. the wheels the image lacks (benchmarks/gpu/wheels, from fetch_wheels.sh), installed offline;
#   2. the gpu-marked tests;
#   3. paintseg predict with tiny models on cuda in float16, through the CLI (Lightning places them);
#   4. the benchmark suite of configs/bench/gpu.yaml (512 px, full step counts).
# Each step has its own time limit and a failed step does not stop the next; the suite stops
# starting cases when the script's budget runs low and keeps the results of the cases it ran.
#
#   OUT=/some/folder bash benchmarks/gpu/run.sh            # on the GPU machine
#   OUT=/some/folder bash benchmarks/gpu/run.sh --dry-run  # here: the same steps on the CPU, tiny models
#
# Files in $OUT (8 at most, 2 folders deep, come back from a device call): run.log, env.txt,
# predict.txt, bench/results.json, bench/results.md, bench/latency.png.
set -uo pipefail
cd "$(dirname "$0")/../.."

DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1
OUT=${OUT:?set OUT to the folder the results go to}
WORK=${PAINTSEG_GPU_WORK:-/tmp/paintseg-gpu}    # random checkpoints, engines, predict output
BUDGET=${PAINTSEG_GPU_BUDGET:-540}              # seconds for the whole script: the call's limit (580 s) less a margin
STEP_LIMIT=${PAINTSEG_GPU_STEP_LIMIT:-120}      # seconds for each step before the suite (tests, tiny weights, predict)
PYTHON=${PYTHON:-python3}
START=$SECONDS
mkdir -p "$OUT/bench" "$WORK"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1  # everything is built here from random weights; nothing can be reached anyway
# The commit, for the results: git's where there is one, else the file fetch_wheels.sh wrote (the
# device's copy of the tree has no .git), else empty (unknown).
[[ -n "${PAINTSEG_COMMIT+set}" ]] || export PAINTSEG_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || cat benchmarks/gpu/wheels/COMMIT 2>/dev/null)"
FAILED=()

step() { echo "=== [$((SECONDS - START)) s] $*"; }
left() { echo $((BUDGET - (SECONDS - START))); }
check() {  # check NAME STATUS: remember a failed step
    if [[ $2 -ne 0 ]]; then FAILED+=("$1 (exit $2)"); echo "=== $1 FAILED (exit $2)"; fi
}

# The steps, in one function whose whole output goes through one tee into run.log (unindented:
# the Python heredocs in it must start at column 0).
main() {
if [[ $DRY_RUN -eq 1 ]]; then
    # float32: float16 convolutions on a CPU are slow, and the GPU precision is not what a dry run checks.
    DEVICE=cpu ACCELERATOR=cpu DTYPE=float32 BENCH_FLAGS=(--dry-run)
else
    DEVICE=cuda ACCELERATOR=gpu DTYPE=float16 BENCH_FLAGS=()
    step "installing the carried wheels into /tmp/site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        benchmarks/gpu/wheels/*.whl || { echo "wheels missing: run benchmarks/gpu/fetch_wheels.sh and carry them"; exit 1; }
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi

step "environment"
{
    [[ $DRY_RUN -eq 1 ]] || nvidia-smi
    "$PYTHON" - <<'EOF'
# The libraries' versions from their metadata: importing them only to print it took 12 s here.
import platform, torch
from importlib.metadata import version
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      *(f"{name} {version(name)}" for name in ("diffusers", "transformers", "lightning", "jsonargparse")))
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(), torch.cuda.get_device_capability(), torch.cuda.get_device_properties(0))
EOF
} > "$OUT/env.txt" 2>&1
check environment $?
cat "$OUT/env.txt"

step "gpu-marked tests"
# Only the files that hold gpu marks: collecting the whole suite to deselect the rest took half the step.
mapfile -t GPU_TEST_FILES < <(grep -l "mark\.gpu" tests/test_*.py)
timeout "$STEP_LIMIT" "$PYTHON" -m pytest -q -n 0 -m gpu -p no:cacheprovider --continue-on-collection-errors \
    "${GPU_TEST_FILES[@]:-tests}"
status=$?
[[ $status -eq 5 ]] && status=0  # no gpu-marked test selected is not a failure of this step
check "gpu tests" $status

step "paintseg predict: tiny models on $DEVICE in $DTYPE, through the CLI"
timeout "$STEP_LIMIT" "$PYTHON" - "$WORK/tiny" <<'EOF'
import sys
from pathlib import Path
from export.random_weights import save_tiny_sd_inpainting, save_tiny_vit
root = Path(sys.argv[1])
if not (root / "sd" / "model_index.json").exists():
    save_tiny_vit(root / "dino", "dino")
    save_tiny_sd_inpainting(root / "sd")
EOF
check "tiny weights" $?
rm -rf "$WORK/predict"
timeout "$STEP_LIMIT" "$PYTHON" -m paintseg_engine predict --config configs/fast.yaml \
    --trainer.accelerator "$ACCELERATOR" --trainer.enable_progress_bar false --output_dir "$WORK/predict" \
    --model.segmenter.init_args.painter.init_args.model "$WORK/tiny/sd" --model.segmenter.init_args.painter.init_args.dtype "$DTYPE" \
    --model.segmenter.init_args.painter.init_args.steps 2 \
    --model.segmenter.init_args.features.init_args.model "$WORK/tiny/dino" --model.segmenter.init_args.features.init_args.dtype "$DTYPE" \
    --model.segmenter.init_args.features.init_args.input_size 32 \
    --model.segmenter.init_args.config.frame_size 64 --model.segmenter.init_args.config.iterations 3 --model.segmenter.init_args.config.num_samples 2 \
    --data.datasets "[{name: generated, root: $WORK/data, kind: synthetic, num_images: 2, seed: 0}]" \
    2>&1 | tee "$OUT/predict.txt"
check "predict" $?

# The suite starts a case only if its estimate fits in its budget and writes every file after each
# case; the reserve covers the suite's start and its last write, the timeout a case over its estimate.
step "benchmark suite, $(left) s left"
timeout "$(( $(left) > 60 ? $(left) : 60 ))" "$PYTHON" -m benchmarks --config configs/bench/gpu.yaml \
    "${BENCH_FLAGS[@]}" --work-dir "$WORK/bench" --reuse-engines --out "$OUT/bench" --time-budget "$(( $(left) - 20 ))"
check "benchmarks" $?

step "done; failed steps: ${FAILED[*]:-none}"
[[ ${#FAILED[@]} -eq 0 ]]
}

main 2>&1 | tee "$OUT/run.log"
